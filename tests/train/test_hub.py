"""Hugging Face hub datasets as training domains, read offline from a cache the test builds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cotune.study_file import load_study_file
from cotune.train.data import read_domain
from cotune.train.errors import TrainingConfigError
from cotune.train.hub import dataset_domain


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """A Hugging Face cache holding dataset ``acme/qa`` (a train and a test split), offline."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    snapshot = cache / "datasets--acme--qa" / "snapshots" / ("b" * 40)
    (snapshot / "data").mkdir(parents=True)
    for split, n in (("train", 7), ("test", 3)):
        rows = [{"q": f"what colour is thing{i} ?", "a": f"colour{i % 4}", "id": i} for i in range(n)]
        (snapshot / "data" / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (cache / "datasets--acme--qa" / "refs").mkdir()
    (cache / "datasets--acme--qa" / "refs" / "main").write_text("b" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_a_hub_dataset_split_becomes_a_domain_file_with_cotunes_fields(hub_cache, tmp_path):
    spec = {"hf": "acme/qa", "split": "test", "columns": {"prompt": "q", "completion": "a"}}
    path = dataset_domain(spec, tmp_path / "cache")
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert rows[0] == {"prompt": "what colour is thing0 ?", "completion": "colour0"} and len(rows) == 3
    assert [e.completion for e in read_domain(path)][:2] == ["colour0", "colour1"]
    assert dataset_domain(spec, tmp_path / "cache") == path  # written once
    assert len(Path(dataset_domain({**spec, "split": "train", "max_rows": 5}, tmp_path / "cache")).read_text()
               .splitlines()) == 5


def test_hub_dataset_mistakes_are_clear(hub_cache, tmp_path):
    with pytest.raises(TrainingConfigError, match=r"has no columns \['question'\]"):
        dataset_domain({"hf": "acme/qa", "columns": {"prompt": "question"}}, tmp_path)
    with pytest.raises(TrainingConfigError, match="not in the Hugging Face cache and offline mode is on"):
        dataset_domain({"hf": "acme/other"}, tmp_path)
    with pytest.raises(TrainingConfigError, match=r"\['labels'\] are not among them"):
        dataset_domain({"hf": "acme/qa", "columns": {"labels": "a"}}, tmp_path)


def test_a_study_file_names_a_hub_dataset_as_a_domain(hub_cache, tmp_path, monkeypatch):
    monkeypatch.setenv("COTUNE_CACHE", str(tmp_path / "cache"))
    path = tmp_path / "study.yaml"
    path.write_text("""
model: {name_or_path: /models/m}
data:
  domains:
    qa: {hf: acme/qa, columns: {prompt: q, completion: a}}
    broken: {hf: acme/qa, columns: {prompt: nope}}
evaluation: {kind: loss, path: eval.jsonl}
study: {total_budget: 100, full_budget: 10, small_budget: 2, storage: s.db}
""")
    from cotune.exceptions import SettingsError

    with pytest.raises(SettingsError, match=r"data.domains.broken: dataset 'acme/qa' has no columns \['nope'\]"):
        load_study_file(path)
    path.write_text(path.read_text().replace("    broken: {hf: acme/qa, columns: {prompt: nope}}\n", ""))
    loaded = load_study_file(path)
    assert len(read_domain(loaded.data.domains["qa"])) == 7
