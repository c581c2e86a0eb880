"""A study's trials as a flat table (CSV, pandas), and trials run elsewhere read back from CSV or JSONL.

One row per trial: ``number, state, role, budget, fidelity, score, cost, predicted, curve, error``
(``fidelity`` names the proxy model a run trained, empty for the study's own model) then a
``mixture.<domain>`` column per domain and a ``params.<name>`` column per parameter; ``curve`` is
a JSON object ``{budget: score}``. A file `cotune export` writes is one `cotune import` reads.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cotune.exceptions import SettingsError, SpaceError
from cotune.space.params import Bool, Choice, Float, Int
from cotune.space.search_space import Config, SearchSpace
from cotune.trial import Result, Trial

COLUMNS = ("number", "state", "role", "budget", "fidelity", "score", "cost", "predicted", "curve", "error")


def trial_rows(trials: Iterable[Trial], space: SearchSpace) -> list[dict[str, Any]]:
    """One flat dict per trial, in the column order of the module docstring."""
    rows = []
    for t in trials:
        row: dict[str, Any] = {
            "number": t.number, "state": t.state.value, "role": t.role.value, "budget": t.budget,
            "fidelity": t.fidelity, "score": t.score,
            "cost": t.cost, "predicted": t.predicted, "curve": json.dumps({repr(b): s for b, s in t.curve.items()}),
            "error": (t.error or "").strip().splitlines()[-1] if t.error else None,
        }
        row.update({f"mixture.{d}": t.config.mixture.get(d) for d in space.domains})
        row.update({f"params.{n}": t.config.params.get(n) for n in space.params})
        rows.append(row)
    return rows


def write_csv(rows: list[dict[str, Any]], path: str | Path) -> None:
    """Write `trial_rows` output as CSV (empty cells for missing values)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else list(COLUMNS))
        writer.writeheader()
        writer.writerows([{k: "" if v is None else v for k, v in row.items()} for row in rows])


def read_trials(path: str | Path, space: SearchSpace) -> list[tuple[Config, float, Result]]:
    """Trials run elsewhere, from CSV (the columns above; ``mixture.*``/``params.*`` left out take the
    baseline's values; rows of failed or unfinished trials and of proxy models' runs are skipped)
    or JSONL (``{"mixture": {...}, "params": {...}, "budget": ..., "score": ..., "curve": {...},
    "cost": ...}`` per line), each checked against ``space``.

    Raises:
        SettingsError: a row is not a valid trial, with its line and the reason; nothing is read then.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SettingsError(f"cannot read {str(path)!r}: {err.strerror}") from err
    if path.suffix.lower() in (".jsonl", ".json"):
        records = [(i, _json_line(path, i, line)) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        rows = enumerate(csv.DictReader(text.splitlines()), 2)
        # an exported study's failed or unfinished trials have no score to import, and a proxy
        # model's run is not a run of the study's model
        records = [(i, _csv_record(row, space)) for i, row in rows
                   if row.get("state", "complete") == "complete" and not row.get("fidelity")]
    out = []
    for line, record in records:
        try:
            out.append(_trial(record, space))
        except (SpaceError, SettingsError, ValueError, TypeError, KeyError) as err:
            raise SettingsError(f"{path}:{line}: {err}") from err
    return out


def _json_line(path: Path, line: int, text: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise SettingsError(f"{path}:{line}: not JSON ({err.msg})") from err
    if not isinstance(record, dict):
        raise SettingsError(f"{path}:{line}: expected a JSON object per line")
    return record


def _csv_record(row: Mapping[str, str], space: SearchSpace) -> dict[str, Any]:
    """A CSV row as a JSONL-style record, cells typed by the space's parameters."""
    mixture = {k.split(".", 1)[1]: float(v) for k, v in row.items() if k.startswith("mixture.") and v != ""}
    params = {}
    for key, value in row.items():
        if key.startswith("params.") and value != "":
            name = key.split(".", 1)[1]
            params[name] = _cell(space.params[name], value) if name in space.params else value
    record: dict[str, Any] = {"params": params, **({"mixture": mixture} if mixture else {})}
    for key in ("budget", "score", "cost"):
        if row.get(key):
            record[key] = float(row[key])
    if row.get("curve"):
        record["curve"] = json.loads(row["curve"])
    return record


def _cell(param: Any, value: str) -> Any:
    if isinstance(param, Bool):
        return value.strip().lower() in ("true", "1", "yes")
    if isinstance(param, Int):
        return int(float(value))
    if isinstance(param, Float):
        return float(value)
    if isinstance(param, Choice):
        return next((c for c in param.choices if str(c) == value), value)
    return value


def _trial(record: Mapping[str, Any], space: SearchSpace) -> tuple[Config, float, Result]:
    unknown = set(record) - {"mixture", "params", "budget", "score", "curve", "cost"}
    if unknown:
        raise SettingsError(f"unknown keys {sorted(unknown)}; a trial has mixture, params, budget, score, curve, cost")
    for key in ("budget", "score"):
        if key not in record:
            raise SettingsError(f"{key} is missing")
    config = space.complete(record)
    budget = float(record["budget"])
    if not budget > 0:
        raise SettingsError(f"budget must be positive, got {budget!r}")
    curve = {float(b): float(s) for b, s in (record.get("curve") or {}).items()}
    return config, budget, Result(score=float(record["score"]), cost=float(record.get("cost", 0.0)), curve=curve)
