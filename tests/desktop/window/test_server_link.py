"""The server link as the window uses it, with the real supervisor launching the stand-in process: every
start uses the profile as the settings hold it now, a fix keeps newer Preferences edits, messages written
while the server starts go to the conversation they were written in (or come back into the message box when
the start ends without a server), a send with no server stores nothing, and a remote profile chats."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from desktop import errors
from desktop.bridge import EventBridge
from desktop.errors import ErrorBanner, FixContext
from desktop.server_states import look_of
from desktop.widgets.status_bar import ServerStatusBar
from desktop.window.first_run import FirstRunPanel
from desktop.window.main_window import MainWindow
from desktop.window.outbox import QueuedMessage
from desktop.window.server_link import RuntimeEnsurer, ServerLink
from engine.errors import DeskError, Fix
from engine.history.store import HistoryStore
from engine.paths import AppPaths
from engine.runtime.install import Progress
from engine.secrets import SecretStore, profile_key
from engine.server.profiles import ServerProfile
from engine.server.supervisor import ServerState, Supervisor
from engine.settings.store import SettingsStore
from tests.support.main_window import supervised_window
from tests.support.memory_keyring import MemoryKeyring
from tests.support.qasync_loop import qloop, run  # noqa: F401
from tests.support.standin.launch import StandinRuntime, running_standin

pytestmark = [
    pytest.mark.gui,
    pytest.mark.usefixtures("qloop"),
    pytest.mark.qt_log_ignore("This plugin does not support"),
]


def standin_profile(name: str = "Tiny", served: str = "tiny", **options: object) -> ServerProfile:
    return ServerProfile(name=name, source="hf_cache", model="org/standin", served_name=served, **options)


def with_profiles(app_paths: AppPaths, *profiles: ServerProfile, default: str = "") -> SettingsStore:
    store = SettingsStore.open(app_paths.settings_file)
    new = store.settings.model_copy(update={"profiles": list(profiles)}, deep=True)
    new.general.default_profile = default or profiles[0].name
    store.update(new)
    return store


def replace_profile(store: SettingsStore, profile: ServerProfile) -> None:
    """What Preferences do when the user edits a profile and applies."""
    profiles = [profile if p.name == profile.name else p for p in store.settings.profiles]
    store.update(store.settings.model_copy(update={"profiles": profiles}))


class HeldInstall:
    """A runtime install that waits until the test lets it finish (or fail with ``problem``)."""

    def __init__(self, problem: DeskError | None = None) -> None:
        self.gate = asyncio.Event()
        self.problem = problem
        self.calls = 0

    async def __call__(self, progress: Callable[[Progress], object]) -> None:
        self.calls += 1
        progress(Progress("install", "Installing packages (this takes a while)", 0.5))
        await self.gate.wait()
        if self.problem is not None:
            raise self.problem
        progress(Progress("done", "vLLM runtime ready", 1.0))


class InstallFailed(DeskError):
    title = "vLLM could not be installed"


@contextmanager
def linked_window(
    qtbot: QtBot,
    app_paths: AppPaths,
    supervisor: Supervisor,
    settings: SettingsStore,
    ensure_runtime: RuntimeEnsurer | None = None,
) -> Iterator[MainWindow]:
    """A window over ``supervisor`` as the app makes it, shown and restored; the server stopped after."""
    try:
        with supervised_window(qtbot, app_paths, supervisor, settings, ensure_runtime) as window:
            yield window
    finally:
        run(qtbot, supervisor.shutdown(), timeout=30)


def wait_ready(qtbot: QtBot, supervisor: Supervisor, **expected: object) -> None:
    def ready() -> bool:
        endpoint = supervisor.endpoint
        return endpoint is not None and all(getattr(endpoint, k) == v for k, v in expected.items())

    qtbot.waitUntil(ready, timeout=30_000)


def send(qtbot: QtBot, window: MainWindow, text: str) -> None:
    window.composer.editor.setPlainText(text)
    qtbot.mouseClick(window.composer.send_button, Qt.MouseButton.LeftButton)


def conversations(app_paths: AppPaths) -> dict[str, list[str]]:
    """Every conversation's title and its messages' texts, straight from the database."""
    history = HistoryStore(app_paths.history_db)
    try:
        page = history.list_conversations(limit=100)
        return {c.title: [m.text for m in history.load(c.id).branch()] for c in page.items}
    finally:
        history.close(purge=False)


# --- item 1: the profile as the settings hold it now -------------------------------------------------


def test_server_restart_uses_the_profile_as_edited_since_it_started(
    qtbot: QtBot, app_paths: AppPaths
) -> None:
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime([]))
    with linked_window(qtbot, app_paths, sup, settings) as window:
        window.start_action.trigger()
        wait_ready(qtbot, sup, max_model_len=2048)
        replace_profile(settings, standin_profile(max_model_len=1024))  # Preferences, without restarting
        window.start_action.trigger()  # Server > Start / restart
        wait_ready(qtbot, sup, max_model_len=1024)
        assert sup.endpoint is not None
        assert sup.endpoint.profile_name == "Tiny"


def test_a_one_click_fix_keeps_the_edits_made_since_the_start(qtbot: QtBot, app_paths: AppPaths) -> None:
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime([]))
    with linked_window(qtbot, app_paths, sup, settings) as window:
        window.start_action.trigger()
        wait_ready(qtbot, sup, max_model_len=2048)
        replace_profile(settings, standin_profile(max_model_len=1024))
        window.apply_fix(Fix("set_option", "Fewer sequences", "", {"max_num_seqs": 4}))
        saved = settings.settings.profile("Tiny")
        assert saved is not None
        assert (saved.max_model_len, saved.max_num_seqs) == (1024, 4)  # the newer edit was not overwritten
        wait_ready(qtbot, sup, max_model_len=1024)


def test_a_start_from_the_tray_is_what_the_server_menu_restarts(qtbot: QtBot, app_paths: AppPaths) -> None:
    from desktop.launcher.tray import LauncherActions

    settings = with_profiles(app_paths, standin_profile("Alpha", "alpha"), standin_profile("Beta", "beta"))
    sup = Supervisor(app_paths, StandinRuntime([]))
    with linked_window(qtbot, app_paths, sup, settings) as window:
        actions = LauncherActions(sup, settings, server=window.server_link)
        try:
            run(qtbot, actions.choose_profile("Beta"))
            wait_ready(qtbot, sup, model="beta")
            replace_profile(settings, standin_profile("Beta", "beta", max_model_len=1024))
            window.start_action.trigger()
            wait_ready(qtbot, sup, model="beta", max_model_len=1024)  # Beta again, as edited; not Alpha
        finally:
            actions.close()


# --- item 3: messages written while the server starts ------------------------------------------------


def test_queued_messages_go_to_the_conversation_they_were_written_in(
    qtbot: QtBot, app_paths: AppPaths
) -> None:
    history = HistoryStore(app_paths.history_db)
    first = history.create_conversation(title="First").id
    history.add_message(first, None, "user", "an earlier question")
    second = history.create_conversation(title="Second").id
    history.close()
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime(["--reply", "Queued answer."]))
    install = HeldInstall()
    with linked_window(qtbot, app_paths, sup, settings, install) as window:
        window.open_conversation(first)
        qtbot.waitUntil(lambda: window.conversation_id == first)
        window.start_action.trigger()
        qtbot.waitUntil(lambda: install.calls == 1)
        assert window.server_starting()
        send(qtbot, window, "for the first chat")
        assert [w.data.state for w in window.transcript.messages()] == ["complete", "queued"]
        window.open_conversation(second)
        qtbot.waitUntil(lambda: window.conversation_id == second)
        assert [w.data.text for w in window.transcript.messages()] == []
        window.new_action.trigger()  # Ctrl+N before the server is ready
        send(qtbot, window, "for a new chat")
        send(qtbot, window, "and more for it")
        window.new_action.trigger()
        send(qtbot, window, "for another new chat")
        window.open_conversation(first)
        qtbot.waitUntil(lambda: window.conversation_id == first)
        # Its waiting message is shown again with it.
        assert [w.data.text for w in window.transcript.messages()] == [
            "an earlier question",
            "for the first chat",
        ]
        install.gate.set()
        wait_ready(qtbot, sup)
        qtbot.waitUntil(lambda: len(window.transcript.messages()) == 3, timeout=10_000)
        qtbot.waitUntil(lambda: window.transcript.messages()[-1].data.state == "complete", timeout=10_000)
        assert window.transcript.messages()[-1].data.text == "Queued answer."
        assert window.composer.notice.text() == ""
        qtbot.waitUntil(lambda: len(conversations(app_paths)) == 4, timeout=10_000)
        qtbot.waitUntil(lambda: window.chat.running_turn(first) is None, timeout=10_000)
        stored = conversations(app_paths)
        assert stored["First"] == ["an earlier question", "for the first chat", "Queued answer."]
        assert stored["Second"] == []
        new = [texts for title, texts in stored.items() if title not in ("First", "Second")]
        # One new conversation per new chat, each with what was written in it.
        assert sorted(texts[0] for texts in new) == [
            "for a new chat\n\nand more for it",
            "for another new chat",
        ]
        assert window.conversation_id == first  # nothing moved the user elsewhere


def test_a_failed_start_puts_queued_messages_back_into_the_message_box(
    qtbot: QtBot, app_paths: AppPaths
) -> None:
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime([]))
    install = HeldInstall(InstallFailed("The package index cannot be reached."))
    with linked_window(qtbot, app_paths, sup, settings, install) as window:
        before = len(errors.reporter().reported)
        window.start_action.trigger()
        qtbot.waitUntil(lambda: install.calls == 1)
        send(qtbot, window, "first question")
        send(qtbot, window, "second question")
        window.composer.editor.setPlainText("a draft")
        install.gate.set()
        qtbot.waitUntil(lambda: not window.server_starting())
        qtbot.waitUntil(lambda: window.composer.editor.toPlainText() != "a draft")
        assert window.composer.editor.toPlainText() == "first question\n\nsecond question\n\na draft"
        assert window.composer.notice.text().startswith("The server did not start: your message was not sent")
        assert [w.data.state for w in window.transcript.messages()] == []  # no placeholder left
        assert [p.title for p in errors.reporter().reported[before:]] == ["vLLM could not be installed"]
        assert window.outbox.pending == ()
        assert conversations(app_paths) == {}


def test_stopping_a_start_puts_queued_messages_back(qtbot: QtBot, app_paths: AppPaths) -> None:
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime(["--startup-delay", "30"]))
    with linked_window(qtbot, app_paths, sup, settings) as window:
        before = len(errors.reporter().reported)
        window.start_action.trigger()
        qtbot.waitUntil(lambda: sup.state is ServerState.STARTING, timeout=10_000)
        send(qtbot, window, "are you there?")
        assert window.outbox.pending
        window.stop_server_action.trigger()
        qtbot.waitUntil(lambda: sup.state is ServerState.STOPPED, timeout=30_000)
        qtbot.waitUntil(lambda: window.composer.editor.toPlainText() == "are you there?")
        assert "stopped before it was ready" in window.composer.notice.text()
        assert errors.reporter().reported[before:] == []  # the user stopped it: not an error
        assert not window.server_starting()
        assert conversations(app_paths) == {}


def test_stop_during_the_runtime_install_cancels_the_start(qtbot: QtBot, app_paths: AppPaths) -> None:
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime([]))
    install = HeldInstall()
    with linked_window(qtbot, app_paths, sup, settings, install) as window:
        window.start_action.trigger()
        qtbot.waitUntil(lambda: install.calls == 1)
        send(qtbot, window, "hello")
        window.stop_server_action.trigger()
        qtbot.waitUntil(lambda: window.composer.editor.toPlainText() == "hello")
        install.gate.set()
        qtbot.wait(300)
        assert sup.state is ServerState.STOPPED  # the install's end did not start the server after all
        assert not window.server_starting()


# --- item 4: a send with no server -------------------------------------------------------------------


def test_a_send_with_no_server_stores_nothing(qtbot: QtBot, app_paths: AppPaths) -> None:
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime([]))
    with linked_window(qtbot, app_paths, sup, settings) as window:
        before = len(errors.reporter().reported)
        send(qtbot, window, "anyone?")
        qtbot.waitUntil(lambda: len(errors.reporter().reported) > before)
        assert [p.title for p in errors.reporter().reported[before:]] == ["No server is running"]
        assert window.composer.editor.toPlainText() == "anyone?"
        assert window.conversation_id is None
        run(qtbot, window.sidebar.model.reload())
        assert window.sidebar.model.rowCount() == 0
        assert conversations(app_paths) == {}


def test_a_refused_first_message_leaves_no_empty_conversation(qtbot: QtBot, app_paths: AppPaths) -> None:
    settings = with_profiles(app_paths, standin_profile(max_model_len=64))
    sup = Supervisor(app_paths, StandinRuntime([]))
    with linked_window(qtbot, app_paths, sup, settings) as window:
        window.start_action.trigger()
        wait_ready(qtbot, sup, max_model_len=64)
        before = len(errors.reporter().reported)
        send(qtbot, window, "word " * 400)  # far more than 64 tokens
        qtbot.waitUntil(lambda: len(errors.reporter().reported) > before, timeout=10_000)
        assert errors.reporter().reported[before].title == "The conversation is too long for the model"
        assert window.composer.editor.toPlainText() == "word " * 400
        assert window.conversation_id is None
        run(qtbot, window.sidebar.model.reload())
        assert window.sidebar.model.rowCount() == 0


# --- item 5: a remote profile ------------------------------------------------------------------------


@pytest.fixture
def keyring_memory() -> Iterator[None]:
    MemoryKeyring._store.clear()
    yield
    MemoryKeyring._store.clear()


@pytest.mark.usefixtures("keyring_memory")
@pytest.mark.parametrize("chosen_in", ["default profile", "tray"])
def test_a_remote_profile_chats_without_a_local_runtime(
    qtbot: QtBot, app_paths: AppPaths, chosen_in: str
) -> None:
    from desktop.launcher.tray import LauncherActions

    with running_standin("--reply", "Hello from afar.", model="lab-model", api_key="sk-lab") as remote:
        lab = ServerProfile(name="Lab", kind="remote", base_url=remote.base_url)
        SecretStore().set(profile_key("Lab"), "sk-lab")  # in the (in-memory) keychain only
        local = standin_profile()
        if chosen_in == "default profile":
            settings = with_profiles(app_paths, local, lab, default="Lab")
        else:
            settings = with_profiles(app_paths, local, lab)
        sup = Supervisor(app_paths, StandinRuntime(["--fail-with", "port-in-use"]))
        install = HeldInstall(InstallFailed("a remote profile must not install vLLM"))
        with linked_window(qtbot, app_paths, sup, settings, install) as window:
            actions = LauncherActions(sup, settings, server=window.server_link)
            words: list[str] = []  # what the status bar said, in order
            show = window.server_status.set_state

            def record(kind: str, text: str) -> None:
                words.append(text)
                show(kind, text)

            window.server_status.set_state = record  # type: ignore[method-assign]
            try:
                if chosen_in == "default profile":
                    window.start_action.trigger()
                else:
                    actions.choose_profile("Lab")
                wait_ready(qtbot, sup, kind="remote", model="lab-model", profile_name="Lab")
                assert install.calls == 0
                assert sup.processes() == []  # nothing launched here
                assert f"Connecting to {remote.base_url}…" in words
                assert not [w for w in words if "runtime" in w]  # nothing about a local vLLM
                send(qtbot, window, "Hi?")
                qtbot.waitUntil(
                    lambda: (
                        len(window.transcript.messages()) == 2
                        and window.transcript.messages()[1].data.state == "complete"
                    ),
                    timeout=10_000,
                )
                assert window.transcript.messages()[1].data.text == "Hello from afar."
                assert "Lab" in window.server_status.server_label.text()
            finally:
                actions.close()


# --- task I: stop then start, fixes for the profile that failed, queued messages given back ----------


def test_a_stop_right_before_a_start_ends_ready_on_the_new_profile(qtbot: QtBot, app_paths: AppPaths) -> None:
    alpha, beta = standin_profile("Alpha", "alpha"), standin_profile("Beta", "beta")
    settings = with_profiles(app_paths, alpha, beta)
    sup = Supervisor(app_paths, StandinRuntime([]))
    with linked_window(qtbot, app_paths, sup, settings) as window:
        link = window.server_link
        assert link is not None
        run(qtbot, link.start(alpha), timeout=30)
        wait_ready(qtbot, sup, model="alpha")
        calls: list[str] = []  # the order in which the supervisor is asked
        sup_start, sup_stop = sup.start, sup.stop

        async def logged_start(profile: ServerProfile) -> None:
            calls.append(f"start {profile.name}")
            await sup_start(profile)

        async def logged_stop() -> None:
            calls.append("stop")
            await sup_stop()
            calls.append("stopped")

        sup.start, sup.stop = logged_start, logged_stop  # type: ignore[method-assign]
        stop = link.stop()
        start = link.start(beta)
        assert link.starting  # the start counts from the moment it is asked for, stop or not
        run(qtbot, asyncio.wait([stop, start]), timeout=30)
        wait_ready(qtbot, sup, model="beta")
        qtbot.wait(300)  # nothing left over stops it afterwards
        assert sup.state is ServerState.READY
        assert sup.endpoint is not None
        assert sup.endpoint.model == "beta"
        assert not link.starting
        assert calls == ["stop", "stopped", "start Beta"]  # the start waited for the stop


def test_a_fix_changes_the_profile_that_failed_not_the_one_started_since(
    qtbot: QtBot, app_paths: AppPaths
) -> None:
    alpha, beta = standin_profile("Alpha", "alpha"), standin_profile("Beta", "beta")
    settings = with_profiles(app_paths, alpha, beta)
    runtime = StandinRuntime(["--fail-with", "kv-cache-too-small"])
    sup = Supervisor(app_paths, runtime)
    with linked_window(qtbot, app_paths, sup, settings) as window:
        link = window.server_link
        assert link is not None
        before = len(errors.reporter().reported)
        link.start(alpha)
        qtbot.waitUntil(lambda: len(errors.reporter().reported) > before, timeout=30_000)
        problem = errors.reporter().reported[-1]
        fix = problem.fix
        assert fix is not None
        assert fix.action == "set_option"
        # Every server fix goes through the link (one list for the window and the link).
        for action in ("set_option", "pick_free_port", "restart_server", "prepare_model"):
            assert window.fixes.handlers[action] == link.apply_fix, action
        runtime.options[:] = []
        link.start(beta)  # the user moves on to another profile before clicking the fix
        wait_ready(qtbot, sup, model="beta")
        window.apply_fix(fix, problem.context)  # as the banner's button does
        wait_ready(qtbot, sup, model="alpha")
        changed = {k: v for k, v in fix.params.items() if k in ServerProfile.model_fields}
        saved_alpha, saved_beta = settings.settings.profile("Alpha"), settings.settings.profile("Beta")
        assert saved_alpha is not None
        assert saved_beta is not None
        assert changed
        assert {k: getattr(saved_alpha, k) for k in changed} == changed
        assert saved_beta == beta  # untouched


def test_a_failed_start_gives_back_only_the_messages_of_the_chat_on_screen(
    qtbot: QtBot, app_paths: AppPaths
) -> None:
    history = HistoryStore(app_paths.history_db)
    first = history.create_conversation(title="First").id
    second = history.create_conversation(title="Second").id
    history.close()
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime(["--reply", "Later answer."]))
    install = HeldInstall(InstallFailed("The package index cannot be reached."))
    with linked_window(qtbot, app_paths, sup, settings, install) as window:
        window.open_conversation(first)
        qtbot.waitUntil(lambda: window.conversation_id == first)
        window.start_action.trigger()
        qtbot.waitUntil(lambda: install.calls == 1)
        send(qtbot, window, "for the first chat")
        window.open_conversation(second)
        qtbot.waitUntil(lambda: window.conversation_id == second)
        send(qtbot, window, "for the second chat")
        window.composer.editor.setPlainText("a draft")
        install.gate.set()
        qtbot.waitUntil(lambda: not window.server_starting())
        qtbot.waitUntil(lambda: window.composer.editor.toPlainText() != "a draft")
        # Only the second chat's message, which Send would post there; the first's stays with the first.
        assert window.composer.editor.toPlainText() == "for the second chat\n\na draft"
        notice = window.composer.notice.text()
        assert "back in the message box" in notice
        assert "1 message(s) written in other chats were not sent" in notice
        assert [w.data.state for w in window.transcript.messages()] == []
        assert [(q.conversation_id, q.text) for q in window.outbox.pending] == [(first, "for the first chat")]
        window.open_conversation(first)
        qtbot.waitUntil(lambda: window.conversation_id == first)
        assert [(w.data.text, w.data.state) for w in window.transcript.messages()] == [
            ("for the first chat", "queued")
        ]
        # The next start sends it where it was written.
        install.problem = None
        window.start_action.trigger()
        wait_ready(qtbot, sup)
        qtbot.waitUntil(
            lambda: window.chat.running_turn(first) is None and not window.outbox.pending, timeout=10_000
        )
        qtbot.waitUntil(lambda: conversations(app_paths)["First"][-1:] == ["Later answer."], timeout=10_000)
        assert conversations(app_paths) == {
            "First": ["for the first chat", "Later answer."],
            "Second": [],
        }


def test_a_queued_message_whose_send_fails_goes_ahead_of_the_draft(qtbot: QtBot, app_paths: AppPaths) -> None:
    settings = with_profiles(app_paths, standin_profile(max_model_len=64))
    sup = Supervisor(app_paths, StandinRuntime([]))
    install = HeldInstall()
    with linked_window(qtbot, app_paths, sup, settings, install) as window:
        window.start_action.trigger()
        qtbot.waitUntil(lambda: install.calls == 1)
        long_text = "far too long for this model " * 40
        send(qtbot, window, long_text)
        window.composer.editor.setPlainText("a draft")  # typed while waiting
        before = len(errors.reporter().reported)
        install.gate.set()
        wait_ready(qtbot, sup)
        qtbot.waitUntil(lambda: len(errors.reporter().reported) > before, timeout=10_000)
        qtbot.waitUntil(lambda: window.composer.editor.toPlainText() != "a draft")
        assert window.composer.editor.toPlainText() == f"{long_text}\n\na draft"  # nothing lost
        assert [w.data.state for w in window.transcript.messages()] == []  # no placeholder left
        assert window.outbox.pending == ()


def test_a_queued_new_chat_does_not_take_over_the_chat_opened_meanwhile(
    qtbot: QtBot, app_paths: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime(["--reply", "Answer."]))
    install = HeldInstall()
    with linked_window(qtbot, app_paths, sup, settings, install) as window:
        window.start_action.trigger()
        qtbot.waitUntil(lambda: install.calls == 1)
        send(qtbot, window, "written in the first new chat")
        flush = window.outbox.flush

        def flush_then_new_chat(send: Callable[[QueuedMessage], object]) -> None:
            flush(send)
            window.new_action.trigger()  # Ctrl+N just as the server became ready

        monkeypatch.setattr(window.outbox, "flush", flush_then_new_chat)
        install.gate.set()
        wait_ready(qtbot, sup)
        qtbot.waitUntil(
            lambda: "written in the first new chat" in str(conversations(app_paths)), timeout=10_000
        )
        qtbot.wait(300)
        assert window.conversation_id is None  # the second new chat stays on screen, empty
        assert window.transcript.messages() == []


def test_no_queued_bubble_is_left_among_the_messages_paged_out(qtbot: QtBot, app_paths: AppPaths) -> None:
    history = HistoryStore(app_paths.history_db)
    long = history.create_conversation(title="Long").id
    parent = None
    for i in range(120):  # far more than a page: the first message is shown by a page of its own
        parent = history.add_message(long, parent, "user" if i % 2 == 0 else "assistant", f"message {i}").id
    first_message = history.load(long).branch()[0].id
    history.close()
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime([]))
    install = HeldInstall(InstallFailed("The package index cannot be reached."))
    with linked_window(qtbot, app_paths, sup, settings, install) as window:
        window.open_conversation(long)
        qtbot.waitUntil(lambda: window.conversation_id == long)
        window.start_action.trigger()
        qtbot.waitUntil(lambda: install.calls == 1)
        send(qtbot, window, "waiting")
        window.transcript.scroll_to(first_message, "message 0")  # the newest messages lose their widgets
        assert window.transcript.message(window.outbox.pending[0].placeholder) is None
        window.outbox.return_queued("The server was stopped before it was ready")  # as a stop does
        assert window.composer.editor.toPlainText() == "waiting"
        while window.transcript.load_newer():  # the user scrolls back down
            pass
        shown = window.transcript.messages()
        assert [w.data.text for w in shown[-2:]] == ["message 118", "message 119"]  # the placeholder went too
        assert "queued" not in [w.data.state for w in shown]


# --- The link on its own (no MainWindow): the widgets it drives, the signals it gives -----------------------


@contextmanager
def link_alone(qtbot: QtBot, supervisor: Supervisor, settings: SettingsStore) -> Iterator[ServerLink]:
    status, first_run, banner = ServerStatusBar(), FirstRunPanel(), ErrorBanner()
    for widget in (status, first_run, banner):
        qtbot.addWidget(widget)
    bridge = EventBridge()
    link = ServerLink(
        supervisor, settings=settings, status=status, first_run=first_run, banner=banner, bridge=bridge
    )
    try:
        yield link
    finally:
        run(qtbot, supervisor.shutdown(), timeout=30)
        bridge.close()


def test_the_link_alone_says_ready_in_the_table_s_words(qtbot: QtBot, app_paths: AppPaths) -> None:
    settings = with_profiles(app_paths, standin_profile())
    sup = Supervisor(app_paths, StandinRuntime(["--reply", "Answer."]))
    with link_alone(qtbot, sup, settings) as link:
        assert link.status.state_label.text() == look_of(ServerState.STOPPED).words
        ready: list[bool] = []
        lines: list[str] = []
        link.ready.connect(lambda: ready.append(True))
        link.log_line.connect(lines.append)  # what the log dialog shows
        link.start()
        assert link.starting
        qtbot.waitUntil(lambda: ready == [True], timeout=30_000)
        assert link.status.state_label.text() == look_of(ServerState.READY).words
        assert link.status.state_label.property("state") == "ready"
        assert lines  # the server's log came through
        run(qtbot, link.stop())
        assert link.status.state_label.text() == look_of(ServerState.STOPPED).words


def test_the_link_alone_gives_up_and_reports_the_failed_profile_beside_its_problem(
    qtbot: QtBot, app_paths: AppPaths
) -> None:
    settings = with_profiles(app_paths, standin_profile("Alpha", "alpha"))
    sup = Supervisor(app_paths, StandinRuntime(["--fail-with", "kv-cache-too-small"]))
    with link_alone(qtbot, sup, settings) as link:
        reasons: list[str] = []
        link.gave_up.connect(reasons.append)
        before = len(errors.reporter().reported)
        link.start()
        qtbot.waitUntil(lambda: reasons != [], timeout=30_000)
        assert reasons == ["The server did not start"]
        problem = errors.reporter().reported[before]
        assert problem.context == FixContext(profile="Alpha")
        assert problem.fix is not None
        assert "failed_profile" not in problem.fix.params  # the context is not written into the fix
        assert link.failed_profile(problem.context).name == "Alpha"
