"""The `cotune` command: benchmarks now; demo, run, status, best and report as they land."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
from collections.abc import Sequence


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="compare methods at equal budget on synthetic landscapes with a known optimum",
        description="Run every method on every benchmark and seed at the same total budget and print, per "
                    "method, the median final regret and the median budget needed to get within 1%% of the optimum.",
    )
    p.add_argument("--methods", type=_csv, default=["jobs", "random", "bo"], help="comma-separated method names")
    p.add_argument("--benchmarks", type=_csv, default=["lora-mix"], help="comma-separated benchmark names")
    p.add_argument("--seeds", type=int, default=5, help="number of seeds per method and benchmark")
    p.add_argument("--budget", type=float, default=20.0, help="total budget, in full runs")
    p.add_argument("--full-budget", type=float, default=100.0, help="budget of one full run, B")
    p.add_argument("--small-budget", type=float, default=10.0, help="budget of one short run, b")
    p.add_argument("--processes", type=int, default=2, help="runs in parallel (one process each)")
    p.add_argument("--json", metavar="PATH", help="write every run (with its regret trace) to this JSON file")
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from cotune.bench.harness import TARGET_FRACTION, BenchSetup, run_all, summarise
    from cotune.bench.landscapes import LANDSCAPES
    from cotune.methods import METHODS

    for name in args.methods:
        if name not in METHODS:
            raise SystemExit(f"cotune bench: unknown method {name!r}; choose from {', '.join(METHODS)}")
    for name in args.benchmarks:
        if name not in LANDSCAPES:
            raise SystemExit(f"cotune bench: unknown benchmark {name!r}; choose from {', '.join(LANDSCAPES)}")
    console = Console()
    setup = BenchSetup(total_full_runs=args.budget, full_budget=args.full_budget, small_budget=args.small_budget)
    total = len(args.methods) * len(args.benchmarks) * args.seeds
    console.print(f"{total} runs: total budget {setup.total_full_runs * setup.full_budget:g} "
                  f"(B={setup.full_budget:g}, b={setup.small_budget:g}), {args.processes} process(es)")
    done = []

    def report(record):
        done.append(record)
        console.print(f"[{len(done)}/{total}] {record.benchmark} {record.method} seed {record.seed}: "
                      f"regret {record.final_regret:.4f}, {record.n_trials} trials, {record.wall_seconds:.0f}s")

    records = run_all(args.methods, args.benchmarks, list(range(args.seeds)), setup,
                      processes=args.processes, on_done=report)
    table = Table(title=f"median over {args.seeds} seeds (target: within {TARGET_FRACTION:.0%} of the optimum)")
    for column in ("benchmark", "method", "final regret", "budget to target", "reached", "wall s"):
        table.add_column(column, justify="left" if column in ("benchmark", "method") else "right")
    for s in summarise(records):
        budget = "not reached" if s.median_budget_to_target is None else f"{s.median_budget_to_target:g}"
        table.add_row(s.benchmark, s.method, f"{s.median_regret:.4f}", budget, f"{s.reached}/{s.runs}",
                      f"{s.median_wall_seconds:.1f}")
    console.print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump([dataclasses.asdict(r) for r in records], fh, indent=1)
        console.print(f"runs written to {args.json}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the `cotune` command."""
    parser = argparse.ArgumentParser(
        prog="cotune", description="Joint optimisation of the training data mixture and the LoRA configuration.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log every trial")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_bench(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `cotune` command."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
