"""Plain GP-BO: the same surrogate and acquisition as JoBS, with full runs only and no predictor."""

from __future__ import annotations

import numpy as np

from cotune.methods.base import History, Method, TrialRequest, step_seed
from cotune.settings import StudySettings
from cotune.space.design import initial_design
from cotune.space.search_space import SearchSpace
from cotune.surrogate.acquisition import AcquisitionOptions
from cotune.surrogate.proposer import Proposer
from cotune.trial import Role


def default_n_init(space: SearchSpace, settings: StudySettings) -> int:
    """Initial design size for full-run BO: a third of the affordable full runs, at most ``d + 1``."""
    affordable = int(settings.total_budget // settings.full_budget)
    return max(1, min(space.dim + 1, max(4, affordable // 3), affordable))


class BOMethod(Method):
    """Bayesian optimisation over the joint space where every trial is a full run.

    The baseline and a Sobol design first, then IGP-UCB (or log-EI) proposals from an ARD
    Matérn-5/2 GP (or a deep kernel) fitted to the measured full-budget scores.
    """

    name = "bo"

    def __init__(self, space: SearchSpace, settings: StudySettings) -> None:
        super().__init__(space, settings)
        self.proposer = Proposer(space, kernel=settings.kernel, options=AcquisitionOptions(kind=settings.acquisition))

    def ask(self, history: History) -> TrialRequest | None:
        budget = self.settings.full_budget
        if not history.fits(budget):
            return None
        n_init = self.settings.n_init if self.settings.n_init != "auto" else default_n_init(self.space, self.settings)
        used = history.used_keys(budget)
        for config in initial_design(self.space, n_init, self.settings.seed):
            if config.key() not in used:
                return TrialRequest(config, budget, Role.FULL)
        done = [t for t in history.complete(budget) if t.score is not None]
        if not done:
            return None
        X = self.space.encode_many([t.config for t in done])
        y = np.array([t.score for t in done])
        pending = self.space.encode_many([t.config for t in history.pending])
        config = self.proposer.propose(
            X, y, np.zeros(len(y)), X_pending=pending, exclude=used,
            seed=step_seed(self.settings.seed, len(history.trials)),
        )
        return TrialRequest(config, budget, Role.FULL)
