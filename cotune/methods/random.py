"""Random search: the baseline, then independent uniform configurations, each trained in full."""

from __future__ import annotations

import numpy as np

from cotune.methods.base import History, Method, TrialRequest
from cotune.space.design import random_configs
from cotune.trial import Role


class RandomMethod(Method):
    """Full runs of uniform random configurations (flat Dirichlet mixtures), after the baseline."""

    name = "random"

    def ask(self, history: History) -> TrialRequest | None:
        budget = self.settings.full_budget
        if not history.fits(budget):
            return None
        used = history.used_keys(budget)
        default = self.space.default_config()
        if default.key() not in used:
            return TrialRequest(default, budget, Role.FULL)
        rng = np.random.default_rng([self.settings.seed, len(history.trials)])
        for config in random_configs(self.space, 64, rng):
            if config.key() not in used:
                return TrialRequest(config, budget, Role.FULL)
        return None
