"""Configuration parameters -> PEFT LoraConfig: target modules, layers, defaults and errors."""

from __future__ import annotations

import json

import pytest

from cotune.train import LoraDefaults, TrainConfig, TrainingConfigError, params_to_lora_dict
from cotune.train.lora import apply_lora, build_lora_config, layer_indices, target_module_names
from cotune.train.params import resolve_params

from .conftest import N_LAYERS


def test_defaults_fill_missing_params():
    p = resolve_params({}, TrainConfig())
    assert (p.lora.rank, p.lora.alpha, p.lora.dropout, p.lora.layers, p.lora.rear) == (8, 16.0, 0.05, None, False)
    assert p.lora.modules == ("q", "k", "v", "o")
    assert (p.learning_rate, p.optimizer) == (1e-3, "adamw")


def test_switches_map_to_module_names():
    params = {"lora_q": False, "lora_k": False, "lora_v": False, "lora_o": False, "lora_up": True, "lora_down": True}
    assert target_module_names(resolve_params(params, TrainConfig()).lora.modules) == ["down_proj", "gate_proj", "up_proj"]
    only_v = {"lora_q": False, "lora_k": False, "lora_v": True, "lora_o": False}
    assert target_module_names(resolve_params(only_v, TrainConfig()).lora.modules) == ["v_proj"]


def test_layers_front_and_rear():
    assert layer_indices(30, 3, rear=False) == [0, 1, 2]
    assert layer_indices(30, 3, rear=True) == [27, 28, 29]
    assert layer_indices(4, None, rear=True) == [0, 1, 2, 3]
    d = params_to_lora_dict({"lora_layers": 30}, n_layers=30)
    assert d["layers_to_transform"] is None  # every layer: PEFT's default


def test_too_many_layers_is_a_clear_error():
    with pytest.raises(TrainingConfigError, match=r"lora_layers=31 but the model has only 30 layers"):
        params_to_lora_dict({"lora_layers": 31}, n_layers=30)


def test_at_least_one_module():
    off = {"lora_q": False, "lora_k": False, "lora_v": False, "lora_up": False, "lora_down": False}
    with pytest.raises(TrainingConfigError, match="switch at least one on"):
        resolve_params(off, TrainConfig(lora=LoraDefaults(o=False)))
    assert resolve_params(off, TrainConfig()).lora.modules == ("o",)  # o_proj has no switch: its default holds


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"lora_rnak": 4}, r"unknown parameter\(s\) \['lora_rnak'\]"),
        ({"lora_rank": 0}, "lora_rank"),
        ({"lora_rank": 2.5}, "lora_rank"),
        ({"lora_dropout": 1.5}, "lora_dropout"),
        ({"lora_q": "yes"}, "lora_q"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"learning_rate": -1.0}, "learning_rate"),
    ],
)
def test_bad_params_raise(params, match):
    with pytest.raises(TrainingConfigError, match=match):
        resolve_params(params, TrainConfig())


def test_lora_dict_is_ready_to_use_json():
    from peft import LoraConfig

    params = {"lora_rank": 16, "lora_alpha": 32.0, "lora_dropout": 0.1, "lora_layers": 2, "rear": True,
              "lora_q": True, "lora_k": False, "lora_v": True, "lora_up": False, "lora_down": False,
              "learning_rate": 3e-4, "optimizer": "sgd"}
    d = json.loads(json.dumps(params_to_lora_dict(params, n_layers=30)))
    config = LoraConfig(**d)
    assert (config.r, config.lora_alpha, config.lora_dropout) == (16, 32.0, 0.1)
    assert set(config.target_modules) == {"q_proj", "o_proj", "v_proj"}
    assert config.layers_to_transform == [28, 29]


def test_adapters_land_in_the_chosen_layers(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    settings = resolve_params({"lora_layers": 1, "rear": True, "lora_up": True}, TrainConfig()).lora
    peft_model = apply_lora(model, settings)
    adapted = {name.split(".lora_A")[0] for name, _ in peft_model.named_modules() if name.endswith("lora_A")}
    last = N_LAYERS - 1
    assert {a.split("layers.")[1] for a in adapted} == {
        f"{last}.self_attn.{m}" for m in ("q_proj", "k_proj", "v_proj", "o_proj")
    } | {f"{last}.mlp.{m}" for m in ("up_proj", "gate_proj")}


def test_model_without_llama_names_is_a_clear_error():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=32, n_positions=32))
    with pytest.raises(TrainingConfigError, match="no linear layers named"):
        build_lora_config(resolve_params({}, TrainConfig()).lora, model)
