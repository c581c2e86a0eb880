"""Training throughput: cotune's loop against a plain transformers + peft loop.

Both train the same LoRA (q/k/v/o, rank 8) on the same model, batch and sequence length, from
a fresh load each, and report seconds per step and tokens per second over all steps. By default: the packaged
SmolLM2-135M-Instruct, batch 8 x 128 tokens of Python docs. The two loops take turns over several rounds (the first
round runs cotune's first, the next the plain loop first), and the figures compared are each loop's median round: on
a shared CPU a single timing moves by 10% from run to run, and the first training in a process pays warm-up costs.

    python benchmarks/train_throughput.py --steps 5 --rounds 3
    python benchmarks/train_throughput.py --model /path/to/model --dtype bfloat16 --device cuda
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time

import torch
from peft import get_peft_model

from cotune.train import ModelConfig, TrainConfig, build_demo_data, smollm2_model_config
from cotune.train.data import Encoded, collate, encode_example, pad_id, read_domain
from cotune.train.lora import apply_lora, build_lora_config
from cotune.train.loop import train
from cotune.train.model import load_model, prepare_base
from cotune.train.params import resolve_params


def fixed_length_batches(tokenizer, batch: int, length: int) -> list[list[Encoded]]:
    """Python-docs chunks cut to exactly ``length`` tokens (no padding), ``batch`` per step."""
    examples = read_domain(build_demo_data().domains["python_docs"])
    encoded = [encode_example(tokenizer, ex, length, chat=False) for ex in examples]
    full = [e for e in encoded if len(e.input_ids) == length]
    return [full[i:i + batch] for i in range(0, len(full) - batch + 1, batch)]


def time_cotune(model_config: ModelConfig, base: str, batches: list[list[Encoded]], steps: int) -> float:
    """Training seconds per step of `cotune.train.loop.train` (its own clock: evaluation excluded)."""
    model, tokenizer = load_model(model_config, base)
    train_config = TrainConfig(batch_size=len(batches[0]), warmup_steps=0)
    model = apply_lora(model, resolve_params({}, train_config).lora)
    result = train(model, itertools.cycle(batches), lambda m: {"score": 0.0}, budget=steps, config=train_config,
                   learning_rate=1e-3, optimizer="adamw", pad=pad_id(tokenizer))
    return result.train_seconds / result.steps


def time_plain(model_config: ModelConfig, base: str, batches: list[list[Encoded]], steps: int) -> float:
    """Seconds per step of the textbook loop: forward with labels, backward, AdamW step."""
    model, tokenizer = load_model(model_config, base)
    model = get_peft_model(model, build_lora_config(resolve_params({}, TrainConfig()).lora, model))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    device = next(model.parameters()).device
    model.train()
    start = time.perf_counter()
    for examples in itertools.islice(itertools.cycle(batches), steps):
        batch = {k: v.to(device) for k, v in collate(examples, pad_id(tokenizer)).items()}
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="local model directory (default: the packaged SmolLM2-135M)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5, help="optimiser steps a round, per loop")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; each loop's median round is compared")
    args = parser.parse_args()

    if args.model:
        model_config = ModelConfig(name_or_path=args.model, dtype=args.dtype, device=args.device)
    else:
        model_config = smollm2_model_config(dtype=args.dtype, device=args.device)
    start = time.perf_counter()
    base = prepare_base(model_config)
    print(f"model ready in {time.perf_counter() - start:.1f} s (dequantised once, then cached)")
    _, tokenizer = load_model(model_config, base)
    batches = fixed_length_batches(tokenizer, args.batch, args.length)
    tokens_per_step = args.batch * args.length
    print(f"batch {args.batch} x {args.length} = {tokens_per_step:,} tokens per step, {args.steps} steps, "
          f"dtype {args.dtype}, device {args.device}, {torch.get_num_threads()} threads")
    timers = {"cotune loop": time_cotune, "plain transformers+peft": time_plain}
    per_step: dict[str, list[float]] = {name: [] for name in timers}
    for round_ in range(args.rounds):
        names = list(timers) if round_ % 2 == 0 else list(reversed(timers))
        for name in names:
            per_step[name].append(timers[name](model_config, base, batches, args.steps))
            print(f"round {round_ + 1} {name:>24}: {per_step[name][-1]:6.2f} s/step")
    median = {name: statistics.median(times) for name, times in per_step.items()}
    for name, seconds in median.items():
        print(f"{name:>24}: {seconds:6.2f} s/step, {tokens_per_step / seconds:8.0f} tokens/s (median of {args.rounds})")
    ratio = median["plain transformers+peft"] / median["cotune loop"]
    print(f"cotune's throughput is {ratio:.1%} of the plain loop's")


if __name__ == "__main__":
    main()
