"""Models and datasets named the way users name them: Hugging Face hub ids, through the Hugging Face cache.

A snapshot already in the cache is used as it is (no network, so every trial can resolve it);
one that is missing is downloaded into the cache once, unless offline (``offline`` or
``HF_HUB_OFFLINE=1``). A hub dataset becomes a domain file: the split is read with ``datasets``
from the snapshot, its columns renamed to what cotune reads, and written once as JSONL.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from cotune.train.errors import TrainingConfigError

logger = logging.getLogger(__name__)

#: A hub id: ``name`` or ``org/name``.
HUB_ID = re.compile(r"[\w.-]+(/[\w.-]+)?")
#: The fields cotune reads from a training row (`cotune.train.data.row_to_example`).
FIELDS = ("text", "prompt", "completion", "question", "answer")


def is_offline(offline: bool = False) -> bool:
    """Whether only the local cache may be used: asked for, or ``HF_HUB_OFFLINE`` set."""
    from huggingface_hub import constants

    return offline or constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true")


def snapshot(repo_id: str, *, kind: str = "model", revision: str | None = None, offline: bool = False,
             ignore: Sequence[str] | None = None) -> str:
    """The local folder of hub repo ``repo_id`` (``kind`` "model" or "dataset") in the Hugging Face cache.

    Raises:
        TrainingConfigError: not a hub id, not cached while offline, or the download failed.
    """
    if not HUB_ID.fullmatch(repo_id):
        raise TrainingConfigError(f"{kind} {repo_id!r} is neither a local folder nor a Hugging Face {kind} id (org/name)")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    args = dict(repo_type=kind, revision=revision, ignore_patterns=list(ignore) if ignore else None)
    try:
        return snapshot_download(repo_id, local_files_only=True, **args)
    except LocalEntryNotFoundError as err:
        if is_offline(offline):
            raise TrainingConfigError(
                f"{kind} {repo_id!r} is not in the Hugging Face cache and offline mode is on (offline: true or "
                f"HF_HUB_OFFLINE=1): download it once with `hf download {repo_id}"
                f"{' --repo-type dataset' if kind == 'dataset' else ''}` or run online") from err
    logger.info("downloading %s %s from the Hugging Face hub into its cache", kind, repo_id)
    try:
        return snapshot_download(repo_id, **args)
    except (HfHubHTTPError, LocalEntryNotFoundError, OSError) as err:
        raise TrainingConfigError(f"cannot download {kind} {repo_id!r} from the Hugging Face hub: {err}") from err


def dataset_domain(spec: Mapping[str, Any], cache_dir: str | Path) -> str:
    """A hub dataset as a local JSONL domain file, written once under ``cache_dir``.

    ``spec``: ``hf`` (the dataset id), optional ``config``, ``split`` (default train), ``revision``,
    ``columns`` (cotune field -> the dataset's column, e.g. ``{prompt: question, completion: answer}``),
    ``max_rows`` and ``offline``.
    """
    unknown = set(spec) - {"hf", "config", "split", "revision", "columns", "max_rows", "offline"}
    if unknown or "hf" not in spec:
        raise TrainingConfigError(f"a hub dataset domain takes hf, config, split, revision, columns, max_rows and offline; "
                                  f"got {sorted(spec)}")
    columns = dict(spec.get("columns") or {})
    bad = sorted(set(columns) - set(FIELDS))
    if bad:
        raise TrainingConfigError(f"columns maps cotune's fields {', '.join(FIELDS)} to the dataset's columns; "
                                  f"{bad} are not among them")
    folder = snapshot(str(spec["hf"]), kind="dataset", revision=spec.get("revision"), offline=bool(spec.get("offline")))
    key = hashlib.sha256(json.dumps({**spec, "snapshot": Path(folder).name}, sort_keys=True).encode()).hexdigest()[:16]
    target = Path(cache_dir).expanduser() / "hub-datasets" / f"{str(spec['hf']).replace('/', '--')}-{key}.jsonl"
    if target.is_file():
        return str(target)
    import datasets

    split = spec.get("split", "train")
    try:
        rows = datasets.load_dataset(folder, name=spec.get("config"), split=split)
    except (ValueError, FileNotFoundError) as err:
        raise TrainingConfigError(f"dataset {spec['hf']!r}: cannot read split {split!r} "
                                  f"(config {spec.get('config')!r}): {err}") from err
    missing = sorted(set(columns.values()) - set(rows.column_names))
    if missing:
        raise TrainingConfigError(f"dataset {spec['hf']!r} has no columns {missing}; it has {rows.column_names}")
    limit = spec.get("max_rows")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    with open(partial, "w", encoding="utf-8") as handle:
        for i, row in enumerate(rows):
            if limit is not None and i >= int(limit):
                break
            out = {field: row[column] for field, column in columns.items()} if columns else \
                {k: v for k, v in row.items() if k in FIELDS}
            handle.write(json.dumps(out) + "\n")
    partial.replace(target)
    return str(target)
