"""Choosing how many full runs teach the predictor: a share of the budget, or by the JoBS regret bound."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cotune.allocation import (
    cheapest_paying, choose_n_init, confirm_count, iterations, max_full_runs, pilot_size, regret_bound, share_n_init,
    short_budget_ladder,
)
from cotune.evidence import ShortRunEvidence

BUDGETS = dict(total=3000.0, full=100.0, small=5.0, n_confirm=2)


def test_iterations_follow_the_budget_equation():
    assert iterations(10, **BUDGETS) == (3000 - 12 * 100) // 5
    assert iterations(29, **BUDGETS) == 0
    assert max_full_runs(**BUDGETS) == 27


def test_bound_is_infinite_without_iterations_and_grows_with_error():
    assert regret_bound(29, dim=10, error=lambda n: 0.1, **BUDGETS) == math.inf
    low = regret_bound(10, dim=10, error=lambda n: 0.05, **BUDGETS)
    high = regret_bound(10, dim=10, error=lambda n: 0.5, **BUDGETS)
    assert 0 < low < high


def test_a_predictor_that_keeps_improving_earns_more_full_runs():
    flat = choose_n_init(6, dim=10, error=lambda n: 0.2, **BUDGETS)
    improving = choose_n_init(6, dim=10, error=lambda n: 3.0 * n**-1.0, **BUDGETS)
    assert flat == 6  # more full runs would only cost iterations
    assert improving > flat
    assert improving <= max_full_runs(**BUDGETS)


def test_never_fewer_than_already_done():
    assert choose_n_init(20, dim=10, error=lambda n: 0.2, **BUDGETS) == 20
    assert choose_n_init(40, dim=10, error=lambda n: 0.2, **BUDGETS) == 40


@pytest.mark.parametrize("dim, total, expected", [(14, 3000.0, 13), (4, 3000.0, 5), (30, 800.0, 3), (14, 2000.0, 8)])
def test_pilot_size(dim, total, expected):
    assert pilot_size(dim, total=total, full=100.0, small=5.0, n_confirm=2) == expected


def test_a_share_of_the_budget_buys_that_many_full_runs():
    assert share_n_init(0.6, **BUDGETS) == 18  # 60% of 30 full budgets
    assert share_n_init(0.99, **BUDGETS) == max_full_runs(**BUDGETS) == 27  # leaves one iteration
    assert share_n_init(0.01, **BUDGETS) == 3  # the predictor needs three pairs


@given(share=st.floats(0.01, 1.0), runs=st.integers(1, 200), ratio=st.sampled_from([2.0, 10.0, 20.0]),
       n_confirm=st.integers(0, 5))
def test_the_share_always_fits_the_budget(share, runs, ratio, n_confirm):
    budgets = dict(total=runs * 100.0, full=100.0, small=100.0 / ratio, n_confirm=n_confirm)
    n = share_n_init(share, **budgets)
    top = max_full_runs(**budgets)
    assert n <= top
    assert n >= min(3, top)


def test_confirmations_take_half_of_what_the_initial_full_runs_leave():
    assert confirm_count(36, total=6000.0, full=100.0, small=10.0) == 12  # 60 budgets: 36, 12 and 12 of short runs
    assert confirm_count(9, total=1500.0, full=100.0, small=10.0) == 3
    assert confirm_count(1, total=200.0, full=100.0, small=10.0) == 0  # a second full run leaves no short run
    assert iterations(36, total=6000.0, full=100.0, small=10.0, n_confirm=None) == 120


@given(runs=st.integers(1, 200), ratio=st.sampled_from([2.0, 10.0, 20.0]), data=st.data())
def test_default_confirmations_leave_short_runs_and_the_split_fits(runs, ratio, data):
    budgets = dict(total=runs * 100.0, full=100.0, small=100.0 / ratio)
    top = max_full_runs(n_confirm=None, **budgets)
    n = data.draw(st.integers(0, top))
    k = confirm_count(n, **budgets)
    assert 0 <= k <= runs - n
    assert iterations(n, n_confirm=None, **budgets) >= 1
    assert share_n_init(0.6, n_confirm=None, **budgets) <= top


def test_short_budget_ladder_doubles_up_to_half_the_full_budget():
    assert short_budget_ladder(10.0, 100.0) == [10.0, 20.0, 40.0]
    assert short_budget_ladder(5.0, 20.0) == [5.0, 10.0]
    assert short_budget_ladder(60.0, 100.0) == [60.0]


def test_the_cheapest_short_budget_that_pays_is_chosen():
    def evidence(f_rmse: float) -> ShortRunEvidence:
        return ShortRunEvidence(n_pairs=20, predictor_rmse=f_rmse, configuration_rmse=1.0)

    assert cheapest_paying({10.0: evidence(0.9), 20.0: evidence(0.3), 40.0: evidence(0.1)}) == 20.0
    assert cheapest_paying({10.0: evidence(0.9), 20.0: evidence(0.5)}) is None
    assert cheapest_paying({}) is None
