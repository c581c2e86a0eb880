"""The contract every method meets, run over every registered method."""

from __future__ import annotations

import hashlib

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


def proxied(config: cotune.Config, budget: float, proxy: str | None = None) -> cotune.Result:
    """A smooth landscape (best at wiki=0.6, rank 16) on the target; a proxy model scores 0.1 lower."""
    full = 1.0 - (config.mixture["wiki"] - 0.6) ** 2 - (config.params["lora_rank"] / 64 - 0.25) ** 2
    full -= 0.0 if proxy is None else 0.1
    return cotune.Result(score=full * min(1.0, budget / 100) ** 0.1, curve={5.0: full * 0.05**0.1})


def test_a_study_with_a_proxy_stays_in_budget_and_answers_with_a_target_full_run(method, space):
    result = cotune.optimize(proxied, space, method=method, seed=0, proxies={"small": 0.1}, **BUDGETS)
    assert result.spent <= 700 + 100
    assert result.best is not None and result.best.budget == 100 and result.best.fidelity is None
    for trial in result.trials:
        factor = 0.1 if trial.fidelity == "small" else 1.0
        assert trial.fidelity in (None, "small") and trial.cost == pytest.approx(trial.budget * factor)
    assert result.spent == pytest.approx(sum(t.cost for t in result.trials))
    # mfms and jobs run the proxy; every other method leaves it alone
    assert any(t.fidelity == "small" for t in result.trials) == (method in ("mfms", "jobs"))


def test_same_seed_gives_the_same_trials(method, space, objective):
    a, b = (cotune.optimize(objective, space, method=method, seed=7, **BUDGETS) for _ in range(2))
    assert [(t.config, t.budget) for t in a.trials] == [(t.config, t.budget) for t in b.trials]


def _in_rounds(study: cotune.Study, objective, ask_k) -> list[tuple]:
    """Run ``study`` in rounds of three workers: ask for three trials (``ask_k``), then tell them all."""
    while trials := ask_k(study):
        assert len(trials) <= 3 and len({(t.config.key(), t.budget, t.fidelity) for t in trials}) == len(trials)
        for trial in trials:
            study.tell(trial, objective(trial.config, trial.budget))
    return [(t.config, t.budget, t.role) for t in study.trials]


def test_a_batch_for_free_workers_is_what_one_ask_per_worker_would_give(method, space):
    def one_by_one(study):
        return [t for t in (study.ask() for _ in range(3)) if t is not None]

    settings = dict(method=method, seed=3, **{**BUDGETS, "total_budget": 1200})
    batched = _in_rounds(cotune.Study(space, **settings), predictive, lambda study: study.ask_batch(3))
    assert batched == _in_rounds(cotune.Study(space, **settings), predictive, one_by_one)
    assert len(batched) > 12 if method == "jobs" else len(batched) >= 12  # jobs searched with short runs


def test_enqueued_configurations_are_trained_first_counted_and_seen(method, space, objective):
    study = cotune.Study(space, method=method, seed=0, **BUDGETS)
    mine = study.enqueue({"mixture": {"wiki": 0.6, "code": 0.2, "math": 0.2}, "params": {"lora_rank": 16}})
    assert mine.config.params["lora_dropout"] == space.default_config().params["lora_dropout"]
    assert study.enqueue(mine.config).number == mine.number  # queued once
    result = study.optimize(objective)
    assert result.trials[0].config == mine.config and result.trials[0].role is Role.USER
    assert sum(t.config == mine.config and t.budget == 100 for t in result.trials) == 1  # not proposed again
    assert result.spent <= 700 + 100 and result.best is not None
    assert result.best.score >= objective(mine.config, 100).score  # its score counts for the answer


def test_a_warm_start_informs_the_method_but_costs_nothing_and_is_never_the_answer(method, space, objective):
    earlier = cotune.optimize(objective, space, method="random", seed=5, total_budget=1500, full_budget=100,
                              small_budget=10)
    cold = cotune.optimize(objective, space, method=method, seed=0, **BUDGETS)
    warm = cotune.optimize(objective, space, method=method, seed=0, warm_start=earlier.study, **BUDGETS)
    assert warm.spent <= 700 + 100 and len(warm.study.prior) == 15
    assert warm.best in warm.trials and warm.trials[0].config == space.default_config()
    if method not in ("random", "hyperband"):  # every model-based method learns from the earlier runs
        assert [(t.config, t.budget) for t in warm.trials] != [(t.config, t.budget) for t in cold.trials]


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


