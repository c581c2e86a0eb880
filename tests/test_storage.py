"""Persistence: resume after a crash or an interrupt, changed settings, schema versions."""

from __future__ import annotations

import json
import math
import shutil
import sqlite3
from pathlib import Path

import pytest

import cotune
from cotune.storage import SCHEMA_VERSION

BUDGETS = dict(total_budget=800, full_budget=100, small_budget=5)


class Interrupting:
    """An objective that counts calls and raises KeyboardInterrupt on call ``stop_at``."""

    def __init__(self, stop_at: int | None = None):
        self.stop_at = stop_at
        self.calls: list[str] = []

    def __call__(self, config, budget):
        self.calls.append(config.key())
        if self.stop_at is not None and len(self.calls) == self.stop_at:
            raise KeyboardInterrupt
        return 1.0 - config.params["lora_dropout"]


def test_resume_after_interrupt_keeps_finished_trials_and_reruns_the_interrupted(space, tmp_path):
    db = tmp_path / "study.db"
    first = Interrupting(stop_at=4)
    with pytest.raises(KeyboardInterrupt):
        cotune.optimize(first, space, method="random", storage=str(db), **BUDGETS)
    finished = [t for t in cotune.Study(space, method="random", storage=db, **BUDGETS).trials if t.state.finished]
    assert len(finished) == 3

    second = Interrupting()
    result = cotune.optimize(second, space, method="random", storage=f"sqlite:///{db}", **BUDGETS)
    assert len(result.trials) == 8 and result.spent == pytest.approx(800)
    assert second.calls[0] == first.calls[3]  # the interrupted trial runs again first
    assert set(first.calls[:3]).isdisjoint(second.calls)  # no finished trial runs twice
    assert [t.number for t in result.trials] == list(range(8))


def test_interrupt_while_a_result_is_being_told_leaves_no_trial_running(space, tmp_path, monkeypatch):
    db = tmp_path / "study.db"
    tell = cotune.Study.tell
    told = []

    def interrupted_tell(self, trial, value):
        told.append(trial.number)
        if len(told) == 3:  # Ctrl-C lands after the worker finished, before its result is saved
            raise KeyboardInterrupt
        return tell(self, trial, value)

    monkeypatch.setattr(cotune.Study, "tell", interrupted_tell)
    with pytest.raises(KeyboardInterrupt):
        cotune.optimize(Interrupting(), space, method="random", storage=db, n_workers=2, **BUDGETS)
    states = [t.state for t in cotune.Study.load(db).trials]
    assert cotune.TrialState.RUNNING not in states
    assert states.count(cotune.TrialState.COMPLETE) == 2 and cotune.TrialState.WAITING in states


def test_trial_left_running_by_a_dead_process_is_queued_again(space, tmp_path):
    db = tmp_path / "study.db"
    study = cotune.Study(space, method="random", storage=db, **BUDGETS)
    study.tell(study.ask(), 0.5)
    orphan = study.ask()  # the process "dies" here: no tell
    study.storage.close()

    resumed = cotune.Study(space, method="random", storage=db, **BUDGETS)
    again = resumed.ask()
    assert again.number == orphan.number and again.config == orphan.config
    resumed.tell(again, 0.7)
    assert [t.state for t in resumed.trials] == [cotune.TrialState.COMPLETE] * 2


def test_changed_settings_or_space_on_resume_is_an_error(space, tmp_path):
    db = tmp_path / "study.db"
    cotune.Study(space, method="random", storage=db, seed=1, **BUDGETS)
    with pytest.raises(cotune.StudyMismatchError, match="seed: stored 1, given 2"):
        cotune.Study(space, method="random", storage=db, seed=2, **BUDGETS)
    other = cotune.SearchSpace(mixture=["wiki", "code"], params=space.params)
    with pytest.raises(cotune.StudyMismatchError, match="another search space"):
        cotune.Study(other, method="random", storage=db, seed=1, **BUDGETS)
    cotune.Study(other, method="random", storage=db, seed=1, study_name="second", **BUDGETS)
    assert cotune.Storage(db).study_names() == ["cotune", "second"]


def test_every_trial_field_survives_a_round_trip(space, tmp_path):
    db = tmp_path / "study.db"
    study = cotune.Study(space, method="random", storage=db, **BUDGETS)
    trial = study.ask()
    study.tell(trial, cotune.Result(score=0.25, cost=97.5, curve={5: 0.1, 100: 0.25}, info={"loss": 1.5}))
    study.tell(study.ask(), RuntimeError("diverged"))
    stored = cotune.Study(space, method="random", storage=db, **BUDGETS).trials
    assert stored[0].config == trial.config and stored[0].score == 0.25 and stored[0].cost == 97.5
    assert stored[0].curve == {5.0: 0.1, 100.0: 0.25} and stored[0].info == {"loss": 1.5}
    assert stored[0].started_at <= stored[0].finished_at
    assert stored[1].state is cotune.TrialState.FAIL and "diverged" in stored[1].error and stored[1].cost == 100


