"""One trial from start to end: load, sample the mixture, attach LoRA, train, evaluate.

`run_trial` is what a trial subprocess executes; it returns plain data (picklable, JSON-able)
so the parent can build the `cotune.Result`. Paths and devices stay out of the returned info.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import statistics
import time
from collections.abc import Mapping
from typing import Any

from cotune.train.config import DataConfig, EvalConfig, ModelConfig, TrainConfig
from cotune.train.data import (
    batches,
    encode_example,
    has_chat_template,
    mixture_counts,
    pad_id,
    read_domain,
    sample_mixture,
)
from cotune.train.errors import TrainingConfigError, TrainingError
from cotune.train.params import resolve_params, training_examples

logger = logging.getLogger(__name__)

MAX_LOSS_POINTS = 100  # training-loss points kept in a trial's info


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrialSpec:
    """Everything one trial needs, picklable for a subprocess."""

    model: ModelConfig
    data: DataConfig
    evaluation: EvalConfig | tuple[EvalConfig, ...]
    train: TrainConfig
    mixture: Mapping[str, float]
    params: Mapping[str, Any]
    budget: float
    #: A folder to save the trained adapter and the tokenizer to (peft's ``save_pretrained``), or None.
    save_to: str | None = None


def resolve_mixture(mixture: Mapping[str, float], domains: Mapping[str, str]) -> dict[str, float]:
    """The mixture over every data domain: missing domains weigh 0, an empty mixture is uniform."""
    if not mixture:
        return {name: 1.0 / len(domains) for name in domains}
    unknown = sorted(set(mixture) - set(domains))
    if unknown:
        raise TrainingConfigError(
            f"mixture domains {unknown} have no data; DataConfig.domains defines {sorted(domains)}. "
            "Use the same domain names in the search space and in the data settings."
        )
    return {name: float(mixture.get(name, 0.0)) for name in domains}


def _subsample(values: list[float], n: int) -> list[float]:
    if len(values) <= n:
        return [round(v, 5) for v in values]
    return [round(values[round(i * (len(values) - 1) / (n - 1))], 5) for i in range(n)]


def run_trial(spec: TrialSpec) -> dict[str, Any]:
    """Train one configuration for ``spec.budget`` and score it.

    Returns:
        ``{"score", "cost", "curve", "info"}``: the score at the budget, the budget spent, the
        score at each evaluated budget, and details (metrics, timings, losses, LoRA config).
    """
    import torch

    from cotune.train.evaluate import make_evaluator
    from cotune.train.lora import apply_lora, count_layers, linear_leaf_names, lora_config_dict
    from cotune.train.loop import train
    from cotune.train.model import load_model, prepare_base

    wall_start = time.perf_counter()
    params = resolve_params(spec.params, spec.train)
    mixture = resolve_mixture(spec.mixture, spec.data.domains)
    counts = mixture_counts(mixture, training_examples(params, spec.train, spec.data.n_examples))
    if spec.train.num_threads:
        torch.set_num_threads(spec.train.num_threads)

    model, tokenizer = load_model(spec.model, prepare_base(spec.model))
    load_seconds = time.perf_counter() - wall_start
    chat = spec.data.chat_template and has_chat_template(tokenizer)
    evaluator = make_evaluator(spec.evaluation, tokenizer, chat=chat)

    domains = {name: read_domain(path) for name, path in spec.data.domains.items() if counts[name]}
    examples = sample_mixture(domains, counts, spec.train.seed)
    encoded = [encode_example(tokenizer, ex, spec.data.max_length, chat=chat) for _, ex in examples]
    tokens_per_domain = dict.fromkeys(counts, 0)
    for (name, _), enc in zip(examples, encoded):
        tokens_per_domain[name] += len(enc.input_ids)
    logger.info("training set: %s examples, tokens per domain %s, chat template %s",
                counts, tokens_per_domain, "on" if chat else "off")

    full = spec.train.finetuning == "full"
    lora_dict = None if full else lora_config_dict(params.lora, count_layers(model), linear_leaf_names(model))
    torch.manual_seed(spec.train.seed)  # adapter initialisation and dropout
    model = model.requires_grad_(True) if full else apply_lora(model, params.lora)
    loop = params.loop_config(spec.train)
    result = train(model, batches(encoded, loop.batch_size, spec.train.seed), evaluator,
                   budget=spec.budget, config=loop, learning_rate=params.learning_rate,
                   optimizer=params.optimizer, pad=pad_id(tokenizer))

    info = {
        "budget_unit": spec.train.budget_unit,
        "steps": result.steps,
        "tokens": result.tokens,
        "train_seconds": round(result.train_seconds, 3),
        "eval_seconds": round(result.eval_seconds, 3),
        "load_seconds": round(load_seconds, 3),
        "wall_seconds": round(time.perf_counter() - wall_start, 3),
        "metrics": {str(b): m for b, m in result.curve.items()},
        "train_loss_first": statistics.fmean(result.losses[:5]),  # mean of the first five steps
        "train_loss_last": statistics.fmean(result.losses[-5:]),  # and of the last five
        "train_loss": _subsample(result.losses, MAX_LOSS_POINTS),
        "examples_per_domain": counts,
        "tokens_per_domain": tokens_per_domain,
        "learning_rate": params.learning_rate,
        "optimizer": params.optimizer,
        "finetuning": spec.train.finetuning,
        "lora_config": lora_dict,
        "trainable_params": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    score = result.curve[spec.budget]["score"]
    if not math.isfinite(score):
        raise TrainingError(f"the evaluation returned a non-finite score {score}; check the evaluation data")
    if spec.save_to is not None:
        model.save_pretrained(spec.save_to)
        tokenizer.save_pretrained(spec.save_to)
    return {"score": score, "cost": result.spent, "curve": {b: m["score"] for b, m in result.curve.items()},
            "info": info}
