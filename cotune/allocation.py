"""Splitting the total budget between full runs and short runs: every method's budget policy.

JoBS's default (`JobsMethod`) is decided here from evidence (`cotune.evidence`): it starts as
full-run BO (the baseline, a Sobol design of `design_size`, then BO proposals), every full run
reporting its curve; from the point the full runs reach 60% of the budget (`DEFAULT_FULL_SHARE`,
or ``n_init``) until they reach 80% (`LATEST_SWITCH_SHARE`), as soon as short runs prove they
predict the full score well beyond what the configuration alone says (`short_runs_pay`), it
switches to the short-run search, with short runs of the
cheapest budget on `short_budget_ladder` (``b, 2b, 4b, ...`` up to ``B / 2``, read off the full
runs' curves) that pays (`cheapest_paying`), and
confirmation runs spread over it (`confirm_count`); if its predictions of the confirmations show
the short run stopped paying where the search went (`short_runs_stop`), the rest of the budget
goes back to full runs. Where the evidence never comes, it stays full-run BO to the end.

With ``n`` full runs the study can afford ``T(n) = (C - (n + k) B) / b`` BO iterations. The JoBS
regret bound (Theorem 4.1, with IGP-UCB) gives an average regret of order

    (B_f * sqrt(T * gamma_T) + R(n) * sqrt(T) * sqrt(gamma_T^2 + gamma_T * ln(1/delta))) / T

where ``R(n)`` is the predictor's error after ``n`` full runs (in units of the score's spread)
and ``gamma_T`` the maximum information gain, which grows like ``d log T`` for the kernels used.
More full runs shrink ``R`` but leave fewer iterations; `choose_n_init` picks the ``n`` that
minimises the bound, with ``R(n)`` extrapolated from the predictor's cross-validated learning curve.

The bound counts ``F``'s error as noise that averages out over iterations. It does not: ``F``'s
error is a fixed function of the configuration, and the search seeks out where ``F`` over-rates.
So the bound under-spends on full runs, and the default split is a fixed share instead
(`DEFAULT_FULL_SHARE`, `share_n_init`); the README gives the measurements.

The ``k`` confirmation runs, full runs of the configurations the search rates best, default to half
of the full-run budgets left after the ``n`` (`confirm_count`): they are the only full runs in the
region the search found, so they both measure the answer and teach ``F`` where it matters.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from cotune.evidence import ShortRunEvidence

K = TypeVar("K")

#: The predictor needs at least this many (short score, full score) pairs to be fitted.
MIN_PAIRS = 3

#: Share of the full-run budgets left after the predictor's full runs that the default spends on
#: confirmations (``n_confirm=None``); the other half buys short runs.
DEFAULT_CONFIRM_SHARE = 0.5


#: Confirmation runs of `mfms` when ``n_confirm`` is not given.
DEFAULT_MFMS_CONFIRM = 3

#: Short runs pay when F removes at least this share of the squared error of a model of the
#: full score from the configuration alone, by cross-validation on the full runs
#: (`cotune.evidence.ShortRunEvidence.explained`).
SHORT_RUNS_PAY = 0.9

#: The search goes back to full runs when, on the confirmations it predicted beforehand, F
#: removes less than this share of that squared error (`explained_where_searched`).
SHORT_RUNS_STOP = 0.5


def short_runs_pay(evidence: ShortRunEvidence) -> bool:
    """Whether the evidence says the budget should go to short runs read through F."""
    return evidence.explained >= SHORT_RUNS_PAY


def short_runs_stop(evidence: ShortRunEvidence) -> bool:
    """Whether F's predictions of the confirmations say the short-run search stopped paying."""
    where = evidence.explained_where_searched
    return where is not None and where < SHORT_RUNS_STOP


