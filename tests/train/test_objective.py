"""The objective end to end in its subprocess, the demo data builder, and (slow) the packaged model."""

from __future__ import annotations

import json

import pytest

from cotune.space.search_space import Config
from cotune.train import TrialFailedError, build_demo_data
from cotune.train.demo_data import HELD_OUT, N_CHOICES, TRIVIA_DOMAINS, multiple_choice_rows
from cotune.trial import Result

from .conftest import save_tiny_model

MIX = {"alpha": 0.6, "beta": 0.0, "gamma": 0.4}


def test_subprocess_trial_matches_in_process(make_objective):
    config = Config(MIX, {"lora_rank": 2, "lora_layers": 1})
    isolated = make_objective(in_process=False, small_budget=1, timeout_s=300)(config, 3)
    assert isinstance(isolated, Result)
    assert isolated.cost == 3.0 and list(isolated.curve) == [1.0, 3.0]
    local = make_objective(small_budget=1)(config, 3)
    assert isolated.score == local.score and isolated.info["train_loss"] == local.info["train_loss"]


def test_subprocess_failure_carries_the_error_text(make_objective, tmp_path):
    objective = make_objective(model_path=str(save_tiny_model(tmp_path / "nan", nan=True)), in_process=False)
    with pytest.raises(TrialFailedError, match="TrainingDivergedError: training loss is nan"):
        objective(Config(MIX, {}), 2)


def test_demo_data_is_built_once_and_well_formed(tmp_path):
    demo = build_demo_data(tmp_path)
    assert list(demo.domains) == [*TRIVIA_DOMAINS, "countries", "python_docs"]
    assert all(demo.sizes[name] > 100 for name in demo.domains)
    rows = [json.loads(line) for line in open(demo.eval_multiple_choice)]
    assert len(rows) == demo.sizes["eval_multiple_choice"] > 1000
    for row in rows[:50]:
        assert len(row["choices"]) == N_CHOICES == len(set(row["choices"])) and 0 <= row["answer"] < N_CHOICES
    held_out_questions = {row["question"] for row in rows}
    for name in [*TRIVIA_DOMAINS, "countries"]:
        train_questions = {json.loads(line)["prompt"] for line in open(demo.domains[name])}
        assert not train_questions & held_out_questions  # the task is held out from training
    assert build_demo_data(tmp_path) == demo  # second call reuses the files


def test_target_rows_are_held_out_of_training_and_split_into_selection_and_fresh_rows(tmp_path):
    demo = build_demo_data(tmp_path)
    assert list(demo.targets) == list(demo.fresh_targets) == ["countries", "python_docs"]
    for name in demo.targets:
        train, target, fresh = ([json.dumps(row) for row in map(json.loads, open(path))]
                                for path in (demo.domains[name], demo.targets[name], demo.fresh_targets[name]))
        assert len(target) > 100 and len(fresh) > 100 and abs(len(target) - len(fresh)) <= 0.05 * len(target)
        assert not set(train) & set(target) and not set(train) & set(fresh) and not set(target) & set(fresh)
        held = len(target) + len(fresh)
        assert 0.1 < held / (held + len(train)) < 0.5  # whole countries or topics, about TARGET_SHARE of them
    countries = {row["prompt"].split(" of ")[-1] for row in map(json.loads, open(demo.domains["countries"]))
                 if row["prompt"].startswith("What is the capital of")}
    held_out = {row["prompt"].split(" of ")[-1] for row in map(json.loads, open(demo.targets["countries"]))
                if row["prompt"].startswith("What is the capital of")}
    assert held_out and not countries & held_out  # a country's facts are held out together


def test_demo_objective_scores_by_answer_loss_or_multiple_choice(tmp_path):
    from cotune.train import demo_objective

    loss = demo_objective(cache_dir=str(tmp_path), metric="loss", n_eval=32)
    assert (loss.evaluation.kind, loss.evaluation.n_examples) == ("loss", 32)
    assert loss.evaluation.path.endswith("eval_exact_match.jsonl")
    choice = demo_objective(cache_dir=str(tmp_path), metric="prob_correct")
    assert (choice.evaluation.kind, choice.evaluation.metric) == ("multiple_choice", "prob_correct")


