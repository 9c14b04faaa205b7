"""The log lines our diagnosis rules are tested with are the ones the installed vLLM really prints.

Each fixture that names a Python file is checked against that file in the runtime's ``site-packages``
(vLLM, and the torch and Triton it brought): its wording must be one of the messages the file builds, word
for word around the placeholders. When vLLM rewords a message (as 0.32 did with "Free memory on device
cuda:0 (...)"), this test fails before a user meets a rule that no longer fires.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.engine import gpu_failure_logs as fixtures
from tests.support.source_messages import find_site_packages, printed_by

SOURCED = [line for line in fixtures.ALL if line.source]


@pytest.fixture(scope="module")
def site_packages(request: pytest.FixtureRequest) -> Path:
    """The runtime's site-packages; skipped only without a runtime here, and never under CI (there the
    runtime is installed by the app's own installer)."""
    found = find_site_packages("vllm")
    if found is None and os.environ.get("CI") == "true":
        request.getfixturevalue("vllm_runtime")
        found = find_site_packages("vllm")
        assert found is not None, "the runtime was installed but its vllm package was not found"
    if found is None:
        pytest.skip("no vLLM runtime installed here (python -m tests.support.vllm_fixtures makes one)")
    return found


@pytest.mark.vllm
@pytest.mark.parametrize("line", SOURCED, ids=[line.text[:40] for line in SOURCED])
def test_gpu_fixture_is_printed_by_the_installed_source(site_packages: Path, line: fixtures.Sourced) -> None:
    source = site_packages / line.source
    assert source.is_file(), f"{line.source} is gone from this vLLM: find where the message moved"
    assert printed_by(line.text, source), f"{line.source} no longer prints: {line.text}"


@pytest.mark.vllm
@pytest.mark.parametrize("kind", sorted(fixtures.STANDIN_SOURCES))
def test_standin_failure_is_printed_by_the_installed_vllm(site_packages: Path, kind: str) -> None:
    source = site_packages / fixtures.STANDIN_SOURCES[kind]
    assert printed_by(fixtures.standin_line(kind), source), kind


def test_every_fixture_says_where_it_comes_from() -> None:
    assert all(bool(line.source) != bool(line.origin) for line in fixtures.ALL)
    assert len(SOURCED) >= 10


def test_a_reworded_message_is_caught(tmp_path: Path) -> None:
    source = tmp_path / "worker.py"
    source.write_text(
        "def check(dev, free, total, util, req):\n"
        "    raise ValueError(\n"
        '        f"Free memory on device {dev} "\n'
        '        f"({free}/{total} GiB) on startup "\n'
        '        "is less than desired GPU memory utilization "\n'
        '        f"({util}, {req} GiB). Decrease GPU memory "\n'
        '        "utilization or reduce GPU memory used by other processes."\n'
        "    )\n"
        'LOG = "Model loading took %s GiB memory and %.6f seconds"\n',
        encoding="utf-8",
    )
    assert printed_by(fixtures.FREE_MEMORY.text, source)
    # vLLM before 0.32 did not name the device: that wording is not this file's.
    old = fixtures.FREE_MEMORY.text.replace("device cuda:0 (", "device (")
    assert not printed_by(old, source)
    assert not printed_by(fixtures.FREE_MEMORY.text.replace("Decrease", "Lower"), source)
    # Only part of a message is not the message.
    assert not printed_by("ValueError: Free memory on device cuda:0 (1/2 GiB) on startup", source)
    assert printed_by(
        "(EngineCore_DP0 pid=3) INFO 12-06 02:31:07 [x.py:1] Model loading took 1.2 GiB memory "
        "and 0.5 seconds",
        source,
    )
