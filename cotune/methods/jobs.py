"""JoBS: joint Bayesian optimisation of mixture and model, made cheap by a performance predictor."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np

from cotune.allocation import (
    DEFAULT_FULL_SHARE, MIN_PAIRS, choose_n_init, iterations, n_confirms, pilot_size, share_n_init,
)
from cotune.methods.base import History, Method, TrialRequest, step_seed
from cotune.settings import StudySettings
from cotune.space.design import initial_design
from cotune.space.search_space import Config, SearchSpace
from cotune.surrogate.acquisition import AcquisitionOptions
from cotune.surrogate.proposer import Proposer
from cotune.trial import Role, Trial

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Pair:
    """A predictor training example: a configuration with its short-run and full-run scores."""

    config: Config
    small: float
    full: float
    trial: int


class JobsMethod(Method):
    """JoBS (Joint Bayesian Optimization with Scaling laws).

    1. Full runs of the baseline and a Sobol design; each yields a (short score, full score) pair
       from its curve (or from one extra short run when the objective reports no curve).
    2. An MLP-ensemble predictor F maps (configuration, short score) to the full score.
    3. BO iterations train for the small budget only; F's prediction enters the GP with F's
       error as per-point noise (the paper's Theorem 4.1); IGP-UCB or log-EI proposes.
    4. Confirmation runs train, one at a time, the configuration with the best posterior mean
       that was never fully trained; the answer is the best *measured* full run.

    By default the full runs that teach F take 60% of the budget (``n_init=None``,
    `cotune.allocation.DEFAULT_FULL_SHARE`), and the confirmations half of the rest
    (``n_confirm=None``, `cotune.allocation.confirm_count`), spread evenly over the search so that
    a measured answer comes early and F learns where the search goes; ``n_confirm=k`` makes the
    last ``k`` full runs the confirmations instead. ``n_init="auto"`` picks the number minimising
    the paper's regret bound, with the predictor's error extrapolated from its own cross-validated
    learning curve (`cotune.allocation`); it spends less on F and did worse on the benchmarks.
    """

    name = "jobs"

    def __init__(self, space: SearchSpace, settings: StudySettings) -> None:
        super().__init__(space, settings)
        self.proposer = Proposer(space, kernel=settings.kernel, options=AcquisitionOptions(kind=settings.acquisition))
        self._predictors: dict[tuple[int, ...], Any] = {}
        self._targets: dict[tuple[int, ...], int] = {}
        self._attrs: dict[str, Any] = {}

    # ------------------------------------------------------------------ data
    def pairs(self, history: History) -> list[Pair]:
        """Predictor training pairs from completed full runs (curve point or matching short run)."""
        s = self.settings
        short_scores = {
            t.config.key(): t.score for t in history.complete(s.small_budget) if t.score is not None
        }
        out = []
        for t in history.complete(s.full_budget):
            small = t.score_at(s.small_budget)
            small = short_scores.get(t.config.key()) if small is None else small
            if small is not None and t.score is not None:
                out.append(Pair(t.config, small, t.score, t.number))
        return out

    def predictor(self, pairs: list[Pair]) -> Any | None:
        """F fitted on ``pairs`` (cached by the trials it was fitted on), or None if too few."""
        if len(pairs) < MIN_PAIRS:
            return None
        key = tuple(p.trial for p in pairs)
        if key not in self._predictors:
            from cotune.predictor import Predictor

            X, small, full = self._arrays(pairs)
            predictor = Predictor(seed=self.settings.seed).fit(X, small, full, cross_validate=True)
            self._predictors = {key: predictor}
            self._attrs.update(predictor_cv_rmse=predictor.cv_rmse, predictor_pairs=len(pairs))
        return self._predictors[key]

    def _arrays(self, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = self.space.encode_many([p.config for p in pairs])
        return X, np.array([p.small for p in pairs]), np.array([p.full for p in pairs])

    def predict(self, pairs: list[Pair], configs: list[Config], small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F's full-score mean and noise variance (ensemble spread plus cross-validated error)."""
        predictor = self.predictor(pairs)
        if predictor is None:
            raise RuntimeError(f"the predictor needs at least {MIN_PAIRS} full runs with a short-run score")
        mean, var = predictor.predict(self.space.encode_many(configs), small)
        return mean, var + predictor.cv_rmse**2

    # ------------------------------------------------------------------ budget split
    def n_init(self, history: History, pairs: list[Pair]) -> int:
        """How many full runs teach the predictor: given, a share of the budget, or chosen by the regret bound."""
        s = self.settings
        if s.n_init_count is not None:
            return s.n_init_count
        budgets = dict(total=s.total_budget, full=s.full_budget, small=s.small_budget, n_confirm=s.n_confirm)
        if s.n_init is None:
            return share_n_init(DEFAULT_FULL_SHARE, **budgets)
        pilot = pilot_size(self.space.dim, **budgets)
        if len(pairs) < pilot:
            return pilot
        key = tuple(p.trial for p in pairs)
        if key not in self._targets:
            from cotune.predictor import Predictor, fit_error_curve

            X, small, full = self._arrays(pairs)
            n = len(pairs)
            sizes = sorted({max(MIN_PAIRS, round(n * f)) for f in (0.4, 0.55, 0.7, 0.85, 1.0)})
            curve = Predictor(seed=self.settings.seed).learning_curve(X, small, full, sizes=sizes)
            spread = float(np.std(full)) or 1.0
            error = fit_error_curve([m for m, _ in curve], [e / spread for _, e in curve])
            target = choose_n_init(n, dim=self.space.dim, error=error, **budgets)
            self._targets = {key: target}
            self._attrs.update(
                n_init_auto=target,
                learning_curve=[[m, e] for m, e in curve],
                bo_iterations_planned=iterations(target, **budgets),
            )
        return self._targets[key]

    def n_confirm(self, n_full: int) -> int:
        """Confirmation runs after ``n_full`` initial full runs: given, or half of what is left."""
        s = self.settings
        return n_confirms(n_full, total=s.total_budget, full=s.full_budget, small=s.small_budget,
                          n_confirm=s.n_confirm)

    # ------------------------------------------------------------------ asking
    def ask(self, history: History) -> TrialRequest | None:
        s = self.settings
        full_keys = {t.config.key() for t in history.trials if t.budget == s.full_budget}
        bo_started = any(t.role is Role.SHORT and t.config.key() not in full_keys for t in history.trials)
        pairs = self.pairs(history)
        if not bo_started:
            request = self._ask_initial(history, pairs, full_keys)
            if request is not None:
                return request
        # Every initial full run is requested: search, even while some still run (parallel workers
        # need not wait); the predictor is refitted as their pairs arrive.
        return self._ask_search(history, pairs, full_keys)

    def _ask_initial(self, history: History, pairs: list[Pair], full_keys: set[str]) -> TrialRequest | None:
        s = self.settings
        failed = history.failed_keys()
        pending_full = [t for t in history.pending if t.budget == s.full_budget]
        for trial in history.complete(s.full_budget):
            has_small = trial.score_at(s.small_budget) is not None or any(
                t.config == trial.config and t.budget == s.small_budget for t in history.trials
            )
            if not has_small and history.fits(s.small_budget):
                return TrialRequest(trial.config, s.small_budget, Role.SHORT)
        target = self.n_init(history, pairs)
        reserve = self.n_confirm(target) * s.full_budget + s.small_budget
        if len(pairs) + len(pending_full) >= target or not history.fits(s.full_budget + reserve):
            return None
        # Design points whose full run failed or gave no pair are replaced by the next ones.
        n_full = sum(1 for t in history.trials if t.budget == s.full_budget)
        n_design = target + n_full - len(pairs) - len(pending_full)
        for config in initial_design(self.space, n_design, s.seed):
            if config.key() not in full_keys and config.key() not in failed:
                return TrialRequest(config, s.full_budget, Role.FULL)
        return None

    def _observations(self, history: History, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encoded points, scores and noise variances for the GP: measured full runs as they are,
        short runs of never-fully-trained configurations through F."""
        s = self.settings
        full = [t for t in history.complete(s.full_budget) if t.score is not None]
        full_keys = {t.config.key() for t in full}
        short = [t for t in history.complete(s.small_budget) if t.config.key() not in full_keys]
        configs = [t.config for t in full]
        y = [t.score for t in full]
        yvar = [0.0] * len(full)
        if short:
            mean, var = self.predict(pairs, [t.config for t in short], np.array([t.score for t in short]))
            configs += [t.config for t in short]
            y += mean.tolist()
            yvar += var.tolist()
        return self.space.encode_many(configs), np.array(y), np.array(yvar)

    def _ask_search(self, history: History, pairs: list[Pair], full_keys: set[str]) -> TrialRequest | None:
        s = self.settings
        if self.predictor(pairs) is None:
            return None
        confirms = [t for t in history.trials if t.role is Role.CONFIRM]
        n_confirm = self.n_confirm(sum(1 for t in history.trials if t.role is Role.FULL))
        reserve = max(0, n_confirm - len(confirms)) * s.full_budget
        self._attrs["n_confirm"] = n_confirm
        X, y, yvar = self._observations(history, pairs)
        short_left = math.floor((history.remaining - reserve) / s.small_budget + 1e-9)
        if s.n_confirm is None and self._confirmation_due(history, len(confirms), n_confirm, short_left):
            request = self._ask_confirmation(history, X, y, yvar, full_keys)
            if request is not None:
                return request
        if short_left >= 1:
            pending = self.space.encode_many([t.config for t in history.pending])
            config = self.proposer.propose(
                X, y, yvar, X_pending=pending, exclude=history.used_keys(s.small_budget),
                seed=step_seed(s.seed, len(history.trials)),
            )
            return TrialRequest(config, s.small_budget, Role.SHORT)
        if len(confirms) >= n_confirm or not history.fits(s.full_budget):
            return None
        return self._ask_confirmation(history, X, y, yvar, full_keys)

    def _confirmation_due(self, history: History, done: int, n_confirm: int, short_left: int) -> bool:
        """Whether the search has made enough short runs for the next of ``n_confirm`` confirmations
        spread evenly over it (the default schedule): the j-th is due after j / n_confirm of them."""
        if done >= n_confirm or not history.fits(self.settings.full_budget):
            return False
        initial = {t.config.key() for t in history.trials if t.role is Role.FULL}
        searched = sum(1 for t in history.trials if t.role is Role.SHORT and t.config.key() not in initial)
        return searched * n_confirm >= (searched + short_left) * (done + 1)

    def _ask_confirmation(self, history: History, X: np.ndarray, y: np.ndarray, yvar: np.ndarray,
                          full_keys: set[str]) -> TrialRequest | None:
        s = self.settings
        failed = history.failed_keys()
        candidates = {
            t.config.key(): t.config for t in history.complete(s.small_budget)
            if t.config.key() not in full_keys and t.config.key() not in failed
        }
        if not candidates:
            return None
        configs = list(candidates.values())
        gp = self.proposer.fit(X, y, yvar)
        mean, _ = gp.posterior_mean_std(self.space.encode_many(configs))
        best = configs[int(np.argmax(mean))]
        return TrialRequest(best, s.full_budget, Role.CONFIRM)

    # ------------------------------------------------------------------ hooks
    def annotate(self, history: History, trial: Trial) -> dict[str, Any]:
        """Store F's prediction of the full-budget score with every completed short run."""
        if trial.role is not Role.SHORT or trial.score is None:
            return {}
        pairs = self.pairs(history)
        if self.predictor(pairs) is None:
            return {}
        mean, var = self.predict(pairs, [trial.config], np.array([trial.score]))
        return {"predicted": float(mean[0]), "predicted_var": float(var[0])}

    def attributes(self) -> dict[str, Any]:
        return dict(self._attrs)
