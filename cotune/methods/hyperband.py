"""Hyperband: successive halving over budgets from the small budget to the full one, random configurations."""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np

from cotune.methods.base import History, Method, TrialRequest
from cotune.space.design import random_configs
from cotune.space.search_space import Config
from cotune.trial import Role, Trial, TrialState

#: Only the best ``1/ETA`` of a rung go on to a budget ``ETA`` times larger (Li et al., 2017).
ETA = 3
#: Rounds of random draws for a bracket's configurations (a small discrete space may run out).
MAX_DRAWS = 10


@dataclasses.dataclass(frozen=True)
class Bracket:
    """One successive-halving run: ``n`` configurations at ``budgets[0]``, a third kept at each rung."""

    iteration: int
    s: int
    n: int
    budgets: tuple[float, ...]

    def survivors(self, rung: int) -> int:
        """How many configurations run at ``budgets[rung]``."""
        return max(1, math.floor(self.n * ETA ** (-rung)))


def brackets(full_budget: float, small_budget: float) -> list[Bracket]:
    """The brackets of one Hyperband iteration, most aggressive first; rungs end at the full budget."""
    s_max = math.floor(math.log(full_budget / small_budget) / math.log(ETA) + 1e-9)
    out = []
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * ETA**s)
        out.append(Bracket(0, s, n, tuple(full_budget * ETA ** (i - s) for i in range(s + 1))))
    return out


class HyperbandMethod(Method):
    """Hyperband over the joint space with the study's budget as the resource.

    The baseline is trained at the full budget first; then Hyperband iterations repeat the
    brackets (9 configurations at ``B/9``, the best 3 at ``B/3``, the best at ``B``; and so on
    for ``B/b = 9``) until the next run no longer fits. Each rung trains from scratch at its
    budget; rungs above the small budget are short runs, the last rung is a full run.
    Configurations are uniform random (flat Dirichlet mixtures), seeded per bracket. While a
    rung waits for pending trials, the next bracket starts, so parallel workers stay busy.
    """

    name = "hyperband"

    def ask(self, history: History) -> TrialRequest | None:
        s = self.settings
        default = self.space.default_config()
        runs = {(t.config.key(), _budget_key(t.budget)): t for t in history.trials}
        if (default.key(), _budget_key(s.full_budget)) not in runs:
            return TrialRequest(default, s.full_budget, Role.FULL) if history.fits(s.full_budget) else None
        failed = history.failed_keys()
        plan = brackets(s.full_budget, s.small_budget)
        for iteration in itertools.count():
            for template in plan:
                bracket = dataclasses.replace(template, iteration=iteration)
                request = self._next_in(bracket, runs, failed, default, history)
                if request is not None:
                    return request if history.fits(request.budget) else None
        return None  # pragma: no cover - itertools.count never ends

    def _next_in(
        self, bracket: Bracket, runs: dict[tuple[str, float], Trial], failed: set[str], default: Config,
        history: History,
    ) -> TrialRequest | None:
        """The bracket's next missing run; None when the bracket is finished or waits for pending trials."""
        rung_configs = self._sample(bracket, runs, failed, default)
        for rung, budget in enumerate(bracket.budgets):
            trials = [runs.get((c.key(), _budget_key(budget))) for c in rung_configs]
            for config, trial in zip(rung_configs, trials):
                if trial is None:
                    role = Role.FULL if budget == self.settings.full_budget else Role.SHORT
                    return TrialRequest(config, budget, role)
            if any(not t.state.finished for t in trials):
                return None
            ranked = sorted(
                (t for t in trials if t.state is TrialState.COMPLETE and t.score is not None),
                key=lambda t: -t.score,
            )
            rung_configs = [t.config for t in ranked[: bracket.survivors(rung + 1)]]
        return None

    def _sample(self, bracket: Bracket, runs: dict[tuple[str, float], Trial], failed: set[str],
                default: Config) -> list[Config]:
        """The bracket's first-rung configurations, drawn from the study's seed and the bracket.

        A configuration that failed elsewhere is skipped (never proposed again) unless this
        bracket already ran it; the baseline, trained first, is skipped too.
        """
        rng = np.random.default_rng([self.settings.seed, bracket.iteration, bracket.s])
        first = _budget_key(bracket.budgets[0])
        out: list[Config] = []
        for _ in range(MAX_DRAWS):
            for config in random_configs(self.space, bracket.n, rng):
                key = config.key()
                taken = (key, first) in runs
                if key == default.key() or (key in failed and not taken) or config in out:
                    continue
                out.append(config)
                if len(out) == bracket.n:
                    return out
        return out


def _budget_key(budget: float) -> float:
    """Budgets as dictionary keys, robust to the last bits of float arithmetic."""
    return round(budget, 9)
