"""The performance predictor F on a landscape where short runs misrank configurations."""

from __future__ import annotations

import numpy as np
import pytest

from cotune.exceptions import CotuneError
from cotune.predictor import Predictor, fit_error_curve


def landscape(n: int, seed: int, d: int = 6):
    """y_full = f(x); y_small = y_full - h(x): some configurations gain a lot with budget, some stagnate."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    full = 0.8 - (X[:, 0] - 0.4) ** 2 - 0.3 * (X[:, 1] - 0.6) ** 2
    gain = 0.02 + 0.25 * X[:, 2] * X[:, 3]
    small = full - gain + rng.normal(0, 0.003, n)
    return X, small, full + rng.normal(0, 0.003, n)


def rmse(a, b) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_beats_naive_baselines_and_cv_is_honest():
    X, small, full = landscape(30, seed=0)
    Xt, small_t, full_t = landscape(200, seed=1)
    predictor = Predictor(seed=0).fit(X, small, full)
    mean, var = predictor.predict(Xt, small_t)
    ours = rmse(mean, full_t)
    mean_gain = rmse(small_t + np.mean(full - small), full_t)
    mean_full = rmse(np.full_like(full_t, full.mean()), full_t)
    assert ours < 0.7 * mean_gain and ours < 0.5 * mean_full
    assert np.all(var > 0) and mean.shape == var.shape == (200,)
    cv = predictor.cross_validate(X, small, full)
    assert predictor.cv_rmse == cv
    assert 0.3 * ours < cv < 3 * ours


def test_learning_curve_falls_with_more_data():
    X, small, full = landscape(40, seed=2)
    curve = Predictor(seed=0).learning_curve(X, small, full, sizes=[8, 20, 40])
    assert [m for m, _ in curve] == [8, 20, 40]
    assert curve[-1][1] < curve[0][1]


def test_fit_error_curve_recovers_a_power_law():
    sizes = [5, 10, 20, 40]
    error = fit_error_curve(sizes, [0.3 * n**-0.7 + 0.01 for n in sizes])
    assert error(80) == pytest.approx(0.3 * 80**-0.7 + 0.01, rel=1e-3)
    two_points = fit_error_curve([4, 16], [0.1, 0.05])
    assert two_points(64) == pytest.approx(0.025, rel=1e-6)


def test_same_seed_same_predictions_other_seed_differs():
    X, small, full = landscape(15, seed=3)
    a = Predictor(seed=4).fit(X, small, full).predict(X, small)[0]
    b = Predictor(seed=4).fit(X, small, full).predict(X, small)[0]
    c = Predictor(seed=5).fit(X, small, full).predict(X, small)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_warm_start_from_prior_runs_helps_a_young_study():
    X, small, full = landscape(5, seed=6)
    prior = landscape(60, seed=7)
    Xt, small_t, full_t = landscape(200, seed=8)
    cold = rmse(Predictor(seed=0).fit(X, small, full).predict(Xt, small_t)[0], full_t)
    warm = rmse(Predictor(seed=0).fit(X, small, full, prior=prior).predict(Xt, small_t)[0], full_t)
    assert warm < 0.7 * cold


def test_tiny_data_and_bad_input():
    X, small, full = landscape(3, seed=9)
    predictor = Predictor(seed=0).fit(X, small, full)
    assert np.isfinite(predictor.cross_validate(X, small, full))
    with pytest.raises(CotuneError, match="must match"):
        predictor.fit(X, small, full[:2])
    with pytest.raises(CotuneError, match="NaN"):
        predictor.fit(X, small, np.array([0.1, np.nan, 0.2]))
    with pytest.raises(CotuneError, match="not fitted"):
        Predictor().predict(X, small)
