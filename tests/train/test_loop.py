"""The training loop through the in-process objective: budgets, curve, isolation, determinism, NaN."""

from __future__ import annotations

import math

import pytest

from cotune.space.search_space import Config
from cotune.train import TrainingConfigError, TrainingDivergedError
from cotune.train.loop import get_lr

from .conftest import save_tiny_model

MIX = {"alpha": 0.5, "beta": 0.25, "gamma": 0.25}
PARAMS = {"lora_rank": 4, "lora_layers": 2, "rear": True, "lora_k": False, "lora_up": True, "lora_down": False}
MAX_STEP_TOKENS = 4 * 24  # batch 4 x max_length 24


def test_get_lr_warms_up_then_stays_constant():
    assert [get_lr(s, 1.0, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert get_lr(0, 0.1, 0) == 0.1


def test_steps_budget_with_curve(make_objective):
    result = make_objective(small_budget=2)(Config(MIX, PARAMS), 5)
    assert result.cost == 5.0 and result.info["steps"] == 5
    assert list(result.curve) == [2.0, 5.0] and result.curve[5.0] == result.score
    assert 0.0 <= result.score <= 1.0
    assert result.info["examples_per_domain"] == {"alpha": 12, "beta": 6, "gamma": 6}
    assert result.info["lora_config"]["target_modules"] == ["gate_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    assert result.info["lora_config"]["layers_to_transform"] == [2, 3]
    assert "device" not in str(result.info) and "/" not in str(result.info["lora_config"])  # no paths or devices


def test_eval_budgets_add_curve_points_up_to_the_budget(make_objective):
    result = make_objective(small_budget=1, eval_budgets=[3, 2, 9])(Config(MIX, PARAMS), 4)
    assert list(result.curve) == [1.0, 2.0, 3.0, 4.0] and result.info["steps"] == 4


def test_short_run_has_a_single_curve_point(make_objective):
    result = make_objective(small_budget=8)(Config(MIX, PARAMS), 3)
    assert list(result.curve) == [3.0] and result.info["steps"] == 3


def test_tokens_budget(make_objective):
    result = make_objective(budget_unit="tokens")(Config(MIX, PARAMS), 150)
    assert result.info["tokens"] == result.cost
    assert 150 <= result.cost < 150 + MAX_STEP_TOKENS


def test_seconds_budget(make_objective):
    result = make_objective(budget_unit="seconds")(Config(MIX, PARAMS), 0.5)
    assert result.info["steps"] >= 1
    assert 0.5 <= result.cost < 5.0  # training time only, overshooting by at most one step
    assert result.cost == result.info["train_seconds"] or abs(result.cost - result.info["train_seconds"]) < 1e-3


def test_same_seed_same_result_and_no_adapter_leaks(make_objective, tiny_model):
    from cotune.train import ModelConfig
    from cotune.train.model import load_model

    objective = make_objective(micro_batch_size=2)
    first = objective(Config(MIX, PARAMS), 4)
    other = objective(Config(MIX, {"lora_q": False, "lora_k": False, "lora_o": False, "lora_v": True}), 2)
    second = objective(Config(MIX, PARAMS), 4)
    assert first.score == second.score and first.info["train_loss"] == second.info["train_loss"]
    assert other.info["lora_config"]["target_modules"] == ["v_proj"]
    assert other.info["trainable_params"] < first.info["trainable_params"]
    model, _ = load_model(ModelConfig(name_or_path=tiny_model))
    assert not any("lora" in name for name, _ in model.named_modules())  # the base on disk is untouched
    changed = make_objective(seed=1)(Config(MIX, PARAMS), 4)
    assert changed.info["train_loss"] != first.info["train_loss"]


def test_micro_batches_train_like_the_whole_batch(make_objective):
    # examples of different lengths: a step split into forward passes still optimises the token
    # mean of the whole batch (each pass weighted by its share of the targets), so the runs agree
    config = Config(MIX, {**PARAMS, "lora_dropout": 0.0})
    whole = make_objective()(config, 3)
    split = make_objective(micro_batch_size=1)(config, 3)
    assert split.info["train_loss"] == pytest.approx(whole.info["train_loss"], rel=1e-4)
    assert split.score == pytest.approx(whole.score, rel=1e-4)
    assert split.info["tokens"] == whole.info["tokens"]


def test_empty_mixture_is_uniform_and_unknown_domains_fail(make_objective):
    objective = make_objective()
    assert objective(Config({}, {}), 1).info["examples_per_domain"] == {"alpha": 8, "beta": 8, "gamma": 8}
    with pytest.raises(TrainingConfigError, match=r"mixture domains \['delta'\] have no data"):
        objective(Config({"delta": 1.0}, {}), 1)
    with pytest.raises(TrainingConfigError, match="lora_layers=9 but the model has only 4 layers"):
        objective(Config(MIX, {"lora_layers": 9}), 1)
    with pytest.raises(TrainingConfigError, match="budget must be a positive number of steps"):
        objective(Config(MIX, {}), 0)


def test_nan_loss_fails_the_trial(make_objective, tmp_path):
    objective = make_objective(model_path=str(save_tiny_model(tmp_path / "nan", nan=True)))
    with pytest.raises(TrainingDivergedError, match="training loss is nan at step 0"):
        objective(Config(MIX, PARAMS), 3)


def test_sgd_and_learning_rate_params(make_objective):
    result = make_objective()(Config(MIX, {**PARAMS, "optimizer": "sgd", "learning_rate": 0.05}), 2)
    assert (result.info["optimizer"], result.info["learning_rate"]) == ("sgd", 0.05)


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _cuda(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("eval_kind", ["multiple_choice", "exact_match", "loss"])
def test_cuda_trial_with_bf16_base(make_objective, tiny_model, eval_kind):
    import torch

    from cotune.train import ModelConfig, TrainConfig
    from cotune.train.lora import apply_lora
    from cotune.train.model import load_model
    from cotune.train.params import resolve_params

    model, _ = load_model(ModelConfig(name_or_path=tiny_model))
    assert model.device.type == "cuda" and model.dtype == torch.bfloat16  # "auto" on a GPU
    model = apply_lora(model, resolve_params({}, TrainConfig()).lora)
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}
    result = make_objective(device="auto", eval_kind=eval_kind, small_budget=2)(Config(MIX, PARAMS), 4)
    assert math.isfinite(result.score) and list(result.curve) == [2.0, 4.0]
