"""Server profiles: create, duplicate, rename, delete; every option explained and checked as you type;
remote endpoints with their key (kept in the keychain) and a "Test connection" button."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop.operations import Operation
from desktop.preferences.form import ERROR_STYLE, HELP_STYLE, ModelForm, bold_label, tr
from desktop.preferences.tool_calling import profile_note, with_family_parser
from engine.errors import DeskError
from engine.secrets import SecretStore, profile_key
from engine.server.profiles import ServerProfile, builtin_profile
from engine.server.remote import RemoteInfo, check_remote
from engine.settings.store import BUILTIN_EMBEDDER_CHOICE, Settings

FIELDS = (
    "name",
    "kind",
    "base_url",
    "source",
    "model",
    "revision",
    "served_name",
    "host",
    "port",
    "dtype",
    "max_model_len",
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "pipeline_parallel_size",
    "quantization",
    "kv_cache_dtype",
    "max_num_seqs",
    "enforce_eager",
    "enable_prefix_caching",
    "chat_template",
    "reasoning_parser",
    "tool_call_parser",
    "trust_remote_code",
    "download_dir",
    "seed",
    "cpu_kv_cache_gib",
    "key_mode",
    "extra_args",
    "env",
)
REMOTE_FIELDS = {"name", "kind", "base_url", "served_name"}
HELP = {
    "name": "Shown in the app; also `vllm-desk serve --profile NAME`.",
    "kind": "local: vLLM Desk starts vllm serve. remote: a server that already runs elsewhere.",
    "base_url": "The remote server's address, ending in /v1 (http:// or https://).",
    "source": "builtin: the small model that ships with the app; folder; hf_cache / hf_repo: a Hugging "
    "Face repo id (hf_repo may download it).",
    "model": "A model folder, or a repo id such as Qwen/Qwen3-0.6B. Pick one on the Models page.",
    "revision": "hf_cache / hf_repo: the commit, branch or tag to run (set when you pick a cached "
    "snapshot); empty: main.",
    "served_name": "The model name clients send; empty: from the model (remote: the first one served).",
    "host": "Address to listen on. 127.0.0.1 keeps the server on this computer; 0.0.0.0 opens it to all.",
    "port": "0–65535; 0 picks a free port at each start.",
    "dtype": "Number format of the weights; auto uses the model's own (16-bit on GPUs).",
    "max_model_len": "Longest prompt + answer in tokens (1 or more), or auto: the longest that fits.",
    "gpu_memory_utilization": "Share of each GPU vLLM may use, above 0 up to 1 (vLLM's default: 0.92).",
    "tensor_parallel_size": "Split the model over this many GPUs (1 or more).",
    "pipeline_parallel_size": "Split the layers over this many GPUs or nodes (1 or more).",
    "quantization": "Quantize at load, e.g. fp8; empty: as the model is stored.",
    "kv_cache_dtype": "e.g. fp8 halves the KV cache's memory; empty: same as the model.",
    "max_num_seqs": "Most conversations answered at once (1 or more).",
    "enforce_eager": "Skip CUDA graphs / compilation: faster start, slower answers. Default: on for CPU.",
    "enable_prefix_caching": "Reuse the shared start of prompts (long system prompts, chat history).",
    "chat_template": "A Jinja template file (or inline template) for models that lack one.",
    "reasoning_parser": "e.g. deepseek_r1 or qwen3: separates a reasoning model's thinking from its answer.",
    "tool_call_parser": "e.g. hermes: lets the model call tools (turns on auto tool choice).",
    "trust_remote_code": "Run Python code shipped with the model. Only for models you trust.",
    "download_dir": "Where vLLM downloads weights; empty: the Hugging Face cache.",
    "seed": "Random seed of the server (a whole number).",
    "cpu_kv_cache_gib": "CPU build only: whole GiB of memory for the KV cache (1 or more).",
    "key_mode": "random: a new key at each start. fixed: one key kept in the keychain, for other clients.",
    "extra_args": "Advanced: more vllm serve options, e.g. --max-num-batched-tokens 4096.",
    "env": "Advanced: environment variables for vllm serve, one NAME=value a line, e.g. "
    "CUDA_VISIBLE_DEVICES=1 or NCCL_P2P_DISABLE=1.",
}
LABELS = {
    "base_url": "URL",
    "served_name": "Served model name",
    "max_model_len": "Max model length",
    "gpu_memory_utilization": "GPU memory use",
    "tensor_parallel_size": "Tensor parallel",
    "pipeline_parallel_size": "Pipeline parallel",
    "kv_cache_dtype": "KV cache dtype",
    "max_num_seqs": "Max sequences",
    "cpu_kv_cache_gib": "CPU KV cache (GiB)",
    "extra_args": "Extra arguments",
    "env": "Environment",
}


class ProfilesPage(QWidget):
    """Edits ``profiles`` (and the start-with-app choice) of the draft; keys go to ``pending_secrets``."""

    # The draft's profiles changed: one added, removed, renamed or edited (the Models page's fit depends on
    # the profile's options, so every valid edit counts).
    profiles_changed = Signal()

    def __init__(
        self,
        draft: Settings,
        secrets: SecretStore,
        pending_secrets: dict[str, str | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.draft = draft
        self.secrets = secrets
        self.pending_secrets = pending_secrets
        self.renames: dict[str, str] = {}  # original name -> current name, to move keys on apply
        self._current = -1
        layout = QHBoxLayout(self)
        left = QVBoxLayout()
        self.list = QListWidget()
        self.list.setObjectName("profile_list")
        self.list.setMaximumWidth(160)
        self.list.setAccessibleName(tr("Server profiles"))
        left.addWidget(self.list, 1)
        self.new_button = QPushButton(tr("New"))
        self.duplicate_button = QPushButton(tr("Duplicate"))
        self.rename_button = QPushButton(tr("Rename"))
        self.delete_button = QPushButton(tr("Delete"))
        for button in (self.new_button, self.duplicate_button, self.rename_button, self.delete_button):
            left.addWidget(button)
        layout.addLayout(left)
        right = QVBoxLayout()
        self.start_with_app = QCheckBox(tr("Start this profile's server with the app"))
        right.addWidget(self.start_with_app)
        self.form = ModelForm(ServerProfile, FIELDS, HELP, LABELS)
        self.form.checks.append(model_folder_problem)
        # What the profile does with tools, under the parser's explanation (follows every edit).
        self.tool_note = QLabel()
        self.tool_note.setObjectName("tool_calling_note")
        self.tool_note.setWordWrap(True)
        self.tool_note.setStyleSheet(HELP_STYLE)
        self.form.box.insertWidget(
            self.form.box.indexOf(self.form.hints["tool_call_parser"]) + 1, self.tool_note
        )
        key_box = QWidget()
        key_layout = QVBoxLayout(key_box)
        key_layout.setContentsMargins(0, 0, 0, 0)
        key_row = QHBoxLayout()
        self.key_edit = QLineEdit()
        self.key_edit.setObjectName("api_key")
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText(tr("API key (kept in the system keychain)"))
        key_row.addWidget(self.key_edit, 1)
        self.test_button = QPushButton(tr("Test connection"))
        key_row.addWidget(self.test_button)
        key_layout.addLayout(key_row)
        self.keychain_note = QLabel()
        self.keychain_note.setWordWrap(True)
        self.keychain_note.setStyleSheet(HELP_STYLE)
        key_layout.addWidget(self.keychain_note)
        self.test_result = QLabel()
        self.test_result.setObjectName("test_result")
        self.test_result.setWordWrap(True)
        key_layout.addWidget(self.test_result)
        self.key_label = bold_label(tr("API key"))
        self.key_label.setBuddy(self.key_edit)
        self.key_edit.setAccessibleName(tr("API key"))
        self.form.add_row("api_key", self.key_label, key_box)
        self._key_box = key_box
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.form)
        right.addWidget(scroll, 1)
        layout.addLayout(right, 1)
        problem = secrets.keychain_problem()
        if problem:
            self.keychain_note.setText(
                tr(
                    "No keychain works here ({0}). Keys are never written to disk: tick “Remember keys for "
                    "this session only” below to keep this key until you quit."
                ).format(problem)
            )
            self.keychain_note.setStyleSheet(ERROR_STYLE)
        else:
            self.keychain_note.setText(tr("Kept in the system keychain, never in the settings file."))
        self.list.currentRowChanged.connect(self._select)
        self.form.edited.connect(self._edited)
        # A new profile runs the built-in model: with its tool calling on, as the built-in profile has it.
        self.new_button.clicked.connect(
            lambda: self.add_profile(
                ServerProfile(
                    name=self._free_name("New profile"), tool_call_parser=builtin_profile().tool_call_parser
                )
            )
        )
        self.duplicate_button.clicked.connect(self.duplicate)
        self.rename_button.clicked.connect(self._focus_name)
        self.delete_button.clicked.connect(self.delete)
        self.start_with_app.toggled.connect(self._start_with_app)
        self.key_edit.textEdited.connect(self._key_edited)
        self.test_button.clicked.connect(self.test_connection)
        self.reload()

    # --- list -------------------------------------------------------------------------------------------

    @property
    def current(self) -> ServerProfile | None:
        profiles = self.draft.profiles
        return profiles[self._current] if 0 <= self._current < len(profiles) else None

    @property
    def invalid(self) -> str:
        if self.form.errors:
            field, message = next(iter(self.form.errors.items()))
            name = self.current.name if self.current else ""
            return tr("Profile “{0}”: {1}: {2}").format(name, self.form.label_text(field), message)
        return ""

    def reload(self, select: int | None = None) -> None:
        row = self._current if select is None else select
        self.list.blockSignals(True)
        self.list.clear()
        self.list.addItems([p.name for p in self.draft.profiles])
        self.list.blockSignals(False)
        self._current = -1
        self.list.setCurrentRow(min(max(row, 0), len(self.draft.profiles) - 1))
        self.delete_button.setEnabled(len(self.draft.profiles) > 1)

    def select(self, name: str) -> None:
        names = [p.name for p in self.draft.profiles]
        self.list.setCurrentRow(names.index(name))

    def add_profile(self, profile: ServerProfile) -> None:
        self.draft.profiles = [*self.draft.profiles, profile]
        self.reload(select=len(self.draft.profiles) - 1)
        self.profiles_changed.emit()

    def duplicate(self) -> None:
        if self.current is not None:
            copy = self.current.model_copy(update={"name": self._free_name(self.current.name + " (copy)")})
            self.add_profile(copy)

    def delete(self) -> None:
        profile = self.current
        if profile is None or len(self.draft.profiles) <= 1:
            return
        self.draft.profiles = [p for p in self.draft.profiles if p.name != profile.name]
        self.pending_secrets[profile_key(profile.name)] = None
        if self.draft.general.default_profile == profile.name:
            self.draft.general.default_profile = ""
        if self.draft.documents.embedder == profile.name:
            self.draft.documents.embedder = BUILTIN_EMBEDDER_CHOICE
        self.reload(select=self._current)
        self.profiles_changed.emit()

    def _free_name(self, base: str) -> str:
        names = {p.name for p in self.draft.profiles}
        name, n = base, 2
        while name in names:
            name, n = f"{base} {n}", n + 1
        return name

    def _focus_name(self) -> None:
        editor = self.form.rows["name"].editor
        editor.setFocus()
        if isinstance(editor, QLineEdit):
            editor.selectAll()

    def _select(self, row: int) -> None:
        self._current = row
        profile = self.current
        if profile is None:
            return
        values = profile.model_dump()
        # Fields without a row are kept as they are, not reset by an edit.
        self.form.load(values, fixed={k: v for k, v in values.items() if k not in self.form.rows})
        self._show_start_with_app()
        pending = self.pending_secrets.get(profile_key(profile.name))
        self.key_edit.setText(pending or "")
        stored = self.secrets.get(profile_key(profile.name)) if pending is None else None
        self.key_edit.setPlaceholderText(
            tr("a key is stored (type to replace it)")
            if stored
            else tr("API key (kept in the system keychain)")
        )
        self.test_result.clear()
        self._show_rows(profile)

    def showEvent(self, event: QShowEvent) -> None:
        # The Appearance page may have changed the start-with-app choice meanwhile.
        self._show_start_with_app()
        super().showEvent(event)

    def _show_start_with_app(self) -> None:
        profile = self.current
        self.start_with_app.blockSignals(True)
        self.start_with_app.setChecked(
            profile is not None
            and self.draft.general.start_server_with_app
            and self.draft.default_profile() == profile
        )
        self.start_with_app.blockSignals(False)

    # --- editing -------------------------------------------------------------------------------------------

    def _edited(self, value: object) -> None:
        profile = self.current
        if not isinstance(value, ServerProfile) or profile is None:
            kind = self.form.rows["kind"].value()
            self._show_rows_for(kind, self.form.rows["key_mode"].value())
            return
        if value.name != profile.name and value.name in {p.name for p in self.draft.profiles}:
            self.form.rows["name"].show_error(tr("another profile already has this name"))
            return
        if value.name != profile.name:
            self._renamed(profile.name, value.name)
        value = with_family_parser(profile, value)
        profiles = list(self.draft.profiles)
        profiles[self._current] = value
        self.draft.profiles = profiles
        parser_row = self.form.rows["tool_call_parser"]
        if parser_row.value() != value.tool_call_parser:  # the model changed: its family's parser, shown
            parser_row.editor.blockSignals(True)
            parser_row.set_value(value.tool_call_parser)
            parser_row.editor.blockSignals(False)
        item = self.list.item(self._current)
        if item is not None and item.text() != value.name:
            item.setText(value.name)
        self._show_rows(value)
        if value != profile:
            self.profiles_changed.emit()

    def _renamed(self, old: str, new: str) -> None:
        original = next((o for o, cur in self.renames.items() if cur == old), old)
        self.renames[original] = new
        old_key, new_key = profile_key(old), profile_key(new)
        if old_key in self.pending_secrets:
            self.pending_secrets[new_key] = self.pending_secrets.pop(old_key)
        if self.draft.general.default_profile == old:
            self.draft.general.default_profile = new
        if self.draft.documents.embedder == old:  # the documents' embedding model (Documents page)
            self.draft.documents.embedder = new

    def _show_rows(self, profile: ServerProfile) -> None:
        self._show_rows_for(profile.kind, profile.key_mode)
        local = profile.kind == "local"
        self.tool_note.setText(profile_note(profile) if local else "")
        self.tool_note.setVisible(local)

    def _show_rows_for(self, kind: object, key_mode: object) -> None:
        remote = kind == "remote"
        for name in FIELDS:
            self.form.set_row_visible(name, name in REMOTE_FIELDS or not remote)
        self.form.set_row_visible("base_url", remote)
        self.form.set_row_visible("api_key", remote or key_mode == "fixed")
        self.test_button.setVisible(remote)
        self.start_with_app.setText(
            tr("Connect to this server when the app starts")
            if remote
            else tr("Start this profile's server with the app")
        )

    def _start_with_app(self, on: bool) -> None:
        profile = self.current
        if profile is None:
            return
        if on:
            self.draft.general.default_profile = profile.name
            self.draft.general.start_server_with_app = True
        elif self.draft.default_profile() == profile:
            self.draft.general.start_server_with_app = False

    def _key_edited(self, text: str) -> None:
        if self.current is not None:
            self.pending_secrets[profile_key(self.current.name)] = text or None

    # --- test connection -------------------------------------------------------------------------------

    def test_connection(self) -> None:
        """Ask the form's URL (with the typed or stored key) for /health, /version and its models."""
        url = str(self.form.rows["base_url"].value() or "")
        model = str(self.form.rows["served_name"].value() or "")
        profile = self.current
        key = self.key_edit.text() or (self.secrets.get(profile_key(profile.name)) if profile else None)
        self.test_result.setStyleSheet("")
        self.test_result.setText(tr("Connecting to {0}…").format(url))
        Operation(self.test_button, lambda: check_remote(url, key, model=model)).success(
            self._tested
        ).failure(self._test_failed).run()

    def _tested(self, info: RemoteInfo) -> None:
        self.test_result.setStyleSheet("color: #1e8449;")
        self.test_result.setText(describe_remote(info))

    def _test_failed(self, exc: BaseException) -> None:
        self.test_result.setStyleSheet(ERROR_STYLE)
        self.test_result.setText(str(exc) if isinstance(exc, DeskError) else tr("Failed: {0}").format(exc))


def describe_remote(info: RemoteInfo) -> str:
    """One line for the Test connection result: health, version, models served, the one to use."""
    health = tr("healthy") if info.has_health else tr("no /health")
    version = tr("vLLM {0}").format(info.version) if info.version else tr("version unknown")
    context = info.endpoint.max_model_len
    using = info.endpoint.model + (tr(" (context {0})").format(context) if context else "")
    return tr("Connected: {0}, {1}; models: {2}; chats use {3}").format(
        health, version, ", ".join(info.models) or tr("none"), using
    )


def model_folder_problem(value: object) -> dict[str, str]:
    """A local profile that serves a folder needs the folder to be there (vLLM would fail on start)."""
    if not isinstance(value, ServerProfile) or value.kind != "local" or value.source != "folder":
        return {}
    folder = Path(value.model).expanduser()
    if folder.is_dir():
        return {}
    if folder.exists():
        return {"model": tr("{0} is a file, not a model folder").format(folder)}
    return {"model": tr("there is no folder {0}").format(folder)}
