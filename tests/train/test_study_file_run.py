"""`cotune run` end to end on the tiny model: a study file trains real adapters and resumes."""

from __future__ import annotations

import json

import pytest

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


@pytest.mark.usefixtures("trials_in_this_process")
def test_train_best_saves_an_adapter_that_scores_what_its_card_says(tiny_model, data_files, tmp_path, capsys):
    import re

    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from cotune.train import EvalConfig
    from cotune.train.evaluate import Evaluator

    study_file = tmp_path / "study.yaml"
    study_file.write_text(f"""
model: {{name_or_path: {tiny_model}, device: cpu}}
data: {{domains: {{alpha: {data_files['alpha']}, gamma: {data_files['gamma']}}}, n_examples: 16, max_length: 24}}
evaluation: {{kind: loss, path: {data_files['alpha']}, batch_size: 8}}
train: {{batch_size: 4, learning_rate: 1.0e-2, timeout_s: 300}}
space: {{max_rank: 4}}
study: {{method: random, total_budget: 4, full_budget: 2, small_budget: 1, storage: run.db}}
""")
    with pytest.raises(SystemExit, match="no full run measured yet"):
        main(["train-best", str(study_file), "-o", str(tmp_path / "none")])
    assert main(["run", str(study_file)]) == 0
    out = tmp_path / "adapter"
    assert main(["train-best", str(tmp_path / "run.db"), "-o", str(out)]) == 0  # the database names its study file
    card = (out / "README.md").read_text()
    best = Study.load(tmp_path / "run.db").best
    assert "library_name: peft" in card and f"trial {best.number}" in card
    assert all(f"| {d} | {w:.4f} |" in card for d, w in best.config.mixture.items())
    carded = float(re.search(r"this training run: \*\*([0-9.eE+-]+)\*\*", card).group(1))

    base = AutoModelForCausalLM.from_pretrained(tiny_model, torch_dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(out)).eval()
    assert model.peft_config["default"].r == best.config.params["lora_rank"]
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    evaluator = Evaluator(EvalConfig(kind="loss", path=data_files["alpha"], batch_size=8), tokenizer, chat=False)
    assert evaluator(model)["score"] == pytest.approx(carded, rel=1e-4)
    with model.disable_adapter():
        assert evaluator(model)["score"] != pytest.approx(carded, rel=1e-3)  # the adapter is what scores so


def test_train_best_on_a_database_without_a_study_file_says_to_pass_the_file(tmp_path):
    import cotune

    space = cotune.SearchSpace(mixture=["a", "b"])
    cotune.optimize(lambda config, budget: cotune.Result(score=config.mixture["a"]), space, total_budget=200,
                    full_budget=100, method="random", storage=tmp_path / "py.db")
    with pytest.raises(SystemExit, match="was not run from a study file, so its model and data are unknown here; "
                                         "pass the study file"):
        main(["train-best", str(tmp_path / "py.db"), "-o", str(tmp_path / "out")])


@pytest.mark.usefixtures("trials_in_this_process")
def test_several_weighted_tasks_score_every_trial_and_show_per_task(tiny_model, data_files, tmp_path, capsys):
    study_file = tmp_path / "study.yaml"
    study_file.write_text(f"""
model: {{name_or_path: {tiny_model}, device: cpu}}
data: {{domains: {{alpha: {data_files['alpha']}, gamma: {data_files['gamma']}}}, n_examples: 16, max_length: 24}}
evaluation:
  - {{name: quiz, kind: multiple_choice, path: {data_files['mc']}, batch_size: 8, weight: 3}}
  - {{name: text, kind: loss, path: {data_files['alpha']}, batch_size: 8}}
train: {{batch_size: 4, learning_rate: 1.0e-2, timeout_s: 300}}
space: {{max_rank: 4}}
study: {{method: random, total_budget: 4, full_budget: 2, small_budget: 1, storage: run.db}}
""")
    assert main(["run", str(study_file)]) == 0
    assert "per task (best / baseline): quiz " in capsys.readouterr().out
    study = Study.load(tmp_path / "run.db")
    for trial in study.trials:
        tasks = trial.task_scores
        assert set(tasks) == {"quiz", "text"}
        assert trial.score == pytest.approx((3 * tasks["quiz"] + tasks["text"]) / 4)
        assert set(trial.info["metrics"]["1.0"]) >= {"quiz/accuracy", "text/loss", "score"}  # every budget, every task
    assert main(["best", str(tmp_path / "run.db")]) == 0
    assert set(json.loads(capsys.readouterr().out)["task_scores"]) == {"quiz", "text"}


