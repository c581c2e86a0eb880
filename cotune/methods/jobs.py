"""JoBS: joint Bayesian optimisation of mixture and model, made cheap by a performance predictor."""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Any

import numpy as np

from cotune.allocation import (
    DEFAULT_FULL_SHARE, LATEST_SWITCH_SHARE, MIN_PAIRS, cheapest_paying, choose_n_init, fit_error_curve, iterations,
    max_full_runs, n_confirms, pilot_size, share_n_init, short_budget_ladder, short_runs_stop,
)
from cotune.evidence import ShortRunEvidence, measure
from cotune.methods.base import History, Method, TrialRequest, step_seed
from cotune.methods.bo import BOMethod
from cotune.settings import StudySettings
from cotune.space.search_space import Config, SearchSpace
from cotune.trial import Role, Trial, TrialState

logger = logging.getLogger(__name__)

#: Predictors and evidence kept per study (one per short budget of the ladder and a few more).
_CACHED = 8


@dataclasses.dataclass(frozen=True)
class Cheap:
    """A cheap observation jobs may search with: a short run of the target model (``proxy`` None)
    or a run of a proxy model (`StudySettings.proxies`), of ``budget`` in that model's units."""

    budget: float
    proxy: str | None = None

    def label(self) -> str:
        """How the decision and `cotune status` name it."""
        return f"{self.budget:g}" if self.proxy is None else f"proxy {self.proxy!r} at {self.budget:g}"


@dataclasses.dataclass(frozen=True)
class Pair:
    """A predictor training example: a configuration with its short-run and full-run scores."""

    config: Config
    small: float
    full: float
    trial: int


