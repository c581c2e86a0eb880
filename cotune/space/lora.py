"""The paper's joint space: data mixture plus the LoRA settings of Hugging Face PEFT."""

from __future__ import annotations

from collections.abc import Sequence

from cotune.exceptions import SpaceError
from cotune.space.params import Bool, Float, Int
from cotune.space.search_space import SearchSpace

#: Switches for the LoRA target modules; at least one must be on.
TARGET_SWITCHES = ("lora_q", "lora_k", "lora_v", "lora_up", "lora_down")


def lora_space(domains: Sequence[str] | None, n_layers: int, *, max_rank: int = 256,
               max_alpha: float = 500.0) -> SearchSpace:
    """Mixture over ``domains`` plus LoRA rank (1 to ``max_rank``), number of adapted layers,
    front/rear, target module switches (Q, K, V, Up, Down; at least one on), dropout and alpha
    (1 to ``max_alpha``).

    Defaults follow PEFT's (rank 8, alpha 16, Q and V on) with every layer adapted. The attention
    output projection O has no switch (the paper's space has none): the training backend adapts it
    in every trial, as ``TrainConfig.lora.o`` is True by default (set it False to leave O out).
    """
    if isinstance(n_layers, bool) or not isinstance(n_layers, int) or n_layers < 1:
        raise SpaceError(f"n_layers must be a positive int (the model's layer count), got {n_layers!r}")
    if max_rank < 2:
        raise SpaceError(f"max_rank must be at least 2, got {max_rank!r}")
    if isinstance(max_alpha, bool) or not isinstance(max_alpha, (int, float)) or not max_alpha > 1.0:
        raise SpaceError(f"max_alpha must be a number above 1, got {max_alpha!r}")
    params = {
        "lora_rank": Int(1, max_rank, log=True, default=min(8, max_rank)),
        "lora_layers": Int(1, n_layers, default=n_layers) if n_layers > 1 else None,
        "rear": Bool(default=False),
        "lora_q": Bool(default=True),
        "lora_k": Bool(default=False),
        "lora_v": Bool(default=True),
        "lora_up": Bool(default=False),
        "lora_down": Bool(default=False),
        "lora_dropout": Float(0.0, 0.5, default=0.05),
        "lora_alpha": Float(1.0, float(max_alpha), log=True, default=min(16.0, float(max_alpha))),
    }
    params = {k: v for k, v in params.items() if v is not None}
    return SearchSpace(mixture=domains, params=params, at_least_one=[TARGET_SWITCHES])
