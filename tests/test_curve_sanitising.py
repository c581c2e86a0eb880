"""Non-finite curve points never reach a trial's stored curve (nor the predictor through it)."""

from __future__ import annotations

import logging
import math

import cotune

BUDGETS = dict(total_budget=700, full_budget=100, small_budget=10, n_init=3, n_confirm=1)


def _score(config: cotune.Config) -> float:
    return 1.0 - (config.mixture["wiki"] - 0.6) ** 2 - config.params["lora_dropout"]


def test_jobs_study_with_nan_curve_points_completes_and_stores_only_finite_curves(space, tmp_path):
    calls = []

    def objective(config, budget):
        calls.append(budget)
        score = _score(config) * min(1.0, budget / 100) ** 0.1
        small = math.nan if len(calls) % 2 == 1 else _score(config) * 0.1**0.1
        return cotune.Result(score=score, curve={10.0: small, 100.0: score})

    db = tmp_path / "study.db"
    result = cotune.optimize(objective, space, method="jobs", seed=0, storage=db, **BUDGETS)
    assert result.best is not None and result.spent <= 700 + 100
    for trials in (result.trials, cotune.Study.load(db).trials):
        assert all(math.isfinite(b) and math.isfinite(s) for t in trials for b, s in t.curve.items())
    # resuming the finished study asks without raising
    resumed = cotune.Study.load(db)
    assert resumed.ask() is None


def test_tell_drops_non_finite_curve_points_and_bad_budgets_and_warns(space, caplog):
    study = cotune.Study(space, method="jobs", seed=0, **BUDGETS)
    trial = study.ask()
    curve = {10.0: math.nan, 20.0: math.inf, 50.0: 0.4, 100.0: 0.5, math.inf: 0.6, math.nan: 0.7, 0.0: 0.1,
             -5.0: 0.2}
    with caplog.at_level(logging.WARNING, logger="cotune.study"):
        done = study.tell(trial, cotune.Result(score=0.5, curve=curve))
    assert done.state is cotune.TrialState.COMPLETE and done.score == 0.5
    assert done.curve == {50.0: 0.4, 100.0: 0.5}
    assert study.trials[0].curve == {50.0: 0.4, 100.0: 0.5}
    message = " ".join(r.getMessage() for r in caplog.records if r.name == "cotune.study")
    assert f"trial {trial.number}" in message and "10" in message and "20" in message
    # the study goes on: the next ask works
    assert study.ask() is not None


def test_a_curve_of_only_non_finite_points_is_stored_empty(space):
    study = cotune.Study(space, method="random", total_budget=300, full_budget=100)
    done = study.tell(study.ask(), cotune.Result(score=0.3, curve={5.0: math.nan}))
    assert done.state is cotune.TrialState.COMPLETE and done.curve == {}
