"""Splitting the total budget between learning the predictor (full runs) and searching (short runs).

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

import math
from collections.abc import Callable

#: The predictor needs at least this many (short score, full score) pairs to be fitted.
MIN_PAIRS = 3

#: Share of the full-run budgets left after the predictor's full runs that the default spends on
#: confirmations (``n_confirm=None``); the other half buys short runs.
DEFAULT_CONFIRM_SHARE = 0.5


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
