"""Multi-fidelity BO over configuration x budget with cost-aware expected improvement (MFMS).

After "Data Mixture Optimization: A Multi-fidelity Multi-scale Bayesian Framework": one GP
models the score over the joint encoding plus the budget (and, when the study has proxy
models, their scale), and the next run maximises ``EI / cost^alpha`` over configuration and
fidelity, with ``alpha`` decaying as the budget is spent, so the search starts cheap and ends at
the target's full budget.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from cotune.allocation import DEFAULT_MFMS_CONFIRM
from cotune.methods.base import History, Method, TrialRequest, step_seed
from cotune.settings import StudySettings
from cotune.space.design import initial_design, random_encoded
from cotune.space.search_space import Config, SearchSpace
from cotune.surrogate.acquisition import (
    AcquisitionOptions,
    CachedLogEI,
    CachedPosterior,
    fix_features,
    optimize_acquisition,
    with_pending,
)
from cotune.surrogate.gp import DTYPE, FittedGP, GPFitter
from cotune.trial import Role

#: Budgets the search chooses from: geometric steps from the small budget to the full one.
FIDELITIES = 3
#: Most (configuration, budget) points the GP conditions on: every run's own score first, then the
#: newest runs' curve points; past it, `thin` keeps a representative subset. A proposal's cost grows
#: with the square of the points (the cube for a fit), and curve points soon outnumber the runs.
MAX_POINTS = 500


class MFMSMethod(Method):
    """Multi-fidelity GP-BO with cost-normalised log-EI.

    1. The baseline at the full budget, then a Sobol design of ``d + 1`` configurations at the
       small budget (``n_init`` when given); with proxies, the design's configurations also at
       every proxy's full budget, so the GP sees how each scale relates to the target.
    2. A GP over ``(encoding, z)`` with ``z = log(budget / b) / log(B / b)`` is fitted to every
       measured score, the learning-curve points of each run included; with proxies the input
       gains the scale ``s = 1 + log(cost factor) / log(1 / smallest cost factor)`` (1 for the
       target, 0 for the cheapest proxy), whose lengthscale learns how far the scales agree.
    3. For every fidelity (a budget of the ladder, on the target or a proxy) costing ``c`` in the
       target's units, log-EI at that fidelity (against the best posterior mean there) minus
       ``alpha * log(c / B)``; ``alpha`` falls linearly from 1 to 0 over the budget. Random
       candidates pick the fidelity, then BoTorch's mixed optimiser refines the configuration.
    4. The last ``n_confirm`` full budgets (3 by default) train the configurations with the best
       posterior mean at the full budget that were never trained in full; the answer is the best
       measured one.
    """

    name = "mfms"

    def __init__(self, space: SearchSpace, settings: StudySettings) -> None:
        super().__init__(space, settings)
        b, B = settings.small_budget, settings.full_budget
        self.fidelities = [b * (B / b) ** (k / (FIDELITIES - 1)) for k in range(FIDELITIES)]
        self.proxies = dict(settings.proxies)
        self._log_cheapest = -math.log(min(self.proxies.values())) if self.proxies else 1.0
        self.options = AcquisitionOptions(kind="logei")
        self._fitter = GPFitter()
        self._attrs: dict[str, Any] = {}
        self._runs: dict[int, tuple[np.ndarray, list[tuple[np.ndarray, float]]]] = {}

    def z(self, budget: float) -> float:
        """A budget on the GP's fidelity axis: 0 at the small budget, 1 at the full one."""
        s = self.settings
        return math.log(budget / s.small_budget) / math.log(s.full_budget / s.small_budget)

    def scale(self, proxy: str | None) -> float:
        """A model on the GP's scale axis: 1 for the target, 0 for the cheapest proxy."""
        return 1.0 if proxy is None else 1.0 + math.log(self.proxies[proxy]) / self._log_cheapest

    def _row(self, encoded: np.ndarray, budget: float, proxy: str | None) -> np.ndarray:
        """The GP input of a run: the encoding, ``z`` and, when the study has proxies, the scale."""
        extra = [self.z(budget), self.scale(proxy)] if self.proxies else [self.z(budget)]
        return np.append(encoded, extra)

    def ask(self, history: History) -> TrialRequest | None:
        s = self.settings
        default = self.space.default_config()
        if not any(t.config == default and t.budget == s.full_budget for t in history.trials):
            return TrialRequest(default, s.full_budget, Role.FULL) if history.fits(s.full_budget) else None
        confirms = [t for t in history.trials if t.role is Role.CONFIRM]
        n_confirm = DEFAULT_MFMS_CONFIRM if s.n_confirm is None else s.n_confirm
        reserve = max(0, n_confirm - len(confirms)) * s.full_budget
        if history.remaining - reserve >= s.small_budget:
            n_init = s.n_init_count or self.space.dim + 1
            design = initial_design(self.space, n_init, s.seed)
            for budget, proxy in [(s.small_budget, None), *((s.full_budget, p) for p in self.proxies)]:
                used = history.used_keys(budget, proxy)
                for config in design:
                    if config.key() not in used and history.remaining - reserve >= self.settings.charge(budget, proxy):
                        return TrialRequest(config, budget, Role.SHORT, fidelity=proxy)
            return self._ask_search(history, reserve)
        if len(confirms) >= n_confirm or not history.fits(s.full_budget):
            return None
        return self._ask_confirmation(history)

    def _observations(self, history: History) -> tuple[np.ndarray, np.ndarray]:
        """``(encoding, z)`` rows and scores of the completed runs and their curve points, at most
        `MAX_POINTS` of them: every run's own score, then curve points from the newest run back."""
        s = self.settings
        finals, curves, full = [], [], []
        runs = sorted([*history.complete(), *history.proxy_complete()], key=lambda t: t.number)
        for trial in runs:
            if trial.score is None:
                continue
            if trial.number not in self._runs:  # a completed run does not change: encoded once
                encoded = self.space.encode(trial.config)
                self._runs[trial.number] = (self._row(encoded, trial.budget, trial.fidelity), [
                    (self._row(encoded, b, trial.fidelity), v) for b, v in (trial.curve or {}).items()
                    if s.small_budget <= b < trial.budget])
            row, curve = self._runs[trial.number]
            finals.append((row, trial.score))
            full.append(trial.fidelity is None and trial.budget == s.full_budget)
            curves.append(curve)
        points = thin(finals, MAX_POINTS, keep=full)
        for curve in reversed(curves):
            if len(points) + len(curve) > MAX_POINTS:
                break
            points += curve
        return np.array([row for row, _ in points]), np.array([score for _, score in points])

    def _fit(self, history: History) -> tuple[FittedGP, np.ndarray, np.ndarray]:
        X, y = self._observations(history)
        return self._fitter.fit(X, y, np.zeros(len(y))), X, y

    def _ask_search(self, history: History, reserve: float) -> TrialRequest | None:
        s = self.settings
        gp, X, y = self._fit(history)
        pending = np.array([self._row(self.space.encode(t.config), t.budget, t.fidelity)
                            for t in (*history.pending, *history.proxy_trials) if not t.state.finished])
        gp = with_pending(gp, X, y, np.zeros(len(y)), pending.reshape(-1, X.shape[1]))
        alpha = max(0.0, 1.0 - (history.committed / s.total_budget))
        seed = step_seed(s.seed, len(history.trials))
        candidates = torch.as_tensor(
            random_encoded(self.space, self.options.raw_samples, np.random.default_rng(seed)), dtype=DTYPE
        ).unsqueeze(-2)
        fidelities = [(budget, proxy) for proxy in (None, *self.proxies) for budget in self.fidelities
                      if self.settings.charge(budget, proxy) <= history.remaining - reserve + 1e-9]
        best_value, best_fidelity, best_acqf = -math.inf, None, None
        posterior = CachedPosterior(gp)  # one factorisation for every fidelity's acquisition
        for budget, proxy in fidelities:
            acqf = self._acquisition(gp, posterior, X, budget, proxy)
            with torch.no_grad():
                value = float(acqf(candidates).max()) - alpha * math.log(self.settings.charge(budget, proxy) / s.full_budget)
            if value > best_value:
                best_value, best_fidelity, best_acqf = value, (budget, proxy), acqf
        if best_fidelity is None:
            return None
        budget, proxy = best_fidelity
        point = optimize_acquisition(
            best_acqf, self.space, seed=seed, exclude=history.used_keys(budget, proxy), options=self.options
        )
        self._attrs.update(mfms_alpha=alpha)
        role = Role.FULL if budget == s.full_budget and proxy is None else Role.SHORT
        return TrialRequest(self.space.decode(point), budget, role, fidelity=proxy)

    def _acquisition(self, gp: FittedGP, posterior: CachedPosterior, X: np.ndarray, budget: float,
                     proxy: str | None = None) -> Any:
        """Log-EI at a fidelity (``budget`` on ``proxy``) as a function of the configuration alone,
        over the best posterior mean there at the observed configurations."""
        fixed = self._row(np.zeros(0), budget, proxy)
        d = self.space.dim
        at_fidelity = np.column_stack([X[:, :d], np.tile(fixed, (len(X), 1))])
        best = float(posterior.mean(torch.as_tensor(at_fidelity, dtype=DTYPE)).max())
        return fix_features(CachedLogEI(gp, best_f=best, posterior=posterior), X.shape[1],
                            {d + i: v for i, v in enumerate(fixed)})

    def _ask_confirmation(self, history: History) -> TrialRequest | None:
        s = self.settings
        full_keys = {t.config.key() for t in history.trials if t.budget == s.full_budget}
        failed = history.failed_keys()
        candidates: dict[str, Config] = {
            t.config.key(): t.config for t in (*history.complete(), *history.proxy_complete())
            if t.config.key() not in full_keys and t.config.key() not in failed
        }
        if not candidates:
            return None
        gp, _, _ = self._fit(history)
        configs = list(candidates.values())
        X = np.array([self._row(e, s.full_budget, None) for e in self.space.encode_many(configs)])
        mean, _ = gp.posterior_mean_std(X)
        return TrialRequest(configs[int(np.argmax(mean))], s.full_budget, Role.CONFIRM)

    def attributes(self) -> dict[str, Any]:
        return dict(self._attrs)


def thin(points: list[tuple[np.ndarray, float]], limit: int, *, keep: list[bool]) -> list[tuple[np.ndarray, float]]:
    """At most ``limit`` of ``points`` (row, score), in their order: those marked ``keep`` (the
    full runs; the newest of them if they are more), the best others up to a quarter of the
    limit, and the rest evenly spaced over the remaining others."""
    if len(points) <= limit:
        return list(points)
    kept = [i for i, k in enumerate(keep) if k][-limit:]
    others = [i for i, k in enumerate(keep) if not k]
    best = sorted(others, key=lambda i: -points[i][1])[: max(0, min(limit // 4, limit - len(kept)))]
    rest = sorted(set(others) - set(best))
    room = limit - len(kept) - len(best)
    spread = [rest[j] for j in np.linspace(0, len(rest) - 1, room).round().astype(int)] if room > 0 and rest else []
    return [points[i] for i in sorted({*kept, *best, *spread})]
