"""SQLite persistence of studies and trials, with a versioned schema and transactional writes.

Contract:
    - A study is identified by its name; its space and settings never change once created.
    - Trials are numbered 0, 1, ... per study. A trial in a finished state (COMPLETE, FAIL)
      is never modified again.
    - Every write is one transaction: a crash leaves either the old or the new record.
    - ``None`` as the URL keeps everything in memory (lost when the process ends).
    - A study has at most one driver, the process that asks for its trials, recorded as its
      host and process id (`claim_driver`).
    - A database made by an older cotune is upgraded step by step when opened (`_UPGRADES`);
      every study records the cotune that created it (attribute ``created_with``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cotune.exceptions import StorageError
from cotune.space.search_space import Config
from cotune.trial import Role, Trial, TrialState, finite_curve

#: Version of the tables and of what they hold; an older database is upgraded on open (`_UPGRADES`).
SCHEMA_VERSION = 3

logger = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS version_info (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS studies (
    id INTEGER PRIMARY KEY,
    name TEXT UNIQUE NOT NULL,
    space TEXT NOT NULL,
    settings TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    number INTEGER NOT NULL,
    config TEXT NOT NULL,
    budget REAL NOT NULL,
    role TEXT NOT NULL,
    state TEXT NOT NULL,
    score TEXT,
    predicted REAL,
    predicted_var REAL,
    cost REAL,
    curve TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    info TEXT NOT NULL DEFAULT '{}',
    started_at REAL,
    finished_at REAL,
    fidelity TEXT,
    PRIMARY KEY (study_id, number)
);
CREATE TABLE IF NOT EXISTS drivers (
    study_id INTEGER PRIMARY KEY REFERENCES studies(id),
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    since REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS study_attrs (
    study_id INTEGER NOT NULL REFERENCES studies(id),
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (study_id, key)
);
"""


def _drop_non_finite_curve_points(conn: sqlite3.Connection) -> None:
    """1 -> 2: drop curve points with a non-finite score or budget (stored before `Study.tell`
    dropped them; they would stop every method's `ask`), and stamp the studies' origin."""
    rows = conn.execute("SELECT study_id, number, curve FROM trials").fetchall()
    for study_id, number, text in rows:
        kept, dropped = finite_curve(json.loads(text))
        if dropped:
            conn.execute("UPDATE trials SET curve = ? WHERE study_id = ? AND number = ?",
                         (json.dumps({repr(b): v for b, v in kept.items()}), study_id, number))
    conn.execute("INSERT OR IGNORE INTO study_attrs (study_id, key, value) SELECT id, 'created_with', ? FROM studies",
                 (json.dumps("cotune 0.1.0 or earlier"),))


def _add_fidelity(conn: sqlite3.Connection) -> None:
    """2 -> 3: trials name the proxy model they trained (NULL, the target, for every older trial)."""
    conn.execute("ALTER TABLE trials ADD COLUMN fidelity TEXT")


#: ``version: step`` upgrades a database from ``version`` to ``version + 1``, in one transaction.
_UPGRADES: dict[int, Callable[[sqlite3.Connection], None]] = {1: _drop_non_finite_curve_points, 2: _add_fidelity}


def _version() -> str:
    from cotune import __version__

    return __version__


def _path_from_url(url: str | Path) -> str:
    text = str(url)
    if text.startswith("sqlite:///"):
        text = text[len("sqlite:///") :]
    elif "://" in text:
        raise StorageError(f"unsupported storage URL {text!r}; give a file path or 'sqlite:///path/to/study.db'")
    return text


def _dump_score(score: float | None) -> str | None:
    """Scores are stored as text so that +-inf survive; NaN is refused upstream."""
    return None if score is None else repr(float(score))


def _load_score(text: str | None) -> float | None:
    return None if text is None else float(text)


