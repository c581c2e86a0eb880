"""Does the demo's answer beat its baseline on data it was not selected on?

`cotune demo` picks its best configuration by the score on ``n_eval`` held-out rows, so its
margin over the baseline includes selection noise. This script trains the study's best
configuration and its baseline again at the full budget, with other training seeds, and scores
both on *fresh* held-out data: for the ``blend`` task the fresh rows of the target domains
(`DemoData.fresh_targets`: held out of training like the ones the study selected on, never
scored by it), for ``trivia`` the questions after the first ``n_eval``. It prints every score,
the mean difference and its ratio to the standard deviation of the baseline's score over seeds.

    python benchmarks/demo_holdout.py cotune-demo.db --seeds 1,2,3
    python benchmarks/demo_holdout.py cotune-demo.db --task trivia --n-eval 48 --questions 384 --seeds 0,1
    python benchmarks/demo_holdout.py cotune-demo.db --task trivia --n-eval 48 --skip 0 --questions 48 --seeds 0
    python benchmarks/demo_holdout.py --questions 256 --seeds 0,1,2 --set lora_alpha=64

It takes `cotune demo`'s settings flags (``--batch-size``, ``--full-budget``, ...): give the ones
the study ran with. ``--set NAME=VALUE`` compares the baseline with a copy of it whose LoRA
setting ``NAME`` is ``VALUE`` (a hand-picked change) instead of with a study's best
configuration; it needs no study.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
from pathlib import Path

from cotune.demo import add_settings_arguments, demo_space, demo_training, settings_from_arguments
from cotune.space.search_space import Config
from cotune.study import Study
from cotune.train import EvalConfig, TrainingObjective, build_demo_data
from cotune.train.data import read_jsonl


def fresh_questions(path: str, skip: int, count: int, folder: Path) -> str:
    """A JSONL file of ``count`` evaluation rows after the first ``skip`` of ``path``."""
    rows = read_jsonl(Path(path))[skip:skip + count]
    if len(rows) < count:
        raise SystemExit(f"{path} holds {skip + len(rows)} questions; ask for at most {len(rows)} fresh ones")
    out = folder / "fresh.jsonl"
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(out)


def fresh_evaluation(demo: TrainingObjective, task: str, seed: int, skip: int, count: int | None,
                     folder: Path) -> EvalConfig | list[EvalConfig]:
    """The demo's evaluation on fresh data: each target domain's fresh rows (the first ``count``,
    default all) for ``blend``; ``count`` questions (default 384) after the first ``skip`` for ``trivia``."""
    if task == "blend":
        fresh = build_demo_data(seed=seed).fresh_targets
        return [dataclasses.replace(t, path=fresh[t.name], n_examples=count) for t in demo.evaluation]
    path = fresh_questions(demo.evaluation.path, skip, 384 if count is None else count, folder)
    return dataclasses.replace(demo.evaluation, path=path, n_examples=None)


def changed(baseline: Config, assignments: list[str]) -> Config:
    """``baseline`` with each ``NAME=VALUE`` of ``assignments`` applied to its LoRA settings."""
    params = dict(baseline.params)
    for item in assignments:
        name, sep, value = item.partition("=")
        if not sep or name not in params:
            raise SystemExit(f"--set takes NAME=VALUE with NAME one of {sorted(params)}, got {item!r}")
        try:
            params[name] = json.loads(value)
        except json.JSONDecodeError:
            raise SystemExit(f"--set {item!r}: VALUE must be a number, true or false") from None
    return Config(baseline.mixture, params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("study", nargs="?", help="the demo's study file (cotune-demo.db); not needed with --set")
    parser.add_argument("--questions", type=int, default=None,
                        help="fresh rows of each target domain (blend; default all) or questions (trivia; "
                             "default 384) to score on")
    parser.add_argument("--seeds", default="0,1", help="comma-separated training seeds")
    parser.add_argument("--skip", type=int,
                        help="questions to skip (default: the demo's n_eval, the ones it selected on; "
                             "0 with --questions 48 --seeds 0 reproduces the study's own scores)")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help="compare the baseline with itself changed so (repeatable), not with the study's best")
    add_settings_arguments(parser)
    args = parser.parse_args()
    settings = settings_from_arguments(args)
    if args.skip is None:
        args.skip = settings.n_eval

    demo = demo_training(settings)
    baseline = demo_space(demo, settings).default_config()
    if args.set:
        name, candidate = "changed", changed(baseline, args.set)
        print(f"comparing the baseline with itself changed: {', '.join(args.set)}")
    elif args.study is None:
        raise SystemExit("name the demo's study file (cotune-demo.db) to check its answer, or use --set NAME=VALUE")
    else:
        study = Study.load(args.study, study_name="demo")
        best, measured = study.best, study.baseline
        if best is None or measured is None:
            raise SystemExit(f"{args.study} has no measured best configuration or baseline; run `cotune demo` first")
        print(f"study: best {best.score:.4f} (trial {best.number}), baseline {measured.score:.4f} "
              f"on the {settings.n_eval} held-out rows or questions it selected on")
        name, candidate, baseline = "best", best.config, measured.config
    print(f"{name}: {candidate}")
    diffs, bases = [], []
    with tempfile.TemporaryDirectory() as tmp:
        evaluation = fresh_evaluation(demo, settings.task, settings.seed, args.skip, args.questions, Path(tmp))
        for seed in (int(s) for s in args.seeds.split(",")):
            objective = TrainingObjective(model=demo.model, data=demo.data, evaluation=evaluation,
                                          train=dataclasses.replace(demo.train, seed=seed, small_budget=None))
            score = objective(candidate, settings.full_budget).score
            base = objective(baseline, settings.full_budget).score
            diffs.append(score - base)
            bases.append(base)
            print(f"training seed {seed}: {name} {score:.4f}, baseline {base:.4f}, difference {diffs[-1]:+.4f} "
                  "on fresh data", flush=True)
    wins = sum(d > 0 for d in diffs)
    print(f"mean difference {statistics.fmean(diffs):+.4f} over {len(diffs)} training seed(s); {name} better in "
          f"{wins}/{len(diffs)}")
    if len(bases) > 1:
        spread = statistics.stdev(bases)
        ratio = statistics.fmean(diffs) / spread if spread > 0 else float("inf")
        print(f"the baseline's score over the seeds: std {spread:.4f}; mean difference / std = {ratio:.1f}")


if __name__ == "__main__":
    main()
