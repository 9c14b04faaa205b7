"""The committed PNG icons are renderings of the SVG source (regenerate with packaging/make_icons.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtGui import QImage

from engine import assets

pytestmark = pytest.mark.gui

REPO = Path(__file__).resolve().parents[2]


def test_pngs_match_a_fresh_rendering_of_the_svg(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "packaging" / "make_icons.py"), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    committed = assets.app_icon_pngs()
    assert committed
    for size, path in committed.items():
        fresh = QImage(str(tmp_path / f"{size}x{size}" / "apps" / "vllm-desk.png"))
        assert not fresh.isNull()
        assert QImage(str(path)) == fresh, f"{path} is stale: run packaging/make_icons.py"
