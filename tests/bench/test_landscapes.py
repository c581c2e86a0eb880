"""The synthetic landscapes: known optimum, interaction, learning curves, seeded noise."""

from __future__ import annotations

import numpy as np
import pytest

import cotune
from cotune.bench.landscapes import LateLearnerLandscape, LoraMixtureLandscape, MultiScaleLandscape, make_landscape
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


@pytest.mark.parametrize("name, target", [("late-0.9", 0.9), ("late-0.3", 0.3), ("late-0.0", 0.0), ("late8-0.6", 0.6)])
def test_late_learner_short_runs_rank_as_well_as_their_name_says(name, target):
    landscape = make_landscape(name, full_budget=100.0)
    # calibrated on one sample of configurations, measured here on another
    assert landscape.short_run_correlation(10.0) == pytest.approx(target, abs=0.15)
    base = LoraMixtureLandscape(domains=landscape.domains, full_budget=100.0)
    assert base.short_run_correlation(10.0) > 0.8  # the late learners are what makes short runs mislead


def test_late_learners_keep_the_base_landscapes_full_scores_and_optimum():
    late = make_landscape("late-0.0", full_budget=100.0)
    base = LoraMixtureLandscape(domains=late.domains, full_budget=100.0)
    configs = random_configs(base.space, 20, np.random.default_rng(3))
    assert [late.true_score(c) for c in configs] == [base.true_score(c) for c in configs]
    assert late.regret(late.optimal_config()) == pytest.approx(0.0, abs=1e-9)
    short = [late.true_score(c, 10.0) - base.true_score(c, 10.0) for c in configs]
    assert np.std(short) > 0.01  # the short runs differ from the base's


@pytest.mark.parametrize("name, target", [("scales-0.95", 0.95), ("scales-0.3", 0.3), ("scales8-0.8", 0.8)])
def test_a_multi_scale_proxy_ranks_configurations_as_its_name_says(name, target):
    landscape = make_landscape(name, full_budget=100.0)
    # calibrated on one sample of configurations, measured here on another
    assert landscape.proxy_rank_correlations()["small"] == pytest.approx(target, abs=0.1)
    assert landscape.short_run_correlation(10.0) == pytest.approx(0.3, abs=0.15)  # the target's short runs mislead


def test_a_proxy_run_is_charged_its_cost_and_leaves_the_target_as_it_was():
    scales = make_landscape("scales-0.8", full_budget=100.0, curve_budgets=(10.0, 50.0))
    late = make_landscape("late-0.3", full_budget=100.0, curve_budgets=(10.0, 50.0))
    config = random_configs(scales.space, 1, np.random.default_rng(5))[0]
    assert scales(config, 100.0).score == late(config, 100.0).score
    proxy = scales(config, 100.0, proxy="small")
    assert proxy.cost == pytest.approx(100.0 * scales.proxies["small"])
    assert proxy.score != pytest.approx(scales(config, 100.0).score, abs=1e-3)
    assert sorted(proxy.curve) == [10.0, 50.0, 100.0] and proxy.curve[10.0] < proxy.curve[100.0]
    with pytest.raises(ValueError, match="unknown proxy 'large'"):
        scales(config, 100.0, proxy="large")


def test_a_correlation_outside_0_1_is_refused_with_its_name():
    config = make_landscape("lora-mix").space.default_config()
    with pytest.raises(ValueError, match=r"proxy_correlation must be in \[0, 1\), got 1.2"):
        MultiScaleLandscape(proxy_correlation=1.2).proxy_score(config)
    with pytest.raises(ValueError, match=r"^correlation must be in \[0, 1\), got -0.1"):
        LateLearnerLandscape(correlation=-0.1).true_score(config, 10.0)