def _full(config: cotune.Config) -> float:
    """A smooth full-budget score: best at wiki=0.6, rank 16, no dropout."""
    p = config.params
    return 1.0 - (config.mixture["wiki"] - 0.6) ** 2 - (p["lora_rank"] / 64 - 0.25) ** 2 - p["lora_dropout"]


def predictive(config: cotune.Config, budget: float) -> cotune.Result:
    """Short runs that predict: the short score is the full one less a near-constant gain."""
    full = _full(config)
    short = full - 0.1 - 0.02 * config.params["lora_dropout"]
    return cotune.Result(score=full if budget >= 100 else short, curve={10.0: short})


def misleading(config: cotune.Config, budget: float) -> cotune.Result:
    """Short runs that mislead: the short score is a hash of the configuration."""
    full = _full(config)
    short = int.from_bytes(hashlib.sha256(config.key().encode()).digest()[:4], "little") / 2**32
    return cotune.Result(score=full if budget >= 100 else short, curve={10.0: short})


def late(config: cotune.Config, budget: float) -> cotune.Result:
    """Curves that cross early: the score at 10 is a hash of the configuration, from 40 on it predicts."""
    early, later = misleading(config, 10.0).score, predictive(config, 40.0).score
    score = _full(config) if budget >= 100 else later if budget >= 40 else early
    return cotune.Result(score=score, curve={10.0: early, 20.0: early, 40.0: later})


SEARCH = dict(method="jobs", total_budget=1000, full_budget=100, small_budget=10, seed=0)


def test_jobs_switches_to_short_runs_once_they_prove_to_predict(space):
    result = cotune.optimize(predictive, space, **SEARCH)
    # 10 full budgets: 60% on full runs (the baseline, 3 Sobol points, 2 BO proposals), then the
    # search: confirmations take half of the 4 budgets left, spread evenly over the 20 short runs
    assert "".join(t.role.value[0] for t in result.trials) == "f" * 6 + ("s" * 10 + "c") * 2
    attributes = result.study.attributes
    assert attributes["decision"].startswith("short runs of 10 from 6 full runs on")
    assert attributes["short_run_evidence"]["explained"] > 0.9
    searched = [t for t in result.trials if t.role is Role.SHORT]
    assert all(t.predicted is not None and t.predicted_var > 0 for t in searched)
    assert {t.config.key() for t in result.trials if t.role is Role.CONFIRM} <= {t.config.key() for t in searched}
    assert result.spent == pytest.approx(1000)


def test_jobs_searches_with_the_cheapest_short_budget_whose_runs_predict(space):
    result = cotune.optimize(late, space, **SEARCH)
    attributes = result.study.attributes
    assert attributes["decision"].startswith("short runs of 40 from 6 full runs on")
    assert attributes["short_run_ladder"]["10"] < 0.5 < 0.9 < attributes["short_run_ladder"]["40"]
    assert attributes["short_budget"] == 40
    searched = [t for t in result.trials[6:] if t.role is Role.SHORT]
    assert searched and all(t.budget == 40 and t.predicted is not None for t in searched)
    assert result.spent == pytest.approx(1000)


def test_jobs_batches_its_search_up_to_each_due_confirmation(space):
    def one_by_one(study):
        return [t for t in (study.ask() for _ in range(3)) if t is not None]

    batched = _in_rounds(cotune.Study(space, **SEARCH), predictive, lambda study: study.ask_batch(3))
    assert batched == _in_rounds(cotune.Study(space, **SEARCH), predictive, one_by_one)
    roles = [role for _, _, role in batched]
    first = roles.index(Role.CONFIRM)  # the first of two halfway through the 20 short runs, not at the end
    assert roles.count(Role.CONFIRM) == 2 and roles[first - 10:first] == roles[first + 1:first + 11] == [Role.SHORT] * 10


