"""A reply's document sources (stored in its meta) go into every export: losslessly into JSON and back into
another history, listed with file, page/section and the quoted passage in Markdown and HTML (the PDF is
the printed HTML)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.history.store import HistoryStore
from engine.transfer import history_adapter
from engine.transfer.exporter import export_from_store
from engine.transfer.html_format import render_html
from engine.transfer.importer import import_path
from engine.transfer.markdown_format import render_markdown

SOURCES = [
    {
        "number": 1,
        "rank": 1,
        "score": 0.0323,
        "collection": "work",
        "file": "/home/ann/papers/report.pdf",
        "page": 3,
        "section": "",
        "start": 120,
        "end": 310,
        "passage": "Revenue grew by 12 % in 2024, driven by <b>exports</b> and *services*.",
        "doc_id": "abc123",
    },
    {
        "number": 2,
        "rank": 2,
        "score": 0.0161,
        "collection": "work",
        "file": "/home/ann/notes/guide.md",
        "page": None,
        "section": "Install > Linux",
        "start": 0,
        "end": 80,
        "passage": "Run the installer.",
        "doc_id": "def456",
    },
]


def _grounded_chat(store: HistoryStore) -> int:
    conv = store.create_conversation(title="Revenue", settings={"documents": ["work"]})
    user = store.add_message(conv.id, None, "user", "What did revenue do?")
    reply = store.add_message(conv.id, user.id, "assistant", "", state="streaming", model="tiny")
    store.finish(
        reply.id, state="complete", text="It grew by 12 % [1].", meta={"model": "tiny", "sources": SOURCES}
    )
    return conv.id


def test_sources_go_into_json_losslessly_and_come_back_on_import(store: HistoryStore, tmp_path: Path) -> None:
    conversation_id = _grounded_chat(store)
    out = tmp_path / "chat.json"
    export_from_store(store, [conversation_id], out, "json")
    data = json.loads(out.read_text(encoding="utf-8"))
    reply = data["conversation"]["messages"][1]
    assert reply["sources"] == SOURCES
    assert "sources" not in data["conversation"]["messages"][0]  # only on messages that have them
    assert data["conversation"]["settings"]["documents"] == ["work"]

    other = HistoryStore(tmp_path / "other.sqlite3")
    try:
        imported = import_path(other, out).imported[0]
        messages = other.export_tree(imported).messages
        assert messages[1].content["meta"]["sources"] == SOURCES
        assert messages[1].text == "It grew by 12 % [1]."
        assert history_adapter.from_tree(other.export_tree(imported)).messages[1].sources == tuple(SOURCES)
    finally:
        other.close()


def test_markdown_lists_each_source_with_its_place_and_quoted_passage(store: HistoryStore) -> None:
    conv = history_adapter.from_tree(store.export_tree(_grounded_chat(store)))
    text = render_markdown(conv)
    assert "**Sources**" in text
    assert "[1] `report.pdf`, page 3 — /home/ann/papers/report.pdf" in text
    assert "[2] `guide.md`, Install > Linux — /home/ann/notes/guide.md" in text.replace("\\>", ">")
    # The file's text is quoted, never rendered: its markup is escaped.
    assert r"> Revenue grew by 12 % in 2024, driven by \<b\>exports\</b\> and \*services\*." in text


def test_html_and_its_printed_form_show_the_sources_without_running_their_markup(store: HistoryStore) -> None:
    conv = history_adapter.from_tree(store.export_tree(_grounded_chat(store)))
    for for_print in (False, True):
        page = render_html(conv, for_print=for_print)
        assert "Sources" in page
        assert "report.pdf</code>, page 3" in page
        assert "/home/ann/papers/report.pdf" in page
        assert "Install &gt; Linux" in page
        assert "<b>exports</b>" not in page
        assert "&lt;b&gt;exports&lt;/b&gt;" in page


def test_exports_say_which_sources_the_reply_used_and_list_those_first(
    store: HistoryStore, tmp_path: Path
) -> None:
    # As the grounding stores them once the reply is saved (engine.documents.attribution): the reply drew on
    # source 2 without citing it, source 1 was given but not used.
    attributed = [{**SOURCES[0], "use": "unused"}, {**SOURCES[1], "use": "matched", "match": 0.92}]
    conv = store.create_conversation(title="Install")
    user = store.add_message(conv.id, None, "user", "How do I install it?")
    reply = store.add_message(conv.id, user.id, "assistant", "", state="streaming", model="tiny")
    store.finish(reply.id, state="complete", text="Run the installer.", meta={"sources": attributed})
    text = render_markdown(history_adapter.from_tree(store.export_tree(conv.id)))
    matched = text.index("[2] `guide.md`")
    unused = text.index("[1] `report.pdf`")
    assert matched < unused  # the used one first
    assert "*matched by the app to the reply's wording*" in text[matched:unused]
    assert "*given to the model, not used*" in text[unused:]
    page = render_html(history_adapter.from_tree(store.export_tree(conv.id)), for_print=True)
    assert "<em>matched by the app to the reply's wording</em>" in page
    out = tmp_path / "chat.json"
    export_from_store(store, [conv.id], out, "json")
    assert json.loads(out.read_text(encoding="utf-8"))["conversation"]["messages"][1]["sources"] == attributed
    # Sources stored before attribution carry no such note.
    assert "not used" not in render_markdown(
        history_adapter.from_tree(store.export_tree(_grounded_chat(store)))
    )
