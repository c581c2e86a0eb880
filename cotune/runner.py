"""Runs a study's trials on an executor, retrying failed attempts, showing progress and recording every outcome."""

from __future__ import annotations

import concurrent.futures as cf
import functools
import inspect
import logging
from typing import TYPE_CHECKING, Any

from cotune.exceptions import SettingsError, StorageError, UnguardedMainError
from cotune.executors import Executor, make_executor
from cotune.executors.base import Objective
from cotune.trial import Trial

if TYPE_CHECKING:
    from cotune.study import Study

logger = logging.getLogger(__name__)


def run_study(
    study: Study,
    objective: Objective,
    *,
    n_workers: int = 1,
    executor: str | Executor = "inline",
    retries: int = 0,
    trial_timeout_s: float | None = None,
    progress: bool = False,
) -> None:
    """Ask, run and tell trials until the method is done, keeping every worker of the executor busy.

    A failed attempt (the objective raised, its process died, it ran past ``trial_timeout_s``)
    is run again up to ``retries`` times, then the trial fails with the last error. On
    KeyboardInterrupt the running trials are stopped where the executor can and queued again
    (a re-run resumes them), and the interrupt propagates; a storage error, or a script whose
    trial subprocesses would start its study again (`cotune.UnguardedMainError`), stops the study
    the same way, every finished trial already saved.
    """
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise SettingsError(f"retries must be an int >= 0, got {retries!r}")
    if study.settings.proxies:
        check_takes_proxy(objective)
    runner = make_executor(executor, n_workers, trial_timeout_s)
    bar = _Progress(study) if progress else None
    running: dict[cf.Future, Trial] = {}
    cancel = True
    try:
        while True:
            if len(running) < runner.n_workers:
                for trial in study.ask_batch(runner.n_workers - len(running)):
                    running[runner.submit(for_trial(objective, trial), trial.config, trial.budget)] = trial
            if not running:
                break
            done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
            for future in done:
                trial = running.pop(future)
                value = _outcome(future)
                if isinstance(value, UnguardedMainError):
                    raise value  # no trial can run until the script is fixed
                if isinstance(value, Exception) and study.record_failed_attempt(trial, value) <= retries:
                    logger.warning("trial %d failed (%s); running it again", trial.number, _first_line(value))
                    running[runner.submit(for_trial(objective, trial), trial.config, trial.budget)] = trial
                    continue
                study.tell(trial, value)
                if bar is not None:
                    bar.update()
        cancel = False
    except KeyboardInterrupt as err:
        runner.shutdown(cancel=True)  # stop the trials first, so none finishes after being queued again
        _stop(study, err)
        raise
    except UnguardedMainError as err:
        runner.shutdown(cancel=True)
        _stop(study, err)
        raise
    except StorageError as err:
        runner.shutdown(cancel=True)
        _stop(study, err)
        raise StorageError(f"{err}; the study stopped with every finished trial saved: free disk space or make "
                           "the storage writable, then run the study again to resume") from err
    finally:
        runner.shutdown(cancel=cancel)
        _release(study)
        if bar is not None:
            bar.close()


def for_trial(objective: Objective, trial: Trial) -> Objective:
    """The objective as ``trial`` calls it: ``objective(config, budget)`` for the target model,
    ``objective(config, budget, proxy=name)`` for a proxy's run."""
    return objective if trial.fidelity is None else functools.partial(objective, proxy=trial.fidelity)


def check_takes_proxy(objective: Objective) -> None:
    """Raise `SettingsError` unless ``objective`` accepts the ``proxy`` keyword a study with proxies passes."""
    try:
        inspect.signature(objective).bind(None, 1.0, proxy="proxy")
    except ValueError:
        return  # no signature to check (a builtin): the first proxy run will tell
    except TypeError:
        raise SettingsError(
            "the study has proxies, so its objective must accept a `proxy` keyword: "
            "def objective(config, budget, proxy=None), where proxy names the proxy model to train (None: the "
            "target)") from None


def _outcome(future: cf.Future) -> Any:
    """The objective's value, or the exception of a failed attempt (a failed trial is data)."""
    try:
        return future.result()
    except Exception as err:  # noqa: BLE001 - every objective error is recorded on the trial
        return err


def _stop(study: Study, err: BaseException) -> None:
    """Queue the running trials again so that a re-run resumes them (if the storage still takes writes)."""
    try:
        stopped = len(study.requeue_running())
    except StorageError:
        logger.warning("could not queue the running trials again; a re-run still resumes them")
        return
    reason = ("interrupted" if isinstance(err, KeyboardInterrupt) else f"storage failed ({err})"
              if isinstance(err, StorageError) else f"stopped ({_first_line(err)})")
    logger.warning("%s: %d running trial(s) stopped; every finished trial is saved, re-run to resume", reason, stopped)


def _release(study: Study) -> None:
    """Let another process run the study; a storage that no longer takes writes keeps the claim,
    which a re-run on this host takes over once this process has exited."""
    try:
        study.release()
    except StorageError:
        logger.warning("could not release the study; a re-run on this host resumes it")


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


class _Progress:
    """A rich progress bar over the total budget with the best full-budget score so far."""

    def __init__(self, study: Study) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.study = study
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"), TimeElapsedColumn(),
        )
        self.task = self.progress.add_task(
            "budget", total=study.settings.total_budget, completed=study.spent, status=self._status()
        )
        self.progress.start()

    def _status(self) -> str:
        trials = self.study.trials
        best = self.study.best
        best_text = "-" if best is None else f"{best.score:.4g}"
        return f"trials {len(trials)}  best {best_text}"

    def update(self) -> None:
        self.progress.update(self.task, completed=self.study.spent, status=self._status())

    def close(self) -> None:
        self.progress.stop()
