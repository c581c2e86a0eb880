"""Objectives for executor and fault tests; module-level so that spawned processes can import them.

Each call appends ``start`` and ``done`` lines to a log file (one ``write`` each, appended
atomically), so a test can count how often every trial's configuration really ran.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import time
from pathlib import Path

import cotune

SPACE = cotune.SearchSpace(mixture=["a", "b"], params={"x": cotune.Float(0.0, 1.0, default=0.5)})


def log_line(log: str, text: str) -> None:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (text + "\n").encode())
    finally:
        os.close(fd)


def key(config: cotune.Config, budget: float) -> str:
    return f"{config.mixture['a']:.6f}/{config.params['x']:.10f}/{budget:g}"


def score(config: cotune.Config) -> float:
    return 1.0 - (config.mixture["a"] - 0.7) ** 2 - (config.params["x"] - 0.2) ** 2


@dataclasses.dataclass
class Logged:
    """Sleeps ``seconds`` and scores; ``fault`` makes chosen calls misbehave once per configuration.

    fault: ``"sigkill"`` (the worker process kills itself), ``"hang"`` (sleeps for an hour),
    ``"raise"`` (raises) or None; it hits the configurations with ``x > 0.5`` on their first attempt.
    """

    log: str
    seconds: float = 0.0
    fault: str | None = None

    def __call__(self, config: cotune.Config, budget: float) -> cotune.Result:
        k = key(config, budget)
        first = not any(line == f"start {k}" for line in Path(self.log).read_text().splitlines()) \
            if Path(self.log).exists() else True
        log_line(self.log, f"start {k}")
        log_line(self.log, f"pid {os.getpid()}")
        if self.fault and first and config.params["x"] > 0.5:
            if self.fault == "sigkill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.fault == "hang":
                time.sleep(3600)
            raise RuntimeError("flaky failure (simulated)")
        time.sleep(self.seconds)
        log_line(self.log, f"done {k}")
        return cotune.Result(score=score(config), info={
            "gpu": os.environ.get("CUDA_VISIBLE_DEVICES"), "worker": os.environ.get("COTUNE_WORKER"), "pid": os.getpid(),
        })


def _pid() -> int:
    return os.getpid()


@dataclasses.dataclass
class Nested:
    """Scores after running a function in a subprocess of its own (as the training objective does)."""

    def __call__(self, config: cotune.Config, budget: float) -> cotune.Result:
        from cotune.isolation import call_in_subprocess

        return cotune.Result(score=score(config), info={"outer": os.getpid(), "inner": call_in_subprocess(_pid)})


def counts(log: str, kind: str) -> dict[str, int]:
    """How many ``kind`` ("start" or "done") lines each configuration-and-budget key has."""
    out: dict[str, int] = {}
    for line in Path(log).read_text().splitlines():
        if line.startswith(kind + " "):
            out[line.split(" ", 1)[1]] = out.get(line.split(" ", 1)[1], 0) + 1
    return out


def pids(log: str) -> list[int]:
    """Process ids of every trial started so far."""
    return [int(line.split()[1]) for line in Path(log).read_text().splitlines() if line.startswith("pid ")]


def drive(db: str, log: str) -> None:
    """A driver: a random-search study of 8 full runs on 2 process workers, each run 2 s."""
    cotune.optimize(Logged(log, seconds=2.0), SPACE, total_budget=800, full_budget=100, method="random",
                    storage=db, executor="process", n_workers=2)


if __name__ == "__main__":
    drive(sys.argv[1], sys.argv[2])
