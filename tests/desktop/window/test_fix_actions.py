"""Every one-click fix the engine (or the window) can offer does something in a real MainWindow: each action
found in the source is applied and its effect checked; none falls through to the "no handler" branch."""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import QWidget

import desktop.window.transfer_actions
from desktop.window.main_window import MainWindow
from engine.chat.engine import TurnEvent
from engine.chat.generation import GenerationSettings
from engine.errors import Fix
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.server.processes import StrayProcess
from tests.support.main_window import close_window, open_window, replies
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import Standin, running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]
ROOT = Path(__file__).resolve().parents[3]


def offered_actions() -> dict[str, Fix]:
    """Every ``Fix(...)`` written in engine/ and desktop/, by action, with its label, hint and params."""
    found: dict[str, Fix] = {}
    for source in sorted([*(ROOT / "engine").rglob("*.py"), *(ROOT / "desktop").rglob("*.py")]):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Fix"):
                continue
            values = dict(zip(("action", "label", "hint", "params"), node.args, strict=False))
            values.update({k.arg: k.value for k in node.keywords if k.arg})
            action = values.get("action")
            if isinstance(action, ast.Constant) and isinstance(action.value, str):
                # A hint made at run time (a variable): a typical one instead.
                text = _text(values.get("hint")) or "Name the model: vllm-desk chat --model NAME"
                found.setdefault(action.value, Fix(action.value, action.value, text))
    return found


