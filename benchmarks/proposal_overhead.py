"""Driver overhead: seconds one method takes to propose (``ask``) at 100, 300 and 1000 observations
in the paper's 20-dimensional space, for every model-based method.

The space is a 10-domain mixture plus the LoRA parameters of `cotune.lora_space` (20 encoded
dimensions), scored by the `lora-mix-10` landscape with its curves. Each method first makes its
own first 25 trials (baseline and design), then the history is filled with trials of the kind
its study would hold at that size: full runs for `bo`, `bo-data`, `bo-model` and `alternating`;
for `jobs`, full runs up to 40 and then short runs of other configurations (its short-run
search, with its 3 confirmations last so that every timed ask proposes); for `mfms`, runs at its fidelities. Then, as a study does, each repetition adds one
observation and asks. The first ask after the fill refits the GP's hyperparameters on every
observation ("refit"); the others mostly condition on the new one with the last hyperparameters
(`cotune.surrogate.gp.GPFitter`), so the median is the typical proposal and the "amortised" figure
adds a refit's share (one per `REFIT_GROWTH` growth of the observations).

    python benchmarks/proposal_overhead.py [--observations 100,300,1000] [--repeats 9] [--methods jobs,bo]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from cotune.bench.landscapes import make_landscape
from cotune.methods import History, make_method
from cotune.settings import StudySettings
from cotune.space import random_configs
from cotune.surrogate.gp import REFIT_GROWTH
from cotune.trial import Role, Trial, TrialState

MODEL_BASED = ("jobs", "bo", "bo-data", "bo-model", "alternating", "mfms")
FULL, SMALL = 100.0, 10.0
PRIMED = 25  # trials each method makes itself before the fill (its baseline and design)
JOBS_FULL_RUNS = 40  # jobs' full runs before its short-run search in the filled history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", default="100,300,1000", help="comma-separated history sizes")
    parser.add_argument("--repeats", type=int, default=9, help="asks timed after the first, each with one more observation")
    parser.add_argument("--methods", default=",".join(MODEL_BASED), help="comma-separated method names")
    args = parser.parse_args()
    landscape = make_landscape("lora-mix-10", n_layers=30, full_budget=FULL, curve_budgets=(SMALL, 20.0, 40.0))
    print(f"space: {landscape.space.dim} dimensions, torch threads {torch.get_num_threads()}")
    print("| method | observations | refit (s) | median (s) | amortised (s) | max (s) |")
    print("|---|---|---|---|---|---|")
    for method in args.methods.split(","):
        for n in (int(v) for v in args.observations.split(",")):
            first, rest = time_asks(method, landscape, n, args.repeats)
            amortised = statistics.median(rest) + first / max(1.0, REFIT_GROWTH * n)
            print(f"| {method} | {n} | {first:.3f} | {statistics.median(rest):.3f} | {amortised:.3f} | {max(rest):.3f} |",
                  flush=True)


def time_asks(name: str, landscape, n: int, repeats: int) -> tuple[float, list[float]]:
    """Seconds of the first ask after filling the history to ``n`` trials, and of ``repeats`` more."""
    space = landscape.space
    # jobs' confirmations made last, so that every timed ask is a proposal (none falls due)
    settings = StudySettings(method=name, total_budget=(n + repeats + 200) * FULL, full_budget=FULL,
                             small_budget=SMALL, seed=0, n_confirm=3 if name == "jobs" else None)
    method = make_method(name, space, settings)
    rng = np.random.default_rng(0)
    trials: list[Trial] = []

    def add(config, budget: float, role: Role) -> None:
        result = landscape(config, budget)
        trials.append(Trial(number=len(trials), config=config, budget=budget, role=role, state=TrialState.COMPLETE,
                            score=result.score, cost=budget, curve=dict(result.curve or {})))

    def history() -> History:
        return History(trials=tuple(trials), total_budget=settings.total_budget)

    for _ in range(PRIMED):
        request = method.ask(history())
        add(request.config, request.budget, request.role)
    fidelities = getattr(method, "fidelities", [FULL])

    def fill() -> None:
        config = random_configs(space, 1, rng)[0]
        if name == "jobs":
            full = sum(t.budget == FULL for t in trials) < JOBS_FULL_RUNS
            add(config, FULL if full else SMALL, Role.FULL if full else Role.SHORT)
        elif name == "mfms":
            budget = float(rng.choice(fidelities))
            add(config, budget, Role.FULL if budget == FULL else Role.SHORT)
        else:
            add(config, FULL, Role.FULL)

    while len(trials) < n:
        fill()
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        method.ask(history())
        times.append(time.perf_counter() - start)
        fill()
    return times[0], times[1:]


if __name__ == "__main__":
    main()
