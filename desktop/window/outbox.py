"""Messages written while the server starts: they wait in the :class:`Outbox` and go once it is ready.

A :class:`QueuedMessage` is tied to the conversation it was written in (or to the new chat it was written
in) and goes there once the server is ready, whatever the window shows by then. A message that cannot go (the
start ended without a server, or its send failed) comes back into the message box of its conversation, ahead
of any draft, if that conversation is on screen; else it stays queued with its conversation (shown there
again, sent at the next start), so nothing is lost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from PySide6.QtCore import QCoreApplication, QObject

from desktop.widgets.composer import Composer
from desktop.widgets.transcript import MessageData, TranscriptView
from desktop.window.shown import ShownConversation


def tr(text: str) -> str:
    return QCoreApplication.translate("MainWindow", text)


@dataclass(frozen=True)
class QueuedMessage:
    """A message written while the server was starting, and where it goes once the server is ready."""

    text: str
    conversation_id: int | None  # None: a new conversation
    new_chat: int  # which new chat it was written in (0 for an existing conversation): each gets its own
    placeholder: str = ""  # its id in the transcript while it waits ("": a message sent at once)

    @property
    def destination(self) -> tuple[int | None, int]:
        return (self.conversation_id, self.new_chat)


_placeholder_ids = itertools.count(1)

# Sends one message (joined from a group) to its destination; the outbox hands it the group.
Sender = Callable[[QueuedMessage], object]


class Outbox(QObject):
    """What waits for the server, oldest first, and the notice about what could not go."""

    def __init__(
        self,
        shown: ShownConversation,
        transcript: TranscriptView,
        composer: Composer,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.shown = shown
        self.transcript = transcript
        self.composer = composer
        # Replaced, never changed in place.
        self.pending: tuple[QueuedMessage, ...] = ()
        self.given_back_notice = ""  # the composer's notice about messages that were not sent, while shown

    def here(self, text: str, placeholder: str = "") -> QueuedMessage:
        """``text`` addressed to what the window shows: its conversation, or its new chat."""
        conversation_id, new_chat = self.shown.here()
        return QueuedMessage(text, conversation_id, new_chat, placeholder)

    def queue(self, text: str) -> QueuedMessage:
        """Keep ``text`` (written in what is on screen) until the server is ready; shown as waiting."""
        item = self.here(text, f"queued-{next(_placeholder_ids)}")
        self.pending = (*self.pending, item)
        self._show_placeholder(item)
        return item

    def _show_placeholder(self, item: QueuedMessage) -> None:
        self.transcript.follow()
        self.transcript.add_message(
            MessageData(id=item.placeholder, role="user", text=item.text, state="queued")
        )
        self.composer.set_notice(tr("The server is starting; your message will be sent when it is ready."))

    def _placeholders_shown(self) -> set[str]:
        return {str(w.data.id) for w in self.transcript.messages() if str(w.data.id).startswith("queued-")}

    def show_queued(self, conversation_id: object) -> None:
        """Show again the messages that wait to go into ``conversation_id`` (it was shown anew)."""
        shown = self._placeholders_shown()
        for item in self.pending:
            if item.conversation_id == conversation_id and item.placeholder not in shown:
                self._show_placeholder(item)

    def _take_placeholders(self, items: Sequence[QueuedMessage]) -> None:
        """Remove the placeholders of ``items`` from the transcript, also those paged out (no widget)."""
        for item in items:
            if item.placeholder:
                self.transcript.remove_message(item.placeholder)

    def flush(self, send: Sender) -> None:
        """Hand what was written while the server was starting to ``send``, one joined message per
        conversation it was written in (called when the server is ready)."""
        if not self.pending:
            return
        groups: dict[tuple[int | None, int], list[QueuedMessage]] = {}
        for item in self.pending:
            groups.setdefault(item.destination, []).append(item)
        self.pending = ()
        self.composer.set_notice("")
        for (target, new_chat), items in groups.items():
            self._take_placeholders(items)
            # One message for the group, so a failure gives it back once, as it was sent.
            send(QueuedMessage("\n\n".join(q.text for q in items), target, new_chat, items[0].placeholder))

    def return_queued(self, reason: str) -> None:
        """The start ended without a server (``reason`` says how): see :meth:`give_back`."""
        if self.pending:
            items, self.pending = self.pending, ()
            self.give_back(items, reason)

    def give_back(self, items: Sequence[QueuedMessage], reason: str) -> None:
        """Messages that were not sent (``reason`` says why): those of the conversation on screen go back
        into its message box, ahead of any draft there; the others stay queued with their conversation
        (shown there again, sent at the next start). The notice says which happened."""
        here = [q for q in items if self.shown.shows(q.conversation_id, q.new_chat)]
        elsewhere = [q for q in items if not self.shown.shows(q.conversation_id, q.new_chat)]
        self._take_placeholders(here)
        notices = []
        if here:
            texts = [q.text for q in here]
            draft = self.composer.editor.toPlainText()
            if draft.strip():
                texts.append(draft)
            self.composer.editor.setPlainText("\n\n".join(texts))
            notices.append(
                tr("{reason}: your message was not sent; it is back in the message box.").format(
                    reason=reason
                )
            )
        if elsewhere:
            # Queued again under a placeholder, so that show_queued shows them with their conversation.
            self.pending = (
                *self.pending,
                *(
                    q if q.placeholder else replace(q, placeholder=f"queued-{next(_placeholder_ids)}")
                    for q in elsewhere
                ),
            )
            notices.append(
                tr(
                    "{reason}: {count} message(s) written in other chats were not sent; they wait with their "
                    "chat and go when the server is next ready."
                ).format(reason=reason, count=len(elsewhere))
            )
        self.given_back_notice = " ".join(notices)
        self.composer.set_notice(self.given_back_notice)

    def clear_given_back_notice(self) -> None:
        """A server is ready: the notice that messages were not sent (because there was none) is history."""
        if self.given_back_notice and self.composer.notice.text() == self.given_back_notice:
            self.composer.set_notice("")
        self.given_back_notice = ""
