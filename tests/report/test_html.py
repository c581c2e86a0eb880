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


def test_report_names_the_model_of_every_run_and_the_budget_of_each_proxy(tmp_path):
    landscape = make_landscape("scales-0.8", curve_budgets=(10.0, 20.0, 40.0))
    db = tmp_path / "study.db"
    result = cotune.optimize(landscape, landscape.space, total_budget=1000, full_budget=100, small_budget=10,
                             method="jobs", storage=db, proxies=landscape.proxies)
    page = render(cotune.Study.load(db))
    table = page[page.index("<table id=trials>"):]
    table = table[: table.index("</table>")]
    n_proxy = sum(t.fidelity == "small" for t in result.trials)
    assert n_proxy >= 3
    assert table.count('<td class=text data-v="small">small</td>') == n_proxy
    assert table.count('<td class=text data-v="target">target</td>') == len(result.trials) - n_proxy
    split = page[page.index("<h2>Budget split</h2>"):]
    charged = sum(t.charged for t in result.trials if t.fidelity == "small")
    assert f"proxy &#x27;small&#x27; {charged:g}" in split[: split.index("</p>")]
