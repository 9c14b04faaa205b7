"""Issue 14.2: an export writes a new file or replaces a regular file, and nothing else.

A symbolic link, a FIFO or a device node at the target is refused (never replaced, never written through,
never waited on); the write goes to a temporary file beside the target and is renamed over it.
"""

from __future__ import annotations

import os
import stat
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.transfer.errors import ExportFailed
from engine.transfer.exporter import file_name, write_conversations
from tests.engine.transfer_trees import sample_conversation


def test_a_symlink_target_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    tmp_path = tmp_path / "w"
    tmp_path.mkdir()
    precious = tmp_path / "precious.txt"
    precious.write_text("do not touch")
    link = tmp_path / "export.md"
    link.symlink_to(precious)
    with pytest.raises(ExportFailed, match="symbolic link"):
        write_conversations([sample_conversation()], link, "md")
    assert link.is_symlink()
    assert precious.read_text() == "do not touch"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export.md", "precious.txt"]  # no temp file left


def test_a_fifo_target_is_refused_without_hanging(tmp_path: Path) -> None:
    fifo = tmp_path / "export.json"
    os.mkfifo(fifo)
    with pytest.raises(ExportFailed, match="FIFO"):
        write_conversations([sample_conversation()], fifo, "json")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_node_is_refused(tmp_path: Path) -> None:
    node = tmp_path / "full"
    try:
        os.mknod(node, stat.S_IFCHR | 0o600, os.makedev(1, 7))  # what /dev/full is
    except PermissionError:
        pytest.skip("making a device node needs root")
    with pytest.raises(ExportFailed, match="device"):
        write_conversations([sample_conversation()], node, "html")
    assert stat.S_ISCHR(os.lstat(node).st_mode)


def test_a_symlink_inside_an_export_folder_is_refused(tmp_path: Path) -> None:
    conv = sample_conversation()
    folder = tmp_path / "out"
    folder.mkdir()
    elsewhere = tmp_path / "elsewhere.md"
    elsewhere.write_text("mine")
    (folder / file_name(conv, "md")).symlink_to(elsewhere)
    with pytest.raises(ExportFailed, match="symbolic link"):
        write_conversations([conv, conv.__class__(**{**conv.__dict__, "id": "other"})], folder, "md")
    assert elsewhere.read_text() == "mine"


def test_a_regular_file_is_replaced(tmp_path: Path) -> None:
    target = tmp_path / "export.md"
    target.write_text("old")
    write_conversations([sample_conversation()], target, "md")
    assert "Reversing lists" in target.read_text()


NAMES = st.text(alphabet=string.ascii_letters + string.digits + " .-_éü", min_size=1, max_size=40).filter(
    lambda n: n not in (".", "..")
)
KINDS = st.sampled_from(["missing", "file", "symlink", "fifo", "dir"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=NAMES, kind=KINDS, fmt=st.sampled_from(["md", "json", "html"]))
def test_an_export_only_ever_writes_a_regular_file_at_the_target(
    tmp_path_factory: pytest.TempPathFactory, name: str, kind: str, fmt: str
) -> None:
    root = tmp_path_factory.mktemp("export")
    bystander = root / "bystander"
    bystander.write_text("keep")
    target = root / name
    if kind == "file":
        target.write_text("old")
    elif kind == "symlink":
        target.symlink_to(bystander)
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "dir":
        target.mkdir()
    before = {p.name for p in root.iterdir()}
    try:
        summary = write_conversations([sample_conversation()], target, fmt)  # type: ignore[arg-type]
    except ExportFailed:
        assert kind in ("symlink", "fifo")
        assert {p.name for p in root.iterdir()} == before  # nothing written, nothing left behind
    else:
        assert kind in ("missing", "file", "dir")
        (written,) = summary.files
        assert stat.S_ISREG(os.lstat(written).st_mode)
        assert written == target or written.parent == target
    assert bystander.read_text() == "keep"


def test_a_replaced_file_keeps_its_permissions(tmp_path: Path) -> None:
    target = tmp_path / "private.json"
    target.write_text("old")
    target.chmod(0o600)
    write_conversations([sample_conversation()], target, "json")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