def test_finished_trials_cannot_be_modified(space):
    study = cotune.Study(space, method="random", **BUDGETS)
    trial = study.ask()
    study.tell(trial, 0.5)
    with pytest.raises(cotune.StorageError, match="already complete"):
        study.storage.update_trial(study._study_id, trial.number, score=0.9)


def test_newer_schema_is_refused_with_the_fix(tmp_path):
    db = tmp_path / "study.db"
    cotune.Storage(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE version_info SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(cotune.StorageError, match="pip install -U cotune"):
        cotune.Storage(db)


def test_missing_folder_and_bad_url_are_clear_errors(tmp_path):
    with pytest.raises(cotune.StorageError, match="does not exist"):
        cotune.Storage(tmp_path / "nope" / "study.db")
    with pytest.raises(cotune.StorageError, match="unsupported storage URL"):
        cotune.Storage("postgresql://localhost/db")



def test_opening_a_study_to_inspect_it_leaves_running_trials_alone(space, tmp_path):
    db = tmp_path / "study.db"
    runner = cotune.Study(space, method="random", storage=db, **BUDGETS)
    trial = runner.ask()
    inspector = cotune.Study.load(db)
    assert inspector.trials[0].state is cotune.TrialState.RUNNING and inspector.best is None
    runner.tell(trial, 0.5)  # the running process can still finish its trial
    assert inspector.best.score == 0.5


ASSET = Path(__file__).parent / "assets" / "study-0.1.0.db"


def _old_study(tmp_path: Path) -> Path:
    """A copy of a jobs study made by cotune 0.1.0 (schema 1), stopped after 8 of its trials, one
    of them with a NaN curve point as that version stored them."""
    db = tmp_path / "old.db"
    shutil.copy(ASSET, db)
    return db


def test_a_study_made_by_cotune_0_1_0_opens_resumes_and_finishes(space, objective, tmp_path):
    db = _old_study(tmp_path)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM version_info").fetchone() == (1,)
        before = conn.execute("SELECT number, config, budget, score FROM trials ORDER BY number").fetchall()
    result = cotune.optimize(objective, space, method="jobs", total_budget=1000, full_budget=100, small_budget=5,
                             seed=0, storage=db)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version FROM version_info").fetchone() == (SCHEMA_VERSION,)
        after = conn.execute("SELECT number, config, budget, score FROM trials ORDER BY number").fetchall()
    assert after[: len(before)] == before and len(after) > len(before)  # kept, then continued
    assert result.best is not None and result.spent == pytest.approx(1000)
    assert all(math.isfinite(s) for t in result.trials for s in t.curve.values())  # the NaN point is gone
    assert cotune.Study.load(db).attributes["created_with"] == "cotune 0.1.0 or earlier"


def test_a_new_study_records_the_cotune_that_made_it(space, tmp_path):
    study = cotune.Study(space, method="random", storage=tmp_path / "new.db", **BUDGETS)
    assert study.attributes["created_with"] == f"cotune {cotune.__version__}"


def test_a_setting_added_later_takes_its_default_and_an_unknown_one_is_dropped(space, tmp_path):
    db = _old_study(tmp_path)
    with sqlite3.connect(db) as conn:
        settings = json.loads(conn.execute("SELECT settings FROM studies").fetchone()[0])
        del settings["acquisition"]  # as if this setting came after the study was made
        settings["a_future_setting"] = 3
        conn.execute("UPDATE studies SET settings = ?", (json.dumps(settings),))
    with pytest.warns(cotune.CotuneWarning, match="a_future_setting"):
        study = cotune.Study.load(db)
    assert study.settings.acquisition == "ucb" and len(study.trials) == 8
    cotune.Study(space, method="jobs", total_budget=1000, full_budget=100, small_budget=5, seed=0, storage=db)


def test_a_reader_sees_trials_another_process_changed_since_it_last_read(space, tmp_path):
    # the storage keeps trials parsed from rows it read before; a row changed elsewhere is read again
    db = tmp_path / "study.db"
    writer = cotune.Study(space, method="random", storage=db, **BUDGETS)
    trial = writer.ask()
    reader = cotune.Study.load(db)
    assert [t.state for t in reader.trials] == [cotune.TrialState.RUNNING]
    writer.tell(trial, cotune.Result(score=0.5, curve={5: 0.2, 100: 0.5}))
    second = writer.ask()
    seen = reader.trials
    assert [t.state for t in seen] == [cotune.TrialState.COMPLETE, cotune.TrialState.RUNNING]
    assert seen[0].score == 0.5 and seen[0].curve == {5.0: 0.2, 100.0: 0.5} and seen[1].config == second.config
    assert reader.trials[0] is seen[0]  # unchanged rows are not parsed again