def _text(node: ast.expr | None) -> str:
    """A string literal's text; an f-string's with "X" for what is filled in at run time."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        return "".join(_text(part) if isinstance(part, ast.Constant) else "X" for part in node.values)
    return ""


OFFERED = offered_actions()


@pytest.fixture(scope="module")
def server() -> Iterator[Standin]:
    with running_standin("--reply", "Fine, thanks.") as standin:
        yield standin


@contextmanager
def shown_window(qtbot, app_paths: AppPaths, server: Standin) -> Iterator[MainWindow]:  # type: ignore[no-untyped-def]
    # Closed inside the test: pytest-qt deletes its widgets before fixtures are torn down.
    made = open_window(qtbot, app_paths, server.endpoint)
    try:
        yield made
    finally:
        for dialog in (
            getattr(made, "preferences_dialog", None),
            made.log_dialog,
            made.fix_actions.strays_dialog,
        ):
            if dialog is not None:
                dialog.close()
        close_window(qtbot, made)


def send(qtbot, window: MainWindow, text: str) -> None:  # type: ignore[no-untyped-def]
    count = len(replies(window))
    window.composer.editor.setPlainText(text)
    qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: len(replies(window)) == count + 1 and replies(window)[-1].data.state == "complete",
        timeout=20000,
    )


def preferences_at(page: str, field: str | None = None) -> Callable[[Any, MainWindow, Fix], None]:
    def check(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
        window.apply_fix(fix)
        dialog = window.preferences_dialog  # type: ignore[attr-defined]
        assert dialog.isVisible()
        assert dialog.stack.currentWidget() is dialog.page_by_name[page]
        if field is not None:
            assert dialog.focused_field is not None
            assert dialog.focused_field.objectName() in (f"field_{field}", field)

    return check


def check_command(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    QGuiApplication.clipboard().clear()
    window.apply_fix(fix)
    copied = QGuiApplication.clipboard().text()
    assert copied
    assert copied in fix.hint
    assert "Run:" not in copied  # the command alone, ready to paste
    assert copied in window.composer.notice.text()


def check_undo_delete(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    send(qtbot, window, "Keep me")
    conversation_id = window.conversation_id
    assert conversation_id is not None
    window.conversations.delete([conversation_id])
    qtbot.waitUntil(lambda: window.sidebar.model.rowCount() == 0, timeout=5000)
    window.apply_fix(Fix("undo_delete", "Undo", params={"conversation_id": conversation_id}))
    qtbot.waitUntil(lambda: window.conversation_id == conversation_id, timeout=5000)
    assert window.sidebar.model.rowCount() == 1


def check_undo_delete_message(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    send(qtbot, window, "Keep this message")
    first = window.transcript.messages()[0]
    token = run(qtbot, window.store.call(HistoryStore.delete_message, int(first.data.id)))
    window.apply_fix(Fix("undo_delete_message", "Undo", params={"token": token}))
    qtbot.waitUntil(lambda: len(window.transcript.messages()) == 2, timeout=5000)
    assert window.transcript.messages()[0].data.text == "Keep this message"


def check_retry(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    send(qtbot, window, "Hello")
    window.apply_fix(fix)
    qtbot.waitUntil(lambda: replies(window)[-1].branch_label.text() == "2/2", timeout=20000)
    qtbot.waitUntil(lambda: replies(window)[-1].data.state == "complete", timeout=20000)


def check_drop_oldest(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    send(qtbot, window, "An early turn")
    window.composer.editor.setPlainText("A long question")
    window.apply_fix(Fix("drop_oldest_turns", "Leave out", params={"turns": 1}))
    # The re-sent question's reply is streamed to its end: a window closed mid-reply is another test's case.
    qtbot.waitUntil(
        lambda: len(replies(window)) == 2 and replies(window)[-1].data.state == "complete", timeout=20000
    )
    assert window.composer.editor.toPlainText() == ""
    assert [w.data.text for w in window.transcript.messages()][2] == "A long question"


def check_completion_mode(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    send(qtbot, window, "Once upon a time")
    conversation_id = window.conversation_id
    assert conversation_id is not None
    window.apply_fix(fix)
    qtbot.waitUntil(lambda: replies(window)[-1].branch_label.text() == "2/2", timeout=20000)
    settings = run(qtbot, window.store.conversation(conversation_id)).settings
    assert GenerationSettings.parse(settings).mode == "completion"


def check_open_preferences(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    window.apply_fix(fix)
    assert window.preferences_dialog.isVisible()  # type: ignore[attr-defined]


def check_remember_for_session(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    preferences_at("profiles", "api_key")(qtbot, window, fix)
    assert window.preferences_dialog.session_only.isChecked()  # type: ignore[attr-defined]


def check_show_log(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    window.apply_fix(fix)
    assert window.log_dialog is not None
    assert window.log_dialog.isVisible()
    window.log_dialog.close()


def check_show_processes(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    async def none() -> list[StrayProcess]:
        return []

    async def one() -> list[StrayProcess]:
        return [StrayProcess(pid=4242, name="VLLM::EngineCore", cmdline="VLLM::EngineCore", age_s=60, sid=1)]

    window.fix_actions.find_strays = none
    window.apply_fix(fix)
    qtbot.waitUntil(lambda: "No vLLM processes" in window.composer.notice.text(), timeout=5000)
    window.fix_actions.find_strays = one
    window.apply_fix(fix)
    qtbot.waitUntil(lambda: window.fix_actions.strays_dialog is not None, timeout=5000)
    assert window.fix_actions.strays_dialog.rows()[0][0] == "4242"
    window.fix_actions.strays_dialog.close()


class UrlCatcher(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def check_data_folder(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    catcher = UrlCatcher()
    QDesktopServices.setUrlHandler("file", catcher, "open")
    try:
        window.apply_fix(fix)
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [Path(u.toLocalFile()) for u in catcher.urls] == [window.store.path.parent]
    assert str(window.store.path.parent) in window.composer.notice.text()


def check_import(qtbot, window: MainWindow, fix: Fix, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    asked: list[str] = []

    class Chooser:
        @staticmethod
        def getOpenFileNames(_parent: QWidget, title: str, *_args: object) -> tuple[list[str], str]:
            asked.append(title)
            return [], ""

    monkeypatch.setattr(desktop.window.transfer_actions, "QFileDialog", Chooser)
    window.apply_fix(fix)
    assert asked == ["Import conversations"]


def check_export(qtbot, window: MainWindow, fix: Fix) -> None:  # type: ignore[no-untyped-def]
    send(qtbot, window, "Export me")
    window.apply_fix(fix)
    qtbot.waitUntil(lambda: window.transfer.dialog is not None and window.transfer.dialog.isVisible())
    window.transfer.dialog.reject()


EFFECTS: dict[str, Callable[..., None]] = {
    "undo_delete": check_undo_delete,
    "undo_delete_message": check_undo_delete_message,
    "retry_turn": check_retry,
    "drop_oldest_turns": check_drop_oldest,
    "set_mode_completion": check_completion_mode,
    "use_completion_mode": check_completion_mode,
    "open_preferences": check_open_preferences,
    "remember_for_session": check_remember_for_session,
    "show_log": check_show_log,
    "show_processes": check_show_processes,
    "choose_data_dir": check_data_folder,
    "choose_import_file": check_import,
    "choose_export_path": check_export,
    "edit_profile": preferences_at("profiles"),
    "raise_gpu_memory_utilization": preferences_at("profiles", "gpu_memory_utilization"),
    "edit_endpoint": preferences_at("profiles", "base_url"),
    "edit_api_key": preferences_at("profiles", "api_key"),
    "set_api_key": preferences_at("profiles", "api_key"),
    "set_hf_token": preferences_at("models", "hf_token"),
    "choose_model": preferences_at("models"),
    "choose_quantized_model": preferences_at("models"),
    "choose_model_folder": preferences_at("models"),
    "edit_repo_id": preferences_at("models", "repo_id"),
    "edit_generation_settings": preferences_at("generation"),
    "choose_embedder": preferences_at("documents", "embedder"),
    # No supervisor in this window (a server someone else runs): the server's fixes open its profile.
    "set_option": preferences_at("profiles"),
    "lower_gpu_memory_utilization": preferences_at("profiles"),
    "pick_free_port": preferences_at("profiles"),
    "retry": preferences_at("profiles"),
    "restart_server": preferences_at("profiles"),
    "start_server": preferences_at("profiles"),
    "prepare_model": preferences_at("profiles"),
    "install_runtime": check_command,
    "update_app": check_command,
    "reinstall": check_command,
    "install_desktop": check_command,
    "pass_exec": check_command,
    "edit_command": check_command,
    "check_permissions": check_command,
    "list_collections": check_command,
    "open_server_log": check_command,
    "prepare_embedder": check_command,
    "reindex_collection": check_command,
}


def test_every_offered_fix_has_a_checked_effect() -> None:
    assert len(OFFERED) > 30  # the scan found the engine's fixes
    assert sorted(set(OFFERED) - set(EFFECTS)) == []


@pytest.mark.parametrize("action", sorted(OFFERED))
def test_the_fix_does_what_it_says(qtbot, app_paths, server, action: str, caplog, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    fix = OFFERED[action]
    check = EFFECTS[action]
    with shown_window(qtbot, app_paths, server) as window:
        assert action in window.fixes
        with caplog.at_level(logging.WARNING, logger="desktop.window.main_window"):
            if check is check_import:
                check_import(qtbot, window, fix, monkeypatch)
            else:
                check(qtbot, window, fix)
    assert "no handler for fix" not in caplog.text


def test_a_server_fix_with_params_puts_the_cursor_in_that_option(qtbot, app_paths, server) -> None:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, app_paths, server) as window:
        window.apply_fix(Fix("set_option", "Use 10,912 tokens", params={"max_model_len": 10912}))
        focused = window.preferences_dialog.focused_field  # type: ignore[attr-defined]
        assert focused.objectName() == "field_max_model_len"


def test_no_chat_template_is_fixed_from_the_banner_in_completion_mode(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    with running_standin("--no-chat-template", "--reply", "there was a dragon.") as base_model:
        window = open_window(qtbot, app_paths, base_model.endpoint)
        try:
            window.composer.editor.setPlainText("Once upon a time")
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            banner = window.banner
            qtbot.waitUntil(lambda: banner.isVisible() and banner.problem is not None, timeout=20000)
            assert banner.problem is not None
            assert banner.problem.fix is not None
            assert banner.problem.fix.action == "set_mode_completion"
            # The banner comes with the turn's error; the failed reply ends a little later (after the turn's
            # "finished" and a reload of the tree). The fix regenerates the last reply only once it has ended.
            qtbot.waitUntil(
                lambda: replies(window)[-1].data.state == "error" and not replies(window)[-1].streaming,
                timeout=20000,
            )
            qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(
                lambda: (
                    replies(window)[-1].data.state == "complete"
                    and replies(window)[-1].data.text == "there was a dragon."
                ),
                timeout=20000,
            )
            assert replies(window)[-1].branch_label.text() == "2/2"  # a new version of the failed reply
            assert window.conversation_id is not None
            stored = run(qtbot, window.store.conversation(window.conversation_id)).settings
            assert stored["mode"] == "completion"
        finally:
            close_window(qtbot, window)


def click_the_fix_at_the_turn_error(qtbot, window: MainWindow, text: str, action: str) -> int:  # type: ignore[no-untyped-def]
    """Send ``text``; at the turn's first error the user clicks the banner's fix (``action``) right then:
    the error is shown before its reply is saved, so the failed reply is still running (its widget still
    streaming). Returns that reply's id."""
    banner = window.banner
    clicked: list[int | None] = []

    def click_at_the_error(event: TurnEvent) -> None:
        if event.kind != "error" or clicked:
            return
        running = window.chat.running_turn(event.conversation_id)
        clicked.append(running.reply_id if running is not None else None)
        assert banner.problem is not None
        assert banner.problem.fix is not None
        assert banner.problem.fix.action == action
        qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)

    # Subscribed after the window: its banner already shows the error when this runs.
    window.chat.turn_events.connect(click_at_the_error)
    window.composer.editor.setPlainText(text)
    qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(clicked), timeout=20000)
    assert clicked[0] is not None  # the click came while the failed turn ran
    return clicked[0]


