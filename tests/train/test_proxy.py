"""Proxy models of the training objective: the smaller model trains, with its share of the layers, at its share of the cost."""

from __future__ import annotations

import pytest

from cotune.space.lora import lora_space
from cotune.train import ModelConfig
from cotune.train.errors import TrainingConfigError
from cotune.train.proxy import cost_factor, proxy_layers

from .conftest import N_LAYERS, save_tiny_model


@pytest.fixture(scope="module")
def small_model(tmp_path_factory) -> str:
    return str(save_tiny_model(tmp_path_factory.mktemp("small-llama"), layers=2, hidden=16))


def _linear_weights(path: str) -> int:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def test_a_proxy_costs_the_share_of_weights_a_token_meets(tiny_model, small_model):
    target, proxy = ModelConfig(name_or_path=tiny_model), ModelConfig(name_or_path=small_model)
    expected = _linear_weights(small_model) / _linear_weights(tiny_model)
    assert 0.1 < expected < 0.5  # half the width and half the layers, the output head besides
    assert cost_factor(proxy, target) == pytest.approx(expected)
    with pytest.raises(TrainingConfigError, match="a proxy must be smaller than the target"):
        cost_factor(target, proxy)


def test_adapted_layers_keep_their_share_on_a_smaller_model():
    assert proxy_layers(30, target_layers=30, proxy_layers=12) == 12
    assert proxy_layers(15, target_layers=30, proxy_layers=12) == 6
    assert proxy_layers(1, target_layers=30, proxy_layers=12) == 1  # never none


def test_a_proxy_run_trains_the_proxy_and_is_charged_its_share(make_objective, tiny_model, small_model):
    objective = make_objective(proxies={"small": ModelConfig(name_or_path=small_model)})
    space = lora_space(objective.domains, N_LAYERS, max_rank=4)
    config = space.complete({"params": {"lora_layers": 2}})
    factor = objective.proxy_costs()["small"]
    assert factor == pytest.approx(_linear_weights(small_model) / _linear_weights(tiny_model))
    spec = objective.spec(config, 2.0, proxy="small")
    assert spec.model.name_or_path == small_model and spec.params["lora_layers"] == 1
    assert objective.spec(config, 2.0).params["lora_layers"] == 2  # the target's own run is unchanged
    result = objective(config, 2.0, proxy="small")
    assert result.cost == pytest.approx(2.0 * factor)
    assert result.info["lora_config"]["layers_to_transform"] == [0]  # one of the proxy's two layers
    target = objective(config, 2.0)
    assert target.cost == 2.0 and target.info["lora_config"]["layers_to_transform"] == [0, 1]


def test_proxies_are_checked_when_the_objective_is_made(make_objective, small_model):
    small = {"small": ModelConfig(name_or_path=small_model)}
    with pytest.raises(TrainingConfigError, match="budget_unit steps or tokens"):
        make_objective(proxies=small, budget_unit="seconds")
    with pytest.raises(TrainingConfigError, match=r"strictly between 0 and 1; got \{'small': 1.5\}"):
        make_objective(proxies=small, proxy_costs={"small": 1.5})
    with pytest.raises(TrainingConfigError, match=r"names \['large'\], which are not proxies"):
        make_objective(proxies=small, proxy_costs={"large": 0.5})
    objective = make_objective(proxies=small, proxy_costs={"small": 0.25})
    assert objective.proxy_costs() == {"small": 0.25}  # as given, not measured
    with pytest.raises(TrainingConfigError, match="unknown proxy model 'large'; this objective has small"):
        objective.spec(lora_space(objective.domains, N_LAYERS).default_config(), 2.0, proxy="large")
