"""The one place where problems become words on screen.

Engine problems (:class:`engine.errors.DeskError`) are shown with their own sentence and, where they carry
one, a button for their :class:`~engine.errors.Fix`. Anything else is a bug: it is logged with its traceback
and shown once as a short sentence; the app keeps running. :func:`install_excepthook` routes uncaught
exceptions (Qt slots, asyncio callbacks) here too.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget

from desktop import theme
from desktop.labels import WrappingLabel
from engine.errors import DeskError, Fix

log = logging.getLogger(__name__)
TITLE_SHARE = 4  # a banner title takes at most a quarter of the banner's width, then wraps


def tr(text: str) -> str:
    return QCoreApplication.translate("errors", text)


@dataclass(frozen=True)
class FixContext:
    """What a problem's fix is for, kept beside the fix (never written into the engine's exception): the
    conversation whose turn failed, the server profile whose start failed."""

    conversation_id: int | None = None
    profile: str = ""


@dataclass(frozen=True)
class Problem:
    """What the user sees: a title, a sentence, maybe a fix, and details for those who want them."""

    title: str
    message: str
    fix: Fix | None = None
    details: str = ""
    unexpected: bool = False
    error: BaseException | None = field(default=None, compare=False, repr=False)  # what was raised
    context: FixContext = FixContext()  # what the fix acts on
    notice: bool = False  # not a problem but news of something done (a delete, with its Undo): calm look


def describe(exc: BaseException, context: FixContext | None = None) -> Problem:
    """Turn any exception into a :class:`Problem` (a DeskError speaks for itself; the rest is a bug);
    ``context`` says what its fix is for."""
    if isinstance(exc, DeskError):
        return Problem(
            exc.title, exc.message, exc.fix, exc.details, error=exc, context=context or FixContext()
        )
    return Problem(
        tr("Something unexpected went wrong"),
        tr(
            "vLLM Desk hit an internal error ({kind}). It was written to the log; the app keeps running."
        ).format(kind=type(exc).__name__),
        None,
        f"{type(exc).__name__}: {exc}",
        unexpected=True,
        error=exc,
    )


class ErrorReporter(QObject):
    """Receives every problem of the GUI and hands it to whoever shows it (the main window's banner).

    Unexpected exceptions are logged with their traceback and shown only once per kind and message.
    """

    problem = Signal(object)  # Problem

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._seen: set[tuple[str, str]] = set()
        self.reported: list[Problem] = []

    def report(self, exc: BaseException, context: FixContext | None = None) -> None:
        problem = describe(exc, context)
        if problem.unexpected:
            log.error("unexpected error", exc_info=(type(exc), exc, exc.__traceback__))
            key = (type(exc).__name__, str(exc))
            if key in self._seen:
                return
            self._seen.add(key)
        else:
            log.info("problem shown: %s", problem.message)
        self.reported.append(problem)
        self.problem.emit(problem)


_reporter: ErrorReporter | None = None


def reporter() -> ErrorReporter:
    """The application's reporter (created on first use)."""
    global _reporter
    if _reporter is None:
        _reporter = ErrorReporter()
    return _reporter


def report(exc: BaseException, context: FixContext | None = None) -> None:
    """Show ``exc``; ``context``: what its fix is for (the conversation, the server profile)."""
    reporter().report(exc, context)


def install_excepthook(target: ErrorReporter | None = None) -> Callable[[], None]:
    """Send uncaught exceptions (and asyncio's unhandled task errors) to the reporter; returns an undo."""
    rep = target or reporter()
    previous = sys.excepthook

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if issubclass(kind, KeyboardInterrupt):
            previous(kind, exc, tb)
            return
        rep.report(exc.with_traceback(tb))

    sys.excepthook = hook
    loop: asyncio.AbstractEventLoop | None
    try:
        loop = asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        loop = None
    previous_handler = loop.get_exception_handler() if loop else None

    def loop_handler(lp: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        if isinstance(exc, BaseException) and not isinstance(exc, asyncio.CancelledError):
            rep.report(exc)
        else:
            log.warning("asyncio: %s", context.get("message"))

    if loop is not None:
        loop.set_exception_handler(loop_handler)

    def undo() -> None:
        sys.excepthook = previous
        if loop is not None and not loop.is_closed():
            loop.set_exception_handler(previous_handler)

    return undo


class ErrorBanner(QFrame):
    """A calm strip above the composer: the problem in words, its fix as one button, a close button."""

    fix_requested = Signal(object)  # Fix
    fix_chosen = Signal(object, object)  # Fix, FixContext: the same click, with what the fix is for

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(theme.banner_style(theme.app_is_dark()))  # again for each problem shown
        self.setAccessibleName(tr("Problem"))
        self._title = QLabel(self)
        self._title.setObjectName("errorTitle")
        self._title.setWordWrap(True)  # two lines in a narrow window rather than a wider one
        self._text = WrappingLabel(self)
        self._text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.fix_button = QPushButton(self)
        self.fix_button.setAccessibleName(tr("Fix the problem"))
        self.fix_button.clicked.connect(self._on_fix)
        self.close_button = QToolButton(self)
        self.close_button.setText("✕")
        self.close_button.setAccessibleName(tr("Dismiss the problem"))
        self.close_button.setToolTip(tr("Dismiss"))
        self.close_button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(self._title)
        layout.addWidget(self._text, 1)
        layout.addWidget(self.fix_button)
        layout.addWidget(self.close_button)
        self._fix: Fix | None = None
        self._context = FixContext()
        self.problem: Problem | None = None
        self._title_wide = 0  # the title's width on one line
        self.hide()

    @property
    def text(self) -> str:
        return self._text.text()

    def show_problem(self, problem: Problem | BaseException) -> None:
        if isinstance(problem, BaseException):  # an engine problem handed over as it was raised
            problem = describe(problem)
        self.problem = problem
        # The look of its kind, in the theme of now (it may have changed since). Not from the banner's own
        # palette: its sheet's background has made that light or dark for good.
        self.setStyleSheet(theme.banner_style(theme.app_is_dark(), notice=problem.notice))
        self.setAccessibleName(tr("Notice") if problem.notice else tr("Problem"))
        self._fix = problem.fix
        self._context = problem.context
        self._title.setText(f"<b>{problem.title}</b>")
        # On one line where there is room (a wrapped label asks for little width); two in a narrow window.
        bold = self._title.font()
        bold.setBold(True)
        self._title_wide = QFontMetrics(bold).horizontalAdvance(problem.title) + 8
        self._fit_title()
        self._text.setText(problem.message)
        self._text.setToolTip(problem.details[-2000:] if problem.details else "")
        self.fix_button.setVisible(problem.fix is not None)
        if problem.fix is not None:
            self.fix_button.setText(problem.fix.label)
            self.fix_button.setToolTip(problem.fix.hint)
        self.show()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_title()

    def _fit_title(self) -> None:
        self._title.setMinimumWidth(min(self._title_wide, max(80, self.width() // TITLE_SHARE)))

    def dismiss(self) -> None:
        self.problem = None
        self._fix = None
        self.hide()

    def _on_fix(self) -> None:
        fix, context = self._fix, self._context
        if fix is not None:
            self.dismiss()
            self.fix_requested.emit(fix)
            self.fix_chosen.emit(fix, context)
