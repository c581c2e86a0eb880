"""Shared fixtures: a small space and cheap deterministic objectives."""

from __future__ import annotations

import pytest

import cotune


@pytest.fixture
def space() -> cotune.SearchSpace:
    return cotune.SearchSpace(
        mixture=["wiki", "code", "math"],
        params={
            "lora_rank": cotune.Int(1, 64, log=True, default=8),
            "rear": cotune.Bool(default=False),
            "lora_dropout": cotune.Float(0.0, 0.5, default=0.05),
        },
    )


def quadratic(config: cotune.Config, budget: float) -> cotune.Result:
    """A smooth landscape: best at wiki=0.6, rank 16, no dropout; short runs see a scaled score."""
    w = config.mixture
    full = 1.0 - (w["wiki"] - 0.6) ** 2 - (config.params["lora_rank"] / 64 - 0.25) ** 2 - config.params["lora_dropout"]
    return cotune.Result(score=full * min(1.0, budget / 100) ** 0.1, cost=budget, curve={5.0: full * 0.05**0.1})


@pytest.fixture
def objective():
    return quadratic
