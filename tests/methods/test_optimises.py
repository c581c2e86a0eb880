"""Every model-based method optimises: on an easy landscape it ends closer to the optimum than
random search with the same budget and seeds.

The landscape is noise-free and smooth: a quadratic bowl over a 3-domain mixture and two
parameters, best at mixture (0.6, 0.3, 0.1), dropout 0.15 and rank 16 (true score 0). A run
at budget ``b`` scores a fixed increasing function of the true score, so the score at the small
budget (reported in every run's curve) ranks configurations exactly as the full score does.
The defaults (uniform mixture, dropout 0.05, rank 8) are a fair baseline, 0.195 below the
optimum: 0.127 from the mixture, 0.068 from the parameters, so `bo-data` (parameters left at
their defaults) cannot get below 0.068 and `bo-model` (uniform mixture) not below 0.127.
"""

from __future__ import annotations

import functools
import math
import statistics

import pytest

import cotune

FULL, SMALL, TOTAL = 100.0, 20.0, 1000.0  # ten full runs; a short run is a fifth of a full one
SEEDS = (0, 1, 2)
W_STAR = {"a": 0.6, "b": 0.3, "c": 0.1}
SPACE = cotune.SearchSpace(
    mixture=["a", "b", "c"],
    params={"dropout": cotune.Float(0.0, 0.5, default=0.05), "rank": cotune.Int(1, 64, log=True, default=8)},
)
MODEL_BASED = ["jobs", "bo", "bo-data", "bo-model", "alternating", "mfms"]


def true_score(config: cotune.Config) -> float:
    """Minus the squared distance to the optimum in the unit encoding (0 at the optimum)."""
    mixture = sum((config.mixture[k] - w) ** 2 for k, w in W_STAR.items())
    dropout = config.params["dropout"] / 0.5
    rank = math.log2(config.params["rank"]) / 6
    return -(mixture + (dropout - 0.3) ** 2 + (rank - 4 / 6) ** 2)


def _at(score: float, budget: float) -> float:
    """The score a run at ``budget`` measures: increasing in the true score at every budget."""
    return score * (0.5 + 0.5 * budget / FULL) - 0.3 * (1 - budget / FULL)


def objective(config: cotune.Config, budget: float) -> cotune.Result:
    score = true_score(config)
    return cotune.Result(score=_at(score, budget), curve={SMALL: _at(score, SMALL)})


def test_the_landscape_optimum_scores_zero():
    best = cotune.Config(mixture=W_STAR, params={"dropout": 0.15, "rank": 16})
    assert true_score(SPACE.validate(best)) == pytest.approx(0.0, abs=1e-12)
    assert -true_score(SPACE.default_config()) == pytest.approx(0.195, abs=1e-3)


@functools.cache
def regrets(method: str) -> tuple[float, ...]:
    """Noise-free optimum (0) minus the true score of the method's answer, one per seed."""
    out = []
    for seed in SEEDS:
        result = cotune.optimize(objective, SPACE, method=method, seed=seed, total_budget=TOTAL, full_budget=FULL,
                                 small_budget=SMALL)
        assert result.spent <= TOTAL + FULL and result.best is not None
        out.append(-true_score(result.best.config))
    return tuple(out)


@pytest.mark.parametrize("method", MODEL_BASED)
def test_method_beats_random_search_at_the_same_budget(method):
    ours, theirs = regrets(method), regrets("random")
    assert statistics.median(ours) < statistics.median(theirs), (
        f"{method}: median regret {statistics.median(ours):.4f} {ours} vs random's "
        f"{statistics.median(theirs):.4f} {theirs}"
    )
