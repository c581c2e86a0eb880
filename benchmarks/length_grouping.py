"""Training speed on examples of mixed length: one forward pass per step against micro-batches grouped by length.

A step's batch pads every example to its longest one. The demo's domains mix short trivia answers
with 128-token Python-docs chunks, so a large batch is mostly padding; with ``micro_batch_size``
cotune sorts the step's examples by length and runs them in passes that pad to similar widths (the
step's gradient is the same). On a CPU smaller passes are also faster by themselves. This trains
the demo's baseline configuration on its uniform mixture once per micro-batch size and prints
training seconds per step and real (non-padding) tokens per second.

    python benchmarks/length_grouping.py                        # batch 16; micro-batches 16 (one pass), 8, 4, 2
    python benchmarks/length_grouping.py --batch 8 --micro 8,4 --steps 4
"""

from __future__ import annotations

import argparse

import torch

from cotune.demo import METRIC
from cotune.space.lora import lora_space
from cotune.train import demo_objective


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=16, help="examples per optimiser step")
    parser.add_argument("--micro", default="16,8,4,2", help="comma-separated micro-batch sizes (divisors of --batch)")
    parser.add_argument("--steps", type=int, default=6, help="training steps per run")
    args = parser.parse_args()

    print(f"batch {args.batch}, {args.steps} steps of the demo's uniform mixture, {torch.get_num_threads()} threads")
    for micro in (int(m) for m in args.micro.split(",")):
        objective = demo_objective(n_examples=256, n_eval=8, metric=METRIC, batch_size=args.batch,
                                   micro_batch_size=micro, warmup_steps=0, in_process=True)
        info = objective(lora_space(objective.domains, objective.n_layers()).default_config(), args.steps).info
        seconds = info["train_seconds"]
        print(f"micro-batch {micro:>3} ({args.batch // micro} pass(es) a step): {seconds / info['steps']:6.2f} s/step, "
              f"{info['tokens'] / seconds:6.0f} real tokens/s, training loss {info['train_loss'][0]:.4f} at step 1",
              flush=True)


if __name__ == "__main__":
    main()
