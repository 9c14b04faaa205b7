"""PNG plots (matplotlib, Agg) drawn from a result's ``series``.

A series is ``{"kind": "bars" | "box" | "lines", "title": str, "ylabel": str, "data": ..., "log": bool}``:
bars take ``{group: {label: value}}``, box plots ``{label: [samples]}``, lines ``{label: [[x, y], ...]}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.result import BenchResult


def draw(result: BenchResult, out_dir: Path) -> list[str]:
    """Draw every series of ``result`` into ``out_dir``; returns the PNG paths written."""
    if not result.series:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    for key, spec in result.series.items():
        fig, ax = plt.subplots(figsize=(7.5, 4.2), dpi=100)
        kind = spec.get("kind")
        if kind == "bars":
            _bars(ax, spec["data"])
        elif kind == "box":
            _box(ax, spec["data"])
        elif kind == "lines":
            _lines(ax, spec["data"])
        else:
            plt.close(fig)
            continue
        if spec.get("log"):
            ax.set_yscale("log")
        ax.set_title(spec.get("title", key), fontsize=11)
        ax.set_ylabel(spec.get("ylabel", ""))
        if spec.get("xlabel"):
            ax.set_xlabel(spec["xlabel"])
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"{result.name}-{key}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(str(path))
    return written


def _bars(ax: Any, data: dict[str, dict[str, float]]) -> None:
    groups = list(data)
    labels: list[str] = []
    for values in data.values():
        labels += [label for label in values if label not in labels]
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        xs = [g + i * width for g in range(len(groups))]
        ys = [data[group].get(label, 0.0) for group in groups]
        ax.bar(xs, ys, width=width, label=label)
    ax.set_xticks([g + width * (len(labels) - 1) / 2 for g in range(len(groups))])
    ax.set_xticklabels(groups, fontsize=8)
    ax.legend(fontsize=8)


def _box(ax: Any, data: dict[str, list[float]]) -> None:
    labels = [label for label, samples in data.items() if samples]
    ax.boxplot([data[label] for label in labels], whis=(1, 99), showfliers=True)
    ax.set_xticks(range(1, len(labels) + 1))
    ax.set_xticklabels(labels, fontsize=8)


def _lines(ax: Any, data: dict[str, list[list[float]]]) -> None:
    for label, points in data.items():
        if points:
            ax.plot([p[0] for p in points], [p[1] for p in points], label=label, linewidth=1)
    ax.legend(fontsize=8)
