"""Persistence: resume after a crash or an interrupt, changed settings, schema versions."""

from __future__ import annotations

import sqlite3

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
