"""What distinguishes each baseline: the block it searches, its budgets, its schedule."""

from __future__ import annotations

import math

import pytest

import cotune
from cotune.methods.hyperband import brackets
from cotune.trial import Role

BUDGETS = dict(total_budget=900, full_budget=100, small_budget=10, n_init=3, n_confirm=1)


def test_bo_data_searches_the_mixture_with_default_model(space, objective):
    result = cotune.optimize(objective, space, method="bo-data", seed=0, **BUDGETS)
    default = space.default_config()
    assert all(t.config.params == default.params for t in result.trials)
    assert len({tuple(t.config.mixture.values()) for t in result.trials}) == len(result.trials)


def test_bo_model_searches_the_model_on_the_uniform_mixture(space, objective):
    result = cotune.optimize(objective, space, method="bo-model", seed=0, **BUDGETS)
    default = space.default_config()
    assert all(t.config.mixture == default.mixture for t in result.trials)
    assert len({t.config.key() for t in result.trials}) == len(result.trials)
    assert len({t.config.params["lora_rank"] for t in result.trials}) > 1


def test_alternating_changes_one_block_of_the_incumbent_at_a_time(space, objective):
    result = cotune.optimize(objective, space, method="alternating", seed=0, **BUDGETS)
    trials = result.trials
    assert all(t.budget == 100 for t in trials)
    searched = []
    for i, trial in enumerate(trials[3:], start=3):
        incumbent = max(trials[:i], key=lambda t: t.score).config
        same_model = trial.config.params == incumbent.params
        same_data = trial.config.mixture == incumbent.mixture
        assert same_model != same_data, "exactly one block moves away from the incumbent"
        searched.append("data" if same_model else "model")
    # 9 affordable full runs, 3 in the design: phases of one proposal each, data first
    assert searched == ["data", "model", "data", "model", "data", "model"]


def test_hyperband_brackets_for_a_budget_ratio_of_nine():
    plan = brackets(90.0, 10.0)
    assert [(b.s, b.n) for b in plan] == [(2, 9), (1, 5), (0, 3)]
    assert plan[0].budgets == pytest.approx((10.0, 30.0, 90.0))
    assert [plan[0].survivors(r) for r in range(3)] == [9, 3, 1]


def test_hyperband_promotes_the_best_third_of_each_rung(space, objective):
    result = cotune.optimize(objective, space, method="hyperband", seed=3, total_budget=600, full_budget=90,
                             small_budget=10)
    trials = result.trials
    assert trials[0].config == space.default_config() and trials[0].budget == 90
    rung0, rung1, rung2 = trials[1:10], trials[10:13], trials[13:14]
    assert [t.budget for t in rung0] == pytest.approx([10.0] * 9)
    assert [t.budget for t in rung1] == pytest.approx([30.0] * 3)
    best_three = sorted(rung0, key=lambda t: -t.score)[:3]
    assert [t.config for t in rung1] == [t.config for t in best_three]
    assert rung2[0].config == max(rung1, key=lambda t: t.score).config and rung2[0].budget == 90
    assert rung2[0].role is Role.FULL and all(t.role is Role.SHORT for t in rung0 + rung1)


def test_mfms_starts_cheap_ends_with_confirmations_and_uses_curves(space, objective):
    result = cotune.optimize(objective, space, method="mfms", seed=0, total_budget=1200, full_budget=100,
                             small_budget=10, n_confirm=2)
    trials = result.trials
    budgets = {round(t.budget, 6) for t in trials}
    assert budgets <= {10.0, round(10 * math.sqrt(10), 6), 100.0}
    assert 10.0 in budgets
    confirms = [t for t in trials if t.role is Role.CONFIRM]
    assert len(confirms) == 2 and trials[-2:] == confirms
    measured_in_full = {t.config.key() for t in trials if t.budget == 100 and t.role is not Role.CONFIRM}
    assert all(t.config.key() not in measured_in_full for t in confirms)
    assert 0.0 <= result.study.attributes["mfms_alpha"] <= 1.0
    assert result.spent <= 1200


def test_mfms_makes_three_confirmations_by_default(space, objective):
    result = cotune.optimize(objective, space, method="mfms", seed=0, total_budget=1200, full_budget=100,
                             small_budget=10)
    assert [t.role for t in result.trials].count(Role.CONFIRM) == 3


def test_mfms_conditions_on_at_most_its_point_limit_keeping_full_runs_and_the_best(space, objective, monkeypatch):
    from cotune.methods import mfms
    from cotune.surrogate.gp import GPFitter

    monkeypatch.setattr(mfms, "MAX_POINTS", 12)
    seen = []
    fit = GPFitter.fit
    monkeypatch.setattr(GPFitter, "fit", lambda self, X, y, yvar=None: seen.append((X, y)) or fit(self, X, y, yvar))
    result = cotune.optimize(objective, space, method="mfms", seed=0, total_budget=1200, full_budget=100,
                             small_budget=10, n_confirm=1)
    assert seen and max(len(y) for _, y in seen) == 12
    X, y = seen[-1]
    done = [t for t in result.trials if t.score is not None and t.role is not Role.CONFIRM]
    full = [t for t in done if t.budget == 100]
    assert sum(X[:, -1] == 1.0) >= len(full) - 1  # every full run but (perhaps) the last confirmation's
    best_short = max(t.score for t in done if t.budget < 100)
    assert best_short in y.tolist()


def test_thin_keeps_the_marked_the_best_quarter_and_an_even_spread_in_order():
    from cotune.methods.mfms import thin

    points = [(None, float(s)) for s in [5, 1, 9, 2, 8, 3, 7, 4, 6, 0, 10, 11]]
    kept = thin(points, 6, keep=[i == 1 for i in range(12)])
    # the marked (index 1), the best (11: a quarter of 6 is 1), then 4 evenly spaced over the other 10
    assert [s for _, s in kept] == [5, 1, 8, 4, 10, 11]
    assert thin(points, 20, keep=[False] * 12) == points
