"""Does the demo's answer beat its baseline on questions it was not selected on?

`cotune demo` picks its best configuration by the score on the first ``n_eval`` held-out
questions, so its margin over the baseline includes selection noise. This script trains the
study's best configuration and its baseline again at the full budget, with the study's training
seed and with other seeds, and scores both on *fresh* held-out questions (the rows of the demo's
evaluation file after the first ``n_eval``), printing every score and the mean difference.

    python benchmarks/demo_holdout.py cotune-demo.db --questions 384 --seeds 0,1
    python benchmarks/demo_holdout.py cotune-demo.db --skip 0 --questions 48 --seeds 0   # reproduces the study
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
from cotune.train import TrainingObjective
from cotune.train.data import read_jsonl


def fresh_questions(path: str, skip: int, count: int, folder: Path) -> str:
    """A JSONL file of ``count`` evaluation rows after the first ``skip`` of ``path``."""
    rows = read_jsonl(Path(path))[skip:skip + count]
    if len(rows) < count:
        raise SystemExit(f"{path} holds {skip + len(rows)} questions; ask for at most {len(rows)} fresh ones")
    out = folder / "fresh.jsonl"
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(out)


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
    parser.add_argument("--questions", type=int, default=384, help="fresh held-out questions to score on")
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
              f"on the {settings.n_eval} questions it selected on")
        name, candidate, baseline = "best", best.config, measured.config
    diffs = []
    with tempfile.TemporaryDirectory() as tmp:
        fresh = fresh_questions(demo.evaluation.path, args.skip, args.questions, Path(tmp))
        evaluation = dataclasses.replace(demo.evaluation, path=fresh, n_examples=None)
        for seed in (int(s) for s in args.seeds.split(",")):
            objective = TrainingObjective(model=demo.model, data=demo.data, evaluation=evaluation,
                                          train=dataclasses.replace(demo.train, seed=seed, small_budget=None))
            score = objective(candidate, settings.full_budget).score
            base = objective(baseline, settings.full_budget).score
            diffs.append(score - base)
            print(f"training seed {seed}: {name} {score:.4f}, baseline {base:.4f}, "
                  f"difference {diffs[-1]:+.4f} on questions {args.skip + 1}-{args.skip + args.questions}", flush=True)
    spread = f" (std {statistics.stdev(diffs):.4f})" if len(diffs) > 1 else ""
    print(f"mean difference {statistics.fmean(diffs):+.4f}{spread} over {len(diffs)} training seed(s)")


if __name__ == "__main__":
    main()