@pytest.mark.usefixtures("trials_in_this_process")
def test_full_fine_tuning_with_a_flops_budget(tiny_model, data_files, tmp_path):
    from cotune.train.model import load_model
    from cotune.train import ModelConfig

    model, _ = load_model(ModelConfig(name_or_path=tiny_model, device="cpu"))
    n_params = sum(p.numel() for p in model.parameters())
    full_budget = 6 * n_params * 300  # about 300 training tokens
    study_file = tmp_path / "study.yaml"
    study_file.write_text(f"""
model: {{name_or_path: {tiny_model}, device: cpu}}
data: {{domains: {{alpha: {data_files['alpha']}, gamma: {data_files['gamma']}}}, n_examples: 16, max_length: 24}}
evaluation: {{kind: loss, path: {data_files['alpha']}, batch_size: 8}}
train: {{batch_size: 4, learning_rate: 1.0e-3, finetuning: full, timeout_s: 300}}
space: {{params: {{learning_rate: {{kind: float, low: 1.0e-4, high: 1.0e-2, log: true, default: 1.0e-3}}}}}}
study: {{method: random, total_budget: {2 * full_budget}, full_budget: {full_budget}, small_budget: {full_budget / 4},
        budget_unit: flops, storage: run.db}}
""")
    assert main(["run", str(study_file)]) == 0
    study = Study.load(tmp_path / "run.db")
    assert set(study.space.params) == {"learning_rate"}  # no LoRA settings to search
    for trial in study.trials:
        assert trial.state.value == "complete" and trial.info["lora_config"] is None
        assert trial.info["trainable_params"] == n_params  # every weight trains
        assert trial.cost == 6 * n_params * trial.info["tokens"] >= full_budget


@pytest.mark.usefixtures("trials_in_this_process")
def test_a_study_file_with_a_proxy_runs_it_at_its_measured_cost(tiny_model, data_files, tmp_path):
    from cotune.train.proxy import proxy_layers

    from .conftest import save_tiny_model

    small = save_tiny_model(tmp_path / "small", layers=2, hidden=16)
    study_file = tmp_path / "study.yaml"
    study_file.write_text(f"""
model: {{name_or_path: {tiny_model}, device: cpu}}
proxies: {{small: {{model: {{name_or_path: {small}, device: cpu}}}}}}
data: {{domains: {{alpha: {data_files['alpha']}, gamma: {data_files['gamma']}}}, n_examples: 16, max_length: 24}}
evaluation: {{kind: loss, path: {data_files['alpha']}, batch_size: 8}}
train: {{batch_size: 4, learning_rate: 1.0e-2, timeout_s: 300}}
space: {{max_rank: 4}}
study: {{method: jobs, total_budget: 5, full_budget: 2, small_budget: 1, storage: run.db}}
""")
    assert main(["run", str(study_file)]) == 0
    study = Study.load(tmp_path / "run.db")
    factor = study.settings.proxies["small"]
    assert 0.1 < factor < 0.5  # measured from the models' sizes
    proxy_runs = [t for t in study.trials if t.fidelity == "small"]
    target_full = [t for t in study.trials if t.fidelity is None and t.budget == 2.0]
    assert proxy_runs and target_full
    # jobs runs the proxy on each configuration it trains in full, charged the proxy's share
    assert {t.config.key() for t in proxy_runs} <= {t.config.key() for t in target_full}
    assert all(t.state.value == "complete" and t.cost == pytest.approx(2.0 * factor) for t in proxy_runs)
    for t in proxy_runs:  # the proxy's two layers adapted in the share the configuration's lora_layers of four says
        adapted = t.info["lora_config"]["layers_to_transform"]
        assert (2 if adapted is None else len(adapted)) == proxy_layers(t.config.params["lora_layers"], target_layers=4,
                                                                         proxy_layers=2)
