"""Studies through the public API: budget accounting, failures, ask/tell, seeds."""

from __future__ import annotations

import math

import pytest

import cotune
from cotune.trial import Role

BUDGETS = dict(total_budget=1000, full_budget=100, small_budget=5)


def test_random_study_spends_the_budget_and_answers_a_full_run(space, objective):
    result = cotune.optimize(objective, space, method="random", seed=0, **BUDGETS)
    assert result.spent == pytest.approx(1000)
    assert len(result.trials) == 10
    assert result.best.budget == 100 and result.best.state is cotune.TrialState.COMPLETE
    assert result.best.score == max(t.score for t in result.trials)
    assert result.trials[0].config == space.default_config()
    assert result.baseline.config == space.default_config()


def test_same_seed_same_trials_other_seed_other_trials(space, objective):
    runs = [cotune.optimize(objective, space, method="random", seed=s, **BUDGETS) for s in (1, 1, 2)]
    configs = [[t.config for t in r.trials] for r in runs]
    assert configs[0] == configs[1]
    assert configs[0][1:] != configs[2][1:]


def test_bare_float_objective_is_charged_its_budget(space):
    result = cotune.optimize(lambda c, b: 0.5, space, method="random", **BUDGETS)
    assert all(t.cost == t.budget for t in result.trials)
    assert result.best.score == 0.5


def test_costs_above_the_budget_never_overspend_by_more_than_one_full_run(space):
    result = cotune.optimize(lambda c, b: cotune.Result(score=0.1, cost=b * 1.7), space, method="random", **BUDGETS)
    assert 1000 - 100 < result.spent <= 1000 + 100


def test_failures_are_recorded_and_the_study_goes_on(space):
    calls = []

    def flaky(config, budget):
        calls.append(config)
        if len(calls) % 3 == 2:
            raise RuntimeError("CUDA out of memory (simulated)")
        if len(calls) % 3 == 0:
            return math.nan
        return 0.3

    result = cotune.optimize(flaky, space, method="random", **BUDGETS)
    failed = [t for t in result.trials if t.state is cotune.TrialState.FAIL]
    assert len(failed) == 6 and result.spent == pytest.approx(1000)
    assert "CUDA out of memory (simulated)" in failed[0].error
    assert "non-finite" in failed[1].error
    keys = [c.key() for c in calls]
    assert len(set(keys)) == len(keys)  # a failed configuration is never proposed again
    assert result.best.score == 0.3


def test_objective_returning_garbage_fails_the_trial_with_a_reason(space):
    result = cotune.optimize(lambda c, b: "high", space, method="random", total_budget=200, full_budget=100)
    assert all(t.state is cotune.TrialState.FAIL for t in result.trials)
    assert "must return a number or cotune.Result" in result.trials[0].error
    assert result.best is None


def test_ask_tell_round_trip(space):
    study = cotune.Study(space, method="random", **BUDGETS)
    trial = study.ask()
    assert trial.state is cotune.TrialState.RUNNING and trial.budget == 100 and trial.role is Role.FULL
    done = study.tell(trial, cotune.Result(score=0.4, curve={5: 0.2}))
    assert done.score == 0.4 and done.curve == {5.0: 0.2, } and done.score_at(5) == 0.2
    with pytest.raises(cotune.TrialStateError, match="only running trials"):
        study.tell(trial, 0.5)
    second = study.ask()
    study.tell(second.number, ValueError("boom"))
    assert study.trials[1].state is cotune.TrialState.FAIL and "boom" in study.trials[1].error
    assert study.spent == 200 and study.best.number == 0


