"""Equal-budget comparison of methods on benchmark landscapes with a known optimum."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from cotune.allocation import short_budget_ladder
from cotune.bench.landscapes import make_landscape
from cotune.trial import incumbents



@dataclasses.dataclass(frozen=True)
class BenchSetup:
    """Budgets of every run: total in full budgets, full budget ``B`` and small budget ``b``; a run
    reaches the target once its incumbent's regret is at most ``target`` times the optimum's magnitude.
    ``n_init`` and ``n_confirm``, when given, are passed to every method (None: each method's own);
    ``short_runs`` to `jobs` (``"always"``: the paper's JoBS, its short runs not tested).
    With ``warm_start`` (a benchmark over the same space), every run first runs `bo` on that
    benchmark with the same seed and budget and starts from its study (``cotune.optimize(...,
    warm_start=)``): what an earlier study of a related task buys. A benchmark with proxy models
    (``scales-*``) gives them to every method unless ``proxies`` is False."""

    total_full_runs: float = 20.0
    full_budget: float = 100.0
    small_budget: float = 10.0
    target: float = 0.01
    n_init: int | str | None = None
    n_confirm: int | None = None
    short_runs: str = "tested"
    warm_start: str | None = None
    proxies: bool = True

    @property
    def total_budget(self) -> float:
        """The budget of every run, ``total_full_runs`` full budgets."""
        return self.total_full_runs * self.full_budget

    @property
    def curve_budgets(self) -> tuple[float, ...]:
        """Where every run also reports its score: ``b, 2b, 4b, ...`` up to ``B / 2``, the short
        budgets jobs may search with (`cotune.allocation.short_budget_ladder`)."""
        return tuple(short_budget_ladder(self.small_budget, self.full_budget))

    def settings(self) -> dict[str, Any]:
        """The study settings of every run, besides its method and seed (keywords of `cotune.optimize`)."""
        return dict(total_budget=self.total_budget, full_budget=self.full_budget, small_budget=self.small_budget,
                    n_init=self.n_init, n_confirm=self.n_confirm, short_runs=self.short_runs)


@dataclasses.dataclass(frozen=True)
class RunRecord:
    """One method on one benchmark with one seed.

    ``trace`` lists ``(budget spent, regret of the incumbent)`` after every finished trial, where
    the incumbent is the best configuration *measured* at the full budget so far (the one a
    user would pick), and its regret is the noise-free distance to the optimum. ``best_score``
    is the answer's measured full-budget score (what a user sees).
    """

    method: str
    benchmark: str
    seed: int
    optimum: float
    best_score: float | None
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

    landscape = make_landscape(benchmark, full_budget=setup.full_budget, curve_budgets=setup.curve_budgets, seed=seed)
    warm = None if setup.warm_start is None else _warm_start_study(setup.warm_start, seed, setup)
    start = time.perf_counter()
    proxies = getattr(landscape, "proxies", {}) if setup.proxies else {}
    result = cotune.optimize(landscape, landscape.space, method=method, seed=seed, warm_start=warm, proxies=proxies,
                             **setup.settings())
    wall = time.perf_counter() - start
    trace = [(spent, landscape.regret(best.config) if best is not None else float("inf"))
             for spent, best in incumbents(result.trials, setup.full_budget)]
    target = setup.target * abs(landscape.optimum)  # scores may be negative (minus a loss)
    reached = next((s for s, r in trace if r <= target), None)
    final = landscape.regret(result.best.config) if result.best is not None else float("inf")
    return RunRecord(
        method=method, benchmark=benchmark, seed=seed, optimum=landscape.optimum,
        best_score=None if result.best is None else result.best.score, final_regret=final,
        budget_to_target=reached, spent=result.spent, n_trials=len(result.trials),
        n_full=sum(1 for t in result.trials if t.budget == setup.full_budget and t.fidelity is None),
        wall_seconds=wall, trace=trace,
    )


@functools.lru_cache(maxsize=32)
def _warm_start_study(benchmark: str, seed: int, setup: BenchSetup) -> Any:
    """The `bo` study of ``benchmark`` with ``seed`` that runs with ``setup.warm_start`` start from
    (made once per process and shared by every method: it is the same study each time)."""
    import cotune

    source = make_landscape(benchmark, full_budget=setup.full_budget, curve_budgets=setup.curve_budgets, seed=seed)
    return cotune.optimize(source, source.space, method="bo", seed=seed, **setup.settings()).study


def short_run_correlations(benchmarks: Sequence[str], setup: BenchSetup = BenchSetup()) -> dict[str, float]:
    """Per benchmark, the rank correlation of short-run (``b``) and full-run (``B``) scores: how
    far a short run can be trusted to rank configurations there."""
    out = {}
    for name in benchmarks:
        landscape = make_landscape(name, full_budget=setup.full_budget, curve_budgets=setup.curve_budgets)
        out[name] = landscape.short_run_correlation(setup.small_budget)
    return out


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


def write_runs(records: Sequence[RunRecord], path: str | os.PathLike[str]) -> None:
    """Every run, with its regret trace, as a JSON list."""
    with open(path, "w") as fh:
        json.dump([dataclasses.asdict(r) for r in records], fh, indent=1)


@dataclasses.dataclass(frozen=True)
class Summary:
    """Per benchmark and method over seeds: the measured best score (mean and std, as in the JoBS
    paper's Table 3), the median final regret, and the median budget to reach the target with
    its ratio to the reference method's (None where either never reaches it)."""

    benchmark: str
    method: str
    runs: int
    mean_score: float
    std_score: float
    median_regret: float
    median_budget_to_target: float | None
    ratio_to_reference: float | None
    reached: int
    median_wall_seconds: float


def summarise(records: Sequence[RunRecord], reference: str = "jobs") -> list[Summary]:
    """Aggregate run records; a run that never reaches the target counts as needing infinite budget."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for record in records:
        groups.setdefault((record.benchmark, record.method), []).append(record)

    def median_budget(group: list[RunRecord]) -> float:
        return statistics.median(r.budget_to_target if r.budget_to_target is not None else math.inf for r in group)

    out = []
    for (benchmark, method), group in groups.items():
        budget = median_budget(group)
        ref = groups.get((benchmark, reference))
        ref_budget = median_budget(ref) if ref else math.inf
        scores = [r.best_score for r in group if r.best_score is not None]
        out.append(Summary(
            benchmark=benchmark, method=method, runs=len(group),
            mean_score=statistics.fmean(scores) if scores else math.nan,
            std_score=statistics.stdev(scores) if len(scores) > 1 else 0.0,
            median_regret=statistics.median(r.final_regret for r in group),
            median_budget_to_target=None if budget == math.inf else budget,
            ratio_to_reference=budget / ref_budget if math.isfinite(budget) and math.isfinite(ref_budget) else None,
            reached=sum(r.budget_to_target is not None for r in group),
            median_wall_seconds=statistics.median(r.wall_seconds for r in group),
        ))
    return out
