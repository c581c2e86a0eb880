"""`cotune demo`'s settings: the flags `cotune demo` and the demo scripts share, what reaches training, bad flags."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import pytest

from cotune.cli import main
from cotune.demo import (
    DemoSettings, add_settings_arguments, demo_space, demo_training, settings_flags, settings_from_arguments,
)
from cotune.train import TrainingConfigError, TrainingObjective


def parse(*argv: str) -> DemoSettings:
    parser = argparse.ArgumentParser()
    add_settings_arguments(parser)
    return settings_from_arguments(parser.parse_args(argv))


def test_every_setting_is_a_flag_with_the_field_default():
    assert parse() == DemoSettings()
    assert parse("--batch-size", "16", "--micro-batch-size", "8", "--warmup-steps", "0", "--seed", "3") == DemoSettings(
        batch_size=16, micro_batch_size=8, warmup_steps=0, seed=3)
    with pytest.raises(SystemExit):
        parse("--batch-size", "many")


def test_settings_flags_give_back_the_settings():
    settings = DemoSettings(batch_size=16, micro_batch_size=8, max_alpha=250.0, domains="games,countries")
    assert settings_flags(DemoSettings()) == []
    assert settings_flags(settings)[:2] == ["--batch-size", "16"]
    assert parse(*settings_flags(settings)) == settings


def test_demo_training_trains_at_the_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("COTUNE_CACHE", str(tmp_path))  # build the demo data here, not in the user's cache
    settings = DemoSettings(batch_size=16, micro_batch_size=4, warmup_steps=0, small_budget=4, n_examples=64, n_eval=24,
                            domains="games,countries")
    objective = demo_training(settings)
    assert objective.domains == ["games", "countries"]
    train = objective.train
    assert (train.batch_size, train.micro_batch_size, train.warmup_steps, train.small_budget) == (16, 4, 0, 4)
    assert objective.data.n_examples == 64
    assert [(t.kind, t.name, t.weight, t.n_examples) for t in objective.evaluation] == [
        ("loss", "countries", 0.75, 24), ("loss", "python_docs", 0.25, 24)]
    assert all(Path(t.path).name == f"target_{t.name}.jsonl" for t in objective.evaluation)
    assert train.seed == settings.seed
    trivia = demo_training(dataclasses.replace(settings, task="trivia"))
    assert (trivia.evaluation.kind, trivia.evaluation.metric, trivia.evaluation.n_examples) == (
        "multiple_choice", "prob_correct", 24)


def test_the_blend_task_searches_the_learning_rate_and_trivia_keeps_the_old_space(tmp_path, monkeypatch):
    monkeypatch.setenv("COTUNE_CACHE", str(tmp_path))
    monkeypatch.setattr(TrainingObjective, "n_layers", lambda self: 30)
    settings = DemoSettings(domains="games,countries")
    blend = demo_space(demo_training(settings), settings)
    lr = blend.params["learning_rate"]
    assert (lr.low, lr.high, lr.log, blend.default_config().params["learning_rate"]) == (1e-4, 1e-2, True, 1e-3)
    trivia = dataclasses.replace(settings, task="trivia")
    assert "learning_rate" not in demo_space(demo_training(trivia), trivia).params
    with pytest.raises(TrainingConfigError, match="unknown task 'poetry'; choose from blend, trivia"):
        demo_training(dataclasses.replace(settings, task="poetry"))


@pytest.mark.parametrize(("flags", "message"), [
    (["--domains", "games,nope"], r"cotune demo: unknown demo domains \['nope'\]; choose from"),
    (["--batch-size", "4", "--micro-batch-size", "3"], "cotune demo: TrainConfig.batch_size .4. must be a multiple"),
])
def test_a_bad_demo_flag_is_a_one_line_error(flags, message, tmp_path, monkeypatch):
    monkeypatch.setenv("COTUNE_CACHE", str(tmp_path))
    with pytest.raises(SystemExit, match=message):
        main(["demo", *flags, "--storage", str(tmp_path / "demo.db")])
    assert not (tmp_path / "demo.db").exists()  # nothing trained, no study left behind


@pytest.mark.parametrize("answer_beats_baseline", [True, False])
def test_demo_points_to_the_fresh_question_check_when_it_reports_a_gain(answer_beats_baseline, tmp_path, monkeypatch,
                                                                        capsys):
    import cotune

    space = cotune.lora_space(["games", "countries"], n_layers=4)
    default = space.default_config()

    def fake_run_demo(settings, *, storage):  # a synthetic study where the baseline scores 0.6
        def objective(config, budget):
            return cotune.Result(score=0.6 if config == default else (0.7 if answer_beats_baseline else 0.5))

        return cotune.optimize(objective, space, total_budget=300, full_budget=100, method="random", storage=storage)

    monkeypatch.setattr("cotune.demo.run_demo", fake_run_demo)
    monkeypatch.setenv("COLUMNS", "400")  # one line per message: the command is not wrapped
    db = tmp_path / "demo.db"
    assert main(["demo", "--batch-size", "8", "--storage", str(db)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    hint = f"`python benchmarks/demo_holdout.py {db} --batch-size 8` retrains both, with several training seeds"
    assert (hint in out) == answer_beats_baseline
    expected = "measured on the 24 held-out rows of each target domain the study selected on" if answer_beats_baseline \
        else "no configuration"
    assert expected in out
