"""Trials as Ray tasks on an existing cluster (or a local one), each with the resources it asks for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from cotune.exceptions import SettingsError, TrialFailedError, TrialTimeoutError, WorkerLostError
from cotune.executors.base import Executor, Objective, call_objective


#: Colour codes Ray puts in its error texts.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class RayExecutor(Executor):
    """Runs each trial as a Ray task with ``resources_per_trial`` (e.g. ``{"GPU": 1}``).

    Connects to ``address`` (``"auto"`` for the cluster this machine belongs to, ``ray://...``
    for a remote one) or, with None, starts a local Ray instance that is shut down with the
    executor. The driver keeps ``n_workers`` trials in flight; Ray places them. A task whose
    worker or node dies fails with `cotune.WorkerLostError`; one past ``timeout_s`` is cancelled.
    The objective is pickled to the workers, so the module defining it must be importable there
    (Ray's ``runtime_env``, e.g. ``init_kwargs={"runtime_env": {"working_dir": "."}}``).

    Args:
        n_workers: Trials in flight at once.
        address: Ray address, or None for a local instance.
        resources_per_trial: ``CPU`` (default 1), ``GPU`` (default 0) and custom resources.
        timeout_s: Wall-clock limit of one trial.
        init_kwargs: Further `ray.init` arguments (e.g. ``num_cpus`` of a local instance).
    """

    kind = "ray"

    def __init__(self, n_workers: int = 1, *, address: str | None = None,
                 resources_per_trial: Mapping[str, float] | None = None, timeout_s: float | None = None,
                 init_kwargs: Mapping[str, Any] | None = None) -> None:
        super().__init__(n_workers, timeout_s=timeout_s)
        self.address = address
        resources = dict(resources_per_trial or {})
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 for v in resources.values()):
            raise SettingsError(f"resources_per_trial values must be numbers >= 0, got {resources!r}")
        self.resources = resources
        self.init_kwargs = dict(init_kwargs or {})
        self._remote: Any = None
        self._started_ray = False

    def start(self, objective: Objective) -> None:
        try:
            import ray
        except ImportError as err:
            raise SettingsError("the ray executor needs Ray: pip install 'cotune[ray]'") from err
        if not ray.is_initialized():
            ray.init(address=self.address, include_dashboard=False, configure_logging=False, **self.init_kwargs)
            self._started_ray = True
        resources = dict(self.resources)
        options = {"num_cpus": resources.pop("CPU", 1), "num_gpus": resources.pop("GPU", 0), "max_retries": 0}
        if resources:
            options["resources"] = resources
        self._remote = ray.remote(call_objective).options(**options)

    def run(self, objective: Objective, config: Any, budget: float) -> Any:
        import ray
        from ray import exceptions as rex

        ref = self._remote.remote(objective, config, budget)
        waited = 0.0
        try:
            while True:
                step = 1.0 if self.timeout_s is None else min(1.0, self.timeout_s - waited)
                ready, _ = ray.wait([ref], timeout=max(step, 0.0))
                if ready:
                    return ray.get(ref)
                waited += step
                if self._cancel.is_set():
                    ray.cancel(ref, force=True)
                    raise WorkerLostError("the trial was cancelled and its Ray task stopped")
                if self.timeout_s is not None and waited >= self.timeout_s:
                    ray.cancel(ref, force=True)
                    raise TrialTimeoutError(f"the trial ran past its wall-clock limit of {self.timeout_s:g} s and "
                                            "its Ray task was cancelled; raise trial_timeout_s or lower the budget")
        except rex.RayTaskError as err:
            if isinstance(err.cause, (rex.WorkerCrashedError, rex.NodeDiedError, rex.TaskCancelledError)):
                raise WorkerLostError(f"the Ray worker running the trial was lost: {err.cause}") from None
            cause = f"{type(err.cause).__name__}: {err.cause}" if err.cause is not None else "an error"
            remote = _ANSI.sub("", str(err))
            raise TrialFailedError(f"the trial failed in its Ray task with {cause}\n\n{remote}") from None
        except (rex.WorkerCrashedError, rex.NodeDiedError, rex.ObjectLostError, rex.TaskCancelledError,
                rex.OutOfMemoryError) as err:
            raise WorkerLostError(f"the Ray worker running the trial was lost: {err}") from None

    def shutdown(self, *, cancel: bool = False) -> None:
        super().shutdown(cancel=cancel)
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
            self._remote = None
