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
