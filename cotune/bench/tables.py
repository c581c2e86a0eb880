"""The comparison tables of a benchmark run, as header and rows (for the terminal and for Markdown)."""

from __future__ import annotations

from collections.abc import Sequence

from cotune.bench.harness import Summary

Table = tuple[list[str], list[list[str]]]


def score_table(summaries: Sequence[Summary]) -> Table:
    """Mean ± std over seeds of the best measured full-budget score: a row per method, a column
    per benchmark (the layout of the JoBS paper's Table 3)."""
    benchmarks = list(dict.fromkeys(s.benchmark for s in summaries))
    methods = list(dict.fromkeys(s.method for s in summaries))
    cells = {(s.method, s.benchmark): f"{s.mean_score:.4f} ± {s.std_score:.4f}" for s in summaries}
    return ["method", *benchmarks], [[m, *(cells.get((m, b), "") for b in benchmarks)] for m in methods]


def budget_table(summaries: Sequence[Summary], target: float, reference: str = "jobs") -> Table:
    """Per benchmark and method: median budget to get within ``target`` (a fraction) of the
    optimum, its ratio to ``reference``'s, how many seeds got there, median final regret and wall time."""
    header = ["benchmark", "method", f"budget to {target:.3g}", f"ratio to {reference}", "reached",
              "final regret", "wall s"]
    rows = []
    for s in summaries:
        budget = "not reached" if s.median_budget_to_target is None else f"{s.median_budget_to_target:g}"
        ratio = "-" if s.ratio_to_reference is None else f"{s.ratio_to_reference:.2f}"
        rows.append([s.benchmark, s.method, budget, ratio, f"{s.reached}/{s.runs}", f"{s.median_regret:.4f}",
                     f"{s.median_wall_seconds:.1f}"])
    return header, rows


def markdown(table: Table) -> str:
    """A GitHub-flavoured Markdown table."""
    header, rows = table
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
