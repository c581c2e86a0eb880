"""The closed-form marginal likelihood equals GPyTorch's, value and gradient, and fits the same GP."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from botorch.optim.closures import get_loss_closure_with_grads
from botorch.optim.utils import get_parameters
from gpytorch.mlls import ExactMarginalLogLikelihood

import cotune.surrogate.gp as gp_module
from cotune.surrogate.gp import build_gp
from cotune.surrogate.marginal_likelihood import matern_loss_closure


def data(n: int, d: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    y = np.sin(3 * X @ rng.random(d)) + 0.01 * rng.standard_normal(n)
    return X, y, np.where(np.arange(n) % 2 == 0, 0.0, 1e-3)  # measured and predicted points


@pytest.mark.parametrize("n, d", [(1, 2), (7, 3), (60, 20)])
def test_loss_and_gradient_equal_gpytorchs_across_hyperparameters(n, d):
    model = build_gp(*data(n, d), fit=False).model
    mll = ExactMarginalLogLikelihood(model.likelihood, model).train()
    parameters = get_parameters(mll, requires_grad=True)
    reference, closed = get_loss_closure_with_grads(mll, parameters=parameters), matern_loss_closure(mll)
    rng = torch.Generator().manual_seed(1)
    for step in range(6):
        with torch.no_grad():  # wander through lengthscales, noise and mean
            for p in parameters.values():
                p.add_(torch.randn(p.shape, generator=rng, dtype=p.dtype) * 0.7)
            if step == 5:  # one lengthscale past softplus's threshold, one far below zero (no overflow)
                parameters["model.covar_module.raw_lengthscale"][0, 0] = 25.0
                parameters["model.covar_module.raw_lengthscale"][0, -1] = -800.0
        value, grads = reference()
        expected = (value.item(), [g.clone() for g in grads])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            value, grads = closed()
        assert value.item() == pytest.approx(expected[0], rel=1e-11)
        for got, want in zip(grads, expected[1]):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-13)


def test_a_fit_on_it_finds_gpytorchs_hyperparameters_and_other_kernels_keep_gpytorch(monkeypatch):
    X, y, yvar = data(40, 6, seed=2)
    closed = build_gp(X, y, yvar).hyperparameters()
    monkeypatch.setattr(gp_module, "matern_loss_closure", lambda mll: None)  # GPyTorch's own closure
    reference = build_gp(X, y, yvar).hyperparameters()
    assert closed.keys() == reference.keys()
    for name in closed:
        torch.testing.assert_close(closed[name], reference[name], rtol=1e-7, atol=1e-9)
    deep = build_gp(X, y, yvar, kernel="deep", fit=False).model
    assert matern_loss_closure(ExactMarginalLogLikelihood(deep.likelihood, deep)) is None
