"""Runs a study's trials with a pool of workers, showing progress and recording every outcome."""

from __future__ import annotations

import concurrent.futures as cf
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cotune.exceptions import SettingsError
from cotune.trial import Result, Trial

if TYPE_CHECKING:
    from cotune.study import Study

logger = logging.getLogger(__name__)

Objective = Callable[[Any, float], "float | Result"]


def run_study(study: Study, objective: Objective, *, n_workers: int = 1, progress: bool = False) -> None:
    """Ask, run and tell trials until the method is done, keeping up to ``n_workers`` busy.

    Objective errors become failed trials. On KeyboardInterrupt the running trials are queued
    again (a re-run resumes them) and the interrupt propagates.
    """
    if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
        raise SettingsError(f"n_workers must be a positive int, got {n_workers!r}")
    bar = _Progress(study) if progress else None
    running: dict[cf.Future, Trial] = {}
    with cf.ThreadPoolExecutor(max_workers=n_workers, thread_name_prefix="cotune-trial") as pool:
        try:
            while True:
                while len(running) < n_workers:
                    trial = study.ask()
                    if trial is None:
                        break
                    running[pool.submit(_call, objective, trial)] = trial
                if not running:
                    break
                done, _ = cf.wait(running, return_when=cf.FIRST_COMPLETED)
                for future in done:
                    study.tell(running.pop(future), future.result())
                    if bar is not None:
                        bar.update()
        except KeyboardInterrupt:
            for trial in running.values():
                study.requeue(trial)
            logger.warning("interrupted: %d running trial(s) queued again; re-run to resume", len(running))
            raise
        finally:
            if bar is not None:
                bar.close()


def _call(objective: Objective, trial: Trial) -> float | Result | BaseException:
    """Run the objective, returning its exception instead of raising (a failed trial is data)."""
    try:
        return objective(trial.config, trial.budget)
    except Exception as err:  # noqa: BLE001 - every objective error is recorded on the trial
        return err


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
