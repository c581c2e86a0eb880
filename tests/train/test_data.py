"""Domain files, mixture -> counts, deterministic sampling, prompt masking, batching."""

from __future__ import annotations

import json

import pytest

from cotune.train import TrainingConfigError, mixture_counts
from cotune.train.data import (
    IGNORE_INDEX,
    Encoded,
    Example,
    batches,
    collate,
    encode_example,
    read_domain,
    sample_domain,
    sample_mixture,
    truncate_pair,
)

from .conftest import make_tokenizer


def test_counts_sum_and_largest_remainder():
    assert mixture_counts({"a": 0.5, "b": 0.3, "c": 0.2}, 10) == {"a": 5, "b": 3, "c": 2}
    # exact shares 3.33, 3.33, 3.33: the remainder goes to the first listed
    assert mixture_counts({"a": 1 / 3, "b": 1 / 3, "c": 1 / 3}, 10) == {"a": 4, "b": 3, "c": 3}
    # 6.5 / 2.6 / 0.9: remainders .5, .6, .9 -> c and b round up
    assert mixture_counts({"a": 0.65, "b": 0.26, "c": 0.09}, 10) == {"a": 6, "b": 3, "c": 1}
    for n in (1, 7, 512):
        counts = mixture_counts({"a": 0.123, "b": 0.456, "c": 0.421}, n)
        assert sum(counts.values()) == n
        assert counts == mixture_counts({"a": 0.123, "b": 0.456, "c": 0.421}, n)


def test_zero_weight_domains_get_nothing():
    assert mixture_counts({"a": 0.0, "b": 1.0, "c": 0.0}, 7) == {"a": 0, "b": 7, "c": 0}
    assert mixture_counts({"a": 0.0, "b": 0.5, "c": 0.5}, 3) == {"a": 0, "b": 2, "c": 1}


@pytest.mark.parametrize("mixture", [{"a": 0.0}, {"a": -0.1, "b": 1.1}, {"a": float("nan")}])
def test_bad_mixtures_raise(mixture):
    with pytest.raises(TrainingConfigError, match="mixture"):
        mixture_counts(mixture, 4)


def test_read_domain_formats(tmp_path, data_files):
    assert read_domain(data_files["alpha"])[0] == Example("what colour is thing0 ?", "colour0")
    assert read_domain(data_files["gamma"])[0] == Example("where does animal0 live ?", "place0")
    text = read_domain(data_files["beta"])
    assert len(text) == 25 and text[0].prompt == "" and text[0].completion.startswith("lorem ipsum dolor 0")
    (tmp_path / "t.jsonl").write_text(json.dumps({"text": "hello"}) + "\n\n")
    assert read_domain(tmp_path / "t.jsonl") == [Example("", "hello")]


