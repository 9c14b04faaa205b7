"""Documents: which embedding model indexes and searches them (``documents.embedder``).

The built-in all-MiniLM-L6-v2 served by vLLM, a saved local profile serving a Hugging Face embedding model
(``--runner pooling`` in its extra arguments) or a remote ``/v1/embeddings`` profile. The page says what
the choice costs on the GPU beside the chat model, and which collections were indexed with another model
(their vectors cannot be compared with the new one's: the Documents panel offers to re-index them).
"""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QFormLayout, QLabel, QVBoxLayout, QWidget

from desktop.preferences.form import ERROR_STYLE, HELP_STYLE, tr
from engine.errors import DeskError
from engine.hardware import GpuInfo
from engine.paths import AppPaths
from engine.settings.embedder import (
    chosen_embedder,
    collection_embedders,
    embedder_choices,
    embedder_share,
)
from engine.settings.store import BUILTIN_EMBEDDER_CHOICE, Settings


class DocumentsPage(QWidget):
    """Edits ``draft.documents``; :meth:`reload` offers the draft's current profiles."""

    def __init__(
        self, draft: Settings, paths: AppPaths, gpus: list[GpuInfo], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.draft = draft
        self.paths = paths
        self.gpus = gpus
        self.embedder = QComboBox()
        self.embedder.setObjectName("field_embedder")
        self.embedder.setAccessibleName(tr("Embedding model"))
        self.help = QLabel(
            tr(
                "Passages of your documents are turned into vectors by this model, and questions too. "
                "A local profile serves a Hugging Face embedding model with “--runner pooling” in its "
                "extra arguments; a remote profile points at any /v1/embeddings."
            )
        )
        self.help.setWordWrap(True)
        self.help.setStyleSheet(HELP_STYLE)
        self.gpu_note = QLabel()
        self.gpu_note.setObjectName("embedder_gpu")
        self.gpu_note.setWordWrap(True)
        self.warning = QLabel()
        self.warning.setObjectName("embedder_warning")
        self.warning.setWordWrap(True)
        self.warning.setStyleSheet(ERROR_STYLE)
        form = QFormLayout()
        form.addRow(tr("Embedding model"), self.embedder)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.help)
        layout.addWidget(self.gpu_note)
        layout.addWidget(self.warning)
        layout.addStretch(1)
        self.reload()
        self.embedder.currentIndexChanged.connect(self._chosen)

    def reload(self) -> None:
        """Offer the built-in model and the draft's embedding profiles, the saved choice selected (kept even
        when its profile is gone, so the problem shows)."""
        self.embedder.blockSignals(True)
        self.embedder.clear()
        choices = embedder_choices(self.draft)
        current = self.draft.documents.embedder
        if current not in choices:
            choices.append(current)
        for choice in choices:
            self.embedder.addItem(self._label(choice), choice)
        self.embedder.setCurrentIndex(choices.index(current))
        self.embedder.blockSignals(False)
        self._describe()

    def _label(self, choice: str) -> str:
        if choice == BUILTIN_EMBEDDER_CHOICE:
            return tr("Built-in: all-MiniLM-L6-v2 (served by vLLM)")
        profile = self.draft.profile(choice)
        if profile is None:
            return tr("{0} (no such profile)").format(choice)
        where = tr("remote") if profile.kind == "remote" else tr("local")
        return f"{choice} ({where})"

    def _chosen(self, index: int) -> None:
        choice = self.embedder.itemData(index)
        if choice:
            self.draft.documents.embedder = str(choice)
        self._describe()

    def _describe(self) -> None:
        try:
            profile = chosen_embedder(self.draft, self.paths)
        except DeskError as exc:
            self.gpu_note.clear()
            self.warning.setText(str(exc))
            return
        share = embedder_share(self.draft, self.paths, self.gpus)
        if profile.kind == "remote":
            self.gpu_note.setText(tr("A remote server: nothing runs on this machine's GPU."))
        elif share is not None:
            self.gpu_note.setText(
                tr(
                    "On GPU {0} it takes {1:g} of the memory ({2:.1f} GiB) beside the chat model; the "
                    "Models page counts it in “Will it fit?”."
                ).format(self.gpus[0].index, share, share * self.gpus[0].cuda_total_bytes / 2**30)
            )
        else:
            self.gpu_note.setText(tr("Runs beside the chat model (no GPU found: on the CPU)."))
        name = profile.served_model_name
        other = {c: e for c, e in collection_embedders(self.paths).items() if e and name and e != name}
        if other:
            listed = ", ".join(f"“{c}” ({e})" for c, e in sorted(other.items()))
            self.warning.setText(
                tr(
                    "Indexed with another embedding model: {0}. Their vectors cannot be compared with "
                    "{1}'s: until they are re-indexed (the Documents panel offers it), they are searched "
                    "by keyword only."
                ).format(listed, name)
            )
        else:
            self.warning.clear()
