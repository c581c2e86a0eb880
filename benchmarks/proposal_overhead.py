"""Optimiser overhead: seconds to propose one configuration with 300 observations in 20 dimensions.

The space is a 10-domain mixture plus the LoRA parameters of `cotune.lora_space` (20 encoded
dimensions). Each repetition adds one observation and proposes, as a study does: the GP is
refitted by marginal likelihood from the previous fit's hyperparameters (warm start), then the
acquisition is maximised over the mixed space. The first (cold) proposal is reported apart.

    python benchmarks/proposal_overhead.py [--observations 300] [--repeats 9] [--acquisition ucb]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from cotune.bench.landscapes import make_landscape
from cotune.space import random_configs
from cotune.surrogate.acquisition import AcquisitionOptions
from cotune.surrogate.proposer import Proposer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--acquisition", default="ucb", choices=["ucb", "logei"])
    parser.add_argument("--kernel", default="matern", choices=["matern", "deep"])
    args = parser.parse_args()

    landscape = make_landscape("lora-mix-10", n_layers=30)
    space = landscape.space
    rng = np.random.default_rng(0)
    configs = random_configs(space, args.observations + args.repeats, rng)
    X = space.encode_many(configs)
    y = np.array([landscape.true_score(c) for c in configs]) + rng.normal(0, 0.003, len(configs))
    yvar = np.where(rng.random(len(configs)) < 0.8, 1e-4, 0.0)  # most points predicted, some measured
    proposer = Proposer(space, kernel=args.kernel, options=AcquisitionOptions(kind=args.acquisition))
    print(f"space: {space.dim} dimensions, {args.observations} observations, torch threads {torch.get_num_threads()}")
    times = []
    for i in range(args.repeats + 1):
        n = args.observations + i
        start = time.perf_counter()
        proposer.propose(X[:n], y[:n], yvar[:n], X_pending=np.zeros((0, space.dim)), exclude=set(), seed=i)
        times.append(time.perf_counter() - start)
    print(f"cold proposal (first fit): {times[0]:.3f} s")
    print(f"warm proposals: median {statistics.median(times[1:]):.3f} s, "
          f"min {min(times[1:]):.3f} s, max {max(times[1:]):.3f} s over {args.repeats}")


if __name__ == "__main__":
    main()
