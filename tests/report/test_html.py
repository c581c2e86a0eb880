"""The study report: one self-contained page with every section, for finished and empty studies."""

from __future__ import annotations

import re

import pytest

import cotune
from cotune.bench.landscapes import make_landscape
from cotune.cli import main
from cotune.report.html import render


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    landscape = make_landscape("lora-mix", curve_budgets=(10.0,))

    calls = []

    def objective(config, budget):
        calls.append(config)
        if len(calls) == 6:
            raise RuntimeError("CUDA out of memory <simulated>")
        return landscape(config, budget)

    db = tmp_path_factory.mktemp("report") / "study.db"
    cotune.optimize(objective, landscape.space, total_budget=900, full_budget=100, small_budget=10, method="jobs",
                    n_init=4, n_confirm=2, seed=3, storage=db)
    return db


def test_report_has_every_section_and_one_row_per_trial(study):
    study = cotune.Study.load(study)
    page = render(study)
    for title in ("Best score so far", "Predicted against measured full-budget scores", "Top 5 configurations",
                  "Budget split", "Trials"):
        assert f"<h2>{title}</h2>" in page
    table = page[page.index("<table id=trials>"):]
    assert len(re.findall(r"<tr><td", table[: table.index("</table>")])) == len(study.trials)
    assert f"{study.best.score:.4f} (trial {study.best.number})" in page
    assert f"{study.baseline.score:.4f}" in page
    assert page.count("<svg") == 4  # progress, predictor scatter, mixtures, budget split
    assert "configurations predicted from short runs and then measured in full" in page


def test_report_is_self_contained_and_escapes_text(study):
    study = cotune.Study.load(study)
    page = render(study)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "@import" not in page and "<link" not in page
    assert "CUDA out of memory &lt;simulated&gt;" in page
    assert "<simulated>" not in page


def test_report_of_a_study_without_finished_trials(tmp_path, space):
    db = tmp_path / "empty.db"
    cotune.Study(space, total_budget=300, full_budget=100, storage=db)
    page = render(cotune.Study.load(db))
    assert "No full run has finished yet." in page and "No configuration has both a prediction" in page


def test_cli_report_writes_the_page(study, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", str(study), "-o", str(out)]) == 0
    assert "written to" in capsys.readouterr().out
    assert out.read_text().startswith("<!DOCTYPE html>")
    with pytest.raises(SystemExit, match="no study file"):
        main(["report", str(tmp_path / "missing.db")])
