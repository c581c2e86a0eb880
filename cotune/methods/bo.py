"""Plain GP-BO: the same surrogate and acquisition as JoBS, with full runs only and no predictor."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from cotune.allocation import design_size
from cotune.methods.base import History, Method, TrialRequest, step_seed
from cotune.settings import StudySettings
from cotune.space.blocks import Block, block_space, join
from cotune.space.design import initial_design
from cotune.space.search_space import Config, SearchSpace
from cotune.surrogate.acquisition import AcquisitionOptions
from cotune.surrogate.proposer import Proposer
from cotune.trial import Role


class BOMethod(Method):
    """Bayesian optimisation over the joint space where every trial is a full run.

    The baseline and a Sobol design first, then IGP-UCB (or log-EI) proposals from an ARD
    Matérn-5/2 GP (or a deep kernel) fitted to the measured full-budget scores. Subclasses that
    set ``block`` search only the mixture or only the model parameters, the other block staying
    at the baseline's values.
    """

    name = "bo"
    #: The block searched; None for the joint space.
    block: ClassVar[Block | None] = None

    def __init__(self, space: SearchSpace, settings: StudySettings) -> None:
        super().__init__(space, settings)
        self.searched = space if self.block is None else block_space(space, self.block)
        self.proposer = Proposer(space, kernel=settings.kernel, options=AcquisitionOptions(kind=settings.acquisition))

    def design(self) -> list[Config]:
        """The baseline then Sobol points of the searched block (the rest at the baseline's values)."""
        s = self.settings
        n_init = s.n_init_count or design_size(self.searched.dim, total=s.total_budget, full=s.full_budget)
        design = initial_design(self.searched, n_init, s.seed)
        if self.block is None:
            return design
        default = self.space.default_config()
        return [join(config, default, self.block) for config in design]

    def ask(self, history: History) -> TrialRequest | None:
        requests = self.ask_batch(history, 1)
        return requests[0] if requests else None

    def ask_batch(self, history: History, k: int) -> list[TrialRequest]:
        """The design's next points, else up to ``k`` proposals from one fit (as many as fit the budget)."""
        budget = self.settings.full_budget
        k = min(k, history.affordable(budget))
        if k < 1:
            return []
        used = history.used_keys(budget)
        design = [TrialRequest(c, budget, Role.FULL) for c in self.design() if c.key() not in used][:k]
        if design:
            return design
        done = [t for t in history.complete(budget) if t.score is not None]
        if not done:
            return []
        block, base = self.search_block(history)
        X = self.space.encode_many([t.config for t in done])
        y = np.array([t.score for t in done])
        pending = self.space.encode_many([t.config for t in history.pending])
        configs = self.proposer.propose_batch(
            X, y, np.zeros(len(y)), X_pending=pending, exclude=used,
            seeds=[step_seed(self.settings.seed, len(history.trials) + i) for i in range(k)], block=block, base=base,
        )
        return [TrialRequest(config, budget, Role.FULL) for config in configs]

    def search_block(self, history: History) -> tuple[Block | None, Config | None]:
        """The block the next proposal searches and the configuration holding the other block."""
        if self.block is None:
            return None, None
        return self.block, self.space.default_config()
