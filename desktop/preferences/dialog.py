"""The preferences dialog: Models, Server profiles, Generation presets, Appearance and behaviour.

Every page edits a draft copy of the settings; nothing changes until OK or Apply (keys included), and
Cancel throws the draft away, so it leaves everything as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from desktop.preferences.appearance_page import AppearancePage
from desktop.preferences.documents_page import DocumentsPage
from desktop.preferences.form import ERROR_STYLE, tr
from desktop.preferences.generation_page import GenerationPage
from desktop.preferences.models_page import ModelsPage
from desktop.preferences.profiles_page import ProfilesPage
from desktop.preferences.tools_page import ToolsPage
from engine.errors import DeskError
from engine.hardware import GpuInfo, detect_gpus
from engine.paths import AppPaths
from engine.secrets import KeychainUnavailable, SecretStore, profile_key
from engine.server.profiles import ServerProfile
from engine.settings.store import SettingsStore

# Pages by name, for whoever opens the dialog at one of them (the main window's one-click fixes).
PAGE_NAMES = ("models", "profiles", "generation", "appearance", "tools", "documents")


class PreferencesDialog(QDialog):
    """Preferences over a :class:`SettingsStore`.

    ``paths`` locates the built-in model; ``secrets`` is the keychain (default: the system one); ``gpus``
    defaults to :func:`engine.hardware.detect_gpus`. ``running_profile`` returns the name of the profile whose
    server runs now (or ``None``) and ``restart_server(profile)`` restarts it: with both, changing the running
    profile offers "Restart server now".
    """

    def __init__(
        self,
        store: SettingsStore,
        *,
        paths: AppPaths,
        secrets: SecretStore | None = None,
        gpus: list[GpuInfo] | None = None,
        running_profile: Callable[[], str | None] | None = None,
        restart_server: Callable[[ServerProfile], object] | None = None,
        tools_manager: Any = None,
        parent: QWidget | None = None,
        history: Any = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(tr("Preferences"))
        self.resize(980, 700)
        self.store = store
        self.secrets = secrets or SecretStore()
        self.draft = store.settings.model_copy(deep=True)
        self.pending_secrets: dict[str, str | None] = {}
        self._running_profile = running_profile
        self._restart_server = restart_server
        self._restart_target: ServerProfile | None = None

        gpus = detect_gpus() if gpus is None else gpus
        self.models_page = ModelsPage(
            self.draft,
            paths,
            gpus,
            self.secrets,
            self.pending_secrets,
        )
        self.profiles_page = ProfilesPage(self.draft, self.secrets, self.pending_secrets)
        # The Generation page keeps this list: it is refilled in place when the profiles' models change.
        self._served = self._served_models()
        self.generation_page = GenerationPage(self.draft, self._served)
        self.appearance_page = AppearancePage(self.draft, store.overridden_keys)
        # MCP servers (saved at once, in tools.toml; ``tools_manager``: the window's running servers;
        # ``history``: the window's AsyncHistoryStore, which carries a server's rename over to the chats).
        self.tools_page = ToolsPage(paths, self.secrets, tools_manager, history=history)
        self.finished.connect(lambda _result: self.tools_page.close_servers())
        # Which embedding model documents use (its profiles come from the draft: reloaded when shown).
        self.documents_page = DocumentsPage(self.draft, paths, gpus)
        self.pages: dict[str, QWidget] = {
            tr("Models"): self.models_page,
            tr("Server profiles"): self.profiles_page,
            tr("Generation"): self.generation_page,
            tr("Appearance and behaviour"): self.appearance_page,
            tr("Tools"): self.tools_page,
            tr("Documents"): self.documents_page,
        }
        self.page_by_name: dict[str, QWidget] = dict(zip(PAGE_NAMES, self.pages.values(), strict=True))
        self.focused_field: QWidget | None = None  # the field show_page() put the cursor in

        self.nav = QListWidget()
        self.nav.setObjectName("pages")
        self.nav.setAccessibleName(tr("Preferences pages"))
        self.nav.setFixedWidth(200)
        self.nav.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.nav.setSpacing(3)  # room around each page's name (a sheet's item padding is not laid out)
        self.stack = QStackedWidget()
        for title, page in self.pages.items():
            self.nav.addItem(title)
            self.stack.addWidget(page)
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.currentRowChanged.connect(self._page_shown)
        self.nav.setCurrentRow(0)

        self.problem = QLabel()
        self.problem.setObjectName("apply_problem")
        self.problem.setStyleSheet(ERROR_STYLE)
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.session_only = QCheckBox(tr("Remember keys for this session only (no keychain works here)"))
        self.session_only.setObjectName("session_only")
        self.session_only.setVisible(bool(self.secrets.keychain_problem()))
        self.restart_bar = QFrame()
        self.restart_bar.setFrameShape(QFrame.Shape.StyledPanel)
        bar = QHBoxLayout(self.restart_bar)
        self.restart_label = QLabel()
        bar.addWidget(self.restart_label, 1)
        self.restart_button = QPushButton(tr("Restart server now"))
        bar.addWidget(self.restart_button)
        self.restart_bar.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Apply
            | QDialogButtonBox.StandardButton.Cancel
        )

        body = QHBoxLayout()
        body.addWidget(self.nav)
        body.addWidget(self.stack, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(body, 1)
        layout.addWidget(self.problem)
        layout.addWidget(self.session_only)
        layout.addWidget(self.restart_bar)
        layout.addWidget(self.buttons)

        self.buttons.accepted.connect(self._ok)
        self.buttons.rejected.connect(self.reject)
        self.apply_button.clicked.connect(self.apply)
        self.restart_button.clicked.connect(self._restart)
        self.models_page.model_chosen.connect(self._model_chosen)
        self.profiles_page.profiles_changed.connect(self.models_page.reload_profiles)
        self.profiles_page.profiles_changed.connect(self.refresh_models)
        self.profiles_page.form.edited.connect(self._recheck)
        self.generation_page.form.edited.connect(self._recheck)

    @property
    def apply_button(self) -> QPushButton:
        button = self.buttons.button(QDialogButtonBox.StandardButton.Apply)
        assert button is not None
        return button

    def show_page(self, name: str, field: str | None = None) -> QWidget | None:
        """Show the page ``name`` (one of :data:`PAGE_NAMES`, or its title) and put the cursor in ``field``
        (e.g. "gpu_memory_utilization", "api_key", "hf_token") when that page shows it. Returns the field."""
        page = self.page_by_name.get(name) or self.pages.get(name)
        if page is None:
            raise ValueError(f"Preferences has no page called “{name}”; pages: {', '.join(PAGE_NAMES)}.")
        self.nav.setCurrentRow(self.stack.indexOf(page))
        self.focused_field = None
        if field:
            widget = page.findChild(QWidget, f"field_{field}") or page.findChild(QWidget, field)
            if widget is not None:
                widget.setFocus()
                self.focused_field = widget
        return self.focused_field

    def refresh_models(self) -> None:
        """Offer the profiles' current models on the Generation page (a model chosen meanwhile included)."""
        served = self._served_models()
        if served != self._served:
            self._served = served
            self.generation_page.set_models(served)

    def _served_models(self) -> list[str]:
        return [p.served_model_name for p in self.draft.profiles]

    def _page_shown(self, row: int) -> None:
        if self.stack.widget(row) is self.generation_page:
            self.refresh_models()
        elif self.stack.widget(row) is self.documents_page:
            self.documents_page.reload()

    def apply(self) -> bool:
        """Save the draft and the keys; ``False`` (with the reason shown) if something is invalid."""
        for page in (self.profiles_page, self.generation_page):
            if page.invalid:
                self._show_problem(tr("Not saved. ") + page.invalid)
                return False
        running = self._running_profile() if self._running_profile else None
        before = self.store.settings.profile(running) if running else None
        try:
            self._save_secrets()
            self.store.update(self.draft)
        except DeskError as exc:
            self._show_problem(str(exc))
            return False
        self.problem.hide()
        self.profiles_page.renames.clear()
        self.pending_secrets.clear()
        if running and before is not None:
            after = self.store.settings.profile(running)
            if after != before and after is not None and self._restart_server is not None:
                self._offer_restart(after)
        return True

    def _ok(self) -> None:
        if self.apply():
            self.accept()

    def _save_secrets(self) -> None:
        session_ok = self.session_only.isChecked()
        for original, new in self.profiles_page.renames.items():
            if original != new:
                self.secrets.rename(profile_key(original), profile_key(new))
        for name, value in self.pending_secrets.items():
            if value is None:
                self.secrets.delete(name)
                continue
            try:
                self.secrets.set(name, value)
            except KeychainUnavailable:
                if not session_ok:
                    raise
                self.secrets.set(name, value, session_only=True)

    def _recheck(self, _value: object) -> None:
        # A "Not saved" message goes away once what it named is fixed.
        if self.problem.isVisible() and not (self.profiles_page.invalid or self.generation_page.invalid):
            self.problem.hide()

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()

    def _offer_restart(self, profile: ServerProfile) -> None:
        self._restart_target = profile
        self.restart_label.setText(
            tr("The profile “{0}” is running with the old settings.").format(profile.name)
        )
        self.restart_bar.show()

    def _restart(self) -> None:
        if self._restart_target is not None and self._restart_server is not None:
            self._restart_server(self._restart_target)
            self.restart_bar.hide()

    def _model_chosen(self, profile_name: str) -> None:
        self.profiles_page.reload()
        self.profiles_page.select(profile_name)
        self.refresh_models()
