"""From resolved LoRA settings to a PEFT ``LoraConfig`` for a concrete model.

Module keys map to llama-style projection names, which Llama, Mistral, Qwen2/3, Gemma, OLMo,
SmolLM and most recent decoder-only models share. ``up`` covers both MLP input projections
(``up_proj`` and SwiGLU's ``gate_proj``), as both map the hidden state up to the MLP width.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cotune.train.config import LoraDefaults, TrainConfig
from cotune.train.errors import TrainingConfigError
from cotune.train.params import LoraSettings, resolve_params

if TYPE_CHECKING:
    import torch
    from peft import LoraConfig

logger = logging.getLogger(__name__)

#: Module key -> projection names it adapts, for llama-style decoders.
LLAMA_STYLE_TARGETS: dict[str, tuple[str, ...]] = {
    "q": ("q_proj",),
    "k": ("k_proj",),
    "v": ("v_proj",),
    "o": ("o_proj",),
    "up": ("up_proj", "gate_proj"),
    "down": ("down_proj",),
}


def layer_indices(n_layers: int, layers: int | None, rear: bool) -> list[int]:
    """Indices of the adapted layers: the first ``layers`` (or the last ones when ``rear``)."""
    if layers is None:
        return list(range(n_layers))
    if layers > n_layers:
        raise TrainingConfigError(
            f"lora_layers={layers} but the model has only {n_layers} layers; "
            f"use a search space with lora_layers <= {n_layers} (e.g. cotune.lora_space(domains, n_layers={n_layers}))"
        )
    return list(range(n_layers - layers, n_layers)) if rear else list(range(layers))


def target_module_names(modules: Sequence[str], available: set[str] | None = None) -> list[str]:
    """Projection names for the switched-on module keys, checked against ``available`` when given."""
    names = sorted({name for key in modules for name in LLAMA_STYLE_TARGETS[key]})
    if available is not None:
        missing = [name for name in names if name not in available]
        if missing:
            raise TrainingConfigError(
                f"the model has no linear layers named {missing}; cotune maps q/k/v/o/up/down to llama-style "
                f"names {sorted({n for v in LLAMA_STYLE_TARGETS.values() for n in v})} and this model has "
                f"{sorted(available)}. Use a llama-style model or switch those modules off."
            )
    return names


def lora_config_dict(settings: LoraSettings, n_layers: int, available: set[str] | None = None) -> dict[str, Any]:
    """Keyword arguments of a ready-to-use ``peft.LoraConfig`` (JSON-able; ``LoraConfig(**d)``)."""
    layers = layer_indices(n_layers, settings.layers, settings.rear)
    return {
        "task_type": "CAUSAL_LM",
        "r": settings.rank,
        "lora_alpha": settings.alpha,
        "lora_dropout": settings.dropout,
        "target_modules": target_module_names(settings.modules, available),
        "layers_to_transform": None if len(layers) == n_layers else layers,
        "bias": "none",
        **({"use_dora": True} if settings.dora else {}),
        **({"use_rslora": True} if settings.rslora else {}),
    }


def params_to_lora_dict(params: Mapping[str, Any], n_layers: int, defaults: LoraDefaults | None = None) -> dict[str, Any]:
    """A configuration's ``params`` as ``peft.LoraConfig`` keyword arguments, for a model with ``n_layers``.

    For printing the best configuration (``json.dumps`` it); ``learning_rate``/``optimizer`` are
    accepted and left out, as they are not LoRA settings.
    """
    train = TrainConfig(lora=defaults or LoraDefaults())
    return lora_config_dict(resolve_params(params, train).lora, n_layers)


def count_layers(model: torch.nn.Module) -> int:
    """The number of transformer layers of a Hugging Face causal LM."""
    config = model.config.get_text_config()
    n_layers = getattr(config, "num_hidden_layers", None)
    if not isinstance(n_layers, int):
        raise TrainingConfigError(f"cannot tell how many layers {type(model).__name__} has (no config.num_hidden_layers)")
    return n_layers


def linear_leaf_names(model: torch.nn.Module) -> set[str]:
    """Last name component of every ``torch.nn.Linear`` in the model (e.g. ``q_proj``)."""
    import torch

    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)}


def build_lora_config(settings: LoraSettings, model: torch.nn.Module) -> LoraConfig:
    """The ``peft.LoraConfig`` for ``model``, checked against its real layers and module names."""
    from peft import LoraConfig

    return LoraConfig(**lora_config_dict(settings, count_layers(model), linear_leaf_names(model)))


def apply_lora(model: torch.nn.Module, settings: LoraSettings) -> torch.nn.Module:
    """Wrap a freshly loaded ``model`` with LoRA adapters (PEFT mutates it in place; never reuse it).

    Base weights are frozen; adapter weights are float32 whatever the base dtype.
    """
    from peft import get_peft_model

    config = build_lora_config(settings, model)
    with warnings.catch_warnings():
        # peft 0.21 reads transformers 5's deprecated alias; nothing for cotune users to act on
        warnings.filterwarnings("ignore", "`is_gradient_checkpointing` is deprecated", FutureWarning)
        peft_model = get_peft_model(model, config, autocast_adapter_dtype=True)
    n_trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    logger.info(
        "LoRA r=%d alpha=%g dropout=%g on %s, layers %s: %s trainable parameters",
        config.r, config.lora_alpha, config.lora_dropout, sorted(config.target_modules),
        config.layers_to_transform or "all", f"{n_trainable:,}",
    )
    return peft_model
