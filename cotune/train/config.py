"""Settings of the training backend: model, data, evaluation and the training loop.

Every field carries a one-line help text in its metadata (``dataclasses.fields(cls)[i].metadata``)
so command-line help can be generated from it. Settings are validated once, in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

from cotune.settings import BUDGET_UNITS
from cotune.train.errors import TrainingConfigError

EVAL_KINDS = ("multiple_choice", "exact_match", "loss", "lm_eval")
OPTIMIZERS = ("adamw", "sgd")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


def _check_positive_int(owner: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TrainingConfigError(f"{owner}.{name} must be a positive int, got {value!r}")


def _check_positive_float(owner: str, name: str, value: Any, *, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value > 0):
        raise TrainingConfigError(f"{owner}.{name} must be a positive finite number, got {value!r}")


def _check_choice(owner: str, name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise TrainingConfigError(f"{owner}.{name} must be one of {choices}, got {value!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Which base model to fine-tune and where to run it.

    A local directory (a ``.gguf`` file inside one), or a Hugging Face model id, resolved through
    the Hugging Face cache and downloaded when not cached unless offline (``offline`` or
    ``HF_HUB_OFFLINE=1``). GGUF models are dequantised once and cached as safetensors.
    """

    name_or_path: str = dataclasses.field(metadata=_help("local model directory, or a Hugging Face model id"))
    revision: str | None = dataclasses.field(default=None, metadata=_help("hub model: branch, tag or commit (default main)"))
    offline: bool = dataclasses.field(
        default=False, metadata=_help("hub model: use the local Hugging Face cache only (as HF_HUB_OFFLINE=1 does)"))
    gguf_file: str | None = dataclasses.field(default=None, metadata=_help("GGUF file name inside name_or_path"))
    cache_dir: str | None = dataclasses.field(
        default=None, metadata=_help("folder for the dequantised safetensors copy (default $COTUNE_CACHE or ~/.cache/cotune)")
    )
    dtype: Literal["float32", "bfloat16", "auto"] = dataclasses.field(
        default="auto", metadata=_help("dtype of the frozen base weights; auto: bfloat16 on CUDA, float32 on CPU")
    )
    trust_remote_code: bool = dataclasses.field(default=False, metadata=_help("allow model code shipped with the files"))
    device: Literal["auto", "cpu", "cuda"] = dataclasses.field(
        default="auto", metadata=_help("where to train; auto: cuda when available, else cpu")
    )

    def __post_init__(self) -> None:
        if not isinstance(self.name_or_path, str) or not self.name_or_path:
            raise TrainingConfigError(f"ModelConfig.name_or_path must be a non-empty string, got {self.name_or_path!r}")
        if self.gguf_file is not None and not str(self.gguf_file).endswith(".gguf"):
            raise TrainingConfigError(f"ModelConfig.gguf_file must name a .gguf file, got {self.gguf_file!r}")
        _check_choice("ModelConfig", "dtype", self.dtype, ("float32", "bfloat16", "auto"))
        _check_choice("ModelConfig", "device", self.device, ("auto", "cpu", "cuda"))


