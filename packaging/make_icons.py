"""Render the app's SVG icon to the PNG sizes desktops ask for (resources/icons/hicolor/NxN/apps/).

The SVG is the source; the PNGs are committed so that installs need no renderer, and regenerated with
``python packaging/make_icons.py`` (Qt's SVG renderer, offscreen) whenever the SVG changes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication, QImage, QPainter
from PySide6.QtSvg import QSvgRenderer

ROOT = Path(__file__).resolve().parent.parent
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
APP_ICON = ROOT / "resources" / "icons" / "vllm-desk.svg"
HICOLOR = ROOT / "resources" / "icons" / "hicolor"


def render_png(svg: Path, size: int, out: Path) -> None:
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"cannot read SVG {svg}")
    image = QImage(size, size, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    renderer.render(painter)
    painter.end()
    out.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(out), "PNG"):
        raise SystemExit(f"cannot write {out}")


def main(argv: list[str]) -> int:
    target = Path(argv[1]) if len(argv) > 1 else HICOLOR
    _app = QGuiApplication.instance() or QGuiApplication([])
    for size in ICON_SIZES:
        render_png(APP_ICON, size, target / f"{size}x{size}" / "apps" / "vllm-desk.png")
    sys.stdout.write(f"wrote {len(ICON_SIZES)} PNGs under {target}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