def short_budget_ladder(small: float, full: float) -> list[float]:
    """Short-run budgets jobs may search with: ``b, 2b, 4b, ...`` up to half the full budget
    (a later point of a curve that crosses may rank configurations where ``b`` cannot)."""
    ladder = [small]
    while ladder[-1] * 2 <= full / 2 * (1 + 1e-9):
        ladder.append(ladder[-1] * 2)
    return ladder


def cheapest_paying(evidence: Mapping[K, ShortRunEvidence], cost: Callable[[K], float] = float) -> K | None:
    """The cheapest cheap observation (a short-run budget, or a proxy's run, costing ``cost`` of
    it) whose evidence says it pays, or None where none does."""
    return min((k for k, e in evidence.items() if short_runs_pay(e)), key=cost, default=None)


def design_size(dim: int, *, total: float, full: float) -> int:
    """Sobol design (with the baseline) of full-run BO: a third of the affordable full runs, at
    most ``d + 1``, at least 4 where they fit."""
    affordable = int(total // full)
    return max(1, min(dim + 1, max(4, affordable // 3), affordable))


def confirm_count(n_full: int, *, total: float, full: float, small: float) -> int:
    """Confirmation runs by default: half of the full-run budgets left after ``n_full`` full runs,
    at least one, and never so many that no short run is left."""
    left = total - n_full * full
    return max(0, min(max(1, round(DEFAULT_CONFIRM_SHARE * left / full)), int((left - small) // full)))


def n_confirms(n_full: int, *, total: float, full: float, small: float, n_confirm: int | None) -> int:
    """``n_confirm`` if given, else `confirm_count` for ``n_full`` full runs."""
    if n_confirm is not None:
        return n_confirm
    return confirm_count(n_full, total=total, full=full, small=small)


def iterations(n_full: int, *, total: float, full: float, small: float, n_confirm: int | None) -> int:
    """BO iterations (short runs) left after ``n_full`` full runs and the confirmation runs."""
    k = n_confirms(n_full, total=total, full=full, small=small, n_confirm=n_confirm)
    return max(0, int((total - (n_full + k) * full) // small))


def regret_bound(n_full: int, *, total: float, full: float, small: float, n_confirm: int | None, dim: int,
                 error: Callable[[float], float], delta: float = 0.1) -> float:
    """The average-regret bound of the module docstring for ``n_full`` full runs (inf if no iteration fits)."""
    t = iterations(n_full, total=total, full=full, small=small, n_confirm=n_confirm)
    if t < 1:
        return math.inf
    gamma = dim * math.log(1.0 + t)
    r = error(n_full)
    return (math.sqrt(t * gamma) + r * math.sqrt(t) * math.sqrt(gamma**2 + gamma * math.log(1.0 / delta))) / t


def max_full_runs(*, total: float, full: float, small: float, n_confirm: int | None) -> int:
    """The most full runs that still leave at least one BO iteration."""
    if n_confirm is not None:
        return max(0, int((total - n_confirm * full - small) // full))
    fitting = [n for n in range(int(total // full) + 1)
               if iterations(n, total=total, full=full, small=small, n_confirm=None) >= 1]
    return max(fitting, default=0)


def choose_n_init(n_done: int, *, total: float, full: float, small: float, n_confirm: int | None, dim: int,
                  error: Callable[[float], float]) -> int:
    """The number of full runs (at least ``n_done``) minimising `regret_bound`."""
    top = max_full_runs(total=total, full=full, small=small, n_confirm=n_confirm)
    if n_done >= top:
        return n_done
    bounds = {
        n: regret_bound(n, total=total, full=full, small=small, n_confirm=n_confirm, dim=dim, error=error)
        for n in range(n_done, top + 1)
    }
    return min(bounds, key=lambda n: (bounds[n], n))


#: Share of the total budget the default split spends on the full runs that teach the predictor
#: (30 full runs of a 50-run budget; the paper's experiments spent 86%: 30 full runs of 1000 s and
#: 100 short runs of 50 s).
DEFAULT_FULL_SHARE = 0.6

#: jobs keeps testing whether short runs pay after every full run until the full runs reach this
#: share of the budget (or ``n_init``, when larger); past it the study stays full-run BO. A test
#: that fails narrowly at 60% (F's share of explained error grows with its pairs) may pass later.
LATEST_SWITCH_SHARE = 0.8


def share_n_init(share: float, *, total: float, full: float, small: float, n_confirm: int | None) -> int:
    """Full runs spending ``share`` of ``total`` (at least `MIN_PAIRS`, so the predictor can be
    fitted, and at most what still leaves one BO iteration)."""
    top = max_full_runs(total=total, full=full, small=small, n_confirm=n_confirm)
    return min(max(MIN_PAIRS, round(share * total / full)), top)


def pilot_size(dim: int, *, total: float, full: float, small: float, n_confirm: int | None) -> int:
    """Full runs made before the learning curve is trusted: one per dimension plus one (a usual
    GP initial design), at most half of what the budget allows, at least `MIN_PAIRS`."""
    top = max_full_runs(total=total, full=full, small=small, n_confirm=n_confirm)
    return max(1, min(max(MIN_PAIRS, min(dim + 1, top // 2)), top))


@dataclasses.dataclass(frozen=True)
class ErrorCurve:
    """``err(n) = a * n**(-c) + e_inf``: a predictor's error after ``n`` training observations."""

    a: float
    c: float
    e_inf: float

    def __call__(self, n: float) -> float:
        return self.a * float(n) ** -self.c + self.e_inf


def fit_error_curve(sizes: Sequence[float], errors: Sequence[float]) -> ErrorCurve:
    """Fit ``err(n) = a * n**(-c) + e_inf`` (``a, e_inf >= 0``, ``0 <= c <= 2``) to a learning curve.

    Used to extrapolate the predictor's error to more full runs when choosing how many to spend.
    Residuals are relative (log errors), so small errors at large ``n`` count as much as large
    ones at small ``n``. With fewer than three points the three parameters are not identified:
    then ``e_inf = 0`` and, with one point, ``c = 0.5`` (the Monte Carlo rate) are assumed.

    Args:
        sizes: ``L`` positive training-set sizes.
        errors: ``L`` non-negative errors at those sizes.
    """
    n = np.asarray(sizes, dtype=np.float64).reshape(-1)
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    if n.shape != e.shape or n.size == 0 or np.any(n <= 0) or not np.all(np.isfinite(n)) \
            or not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError(
            f"need as many positive sizes as finite errors >= 0, got sizes {n.tolist()}, errors {e.tolist()}"
        )
    if np.all(e == 0):
        return ErrorCurve(0.0, 0.5, 0.0)
    tiny = 1e-6 * float(e.max())
    log_e = np.log(np.maximum(e, tiny))
    if np.unique(n).size == 1:
        return ErrorCurve(float(np.exp(log_e.mean())) * float(n[0]) ** 0.5, 0.5, 0.0)
    if n.size < 3:
        c = float(np.clip(-np.polyfit(np.log(n), log_e, 1)[0], 0.0, 2.0))
        return ErrorCurve(float(np.exp(np.mean(log_e + c * np.log(n)))), c, 0.0)
    from scipy.optimize import least_squares

    def residuals(q: np.ndarray) -> np.ndarray:
        return np.log(np.maximum(q[0] * n ** -q[1] + q[2], tiny)) - log_e

    best = None
    for c0 in (0.25, 0.5, 1.0, 1.5):
        for floor in (0.0, 0.5):
            e_inf0 = floor * float(e.min())
            a0 = max(float(np.mean((e - e_inf0) * n**c0)), tiny)
            fit = least_squares(residuals, [a0, c0, e_inf0], bounds=([0.0, 0.0, 0.0], [np.inf, 2.0, np.inf]))
            if best is None or fit.cost < best.cost:
                best = fit
    a, c, e_inf = (float(v) for v in best.x)
    return ErrorCurve(a, c, e_inf)
