"""Offline demo data: training domains and held-out tasks built from text installed packages ship.

Sources (read as files, never imported): the ``Red-Trivia`` wheel (trivia question/answer lists,
GPLv3), ``countryinfo`` (country facts, MIT) and Python's own ``pydoc_data.topics``. Trivia
categories are grouped into four training domains; four other categories are held out as a
4-way multiple-choice task (the paper's out-of-domain setting), with distractors drawn from the
answers of other questions of the same held-out category. A share of the countries and of the
Python documentation topics (`TARGET_SHARE`) is held out of those two domains as well, half as
the rows a study selects on (``targets``) and half as fresh rows to check its answer on
(``fresh_targets``). Files are written once into the cache folder (never committed); building is
deterministic for a given seed and takes a few seconds.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import importlib.util
import json
import logging
import os
import random
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from cotune.train.errors import TrainingConfigError
from cotune.train.model import default_cache_dir

logger = logging.getLogger(__name__)

DEMO_VERSION = 3  # bump when the built files change, so stale caches are not reused

#: Training domain -> Red-Trivia categories.
TRIVIA_DOMAINS: dict[str, tuple[str, ...]] = {
    "games": ("anime", "boombeach", "clashroyale", "dota2abilities", "dota2items", "finalfantasy", "games",
              "leagueoflegends", "leagueults", "overwatch", "pokemon", "warcraft"),
    "pop_culture": ("2015", "2016", "disney", "entertainment", "gameofthrones", "harrypotter", "slogans", "starwars"),
    "science_sports": ("cars", "computers", "elements", "nba", "sports"),
    "us_geography": ("uscapitals", "usstateabbreviations"),
}
#: Red-Trivia categories held out as the evaluation task.
HELD_OUT = ("artandliterature", "general", "greekmyth", "worldcapitals")
N_CHOICES = 4
#: Share of the countries (all facts of one country together) and of the Python documentation
#: topics (all chunks of one topic together) held out of their training domains, their rows split
#: evenly between the rows a study selects on and fresh rows.
TARGET_SHARE = 0.25
#: The training domains rows are held out of.
TARGET_DOMAINS = ("countries", "python_docs")


@dataclasses.dataclass(frozen=True)
class DemoData:
    """Paths of the built demo files.

    ``domains`` maps each training domain to its JSONL file; ``eval_multiple_choice`` holds the
    held-out 4-way multiple-choice task and ``eval_exact_match`` the same questions with every
    accepted answer. ``targets`` and ``fresh_targets`` map each of `TARGET_DOMAINS` to rows held
    out of it (training rows, for a ``loss`` evaluation): the ones to select on and fresh ones.
    """

    domains: dict[str, str]
    eval_multiple_choice: str
    eval_exact_match: str
    sizes: dict[str, int]
    targets: dict[str, str]
    fresh_targets: dict[str, str]

    @property
    def eval_files(self) -> dict[str, str]:
        """The held-out questions for each evaluation kind that can score them: 4-way rows for
        ``multiple_choice``, question and answer rows for ``exact_match`` and ``loss``."""
        return {"multiple_choice": self.eval_multiple_choice, "exact_match": self.eval_exact_match,
                "loss": self.eval_exact_match}


def _trivia_files() -> dict[str, Path]:
    try:
        dist = importlib.metadata.distribution("Red-Trivia")
    except importlib.metadata.PackageNotFoundError as err:
        raise TrainingConfigError("the demo data needs the trivia lists: `pip install Red-Trivia`") from err
    files = {}
    for file in dist.files or ():
        if file.suffix == ".yaml" and file.parent.name == "lists":
            files[file.stem] = Path(str(dist.locate_file(file)))
    return files


def read_trivia(path: Path) -> list[tuple[str, list[str]]]:
    """(question, accepted answers) of one Red-Trivia list, without questions that show an image."""
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    items = []
    for question, answers in data.items():
        if question == "AUTHOR" or not isinstance(answers, list) or not answers or "http" in str(question):
            continue
        items.append((" ".join(str(question).split()), [str(a).strip() for a in answers if str(a).strip()]))
    return [(q, a) for q, a in items if a]


def _key(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def country_rows() -> dict[str, list[dict[str, str]]]:
    """Question/answer pairs about every country in the ``countryinfo`` data files, by country."""
    spec = importlib.util.find_spec("countryinfo")
    if spec is None or spec.origin is None:
        raise TrainingConfigError("the demo data needs country facts: `pip install countryinfo`")
    rows: dict[str, list[dict[str, str]]] = {}
    for path in sorted((Path(spec.origin).parent / "data").glob("*.json")):
        c = json.loads(path.read_text(encoding="utf-8"))
        name = c.get("name")
        if not name:
            continue
        facts = [
            (f"What is the capital of {name}?", c.get("capital")),
            (f"Which country has {c.get('capital')} as its capital?", name if c.get("capital") else None),
            (f"In which region of the world is {name}?", c.get("region")),
            (f"In which part of {c.get('region')} is {name}?", c.get("subregion") if c.get("region") else None),
            (f"What is a person from {name} called?", c.get("demonym")),
            (f"What is the currency code of {name}?", (c.get("currencies") or [None])[0]),
            (f"What is the international calling code of {name}?",
             f"+{c['callingCodes'][0]}" if c.get("callingCodes") and c["callingCodes"][0] else None),
            (f"What is the internet domain of {name}?", (c.get("tld") or [None])[0]),
            (f"What is {name} called in its own language?", c.get("nativeName")),
            (f"About how many people live in {name}?", f"{c['population']:,}" if c.get("population") else None),
        ]
        rows.setdefault(name, []).extend({"prompt": q, "completion": str(a)} for q, a in facts if a)
    return rows


def python_doc_rows(max_chars: int = 800) -> dict[str, list[dict[str, str]]]:
    """Python's reference documentation topics, cut into chunks of whole paragraphs, by topic."""
    from pydoc_data.topics import topics

    rows: dict[str, list[dict[str, str]]] = {}
    for name in sorted(topics):
        chunk, chunks = "", []
        for paragraph in re.split(r"\n\s*\n", topics[name]):
            paragraph = paragraph.strip("\n")
            if chunk and len(chunk) + len(paragraph) > max_chars:
                chunks.append({"text": chunk})
                chunk = ""
            chunk = f"{chunk}\n\n{paragraph}" if chunk else paragraph
        if chunk.strip():
            chunks.append({"text": chunk})
        rows[name] = chunks
    return rows


