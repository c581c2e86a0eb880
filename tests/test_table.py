"""Trials as a table: export to CSV and pandas, import of trials run elsewhere (CLI and Python)."""

from __future__ import annotations

import json

import pytest

import cotune
from cotune.cli import main
from cotune.exceptions import SettingsError
from cotune.table import read_trials


def test_export_then_import_round_trips_every_finished_trial(space, objective, tmp_path, capsys):
    source = cotune.Study(space, method="random", total_budget=300, full_budget=100, seed=0, storage=tmp_path / "a.db")
    source.optimize(objective)
    assert main(["export", str(tmp_path / "a.db"), "-o", str(tmp_path / "t.csv")]) == 0
    cotune.Study(space, method="random", total_budget=500, full_budget=100, seed=1, storage=tmp_path / "b.db")
    assert main(["import", str(tmp_path / "b.db"), str(tmp_path / "t.csv")]) == 0
    assert "3 trials imported" in capsys.readouterr().out
    imported = cotune.Study.load(tmp_path / "b.db").trials
    assert [(t.config, t.budget, t.score, t.curve) for t in imported] == \
        [(t.config, t.budget, t.score, t.curve) for t in source.trials]
    assert all(t.role is cotune.Role.USER for t in imported)
    # with a cost column, the imported runs cost what the source charged
    assert sum(t.charged for t in imported) == pytest.approx(300)


def test_imported_runs_without_a_cost_are_free_and_the_method_sees_them(space, objective, tmp_path):
    lines = [{"mixture": {"wiki": 0.6, "code": 0.2, "math": 0.2}, "params": {"lora_rank": 16}, "budget": 100,
              "score": 0.99, "curve": {"5": 0.5}},
             {"params": {"lora_dropout": 0.3}, "budget": 100, "score": 0.4}]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    study = cotune.Study(space, method="bo", total_budget=400, full_budget=100, seed=0, storage=tmp_path / "s.db")
    for config, budget, result in read_trials(path, space):
        study.add_trial(config, budget, result)
    assert study.spent == 0 and study.best.score == 0.99 and study.trials[0].curve == {5.0: 0.5}
    assert study.trials[1].config.mixture == space.default_config().mixture  # the baseline fills in
    result = study.optimize(objective)
    assert result.spent == pytest.approx(400) and len(result.trials) == 2 + 4


@pytest.mark.parametrize("content, message", [
    ('{"params": {"lora_rank": 16}, "budget": 100}\n', ":1: score is missing"),
    ('{"params": {"lora_rank": 999}, "budget": 100, "score": 1}\n', ":1: .*lora_rank"),
    ('{"params": {}, "budget": 100, "score": 1, "loss": 2}\n', ":1: unknown keys \\['loss'\\]"),
    ('{"budget": -1, "score": 1}\n', ":1: budget must be positive"),
    ('not json\n', ":1: not JSON"),
])
def test_a_bad_row_names_its_line_and_reason_and_nothing_is_imported(space, tmp_path, content, message, capsys):
    path = tmp_path / "runs.jsonl"
    path.write_text(content)
    with pytest.raises(SettingsError, match=message):
        read_trials(path, space)
    db = tmp_path / "s.db"
    cotune.Study(space, method="random", total_budget=300, full_budget=100, storage=db)
    with pytest.raises(SystemExit, match="nothing was imported"):
        main(["import", str(db), str(path)])
    assert cotune.Study.load(db).trials == []


def test_trials_dataframe_has_a_row_per_trial_and_a_column_per_domain_and_parameter(space, objective):
    pd = pytest.importorskip("pandas")
    study = cotune.Study(space, method="random", total_budget=300, full_budget=100, seed=0)
    study.optimize(objective)
    frame = study.trials_dataframe()
    assert isinstance(frame, pd.DataFrame) and len(frame) == 3
    assert {"score", "budget", "mixture.wiki", "params.lora_rank", "params.rear"} <= set(frame.columns)
    assert frame["score"].tolist() == [t.score for t in study.trials]
