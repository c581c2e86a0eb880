"""Parallel trials: wall-clock time and final regret of a study with 1 and with N workers.

The objective is a synthetic landscape whose cost is a sleep proportional to the budget (a full
run of budget 100 sleeps 20 s by default), so the figures show what the driver
adds: proposals while other trials run, pending trials in the GP, no idle worker. Prints, per
seed, the wall-clock time and the final regret of both, then the medians and their ratio.

    python benchmarks/parallel_speedup.py                        # jobs, 4 workers, 3 seeds
    python benchmarks/parallel_speedup.py --method bo --executor process --seeds 1
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import cotune
from cotune.bench.landscapes import LoraMixtureLandscape


@dataclasses.dataclass(frozen=True)
class SleepingLandscape:
    """`LoraMixtureLandscape` whose every call sleeps ``seconds_per_unit * budget``."""

    landscape: LoraMixtureLandscape
    seconds_per_unit: float

    def __call__(self, config: cotune.Config, budget: float) -> cotune.Result:
        time.sleep(self.seconds_per_unit * budget)
        return self.landscape(config, budget)


def run(method: str, seed: int, workers: int, executor: str, seconds_per_unit: float,
        total: float) -> tuple[float, float, int]:
    """Wall-clock seconds, final regret and number of short runs of one study (jobs makes short runs
    only once they pay, and in parallel that decision can come out otherwise: its time depends on it)."""
    landscape = LoraMixtureLandscape(curve_budgets=(10.0,), seed=seed)
    objective = SleepingLandscape(landscape, seconds_per_unit)
    start = time.perf_counter()
    result = cotune.optimize(objective, landscape.space, total_budget=total, full_budget=100, small_budget=10,
                             method=method, seed=seed, n_workers=workers, executor=executor)
    short = sum(1 for t in result.trials if t.budget < 100)
    return time.perf_counter() - start, landscape.regret(result.best.config), short


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="jobs")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--executor", default="inline", choices=["inline", "process"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seconds-per-unit", type=float, default=0.2, help="sleep per unit of budget")
    parser.add_argument("--budget", type=float, default=1000.0, help="total budget (full runs cost 100)")
    args = parser.parse_args()

    rows = []
    for seed in range(args.seeds):
        seq = run(args.method, seed, 1, args.executor, args.seconds_per_unit, args.budget)
        par = run(args.method, seed, args.workers, args.executor, args.seconds_per_unit, args.budget)
        rows.append((seq, par))
        print(f"seed {seed}: 1 worker {seq[0]:6.1f} s, regret {seq[1]:.4f}, {seq[2]} short runs | {args.workers} "
              f"workers {par[0]:6.1f} s, regret {par[1]:.4f}, {par[2]} short runs | time ratio {par[0] / seq[0]:.3f}",
              flush=True)
    seq_time = statistics.median(s[0] for s, _ in rows)
    par_time = statistics.median(p[0] for _, p in rows)
    print(f"median wall-clock: 1 worker {seq_time:.1f} s, {args.workers} workers {par_time:.1f} s, "
          f"ratio {par_time / seq_time:.3f}")
    print(f"median final regret: 1 worker {statistics.median(s[1] for s, _ in rows):.4f}, "
          f"{args.workers} workers {statistics.median(p[1] for _, p in rows):.4f}")


if __name__ == "__main__":
    main()