def test_distractors_are_deterministic_and_never_right():
    import random

    items = [(f"q{i}", [f"a{i}", f"A{i}!"]) for i in range(10)]
    rows = multiple_choice_rows(items, random.Random("0/x"))
    assert rows == multiple_choice_rows(items, random.Random("0/x"))
    for (question, answers), row in zip(items, rows):
        assert row["choices"][row["answer"]] == answers[0]
        assert sum(c in (answers[0],) for c in row["choices"]) == 1
    assert HELD_OUT and not set(HELD_OUT) & {c for cats in TRIVIA_DOMAINS.values() for c in cats}


@pytest.mark.slow
def test_packaged_smollm2_learns_on_demo_data(tmp_path_factory):
    from cotune.train import default_cache_dir, demo_objective

    objective = demo_objective(cache_dir=str(default_cache_dir()), n_examples=64, n_eval=20, in_process=True,
                               learning_rate=2e-3, warmup_steps=2)
    assert objective.n_layers() == 30
    result = objective(Config({"countries": 0.5, "us_geography": 0.5}, {"lora_rank": 8}), 12)
    losses = result.info["train_loss"]
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4
    assert 0.0 <= result.score <= 1.0 and result.cost == 12.0


def test_a_configuration_sets_dora_and_the_loop_settings_of_its_trial(make_objective):
    objective = make_objective(budget_unit="tokens")
    params = {"lora_rank": 2, "lora_dora": True, "batch_size": 2, "warmup_steps": 0, "weight_decay": 0.1,
              "learning_rate": 5e-3, "optimizer": "adamw"}
    result = objective(Config(MIX, params), 60)
    assert result.info["lora_config"]["use_dora"] is True and result.info["learning_rate"] == 5e-3
    plain = objective(Config(MIX, {**params, "lora_dora": False, "batch_size": 4}), 60)
    assert "use_dora" not in plain.info["lora_config"]
    assert result.info["steps"] > plain.info["steps"]  # half the examples per step: more steps to 60 tokens
    assert result.info["trainable_params"] > plain.info["trainable_params"]  # DoRA adds magnitude vectors
    stable = objective(Config(MIX, {**params, "lora_dora": False, "lora_rslora": True, "batch_size": 4}), 60)
    assert stable.info["lora_config"]["use_rslora"] is True and "use_rslora" not in plain.info["lora_config"]
    assert stable.info["train_loss"] != plain.info["train_loss"]  # alpha / sqrt(r), not alpha / r: another run
    with pytest.raises(Exception, match="warmup_steps"):
        objective(Config(MIX, {**params, "warmup_steps": -1}), 60)


def test_epochs_set_how_many_distinct_examples_a_full_run_sees_and_short_runs_share_them(make_objective):
    objective = make_objective(full_budget=8, small_budget=2, batch_size=4)  # 8 steps of 4 examples, scored at 2
    twice = objective(Config(MIX, {"lora_rank": 2, "epochs": 2.0}), 8)
    assert sum(twice.info["examples_per_domain"].values()) == 16
    assert sum(objective(Config(MIX, {"lora_rank": 2, "epochs": 4.0}), 8).info["examples_per_domain"].values()) == 8
    short = objective(Config(MIX, {"lora_rank": 2, "epochs": 2.0}), 2)
    assert short.info["examples_per_domain"] == twice.info["examples_per_domain"]  # the full run's prefix
    assert short.score == pytest.approx(twice.curve[2.0], abs=1e-6)
    assert sum(objective(Config(MIX, {"lora_rank": 2}), 2).info["examples_per_domain"].values()) == 24  # n_examples
    with pytest.raises(Exception, match="'epochs' needs budgets in steps"):
        make_objective(budget_unit="tokens")(Config(MIX, {"lora_rank": 2, "epochs": 2.0}), 60)
    with pytest.raises(Exception, match="parameter 'epochs' must be a finite number"):
        objective(Config(MIX, {"lora_rank": 2, "epochs": "two"}), 2)
