"""Training data: read domain files, turn a mixture into a sample, tokenise with prompt masking.

A trial trains on a fixed total of ``n_examples`` examples split by the mixture. Each domain's
examples come from one seeded permutation of the domain, so a domain's sample under a larger
weight extends its sample under a smaller one: nearby mixtures train on nearby data.
"""

from __future__ import annotations

import dataclasses
import json
import math
import random
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotune.train.errors import TrainingConfigError

if TYPE_CHECKING:
    import torch

IGNORE_INDEX = -100  # label of tokens that do not count in the loss (prompt and padding)


@dataclasses.dataclass(frozen=True, slots=True)
class Example:
    """One training text: ``prompt`` is conditioned on and not learned ("" for plain text)."""

    prompt: str
    completion: str


@dataclasses.dataclass(frozen=True, slots=True)
class Encoded:
    """Token ids of one example and their labels (``IGNORE_INDEX`` where not learned)."""

    input_ids: list[int]
    labels: list[int]


def row_to_example(row: Mapping[str, Any], where: str) -> Example:
    """One row with ``text``, ``prompt``/``completion`` or ``question``/``answer`` as an `Example`."""
    if "prompt" in row and "completion" in row:
        return Example(str(row["prompt"]), str(row["completion"]))
    if "question" in row and "answer" in row:
        answer = row["answer"]
        if isinstance(answer, (list, tuple)):
            if not answer:
                raise TrainingConfigError(f"{where}: 'answer' is an empty list")
            answer = answer[0]
        return Example(str(row["question"]), str(answer))
    if "text" in row:
        return Example("", str(row["text"]))
    raise TrainingConfigError(
        f"{where}: a row needs 'text', 'prompt' and 'completion', or 'question' and 'answer'; got keys {sorted(row)}"
    )


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file (blank lines skipped), with the line number in any parse error."""
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise TrainingConfigError(f"{path}:{number}: not valid JSON ({err})") from err
            if not isinstance(row, dict):
                raise TrainingConfigError(f"{path}:{number}: each line must be a JSON object, got {type(row).__name__}")
            rows.append(row)
    return rows


def _read_saved_dataset(path: Path) -> list[dict[str, Any]]:
    try:
        import datasets
    except ImportError as err:
        raise TrainingConfigError(
            f"{path} is a directory; reading datasets saved with save_to_disk needs `pip install datasets`"
        ) from err
    data = datasets.load_from_disk(str(path))
    if isinstance(data, datasets.DatasetDict):
        if "train" not in data:
            raise TrainingConfigError(f"{path} holds splits {sorted(data)} and no 'train' split; save one split")
        data = data["train"]
    return list(data)


def read_domain(path: str | Path) -> list[Example]:
    """All examples of one domain: a .jsonl file, a .txt file or a ``save_to_disk`` directory."""
    path = Path(path).expanduser()
    if not path.exists():
        raise TrainingConfigError(f"domain data {str(path)!r} does not exist; check DataConfig.domains")
    if path.is_dir():
        examples = [row_to_example(row, f"{path}[{i}]") for i, row in enumerate(_read_saved_dataset(path))]
    elif path.suffix == ".txt":
        blocks = re.split(r"\n\s*\n", path.read_text(encoding="utf-8"))
        examples = [Example("", block.strip()) for block in blocks if block.strip()]
    elif path.suffix in (".jsonl", ".json"):
        examples = [row_to_example(row, f"{path}:{i + 1}") for i, row in enumerate(read_jsonl(path))]
    else:
        raise TrainingConfigError(f"domain data {str(path)!r}: use a .jsonl or .txt file or a save_to_disk directory")
    if not examples:
        raise TrainingConfigError(f"domain data {str(path)!r} holds no examples")
    return examples


def mixture_counts(mixture: Mapping[str, float], n: int) -> dict[str, int]:
    """Split ``n`` examples by ``mixture`` with largest-remainder rounding; counts sum to ``n``.

    Weights are normalised; ties between equal remainders go to the domain listed first, so the
    result is deterministic. A zero-weight domain always gets 0.
    """
    weights = {name: float(w) for name, w in mixture.items()}
    if any(not math.isfinite(w) or w < 0 for w in weights.values()):
        raise TrainingConfigError(f"mixture weights must be finite and >= 0, got {mixture!r}")
    total = sum(weights.values())
    if total <= 0:
        raise TrainingConfigError(f"mixture weights must not all be zero, got {mixture!r}")
    names = [name for name, w in weights.items() if w > 0]
    exact = [n * weights[name] / total for name in names]
    floors = [math.floor(x) for x in exact]
    by_remainder = sorted(range(len(names)), key=lambda i: floors[i] - exact[i])  # stable: ties keep order
    for i in by_remainder[: n - sum(floors)]:
        floors[i] += 1
    counts = dict(zip(names, floors))
    return {name: counts.get(name, 0) for name in weights}


def sample_domain(examples: Sequence[Example], count: int, seed: int, name: str) -> list[Example]:
    """``count`` examples of one domain: a prefix of seeded permutations (repeated when too few)."""
    rng = random.Random(f"{seed}/{name}")
    picked: list[Example] = []
    while len(picked) < count:
        order = list(range(len(examples)))
        rng.shuffle(order)
        picked.extend(examples[i] for i in order[: count - len(picked)])
    return picked


def sample_mixture(
    domains: Mapping[str, Sequence[Example]], counts: Mapping[str, int], seed: int
) -> list[tuple[str, Example]]:
    """The trial's training set: ``counts[d]`` examples of each domain ``d``, as (domain, example)."""
    return [(name, ex) for name, count in counts.items() if count for ex in sample_domain(domains[name], count, seed, name)]


