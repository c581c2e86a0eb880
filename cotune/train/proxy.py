"""Proxy models: smaller siblings of the base model whose runs inform the target's
(`cotune.optimize(..., proxies=)`). What a proxy's run costs in the target's units, and how a
configuration of the target's space maps onto a model with fewer layers.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotune.train.config import ModelConfig
from cotune.train.errors import TrainingConfigError

if TYPE_CHECKING:
    import torch


def _hf_config(model: ModelConfig) -> Any:
    """The model's transformers config, read from its prepared local files (GGUF dequantised once)."""
    from transformers import AutoConfig

    from cotune.train.model import prepare_base

    return AutoConfig.from_pretrained(prepare_base(model), local_files_only=True,
                                      trust_remote_code=model.trust_remote_code)


@functools.lru_cache(maxsize=16)
def layer_count(model: ModelConfig) -> int:
    """The model's number of transformer layers (from its config, no weights loaded)."""
    from cotune.train.model import prepare_base

    base = Path(prepare_base(model))
    if (base / "config.json").is_file():
        config = json.loads((base / "config.json").read_text())
        return int(config.get("text_config", config)["num_hidden_layers"])
    return int(_hf_config(model).get_text_config().num_hidden_layers)


def linear_weights(net: torch.nn.Module) -> int:
    """Weights of a network's linear layers (the output head included): the multiply-adds a token
    costs in a forward pass, up to attention."""
    import torch

    return sum(m.weight.numel() for m in net.modules() if isinstance(m, torch.nn.Linear))


@functools.lru_cache(maxsize=16)
def weights_per_token(model: ModelConfig) -> int:
    """`linear_weights` of the model, counted on the meta device (no weights loaded)."""
    import torch
    from transformers import AutoModelForCausalLM

    config = _hf_config(model)
    with torch.device("meta"):
        return linear_weights(AutoModelForCausalLM.from_config(config, trust_remote_code=model.trust_remote_code))


def cost_factor(proxy: ModelConfig, target: ModelConfig) -> float:
    """What a step (or token) of ``proxy`` costs in the target's: the ratio of their weights per
    token, as training compute (about 6 x weights x tokens) goes.

    Raises:
        TrainingConfigError: the proxy is not smaller than the target.
    """
    factor = weights_per_token(proxy) / weights_per_token(target)
    if not 0.0 < factor < 1.0:
        raise TrainingConfigError(
            f"proxy model {proxy.name_or_path} has {weights_per_token(proxy):,} weights per token, the target "
            f"{target.name_or_path} {weights_per_token(target):,}: a proxy must be smaller than the target model")
    return factor


def proxy_layers(layers: int, *, target_layers: int, proxy_layers: int) -> int:
    """``layers`` adapted layers of the target as the same share of the proxy's layers (at least one)."""
    return max(1, min(proxy_layers, round(layers * proxy_layers / target_layers)))