def test_read_domain_errors(tmp_path):
    with pytest.raises(TrainingConfigError, match="does not exist"):
        read_domain(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(TrainingConfigError, match=r"bad.jsonl:2: not valid JSON"):
        read_domain(tmp_path / "bad.jsonl")
    (tmp_path / "keys.jsonl").write_text('{"body": "x"}\n')
    with pytest.raises(TrainingConfigError, match=r"got keys \['body'\]"):
        read_domain(tmp_path / "keys.jsonl")
    (tmp_path / "x.csv").write_text("a,b\n")
    with pytest.raises(TrainingConfigError, match=".jsonl or .txt"):
        read_domain(tmp_path / "x.csv")


def test_sampling_is_deterministic_and_nested():
    examples = [Example("", str(i)) for i in range(10)]
    assert sample_domain(examples, 4, 0, "a") == sample_domain(examples, 4, 0, "a")
    assert sample_domain(examples, 4, 0, "a") != sample_domain(examples, 4, 1, "a")
    assert sample_domain(examples, 6, 0, "a")[:4] == sample_domain(examples, 4, 0, "a")  # nearby mixtures, nearby data
    assert sorted(e.completion for e in sample_domain(examples, 10, 0, "a")) == sorted(str(i) for i in range(10))
    repeated = sample_domain(examples, 25, 0, "a")
    assert len(repeated) == 25 and len(set(repeated[:10])) == 10
    mixed = sample_mixture({"a": examples, "b": examples}, {"a": 3, "b": 0}, seed=0)
    assert [name for name, _ in mixed] == ["a", "a", "a"]


def test_prompt_tokens_are_masked():
    tok = make_tokenizer()
    enc = encode_example(tok, Example("what colour is thing1 ?", "colour1"), 32, chat=False)
    prompt_len = len(tok("what colour is thing1 ?")["input_ids"])
    assert enc.labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert enc.labels[prompt_len:] == enc.input_ids[prompt_len:] == [tok.convert_tokens_to_ids("colour1"), tok.eos_token_id]
    text = encode_example(tok, Example("", "lorem ipsum"), 32, chat=False)
    assert text.labels == text.input_ids  # plain text is learned entirely


def test_chat_template_masks_the_whole_user_turn():
    tok = make_tokenizer(chat=True)
    enc = encode_example(tok, Example("what colour is thing1 ?", "colour1"), 32, chat=True)
    tokens = tok.convert_ids_to_tokens(enc.input_ids)
    assert tokens == ["<user>", "what", "colour", "is", "thing1", "?", "</s>", "<assistant>", "colour1", "</s>"]
    learned = [t for t, label in zip(tokens, enc.labels) if label != IGNORE_INDEX]
    assert learned == ["colour1", "</s>"]


def test_truncation_keeps_completion_tokens():
    prompt, completion = truncate_pair(list(range(30)), [100, 101], 8)
    assert completion == [100, 101] and prompt == list(range(24, 30))
    prompt, completion = truncate_pair(list(range(30)), list(range(100, 120)), 8)
    assert len(prompt) == 4 and completion == [100, 101, 102, 103]
    assert truncate_pair([1], [2], 8) == ([1], [2])


def test_collate_pads_and_masks():
    batch = collate([Encoded([5, 6, 7], [-100, 6, 7]), Encoded([8], [8])], pad=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [8, -100, -100]]
    left = collate([Encoded([5, 6], [5, 6]), Encoded([8], [8])], pad=0, left=True)
    assert left["input_ids"].tolist() == [[5, 6], [0, 8]]


def test_batches_cover_each_epoch_deterministically():
    encoded = [Encoded([i], [i]) for i in range(6)]
    stream = batches(encoded, 3, seed=0)
    first_epoch = [e.input_ids[0] for _ in range(2) for e in next(stream)]
    assert sorted(first_epoch) == list(range(6))
    again = batches(encoded, 3, seed=0)
    assert [e.input_ids[0] for _ in range(2) for e in next(again)] == first_epoch


def test_read_domain_from_a_saved_datasets_folder(tmp_path):
    datasets = pytest.importorskip("datasets", reason="the datasets package is not installed")
    rows = {"question": ["what is 1+1 ?", "capital of france ?"], "answer": ["2", "paris"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "plain"))
    assert read_domain(tmp_path / "plain") == [Example("what is 1+1 ?", "2"), Example("capital of france ?", "paris")]
    splits = datasets.DatasetDict({"train": datasets.Dataset.from_dict({"text": ["a b c"]}),
                                   "test": datasets.Dataset.from_dict({"text": ["x"]})})
    splits.save_to_disk(str(tmp_path / "splits"))
    assert read_domain(tmp_path / "splits") == [Example("", "a b c")]
    datasets.DatasetDict({"validation": datasets.Dataset.from_dict({"text": ["x"]})}).save_to_disk(
        str(tmp_path / "nosplit"))
    with pytest.raises(TrainingConfigError, match=r"splits \['validation'\] and no 'train' split"):
        read_domain(tmp_path / "nosplit")
