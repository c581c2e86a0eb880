"""A study: the space, the settings, the method and every trial, persisted and resumable (ask/tell)."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import socket
import time
import traceback
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cotune.exceptions import (
    CotuneError, SettingsError, StorageError, StudyBusyError, StudyMismatchError, TrialStateError,
)
from cotune.executors import Executor
from cotune.isolation import refuse_unguarded_start
from cotune.methods import make_method
from cotune.methods.base import History, TrialRequest
from cotune.settings import StudySettings
from cotune.space.search_space import Config, SearchSpace
from cotune.storage import Storage
from cotune.threads import one_thread
from cotune.trial import Result, Role, Trial, TrialState, finite_curve

logger = logging.getLogger(__name__)


class Study:
    """The optimisation engine as ask/tell, for users who run trials themselves.

    Creating a study with a ``storage`` that already holds one of the same ``study_name``
    resumes it: finished trials are kept, trials that were running when the previous process
    died are queued again, and a different space or settings raise `StudyMismatchError`.

    Example:
        study = cotune.Study(space, total_budget=20_000, full_budget=1_000, storage="study.db")
        while (trial := study.ask()) is not None:
            study.tell(trial, train(trial.config, trial.budget))
        study.best
    """

    def __init__(
        self,
        space: SearchSpace,
        *,
        total_budget: float,
        full_budget: float,
        small_budget: float | None = None,
        method: str = "jobs",
        n_init: int | str | None = None,
        n_confirm: int | None = None,
        seed: int = 0,
        budget_unit: str = "steps",
        kernel: str = "matern",
        acquisition: str = "ucb",
        short_runs: str = "tested",
        proxies: Mapping[str, float] | None = None,
        storage: str | Path | Storage | None = None,
        study_name: str = "cotune",
        warm_start: Study | str | Path | None = None,
    ) -> None:
        refuse_unguarded_start()
        self.settings = StudySettings(
            method=method, total_budget=total_budget, full_budget=full_budget, small_budget=small_budget,
            n_init=n_init, n_confirm=n_confirm, seed=seed, budget_unit=budget_unit, kernel=kernel,
            acquisition=acquisition, short_runs=short_runs, proxies={} if proxies is None else proxies,
        )
        self.space = space
        self.study_name = study_name
        self.storage = storage if isinstance(storage, Storage) else Storage(storage)
        self._study_id = self._create_or_resume()
        self._driving = False
        self.method = make_method(self.settings.method, space, self.settings)
        self.prior = self._prior(warm_start)

    def _prior(self, warm_start: Study | str | Path | None) -> tuple[Trial, ...]:
        """The completed trials of the study to start from, numbered below 0 (see `History.prior`)."""
        if warm_start is None:
            return ()
        other = warm_start if isinstance(warm_start, Study) else Study.load(warm_start)
        if other.space != self.space:
            raise SettingsError(f"warm_start: study {other.study_name!r} has another search space ({other.space!r}); "
                                "a warm start needs the same domains and parameters")
        done = [t for t in other.trials if t.state is TrialState.COMPLETE]
        return tuple(dataclasses.replace(t, number=i - len(done)) for i, t in enumerate(done))

    @classmethod
    def load(cls, storage: str | Path | Storage, study_name: str = "cotune") -> Study:
        """Open a stored study with the space and settings it was created with.

        Raises:
            StorageError: the storage holds no study called ``study_name``.
        """
        store = storage if isinstance(storage, Storage) else Storage(storage)
        found = store.find_study(study_name)
        if found is None:
            names = ", ".join(store.study_names()) or "none"
            raise StorageError(f"no study named {study_name!r} in {store.url!r} (studies there: {names})")
        _, space, settings = found
        return cls(SearchSpace.from_dict(space), storage=store, study_name=study_name,
                   **StudySettings.from_dict(settings).to_dict())

    def _create_or_resume(self) -> int:
        found = self.storage.find_study(self.study_name)
        space, settings = self.space.to_dict(), self.settings.to_dict()
        if found is None:
            return self.storage.create_study(self.study_name, space, settings)
        study_id, stored_space, stored_settings = found
        if stored_space != _jsonable(space):
            raise StudyMismatchError(
                f"study {self.study_name!r} in {self.storage.url!r} was created with another search space "
                f"({stored_space}); use a new storage file or study_name, or the original space"
            )
        # a setting a later cotune added is not in an older study: it takes its default there
        diff = {k: (stored_settings[k], v) for k, v in _jsonable(settings).items()
                if k in stored_settings and stored_settings[k] != v}
        if diff:
            changes = ", ".join(f"{k}: stored {old!r}, given {new!r}" for k, (old, new) in diff.items())
            raise StudyMismatchError(
                f"study {self.study_name!r} in {self.storage.url!r} was created with other settings ({changes}); "
                "use a new storage file or study_name, or the original settings"
            )
        return study_id

    def _take_over(self) -> None:
        """Become the study's driver and queue again the trials a previous driver left running
        (once, before this process asks for its first trial).

        Done on the first `ask`, not on opening, so that inspecting a study another process is
        running (`cotune status`) never touches its trials. Raises `StudyBusyError` while another
        live process drives the study: requeueing its running trials would make both train them.
        """
        if self._driving:
            return
        holder = self.storage.claim_driver(self._study_id, socket.gethostname(), os.getpid(), _process_alive)
        if holder is not None:
            host, pid, since = holder
            started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
            raise StudyBusyError(
                f"study {self.study_name!r} in {self.storage.url!r} is being run by process {pid} on {host} "
                f"(since {started}); a study runs in one process at a time: wait for it to finish, or stop it "
                f"(Ctrl-C) and run again to resume. Use n_workers or a Ray executor to train trials in parallel."
                + ("" if host == socket.gethostname() else
                   f" If it is no longer running, run the study on {host} again: cotune can check there.")
            )
        self._driving = True
        requeued = self.requeue_running()
        if requeued:
            logger.warning("resuming %r: trials %s were running when the last process stopped; queued again",
                           self.study_name, requeued)

    def release(self) -> None:
        """Stop driving the study, so that another process may run it (`optimize` does this when it
        returns); a later `ask` takes it over again."""
        if self._driving:
            self._driving = False
            self.storage.release_driver(self._study_id, socket.gethostname(), os.getpid())

    # ------------------------------------------------------------------ views
    @property
    def trials(self) -> list[Trial]:
        """Every trial, by number."""
        return self.storage.get_trials(self._study_id)

    def history(self) -> History:
        """Read-only view of the trials for methods."""
        return History.of(self.trials, self.settings.total_budget, prior=self.prior)

    @property
    def spent(self) -> float:
        """Budget charged by finished trials."""
        return sum(t.charged for t in self.trials if t.state.finished)

    def _measured(self) -> list[Trial]:
        """This study's completed full runs (never the warm start's)."""
        return History.of(self.trials, self.settings.total_budget).complete(self.settings.full_budget)

    @property
    def best(self) -> Trial | None:
        """The best trial measured at the full budget (never a prediction), or None yet."""
        full = [t for t in self._measured() if t.score is not None]
        return max(full, key=lambda t: t.score) if full else None

    @property
    def baseline(self) -> Trial | None:
        """The default configuration's full run, for comparison with `best`."""
        default = self.space.default_config()
        full = [t for t in self._measured() if t.config == default]
        return full[0] if full else None

    @property
    def attributes(self) -> dict[str, Any]:
        """Facts stored with the study (the predictor's error, the budget split, ...)."""
        return self.storage.get_attrs(self._study_id)

    def set_attribute(self, key: str, value: Any) -> None:
        """Store a JSON-able fact of one's own with the study (shown in `attributes`, kept on resume)."""
        self.storage.set_attr(self._study_id, key, value)

    # ------------------------------------------------------------------ ask / tell
    def enqueue(self, config: Config | Mapping[str, Any], *, budget: float | None = None) -> Trial:
        """Queue a configuration of one's own, trained (at the full budget unless ``budget``) before
        the method's next proposal; it counts against the budget and every method sees its result.

        ``config`` may be a mapping with ``mixture`` and ``params``, either left out in part: the
        baseline's values fill in. Queueing a configuration already queued or run at that budget
        returns that trial (so re-running a script or study file queues nothing twice).

        Raises:
            SpaceError: the configuration is not in the space.
            SettingsError: the run does not fit in the budget left.
        """
        config = self.space.complete(config)
        budget = self.settings.full_budget if budget is None else float(budget)
        history = self.history()
        queued = next((t for t in history.trials if t.config == config and t.budget == budget), None)
        if queued is not None:
            return queued
        if not history.fits(budget):
            raise SettingsError(f"a run of budget {budget:g} does not fit in the {history.remaining:g} of the study's "
                                f"total budget ({self.settings.total_budget:g}) left")
        return self.storage.create_trial(self._study_id, config, budget, Role.USER, TrialState.WAITING)

    def add_trial(self, config: Config | Mapping[str, Any], budget: float, value: float | Result) -> Trial:
        """Record a trial run elsewhere (`cotune import`): its configuration (completed as in `enqueue`),
        budget and result. It is charged the result's ``cost``, so give ``cost=0`` for a run this
        study's budget should not pay for."""
        config = self.space.complete(config)
        trial = self.storage.create_trial(self._study_id, config, float(budget), Role.USER, TrialState.RUNNING)
        return self.tell(trial, value)

    def trials_dataframe(self) -> Any:
        """Every trial as a pandas DataFrame (columns as `cotune export` writes them; needs pandas)."""
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError("Study.trials_dataframe needs pandas: pip install pandas") from err
        from cotune.table import trial_rows

        return pd.DataFrame(trial_rows(self.trials, self.space))

    def ask(self) -> Trial | None:
        """Start the next trial (a queued one first), or return None when the method is done.

        While trials are running, another call proposes a different configuration, so several
        workers can be fed at once.
        """
        trials = self.ask_batch(1)
        return trials[0] if trials else None

    def ask_batch(self, k: int) -> list[Trial]:
        """Start up to ``k`` trials for workers free at once (queued ones first); fewer, or none,
        when the method is done. GP methods propose them from one fit (`Method.ask_batch`)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise SettingsError(f"ask_batch needs k >= 1 trials, got {k!r}")
        self._take_over()
        started: list[Trial] = []
        for trial in self.trials:
            if trial.state is TrialState.WAITING and len(started) < k:
                self.storage.update_trial(self._study_id, trial.number, state=TrialState.RUNNING,
                                          started_at=time.time())
                started.append(dataclasses.replace(trial, state=TrialState.RUNNING))
        while len(started) < k:
            history = self.history()
            with one_thread():
                requests = self.method.ask_batch(history, k - len(started))
            if not requests:
                break
            for request in requests[: k - len(started)]:
                started.append(self._start(self.history(), request))
        return started

    def _start(self, history: History, request: TrialRequest) -> Trial:
        """Create the running trial ``request`` asks for, after checking the method asked for something valid."""
        if not history.fits(self.settings.charge(request.budget, request.fidelity)):
            raise TrialStateError(
                f"method {self.settings.method!r} asked for budget {request.budget} with only "
                f"{history.remaining} left; this is a bug in the method"
            )
        config = self.space.validate(request.config)
        if request.fidelity is not None and request.fidelity not in self.settings.proxies:
            raise TrialStateError(f"method {self.settings.method!r} asked for proxy {request.fidelity!r}, which the "
                                  "study does not have; this is a bug in the method")
        pending = [t for t in (*history.pending, *history.proxy_trials) if not t.state.finished]
        if any(t.config == config and t.budget == request.budget and t.fidelity == request.fidelity for t in pending):
            raise TrialStateError(
                f"method {self.settings.method!r} proposed a configuration already running at budget "
                f"{request.budget}; this is a bug in the method"
            )
        cost = None if request.fidelity is None else self.settings.charge(request.budget, request.fidelity)
        return self.storage.create_trial(self._study_id, config, request.budget, request.role, TrialState.RUNNING,
                                         fidelity=request.fidelity, cost=cost)

    def tell(self, trial: Trial | int, value: float | Result | BaseException) -> Trial:
        """Record the outcome of a running trial: a score, a `Result`, or the exception it raised.

        NaN or infinite scores and exceptions make the trial FAIL with the error text stored;
        a failed trial is charged its budget unless a `Result` gives its cost. A proxy's run is
        charged its budget times the proxy's cost factor (`StudySettings.proxies`).

        Raises:
            TrialStateError: the trial is not running.
        """
        number = trial if isinstance(trial, int) else trial.number
        current = next((t for t in self.trials if t.number == number), None)
        if current is None or current.state is not TrialState.RUNNING:
            state = "missing" if current is None else current.state.value
            raise TrialStateError(f"trial {number} is {state}; only running trials can be told a result")
        fields: dict[str, Any] = {"finished_at": time.time()}
        if not isinstance(value, (BaseException, Result)):
            try:
                value = Result(score=_as_score(value))
            except CotuneError as err:
                value = err
        charge = self.settings.charge(current.budget, current.fidelity)
        if isinstance(value, BaseException):
            text = "".join(traceback.format_exception(type(value), value, value.__traceback__))
            fields.update(state=TrialState.FAIL, cost=charge, error=text.strip())
        else:
            result = value
            score = float(result.score)
            curve, dropped = finite_curve(result.curve or {})
            if dropped:
                logger.warning("trial %d: dropped curve points at budgets %s (a non-finite score, or a budget "
                               "that is not a finite positive number); kept %d point(s)", number,
                               ", ".join(f"{b:g}" for b in dropped), len(curve))
            fields.update(cost=charge if result.cost is None else float(result.cost),
                          curve=curve, info={**current.info, **(result.info or {})})
            if not math.isfinite(score):
                fields.update(state=TrialState.FAIL, score=None,
                              error=f"the objective returned a non-finite score ({score!r})")
            else:
                fields.update(state=TrialState.COMPLETE, score=score)
        if fields["state"] is TrialState.COMPLETE:
            done = dataclasses.replace(current, state=TrialState.COMPLETE, score=fields["score"],
                                       curve=fields["curve"], cost=fields["cost"])
            with one_thread():
                fields.update(self.method.annotate(self.history(), done))
        self.storage.update_trial(self._study_id, number, **fields)
        for key, value_ in self.method.attributes().items():
            self.storage.set_attr(self._study_id, key, value_)
        finished = next(t for t in self.trials if t.number == number)
        _log_trial(finished)
        return finished

    def record_failed_attempt(self, trial: Trial | int, error: BaseException) -> int:
        """Store a failed attempt of a running trial (kept in its ``info``); return how many it has had."""
        number = trial if isinstance(trial, int) else trial.number
        current = next((t for t in self.trials if t.number == number), None)
        if current is None or current.state is not TrialState.RUNNING:
            raise TrialStateError(f"trial {number} is not running; only running trials have attempts")
        text = "".join(traceback.format_exception_only(type(error), error)).strip()
        attempts = [*current.info.get("failed_attempts", []), {"at": time.time(), "error": text[-2000:]}]
        self.storage.update_trial(self._study_id, number, info={**current.info, "failed_attempts": attempts})
        return len(attempts)

    def requeue_running(self) -> list[int]:
        """Put every running trial back in the queue (this study's driver stops); return their numbers.

        A study has one driver: trials it asked for, whether training, just asked or being told,
        are all RUNNING, so this catches every one whatever instant a stop lands on.
        """
        return self.storage.requeue_running(self._study_id)

    def optimize(self, objective: Any, *, n_workers: int = 1, executor: str | Executor = "inline", retries: int = 0,
                 trial_timeout_s: float | None = None, progress: bool = False) -> OptimizeResult:
        """Run ``objective(config, budget)`` on every trial the method asks for until the budget is
        spent, ``n_workers`` at a time on ``executor``, each failed attempt retried up to ``retries``
        times (see `cotune.optimize`)."""
        from cotune.runner import run_study

        run_study(self, objective, n_workers=n_workers, executor=executor, retries=retries,
                  trial_timeout_s=trial_timeout_s, progress=progress)
        return OptimizeResult.from_study(self)


@dataclasses.dataclass(frozen=True)
class OptimizeResult:
    """The answer of a study: the best full-budget trial, every trial and the budget spent."""

    best: Trial | None
    baseline: Trial | None
    trials: list[Trial]
    spent: float
    study: Study

    @classmethod
    def from_study(cls, study: Study) -> OptimizeResult:
        """Snapshot a study's answer."""
        return cls(best=study.best, baseline=study.baseline, trials=study.trials, spent=study.spent, study=study)


def _as_score(value: Any) -> float:
    try:
        if isinstance(value, (bool, str)):
            raise TypeError
        return float(value)
    except (TypeError, ValueError):
        raise CotuneError(
            f"the objective must return a number or cotune.Result, got {type(value).__name__}: {value!r}"
        ) from None


def _jsonable(data: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(data, sort_keys=True))


def _process_alive(host: str, pid: int) -> bool:
    """Whether process ``pid`` on ``host`` may still be running: checked on this host, assumed
    on another (the message then says which host to resume the study on)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    return True


def _log_trial(trial: Trial) -> None:
    if trial.state is TrialState.FAIL:
        logger.warning("trial %d failed (%s): %s", trial.number, trial.config,
                       (trial.error or "").splitlines()[-1] if trial.error else "")
    else:
        kind = "short" if trial.role is Role.SHORT else "full"
        logger.info("trial %d (%s, budget %g) scored %.5g", trial.number, kind, trial.budget, trial.score)
