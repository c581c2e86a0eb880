"""Trials in local worker processes, one per slot, reused from trial to trial: a GPU each
(``CUDA_VISIBLE_DEVICES``) or a share of the CPUs."""

from __future__ import annotations

import os
import pickle
import queue
from collections.abc import Sequence
from typing import Any

from cotune.exceptions import SettingsError
from cotune.executors.base import Executor, Objective, call_objective
from cotune.isolation import WorkerProcess


def visible_gpus() -> list[str]:
    """GPU ids this process may use: ``CUDA_VISIBLE_DEVICES`` if set, else every CUDA device torch sees."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [d.strip() for d in listed.split(",") if d.strip() and d.strip() != "-1"]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


class ProcessExecutor(Executor):
    """Runs each trial in the ``spawn`` worker process of one of ``n_workers`` slots of this machine.

    A slot's process runs one trial after another, so a short trial does not pay a Python start-up
    (the training objective still trains each run in a fresh subprocess of its own); a worker
    that crashes, is killed or runs past ``timeout_s`` is replaced by a new one. With GPUs
    (``devices``, default: the visible ones) slot ``i`` sees only ``devices[i % len]``
    through ``CUDA_VISIBLE_DEVICES``, so ``n_workers = len(devices)`` runs one trial per GPU;
    without, each slot gets ``cpu_count // n_workers`` threads (``OMP_NUM_THREADS``). A trial
    that crashes or is killed fails with `cotune.WorkerLostError`, one that runs past
    ``timeout_s`` is killed, and the objective must be picklable (a module-level function or
    an instance of a module-level class). Every slot's process sees ``COTUNE_WORKER=<slot>``.
    """

    kind = "process"

    def __init__(self, n_workers: int = 1, *, timeout_s: float | None = None,
                 devices: Sequence[str | int] | None = None) -> None:
        super().__init__(n_workers, timeout_s=timeout_s)
        self.devices = None if devices is None else [str(d) for d in devices]
        self._slots: queue.Queue[int] = queue.Queue()
        for slot in range(n_workers):
            self._slots.put(slot)
        self._workers: dict[int, WorkerProcess] = {}

    def start(self, objective: Objective) -> None:
        try:
            pickle.dumps(objective)
        except Exception as err:  # noqa: BLE001 - any pickling failure gets the same advice
            raise SettingsError(
                "the process executor runs the objective in other processes, so it must be picklable: a "
                f"module-level function or an instance of a module-level class, not a lambda or closure ({err})"
            ) from err
        if self.devices is None:
            self.devices = visible_gpus()

    def slot_env(self, slot: int) -> dict[str, str]:
        """The environment of a trial on ``slot``."""
        env = {"COTUNE_WORKER": str(slot)}
        if self.devices:
            env["CUDA_VISIBLE_DEVICES"] = self.devices[slot % len(self.devices)]
        else:
            threads = str(max(1, (os.cpu_count() or 1) // self.n_workers))
            env.update(OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
        return env

    def run(self, objective: Objective, config: Any, budget: float) -> Any:
        slot = self._slots.get()
        try:
            worker = self._workers.get(slot)
            if worker is None or not worker.alive:
                if worker is not None:
                    worker.close()
                worker = self._workers[slot] = WorkerProcess(env=self.slot_env(slot))
            return worker.call(call_objective, (objective, config, budget), timeout_s=self.timeout_s,
                               cancel=self._cancel, timeout_hint="raise trial_timeout_s or lower the budget")
        finally:
            self._slots.put(slot)

    def shutdown(self, *, cancel: bool = False) -> None:
        super().shutdown(cancel=cancel)
        workers, self._workers = self._workers, {}
        for worker in workers.values():
            worker.close()
