"""What every executor does: run ``objective(config, budget)`` somewhere and return a future of its value."""

from __future__ import annotations

import abc
import concurrent.futures as cf
import threading
from collections.abc import Callable
from typing import Any

from cotune.exceptions import SettingsError

Objective = Callable[[Any, float], Any]


def call_objective(objective: Objective, config: Any, budget: float) -> Any:
    """``objective(config, budget)``: the function every executor runs where the trial runs."""
    return objective(config, budget)


class Executor(abc.ABC):
    """Runs up to ``n_workers`` trials at once; `submit` returns a `concurrent.futures.Future`.

    The future holds the objective's value, or raises what the objective raised
    (`cotune.TrialFailedError` with its text when it ran elsewhere), `cotune.TrialTimeoutError`
    when the trial ran past ``timeout_s``, or `cotune.WorkerLostError` when the process or
    machine running it died. Each submitted trial occupies one worker thread of the driver
    while it runs, so the driver keeps proposing meanwhile.
    """

    #: The name used in `cotune.optimize(executor=...)` and in study files.
    kind: str

    def __init__(self, n_workers: int = 1, *, timeout_s: float | None = None) -> None:
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise SettingsError(f"n_workers must be a positive int, got {n_workers!r}")
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))
                                      or not timeout_s > 0):
            raise SettingsError(f"trial_timeout_s must be a positive number of seconds or None, got {timeout_s!r}")
        self.n_workers = n_workers
        self.timeout_s = None if timeout_s is None else float(timeout_s)
        self._cancel = threading.Event()
        self._pool: cf.ThreadPoolExecutor | None = None

    def submit(self, objective: Objective, config: Any, budget: float) -> cf.Future:
        """Start ``objective(config, budget)``; the future resolves when it finishes."""
        if self._pool is None:
            self.start(objective)
            self._pool = cf.ThreadPoolExecutor(max_workers=self.n_workers, thread_name_prefix=f"cotune-{self.kind}")
        return self._pool.submit(self.run, objective, config, budget)

    def start(self, objective: Objective) -> None:
        """Prepare to run ``objective`` (check it, connect to a cluster); called before the first trial."""

    @abc.abstractmethod
    def run(self, objective: Objective, config: Any, budget: float) -> Any:
        """Run one trial to its end and return the objective's value (called in a worker thread)."""

    def shutdown(self, *, cancel: bool = False) -> None:
        """Wait for running trials, or with ``cancel`` stop them where the executor can."""
        if cancel:
            self._cancel.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=cancel)
            self._pool = None
        self._cancel.clear()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(n_workers={self.n_workers}, timeout_s={self.timeout_s})"
