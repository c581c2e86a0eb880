"""`cotune.optimize`: the front door that runs a whole study on an objective."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from cotune.executors import Executor
from cotune.space.search_space import Config, SearchSpace
from cotune.study import OptimizeResult, Study
from cotune.trial import Result


def optimize(
    objective: Callable[[Config, float], float | Result],
    space: SearchSpace,
    *,
    total_budget: float,
    full_budget: float,
    small_budget: float | None = None,
    method: str = "jobs",
    n_init: int | str | None = None,
    seed: int = 0,
    storage: str | Path | None = None,
    n_workers: int = 1,
    executor: str | Executor = "inline",
    retries: int = 0,
    trial_timeout_s: float | None = None,
    progress: bool = False,
    **settings: Any,
) -> OptimizeResult:
    """Find the best mixture and model configuration for ``objective`` within ``total_budget``.

    ``objective(config, budget)`` trains ``config`` for ``budget`` and returns its score (higher
    is better) or a `Result`. With ``storage`` (a SQLite path), the study is saved as it goes
    and a re-run resumes it. ``n_workers`` trials run at once on ``executor`` (``"inline"``
    threads, ``"process"`` local processes, ``"ray"`` a local Ray instance, or an `Executor`
    such as ``RayExecutor(address="auto", resources_per_trial={"GPU": 1})``); a failed attempt
    is run again up to ``retries`` times. Further keyword ``settings`` (``n_confirm``,
    ``kernel``, ``acquisition``, ``short_runs``, ``budget_unit``, ``study_name``) are passed to `Study`.

    Returns:
        The best configuration measured at the full budget, every trial and the budget spent.
    """
    study = Study(space, total_budget=total_budget, full_budget=full_budget, small_budget=small_budget,
                  method=method, n_init=n_init, seed=seed, storage=storage, **settings)
    return study.optimize(objective, n_workers=n_workers, executor=executor, retries=retries,
                          trial_timeout_s=trial_timeout_s, progress=progress)