class JobsMethod(Method):
    """JoBS (Joint Bayesian Optimization with Scaling laws), which finds out whether its short runs pay.

    1. Full-run BO first: the baseline, a Sobol design (`cotune.allocation.design_size`), then
       full runs proposed by the GP over measured full scores. Each full run yields a
       (short score, full score) pair from its curve (or from one extra short run).
    2. An MLP-ensemble predictor F maps (configuration, short score) to the full score. After
       every full run the evidence (`cotune.evidence`) compares F with a GP on the configuration
       alone; from ``n_init`` full runs on (60% of the budget by default), after every full run
       until they reach 80% (`cotune.allocation.LATEST_SWITCH_SHARE`), the search switches to
       short runs as soon as they pay (`cotune.allocation.short_runs_pay`). The short
       run's budget is the cheapest on `cotune.allocation.short_budget_ladder` (``b, 2b, 4b, ...``
       up to ``B / 2``, where the full runs' curves report those points) whose evidence pays.
    3. Search: BO iterations train for the small budget only; F's prediction enters the GP with
       the error F makes (the larger of its cross-validated error and its error on the
       confirmations) as per-point noise (the paper's Theorem 4.1); IGP-UCB or log-EI proposes.
    4. Confirmation runs train the configuration with the best lower confidence bound that was
       never trained in full; each one tests F where the search went. When F does no better there
       than the configuration alone (`cotune.allocation.short_runs_stop`), the rest of the budget
       goes back to full-run BO. The answer is the best *measured* full run.

    Where the evidence never says short runs pay before the full runs reach 80% of the budget
    (`cotune.allocation.LATEST_SWITCH_SHARE`, or ``n_init`` when larger), the study is full-run BO
    to the end. With ``short_runs="always"`` (the paper's JoBS) the search starts after ``n_init``
    full runs with short runs of ``small_budget`` whatever the evidence says, and never goes back.
    The confirmations take half of what the full runs before the search leave (``n_confirm=None``,
    `cotune.allocation.confirm_count`), spread evenly over the search; ``n_confirm=k`` makes the
    last ``k`` full runs the confirmations instead. ``n_init="auto"`` picks the number of full runs
    before the search by the paper's regret bound.
    """

    name = "jobs"

    def __init__(self, space: SearchSpace, settings: StudySettings) -> None:
        super().__init__(space, settings)
        # Full-run BO with its own design size whatever n_init is; the search shares its proposer.
        self._full_runs = BOMethod(space, dataclasses.replace(settings, n_init=None))
        self.proposer = self._full_runs.proposer
        self._predictors: dict[tuple[int, ...], Any] = {}
        self._targets: dict[tuple[int, ...], int] = {}
        self._evidence: dict[tuple[Any, ...], ShortRunEvidence] = {}
        self._attrs: dict[str, Any] = {}

    # ------------------------------------------------------------------ data
    def pairs(self, history: History, budget: float | None = None, proxy: str | None = None) -> list[Pair]:
        """Predictor training pairs from completed full runs (curve point or matching short run)
        at the short budget ``budget`` (default ``small_budget``), or from ``proxy``'s runs of
        ``budget`` of the same configurations."""
        s = self.settings
        budget = s.small_budget if budget is None else budget
        short_scores = {t.config.key(): t.score for t in self.cheap_runs(history, Cheap(budget, proxy))
                        if t.score is not None}
        out = []
        for t in history.complete(s.full_budget):
            small = t.score_at(budget) if proxy is None else None
            small = short_scores.get(t.config.key()) if small is None else small
            if small is not None and t.score is not None:
                out.append(Pair(t.config, small, t.score, t.number))
        return out

    def predictor(self, pairs: list[Pair]) -> Any | None:
        """F fitted on ``pairs`` (cached by the trials it was fitted on), or None if too few."""
        if len(pairs) < MIN_PAIRS:
            return None
        key = tuple((p.trial, p.small) for p in pairs)
        if key not in self._predictors:
            from cotune.predictor import Predictor

            X, small, full = self._arrays(pairs)
            if len(self._predictors) > _CACHED:
                self._predictors.clear()
            self._predictors[key] = Predictor(seed=self.settings.seed).fit(X, small, full, cross_validate=True)
        return self._predictors[key]

    @staticmethod
    def cheap_runs(history: History, cheap: Cheap) -> list[Trial]:
        """The completed runs of the cheap observation ``cheap``."""
        if cheap.proxy is None:
            return history.complete(cheap.budget)
        return [t for t in history.proxy_complete(cheap.proxy) if math.isclose(t.budget, cheap.budget, rel_tol=1e-9)]

    def cost(self, cheap: Cheap) -> float:
        """What one run of ``cheap`` costs, in the target's budget units."""
        return self.settings.charge(cheap.budget, cheap.proxy)

    def _arrays(self, pairs: list[Pair]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        X = self.space.encode_many([p.config for p in pairs])
        return X, np.array([p.small for p in pairs]), np.array([p.full for p in pairs])

    def predict(self, history: History, pairs: list[Pair], configs: list[Config], small: np.ndarray,
                cheap: Cheap) -> tuple[np.ndarray, np.ndarray]:
        """F's full-score mean and noise variance from scores ``small`` of the cheap observation
        ``cheap``: the ensemble's spread plus the error F makes
        (`cotune.evidence.ShortRunEvidence.noise_variance`)."""
        predictor = self.predictor(pairs)
        evidence = self.evidence(history, pairs, cheap)
        if predictor is None or evidence is None:
            raise RuntimeError(f"the predictor needs at least {MIN_PAIRS} full runs with a short-run score")
        mean, var = predictor.predict(self.space.encode_many(configs), small)
        return mean, var + evidence.noise_variance

    def evidence(self, history: History, pairs: list[Pair], cheap: Cheap) -> ShortRunEvidence | None:
        """What the cheap observation ``cheap`` (``pairs`` are of it) is worth so far
        (`cotune.evidence`), or None before F can be fitted."""
        predictor = self.predictor(pairs)
        if predictor is None:
            return None
        s = self.settings
        full = [t for t in history.complete(s.full_budget) if t.score is not None]
        index = {t.config.key(): i for i, t in enumerate(full)}
        checked = []
        for t in self.cheap_runs(history, cheap):
            i = index.get(t.config.key())
            if t.predicted is not None and i is not None and full[i].role is Role.CONFIRM and t.number < full[i].number:
                checked.append((i, float(t.predicted)))
        key = (cheap, tuple(t.number for t in full), tuple((p.trial, p.small) for p in pairs), tuple(checked))
        if key not in self._evidence:
            position = {t.number: i for i, t in enumerate(full)}
            evidence = measure([position[p.trial] for p in pairs], predictor.cv_rmse,
                               X_full=self.space.encode_many([t.config for t in full]),
                               y_full=np.array([t.score for t in full]), order=np.array([t.number for t in full]),
                               checked=checked, kernel=s.kernel)
            if len(self._evidence) > _CACHED:
                self._evidence.clear()
            self._evidence[key] = evidence
        return self._evidence[key]

    def _record(self, evidence: ShortRunEvidence, pairs: list[Pair], cheap: Cheap) -> None:
        """Store the evidence that decides (or decided) the study's course with the study."""
        self._attrs.update(short_run_evidence=evidence.to_dict(), short_budget=cheap.budget,
                           predictor_cv_rmse=evidence.predictor_rmse, predictor_pairs=len(pairs))
        if cheap.proxy is not None:
            self._attrs["short_run_proxy"] = cheap.proxy

    # ------------------------------------------------------------------ budget split
    def n_init(self, history: History, pairs: list[Pair]) -> int:
        """Full runs made before the search may start: given, chosen by the regret bound
        (``"auto"``), or by default 60% of the budget (`cotune.allocation.DEFAULT_FULL_SHARE`)."""
        s = self.settings
        budgets = dict(total=s.total_budget, full=s.full_budget, small=s.small_budget, n_confirm=s.n_confirm)
        top = max_full_runs(**budgets)
        if s.n_init_count is not None:
            return min(s.n_init_count, top)
        if s.n_init is None:
            return share_n_init(DEFAULT_FULL_SHARE, **budgets)
        pilot = pilot_size(self.space.dim, **budgets)
        if len(pairs) < pilot:
            return pilot
        key = tuple(p.trial for p in pairs)
        if key not in self._targets:
            from cotune.predictor import Predictor

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

    def last_switch(self, history: History, pairs: list[Pair]) -> int:
        """The most full runs after which the search may still start: `n_init`, or 80% of the
        budget (`cotune.allocation.LATEST_SWITCH_SHARE`) when more."""
        s = self.settings
        share = share_n_init(LATEST_SWITCH_SHARE, total=s.total_budget, full=s.full_budget, small=s.small_budget,
                             n_confirm=s.n_confirm)
        return max(self.n_init(history, pairs), share)

    def n_confirm(self, n_full: int, cost: float) -> int:
        """Confirmation runs after ``n_full`` full runs before a search with cheap runs costing
        ``cost``: given, or half of what is left."""
        s = self.settings
        return n_confirms(n_full, total=s.total_budget, full=s.full_budget, small=cost, n_confirm=s.n_confirm)

    # ------------------------------------------------------------------ phases
    def search_start(self, history: History) -> int | None:
        """Number of the search's first trial (a confirmation, or a short or proxy run of a
        configuration with no full run before it), or None while the study is in its full-run phase."""
        full_budget = self.settings.full_budget
        first_full: dict[str, int] = {}
        for t in history.trials:
            if t.budget == full_budget:
                first_full.setdefault(t.config.key(), t.number)
        for t in _by_number(history):
            if t.role is Role.CONFIRM or (t.role is Role.SHORT and first_full.get(t.config.key(), math.inf) > t.number):
                return t.number
        return None

    def search_fidelity(self, history: History, start: int) -> Cheap:
        """The cheap observation of the search that began with trial ``start`` (its first short run's)."""
        first = next((t for t in _by_number(history) if t.number >= start and t.role is Role.SHORT), None)
        return Cheap(self.settings.small_budget) if first is None else Cheap(first.budget, first.fidelity)

    # ------------------------------------------------------------------ asking
    def ask(self, history: History) -> TrialRequest | None:
        requests = self.ask_batch(history, 1)
        return requests[0] if requests else None

    def ask_batch(self, history: History, k: int) -> list[TrialRequest]:
        """The next trial, or in the search up to ``k`` short runs from one fit (`_ask_search`)."""
        start = self.search_start(history)
        if start is None:
            request, cheap = self._ask_before_search(history, self.pairs(history))
            if cheap is None:
                return [] if request is None else [request]
            pairs = self.pairs(history, cheap.budget, cheap.proxy)
        else:
            cheap = self.search_fidelity(history, start)
            pairs = self.pairs(history, cheap.budget, cheap.proxy)
            if any(t.role is Role.FULL and t.number > start for t in history.trials):
                return self._ask_full(history, k)  # the search stopped paying: full runs to the end
            evidence = self.evidence(history, pairs, cheap)
            if evidence is not None:
                self._record(evidence, pairs, cheap)
                if self.settings.short_runs == "tested" and short_runs_stop(evidence):
                    self._attrs["decision"] = (f"back to full runs after {evidence.n_checked} confirmations: "
                                               + evidence.describe())
                    return self._ask_full(history, k)
        full_keys = {t.config.key() for t in history.trials if t.budget == self.settings.full_budget}
        return self._ask_search(history, pairs, full_keys, cheap, k)

    def _ask_before_search(self, history: History, pairs: list[Pair]) -> tuple[TrialRequest | None, Cheap | None]:
        """The next full run (or a short or proxy run making a pair), or ``(None, cheap)`` to start
        the search with runs of the cheap observation ``cheap``."""
        s = self.settings
        fulls = [t for t in history.trials if t.budget == s.full_budget]
        n_full = len(fulls)
        last = self.last_switch(history, pairs)
        if n_full <= last:
            own = [t for t in fulls if t.state is TrialState.COMPLETE]
            for trial in own:  # a warm start's full runs teach F only where their curves do
                has_small = trial.score_at(s.small_budget) is not None or any(
                    t.config == trial.config and t.budget == s.small_budget for t in history.trials
                )
                if not has_small and history.fits(s.small_budget):
                    return TrialRequest(trial.config, s.small_budget, Role.SHORT), None
            paired = self._ask_proxy_pair(history, own)
            if paired is not None:
                return paired, None
            # the baseline is measured in this study first, whatever a warm start holds
            if n_full >= 1 and len(pairs) >= max(MIN_PAIRS, self.n_init(history, pairs)):
                cheap = self._untested(history, pairs) if s.short_runs == "always" else self._test(history, len(pairs))
                if cheap is not None:
                    return None, cheap
            if n_full == last and any(not t.state.finished for t in fulls):
                return None, None  # parallel workers: no full run past the last test until it is made
        elif "decision" not in self._attrs:
            if any(not t.state.finished for t in fulls[:last]):
                return None, None  # parallel workers: the test waits for the full runs it is made on
            # the test as it stood when the last full run it may see was proposed (sequentially, it
            # was made then and failed; in parallel, some of those runs were still running)
            at_last = dataclasses.replace(history, trials=tuple(t for t in history.trials
                                                                  if t.number < fulls[last].number))
            test_pairs = self.pairs(at_last)
            if len(test_pairs) >= max(MIN_PAIRS, self.n_init(at_last, test_pairs)):
                cheap = self._test(at_last, len(test_pairs))
                if cheap is not None:
                    return None, cheap
            ladder = self.ladder_evidence(at_last, len(test_pairs))
            if Cheap(s.small_budget) in ladder:
                evidence, chosen = ladder[Cheap(s.small_budget)]
                self._record(evidence, chosen, Cheap(s.small_budget))
                detail = evidence.describe() + "".join(
                    f"; {'at ' if c.proxy is None else ''}{c.label()}: {max(0.0, e.explained):.0%}"
                    for c, (e, _) in ladder.items() if c != Cheap(s.small_budget)
                )
            else:
                detail = "too few full runs with a short-run score"
            self._attrs["decision"] = f"full runs only: short runs did not pay by {last} full runs ({detail})"
        full = self._ask_full(history, 1)
        return (full[0] if full else None), None

    def _test(self, history: History, least: int) -> Cheap | None:
        """The cheap observation the search switches to (recording why), or None where none pays."""
        ladder = self.ladder_evidence(history, least)
        cheap = cheapest_paying({c: e for c, (e, _) in ladder.items()}, cost=self.cost)
        if cheap is not None:
            evidence, chosen = ladder[cheap]
            self._record(evidence, chosen, cheap)
            kind = "short runs of" if cheap.proxy is None else "runs of"
            self._attrs["decision"] = f"{kind} {cheap.label()} from {len(chosen)} full runs on: " + evidence.describe()
        return cheap

    def _untested(self, history: History, pairs: list[Pair]) -> Cheap:
        """The cheap observation of ``short_runs="always"``: short runs of ``small_budget``, whatever
        the evidence says (recorded all the same)."""
        cheap = Cheap(self.settings.small_budget)
        evidence = self.evidence(history, pairs, cheap)
        detail = ""
        if evidence is not None:
            self._record(evidence, pairs, cheap)
            detail = ": " + evidence.describe()
        self._attrs["decision"] = (f"short runs of {cheap.label()} from {len(pairs)} full runs, not tested "
                                   f"(short_runs='always'){detail}")
        return cheap

    def ladder_evidence(self, history: History, least: int) -> dict[Cheap, tuple[ShortRunEvidence, list[Pair]]]:
        """The evidence, with its pairs, at each budget of `cotune.allocation.short_budget_ladder`
        and for each proxy's full-budget run, wherever at least ``least`` full runs have that score."""
        s = self.settings
        out = {}
        candidates = [Cheap(b) for b in short_budget_ladder(s.small_budget, s.full_budget)]
        for cheap in [*candidates, *(Cheap(s.full_budget, proxy) for proxy in s.proxies)]:
            pairs = self.pairs(history, cheap.budget, cheap.proxy)
            evidence = self.evidence(history, pairs, cheap) if len(pairs) >= max(MIN_PAIRS, least) else None
            if evidence is not None:
                out[cheap] = (evidence, pairs)
        self._attrs["short_run_ladder"] = {c.label(): e.explained for c, (e, _) in out.items()}
        return out

    def _ask_proxy_pair(self, history: History, full_runs: list[Trial]) -> TrialRequest | None:
        """A proxy's full-budget run of a configuration the target ran in full and that proxy did
        not, so that the evidence can weigh that proxy as it weighs short runs."""
        s = self.settings
        for proxy in s.proxies:
            done = history.used_keys(s.full_budget, proxy)
            for trial in full_runs:
                if trial.config.key() not in done and history.fits(self.cost(Cheap(s.full_budget, proxy))):
                    return TrialRequest(trial.config, s.full_budget, Role.SHORT, fidelity=proxy)
        return None

    def _ask_full(self, history: History, k: int) -> list[TrialRequest]:
        """Up to ``k`` full runs of full-run BO (`BOMethod`): the baseline and its Sobol design
        first, then proposals over the measured full scores."""
        return self._full_runs.ask_batch(history, k)

    def _observations(self, history: History, pairs: list[Pair],
                      cheap: Cheap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Encoded points, scores and noise variances for the GP: measured full runs as they are,
        cheap runs (of ``cheap``) of never-fully-trained configurations through F."""
        s = self.settings
        full = [t for t in history.complete(s.full_budget) if t.score is not None]
        full_keys = {t.config.key() for t in full}
        short = [t for t in self.cheap_runs(history, cheap) if t.config.key() not in full_keys]
        configs = [t.config for t in full]
        y = [t.score for t in full]
        yvar = [0.0] * len(full)
        if short:
            mean, var = self.predict(history, pairs, [t.config for t in short], np.array([t.score for t in short]),
                                     cheap)
            configs += [t.config for t in short]
            y += mean.tolist()
            yvar += var.tolist()
        return self.space.encode_many(configs), np.array(y), np.array(yvar)

    def _ask_search(self, history: History, pairs: list[Pair], full_keys: set[str],
                    cheap: Cheap, k: int) -> list[TrialRequest]:
        """Up to ``k`` runs of ``cheap`` proposed on F's predictions (no more than run before the
        next confirmation is due), or that confirmation."""
        s = self.settings
        if self.predictor(pairs) is None:
            return []
        confirms = [t for t in history.trials if t.role is Role.CONFIRM]
        cost = self.cost(cheap)
        n_confirm = self.n_confirm(sum(1 for t in history.trials if t.role is Role.FULL), cost)
        reserve = max(0, n_confirm - len(confirms)) * s.full_budget
        self._attrs["n_confirm"] = n_confirm
        X, y, yvar = self._observations(history, pairs, cheap)
        short_left = math.floor((history.remaining - reserve) / cost + 1e-9)
        if s.n_confirm is None:
            before_due = self._short_runs_before_confirmation(history, len(confirms), n_confirm, short_left)
            if before_due == 0:
                request = self._ask_confirmation(history, X, y, yvar, full_keys, cheap)
                if request is not None:
                    return [request]
            k = min(k, before_due or k)
        if short_left >= 1:
            running = [*history.pending, *(t for t in history.proxy_trials if not t.state.finished)]
            made = len(history.trials) + len(history.proxy_trials)
            configs = self.proposer.propose_batch(
                X, y, yvar, X_pending=self.space.encode_many([t.config for t in running]),
                exclude=history.used_keys(cheap.budget, cheap.proxy),
                seeds=[step_seed(s.seed, made + i) for i in range(min(k, short_left))],
            )
            return [TrialRequest(config, cheap.budget, Role.SHORT, fidelity=cheap.proxy) for config in configs]
        if len(confirms) >= n_confirm or not history.fits(s.full_budget):
            return []
        request = self._ask_confirmation(history, X, y, yvar, full_keys, cheap)
        return [] if request is None else [request]

    def _short_runs_before_confirmation(self, history: History, done: int, n_confirm: int,
                                        short_left: int) -> int | None:
        """Short runs the search makes before the next of ``n_confirm`` confirmations, spread
        evenly over it (the default schedule), is due: the j-th after j / n_confirm of them;
        0 when it is due now, None when no confirmation is left to make."""
        if done >= n_confirm or not history.fits(self.settings.full_budget):
            return None
        start = self.search_start(history)
        searched = sum(1 for t in _by_number(history) if t.role is Role.SHORT and start is not None and t.number >= start)
        due_at = -(-(searched + short_left) * (done + 1) // n_confirm)  # the ceiling, in integers
        return max(0, due_at - searched)

    def _ask_confirmation(self, history: History, X: np.ndarray, y: np.ndarray, yvar: np.ndarray,
                          full_keys: set[str], cheap: Cheap) -> TrialRequest | None:
        """A full run of the cheaply run configuration with the best lower confidence bound
        (posterior mean minus one standard deviation): one F over-rates by its error alone does not win."""
        s = self.settings
        failed = history.failed_keys()
        candidates = {
            t.config.key(): t.config for t in self.cheap_runs(history, cheap)
            if t.config.key() not in full_keys and t.config.key() not in failed
        }
        if not candidates:
            return None
        configs = list(candidates.values())
        gp = self.proposer.fit(X, y, yvar)
        mean, std = gp.posterior_mean_std(self.space.encode_many(configs))
        return TrialRequest(configs[int(np.argmax(mean - std))], s.full_budget, Role.CONFIRM)

    # ------------------------------------------------------------------ hooks
    def annotate(self, history: History, trial: Trial) -> dict[str, Any]:
        """Store F's prediction of the full-budget score with every completed short or proxy run."""
        if trial.role is not Role.SHORT or trial.score is None:
            return {}
        pairs = self.pairs(history, trial.budget, trial.fidelity)
        if self.predictor(pairs) is None:
            return {}
        cheap = Cheap(trial.budget, trial.fidelity)
        mean, var = self.predict(history, pairs, [trial.config], np.array([trial.score]), cheap)
        return {"predicted": float(mean[0]), "predicted_var": float(var[0])}

    def attributes(self) -> dict[str, Any]:
        return dict(self._attrs)


def _by_number(history: History) -> list[Trial]:
    """The target's and the proxies' trials, in the order they were made."""
    return sorted((*history.trials, *history.proxy_trials), key=lambda t: t.number)