@dataclasses.dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Training domains and how many examples a trial trains on.

    A domain file is JSONL (rows with ``text``, ``prompt``/``completion`` or ``question``/``answer``),
    a ``.txt`` file (one document per blank-line-separated block) or a directory written by
    ``datasets.Dataset.save_to_disk`` (needs the ``datasets`` package).
    """

    domains: Mapping[str, str] = dataclasses.field(metadata=_help("domain name -> local path of its data"))
    n_examples: int = dataclasses.field(default=512, metadata=_help("training examples per trial, split by the mixture"))
    max_length: int = dataclasses.field(default=128, metadata=_help("tokens per example; longer ones are truncated"))
    chat_template: bool = dataclasses.field(
        default=True, metadata=_help("format prompt/completion pairs with the tokenizer's chat template when it has one")
    )

    def __post_init__(self) -> None:
        if not isinstance(self.domains, Mapping) or not self.domains:
            raise TrainingConfigError(f"DataConfig.domains must be a non-empty mapping name -> path, got {self.domains!r}")
        domains = {str(name): str(path) for name, path in self.domains.items()}
        object.__setattr__(self, "domains", domains)
        _check_positive_int("DataConfig", "n_examples", self.n_examples)
        _check_positive_int("DataConfig", "max_length", self.max_length)
        if self.max_length < 2:
            raise TrainingConfigError(f"DataConfig.max_length must be at least 2, got {self.max_length}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalConfig:
    """The held-out task that scores a trained adapter (higher is better).

    ``multiple_choice`` rows: ``{"question", "choices": [...], "answer": index}``, scored by the
    log-likelihood of each choice. ``exact_match`` rows: ``{"prompt" or "question", "answer": str
    or [str, ...]}``, scored on greedy answers. ``loss`` rows: like training rows, scored as minus
    the mean token loss. ``lm_eval`` runs an lm-evaluation-harness task (package ``lm-eval``);
    its ``path``, if set, is a folder of the user's own task YAML files (lm-eval's ``include_path``),
    which is how a task reads local data instead of a dataset hub.
    """

    kind: Literal["multiple_choice", "exact_match", "loss", "lm_eval"] = dataclasses.field(
        metadata=_help("how the adapter is scored")
    )
    path: str | None = dataclasses.field(
        default=None, metadata=_help("JSONL file of evaluation rows; for lm_eval, an optional folder of task YAML files")
    )
    task: str | None = dataclasses.field(default=None, metadata=_help("lm-evaluation-harness task name (kind lm_eval)"))
    metric: str | None = dataclasses.field(
        default=None,
        metadata=_help("score to return: multiple_choice accuracy|accuracy_norm|prob_correct; lm_eval e.g. acc,none"),
    )
    n_examples: int | None = dataclasses.field(default=None, metadata=_help("evaluate on the first n rows (default all)"))
    batch_size: int = dataclasses.field(default=16, metadata=_help("questions (multiple_choice) or sequences per evaluation batch"))
    max_length: int = dataclasses.field(default=256, metadata=_help("tokens per evaluation sequence"))
    max_new_tokens: int = dataclasses.field(default=16, metadata=_help("generated tokens per answer (exact_match)"))
    name: str | None = dataclasses.field(default=None, metadata=_help("the task's name when a study scores several"))
    weight: float = dataclasses.field(default=1.0, metadata=_help("the task's weight in the score when a study scores several"))

    def __post_init__(self) -> None:
        _check_choice("EvalConfig", "kind", self.kind, EVAL_KINDS)
        if isinstance(self.weight, bool) or not isinstance(self.weight, (int, float)) or \
                not (math.isfinite(self.weight) and self.weight > 0):
            raise TrainingConfigError(f"EvalConfig.weight must be a positive number, got {self.weight!r}")
        if self.kind == "lm_eval":
            if not self.task:
                raise TrainingConfigError("EvalConfig.kind='lm_eval' needs `task` (an lm-evaluation-harness task name)")
        elif not self.path:
            raise TrainingConfigError(f"EvalConfig.kind={self.kind!r} needs `path` (a JSONL file of evaluation rows)")
        if self.kind == "multiple_choice":
            metric = self.metric or "accuracy"
            _check_choice("EvalConfig", "metric", metric, ("accuracy", "accuracy_norm", "prob_correct"))
            object.__setattr__(self, "metric", metric)
        elif self.kind == "lm_eval":
            object.__setattr__(self, "metric", self.metric or "acc,none")
        elif self.metric is not None:
            raise TrainingConfigError(f"EvalConfig.metric is only used by multiple_choice and lm_eval; unset it for kind={self.kind!r}")
        _check_positive_int("EvalConfig", "n_examples", self.n_examples, allow_none=True)
        _check_positive_int("EvalConfig", "batch_size", self.batch_size)
        _check_positive_int("EvalConfig", "max_length", self.max_length)
        _check_positive_int("EvalConfig", "max_new_tokens", self.max_new_tokens)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoraDefaults:
    """LoRA settings used for every parameter a configuration does not set (PEFT's names in brackets)."""

    rank: int = dataclasses.field(default=8, metadata=_help("adapter rank [r]"))
    alpha: float = dataclasses.field(default=16.0, metadata=_help("scaling numerator, update scale alpha/r [lora_alpha]"))
    dropout: float = dataclasses.field(default=0.05, metadata=_help("dropout on the adapter input [lora_dropout]"))
    layers: int | None = dataclasses.field(default=None, metadata=_help("number of adapted layers (default all)"))
    rear: bool = dataclasses.field(default=False, metadata=_help("count adapted layers from the last one instead of the first"))
    q: bool = dataclasses.field(default=True, metadata=_help("adapt the attention query projection"))
    k: bool = dataclasses.field(default=True, metadata=_help("adapt the attention key projection"))
    v: bool = dataclasses.field(default=True, metadata=_help("adapt the attention value projection"))
    o: bool = dataclasses.field(default=True, metadata=_help("adapt the attention output projection"))
    up: bool = dataclasses.field(default=False, metadata=_help("adapt the MLP up (and gate) projections"))
    down: bool = dataclasses.field(default=False, metadata=_help("adapt the MLP down projection"))

    def __post_init__(self) -> None:
        _check_positive_int("LoraDefaults", "rank", self.rank)
        _check_positive_float("LoraDefaults", "alpha", self.alpha)
        _check_positive_int("LoraDefaults", "layers", self.layers, allow_none=True)
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, (int, float)) or not 0 <= self.dropout < 1:
            raise TrainingConfigError(f"LoraDefaults.dropout must be in [0, 1), got {self.dropout!r}")


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The training loop: optimiser, budget accounting and the LoRA defaults.

    The learning rate is constant after warm-up, so a full run's score at ``small_budget`` is
    what a short run of the same configuration would reach (the curve point is honest).
    """

    batch_size: int = dataclasses.field(default=8, metadata=_help("examples per optimiser step"))
    micro_batch_size: int | None = dataclasses.field(
        default=None,
        metadata=_help("examples per forward pass, a step's examples grouped by length; gradients accumulate up to "
                       "batch_size (default batch_size)"),
    )
    learning_rate: float = dataclasses.field(default=1e-3, metadata=_help("peak learning rate of the adapter"))
    optimizer: Literal["adamw", "sgd"] = dataclasses.field(default="adamw", metadata=_help("optimiser of the adapter"))
    weight_decay: float = dataclasses.field(default=0.0, metadata=_help("decoupled weight decay (adamw) or L2 (sgd)"))
    warmup_steps: int = dataclasses.field(default=5, metadata=_help("steps of linear learning-rate warm-up"))
    grad_clip: float = dataclasses.field(default=1.0, metadata=_help("clip the gradient norm at this value, 0 to disable"))
    budget_unit: Literal["seconds", "steps", "tokens", "flops"] = dataclasses.field(
        default="steps", metadata=_help("unit of the budget: training seconds (evaluation excluded), steps, tokens, or "
                                        "flops (6 x the model's parameters x the tokens trained on)")
    )
    finetuning: Literal["lora", "full"] = dataclasses.field(
        default="lora", metadata=_help("lora: train an adapter; full: train every weight of the model (no adapter)")
    )
    small_budget: float | None = dataclasses.field(
        default=None, metadata=_help("also evaluate here during a longer run, giving the curve point the predictor needs")
    )
    full_budget: float | None = dataclasses.field(
        default=None, metadata=_help("steps of a full run: a configuration that sets `epochs` trains on "
                                     "full_budget x batch_size / epochs distinct examples (study files set it)")
    )
    eval_budgets: tuple[float, ...] = dataclasses.field(
        default=(), metadata=_help("further budgets at which a longer run evaluates (learning curves, recordings)")
    )
    timeout_s: float | None = dataclasses.field(
        default=None, metadata=_help("wall-clock limit of one trial's subprocess (loading and evaluation included)")
    )
    seed: int = dataclasses.field(default=0, metadata=_help("seed of data sampling, adapter initialisation and dropout"))
    num_threads: int | None = dataclasses.field(default=None, metadata=_help("CPU threads per trial (default torch's)"))
    log_every: int = dataclasses.field(default=10, metadata=_help("log the training loss every this many steps"))
    lora: LoraDefaults = dataclasses.field(
        default_factory=LoraDefaults, metadata=_help("LoRA settings for parameters a configuration leaves out")
    )

    def __post_init__(self) -> None:
        if isinstance(self.lora, Mapping):
            object.__setattr__(self, "lora", LoraDefaults(**self.lora))
        _check_positive_int("TrainConfig", "batch_size", self.batch_size)
        _check_positive_int("TrainConfig", "micro_batch_size", self.micro_batch_size, allow_none=True)
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise TrainingConfigError(
                f"TrainConfig.batch_size ({self.batch_size}) must be a multiple of micro_batch_size "
                f"({self.micro_batch_size}); change one of them"
            )
        _check_positive_float("TrainConfig", "learning_rate", self.learning_rate)
        _check_choice("TrainConfig", "optimizer", self.optimizer, OPTIMIZERS)
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise TrainingConfigError(f"TrainConfig.weight_decay must be >= 0, got {self.weight_decay!r}")
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise TrainingConfigError(f"TrainConfig.warmup_steps must be an int >= 0, got {self.warmup_steps!r}")
        if isinstance(self.grad_clip, bool) or not isinstance(self.grad_clip, (int, float)) or self.grad_clip < 0:
            raise TrainingConfigError(f"TrainConfig.grad_clip must be >= 0 (0 disables clipping), got {self.grad_clip!r}")
        _check_choice("TrainConfig", "budget_unit", self.budget_unit, BUDGET_UNITS)
        _check_choice("TrainConfig", "finetuning", self.finetuning, ("lora", "full"))
        for name in ("small_budget", "full_budget", "timeout_s"):
            value = getattr(self, name)
            _check_positive_float("TrainConfig", name, value, allow_none=True)
            if value is not None:
                object.__setattr__(self, name, float(value))
        budgets = tuple(self.eval_budgets) if isinstance(self.eval_budgets, (list, tuple)) else None
        if budgets is None or any(isinstance(b, bool) or not isinstance(b, (int, float)) or not b > 0 for b in budgets):
            raise TrainingConfigError(f"TrainConfig.eval_budgets must be a list of positive numbers, got {self.eval_budgets!r}")
        object.__setattr__(self, "eval_budgets", tuple(sorted(float(b) for b in budgets)))
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise TrainingConfigError(f"TrainConfig.seed must be an int >= 0, got {self.seed!r}")
        _check_positive_int("TrainConfig", "num_threads", self.num_threads, allow_none=True)
        _check_positive_int("TrainConfig", "log_every", self.log_every)
        if not isinstance(self.lora, LoraDefaults):
            raise TrainingConfigError(f"TrainConfig.lora must be a LoraDefaults or a mapping, got {self.lora!r}")

    @property
    def accumulation_steps(self) -> int:
        """Forward/backward passes per optimiser step."""
        return self.batch_size // (self.micro_batch_size or self.batch_size)