def test_ask_returns_none_when_the_budget_is_spent(space):
    study = cotune.Study(space, method="random", total_budget=250, full_budget=100)
    for _ in range(2):
        study.tell(study.ask(), 1.0)
    assert study.ask() is None


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(total_budget=100, full_budget=200), "exceeds total_budget"),
        (dict(total_budget=1000, full_budget=100, small_budget=100), "smaller than full_budget"),
        (dict(total_budget=1000, full_budget=100, method="grid"), "unknown method"),
        (dict(total_budget=1000, full_budget=100, n_init=0), "n_init"),
        (dict(total_budget=1000, full_budget=100, n_init=0.6), "n_init must be a positive int, 'auto' or None"),
        (dict(total_budget=1000, full_budget=100, n_confirm=-1), "n_confirm must be an int >= 0 or None"),
        (dict(total_budget=-1, full_budget=100), "positive"),
        (dict(total_budget=1000, full_budget=100, kernel="rbf"), "kernel"),
        (dict(total_budget=1000, full_budget=100, proxies={"small": 1.5}), "cost a number in \\(0, 1\\)"),
        (dict(total_budget=1000, full_budget=100, proxies={"": 0.1}), "proxy names"),
        (dict(total_budget=1000, full_budget=100, proxies=["small"]), "proxies must map"),
    ],
)
def test_bad_settings_are_rejected_with_a_reason(space, kwargs, match):
    with pytest.raises(cotune.SettingsError, match=match):
        cotune.Study(space, **kwargs)


def test_bad_n_workers_is_rejected(space, objective):
    with pytest.raises(cotune.SettingsError, match="n_workers"):
        cotune.optimize(objective, space, method="random", n_workers=0, **BUDGETS)


def test_parallel_workers_run_distinct_configurations(space, objective):
    result = cotune.optimize(objective, space, method="random", n_workers=3, **BUDGETS)
    keys = [t.config.key() for t in result.trials]
    assert len(keys) == len(set(keys)) == 10
    assert result.spent == pytest.approx(1000)


def test_a_study_with_proxies_needs_an_objective_that_takes_a_proxy(space, objective):
    with pytest.raises(cotune.SettingsError, match="accept a `proxy` keyword"):
        cotune.optimize(objective, space, method="mfms", proxies={"small": 0.1}, **BUDGETS)


def test_a_proxy_run_reserves_and_is_charged_its_cost(space, tmp_path):
    calls = []

    def train(config, budget, proxy=None):
        calls.append(proxy)
        return 1.0 - (config.mixture["wiki"] - 0.6) ** 2 - (0.2 if proxy else 0.0)

    budgets = {**BUDGETS, "total_budget": 500}  # mfms makes a proxy run per proposal: keep the study short
    study = cotune.Study(space, method="mfms", proxies={"small": 0.1}, storage=tmp_path / "s.db", n_init=2, **budgets)
    trials = [study.ask() for _ in range(4)]  # baseline, 2 design short runs, the design on the proxy
    proxy = trials[3]
    assert [t.fidelity for t in trials] == [None, None, None, "small"] and proxy.budget == 100
    assert study.history().committed == pytest.approx(100 + 5 + 5 + 0.1 * 100)  # reserved while running
    for trial in trials[:3]:
        study.tell(trial, train(trial.config, trial.budget))
    assert study.tell(proxy, cotune.Result(score=0.5, cost=3.0)).cost == 3.0  # a Result's cost is what it costs
    reopened = cotune.Study.load(tmp_path / "s.db")
    assert reopened.settings.proxies == {"small": 0.1} and reopened.trials[3].fidelity == "small"
    result = reopened.optimize(train)
    assert None in calls and "small" in calls
    assert result.spent <= 500 + 100 and result.best.fidelity is None
    charged = [t.cost for t in result.trials[4:] if t.fidelity == "small"]
    assert charged and all(c == pytest.approx(0.1 * t.budget) for c, t in
                           zip(charged, [t for t in result.trials[4:] if t.fidelity == "small"]))


def test_a_batch_of_trials_needs_a_positive_count(space):
    study = cotune.Study(space, **BUDGETS)
    for bad in (0, -1, True, 2.0):
        with pytest.raises(cotune.SettingsError, match="ask_batch needs k >= 1"):
            study.ask_batch(bad)
    assert [t.budget for t in study.ask_batch(2)] == [100, 100]
