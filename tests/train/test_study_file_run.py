"""`cotune run` end to end on the tiny model: a study file trains real adapters and resumes."""

from __future__ import annotations

import json

from cotune.cli import main
from cotune.study import Study


def test_run_trains_resumes_and_reports(tiny_model, data_files, tmp_path, capsys):
    study_file = tmp_path / "study.yaml"
    study_file.write_text(f"""
model: {{name_or_path: {tiny_model}, device: cpu}}
data:
  domains: {{alpha: {data_files['alpha']}, beta: {data_files['beta']}, gamma: {data_files['gamma']}}}
  n_examples: 16
  max_length: 24
evaluation: {{kind: multiple_choice, path: {data_files['mc']}, batch_size: 8}}
train: {{batch_size: 4, learning_rate: 1.0e-2, timeout_s: 300}}
space: {{max_rank: 4}}
study: {{method: random, total_budget: 6, full_budget: 3, small_budget: 1, storage: run.db}}
""")
    assert main(["run", str(study_file)]) == 0
    out = capsys.readouterr().out
    assert "baseline (default configuration)" in out and "run.db" in out
    study = Study.load(tmp_path / "run.db")
    assert [t.state.value for t in study.trials] == ["complete", "complete"]
    assert all(set(t.curve) == {1.0, 3.0} and t.cost == 3.0 for t in study.trials)
    assert study.trials[0].config == study.space.default_config()

    assert main(["run", str(study_file)]) == 0  # resuming a finished study trains nothing more
    assert len(Study.load(tmp_path / "run.db").trials) == 2
    capsys.readouterr()
    assert main(["best", str(tmp_path / "run.db")]) == 0
    best = json.loads(capsys.readouterr().out)
    assert best["peft_lora_config"]["r"] == study.best.config.params["lora_rank"]
