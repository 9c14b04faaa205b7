"""The managed runtime from the frozen bundle: its venv comes from a Python on PATH, never the app binary."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from engine.paths import AppPaths
from engine.runtime.install import Progress, RuntimeInstaller, RuntimeInstallFailed
from engine.runtime.locate import child_environ, probe_python
from engine.runtime.python import NoUsablePython, find_base_python
from tests.support.fake_runtime import make_fake_runtime


def fake_python(
    bindir: Path, name: str, version: tuple[int, int, int], *, venv: bool = True, log: Path | None = None
) -> Path:
    """An interpreter that answers the version probe; ``-m venv`` is recorded in ``log`` and fails."""
    bindir.mkdir(exist_ok=True)
    answer = json.dumps({"version": list(version), "venv": venv})
    make_venv = (
        f'if [ "$1" = "-m" ] && [ "$2" = "venv" ]; then\n'
        f'  echo "$0 $* LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >> "{log}"\n'
        "  echo 'The virtual environment was not created successfully because ensurepip is not available.'\n"
        "  exit 1\n"
        "fi\n"
        if log is not None
        else ""
    )
    script = bindir / name
    script.write_text(f"#!/bin/sh\n{make_venv}echo '{answer}'\n")
    script.chmod(0o755)
    return script


@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run as the PyInstaller bundle: ``sys.frozen`` set, ``sys.executable`` the app binary."""
    app_binary = tmp_path / "bundle" / "vllm-desk"
    app_binary.parent.mkdir()
    # The real bundle's binary would open the app; this one leaves a mark if it is ever run.
    app_binary.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path / "app-binary-ran"}"\nexit 3\n')
    app_binary.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(app_binary))
    return app_binary


def use_path(monkeypatch: pytest.MonkeyPatch, *dirs: Path) -> None:
    monkeypatch.setenv("PATH", ":".join(str(d) for d in dirs))


def test_outside_the_bundle_the_apps_own_python_is_used(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake_python(tmp_path / "bin", "python3.12", (3, 12, 3))
    use_path(monkeypatch, tmp_path / "bin")
    assert find_base_python() == Path(sys.executable)


def test_bundle_picks_a_supported_python_from_path(
    frozen: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    fake_python(bindir, "python3", (3, 9, 2))
    chosen = fake_python(bindir, "python3.11", (3, 11, 2))
    use_path(monkeypatch, bindir)
    assert find_base_python() == chosen


def test_bundle_skips_a_python_without_venv_and_an_unsupported_one(
    frozen: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    fake_python(bindir, "python3.12", (3, 12, 3), venv=False)
    fake_python(bindir, "python3.11", (3, 10, 12))  # a name is no proof of the version
    chosen = fake_python(bindir, "python3", (3, 13, 1))
    use_path(monkeypatch, bindir)
    assert find_base_python() == chosen


def test_bundle_without_a_usable_python_names_the_fix(
    frozen: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bindir = tmp_path / "bin"
    fake_python(bindir, "python3", (3, 10, 12))
    fake_python(bindir, "python3.12", (3, 12, 3), venv=False)
    broken = bindir / "python3.11"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(0o755)
    use_path(monkeypatch, bindir)

    with pytest.raises(NoUsablePython) as caught:
        find_base_python()

    problem = caught.value
    assert "Install Python 3.11 and python3-venv" in str(problem)
    assert "VLLM_DESK_VLLM" in str(problem)
    assert problem.fix is not None
    assert "python3.11-venv" in problem.fix.hint
    assert "VLLM_DESK_VLLM" in problem.fix.hint
    assert problem.details.splitlines() == [
        f"{bindir / 'python3.12'} lacks the venv module (python3-venv)",
        f"{bindir / 'python3.11'} does not run or gives no answer (list index out of range)",
        f"{bindir / 'python3'} is Python 3.10.12, outside what vLLM supports",
    ]


def test_bundle_with_nothing_on_path(frozen: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    use_path(monkeypatch, tmp_path / "empty")
    with pytest.raises(NoUsablePython) as caught:
        find_base_python()
    assert "none of python3.12, python3.11" in caught.value.details


def test_installer_in_the_bundle_makes_the_venv_with_the_system_python(
    frozen: Path, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    log = tmp_path / "venv-calls"
    system = fake_python(tmp_path / "bin", "python3.11", (3, 11, 2), log=log)
    use_path(monkeypatch, tmp_path / "bin")
    # What the bootloader leaves behind: the bundle's libraries first, the user's value kept aside.
    monkeypatch.setenv("LD_LIBRARY_PATH", f"{frozen.parent}:/opt/user/lib")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/opt/user/lib")

    with pytest.raises(RuntimeInstallFailed) as caught:
        RuntimeInstaller(app_paths, gpu=True, preflight=False).install()  # about the venv, not the GPU

    assert not (tmp_path / "app-binary-ran").exists(), "the app binary is no Python"
    assert log.read_text().splitlines() == [
        f"{system} -m venv {app_paths.runtime} LD_LIBRARY_PATH=/opt/user/lib"
    ]
    assert str(system) in str(caught.value)
    assert "ensurepip is not available" in caught.value.details


def test_installer_in_the_bundle_without_python_writes_nothing(
    frozen: Path, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / "empty").mkdir()
    use_path(monkeypatch, tmp_path / "empty")
    seen: list[Progress] = []
    with pytest.raises(NoUsablePython):
        RuntimeInstaller(app_paths, gpu=False).install(seen.append)
    assert seen == []
    assert not app_paths.runtime.exists()
    assert not (tmp_path / "app-binary-ran").exists()


def test_child_environ_restores_the_users_library_path_in_the_bundle(
    frozen: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = {"LD_LIBRARY_PATH": "/bundle/_internal:/u/lib", "LD_LIBRARY_PATH_ORIG": "/u/lib", "HOME": "/h"}
    assert child_environ(base) == {"LD_LIBRARY_PATH": "/u/lib", "HOME": "/h"}
    # The user had none: the bundle's must not leak either.
    assert child_environ({"LD_LIBRARY_PATH": "/bundle/_internal", "HOME": "/h"}) == {"HOME": "/h"}


def test_child_environ_is_unchanged_outside_the_bundle() -> None:
    base = {"LD_LIBRARY_PATH": "/a", "LD_LIBRARY_PATH_ORIG": "/b"}
    assert child_environ(base) == base


def test_probe_reports_the_runtimes_python_version(tmp_path: Path) -> None:
    # Recorded in runtime.json: the runtime's interpreter, which need not be the app's.
    python = make_fake_runtime(tmp_path / "venv")
    info = probe_python(python, tmp_path / "venv")
    assert info["python_version"] == ".".join(map(str, sys.version_info[:3]))
