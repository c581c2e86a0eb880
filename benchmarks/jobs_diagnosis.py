"""Where does jobs lose on a benchmark: in the search, in the predictor, or in the confirmations?

For every seed, runs jobs on a benchmark landscape (whose true scores are known) and prints the
number of full runs that taught the predictor F, F's cross-validated error, the best regret
among the configurations the search *visited* with short runs and how many of them were within
the target, F's bias and correlation with the truth on those configurations, the regrets of
the confirmed configurations, and the final regret.

    python benchmarks/jobs_diagnosis.py lora-mix --budget 40 --seeds 10
    python benchmarks/jobs_diagnosis.py lora-mix --budget 40 --seeds 10 --n-init 25 --n-confirm 5
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import statistics

import numpy as np

import cotune
from cotune.bench.harness import BenchSetup
from cotune.bench.landscapes import LANDSCAPES, make_landscape


def diagnose(benchmark: str, seed: int, setup: BenchSetup) -> dict:
    """One jobs run on ``benchmark`` with ``seed``, measured against the landscape's true scores."""
    import torch

    torch.set_num_threads(1)
    landscape = make_landscape(benchmark, full_budget=setup.full_budget, curve_budgets=setup.curve_budgets,
                               seed=seed)
    result = cotune.optimize(landscape, landscape.space, method="jobs", seed=seed, **setup.settings())
    short = [t for t in result.trials if t.role is cotune.Role.SHORT and t.predicted is not None]
    regret = np.array([landscape.regret(t.config) for t in short])
    predicted, true = np.array([t.predicted for t in short]), landscape.optimum - regret
    attrs = result.study.attributes
    searched = len(short) > 1  # jobs searches with short runs only once they proved to predict
    return dict(
        seed=seed, n_init=sum(t.role is cotune.Role.FULL for t in result.trials), cv=attrs.get("predictor_cv_rmse"),
        visited=float(regret.min()) if searched else None,
        within=int((regret <= setup.target * abs(landscape.optimum)).sum()), n_short=len(short),
        bias=float(np.mean(predicted - true)) if searched else None,
        corr=float(np.corrcoef(predicted, true)[0, 1]) if searched else None,
        confirmed=[landscape.regret(t.config) for t in result.trials if t.role is cotune.Role.CONFIRM],
        final=landscape.regret(result.best.config),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmark", choices=sorted(LANDSCAPES))
    parser.add_argument("--budget", type=float, default=40.0, help="total budget, in full runs (default 40)")
    parser.add_argument("--small-budget", type=float, default=10.0, help="short-run budget, B = 100 (default 10)")
    parser.add_argument("--seeds", type=int, default=10, help="number of seeds (default 10)")
    parser.add_argument("--n-init", default=None,
                        help="full runs that teach F: an int, or 'auto' for the regret bound "
                             "(default: 60%% of the budget)")
    parser.add_argument("--n-confirm", type=int, default=None,
                        help="confirmation full runs, made last (default: half of what the initial full runs leave, "
                             "spread over the search)")
    parser.add_argument("--processes", type=int, default=2, help="runs in parallel (default 2)")
    args = parser.parse_args()
    n_init = args.n_init if args.n_init in (None, "auto") else int(args.n_init)
    setup = BenchSetup(total_full_runs=args.budget, small_budget=args.small_budget, n_init=n_init,
                       n_confirm=args.n_confirm)
    target = setup.target * abs(make_landscape(args.benchmark).optimum)
    n_confirm = "half of the rest" if args.n_confirm is None else args.n_confirm
    print(f"jobs on {args.benchmark}, {args.budget:g} full runs of budget, b = {args.small_budget:g} (B = 100), "
          f"n_init {args.n_init or '60% of the budget'}, n_confirm {n_confirm}; target regret {target:.4f}")
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=args.processes, mp_context=ctx) as pool:
        rows = list(pool.map(diagnose, [args.benchmark] * args.seeds, range(args.seeds),
                             [setup] * args.seeds))
    for r in rows:
        confirmed = " ".join(f"{c:.4f}" for c in r["confirmed"])
        cv = "none" if r["cv"] is None else f"{r['cv']:.4f}"
        search = ("no short-run search (short runs did not prove to predict)" if r["visited"] is None else
                  f"visited {r['n_short']} short runs, best regret {r['visited']:.4f}, {r['within']} within target; "
                  f"F on them: bias {r['bias']:+.4f}, corr {r['corr']:.2f}")
        print(f"seed {r['seed']}: {r['n_init']} full runs, F CV RMSE {cv}; {search}; confirmed {confirmed}; "
              f"final {r['final']:.4f}")
    visited = sum(r["visited"] is not None and r["visited"] <= target for r in rows)
    reached = sum(r["final"] <= target for r in rows)
    print(f"seeds whose search visited the target: {visited}/{len(rows)}; whose answer reached it: "
          f"{reached}/{len(rows)}; median final regret {statistics.median(r['final'] for r in rows):.4f}")


if __name__ == "__main__":
    main()