def test_completion_mode_clicked_before_the_failed_reply_ends(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    with running_standin("--no-chat-template", "--reply", "there was a dragon.") as base_model:
        window = open_window(qtbot, app_paths, base_model.endpoint)
        try:
            failed_reply = click_the_fix_at_the_turn_error(
                qtbot, window, "Once upon a time", "set_mode_completion"
            )
            qtbot.waitUntil(
                lambda: (
                    len(replies(window)) == 1
                    and replies(window)[-1].data.state == "complete"
                    and replies(window)[-1].data.text == "there was a dragon."
                ),
                timeout=20000,
            )
            assert replies(window)[-1].branch_label.text() == "2/2"  # a new version of the failed reply
            conversation_id = window.conversation_id
            assert conversation_id is not None
            tree = run(qtbot, window.store.load(conversation_id))
            assert tree.siblings(failed_reply) == [failed_reply, replies(window)[-1].data.id]
            assert tree.message(failed_reply).state == "failed"
            assert tree.conversation.settings["mode"] == "completion"
            assert "Completion mode: the model continues" in window.composer.notice.text()
        finally:
            close_window(qtbot, window)


def test_try_again_clicked_before_the_failed_reply_ends(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    with running_standin("--fault", "http-500") as failing:
        window = open_window(qtbot, app_paths, failing.endpoint)
        try:
            failed_reply = click_the_fix_at_the_turn_error(qtbot, window, "Hello", "retry_turn")
            # Tried again: a second version of that reply, which this server fails too.
            qtbot.waitUntil(
                lambda: (
                    len(replies(window)) == 1
                    and replies(window)[-1].branch_label.text() == "2/2"
                    and replies(window)[-1].data.state == "error"
                ),
                timeout=20000,
            )
            conversation_id = window.conversation_id
            assert conversation_id is not None
            qtbot.waitUntil(lambda: window.chat.running_turn(conversation_id) is None, timeout=10000)
            tree = run(qtbot, window.store.load(conversation_id))
            assert tree.siblings(failed_reply) == [failed_reply, replies(window)[-1].data.id]
            assert [tree.message(m).state for m in tree.siblings(failed_reply)] == ["failed", "failed"]
        finally:
            close_window(qtbot, window)


def test_an_unknown_fix_still_says_what_to_do(qtbot, app_paths, server, caplog) -> None:  # type: ignore[no-untyped-def]
    with shown_window(qtbot, app_paths, server) as window:
        with caplog.at_level(logging.WARNING, logger="desktop.window.main_window"):
            window.apply_fix(Fix("from_a_newer_engine", "Do it", "Run the newer thing."))
        assert "no handler for fix from_a_newer_engine" in caplog.text
        assert window.composer.notice.text() == "Run the newer thing."


# --- Esc stops a reply from anywhere in the window -----------------------------------------------------


def test_esc_stops_the_reply_with_focus_in_the_transcript(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    with running_standin("--reply-tokens", "2000", "--tokens-per-second", "40") as slow:
        window = open_window(qtbot, app_paths, slow.endpoint)
        try:
            assert not window.stop_action.isEnabled()  # nothing runs: Esc is left alone
            window.activateWindow()
            qtbot.waitUntil(window.isActiveWindow, timeout=5000)
            window.composer.editor.setPlainText("Count for me")
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            qtbot.waitUntil(
                lambda: len(replies(window)) == 1 and len(replies(window)[0].data.text) > 20, timeout=10000
            )
            assert window.stop_action.isEnabled()
            # In the search box with text, Esc belongs to the box: the reply goes on.
            search = window.sidebar.search_box
            search.setFocus()
            search.setText("count")
            qtbot.keyClick(search, Qt.Key.Key_Escape)
            qtbot.wait(200)
            assert replies(window)[0].streaming
            search.clear()
            window.transcript.setFocus()
            qtbot.waitUntil(window.transcript.hasFocus, timeout=5000)
            qtbot.keyClick(window.transcript, Qt.Key.Key_Escape)
            reply = replies(window)[0]
            qtbot.waitUntil(lambda: not reply.streaming, timeout=5000)
            assert reply.data.state == "stopped"
            assert not window.stop_action.isEnabled()
        finally:
            close_window(qtbot, window)


# --- Preferences: the Generation page offers the model chosen on the Models page ----------------------


def test_generation_page_lists_a_model_chosen_meanwhile(qtbot, app_paths: AppPaths, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from desktop.preferences.dialog import PreferencesDialog
    from engine.secrets import SecretStore
    from engine.server.profiles import ServerProfile
    from engine.settings.store import SettingsStore
    from tests.support.memory_keyring import MemoryKeyring

    store = SettingsStore.open(app_paths.settings_file)
    mine = ServerProfile(name="Mine", source="hf_cache", model="org/old")
    store.update(store.settings.model_copy(update={"profiles": [mine]}))
    dialog = PreferencesDialog(store, paths=app_paths, gpus=[], secrets=SecretStore(backend=MemoryKeyring()))
    qtbot.addWidget(dialog)
    dialog.show()
    choices = dialog.generation_page.model_choice

    def offered() -> list[str]:
        return [choices.itemText(i) for i in range(choices.count())]

    assert mine.served_model_name in offered()
    models = dialog.models_page
    assert models.add_repo("Qwen/Qwen3-0.6B")
    models.profile_choice.setCurrentText("Mine")
    models.use_selected()
    chosen = dialog.draft.profile("Mine")
    assert chosen is not None
    assert chosen.served_model_name != mine.served_model_name
    assert chosen.served_model_name in offered()
    # A profile edited meanwhile (its served name here) is there when the user goes to the page.
    dialog.draft.profiles = [chosen.model_copy(update={"served_name": "renamed-model"})]
    dialog.nav.setCurrentRow(list(dialog.pages).index("Generation"))
    assert "renamed-model" in offered()
    with pytest.raises(ValueError, match="no page called “Fonts”"):
        dialog.show_page("Fonts")


# --- With a supervisor: the server's fixes start the server ----------------------------------------------


def test_with_a_supervisor_the_server_fixes_start_the_chosen_profile(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    from tests.desktop.test_app import close_app, configure, start_app
    from tests.support.standin.launch import StandinRuntime

    configure(app_paths, start_with_app=False)
    parts = start_app(qtbot, app_paths, StandinRuntime([]))
    try:
        window = parts.window
        assert window.server_status.state_label.property("state") == "stopped"
        # The built-in model's preparation failed ("Try again"): it starts the server again.
        window.apply_fix(Fix("prepare_model", "Try again", "Check the network connection to PyPI."))
        qtbot.waitUntil(lambda: window.server_status.state_label.property("state") == "ready", timeout=20000)
        assert not hasattr(window, "preferences_dialog")  # started, not sent to the profile's settings
    finally:
        close_app(qtbot, parts)


def test_completion_mode_is_for_the_conversation_that_failed(qtbot, app_paths: AppPaths) -> None:  # type: ignore[no-untyped-def]
    history = HistoryStore(app_paths.history_db)
    other = history.create_conversation(title="Other").id
    history.add_message(other, None, "user", "a question")
    history.close()
    with running_standin("--no-chat-template", "--reply", "there was a dragon.") as base_model:
        window = open_window(qtbot, app_paths, base_model.endpoint)
        try:
            window.new_chat()
            window.composer.editor.setPlainText("Once upon a time")
            qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)
            banner = window.banner
            qtbot.waitUntil(lambda: banner.isVisible() and banner.problem is not None, timeout=20000)
            failed = window.conversation_id
            assert failed is not None
            assert failed != other
            qtbot.waitUntil(lambda: window.chat.running_turn(failed) is None, timeout=10000)
            window.open_conversation(other)  # the user moves on before clicking the fix
            qtbot.waitUntil(lambda: window.conversation_id == other)
            qtbot.mouseClick(banner.fix_button, Qt.MouseButton.LeftButton)
            # The notice is the fix's last step (where it would otherwise regenerate the reply on screen).
            qtbot.waitUntil(lambda: "Completion mode is on" in window.composer.notice.text(), timeout=10000)
            qtbot.wait(500)  # and nothing starts after it
            assert run(qtbot, window.store.conversation(failed)).settings.get("mode") == "completion"
            assert run(qtbot, window.store.conversation(other)).settings.get("mode") != "completion"
            # Nothing was regenerated in the conversation on screen, nor in the one that failed.
            assert [w.data.text for w in window.transcript.messages()] == ["a question"]
            history = HistoryStore(app_paths.history_db)
            try:
                assert len(history.load(failed).messages) == 2
                assert len(history.load(other).messages) == 1
            finally:
                history.close(purge=False)
        finally:
            close_window(qtbot, window)
