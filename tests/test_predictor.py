"""The performance predictor F on a landscape where short runs misrank configurations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cotune.exceptions import CotuneError
from cotune.allocation import ErrorCurve, fit_error_curve
from cotune.predictor import NotFittedError, Predictor, PredictorInputError


def landscape(n: int, seed: int, d: int = 6, noise: float = 0.003) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``y_full = f(x)``, ``y_small = y_full - h(x)``: some configurations gain a lot with budget, some stagnate."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    full = 0.8 - (X[:, 0] - 0.4) ** 2 - 0.3 * (X[:, 1] - 0.6) ** 2 + 0.05 * np.sin(3 * X[:, 4])
    gain = 0.02 + 0.25 * X[:, 2] * X[:, 3] + 0.05 * X[:, 0]
    small = full - gain + rng.normal(0, noise, n)
    return X, small, full + rng.normal(0, noise, n)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


TRAIN, TEST = landscape(30, seed=0), landscape(300, seed=1)


class DirectPredictor(Predictor):
    """The alternative design: learn ``y_full`` itself instead of the gain."""

    @staticmethod
    def _target(y_small: np.ndarray, y_full: np.ndarray) -> np.ndarray:
        return y_full

    @staticmethod
    def _untarget(y_small: np.ndarray, target: np.ndarray) -> np.ndarray:
        return target + 0.0 * y_small


def test_beats_naive_baselines_and_cv_is_honest():
    (X, small, full), (Xt, small_t, full_t) = TRAIN, TEST
    predictor = Predictor(seed=0).fit(X, small, full, cross_validate=True)
    mean, var = predictor.predict(Xt, small_t)
    ours = rmse(mean, full_t)
    mean_gain = rmse(small_t + np.mean(full - small), full_t)
    mean_full = rmse(np.full_like(full_t, full.mean()), full_t)
    assert ours < 0.4 * mean_gain and ours < 0.25 * mean_full
    assert mean.shape == var.shape == (300,) and np.all(var > 0)
    assert predictor.cv_rmse is not None and 0.4 * ours < predictor.cv_rmse < 3 * ours
    # The CV trained next to the final ensemble equals a separate cross-validation run.
    assert predictor.cross_validate(X, small, full) == pytest.approx(predictor.cv_rmse, rel=1e-4)


def test_predicting_the_gain_beats_predicting_the_full_score():
    (X, small, full), (Xt, small_t, full_t) = TRAIN, TEST
    gain = rmse(Predictor(seed=0).fit(X, small, full).predict(Xt, small_t)[0], full_t)
    direct = rmse(DirectPredictor(seed=0).fit(X, small, full).predict(Xt, small_t)[0], full_t)
    assert gain < 0.8 * direct


def test_learning_curve_falls_with_more_data():
    X, small, full = landscape(40, seed=2)
    curve = Predictor(seed=0).learning_curve(X, small, full, sizes=[40, 6, 15], repeats=2)
    assert [m for m, _ in curve] == [6, 15, 40]
    errors = [e for _, e in curve]
    assert all(np.isfinite(errors)) and errors[2] < errors[1] < errors[0]
    default = Predictor(seed=0).learning_curve(X[:12], small[:12], full[:12], repeats=1)
    assert [m for m, _ in default] == [3, 6, 9, 12]
    with pytest.raises(ValueError, match="sizes"):
        Predictor().learning_curve(X, small, full, sizes=[1, 10])


def test_fit_error_curve_recovers_a_known_power_law():
    sizes = [5, 10, 20, 40, 80]
    curve = fit_error_curve(sizes, [0.3 * n**-0.7 + 0.01 for n in sizes])
    assert isinstance(curve, ErrorCurve)
    assert (curve.a, curve.c, curve.e_inf) == pytest.approx((0.3, 0.7, 0.01), rel=1e-3)
    assert curve(160) == pytest.approx(0.3 * 160**-0.7 + 0.01, rel=1e-4)
    two = fit_error_curve([4, 16], [0.1, 0.05])
    assert (two.a, two.c, two.e_inf) == pytest.approx((0.2, 0.5, 0.0))
    one = fit_error_curve([25], [0.1])
    assert one(100) == pytest.approx(0.05)
    rising = fit_error_curve([5, 10, 20], [0.1, 0.12, 0.11])
    assert rising.c >= 0 and rising(1000) >= 0
    assert fit_error_curve([5, 10], [0.0, 0.0])(20) == 0.0
    with pytest.raises(ValueError, match="sizes"):
        fit_error_curve([5, 10], [0.1])
    with pytest.raises(ValueError, match="sizes"):
        fit_error_curve([0, 10], [0.1, 0.05])


@settings(max_examples=25, deadline=None, derandomize=True)
@given(a=st.floats(0.05, 3.0), c=st.floats(0.2, 1.5), e_inf=st.floats(0.0, 0.05), points=st.integers(3, 5))
def test_fit_error_curve_extrapolates_exact_power_laws(a: float, c: float, e_inf: float, points: int):
    sizes = [4 * 2**i for i in range(points)]
    curve = fit_error_curve(sizes, [a * n**-c + e_inf for n in sizes])
    for n in (sizes[-1], 2 * sizes[-1]):
        assert curve(n) == pytest.approx(a * n**-c + e_inf, rel=0.02)


def test_same_seed_same_predictions_other_seed_differs():
    X, small, full = landscape(15, seed=3)
    a = Predictor(seed=4).fit(X, small, full).predict(X, small)
    b = Predictor(seed=4).fit(X, small, full).predict(X, small)
    c = Predictor(seed=5).fit(X, small, full).predict(X, small)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    assert Predictor(seed=4).cross_validate(X, small, full) == Predictor(seed=4).cross_validate(X, small, full)
    # The final ensemble does not depend on whether cross-validation folds trained beside it.
    with_cv = Predictor(seed=4).fit(X, small, full, cross_validate=True).predict(X, small)
    np.testing.assert_allclose(with_cv[0], a[0], rtol=1e-5)


def test_warm_start_from_prior_runs_helps_a_young_study():
    X, small, full = landscape(5, seed=6)
    prior = landscape(60, seed=7)
    _, (Xt, small_t, full_t) = TRAIN, TEST
    cold = Predictor(seed=0).fit(X, small, full, cross_validate=True)
    warm = Predictor(seed=0).fit(X, small, full, prior=prior, cross_validate=True)
    assert rmse(warm.predict(Xt, small_t)[0], full_t) < 0.5 * rmse(cold.predict(Xt, small_t)[0], full_t)
    assert warm.cv_rmse < cold.cv_rmse
    empty = (np.empty((0, 6)), np.empty(0), np.empty(0))
    np.testing.assert_array_equal(Predictor().fit(X, small, full, prior=empty).predict(X, small)[0],
                                  Predictor().fit(X, small, full).predict(X, small)[0])


def test_prior_points_are_never_held_out():
    """Prior points with absurd full scores and negligible weight would dominate any error they entered."""
    X, small, full = landscape(8, seed=10)
    Xp, small_p, full_p = landscape(20, seed=11)
    poisoned = (Xp, small_p, full_p + 100.0)
    predictor = Predictor(seed=0, prior_weight=1e-9)
    assert predictor.cross_validate(X, small, full, prior=poisoned) < 1.0
    assert all(e < 1.0 for _, e in predictor.learning_curve(X, small, full, sizes=[4, 8], repeats=1, prior=poisoned))


def test_tiny_data():
    X, small, full = landscape(3, seed=9)
    predictor = Predictor(seed=0).fit(X, small, full, cross_validate=True)
    assert np.isfinite(predictor.cv_rmse) and predictor.cv_rmse < 0.3
    Xt, small_t, full_t = landscape(50, seed=12)
    mean, var = predictor.predict(Xt, small_t)
    assert np.all(np.isfinite(mean)) and np.all(var > 0)
    assert rmse(mean, full_t) < 0.3
    one = Predictor(seed=0).fit(X[:1], small[:1], full[:1])
    # One observation: the short score plus its gain, whatever the configuration.
    np.testing.assert_allclose(one.predict(Xt, small_t)[0], small_t + (full[0] - small[0]), atol=1e-4)
    with pytest.raises(PredictorInputError, match="at least 2"):
        one.cross_validate(X[:1], small[:1], full[:1])


def test_bad_input_is_a_value_error_naming_the_shapes():
    X, small, full = landscape(4, seed=9)
    predictor = Predictor(seed=0)
    with pytest.raises(NotFittedError, match="not fitted"):
        predictor.predict(X, small)
    with pytest.raises(ValueError, match=r"y_full \(3,\)"):
        predictor.fit(X, small, full[:3])
    with pytest.raises(ValueError, match=r"X \(4,\)"):
        predictor.fit(X[:, 0], small, full)
    with pytest.raises(ValueError, match="n >= 1"):
        predictor.fit(X[:0], small[:0], full[:0])
    with pytest.raises(ValueError, match="y_full contains NaN"):
        predictor.fit(X, small, np.array([0.1, np.nan, 0.2, 0.3]))
    with pytest.raises(ValueError, match="prior observations"):
        predictor.fit(X, small, full, prior=(X[:, :3], small, full))
    with pytest.raises(ValueError, match="k >= 2"):
        predictor.cross_validate(X, small, full, k=1)
    predictor.fit(X, small, full)
    with pytest.raises(ValueError, match="fitted on 6 columns"):
        predictor.predict(X[:, :5], small)
    with pytest.raises(ValueError, match="n_members"):
        Predictor(n_members=0)
    assert issubclass(PredictorInputError, CotuneError) and issubclass(NotFittedError, CotuneError)


def test_import_is_cheap():
    code = "import sys, cotune.predictor; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
