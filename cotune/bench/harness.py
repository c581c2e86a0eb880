"""Equal-budget comparison of methods on benchmark landscapes with a known optimum."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import multiprocessing
import statistics
import time
from collections.abc import Callable, Sequence

from cotune.bench.landscapes import make_landscape
from cotune.trial import TrialState

#: A method "reaches the optimum" once its incumbent is within this fraction of the optimum.
TARGET_FRACTION = 0.01


@dataclasses.dataclass(frozen=True)
class BenchSetup:
    """Budgets of every run: total in full budgets, full budget ``B`` and small budget ``b``."""

    total_full_runs: float = 20.0
    full_budget: float = 100.0
    small_budget: float = 10.0


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One method on one benchmark with one seed.

    ``trace`` lists ``(budget spent, regret of the incumbent)`` after every finished trial, where
    the incumbent is the best configuration *measured* at the full budget so far (the one a
    user would pick), and its regret is the noise-free distance to the optimum.
    """

    method: str
    benchmark: str
    seed: int
    optimum: float
    final_regret: float
    budget_to_target: float | None
    spent: float
    n_trials: int
    n_full: int
    wall_seconds: float
    trace: list[tuple[float, float]]


def run_one(method: str, benchmark: str, seed: int, setup: BenchSetup = BenchSetup()) -> RunRecord:
    """Run ``method`` on ``benchmark`` with ``seed`` and measure its regret over the budget."""
    import cotune

    landscape = make_landscape(benchmark, full_budget=setup.full_budget, curve_budgets=(setup.small_budget,),
                               seed=seed)
    start = time.perf_counter()
    result = cotune.optimize(
        landscape, landscape.space, total_budget=setup.total_full_runs * setup.full_budget,
        full_budget=setup.full_budget, small_budget=setup.small_budget, method=method, seed=seed,
    )
    wall = time.perf_counter() - start
    spent, best, trace = 0.0, None, []
    for trial in sorted((t for t in result.trials if t.state.finished), key=lambda t: t.finished_at):
        spent += trial.charged
        if trial.state is TrialState.COMPLETE and trial.budget == setup.full_budget:
            if best is None or trial.score > best.score:
                best = trial
        trace.append((spent, landscape.regret(best.config) if best is not None else float("inf")))
    target = TARGET_FRACTION * landscape.optimum
    reached = next((s for s, r in trace if r <= target), None)
    final = landscape.regret(result.best.config) if result.best is not None else float("inf")
    return RunRecord(
        method=method, benchmark=benchmark, seed=seed, optimum=landscape.optimum, final_regret=final,
        budget_to_target=reached, spent=result.spent, n_trials=len(result.trials),
        n_full=sum(1 for t in result.trials if t.budget == setup.full_budget), wall_seconds=wall, trace=trace,
    )


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def run_all(
    methods: Sequence[str],
    benchmarks: Sequence[str],
    seeds: Sequence[int],
    setup: BenchSetup = BenchSetup(),
    *,
    processes: int = 1,
    on_done: Callable[[RunRecord], None] | None = None,
) -> list[RunRecord]:
    """Every method on every benchmark with every seed, in ``processes`` worker processes."""
    jobs = [(m, b, s) for b in benchmarks for m in methods for s in seeds]
    records: list[RunRecord] = []
    if processes <= 1:
        for job in jobs:
            records.append(run_one(*job, setup))
            if on_done:
                on_done(records[-1])
        return records
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=processes, mp_context=ctx, initializer=_init_worker) as pool:
        futures = [pool.submit(run_one, *job, setup) for job in jobs]
        for future in cf.as_completed(futures):
            records.append(future.result())
            if on_done:
                on_done(records[-1])
    order = {job: i for i, job in enumerate(jobs)}
    return sorted(records, key=lambda r: order[(r.method, r.benchmark, r.seed)])


@dataclasses.dataclass(frozen=True)
class Summary:
    """Per benchmark and method: median final regret, and median budget to reach the target."""

    benchmark: str
    method: str
    runs: int
    median_regret: float
    median_budget_to_target: float | None
    reached: int
    median_wall_seconds: float


def summarise(records: Sequence[RunRecord]) -> list[Summary]:
    """Aggregate run records; a run that never reaches the target counts as needing infinite budget."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.benchmark, record.method), []).append(record)
    out = []
    for (benchmark, method), group in groups.items():
        budgets = [r.budget_to_target if r.budget_to_target is not None else float("inf") for r in group]
        median_budget = statistics.median(budgets)
        out.append(Summary(
            benchmark=benchmark, method=method, runs=len(group),
            median_regret=statistics.median(r.final_regret for r in group),
            median_budget_to_target=None if median_budget == float("inf") else median_budget,
            reached=sum(r.budget_to_target is not None for r in group),
            median_wall_seconds=statistics.median(r.wall_seconds for r in group),
        ))
    return out
