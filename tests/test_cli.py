"""The `cotune` command."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cotune.cli import main


def test_bench_prints_the_tables_and_writes_runs_summary_and_plot(tmp_path, capsys):
    assert main(["bench", "--methods", "random,hyperband", "--benchmarks", "lora-mix,lora-mix-10", "--seeds", "2",
                 "--budget", "4", "--processes", "1", "--out", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert "best measured full-budget score" in text and "hyperband" in text
    runs = json.loads((tmp_path / "runs.json").read_text())
    assert [(r["benchmark"], r["method"], r["seed"]) for r in runs][:3] == [
        ("lora-mix", "random", 0), ("lora-mix", "random", 1), ("lora-mix", "hyperband", 0)]
    assert len(runs) == 8
    assert all(r["spent"] <= 400 and r["final_regret"] >= 0 for r in runs)
    assert runs[0]["trace"][-1][0] == runs[0]["spent"]
    summary = (tmp_path / "summary.md").read_text()
    assert "| method | lora-mix | lora-mix-10 |" in summary and "±" in summary
    assert "| benchmark | method | budget to 0.01 | ratio to jobs | reached | final regret | wall s |" in summary
    assert (tmp_path / "best-so-far.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_never_cuts_benchmark_or_method_names_short_on_a_narrow_terminal(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["bench", "--methods", "random,alternating", "--benchmarks", "lora-mix,lora-mix-10", "--seeds", "1",
                 "--budget", "4", "--processes", "1", "--out", str(tmp_path)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("│ lora-mix")]
    assert [row.split("│")[1:3] for row in rows] == [
        [f" {b:<11} ", f" {m:<11} "] for b in ("lora-mix", "lora-mix-10") for m in ("random", "alternating")]


def test_bench_rejects_unknown_names():
    with pytest.raises(SystemExit, match="unknown method 'grid'"):
        main(["bench", "--methods", "grid"])
    with pytest.raises(SystemExit, match="unknown benchmark"):
        main(["bench", "--benchmarks", "nope"])


def test_bench_passes_n_init_and_n_confirm_to_the_methods(tmp_path, capsys):
    from cotune.bench.harness import BenchSetup, run_one

    assert main(["bench", "--methods", "bo", "--benchmarks", "lora-mix", "--seeds", "1", "--budget", "8",
                 "--n-init", "3", "--n-confirm", "1", "--processes", "1", "--out", str(tmp_path)]) == 0
    [run] = json.loads((tmp_path / "runs.json").read_text())
    given = run_one("bo", "lora-mix", 0, BenchSetup(total_full_runs=8, n_init=3, n_confirm=1))
    assert [tuple(p) for p in run["trace"]] == given.trace and run["best_score"] == given.best_score
    assert "n_init 3, n_confirm 1" in (tmp_path / "summary.md").read_text()


def test_bench_warm_starts_every_run_from_a_bo_study_of_a_related_benchmark(tmp_path, capsys):
    import cotune
    from cotune.bench.harness import BenchSetup, run_one
    from cotune.bench.landscapes import make_landscape

    assert main(["bench", "--methods", "bo", "--benchmarks", "lora-mix", "--seeds", "1", "--budget", "8",
                 "--warm-start", "lora-mix-sibling", "--processes", "1", "--out", str(tmp_path)]) == 0
    [run] = json.loads((tmp_path / "runs.json").read_text())
    setup = BenchSetup(total_full_runs=8, warm_start="lora-mix-sibling")
    warm = run_one("bo", "lora-mix", 0, setup)
    assert [tuple(p) for p in run["trace"]] == warm.trace and warm.spent <= 800  # the source's runs cost nothing
    assert "warm start from bo on lora-mix-sibling" in (tmp_path / "summary.md").read_text()
    source = make_landscape("lora-mix-sibling", curve_budgets=setup.curve_budgets, seed=0)
    study = cotune.optimize(source, source.space, method="bo", seed=0, **setup.settings()).study
    target = make_landscape("lora-mix", curve_budgets=setup.curve_budgets, seed=0)
    started = cotune.optimize(target, target.space, method="bo", seed=0, warm_start=study, **setup.settings())
    cold = cotune.optimize(target, target.space, method="bo", seed=0, **setup.settings())
    assert target.regret(started.best.config) == pytest.approx(warm.final_regret)
    assert [t.config for t in started.trials] != [t.config for t in cold.trials]
    with pytest.raises(SystemExit, match="--warm-start lora-mix-10 searches another space than lora-mix"):
        main(["bench", "--benchmarks", "lora-mix", "--warm-start", "lora-mix-10", "--out", str(tmp_path / "x")])


def test_bench_rejects_bad_settings_before_running(tmp_path):
    out = tmp_path / "bench"
    with pytest.raises(SystemExit, match="n_confirm must be an int >= 0 or None, got -1"):
        main(["bench", "--n-confirm", "-1", "--out", str(out)])
    with pytest.raises(SystemExit):
        main(["bench", "--n-init", "lots", "--out", str(out)])
    assert not out.exists()


def test_bench_help_names_the_target_once_formatted(capsys):
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "within 1% (--target)" in " ".join(capsys.readouterr().out.split())


def test_help_runs_as_a_command():
    done = subprocess.run([sys.executable, "-m", "cotune.cli", "--help"], capture_output=True, text=True, check=True)
    assert "bench" in done.stdout


def test_status_and_best_read_a_stored_study(tmp_path, capsys):
    import cotune
    from cotune.bench.landscapes import make_landscape

    landscape = make_landscape("lora-mix", curve_budgets=(10.0,))
    db = tmp_path / "study.db"
    result = cotune.optimize(landscape, landscape.space, total_budget=500, full_budget=100, method="random",
                             storage=db)
    assert main(["status", str(db)]) == 0
    status = capsys.readouterr().out
    assert "5 trials: 5 complete" in status and "baseline (default configuration)" in status
    assert main(["best", str(db)]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["score"] == result.best.score and best["trial"] == result.best.number
    assert best["peft_lora_config"]["r"] == result.best.config.params["lora_rank"]
    assert best["mixture"] == result.best.config.mixture


@pytest.mark.parametrize("default_score, other_score, says", [(0.9, 0.5, True), (0.5, 0.9, False), (0.7, 0.7, True)])
def test_status_says_when_nothing_tried_beat_the_baseline(tmp_path, capsys, space, default_score, other_score, says):
    import cotune

    default = space.default_config()

    def objective(config: cotune.Config, budget: float) -> cotune.Result:
        return cotune.Result(score=default_score if config == default else other_score)

    db = tmp_path / "study.db"
    cotune.optimize(objective, space, total_budget=300, full_budget=100, method="random", storage=db)
    assert main(["status", str(db)]) == 0
    status = " ".join(capsys.readouterr().out.split())
    assert ("no configuration tried beat the baseline" in status) == says
    assert f"gain {max(other_score - default_score, 0.0):+.4f}" in status


def test_status_shows_what_jobs_found_short_runs_worth(tmp_path, capsys):
    import cotune
    from cotune.bench.landscapes import make_landscape

    landscape = make_landscape("late-0.0", curve_budgets=(10.0,))
    db = tmp_path / "study.db"
    cotune.optimize(landscape, landscape.space, total_budget=1000, full_budget=100, small_budget=10, method="jobs",
                    storage=db)
    assert main(["status", str(db)]) == 0
    status = capsys.readouterr().out
    assert "of the full-score variance beyond the configuration alone (cross-validated on" in status
    assert "decision: full runs only: short runs did not pay by 8 full runs" in status


def test_status_export_and_import_tell_proxy_runs_apart(tmp_path, capsys):
    import csv

    import cotune
    from cotune.bench.landscapes import make_landscape

    landscape = make_landscape("scales-0.8", curve_budgets=(10.0, 20.0, 40.0))
    db = tmp_path / "study.db"
    result = cotune.optimize(landscape, landscape.space, total_budget=1000, full_budget=100, small_budget=10,
                             method="jobs", storage=db, proxies=landscape.proxies)
    proxy_runs = [t for t in result.trials if t.fidelity == "small"]
    assert len(proxy_runs) >= 3
    assert main(["status", str(db)]) == 0
    status = " ".join(capsys.readouterr().out.split())
    assert (f"proxy 'small' (a unit of its budget costs 0.05 of the target's): {len(proxy_runs)} runs, "
            f"{5 * len(proxy_runs):g} steps of the budget") in status
    assert "explained by each cheap run: at 10: " in status and ", proxy 'small' at 100: " in status
    assert main(["export", str(db), "-o", str(tmp_path / "t.csv")]) == 0
    rows = list(csv.DictReader((tmp_path / "t.csv").read_text().splitlines()))
    assert [r["fidelity"] for r in rows] == [t.fidelity or "" for t in result.trials]
    cotune.Study(landscape.space, method="random", total_budget=10000, full_budget=100, storage=tmp_path / "b.db")
    assert main(["import", str(tmp_path / "b.db"), str(tmp_path / "t.csv")]) == 0
    own = [t for t in result.trials if t.fidelity is None and t.state.value == "complete"]
    assert f"{len(own)} trials imported" in capsys.readouterr().out  # a proxy's run is not the study model's


def test_status_of_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no study file"):
        main(["status", str(tmp_path / "nope.db")])


def test_study_load_rebuilds_space_and_settings(tmp_path, space):
    import cotune

    db = tmp_path / "s.db"
    cotune.Study(space, method="random", total_budget=300, full_budget=100, seed=4, storage=db, study_name="x")
    loaded = cotune.Study.load(db, "x")
    assert loaded.space == space and loaded.settings.seed == 4
    with pytest.raises(cotune.StorageError, match="no study named 'y'.*studies there: x"):
        cotune.Study.load(db, "y")


BAD_STUDY_FILE = """
model: {name_or_path: /no/such/model}
data: {domains: {a: a.jsonl}}
evaluation: {kind: multiple_choise, path: eval.jsonl}
study: {method: jobz, total_budget: 100, full_budget: 10, small_budget: 20}
"""


def test_a_study_file_reports_all_its_mistakes_at_once(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD_STUDY_FILE)
    with pytest.raises(SystemExit) as info:
        main(["run", str(path)])
    message = str(info.value)
    assert "study.method: unknown method 'jobz'" in message
    assert "small_budget (20.0) must be smaller than full_budget (10.0)" in message
    assert "evaluation.kind" in message


@pytest.mark.parametrize("command", [
    ["status", "{junk}"], ["best", "{junk}"], ["report", "{junk}", "-o", "{tmp}/r.html"], ["export", "{junk}"],
    ["import", "{junk}", "{tmp}/runs.jsonl"], ["run", "{tmp}/missing-domain.yaml"], ["run", "{tmp}/nope.yaml"],
    ["train-best", "{tmp}/missing-domain.yaml", "-o", "{tmp}/out"], ["status", "{tmp}/nothing.db"],
])
def test_every_command_turns_bad_input_into_one_line_and_a_non_zero_exit(tmp_path, command, capsys):
    (tmp_path / "junk.db").write_text("this is not a database " * 100)
    (tmp_path / "missing-domain.yaml").write_text(
        "model: packaged\ndata: {domains: {a: no-such.jsonl}}\nevaluation: {kind: loss, path: no-such.jsonl}\n"
        "study: {method: random, total_budget: 4, full_budget: 2, storage: s.db}\n")
    argv = [part.format(junk=tmp_path / "junk.db", tmp=tmp_path) for part in command]
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code not in (0, None)
    text = str(info.value.code) + capsys.readouterr().err
    assert text.startswith(f"cotune {argv[0]}: ") and "Traceback" not in text