def has_chat_template(tokenizer: Any) -> bool:
    """Whether the tokenizer can format conversations."""
    return bool(getattr(tokenizer, "chat_template", None))


def encode_pair(tokenizer: Any, prompt: str, completion: str, *, chat: bool, close: bool) -> tuple[list[int], list[int]]:
    """Token ids of a formatted prompt and of the completion that follows it.

    With ``chat`` (and a chat template) the prompt is a user turn followed by the assistant header;
    otherwise prompt and completion are joined by a space. ``close`` ends the completion as in
    training (end of turn, or the EOS token), which scoring a multiple-choice option leaves out.
    """
    if chat and has_chat_template(tokenizer):
        user = [{"role": "user", "content": prompt}]
        prompt_text = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        prompt_ids = tokenizer(prompt_text, add_special_tokens=False)["input_ids"]
        if close:
            full = tokenizer.apply_chat_template([*user, {"role": "assistant", "content": completion}], tokenize=False)
            if full.startswith(prompt_text):  # the template's own end of turn closes the completion
                return prompt_ids, tokenizer(full[len(prompt_text):], add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if close and tokenizer.eos_token_id is not None:
            completion_ids.append(tokenizer.eos_token_id)
        return prompt_ids, completion_ids
    sep = "" if not prompt or prompt[-1].isspace() or completion[:1].isspace() else " "
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"] if prompt else []
    completion_ids = tokenizer(sep + completion, add_special_tokens=not prompt)["input_ids"]
    if close and tokenizer.eos_token_id is not None:
        completion_ids.append(tokenizer.eos_token_id)
    return prompt_ids, completion_ids


def truncate_pair(prompt_ids: list[int], completion_ids: list[int], max_length: int) -> tuple[list[int], list[int]]:
    """Fit a pair into ``max_length`` tokens: cut the prompt from the left (down to half the length),
    then the completion from the right, so that some completion tokens always remain to learn."""
    if len(prompt_ids) + len(completion_ids) <= max_length:
        return prompt_ids, completion_ids
    keep_prompt = min(len(prompt_ids), max(max_length - len(completion_ids), max_length // 2))
    prompt_ids = prompt_ids[len(prompt_ids) - keep_prompt:]
    return prompt_ids, completion_ids[: max_length - len(prompt_ids)]


def encode_example(tokenizer: Any, example: Example, max_length: int, *, chat: bool) -> Encoded:
    """Tokenise one example for training, with the prompt tokens masked out of the loss."""
    prompt_ids, completion_ids = encode_pair(tokenizer, example.prompt, example.completion, chat=chat, close=True)
    prompt_ids, completion_ids = truncate_pair(prompt_ids, completion_ids, max_length)
    return Encoded(prompt_ids + completion_ids, [IGNORE_INDEX] * len(prompt_ids) + completion_ids)


def pad_id(tokenizer: Any) -> int:
    """The padding token id (the EOS token when the tokenizer has no padding token)."""
    for token_id in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if token_id is not None:
            return int(token_id)
    raise TrainingConfigError("the tokenizer has neither a pad token nor an EOS token; set tokenizer.pad_token")


def collate(batch: Sequence[Encoded], pad: int, *, left: bool = False) -> dict[str, torch.Tensor]:
    """Pad a batch to its longest sequence: ``input_ids``, ``attention_mask``, ``labels`` ``(b x t)``."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids, mask, labels = [], [], []
    for e in batch:
        n_pad = width - len(e.input_ids)
        pad_ids, pad_mask, pad_labels = [pad] * n_pad, [0] * n_pad, [IGNORE_INDEX] * n_pad
        if left:
            ids.append(pad_ids + e.input_ids)
            mask.append(pad_mask + [1] * len(e.input_ids))
            labels.append(pad_labels + e.labels)
        else:
            ids.append(e.input_ids + pad_ids)
            mask.append([1] * len(e.input_ids) + pad_mask)
            labels.append(e.labels + pad_labels)
    return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}


def batches(encoded: Sequence[Encoded], batch_size: int, seed: int) -> Iterator[list[Encoded]]:
    """Endless batches: each epoch is a fresh seeded shuffle; the last partial batch wraps into the next epoch."""
    if not encoded:
        raise TrainingConfigError("the training set is empty; raise DataConfig.n_examples")
    buffer: list[Encoded] = []
    epoch = 0
    while True:
        order = list(range(len(encoded)))
        random.Random(f"{seed}/epoch{epoch}").shuffle(order)
        for i in order:
            buffer.append(encoded[i])
            if len(buffer) == batch_size:
                yield buffer
                buffer = []
        epoch += 1
