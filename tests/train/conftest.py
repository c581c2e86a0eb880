"""Offline fixtures: a tiny randomly initialised Llama, a word-level tokenizer and small data files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotune.train import DataConfig, EvalConfig, ModelConfig, TrainConfig, TrainingObjective

SPECIALS = ["<pad>", "<unk>", "</s>", "<user>", "<assistant>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s> {% endfor %}"
    "{% if add_generation_prompt %}<assistant> {% endif %}"
)
N_LAYERS = 4


def _rows() -> dict[str, list[dict]]:
    colours = [f"colour{i}" for i in range(4)]
    return {
        "alpha": [{"prompt": f"what colour is thing{i} ?", "completion": colours[i % 4]} for i in range(40)],
        "gamma": [{"question": f"where does animal{i} live ?", "answer": [f"place{i % 3}", "nowhere"]} for i in range(30)],
        "mc": [{"question": f"what colour is thing{i} ?", "choices": colours, "answer": i % 4} for i in range(12)],
        "em": [{"prompt": f"what colour is thing{i} ?", "answer": colours[i % 4]} for i in range(6)],
    }


BETA_TEXT = "\n\n".join(f"lorem ipsum dolor {i} sit amet\nconsectetur adipiscing {i % 7}" for i in range(25))


def make_tokenizer(chat: bool = False):
    """A word-level tokenizer over the fixture vocabulary (no download)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = set(BETA_TEXT.split())
    for rows in _rows().values():
        for row in rows:
            for value in row.values():
                for item in value if isinstance(value, list) else [value]:
                    words.update(str(item).split())
    vocab = {w: i for i, w in enumerate(SPECIALS + sorted(words))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>", pad_token="<pad>", eos_token="</s>")
    if chat:
        tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_tiny_model(folder: Path, *, nan: bool = False, chat: bool = False, layers: int = N_LAYERS,
                    hidden: int = 32) -> Path:
    """Save a tiny random Llama (and its tokenizer) to ``folder``; ``nan`` poisons one weight."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = make_tokenizer(chat=chat)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, bos_token_id=None)
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    if nan:
        with torch.no_grad():
            model.model.norm.weight[0] = float("nan")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> str:
    return str(save_tiny_model(tmp_path_factory.mktemp("tiny-llama")))


@pytest.fixture(scope="session")
def data_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("data")
    paths = {}
    for name, rows in _rows().items():
        paths[name] = folder / f"{name}.jsonl"
        paths[name].write_text("".join(json.dumps(r) + "\n" for r in rows))
    paths["beta"] = folder / "beta.txt"
    paths["beta"].write_text(BETA_TEXT)
    return {k: str(v) for k, v in paths.items()}


@pytest.fixture
def make_objective(tiny_model, data_files):
    """Build a `TrainingObjective` on the tiny model; keyword arguments override `TrainConfig`."""

    def make(*, model_path: str | None = None, eval_kind: str = "multiple_choice", in_process: bool = True,
             n_examples: int = 24, device: str = "cpu", proxies=None, proxy_costs=None, **train) -> TrainingObjective:
        eval_path = {"multiple_choice": data_files["mc"], "exact_match": data_files["em"], "loss": data_files["alpha"]}
        return TrainingObjective(
            model=ModelConfig(name_or_path=model_path or tiny_model, device=device),
            data=DataConfig(domains={k: data_files[k] for k in ("alpha", "beta", "gamma")}, n_examples=n_examples,
                            max_length=24),
            evaluation=EvalConfig(kind=eval_kind, path=eval_path[eval_kind], batch_size=8, max_new_tokens=3),
            train=TrainConfig(**{"batch_size": 4, "learning_rate": 1e-2, **train}),
            proxies=proxies, proxy_costs=proxy_costs, in_process=in_process,
        )

    return make


@pytest.fixture
def trials_in_this_process(monkeypatch):
    """Train a study file's trials in the test's process, as ``in_process=True`` does, without a
    subprocess's Python and torch start-up (about 5 s a trial): for tests of what a study file
    sets up, not of isolation (`test_run_trains_resumes_and_reports` keeps the subprocess path)."""
    import cotune.train.objective as objective

    monkeypatch.setattr(objective, "call_in_subprocess", lambda fn, args, **_: fn(*args))