class Storage:
    """A SQLite database holding studies (``url`` a file path, ``sqlite:///path`` or None for memory)."""

    def __init__(self, url: str | Path | None = None) -> None:
        self.url = None if url is None else str(url)
        path = ":memory:" if url is None else _path_from_url(url)
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise StorageError(f"cannot create the study database {path!r}: folder {str(parent)!r} does not exist")
        self._lock = threading.RLock()
        #: Trials parsed from their rows, by (study, number), with the row they came from: a study reads
        #: every trial several times per trial it runs, and parsing (JSON, configurations) was the cost.
        self._parsed: dict[tuple[int, int], tuple[tuple[Any, ...], Trial]] = {}
        try:
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30.0)
            self._conn.execute("PRAGMA foreign_keys = ON")
            if path != ":memory:":
                self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.Error as err:
            raise StorageError(f"cannot open the study database {path!r}: {err}") from err
        self._init_schema()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the enclosed statements as one transaction; driver errors become `StorageError`."""
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                    self._conn.execute("COMMIT")
                except BaseException:
                    # SQLite rolls back by itself after some errors (a full disk): roll back only what
                    # is still open, so the original error is the one reported.
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as err:
                raise StorageError(f"study database {self.url or ':memory:'!r} failed: {err}") from err

    def _init_schema(self) -> None:
        with self._lock:
            try:
                self._conn.executescript(_SCHEMA)
            except sqlite3.Error as err:
                raise StorageError(f"cannot create the tables of {self.url or ':memory:'!r}: {err}") from err
        with self._transaction() as conn:
            row = conn.execute("SELECT version FROM version_info").fetchone()
            if row is None:
                conn.execute("INSERT INTO version_info VALUES (?)", (SCHEMA_VERSION,))
            elif row[0] > SCHEMA_VERSION:
                raise StorageError(
                    f"the study database {self.url!r} has schema version {row[0]}, newer than this cotune "
                    f"understands ({SCHEMA_VERSION}); upgrade cotune with `pip install -U cotune`"
                )
            elif row[0] < SCHEMA_VERSION:
                for version in range(row[0], SCHEMA_VERSION):
                    _UPGRADES[version](conn)
                conn.execute("UPDATE version_info SET version = ?", (SCHEMA_VERSION,))
                logger.info("upgraded the study database %r from schema version %d to %d",
                            self.url, row[0], SCHEMA_VERSION)

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._conn.close()

    # ------------------------------------------------------------------ studies
    def find_study(self, name: str) -> tuple[int, dict[str, Any], dict[str, Any]] | None:
        """Return ``(study_id, space, settings)`` of the study called ``name``, or None."""
        with self._transaction() as conn:
            row = conn.execute("SELECT id, space, settings FROM studies WHERE name = ?", (name,)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]), json.loads(row[2]))

    def create_study(self, name: str, space: dict[str, Any], settings: dict[str, Any]) -> int:
        """Create a study and return its id.

        Raises:
            StorageError: a study with this name already exists.
        """
        with self._transaction() as conn:
            try:
                cur = conn.execute(
                    "INSERT INTO studies (name, space, settings, created_at) VALUES (?, ?, ?, ?)",
                    (name, json.dumps(space, sort_keys=True), json.dumps(settings, sort_keys=True), time.time()),
                )
            except sqlite3.IntegrityError:
                raise StorageError(f"a study named {name!r} already exists in {self.url!r}") from None
            conn.execute("INSERT INTO study_attrs (study_id, key, value) VALUES (?, 'created_with', ?)",
                         (cur.lastrowid, json.dumps(f"cotune {_version()}")))
            return int(cur.lastrowid)

    def study_names(self) -> list[str]:
        """Names of every study in the database."""
        with self._transaction() as conn:
            return [r[0] for r in conn.execute("SELECT name FROM studies ORDER BY id")]

    def set_attr(self, study_id: int, key: str, value: Any) -> None:
        """Store a JSON-able study attribute (e.g. the predictor's cross-validated error)."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO study_attrs (study_id, key, value) VALUES (?, ?, ?)",
                (study_id, key, json.dumps(value)),
            )

    def get_attrs(self, study_id: int) -> dict[str, Any]:
        """Every attribute of a study."""
        with self._transaction() as conn:
            rows = conn.execute("SELECT key, value FROM study_attrs WHERE study_id = ?", (study_id,)).fetchall()
        return {k: json.loads(v) for k, v in rows}

    # ------------------------------------------------------------------ trials
    def create_trial(self, study_id: int, config: Config, budget: float, role: Role, state: TrialState, *,
                     fidelity: str | None = None, cost: float | None = None) -> Trial:
        """Append a trial in ``state`` (WAITING or RUNNING) and return it with its number; a proxy's
        run (``fidelity``) comes with the ``cost`` it reserves."""
        now = time.time()
        started = now if state is TrialState.RUNNING else None
        with self._transaction() as conn:
            (number,) = conn.execute(
                "SELECT COALESCE(MAX(number) + 1, 0) FROM trials WHERE study_id = ?", (study_id,)
            ).fetchone()
            conn.execute(
                "INSERT INTO trials (study_id, number, config, budget, role, state, started_at, fidelity, cost) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (study_id, number, json.dumps(config.to_dict(), sort_keys=True), budget, role.value, state.value,
                 started, fidelity, cost),
            )
        return Trial(number=number, config=config, budget=budget, role=role, state=state, started_at=started,
                     fidelity=fidelity, cost=cost)

    def update_trial(self, study_id: int, number: int, **fields: Any) -> None:
        """Change fields of an unfinished trial.

        Raises:
            StorageError: the trial does not exist or is already finished.
        """
        encoders = {
            "state": lambda s: TrialState(s).value,
            "score": _dump_score,
            "curve": lambda c: json.dumps({repr(float(b)): s for b, s in (c or {}).items()}),
            "info": lambda i: json.dumps(i or {}, default=repr),
        }
        allowed = {"state", "score", "predicted", "predicted_var", "cost", "curve", "error", "info",
                   "started_at", "finished_at"}
        unknown = set(fields) - allowed
        if unknown:
            raise StorageError(f"cannot update trial fields {sorted(unknown)}")
        columns = ", ".join(f"{k} = ?" for k in fields)
        values = [encoders.get(k, lambda v: v)(v) for k, v in fields.items()]
        with self._transaction() as conn:
            row = conn.execute(
                "SELECT state FROM trials WHERE study_id = ? AND number = ?", (study_id, number)
            ).fetchone()
            if row is None:
                raise StorageError(f"trial {number} does not exist")
            if TrialState(row[0]).finished:
                raise StorageError(f"trial {number} is already {row[0]} and cannot be modified")
            conn.execute(f"UPDATE trials SET {columns} WHERE study_id = ? AND number = ?", (*values, study_id, number))

    def claim_driver(self, study_id: int, host: str, pid: int,
                     alive: Callable[[str, int], bool]) -> tuple[str, int, float] | None:
        """Record ``(host, pid)`` as the study's driver unless another driver is ``alive``.

        Returns None once claimed (or already held), else the other driver's host, pid and the
        time it claimed the study. Check and claim are one transaction, so of two processes
        claiming at once exactly one succeeds.
        """
        with self._transaction() as conn:
            row = conn.execute("SELECT host, pid, since FROM drivers WHERE study_id = ?", (study_id,)).fetchone()
            ours = row is not None and (row[0], row[1]) == (host, pid)
            if row is not None and not ours and alive(row[0], row[1]):
                return row[0], row[1], row[2]
            if not ours:
                conn.execute("INSERT OR REPLACE INTO drivers VALUES (?, ?, ?, ?)", (study_id, host, pid, time.time()))
        return None

    def release_driver(self, study_id: int, host: str, pid: int) -> None:
        """Forget ``(host, pid)`` as the study's driver (nothing if another process holds it)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM drivers WHERE study_id = ? AND host = ? AND pid = ?", (study_id, host, pid))

    def requeue_running(self, study_id: int) -> list[int]:
        """Put trials left RUNNING by a dead process back in the queue (WAITING); return their numbers."""
        with self._transaction() as conn:
            numbers = [r[0] for r in conn.execute(
                "SELECT number FROM trials WHERE study_id = ? AND state = ?", (study_id, TrialState.RUNNING.value)
            )]
            conn.execute(
                "UPDATE trials SET state = ?, started_at = NULL WHERE study_id = ? AND state = ?",
                (TrialState.WAITING.value, study_id, TrialState.RUNNING.value),
            )
        return numbers

    def get_trials(self, study_id: int) -> list[Trial]:
        """Every trial of a study, by number."""
        with self._transaction() as conn:
            rows = conn.execute(
                "SELECT number, config, budget, role, state, score, predicted, predicted_var, cost, curve, error, "
                "info, started_at, finished_at, fidelity FROM trials WHERE study_id = ? ORDER BY number",
                (study_id,),
            ).fetchall()
        trials = []
        for row in rows:
            parsed = self._parsed.get((study_id, row[0]))
            if parsed is None or parsed[0] != row:  # new, or changed since (by this process or another)
                parsed = self._parsed[study_id, row[0]] = (row, _row_to_trial(row))
            trials.append(parsed[1])
        return trials


def _row_to_trial(row: tuple[Any, ...]) -> Trial:
    (number, config, budget, role, state, score, predicted, predicted_var, cost, curve, error, info,
     started_at, finished_at, fidelity) = row
    return Trial(
        number=number,
        config=Config.from_dict(json.loads(config)),
        budget=budget,
        role=Role(role),
        state=TrialState(state),
        score=_load_score(score),
        predicted=predicted,
        predicted_var=predicted_var,
        cost=cost,
        curve={float(b): float(s) for b, s in json.loads(curve).items()},
        error=error,
        info=json.loads(info),
        started_at=started_at,
        finished_at=finished_at,
        fidelity=fidelity,
    )

