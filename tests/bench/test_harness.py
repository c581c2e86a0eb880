"""Aggregation of benchmark runs: Table-3 scores, budget to the target and the ratio to jobs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cotune.bench.harness import RunRecord, summarise, write_runs
from cotune.bench.tables import budget_table, markdown, score_table


def run(method, seed, best, reached, benchmark="b1"):
    return RunRecord(method=method, benchmark=benchmark, seed=seed, optimum=1.0, best_score=best,
                     final_regret=1.0 - best, budget_to_target=reached, spent=1000.0, n_trials=10, n_full=10,
                     wall_seconds=2.0, trace=[(100.0, 0.5), (1000.0, 1.0 - best)])


RECORDS = [
    run("jobs", 0, 0.99, 400.0), run("jobs", 1, 0.98, 600.0), run("jobs", 2, 0.97, None),
    run("bo", 0, 0.96, 800.0), run("bo", 1, 0.95, None), run("bo", 2, 0.97, 900.0),
    run("random", 0, 0.90, None), run("random", 1, 0.91, None), run("random", 2, 0.92, 700.0),
]


def test_summary_scores_budgets_and_ratios():
    by_method = {s.method: s for s in summarise(RECORDS)}
    assert by_method["jobs"].mean_score == pytest.approx(0.98)
    assert by_method["jobs"].std_score == pytest.approx(0.01)
    # a seed that never reaches the target counts as an infinite budget in the median
    assert by_method["jobs"].median_budget_to_target == 600.0 and by_method["jobs"].ratio_to_reference == 1.0
    assert by_method["bo"].median_budget_to_target == 900.0 and by_method["bo"].ratio_to_reference == 1.5
    assert by_method["random"].median_budget_to_target is None and by_method["random"].ratio_to_reference is None
    assert by_method["random"].reached == 1 and by_method["random"].median_regret == pytest.approx(0.09)


def test_no_ratio_without_the_reference_method():
    (summary,) = summarise([r for r in RECORDS if r.method == "bo"])
    assert summary.ratio_to_reference is None and summary.median_budget_to_target == 900.0


def test_tables_in_markdown():
    summaries = summarise(RECORDS + [run("jobs", 0, 0.5, None, benchmark="b2")])
    scores = markdown(score_table(summaries))
    assert scores.splitlines()[0] == "| method | b1 | b2 |"
    assert "| jobs | 0.9800 ± 0.0100 | 0.5000 ± 0.0000 |" in scores
    assert "| bo | 0.9600 ± 0.0100 |  |" in scores
    budgets = markdown(budget_table(summaries, 0.01))
    assert "| b1 | bo | 900 | 1.50 | 2/3 | 0.0400 | 2.0 |" in budgets
    assert "| b2 | jobs | not reached | - | 0/1 |" in budgets


def test_runs_are_written_as_json(tmp_path):
    write_runs(RECORDS, tmp_path / "runs.json")
    assert json.loads((tmp_path / "runs.json").read_text()) == json.loads(
        json.dumps([dataclasses.asdict(r) for r in RECORDS]))


def test_a_benchmark_scored_by_minus_a_loss_reaches_its_target_within_one_percent_of_the_optimums_size(monkeypatch):
    import cotune
    from cotune.bench import landscapes
    from cotune.bench.harness import BenchSetup, run_one

    @dataclasses.dataclass
    class MinusLoss:  # the optimum, -2.0, at mixture a = 1; every other point is 1% or more worse
        curve_budgets: tuple = ()
        full_budget: float = 100.0
        seed: int = 0
        space = cotune.SearchSpace(mixture=["a", "b"])
        optimum = -2.0

        def regret(self, config):
            return 0.0 if config.mixture["a"] > 0.99 else 0.02 + 0.1 * config.mixture["b"]

        def short_run_correlation(self, small_budget):
            return 1.0

        def __call__(self, config, budget):
            return cotune.Result(score=self.optimum - self.regret(config))

    monkeypatch.setitem(landscapes.LANDSCAPES, "minus-loss", lambda **kw: MinusLoss(**kw))
    record = run_one("random", "minus-loss", 0, BenchSetup(total_full_runs=3))
    assert record.final_regret >= 0.02 and record.budget_to_target is None
    study_best = cotune.Config({"a": 1.0, "b": 0.0})
    monkeypatch.setattr(cotune.SearchSpace, "default_config", lambda self: study_best)  # the baseline is the optimum
    record = run_one("random", "minus-loss", 0, BenchSetup(total_full_runs=3))
    assert record.final_regret == 0.0 and record.budget_to_target == 100.0  # was never reached: 1% of -2.0 < 0
