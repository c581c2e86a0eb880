"""Settings objects: help text on every field, validation with messages that name the field."""

from __future__ import annotations

import dataclasses

import pytest

from cotune.train import DataConfig, EvalConfig, LoraDefaults, ModelConfig, TrainConfig, TrainingConfigError


@pytest.mark.parametrize("cls", [ModelConfig, DataConfig, EvalConfig, LoraDefaults, TrainConfig])
def test_every_field_has_help(cls):
    for field in dataclasses.fields(cls):
        assert field.metadata.get("help"), f"{cls.__name__}.{field.name} has no help text"


def test_defaults_and_normalisation():
    train = TrainConfig(small_budget=5, lora={"rank": 4})
    assert train.small_budget == 5.0 and isinstance(train.small_budget, float)
    assert train.lora == LoraDefaults(rank=4)
    assert TrainConfig(batch_size=8, micro_batch_size=2).accumulation_steps == 4
    assert EvalConfig(kind="multiple_choice", path="x.jsonl").metric == "accuracy"
    assert DataConfig(domains={"a": "a.jsonl"}).domains == {"a": "a.jsonl"}


@pytest.mark.parametrize(
    ("factory", "match"),
    [
        (lambda: TrainConfig(batch_size=8, micro_batch_size=3), "multiple of micro_batch_size"),
        (lambda: TrainConfig(budget_unit="epochs"), "budget_unit"),
        (lambda: TrainConfig(learning_rate=0), "learning_rate"),
        (lambda: TrainConfig(optimizer="adam"), "optimizer"),
        (lambda: TrainConfig(eval_budgets=[5, -1]), "eval_budgets"),
        (lambda: TrainConfig(eval_budgets=5), "eval_budgets"),
        (lambda: LoraDefaults(dropout=1.0), "dropout"),
        (lambda: ModelConfig(name_or_path=""), "name_or_path"),
        (lambda: ModelConfig(name_or_path="m", gguf_file="m.bin"), "gguf_file"),
        (lambda: DataConfig(domains={}), "domains"),
        (lambda: EvalConfig(kind="multiple_choice"), "needs `path`"),
        (lambda: EvalConfig(kind="lm_eval"), "needs `task`"),
        (lambda: EvalConfig(kind="loss", path="x", metric="accuracy"), "metric"),
        (lambda: EvalConfig(kind="multiple_choice", path="x", metric="f1"), "metric"),
    ],
)
def test_invalid_settings_raise(factory, match):
    with pytest.raises(TrainingConfigError, match=match):
        factory()