def test_jobs_makes_no_full_run_past_its_last_switch_test_while_the_test_waits_for_running_ones(space):
    study = cotune.Study(space, **SEARCH)
    for _ in range(7):
        trial = study.ask()
        study.tell(trial, misleading(trial.config, trial.budget))
    eighth = study.ask()  # the last full run the switch test (tested from 60% to 80% of the budget) may see
    assert eighth.role is Role.FULL and study.ask() is None  # a free worker waits for the test
    study.tell(eighth, misleading(eighth.config, eighth.budget))
    ninth = study.ask()  # the test failed on eight full runs, as one worker's would
    assert ninth.role is Role.FULL
    study.tell(ninth, misleading(ninth.config, ninth.budget))
    tenth = study.ask()
    assert tenth.role is Role.FULL
    study.tell(tenth, misleading(tenth.config, tenth.budget))
    assert study.ask() is None and study.attributes["decision"].startswith("full runs only: short runs did not pay by 8 full runs")


def test_jobs_is_full_run_bo_where_short_runs_mislead(space):
    jobs = cotune.optimize(misleading, space, **SEARCH)
    bo = cotune.optimize(misleading, space, **{**SEARCH, "method": "bo"})
    assert [(t.config, t.budget) for t in jobs.trials] == [(t.config, t.budget) for t in bo.trials]
    assert jobs.study.attributes["decision"].startswith("full runs only")
    assert jobs.study.attributes["short_run_evidence"]["explained"] < 0.5


def test_jobs_with_short_runs_always_searches_where_they_mislead_and_never_goes_back(space):
    result = cotune.optimize(misleading, space, short_runs="always", **SEARCH)
    # the paper's JoBS: the default schedule of the predictive landscape, the evidence recorded but not obeyed
    assert "".join(t.role.value[0] for t in result.trials) == "f" * 6 + ("s" * 10 + "c") * 2
    attributes = result.study.attributes
    assert attributes["decision"].startswith("short runs of 10 from 6 full runs, not tested (short_runs='always')")
    assert attributes["short_run_evidence"]["explained"] < 0.5
    assert result.study.settings.short_runs == "always"
    with pytest.raises(cotune.SettingsError, match="short_runs must be one of tested, always"):
        cotune.Study(space, short_runs="sometimes", **SEARCH)


def test_jobs_makes_a_given_number_of_confirmations_last(space):
    result = cotune.optimize(predictive, space, **{**SEARCH, "n_confirm": 3})
    roles = [t.role for t in result.trials]
    assert roles.count(Role.CONFIRM) == 3 and roles[-3:] == [Role.CONFIRM] * 3


def test_jobs_auto_split_makes_at_least_the_full_runs_the_regret_bound_chose(space):
    result = cotune.optimize(predictive, space, n_init="auto", **{**SEARCH, "total_budget": 1500})
    chosen = result.study.attributes["n_init_auto"]
    assert sum(t.role is Role.FULL for t in result.trials) >= chosen >= 3
    assert result.spent == pytest.approx(1500)


def test_jobs_takes_the_short_score_from_the_curve_of_a_full_run(space):
    def with_curve(config, budget):
        value = 1.0 - (config.mixture["wiki"] - 0.6) ** 2
        return cotune.Result(score=value * budget / 100, curve={10.0: value / 10})

    result = cotune.optimize(with_curve, space, method="jobs", seed=0, **BUDGETS)
    full_keys = {t.config.key() for t in result.trials if t.role is Role.FULL}
    assert not [t for t in result.trials if t.role is Role.SHORT and t.config.key() in full_keys]


def test_jobs_keeps_free_workers_busy_while_full_runs_are_still_running(space):
    study = cotune.Study(space, **SEARCH)
    design = [study.ask() for _ in range(4)]
    assert all(t.role is Role.FULL for t in design)
    assert study.ask() is None  # nothing measured yet to propose from: a free worker waits
    study.tell(design[0], predictive(design[0].config, design[0].budget))
    proposal = study.ask()  # full-run BO with the three running trials as pending points
    assert proposal.role is Role.FULL and proposal.config not in {t.config for t in design}
