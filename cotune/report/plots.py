"""Matplotlib figures: best-so-far curves of benchmark runs and the panels of a study report."""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cotune.bench.harness import RunRecord


def new_figure(width: float = 6.4, height: float = 4.0, ncols: int = 1) -> tuple[Figure, np.ndarray]:
    """A figure with ``ncols`` axes side by side, drawn off-screen (no display needed)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width * ncols, height), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, ncols, squeeze=False)[0])
    return fig, axes


def step_values(trace: Sequence[tuple[float, float]], grid: np.ndarray) -> np.ndarray:
    """The last traced value at or before each grid point (NaN before the first)."""
    spent = np.array([s for s, _ in trace])
    values = np.array([v for _, v in trace])
    idx = np.searchsorted(spent, grid, side="right") - 1
    out = np.where(idx >= 0, values[np.clip(idx, 0, None)], np.nan)
    return np.where(np.isfinite(out), out, np.nan)


def bench_figure(records: Sequence[RunRecord]) -> Figure:
    """Per benchmark, the median (line) and quartiles (band) over seeds of the incumbent's
    noise-free score against the budget spent, one line per method, the optimum dashed."""
    benchmarks = list(dict.fromkeys(r.benchmark for r in records))
    methods = list(dict.fromkeys(r.method for r in records))
    fig, axes = new_figure(ncols=len(benchmarks))
    for ax, benchmark in zip(axes, benchmarks):
        runs = [r for r in records if r.benchmark == benchmark]
        grid = np.linspace(0.0, max(r.spent for r in runs), 300)
        for method in methods:
            curves = np.array([
                step_values([(s, r.optimum - regret) for s, regret in r.trace], grid)
                for r in runs if r.method == method
            ])
            if curves.size == 0:
                continue
            valid = ~np.isnan(curves).any(axis=0)
            lo, mid, hi = np.percentile(curves[:, valid], [25, 50, 75], axis=0)
            (line,) = ax.plot(grid[valid], mid, label=method, lw=1.6)
            ax.fill_between(grid[valid], lo, hi, color=line.get_color(), alpha=0.15, lw=0)
        ax.axhline(runs[0].optimum, color="black", ls="--", lw=1, label="optimum")
        ax.set(title=benchmark, xlabel="budget spent", ylabel="true score of the best full run so far")
        ax.legend(fontsize="small")
    return fig


def save(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Write a figure to ``path`` (format from the extension)."""
    fig.savefig(path, dpi=120)


def to_svg(fig: Figure) -> str:
    """The figure as inline SVG markup (for a self-contained HTML page)."""
    buffer = io.StringIO()
    fig.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def progress_figure(points: Sequence[tuple[float, float]], baseline: float | None, total: float) -> Figure:
    """Best measured full-budget score so far against the budget spent, the baseline dotted."""
    fig, (ax,) = new_figure(height=3.6)
    if points:
        spent, best = zip(*points)
        ax.step(spent, best, where="post", lw=1.8, label="best full run so far")
    if baseline is not None:
        ax.axhline(baseline, color="grey", ls=":", lw=1.2, label="baseline (default configuration)")
    ax.set(xlabel="budget spent", ylabel="score", xlim=(0, total))
    if points or baseline is not None:
        ax.legend(fontsize="small", loc="lower right")
    return fig


def predictor_figure(predicted: Sequence[float], measured: Sequence[float]) -> Figure:
    """The predictor's full-budget estimates from short runs against the full runs' measured scores."""
    fig, (ax,) = new_figure(width=4.4, height=4.0)
    ax.scatter(predicted, measured, s=22, color="C1")
    lo = min(min(predicted), min(measured))
    hi = max(max(predicted), max(measured))
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="grey", ls="--", lw=1, label="predicted = measured")
    ax.set(xlabel="predicted full-budget score", ylabel="measured full-budget score")
    ax.legend(fontsize="small")
    return fig


def mixture_figure(labels: Sequence[str], domains: Sequence[str], weights: np.ndarray) -> Figure:
    """Stacked horizontal bars: the mixture weights (``n x domains``) of each labelled configuration."""
    fig, (ax,) = new_figure(height=0.5 * len(labels) + 1.4)
    left = np.zeros(len(labels))
    cmap = _colours(len(domains))
    for j, domain in enumerate(domains):
        ax.barh(labels, weights[:, j], left=left, label=domain, color=cmap[j])
        left += weights[:, j]
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="share of training examples")
    fig.legend(fontsize="small", ncols=min(len(domains), 6), loc="outside upper center")
    return fig


def budget_figure(parts: dict[str, float]) -> Figure:
    """One horizontal bar of the budget spent, split by kind of run."""
    fig, (ax,) = new_figure(height=1.8)
    left = 0.0
    for i, (name, value) in enumerate(parts.items()):
        ax.barh([""], [value], left=left, label=f"{name}: {value:g}", color=f"C{i}")
        left += value
    ax.set(xlabel="budget")
    fig.legend(fontsize="small", ncols=len(parts), loc="outside upper center")
    return fig


def _colours(n: int) -> list:
    from matplotlib import colormaps

    return [colormaps["tab10" if n <= 10 else "tab20"](i) for i in range(n)]
