"""The two blocks of the joint space, data (the mixture) and model (the parameters), searched apart.

Baselines that tune one block with the other held fixed (`bo-data`, `bo-model`, `alternating`)
search a sub-space holding one block and join its configurations back to a full one.
"""

from __future__ import annotations

from typing import Literal

from cotune.exceptions import SettingsError
from cotune.space.search_space import Config, SearchSpace

Block = Literal["data", "model"]


def block_space(space: SearchSpace, block: Block) -> SearchSpace:
    """The sub-space of ``block``; its encoding is the block's columns of the joint encoding."""
    if block == "data":
        if not space.domains:
            raise SettingsError("this method tunes the data mixture, but the search space has no mixture")
        return SearchSpace(mixture=space.domains)
    if not space.params:
        raise SettingsError("this method tunes model parameters, but the search space has none")
    return SearchSpace(params=space.params, at_least_one=space.at_least_one)


def block_dims(space: SearchSpace, block: Block) -> list[int]:
    """Columns of the joint encoding that belong to ``block``."""
    n = len(space.domains)
    return list(range(n)) if block == "data" else list(range(n, space.dim))


def join(part: Config, rest: Config, block: Block) -> Config:
    """A full configuration: ``block`` taken from ``part``, the other block from ``rest``."""
    if block == "data":
        return Config(part.mixture, rest.params)
    return Config(rest.mixture, part.params)


def other(block: Block) -> Block:
    """The block that is not ``block``."""
    return "model" if block == "data" else "data"
