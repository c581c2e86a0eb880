"""Faults of the driver and the storage: kill -9 and Ctrl-C mid-study, a full or read-only database."""

from __future__ import annotations

import dataclasses
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import cotune

from .helpers import SPACE, Logged, counts, pids

TESTS = str(Path(__file__).resolve().parents[1])


def _default_sigint() -> None:
    """Ctrl-C as in a terminal: a suite started in the background (``&`` in a script) ignores SIGINT,
    and the driver would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_driver(db: Path, log: Path) -> subprocess.Popen:
    code = f"import sys; sys.path.insert(0, {TESTS!r}); from executors.helpers import drive; drive(sys.argv[1], sys.argv[2])"
    return subprocess.Popen([sys.executable, "-c", code, str(db), str(log)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint)


def wait_for(predicate, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the driver")
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a zombie waiting to be reaped counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def stored_trials(db: Path) -> list[cotune.Trial]:
    return cotune.Study.load(db).trials


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_driver_stopped_mid_study_resumes_without_losing_or_repeating_trials(tmp_path, sig):
    db, log = tmp_path / "study.db", tmp_path / "log"
    driver = start_driver(db, log)
    wait_for(lambda: log.exists() and sum(counts(log, "done").values()) >= 3)
    driver.send_signal(sig)
    driver.wait(timeout=60)
    before = {t.number: t for t in stored_trials(db) if t.state.finished}
    in_flight = [t for t in stored_trials(db) if not t.state.finished]
    if sig == signal.SIGINT:  # a clean stop: the running trials are queued again, nothing is left running
        assert driver.returncode != 0 and all(t.state is cotune.TrialState.WAITING for t in in_flight)
    time.sleep(1.0)  # a trial process notices its driver is gone (twice a second) and ends; a run takes 2 s
    assert not [pid for pid in pids(log) if alive(pid)], "trial processes kept running without a driver"

    rerun = start_driver(db, log)
    assert rerun.wait(timeout=300) == 0, rerun.stderr.read()
    trials = stored_trials(db)
    assert len(trials) == 8 and all(t.state is cotune.TrialState.COMPLETE for t in trials)
    for number, trial in before.items():  # every trial finished before the stop is kept as it was
        assert trials[number] == trial
    done = counts(log, "done")
    assert len(done) == 8
    for trial in before.values():
        assert counts(log, "start")[f"{trial.config.mixture['a']:.6f}/{trial.config.params['x']:.10f}/100"] == 1


def test_a_second_process_cannot_run_a_study_that_a_live_process_runs(tmp_path):
    db, log = tmp_path / "study.db", tmp_path / "log"
    driver = start_driver(db, log)
    wait_for(lambda: log.exists() and counts(log, "start"))
    with pytest.raises(cotune.StudyBusyError, match=f"being run by process {driver.pid} on "):
        cotune.optimize(Logged(str(tmp_path / "other-log")), SPACE, total_budget=800, full_budget=100,
                        method="random", storage=db)
    assert driver.wait(timeout=300) == 0, driver.stderr.read()
    assert not (tmp_path / "other-log").exists()  # the refused process trained nothing
    assert set(counts(log, "done").values()) == {1} and len(counts(log, "done")) == 8  # the driver was undisturbed
    result = cotune.optimize(Logged(str(tmp_path / "other-log")), SPACE, total_budget=800, full_budget=100,
                             method="random", storage=db)  # the driver released the study when it finished
    assert len(result.trials) == 8 and all(t.state is cotune.TrialState.COMPLETE for t in result.trials)


def _fault_storage(tmp_path, pragma: str):
    """A study whose database stops taking writes (``pragma``) while its fourth trial trains; that
    trial's result is large, so saving it needs more room."""
    db = tmp_path / "study.db"
    storage = cotune.Storage(db)
    log = str(tmp_path / "log")
    inner = Logged(log)
    calls = []

    def objective(config, budget):
        calls.append(config)
        result = inner(config, budget)
        if len(calls) < 4:
            return result
        pages = storage._conn.execute("PRAGMA page_count").fetchone()[0]
        storage._conn.execute(pragma.format(pages=pages))  # fault injection: the disk fills up or turns read-only
        return dataclasses.replace(result, info={**result.info, "losses": list(range(20_000))})

    study = cotune.Study(SPACE, total_budget=800, full_budget=100, method="random", storage=storage)
    with pytest.raises(cotune.StorageError) as info:
        study.optimize(objective)
    return db, log, info.value


@pytest.mark.parametrize(("pragma", "message"), [
    ("PRAGMA max_page_count = {pages}", "database or disk is full"),
    ("PRAGMA query_only = ON", "readonly database"),
])
def test_storage_that_stops_taking_writes_is_a_clear_error_and_loses_nothing(tmp_path, pragma, message):
    db, log, error = _fault_storage(tmp_path, pragma)
    assert message in str(error) and "run the study again to resume" in str(error)
    trials = stored_trials(db)
    finished = [t for t in trials if t.state.finished]
    assert len(finished) == 3 and all(t.state is cotune.TrialState.COMPLETE for t in finished)
    result = cotune.optimize(Logged(log), SPACE, total_budget=800, full_budget=100, method="random", storage=db)
    assert len(result.trials) == 8 and all(t.state is cotune.TrialState.COMPLETE for t in result.trials)
    assert [t for t in result.trials if t.number < 3] == finished
    assert set(counts(log, "done").values()) <= {1, 2} and sum(v == 2 for v in counts(log, "done").values()) <= 1


def test_storage_path_that_cannot_be_written_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(cotune.StorageError, match="does not exist"):
        cotune.optimize(Logged(str(tmp_path / "log")), SPACE, total_budget=300, full_budget=100,
                        storage=blocker / "study.db")
