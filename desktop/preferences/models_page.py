"""Models: every model the user can run in one list, "will it fit?", and picking one for a profile."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop.preferences.form import ERROR_STYLE, HELP_STYLE, tr
from desktop.preferences.tool_calling import entry_support, profile_note
from engine.hardware import GpuInfo
from engine.models.catalog import (
    InvalidRepoId,
    ModelEntry,
    NotAModelFolder,
    app_catalog,
    inspect_folder,
    parse_repo_id,
)
from engine.paths import AppPaths
from engine.secrets import HF_TOKEN, SecretStore
from engine.server.fit import FitEstimate, estimate_for_profile, is_pooling
from engine.settings.embedder import documents_in_use, embedder_share
from engine.settings.store import Settings

COLUMNS = ("Model", "Source", "Size", "Architecture", "Context", "Quantization")
VERDICT_STYLE = {"fits": "color: #1e8449;", "tight": "color: #b9770e;", "wont_fit": ERROR_STYLE}


def human_size(n: int | None) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


class ModelsPage(QWidget):
    """Lists the catalog; "Use for profile" changes the chosen local profile of the draft."""

    model_chosen = Signal(str)  # the profile's name

    def __init__(
        self,
        draft: Settings,
        paths: AppPaths,
        gpus: list[GpuInfo],
        secrets: SecretStore,
        pending_secrets: dict[str, str | None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.draft = draft
        self.pending_secrets = pending_secrets
        self.paths = paths
        self.gpus = gpus
        self.entries: list[ModelEntry] = []
        layout = QVBoxLayout(self)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("model_table")
        self.table.setAccessibleName(tr("Models you can run"))
        self.table.setHorizontalHeaderLabels([tr(c) for c in COLUMNS])
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for column in range(1, len(COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        self.details = QLabel()
        self.details.setObjectName("model_details")
        self.details.setWordWrap(True)
        self.details.setMinimumHeight(self.details.fontMetrics().lineSpacing() * 4)
        layout.addWidget(self.details)
        add_row = QHBoxLayout()
        self.add_folder_button = QPushButton(tr("Add folder…"))
        add_row.addWidget(self.add_folder_button)
        self.repo_edit = QLineEdit()
        self.repo_edit.setObjectName("repo_id")
        self.repo_edit.setAccessibleName(tr("Hugging Face repo id"))
        self.repo_edit.setPlaceholderText(
            tr("Hugging Face repo id, e.g. Qwen/Qwen3-0.6B (vLLM downloads it at start)")
        )
        add_row.addWidget(self.repo_edit, 1)
        self.add_repo_button = QPushButton(tr("Add repo"))
        add_row.addWidget(self.add_repo_button)
        layout.addLayout(add_row)
        token_row = QHBoxLayout()
        token_label = QLabel(tr("Hugging Face token"))
        token_row.addWidget(token_label)
        self.hf_token = QLineEdit()
        self.hf_token.setObjectName("hf_token")
        token_label.setBuddy(self.hf_token)
        self.hf_token.setEchoMode(QLineEdit.EchoMode.Password)
        stored = secrets.get(HF_TOKEN)
        self.hf_token.setPlaceholderText(
            tr("a token is stored (type to replace it)")
            if stored
            else tr("for gated or private repos; kept in the system keychain")
        )
        token_row.addWidget(self.hf_token, 1)
        layout.addLayout(token_row)
        self.add_problem = QLabel()
        self.add_problem.setObjectName("add_problem")
        self.add_problem.setStyleSheet(ERROR_STYLE)
        self.add_problem.setWordWrap(True)
        self.add_problem.hide()
        layout.addWidget(self.add_problem)
        use_row = QHBoxLayout()
        use_label = QLabel(tr("Use for profile"))
        use_row.addWidget(use_label)
        self.profile_choice = QComboBox()
        self.profile_choice.setObjectName("profile_choice")
        use_label.setBuddy(self.profile_choice)
        use_row.addWidget(self.profile_choice, 1)
        self.use_button = QPushButton(tr("Use this model"))
        use_row.addWidget(self.use_button)
        layout.addLayout(use_row)
        self.tool_note = QLabel()
        self.tool_note.setObjectName("tool_calling_note")
        self.tool_note.setWordWrap(True)
        self.tool_note.setTextFormat(Qt.TextFormat.PlainText)
        self.tool_note.hide()
        layout.addWidget(self.tool_note)
        self.fit = QLabel()
        self.fit.setObjectName("fit_verdict")
        self.fit.setAccessibleName(tr("Will it fit?"))
        self.fit.setWordWrap(True)
        layout.addWidget(self.fit)
        self.gpu_label = QLabel(self._gpu_text())
        self.gpu_label.setStyleSheet(HELP_STYLE)
        self.gpu_label.setWordWrap(True)
        layout.addWidget(self.gpu_label)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.profile_choice.currentTextChanged.connect(lambda _t: self._selection_changed())
        self.add_folder_button.clicked.connect(self._choose_folder)
        self.add_repo_button.clicked.connect(lambda: self.add_repo(self.repo_edit.text()))
        self.repo_edit.returnPressed.connect(lambda: self.add_repo(self.repo_edit.text()))
        self.use_button.clicked.connect(self.use_selected)
        self.hf_token.textEdited.connect(self._token_edited)
        self.refresh()
        self.reload_profiles()

    # --- catalog -----------------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Rescan the catalog (the HF cache scan reads only metadata: quick even for big caches)."""
        models = self.draft.models
        self.entries = app_catalog(self.paths, models.folders, models.repo_ids)
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            info = entry.info
            cells = (
                entry.name + (f"  @{entry.revision[:8]}" if entry.revision else ""),
                tr(entry.source_label),
                human_size(entry.size_bytes),
                (info.architecture or "?") if info else "–",
                f"{info.max_context:,}" if info and info.max_context else "–",
                (info.quantization or tr("none")) if info else "–",
            )
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if entry.problem:
                    item.setToolTip(entry.problem)
                    if column == 0:
                        item.setForeground(Qt.GlobalColor.darkGray)
                self.table.setItem(row, column, item)
        self._selection_changed()

    def reload_profiles(self) -> None:
        current = self.profile_choice.currentText()
        self.profile_choice.blockSignals(True)
        self.profile_choice.clear()
        self.profile_choice.addItems([p.name for p in self.draft.profiles if p.kind == "local"])
        self.profile_choice.blockSignals(False)
        index = self.profile_choice.findText(current)
        if index < 0 and (default := self.draft.default_profile()) is not None:
            index = self.profile_choice.findText(default.name)
        self.profile_choice.setCurrentIndex(max(index, 0))
        self._selection_changed()

    def select(self, name: str) -> None:
        row = next(i for i, e in enumerate(self.entries) if e.name == name)
        self.table.selectRow(row)

    @property
    def selected(self) -> ModelEntry | None:
        rows = self.table.selectionModel().selectedRows()
        return self.entries[rows[0].row()] if rows else None

    def add_folder(self, folder: Path) -> bool:
        try:
            inspect_folder(folder)
        except NotAModelFolder as exc:
            self._show_add_problem(exc.message)
            return False
        self._show_add_problem("")
        if folder not in self.draft.models.folders:
            self.draft.models.folders = [*self.draft.models.folders, folder]
        self.refresh()
        self.select(folder.name)
        return True

    def add_repo(self, text: str) -> bool:
        try:
            repo_id = parse_repo_id(text)
        except InvalidRepoId as exc:
            self._show_add_problem(exc.message)
            return False
        self._show_add_problem("")
        if repo_id not in self.draft.models.repo_ids:
            self.draft.models.repo_ids = [*self.draft.models.repo_ids, repo_id]
        self.repo_edit.clear()
        self.refresh()
        self.select(repo_id)
        return True

    def use_selected(self) -> None:
        """Point the chosen profile at the selected model (in the draft; applied with OK/Apply)."""
        entry, name = self.selected, self.profile_choice.currentText()
        if entry is None or not name:
            return
        profiles = list(self.draft.profiles)
        index = next(i for i, p in enumerate(profiles) if p.name == name)
        # Tool calling follows the model: its family's parser (none known: off), as `serve --model` does.
        support = entry_support(entry)
        fields = {**entry.profile_fields(), "served_name": "", "tool_call_parser": support.parser}
        profiles[index] = profiles[index].model_copy(update=fields)
        self.draft.profiles = profiles
        self.tool_note.setText(profile_note(profiles[index], support))
        self.tool_note.show()
        self.model_chosen.emit(name)
        self._selection_changed()

    def _show_add_problem(self, text: str) -> None:
        self.add_problem.setText(text)
        self.add_problem.setVisible(bool(text))

    def _token_edited(self, text: str) -> None:
        self.pending_secrets[HF_TOKEN] = text.strip() or None

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, tr("Choose a model folder"))
        if folder:
            self.add_folder(Path(folder))

    # --- details and fit ----------------------------------------------------------------------------------

    def _selection_changed(self) -> None:
        entry = self.selected
        self.use_button.setEnabled(
            entry is not None and not entry.problem and self.profile_choice.count() > 0
        )
        if entry is None:
            self.details.setText(tr("Select a model to see its details."))
            self.fit.clear()
            return
        text = f"<b>{entry.name}</b> — {tr(entry.source_label)}"
        if entry.path is not None:
            text += f"<br>{entry.path}"
        if entry.info and entry.info.param_count:
            text += "<br>" + tr("{0:,} parameters").format(entry.info.param_count)
        if entry.problem:
            text += f"<br><span style='{ERROR_STYLE}'>{entry.problem}</span>"
        self.details.setText(text)
        self.show_fit(entry)

    def show_fit(self, entry: ModelEntry) -> FitEstimate | None:
        profile = self.draft.profile(self.profile_choice.currentText())
        if entry.info is None or profile is None:
            self.fit.setText(tr("Will it fit? Unknown until vLLM reads the model."))
            self.fit.setStyleSheet(HELP_STYLE)
            return None
        # While documents are in use, their embedding server shares the first GPU with the chat model.
        beside = None
        if not is_pooling(profile) and documents_in_use(self.paths):
            beside = embedder_share(self.draft, self.paths, self.gpus)
        estimate = estimate_for_profile(profile, entry.info, self.gpus, beside=beside)
        text = tr("Will it fit? ") + estimate.message
        if estimate.fix is not None:
            text += " " + tr("Suggestion: {0}.").format(estimate.fix.label)
        self.fit.setText(text)
        self.fit.setStyleSheet(VERDICT_STYLE.get(estimate.verdict, ""))
        return estimate

    def _gpu_text(self) -> str:
        if not self.gpus:
            return tr("GPUs: none found.")
        return "; ".join(
            tr("GPU {0} {1}: {2:.1f} GiB free of {3:.1f} GiB").format(
                g.index, g.name, g.free_bytes / 2**30, g.total_bytes / 2**30
            )
            for g in self.gpus
        )
