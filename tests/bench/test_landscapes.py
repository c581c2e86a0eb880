"""The synthetic landscapes: known optimum, interaction, learning curves, seeded noise."""

from __future__ import annotations

import numpy as np
import pytest

import cotune
from cotune.bench.landscapes import make_landscape
from cotune.space import random_configs


@pytest.mark.parametrize("name", ["lora-mix", "lora-mix-10"])
def test_optimum_is_known_and_attained(name):
    landscape = make_landscape(name)
    best = landscape.optimal_config()
    assert landscape.space.validate(best) == best
    assert landscape.regret(best) == pytest.approx(0.0, abs=1e-9)
    scores = [landscape.true_score(c) for c in random_configs(landscape.space, 500, np.random.default_rng(0))]
    assert max(scores) < landscape.optimum


def test_best_mixture_depends_on_the_lora_settings():
    landscape = make_landscape("lora-mix")
    base = landscape.optimal_config()
    small = cotune.Config(base.mixture, {**base.params, "lora_rank": 1, "lora_layers": 1})
    large = cotune.Config(base.mixture, {**base.params, "lora_rank": 256, "lora_layers": 24})
    w_small, w_large = landscape.ideal_mixture(small), landscape.ideal_mixture(large)
    assert w_small[0] > w_large[0] and w_small[-1] < w_large[-1]  # capacity shifts weight to hard domains
    # so the mixture that is best for one model is not best for the other
    for config, other in ((small, w_large), (large, w_small)):
        moved = cotune.Config(dict(zip(landscape.domains, other.tolist())), config.params)
        assert landscape.true_score(moved) < landscape.true_score(
            cotune.Config(dict(zip(landscape.domains, landscape.ideal_mixture(config).tolist())), config.params)
        )


def test_learning_curves_rise_and_depend_on_the_configuration():
    landscape = make_landscape("lora-mix")
    configs = random_configs(landscape.space, 200, np.random.default_rng(1))
    budgets = [5, 25, 50, 100]
    for config in configs[:20]:
        curve = [landscape.true_score(config, b) for b in budgets]
        assert curve == sorted(curve)
    gains = np.array([landscape.true_score(c) - landscape.true_score(c, 5) for c in configs])
    assert gains.max() > 3 * gains.min()  # some configurations keep learning, others stagnate
    small = np.array([landscape.true_score(c, 5) for c in configs])
    full = np.array([landscape.true_score(c) for c in configs])
    assert np.argmax(small) != np.argmax(full)  # the short run alone misranks


def test_objective_reports_a_curve_and_seeded_noise():
    landscape = make_landscape("lora-mix", curve_budgets=(5.0,), noise=0.01, seed=3)
    config = landscape.space.default_config()
    result = landscape(config, 100.0)
    assert set(result.curve) == {5.0, 100.0} and result.cost == 100.0
    assert result.score == landscape(config, 100.0).score
    assert result.score != make_landscape("lora-mix", noise=0.01, seed=4)(config, 100.0).score
    assert abs(result.score - landscape.true_score(config)) < 0.05
