"""The interface every optimisation method implements, and what it sees of a study."""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

from cotune.settings import StudySettings
from cotune.space.search_space import Config, SearchSpace
from cotune.trial import Role, Trial, TrialState


@dataclasses.dataclass(frozen=True)
class TrialRequest:
    """What a method wants run next: a configuration, a budget, why, and on which model (a proxy's
    name, or None for the target)."""

    config: Config
    budget: float
    role: Role
    fidelity: str | None = None


@dataclasses.dataclass(frozen=True)
class History:
    """Read-only view of a study's trials handed to a method.

    ``trials`` are the target model's runs; ``proxy_trials`` the runs of the study's proxy models
    (`StudySettings.proxies`), which count against the budget but which only the methods that use
    proxies read. ``prior`` holds the completed trials of another study this one starts from (a
    warm start), numbered below 0: `complete` includes them, so methods learn from them, but they
    cost nothing, are never pending, failed or used, and the answer is measured in this study.
    """

    trials: tuple[Trial, ...]
    total_budget: float
    prior: tuple[Trial, ...] = ()
    proxy_trials: tuple[Trial, ...] = ()

    @classmethod
    def of(cls, trials: tuple[Trial, ...] | list[Trial], total_budget: float, prior: tuple[Trial, ...] = ()) -> History:
        """The history of a study's ``trials``, the target's apart from the proxies'."""
        return cls(tuple(t for t in trials if t.fidelity is None), total_budget, prior=prior,
                   proxy_trials=tuple(t for t in trials if t.fidelity is not None))

    @property
    def committed(self) -> float:
        """Budget charged by finished trials plus the budget reserved by unfinished ones, proxies' included."""
        return sum(t.charged for t in (*self.trials, *self.proxy_trials))

    @property
    def remaining(self) -> float:
        """Budget not yet committed."""
        return self.total_budget - self.committed

    def fits(self, budget: float) -> bool:
        """Whether a run of ``budget`` can start without exceeding the total budget."""
        return budget <= self._room

    def affordable(self, budget: float) -> int:
        """How many runs of ``budget`` can still start, one after another (`fits` for each)."""
        return int(self._room // budget)

    @property
    def _room(self) -> float:
        """The remaining budget with the tolerance sums of float budgets need."""
        return self.remaining * (1 + 1e-9) + 1e-9

    @property
    def pending(self) -> list[Trial]:
        """Trials of the target queued or running."""
        return [t for t in self.trials if not t.state.finished]

    def proxy_complete(self, proxy: str | None = None) -> list[Trial]:
        """Completed runs of the proxy models (of ``proxy`` only, when given)."""
        return [t for t in self.proxy_trials
                if t.state is TrialState.COMPLETE and (proxy is None or t.fidelity == proxy)]

    def complete(self, budget: float | None = None) -> list[Trial]:
        """Completed trials (the warm start's first), optionally only those run at ``budget``."""
        return [
            t for t in (*self.prior, *self.trials)
            if t.state is TrialState.COMPLETE and (budget is None or math.isclose(t.budget, budget, rel_tol=1e-9))
        ]

    def failed_keys(self) -> set[str]:
        """Keys of configurations that failed at any budget (never proposed again)."""
        return {t.config.key() for t in self.trials if t.state is TrialState.FAIL}

    def used_keys(self, budget: float, proxy: str | None = None) -> set[str]:
        """Keys of configurations that must not be proposed at ``budget`` (of the target, or of
        ``proxy``) again: every failed one, and every one already run or pending there."""
        runs = self.trials if proxy is None else [t for t in self.proxy_trials if t.fidelity == proxy]
        return self.failed_keys() | {t.config.key() for t in runs if math.isclose(t.budget, budget, rel_tol=1e-9)}


class Method(abc.ABC):
    """An optimisation method: decides the next trial from the study's history alone.

    A method must be able to rebuild every decision from ``History`` (a resumed study gives it
    only the stored trials); anything it keeps in memory is a warm start, never state.
    Subclasses set ``name`` and implement `ask`; the hooks do nothing by default.
    """

    name: ClassVar[str]

    def __init__(self, space: SearchSpace, settings: StudySettings) -> None:
        self.space = space
        self.settings = settings

    @abc.abstractmethod
    def ask(self, history: History) -> TrialRequest | None:
        """The next trial to run, or None when nothing more fits in the budget or the method is done.

        Pending trials are part of ``history``; a method asked while trials are pending must
        propose something else (batch proposals for parallel workers).
        """

    def ask_batch(self, history: History, k: int) -> list[TrialRequest]:
        """Up to ``k`` distinct trials to start together (workers freed at once), empty when done.

        By default one `ask`; a GP method proposes several from one fit (each conditioned on the
        ones before it), so feeding k workers costs one fit. The study asks again for the rest.
        """
        request = self.ask(history)
        return [] if request is None else [request]

    def annotate(self, history: History, trial: Trial) -> dict[str, Any]:
        """Extra fields (``predicted``, ``predicted_var``) stored with a trial as it completes."""
        return {}

    def attributes(self) -> dict[str, Any]:
        """Facts worth storing with the study (e.g. the predictor's error, the chosen split)."""
        return {}


def step_seed(seed: int, step: int) -> int:
    """A seed for one proposal, derived from the study's seed and the number of trials so far."""
    return int(np.random.default_rng([seed, step]).integers(0, 2**31 - 1))
