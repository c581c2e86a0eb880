"""Evaluation: multiple choice by log-likelihood, exact match, held-out loss; train mode restored."""

from __future__ import annotations

import json
import sys

import pytest

from cotune.train import EvalConfig, TrainingConfigError
from cotune.train.evaluate import Evaluator, normalise_answer, option_logliks


@pytest.fixture(scope="module")
def loaded(tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_model), AutoTokenizer.from_pretrained(tiny_model)


def test_multiple_choice_matches_a_direct_computation(loaded, tmp_path):
    import torch

    model, tok = loaded
    rows = [
        {"question": "what colour is thing1 ?", "choices": ["colour1", "colour2 is colour3", "thing4 ?"], "answer": 0},
        {"question": "where does animal2 live ?", "choices": ["place2 lorem", "nowhere", "place0 ipsum dolor sit"],
         "answer": 2},
        {"question": "what ?", "choices": ["colour0", "colour1"], "answer": 1},
    ]
    path = tmp_path / "mc.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model.train()
    evaluator = Evaluator(EvalConfig(kind="multiple_choice", path=str(path), batch_size=2), tok, chat=False)
    metrics = evaluator(model)
    assert model.training  # evaluation puts the model back in train mode
    assert set(metrics) == {"accuracy", "accuracy_norm", "prob_correct", "score"} and metrics["score"] == metrics["accuracy"]
    expected_correct, expected_prob, expected_scores = 0, 0.0, []
    model.eval()
    with torch.no_grad():  # every (question, option) sequence scored in full, one at a time
        for row in rows:
            scores = []
            for option in row["choices"]:
                prompt = tok(row["question"])["input_ids"]
                ids = torch.tensor([prompt + tok(" " + option, add_special_tokens=False)["input_ids"]])
                logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
                scores.append(float(logp[len(prompt) - 1:].gather(-1, ids[0, len(prompt):, None]).sum()))
            expected_scores.append(scores)
            expected_correct += max(range(len(scores)), key=scores.__getitem__) == row["answer"]
            expected_prob += float(torch.softmax(torch.tensor(scores), 0)[row["answer"]])
        shared = option_logliks(model, evaluator.questions, evaluator.pad)  # prompts once, options from the cache
    model.train()
    for got, want in zip(shared, expected_scores):
        assert got == pytest.approx(want, abs=1e-4)
    assert metrics["accuracy"] == pytest.approx(expected_correct / 3)
    assert metrics["prob_correct"] == pytest.approx(expected_prob / 3, abs=1e-5)


def test_exact_match_and_loss(loaded, data_files):
    model, tok = loaded
    em = Evaluator(EvalConfig(kind="exact_match", path=data_files["em"], batch_size=4, max_new_tokens=2), tok, chat=False)
    assert 0.0 <= em(model)["score"] <= 1.0
    loss = Evaluator(EvalConfig(kind="loss", path=data_files["alpha"], batch_size=8), tok, chat=False)(model)
    assert loss["score"] == -loss["loss"] and 0 < loss["loss"] < 20
    assert model.training


def test_normalise_answer():
    assert normalise_answer("  The Eiffel-Tower.\nmore text") == "eiffeltower"
    assert normalise_answer("an Apple") == "apple"


def test_bad_multiple_choice_rows_raise(loaded, tmp_path):
    _, tok = loaded
    (tmp_path / "mc.jsonl").write_text(json.dumps({"question": "q", "choices": ["a"], "answer": 0}) + "\n")
    with pytest.raises(TrainingConfigError, match="at least 2"):
        Evaluator(EvalConfig(kind="multiple_choice", path=str(tmp_path / "mc.jsonl")), tok, chat=False)


def test_lm_eval_without_the_package_is_a_clear_error(loaded, monkeypatch):
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # what an environment without lm-eval sees
    _, tok = loaded
    with pytest.raises(TrainingConfigError, match="pip install lm-eval"):
        Evaluator(EvalConfig(kind="lm_eval", task="hellaswag"), tok, chat=False)


LM_EVAL_TASK = """task: colours
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{question}}}}"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{answer}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""


def test_lm_eval_runs_a_local_task_and_agrees_with_multiple_choice(loaded, data_files, tmp_path):
    pytest.importorskip("lm_eval")
    model, tok = loaded
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "colours.yaml").write_text(LM_EVAL_TASK.format(data=data_files["mc"]))
    config = EvalConfig(kind="lm_eval", task="colours", path=str(tasks), batch_size=4)
    metrics = Evaluator(config, tok, chat=False)(model)
    assert model.training
    # lm-eval's log-likelihood accuracy is cotune's own multiple-choice accuracy on the same rows
    ours = Evaluator(EvalConfig(kind="multiple_choice", path=data_files["mc"]), tok, chat=False)(model)
    assert metrics["score"] == metrics["acc,none"] == pytest.approx(ours["accuracy"])


def test_lm_eval_task_folder_must_exist(loaded, tmp_path):
    pytest.importorskip("lm_eval")
    _, tok = loaded
    with pytest.raises(TrainingConfigError, match="not a folder"):
        Evaluator(EvalConfig(kind="lm_eval", task="colours", path=str(tmp_path / "missing")), tok, chat=False)