def split_groups(groups: dict[str, list[dict[str, str]]], domain: str,
                 seed: int) -> tuple[list[dict[str, str]], list[dict[str, str]], list[dict[str, str]]]:
    """Rows of ``groups`` (e.g. by country) as training, target and fresh rows: each group is held
    out of training whole with probability `TARGET_SHARE`, and the held-out rows, shuffled, are
    dealt alternately to the target and the fresh rows, less any row that is also a training row
    or held out twice (Python's documentation repeats some paragraphs across topics)."""
    train, held = [], []
    for name, rows in groups.items():
        (held if random.Random(f"{seed}/{domain}/{name}").random() < TARGET_SHARE else train).extend(rows)
    seen = {json.dumps(row, sort_keys=True) for row in train}
    unique = []
    for row in held:
        key = json.dumps(row, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(row)
    random.Random(f"{seed}/{domain}/held-out").shuffle(unique)
    return train, unique[0::2], unique[1::2]


def multiple_choice_rows(items: list[tuple[str, list[str]]], rng: random.Random) -> list[dict[str, Any]]:
    """4-way questions whose distractors are answers to other questions of the same list."""
    pool = sorted({answers[0] for _, answers in items})
    rows = []
    for question, answers in items:
        accepted = {_key(a) for a in answers}
        distractors: list[str] = []
        for candidate in rng.sample(pool, len(pool)):
            if _key(candidate) not in accepted and _key(candidate) not in {_key(d) for d in distractors}:
                distractors.append(candidate)
            if len(distractors) == N_CHOICES - 1:
                break
        if len(distractors) < N_CHOICES - 1:
            continue
        choices = [answers[0], *distractors]
        rng.shuffle(choices)
        rows.append({"question": question, "choices": choices, "answer": choices.index(answers[0]),
                     "answers": answers})
    return rows


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def _build(folder: Path, seed: int) -> None:
    files = _trivia_files()
    mc = [row for cat in HELD_OUT for row in multiple_choice_rows(read_trivia(files[cat]), random.Random(f"{seed}/{cat}"))]
    random.Random(f"{seed}/eval").shuffle(mc)  # so that the first n rows mix the held-out categories
    held_out = {_key(row["question"]) for row in mc}

    def unseen(rows: Iterable[dict[str, str]]) -> Iterator[dict[str, str]]:
        """Training rows minus any evaluation question (the lists and countryinfo share some)."""
        return (row for row in rows if _key(row.get("prompt", "")) not in held_out)

    sizes: dict[str, int] = {}
    for domain, categories in TRIVIA_DOMAINS.items():
        rows = ({"prompt": q, "completion": a[0]} for cat in categories for q, a in read_trivia(files[cat]))
        sizes[domain] = _write_jsonl(folder / f"{domain}.jsonl", unseen(rows))
    for domain, groups in (("countries", country_rows()), ("python_docs", python_doc_rows())):
        train, target, fresh = (list(unseen(rows)) for rows in split_groups(groups, domain, seed))
        sizes[domain] = _write_jsonl(folder / f"{domain}.jsonl", train)
        sizes[f"target_{domain}"] = _write_jsonl(folder / f"target_{domain}.jsonl", target)
        sizes[f"fresh_{domain}"] = _write_jsonl(folder / f"fresh_{domain}.jsonl", fresh)
    sizes["eval_multiple_choice"] = _write_jsonl(
        folder / "eval_multiple_choice.jsonl", ({k: r[k] for k in ("question", "choices", "answer")} for r in mc))
    _write_jsonl(folder / "eval_exact_match.jsonl", ({"question": r["question"], "answer": r["answers"]} for r in mc))
    (folder / "manifest.json").write_text(json.dumps({"version": DEMO_VERSION, "seed": seed, "sizes": sizes}, indent=1))


def build_demo_data(cache_dir: str | os.PathLike[str] | None = None, *, seed: int = 0, force: bool = False) -> DemoData:
    """Build (once) and return the demo domains and held-out tasks.

    Training domains: ``games``, ``pop_culture``, ``science_sports``, ``us_geography`` (trivia),
    ``countries`` (country facts) and ``python_docs`` (plain text), the last two without their
    held-out target and fresh rows.

    Args:
        cache_dir: Root of the cache (default `cotune.train.model.default_cache_dir`).
        seed: Seed of the distractors and the order of the evaluation questions.
        force: Rebuild even if the files exist.
    """
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    folder = root / "demo-data" / f"v{DEMO_VERSION}-seed{seed}"
    if force:
        shutil.rmtree(folder, ignore_errors=True)
    if not (folder / "manifest.json").is_file():
        partial = folder.with_name(folder.name + f".partial-{os.getpid()}")
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        _build(partial, seed)
        try:
            partial.rename(folder)
        except OSError:  # another process finished first; its files are identical
            shutil.rmtree(partial, ignore_errors=True)
        logger.info("built the demo data in %s", folder)
    sizes = json.loads((folder / "manifest.json").read_text())["sizes"]
    names = [*TRIVIA_DOMAINS, "countries", "python_docs"]
    return DemoData(domains={n: str(folder / f"{n}.jsonl") for n in names},
                    eval_multiple_choice=str(folder / "eval_multiple_choice.jsonl"),
                    eval_exact_match=str(folder / "eval_exact_match.jsonl"), sizes=sizes,
                    targets={d: str(folder / f"target_{d}.jsonl") for d in TARGET_DOMAINS},
                    fresh_targets={d: str(folder / f"fresh_{d}.jsonl") for d in TARGET_DOMAINS})
