"""The contract every method meets, run over every registered method."""

from __future__ import annotations

import pytest

import cotune
from cotune.methods import METHODS
from cotune.trial import Role

BUDGETS = dict(total_budget=700, full_budget=100, small_budget=10, n_init=3, n_confirm=1)


@pytest.fixture(params=sorted(METHODS))
def method(request) -> str:
    return request.param


def test_budget_answer_and_baseline(method, space, objective):
    result = cotune.optimize(objective, space, method=method, seed=0, **BUDGETS)
    assert result.spent <= 700 + 100
    assert result.best is not None and result.best.budget == 100
    measured = [t.score for t in result.trials if t.budget == 100 and t.score is not None]
    assert result.best.score == max(measured)  # the answer is measured, never predicted
    assert result.trials[0].config == space.default_config()
    for trial in result.trials:
        assert space.validate(trial.config) == trial.config


def test_same_seed_gives_the_same_trials(method, space, objective):
    a, b = (cotune.optimize(objective, space, method=method, seed=7, **BUDGETS) for _ in range(2))
    assert [(t.config, t.budget) for t in a.trials] == [(t.config, t.budget) for t in b.trials]


def test_failed_configurations_are_never_proposed_again(method, space):
    seen = []

    def half_broken(config, budget):
        seen.append((config.key(), budget))
        if config.params["rear"]:
            raise RuntimeError("rear adapters crash (simulated)")
        return 1.0 - abs(config.mixture["wiki"] - 0.5)

    result = cotune.optimize(half_broken, space, method=method, seed=1, **BUDGETS)
    failed = {t.config.key() for t in result.trials if t.state is cotune.TrialState.FAIL}
    for key in failed:
        assert sum(k == key for k, _ in seen) == 1
    assert result.spent <= 700 + 100


@pytest.mark.parametrize("kind", ["mixture-only", "params-only"])
def test_spaces_without_mixture_or_without_params(method, kind):
    if kind == "mixture-only":
        space = cotune.SearchSpace(mixture=["a", "b", "c", "d"])
    else:
        space = cotune.SearchSpace(params={"x": cotune.Float(0, 1), "n": cotune.Int(1, 8), "c": cotune.Choice(["u", "v"])})

    def objective(config, budget):
        value = config.mixture.get("a", 0.0) if config.mixture else config.params["x"]
        return cotune.Result(score=value * budget / 100, curve={10.0: value / 10})

    missing_block = {("bo-data", "params-only"): "no mixture", ("bo-model", "mixture-only"): "has none"}
    if (method, kind) in missing_block:
        with pytest.raises(cotune.SettingsError, match=missing_block[method, kind]):
            cotune.optimize(objective, space, method=method, seed=0, **BUDGETS)
        return
    result = cotune.optimize(objective, space, method=method, seed=0, **BUDGETS)
    assert result.best is not None and result.best.budget == 100


def test_jobs_uses_short_runs_with_predictions_and_confirms(space, objective):
    result = cotune.optimize(objective, space, method="jobs", seed=0, **BUDGETS)
    full = [t for t in result.trials if t.role is Role.FULL]
    full_keys = {t.config.key() for t in full}
    short = [t for t in result.trials if t.role is Role.SHORT]
    searched = [t for t in short if t.config.key() not in full_keys]
    confirm = [t for t in result.trials if t.role is Role.CONFIRM]
    # the objective reports its curve at 5, not at the small budget 10: each initial full run
    # needs one extra short run to give the predictor a pair
    assert len(full) == 3 and len(short) - len(searched) == 3
    assert len(searched) == (700 - 3 * 100 - 3 * 10 - 100) // 10 and len(confirm) == 1
    assert all(t.predicted is not None and t.predicted_var > 0 for t in searched)
    assert confirm[0].config.key() in {t.config.key() for t in searched}
    assert result.study.attributes["predictor_cv_rmse"] >= 0
    assert result.spent == pytest.approx(700)


SPLIT = dict(method="jobs", total_budget=1500, full_budget=100, small_budget=10, n_confirm=1, seed=0)


def test_jobs_spends_60_percent_of_the_budget_on_full_runs_by_default(space, objective):
    result = cotune.optimize(objective, space, **SPLIT)
    assert sum(t.role is Role.FULL for t in result.trials) == 9  # 60% of 15 full budgets
    assert "n_init_auto" not in result.study.attributes
    assert result.spent == pytest.approx(1500)


def test_jobs_spreads_confirmations_taking_half_of_what_its_full_runs_leave_by_default(space, objective):
    settings = {**SPLIT, "n_confirm": None}
    result = cotune.optimize(objective, space, **settings)
    roles = [t.role for t in result.trials]
    assert roles.count(Role.FULL) == 9 and roles.count(Role.CONFIRM) == 3  # 15 budgets: 9, 3 and 3 of short runs
    assert result.study.attributes["n_confirm"] == 3
    initial = {t.config.key() for t in result.trials if t.role is Role.FULL}
    search = "".join(t.role.value[0] for t in result.trials if t.config.key() not in initial)
    assert search == "sssssssc" * 3  # the short runs left after the initial ones' own, split evenly
    assert result.spent == pytest.approx(1500)


def test_jobs_makes_a_given_number_of_confirmations_last(space, objective):
    result = cotune.optimize(objective, space, **{**SPLIT, "n_confirm": 3})
    roles = [t.role for t in result.trials]
    assert roles.count(Role.CONFIRM) == 3 and roles[-3:] == [Role.CONFIRM] * 3


def test_jobs_auto_split_makes_the_full_runs_the_regret_bound_chose(space, objective):
    result = cotune.optimize(objective, space, n_init="auto", **SPLIT)
    chosen = result.study.attributes["n_init_auto"]
    assert sum(t.role is Role.FULL for t in result.trials) == chosen >= 3
    assert result.spent == pytest.approx(1500)


def test_jobs_takes_the_short_score_from_the_curve_of_a_full_run(space):
    def with_curve(config, budget):
        value = 1.0 - (config.mixture["wiki"] - 0.6) ** 2
        return cotune.Result(score=value * budget / 100, curve={10.0: value / 10})

    result = cotune.optimize(with_curve, space, method="jobs", seed=0, **BUDGETS)
    full_keys = {t.config.key() for t in result.trials if t.role is Role.FULL}
    assert not [t for t in result.trials if t.role is Role.SHORT and t.config.key() in full_keys]


def test_jobs_searches_while_initial_full_runs_are_still_running(space, objective):
    study = cotune.Study(space, method="jobs", total_budget=1000, full_budget=100, small_budget=5, n_init=4,
                         n_confirm=1, seed=0)
    initial = [study.ask() for _ in range(4)]
    assert all(t.role is Role.FULL for t in initial)
    assert study.ask() is None  # no predictor without pairs: a free worker waits
    for trial in initial[:3]:
        study.tell(trial, objective(trial.config, trial.budget))
    search = study.ask()  # three pairs fit the predictor; the fourth full run is still running
    assert search.role is Role.SHORT and search.config not in {t.config for t in initial}
    study.tell(initial[3], objective(initial[3].config, initial[3].budget))
    assert study.ask().role is Role.SHORT
