"""The numpy acquisitions and continuous step equal the torch ones they stand in for."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from botorch.acquisition.analytic import _log_ei_helper

import cotune
from cotune.space import random_encoded
from cotune.surrogate import closed_form
from cotune.surrogate.acquisition import (
    CachedLogEI,
    IGPUpperConfidenceBound,
    closed_form_of,
    fix_features,
    make_acquisition,
)
from cotune.surrogate.gp import build_gp

SPACE = cotune.lora_space(["a", "b", "c", "d"], n_layers=8)


def fitted(kernel: str = "matern", n: int = 30):
    rng = np.random.default_rng(0)
    X = random_encoded(SPACE, n, rng)
    y = np.sin(3 * X[:, 0]) + X[:, 5] - (X[:, 1] - 0.3) ** 2 + 0.01 * rng.standard_normal(n)
    return build_gp(X, y, np.where(np.arange(n) % 2 == 0, 0.0, 1e-3), kernel=kernel), X


@pytest.mark.parametrize("u", [-1e8, -2e6, -1e3, -37.5, -5.0, -1.0, -0.999, 0.0, 0.7, 6.0])
def test_log_h_equals_botorch(u):
    expected = float(_log_ei_helper(torch.tensor(u, dtype=torch.float64)))
    assert closed_form.log_h(u) == pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("make", [
    lambda gp: IGPUpperConfidenceBound(gp, beta=1.7),
    lambda gp: CachedLogEI(gp, best_f=0.3),
    lambda gp: CachedLogEI(gp, best_f=25.0),  # far above the posterior: log-EI's asymptotic branch
])
@pytest.mark.parametrize("fixed", [{}, {2: 0.25, 9: 0.6}])
def test_values_and_gradients_equal_the_torch_acquisition(make, fixed):
    gp, X = fitted()
    acqf = fix_features(make(gp), SPACE.dim, fixed)
    fast = closed_form_of(acqf)
    free = [i for i in range(SPACE.dim) if i not in fixed]
    points = np.vstack([random_encoded(SPACE, 6, np.random.default_rng(3)), X[:1]])[:, free]  # a training point too
    for point in points:
        x = torch.as_tensor(point).reshape(1, 1, -1).requires_grad_(True)
        value = acqf(x).sum()
        (grad,) = torch.autograd.grad(value, x)
        ours, our_grad = fast(point)
        assert np.abs(grad.numpy()).max() > 1e-3  # a slope worth comparing
        assert ours == pytest.approx(float(value.detach()), rel=1e-9, abs=1e-9)
        np.testing.assert_allclose(our_grad, grad.numpy().ravel(), rtol=1e-6, atol=1e-8)


def test_only_matern_analytic_acquisitions_have_a_closed_form():
    gp, X = fitted("deep")
    assert closed_form_of(make_acquisition(gp, "ucb", X)) is None
    gp, X = fitted()
    assert closed_form_of(make_acquisition(gp, "logei", X)) is not None


def test_continuous_step_climbs_within_bounds_on_the_simplex():
    gp, X = fitted()
    acqf = make_acquisition(gp, "ucb", X)
    fast = closed_form_of(acqf)
    starts = random_encoded(SPACE, 4, np.random.default_rng(11))
    discrete = set(SPACE.discrete_dims()) | set(SPACE.categorical_dims())
    continuous = [i for i in range(SPACE.dim) if i not in discrete]
    bounds = np.stack([np.zeros(SPACE.dim), np.ones(SPACE.dim)])
    points, values = closed_form.continuous_step(fast, starts, continuous, bounds, SPACE.mixture_dims)
    before = np.array([fast(s)[0] for s in starts])
    assert np.all(values >= before - 1e-9) and np.any(values > before + 1e-3)
    np.testing.assert_allclose(points[:, SPACE.mixture_dims].sum(1), 1.0, atol=1e-6)
    assert np.all(points >= -1e-12) and np.all(points <= 1 + 1e-12)
    np.testing.assert_array_equal(points[:, sorted(discrete)], starts[:, sorted(discrete)])  # held
    torch.testing.assert_close(acqf(torch.as_tensor(points).unsqueeze(1)), torch.as_tensor(values))
