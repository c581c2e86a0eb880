"""Loading a base model: code shipped with the model files runs only when the configuration allows it."""

from __future__ import annotations

import json
import shutil
import sys

from cotune.train import ModelConfig
from cotune.train.model import load_model

MARKED_MODELING = '''
from transformers import LlamaForCausalLM


class MarkedLlama(LlamaForCausalLM):
    """A Llama whose class name shows that the folder's own code ran."""
'''


def test_model_code_shipped_with_the_files_runs_only_when_trust_remote_code_is_on(tiny_model, tmp_path, monkeypatch):
    import transformers.dynamic_module_utils

    # transformers copies trusted model code into its modules cache and puts that on sys.path: keep both to this test
    monkeypatch.setattr(transformers.dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path / "modules"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    folder = shutil.copytree(tiny_model, tmp_path / "marked-llama")
    (folder / "modeling_marked.py").write_text(MARKED_MODELING)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModelForCausalLM": "modeling_marked.MarkedLlama"}
    (folder / "config.json").write_text(json.dumps(config))

    default, _ = load_model(ModelConfig(name_or_path=str(folder)))
    assert type(default).__name__ == "LlamaForCausalLM"

    trusted, _ = load_model(ModelConfig(name_or_path=str(folder), trust_remote_code=True))
    assert type(trusted).__name__ == "MarkedLlama"


def _place_in_hub_cache(model_dir, cache, repo_id: str, commit: str = "a" * 40) -> None:
    """Put a model folder into a Hugging Face cache as a download of ``repo_id`` would leave it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)


def test_a_hub_model_id_loads_from_the_hugging_face_cache_offline(tiny_model, tmp_path, monkeypatch):
    from pathlib import Path

    import pytest
    from huggingface_hub import constants

    from cotune.train.errors import TrainingConfigError
    from cotune.train.model import resolve_model_dir

    cache = tmp_path / "hub"
    _place_in_hub_cache(Path(tiny_model), cache, "acme/tiny-llama")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = resolve_model_dir(ModelConfig(name_or_path="acme/tiny-llama"))
    assert Path(folder) == cache / "models--acme--tiny-llama" / "snapshots" / ("a" * 40)
    model, tokenizer = load_model(ModelConfig(name_or_path="acme/tiny-llama", device="cpu"))
    assert model.config.num_hidden_layers == 4 and tokenizer.pad_token == "<pad>"
    with pytest.raises(TrainingConfigError, match="not in the Hugging Face cache and offline mode is on"):
        resolve_model_dir(ModelConfig(name_or_path="acme/not-cached"))
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(TrainingConfigError, match="neither a local folder nor a Hugging Face model id"):
        resolve_model_dir(ModelConfig(name_or_path="/no/such/folder"))
    with pytest.raises(TrainingConfigError, match="not in the Hugging Face cache and offline mode is on"):
        resolve_model_dir(ModelConfig(name_or_path="acme/not-cached", offline=True))
