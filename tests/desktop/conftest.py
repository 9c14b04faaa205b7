"""The desktop's tests leave the application's look as they found it: a test that chose a theme (the
application's palette and sheet, desktop.theme.apply_app) hands the desktop's palette back, so the next
test's dialogs do not start in the last test's colours."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _system_look_after() -> Iterator[None]:
    yield
    from desktop import theme  # PySide6 only where a desktop test runs

    theme.restore_system_look()
