"""The cold start's children read compiled modules, as an installed app does, even where the caller's shell
forbids writing bytecode."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench.cold_start import bytecode_dir, with_bytecode
from bench.context import BenchContext


def test_children_write_and_read_bytecode_in_the_benchmarks_own_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    ctx = BenchContext(quick=True, cache_dir=tmp_path / "cache", work_dir=tmp_path / "work", scale=0.005)
    env = with_bytecode(ctx, ctx.child_env())
    assert "PYTHONDONTWRITEBYTECODE" not in env
    subprocess.run([ctx.python, "-c", "import bench.stats"], env=env, cwd=ctx.repo_root, check=True)
    compiled = [p.name for p in bytecode_dir(ctx).rglob("*.pyc")]
    assert any(name.startswith("stats.") for name in compiled)
