"""``vllm-desk docs``: add, rescan, list, remove and search from the command line, against a real document
store and an embedding server (a small /v1/embeddings stand-in; the real vLLM is in test_documents_vllm)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.cli import main
from tests.engine.documents.files import write_encrypted_pdf, write_pdf
from tests.support.embeddings_server import EmbeddingsServer, running_embeddings_server


@pytest.fixture
def server() -> Iterator[EmbeddingsServer]:
    with running_embeddings_server() as running:
        yield running


def docs(tmp_path: Path, server: EmbeddingsServer | None, *args: str) -> int:
    extra = ["--embedder-url", server.base_url] if server is not None else []
    return main(["--data-dir", str(tmp_path / "home"), "docs", *args, *extra])


def folder(tmp_path: Path) -> Path:
    root = tmp_path / "papers"
    root.mkdir()
    write_pdf(root / "volcano.pdf", [["Volcanoes erupt when magma rises."], ["Lava cools into basalt rock."]])
    (root / "garden.md").write_text("# Garden\n\n## Tomatoes\n\nTomatoes need full sun and regular water.\n")
    return root


def test_add_then_list_and_search_with_json(
    tmp_path: Path, server: EmbeddingsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = folder(tmp_path)
    assert docs(tmp_path, server, "add", str(root), "--collection", "science") == 0
    out = capsys.readouterr()
    assert "science: 2 added, 0 updated, 0 unchanged, 0 removed, 0 failed" in out.out
    assert "[1/2]" in out.err
    assert "[2/2]" in out.err
    assert server.requests  # the passages went through /v1/embeddings

    assert main(["--data-dir", str(tmp_path / "home"), "docs", "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["name"] == "science"
    assert (listed["files"], listed["failed"], listed["passages"]) == (2, 0, 3)
    assert listed["embedder"] == "bow-embedder"
    assert listed["roots"] == [str(root)]

    assert docs(tmp_path, server, "search", "what rock does lava become", "--json", "--top", "2") == 0
    hits = json.loads(capsys.readouterr().out)
    assert hits[0]["file"] == str(root / "volcano.pdf")
    assert hits[0]["page"] == 2
    assert hits[0]["passage"] == "Lava cools into basalt rock."
    assert set(hits[0]) >= {"file", "page", "section", "score", "passage"}

    assert docs(tmp_path, server, "search", "tomatoes sun", "--collection", "science") == 0
    text = capsys.readouterr().out
    assert f"[1] {root / 'garden.md'} — Garden > Tomatoes" in text
    assert "    Tomatoes need full sun and regular water." in text


def test_add_exits_non_zero_and_lists_each_failed_file_while_the_rest_is_indexed(
    tmp_path: Path, server: EmbeddingsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = folder(tmp_path)
    write_encrypted_pdf(root / "locked.pdf", [["secret"]])
    (root / "junk.txt").write_bytes(os.urandom(3000) + b"\x00")
    assert docs(tmp_path, server, "add", str(root)) == 1
    out = capsys.readouterr().out
    assert "default: 2 added" in out
    assert "2 failed" in out
    assert f"  {root / 'locked.pdf'}: the PDF is encrypted (password-protected)" in out
    assert f"  {root / 'junk.txt'}: the file is binary data, not text" in out

    assert main(["--data-dir", str(tmp_path / "home"), "docs", "list", "--files"]) == 0
    listing = capsys.readouterr().out
    assert "default: 2 files, 3 passages, 2 failed" in listing
    assert f"{root / 'locked.pdf'} (0 passages; failed: the PDF is encrypted" in listing


def test_rescan_indexes_changes_and_remove_takes_files_or_the_collection_away(
    tmp_path: Path, server: EmbeddingsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = folder(tmp_path)
    assert docs(tmp_path, server, "add", str(root)) == 0
    capsys.readouterr()
    (root / "garden.md").write_text("# Garden\n\nRoses need pruning.\n")
    assert docs(tmp_path, server, "rescan", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["updated"] == [str(root / "garden.md")]
    assert report["unchanged"] == 1

    home = ["--data-dir", str(tmp_path / "home")]
    assert main([*home, "docs", "remove", "default", str(root / "garden.md")]) == 0
    assert "Removed 1 files from default." in capsys.readouterr().out
    assert docs(tmp_path, None, "search", "roses", "--mode", "keyword") == 0
    assert capsys.readouterr().out.strip() == "Nothing found."
    assert main([*home, "docs", "remove", "default"]) == 0
    assert main([*home, "docs", "list"]) == 0
    assert "No collections yet" in capsys.readouterr().out


def test_keyword_search_needs_no_embedding_server(
    tmp_path: Path, server: EmbeddingsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = folder(tmp_path)
    assert docs(tmp_path, server, "add", str(root)) == 0
    capsys.readouterr()
    before = len(server.requests)
    assert docs(tmp_path, None, "search", "basalt", "--mode", "keyword", "--json") == 0
    [hit] = json.loads(capsys.readouterr().out)
    assert hit["passage"] == "Lava cools into basalt rock."
    assert len(server.requests) == before


def test_an_embedding_server_failing_fails_the_files_with_its_reason(
    tmp_path: Path, server: EmbeddingsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = folder(tmp_path)
    server.fail_with = 500
    assert docs(tmp_path, server, "add", str(root)) == 1
    out = capsys.readouterr().out
    assert out.count("the embedding model failed") == 2
    server.fail_with = None
    assert docs(tmp_path, server, "rescan") == 0  # the failed files are tried again


def test_search_without_any_collection_starts_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # No --embedder-url and no vLLM here: hybrid search would have to start one, and must not.
    assert docs(tmp_path, None, "search", "anything") == 0
    assert "No collections yet" in capsys.readouterr().out


def test_unknown_collection_is_an_error_in_words(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert docs(tmp_path, None, "search", "x", "--collection", "nope", "--mode", "keyword") == 1
    assert "There is no document collection named “nope”." in capsys.readouterr().err
    assert main(["--data-dir", str(tmp_path / "home"), "docs", "rescan", "--collection", "nope"]) == 1


def test_a_saved_remote_profile_can_serve_the_embeddings(
    tmp_path: Path, server: EmbeddingsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.paths import AppPaths
    from engine.server.profiles import ServerProfile
    from engine.settings.store import SettingsStore

    paths = AppPaths.under(tmp_path / "home").ensure()
    settings = SettingsStore.open(paths.settings_file)
    remote = ServerProfile(name="team embeddings", kind="remote", base_url=server.base_url)
    current = settings.settings
    settings.update(current.model_copy(update={"profiles": [*current.profiles, remote]}))
    root = folder(tmp_path)
    home = ["--data-dir", str(tmp_path / "home"), "docs"]
    assert main([*home, "add", str(root), "--embedder-profile", "team embeddings"]) == 0
    assert "default: 2 added" in capsys.readouterr().out
    assert server.requests
    assert main([*home, "add", str(root), "--embedder-profile", "nope"]) == 1
    assert "there is no such profile" in capsys.readouterr().err


def test_a_killed_docs_add_leaves_whole_files_only_and_rescan_finishes(
    tmp_path: Path, server: EmbeddingsServer
) -> None:
    import signal
    import subprocess
    import sys

    from engine.documents.chunks import split_text
    from engine.documents.store import DocumentStore

    root = tmp_path / "many"
    root.mkdir()
    expected = {}
    for i in range(30):
        text = "\n\n".join(f"file {i} paragraph {j} " + "word " * 120 for j in range(12))
        (root / f"{i:02d}.md").write_text(text)
        expected[str(root / f"{i:02d}.md")] = len(split_text(text, structured=True))
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "--data-dir", str(home), "docs", "add", str(root),
         "--embedder-url", server.base_url],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    for line in proc.stderr:
        if line.startswith("[4/30]"):
            proc.send_signal(signal.SIGKILL)  # a crash: no cleanup of any kind
            break
    proc.wait(30)
    proc.stderr.close()
    store = DocumentStore(home / "data" / "documents.sqlite3")
    try:
        records = store.files("default")
        assert 3 <= len(records) < 30
        for record in records:
            assert record.chunks == expected[record.path]  # every file there is whole
        assert main(["--data-dir", str(home), "docs", "rescan", "--embedder-url", server.base_url]) == 0
        assert {r.path: r.chunks for r in store.files("default")} == expected
    finally:
        store.close()


def test_a_passage_over_the_models_input_limit_is_embedded_from_its_beginning(
    tmp_path: Path, server: EmbeddingsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "text"
    root.mkdir()
    (root / "short.md").write_text("A short note about tomatoes.\n")
    (root / "long.md").write_text(" ".join(["tomato"] * 100) + "\n")  # one passage of 100 words
    server.max_words = 40  # like vLLM refusing more than --max-model-len tokens
    assert docs(tmp_path, server, "add", str(root), "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["failed"] == []
    assert report["passages"] == 2
    refused = [batch for batch in server.requests if any(len(t.split()) > 40 for t in batch)]
    assert refused  # the long passage was refused first ...
    taken = [batch[0] for batch in server.requests if batch[0].startswith("tomato")][-1]
    assert 20 < len(taken.split()) <= 40  # ... then embedded from its beginning
    assert main(["--data-dir", str(tmp_path / "home"), "docs", "search", "tomato", "--mode", "keyword"]) == 0
    assert "tomato tomato" in capsys.readouterr().out  # the whole passage is stored and found


def test_another_embedding_model_is_refused_and_reindex_replaces_the_vectors(
    tmp_path: Path, server: EmbeddingsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = folder(tmp_path)
    home = ["--data-dir", str(tmp_path / "home"), "docs"]
    assert docs(tmp_path, server, "add", str(root), "--collection", "science") == 0
    capsys.readouterr()
    with running_embeddings_server("other-embedder") as other:
        again = ["--embedder-url", other.base_url]
        (root / "more.md").write_text("Basalt is a volcanic rock.\n", encoding="utf-8")
        assert main([*home, "add", str(root), "--collection", "science", *again]) == 1
        err = capsys.readouterr().err
        assert "was indexed with the embedding model bow-embedder, not other-embedder" in err
        assert "vllm-desk docs reindex science" in err
        assert main([*home, "reindex", "science", *again]) == 0
        assert "science: 3 added" in capsys.readouterr().out
    assert main([*home, "list", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert (listed["embedder"], listed["files"], listed["roots"]) == ("other-embedder", 3, [str(root)])


def test_the_settings_choose_the_embedder_when_no_option_does(
    tmp_path: Path, server: EmbeddingsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    from engine.paths import AppPaths
    from engine.server.profiles import ServerProfile
    from engine.settings.store import SettingsStore

    paths = AppPaths.under(tmp_path / "home").ensure()
    settings = SettingsStore.open(paths.settings_file)
    remote = ServerProfile(name="team embeddings", kind="remote", base_url=server.base_url)
    current = settings.settings
    chosen = current.documents.model_copy(update={"embedder": "team embeddings"})
    settings.update(current.model_copy(update={"profiles": [*current.profiles, remote], "documents": chosen}))
    root = folder(tmp_path)
    assert main(["--data-dir", str(tmp_path / "home"), "docs", "add", str(root)]) == 0
    assert "default: 2 added" in capsys.readouterr().out
    assert server.requests  # not the built-in model: no vLLM was started
    # chat --docs searches with it too, before any chat model starts.
    import argparse
    import asyncio

    from engine.cli.chat import _passages

    asked = len(server.requests)
    hits = asyncio.run(_passages(argparse.Namespace(docs=["default"]), paths, "tomatoes need sun"))
    assert hits[0].file == str(root / "garden.md")
    assert len(server.requests) > asked
    settings.update(
        settings.settings.model_copy(update={"documents": chosen.model_copy(update={"embedder": "gone"})})
    )
    assert main(["--data-dir", str(tmp_path / "home"), "docs", "rescan"]) == 1
    assert "there is no such profile" in capsys.readouterr().err
