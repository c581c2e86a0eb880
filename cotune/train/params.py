"""A configuration's model parameters, merged with the training defaults and validated.

The names are those of `cotune.lora_space` (``lora_rank``, ``lora_layers``, ``rear``,
``lora_dropout``, ``lora_alpha``, ``lora_q``/``lora_k``/``lora_v``/``lora_up``/``lora_down``) plus
``lora_o`` (attention output projection, no switch in the paper's space), ``lora_dora`` (DoRA,
peft's weight-decomposed LoRA), ``lora_rslora`` (rank-stabilised LoRA: alpha / sqrt(rank)
scaling), and the loop's ``learning_rate``, ``optimizer``, ``weight_decay``,
``warmup_steps`` and ``batch_size``, and ``epochs`` (how many times a full run sees its distinct
examples: `training_examples`). Any other name is an error, so that a typo never silently
trains the default.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

from cotune.train.config import OPTIMIZERS, TrainConfig
from cotune.train.errors import TrainingConfigError

#: Target-module switch parameter -> short module key used by `cotune.train.lora`.
SWITCHES = {"lora_q": "q", "lora_k": "k", "lora_v": "v", "lora_o": "o", "lora_up": "up", "lora_down": "down"}
#: Parameters of the training loop a configuration may set (the rest of `TrainConfig` is fixed per study).
LOOP_PARAMS = ("learning_rate", "optimizer", "weight_decay", "warmup_steps", "batch_size")
PARAM_NAMES = frozenset(
    {"lora_rank", "lora_layers", "rear", "lora_dropout", "lora_alpha", "lora_dora", "lora_rslora", "epochs",
     *LOOP_PARAMS, *SWITCHES}
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class LoraSettings:
    """Resolved LoRA settings of one trial; ``modules`` lists the switched-on keys (``"q"``, ``"up"``...)."""

    rank: int
    alpha: float
    dropout: float
    layers: int | None  # None: every layer
    rear: bool
    modules: tuple[str, ...]
    dora: bool = False
    rslora: bool = False


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TrialParams:
    """Everything a configuration's ``params`` decide, after defaults are filled in."""

    lora: LoraSettings
    learning_rate: float
    optimizer: str
    weight_decay: float
    warmup_steps: int
    batch_size: int
    epochs: float | None = None

    def loop_config(self, train: TrainConfig) -> TrainConfig:
        """``train`` with the loop settings this configuration decides."""
        return dataclasses.replace(train, learning_rate=self.learning_rate, optimizer=self.optimizer,
                                   weight_decay=self.weight_decay, warmup_steps=self.warmup_steps,
                                   batch_size=self.batch_size)


def _as_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise TrainingConfigError(f"parameter {name!r} must be a positive int, got {value!r}")
    return int(value)


def _as_float(name: str, value: Any, low: float, high: float, *, closed_high: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise TrainingConfigError(f"parameter {name!r} must be a finite number, got {value!r}")
    value = float(value)
    if not (low <= value and (value <= high if closed_high else value < high)):
        bracket = "]" if closed_high else ")"
        raise TrainingConfigError(f"parameter {name!r} must be in [{low}, {high}{bracket}, got {value!r}")
    return value


def _as_bool(name: str, value: Any) -> bool:
    if not isinstance(value, (bool, numbers.Integral)) or int(value) not in (0, 1):
        raise TrainingConfigError(f"parameter {name!r} must be a bool, got {value!r}")
    return bool(value)


def resolve_params(params: Mapping[str, Any], train: TrainConfig) -> TrialParams:
    """Merge a configuration's ``params`` with ``train``'s defaults; raise on unknown or bad values."""
    unknown = sorted(set(params) - PARAM_NAMES)
    if unknown:
        raise TrainingConfigError(
            f"unknown parameter(s) {unknown} in the configuration; the training backend understands "
            f"{sorted(PARAM_NAMES)}. Remove them from the search space or rename them."
        )
    d = train.lora
    switches = {key: getattr(d, key) for key in SWITCHES.values()}
    for name, key in SWITCHES.items():
        if name in params:
            switches[key] = _as_bool(name, params[name])
    modules = tuple(key for key, on in switches.items() if on)
    if not modules:
        raise TrainingConfigError(
            f"no LoRA target module is switched on ({', '.join(SWITCHES)} are all off); switch at least one on"
        )
    layers = params.get("lora_layers", d.layers)
    lora = LoraSettings(
        rank=_as_int("lora_rank", params.get("lora_rank", d.rank)),
        alpha=_as_float("lora_alpha", params.get("lora_alpha", d.alpha), 1e-12, math.inf),
        dropout=_as_float("lora_dropout", params.get("lora_dropout", d.dropout), 0.0, 1.0),
        layers=None if layers is None else _as_int("lora_layers", layers),
        rear=_as_bool("rear", params.get("rear", d.rear)),
        modules=modules,
        dora=_as_bool("lora_dora", params.get("lora_dora", False)),
        rslora=_as_bool("lora_rslora", params.get("lora_rslora", False)),
    )
    optimizer = params.get("optimizer", train.optimizer)
    if optimizer not in OPTIMIZERS:
        raise TrainingConfigError(f"parameter 'optimizer' must be one of {OPTIMIZERS}, got {optimizer!r}")
    learning_rate = _as_float("learning_rate", params.get("learning_rate", train.learning_rate), 1e-12, math.inf)
    warmup = params.get("warmup_steps", train.warmup_steps)
    if isinstance(warmup, bool) or not isinstance(warmup, numbers.Integral) or warmup < 0:
        raise TrainingConfigError(f"parameter 'warmup_steps' must be an int >= 0, got {warmup!r}")
    return TrialParams(
        lora=lora, learning_rate=learning_rate, optimizer=optimizer,
        weight_decay=_as_float("weight_decay", params.get("weight_decay", train.weight_decay), 0.0, math.inf),
        warmup_steps=int(warmup), batch_size=_as_int("batch_size", params.get("batch_size", train.batch_size)),
        epochs=None if "epochs" not in params else _as_float("epochs", params["epochs"], 1e-12, math.inf),
    )


def training_examples(params: TrialParams, train: TrainConfig, n_examples: int) -> int:
    """Distinct training examples of a run: ``n_examples``, or where the configuration sets
    ``epochs``, as many as a full run of ``train.full_budget`` steps sees that many times (a short
    run trains on the same examples, in the same order, so it stays its full run's prefix)."""
    if params.epochs is None:
        return n_examples
    if train.budget_unit != "steps" or train.full_budget is None:
        raise TrainingConfigError(
            "parameter 'epochs' needs budgets in steps and the full run's length: set budget_unit 'steps' and "
            f"TrainConfig.full_budget (a study file does both; got budget_unit {train.budget_unit!r}, "
            f"full_budget {train.full_budget!r})"
        )
    return max(1, round(train.full_budget * params.batch_size / params.epochs))
