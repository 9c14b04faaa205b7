"""Help > About: the app's name, icon and version (from ``engine.__version__``, the one place it is set)."""

from __future__ import annotations

import platform

import PySide6
from PySide6.QtCore import QCoreApplication, Qt, qVersion
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QMessageBox, QWidget

from engine import APP_NAME, __version__, assets


def tr(text: str) -> str:
    return QCoreApplication.translate("about", text)


def about_text() -> str:
    return (
        f"<h3>{APP_NAME} {__version__}</h3>"
        + "<p>"
        + tr("Chat with language models on your own workstation through a managed vLLM server.")
        + "</p><p><small>"
        + tr("Qt {qt} · PySide6 {pyside} · Python {python}").format(
            qt=qVersion(), pyside=PySide6.__version__, python=platform.python_version()
        )
        + "</small></p>"
    )


def show_about(parent: QWidget | None) -> QMessageBox:
    """Open the About box (window-modal, not blocking the event loop); returns it."""
    box = QMessageBox(parent)
    box.setWindowTitle(tr("About {app}").format(app=APP_NAME))
    box.setTextFormat(Qt.TextFormat.RichText)
    box.setText(about_text())
    box.setIconPixmap(QIcon(str(assets.app_icon_svg())).pixmap(64, 64))
    box.setObjectName("aboutBox")
    box.open()
    return box
