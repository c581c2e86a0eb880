"""The training loop: one adapter, one budget, evaluated at the small and the full budget.

Budget units: ``seconds`` of training (forward, backward and optimiser steps; loading and
evaluation are not charged), ``steps`` (optimiser steps) or ``tokens`` (non-padding input
tokens). A run stops at the first step that reaches its budget, so ``spent`` may overshoot by
less than one step; it is what the trial is charged.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from cotune.train.config import TrainConfig
from cotune.train.data import IGNORE_INDEX, Encoded, collate
from cotune.train.errors import TrainingDivergedError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoopResult:
    """What one training run measured; ``curve`` maps each evaluated budget to its metrics."""

    curve: dict[float, dict[str, float]]
    spent: float  # budget used, in the budget unit
    steps: int
    tokens: int
    train_seconds: float
    eval_seconds: float
    losses: list[float]  # training loss of every step


def get_lr(step: int, learning_rate: float, warmup_steps: int) -> float:
    """Learning rate of optimiser step ``step`` (0-based)."""
    # 1) linear warm-up, so the first steps of a fresh adapter are small
    if step < warmup_steps:
        return learning_rate * (step + 1) / warmup_steps
    # 2) constant afterwards: no decay tied to the budget, so the score a long run reaches at the
    #    small budget is the score a short run of the same configuration gets
    return learning_rate


def split_step(examples: Sequence[Encoded], micro: int) -> list[Sequence[Encoded]]:
    """One step's examples as forward passes of ``micro`` examples; with more than one pass, sorted
    by length first so each pass pads to a similar width (the step's gradient is the same)."""
    if micro >= len(examples):
        return [examples]
    ordered = sorted(examples, key=lambda e: len(e.input_ids))
    return [ordered[i:i + micro] for i in range(0, len(ordered), micro)]


def n_targets(labels: torch.Tensor) -> torch.Tensor:
    """Tokens a causal LM's loss counts: labels after the first position that are not masked out."""
    return (labels[:, 1:] != IGNORE_INDEX).sum()


def forward_backward(model: torch.nn.Module, batch: dict[str, torch.Tensor], weight: float,
                     device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward and backward pass of ``batch`` with its loss scaled by ``weight``; returns the
    scaled loss (detached) and the pass's non-padding tokens. A function of its own so that the
    pass's tensors are freed before the next forward: kept alive across steps, they cost about
    10% of a step on a CPU (measured with `benchmarks/train_throughput.py`)."""
    batch = {k: v.to(device) for k, v in batch.items()}
    loss = model(**batch, use_cache=False).loss * weight
    loss.backward()
    return loss.detach(), batch["attention_mask"].sum()


def make_optimizer(params: Sequence[torch.nn.Parameter], name: str, learning_rate: float,
                   weight_decay: float) -> torch.optim.Optimizer:
    """AdamW or plain SGD over the trainable (adapter) parameters."""
    import torch

    if name == "adamw":
        return torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=learning_rate, weight_decay=weight_decay)


def train(
    model: torch.nn.Module,
    batches: Iterator[list[Encoded]],
    evaluate: Callable[[torch.nn.Module], dict[str, float]],
    *,
    budget: float,
    config: TrainConfig,
    learning_rate: float,
    optimizer: str,
    pad: int,
) -> LoopResult:
    """Train ``model``'s trainable parameters until ``budget`` is spent.

    Args:
        model: A model whose only trainable parameters are the adapter's.
        batches: Endless batches of ``config.batch_size`` tokenised examples.
        evaluate: Metrics of the model, with a ``score`` entry; called at each curve budget.
        budget: Where to stop, in ``config.budget_unit``.
        config: Loop settings (micro-batches, clipping, warm-up, small budget, logging).
        learning_rate: Peak learning rate (may come from the trial's parameters).
        optimizer: ``"adamw"`` or ``"sgd"``.
        pad: Padding token id.

    Raises:
        TrainingDivergedError: The loss became NaN or infinite.
    """
    import torch

    # -- settings -----------------------------------------------------------------------------
    unit = config.budget_unit  # what `budget` counts: seconds, steps, tokens or flops
    accumulation = config.accumulation_steps  # forward/backward passes per optimiser step
    micro = config.micro_batch_size or config.batch_size  # examples per forward pass
    grad_clip = config.grad_clip  # clip the gradient norm at this value, 0 disables
    evaluated = (config.small_budget, *config.eval_budgets, budget)
    checkpoints = sorted({b for b in evaluated if b is not None and b <= budget})

    device = next(model.parameters()).device
    trainable = [p for p in model.parameters() if p.requires_grad]
    flops_per_token = 6 * sum(p.numel() for p in model.parameters())  # forward 2N + backward 4N
    opt = make_optimizer(trainable, optimizer, learning_rate, config.weight_decay)
    logger.info("training to %g %s: %d examples per step in %d micro-batch(es), %s %s, lr %g, evaluating at %s",
                budget, unit, config.batch_size, accumulation, optimizer, f"{sum(p.numel() for p in trainable):,}",
                learning_rate, checkpoints)

    curve: dict[float, dict[str, float]] = {}
    losses: list[float] = []
    step = tokens = 0
    spent = train_seconds = eval_seconds = 0.0
    model.train()
    while checkpoints:
        # 1) evaluate at each curve budget reached; evaluation time is not charged
        if spent >= checkpoints[0]:
            start = time.perf_counter()
            metrics = evaluate(model)
            eval_seconds += time.perf_counter() - start
            curve[checkpoints.pop(0)] = metrics
            logger.info("step %d (%g %s): score %.4f, eval %.1f s", step, spent, unit, metrics["score"],
                        time.perf_counter() - start)
            continue

        start = time.perf_counter()
        # 2) learning rate of this step
        lr = get_lr(step, learning_rate, config.warmup_steps)
        for group in opt.param_groups:
            group["lr"] = lr
        # 3) gradient-accumulation micro-steps: micro-batches of similar length pad less, and each
        #    one's token-mean loss is weighted by its share of the step's targets, so the step
        #    optimises the token mean of the whole batch whatever the split
        micro_batches = [collate(chunk, pad) for chunk in split_step(next(batches), micro)]
        targets = [int(n_targets(batch["labels"])) for batch in micro_batches]  # on the CPU: no device sync
        total_targets = sum(targets)
        step_loss = torch.zeros((), device=device)
        step_tokens = torch.zeros((), dtype=torch.long, device=device)
        for batch, n in zip(micro_batches, targets):
            loss, batch_tokens = forward_backward(model, batch, n / total_targets, device)
            step_loss += loss
            step_tokens += batch_tokens
        # 4) a NaN or infinite loss fails the trial; note: .item() is a CPU-GPU sync point
        loss_value = step_loss.item()
        if not math.isfinite(loss_value):
            raise TrainingDivergedError(
                f"training loss is {loss_value} at step {step} (lr {lr:g}); lower the learning rate or "
                "enable gradient clipping (TrainConfig.grad_clip)"
            )
        # 5) clip, step, and free the gradients
        if grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(trainable, grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        # 6) charge the step: its time (training only), one step, its non-padding tokens, or their flops
        train_seconds += time.perf_counter() - start
        step += 1
        tokens += int(step_tokens)
        spent = {"seconds": train_seconds, "steps": float(step), "tokens": float(tokens),
                 "flops": float(flops_per_token * tokens)}[unit]
        losses.append(loss_value)
        # 7) log
        if step % config.log_every == 0 or step == 1:
            logger.info("step %d: loss %.4f, lr %.2e, %.2f s/step, %s tokens", step, loss_value, lr,
                        train_seconds / step, f"{tokens:,}")
    return LoopResult(curve=curve, spent=spent, steps=step, tokens=tokens, train_seconds=train_seconds,
                      eval_seconds=eval_seconds, losses=losses)
