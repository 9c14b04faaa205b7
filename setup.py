"""Only one job beyond pyproject.toml: ship the top-level ``resources/`` inside the ``engine`` package.

The sources stay in ``resources/`` (the repository's layout); wheels (pip, pipx, uv tool) get a copy as
``engine/_resources`` so that ``engine.assets.resources_dir()`` finds icons and desktop files wherever the
package is installed. Editable installs and PyInstaller bundles find ``resources/`` directly.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildPyWithResources(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        target = Path(self.build_lib) / "engine" / "_resources"
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(HERE / "resources", target)


setup(cmdclass={"build_py": BuildPyWithResources})
