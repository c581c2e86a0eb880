"""How much does a short run tell about the full run, on a recording of real runs?

JoBS searches with short runs and the predictor F; that only works where a short run's score
(with the configuration) predicts the full-budget score. For every budget a recording evaluated
below the full one, this prints the correlation (Pearson and rank) of the short-run score with the full score and
the cross-validated error of F against two references: the full scores' own spread (guessing
their mean) and "the short score plus the mean gain". An F no better than these means short
runs carry no signal at that budget.

    python benchmarks/short_run_signal.py                      # smollm2-trivia
    python benchmarks/short_run_signal.py /tmp/check.json      # a file written by record_real_runs.py --out
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from cotune.bench.recorded import RECORDINGS, RecordedLandscape, recording_path
from cotune.predictor import Predictor
from cotune.space.search_space import Config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("recording", nargs="?", default="smollm2-trivia",
                        help=f"a packaged recording ({', '.join(sorted(RECORDINGS))}) or a recording's JSON file")
    parser.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    parser.add_argument("--repeats", type=int, default=3, help="cross-validation repeats with other splits (default 3)")
    args = parser.parse_args()

    path = recording_path(args.recording) if args.recording in RECORDINGS else Path(args.recording)
    if not path.is_file():
        raise SystemExit(f"{args.recording} is neither a packaged recording ({', '.join(sorted(RECORDINGS))}) "
                         "nor a file")
    landscape = RecordedLandscape(path=path)
    runs = landscape.data["runs"]
    full_key = max(runs[0]["curve"], key=float)
    X = landscape.space.encode_many([Config.from_dict(r["config"]) for r in runs])
    full = np.array([r["curve"][full_key] for r in runs])
    print(f"{args.recording}: {len(runs)} runs, full budget {float(full_key):g}, "
          f"spread of full scores {full.std():.4f}")
    for key in sorted((k for k in runs[0]["curve"] if k != full_key), key=float):
        short = np.array([r["curve"][key] for r in runs])
        errors: dict[str, list[float]] = {"F": [], "short + mean gain": []}
        for repeat in range(args.repeats):
            folds = np.random.default_rng([repeat]).permutation(len(runs)) % args.folds
            for fold in range(args.folds):
                train, test = folds != fold, folds == fold
                mean, _ = Predictor(seed=repeat).fit(X[train], short[train], full[train]).predict(X[test], short[test])
                errors["F"] += list((mean - full[test]) ** 2)
                gain = float(np.mean(full[train] - short[train]))
                errors["short + mean gain"] += list((short[test] + gain - full[test]) ** 2)
        rmse = ", ".join(f"{name} {np.sqrt(np.mean(e)):.4f}" for name, e in errors.items())
        rank = spearmanr(short, full).statistic
        print(f"b = {float(key):g}: correlation with the full score {np.corrcoef(short, full)[0, 1]:.2f} "
              f"(rank {rank:.2f}); "
              f"cross-validated RMSE: {rmse}")


if __name__ == "__main__":
    main()
