"""Trials in threads of the driver process: for cheap Python objectives and for debugging."""

from __future__ import annotations

from typing import Any

from cotune.exceptions import SettingsError
from cotune.executors.base import Executor, Objective, call_objective


class InlineExecutor(Executor):
    """Runs the objective in ``n_workers`` threads of this process (no isolation, no time limit).

    An objective that holds the GIL gains nothing from more threads; one that sleeps, waits on
    I/O or starts its own processes (like `cotune.train.TrainingObjective`) does.
    """

    kind = "inline"

    def __init__(self, n_workers: int = 1, *, timeout_s: float | None = None) -> None:
        if timeout_s is not None:
            raise SettingsError("the inline executor cannot stop a running thread, so it has no trial timeout; "
                                "use executor='process' or 'ray' for trial_timeout_s")
        super().__init__(n_workers)

    def run(self, objective: Objective, config: Any, budget: float) -> Any:
        return call_objective(objective, config, budget)
