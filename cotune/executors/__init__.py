"""Where trials run: threads of the driver, local processes (a GPU or CPU share each) or a Ray cluster."""

from __future__ import annotations

from cotune.exceptions import SettingsError
from cotune.executors.base import Executor
from cotune.executors.inline import InlineExecutor
from cotune.executors.process import ProcessExecutor
from cotune.executors.ray_cluster import RayExecutor

EXECUTORS: dict[str, type[Executor]] = {e.kind: e for e in (InlineExecutor, ProcessExecutor, RayExecutor)}


def make_executor(executor: str | Executor, n_workers: int = 1, timeout_s: float | None = None) -> Executor:
    """An executor by name built with ``n_workers`` and ``timeout_s``, or a ready `Executor` as it is."""
    if isinstance(executor, Executor):
        return executor
    if executor not in EXECUTORS:
        raise SettingsError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)} or pass an Executor")
    return EXECUTORS[executor](n_workers, timeout_s=timeout_s)


__all__ = ["EXECUTORS", "Executor", "InlineExecutor", "ProcessExecutor", "RayExecutor", "make_executor"]
