"""The analytic acquisitions' value and gradient at one point in numpy, and the continuous step that uses them.

The acquisition optimiser's continuous step (SLSQP over the continuous columns, the mixture on
its simplex) evaluates the acquisition one point at a time some 25 times per step. Through torch
each evaluation cost ~1-2 ms of per-call overhead for a few microseconds of arithmetic; here it
is two triangular solves and a few vector products. Used for the ARD Matérn-5/2 posterior
(`cotune.surrogate.acquisition.CachedPosterior`); other kernels keep BoTorch's step.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.linalg import solve_triangular
from scipy.optimize import minimize
from scipy.special import erfcx, log_ndtr

SQRT5 = math.sqrt(5.0)  # of the Matérn-5/2 kernel, shared with the torch posterior
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)
_LOG_SQRT_PI_DIV_2 = 0.5 * math.log(math.pi / 2.0)
#: SLSQP iterations per continuous step, as BoTorch's mixed optimiser allows.
MAX_ITER = 8


def log_h(u: float) -> float:
    """``log(phi(u) + u Phi(u))``, accurate for very negative ``u`` (BoTorch's `_log_ei_helper` branches)."""
    if u > -1.0:
        return math.log(math.exp(-0.5 * u * u - _LOG_SQRT_2PI) + u * 0.5 * math.erfc(-u / math.sqrt(2.0)))
    log_phi = -0.5 * u * u - _LOG_SQRT_2PI
    if u < -1e6:
        return log_phi - 2.0 * math.log(-u)
    w = math.log(float(erfcx(-u / math.sqrt(2.0))) * -u) + _LOG_SQRT_PI_DIV_2  # log(|u| Phi(u) / phi(u)) < 0
    return log_phi + (math.log(-math.expm1(w)) if w > -math.log(2.0) else math.log1p(-math.exp(w)))


class ClosedFormAcquisition:
    """``value, gradient = f(x)`` of a UCB or log-EI acquisition on a Matérn-5/2 `CachedPosterior`,
    ``x`` over the columns not fixed (the optimiser's space), in the acquisition's own units."""

    def __init__(self, posterior: Any, dim: int, fixed: dict[int, float], *, beta: float | None = None,
                 best_f: float | None = None) -> None:
        self.chol = posterior.chol.detach().numpy()
        self.alpha = posterior.alpha.detach().numpy()
        self.mean_constant = float(posterior.mean_constant)
        self.lengthscale = posterior.lengthscale.detach().numpy()
        self.train_Z = posterior.train_Z.detach().numpy()
        self.train_sq = (self.train_Z**2).sum(-1)
        self.free = np.array([i for i in range(dim) if i not in fixed], dtype=int)
        self.full = np.zeros(dim)
        for column, value in fixed.items():
            self.full[column] = value
        self.beta, self.best_f = beta, best_f

    def mean_var(self, x: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
        """Posterior mean and variance (standardised) at ``x`` and their gradients over the free columns."""
        full = self.full.copy()
        full[self.free] = x
        z = full / self.lengthscale
        sq = np.maximum(z @ z + self.train_sq - 2.0 * (self.train_Z @ z), 0.0)
        r = np.sqrt(sq)
        e = np.exp(-SQRT5 * r)
        k = (1.0 + SQRT5 * r + (5.0 / 3.0) * sq) * e
        v = solve_triangular(self.chol, k, lower=True, check_finite=False)
        mean = self.mean_constant + k @ self.alpha
        var = 1.0 - v @ v
        g = -(5.0 / 3.0) * (1.0 + SQRT5 * r) * e
        w_mean = g * self.alpha
        d_mean = (z * w_mean.sum() - w_mean @ self.train_Z) / self.lengthscale
        if var <= 1e-12:  # clamped, as the torch posterior is: no gradient
            return mean, 1e-12, d_mean[self.free], np.zeros(len(self.free))
        beta = solve_triangular(self.chol, v, lower=True, trans="T", check_finite=False)  # K^-1 k
        w_var = -2.0 * g * beta
        d_var = (z * w_var.sum() - w_var @ self.train_Z) / self.lengthscale
        return mean, var, d_mean[self.free], d_var[self.free]

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        mean, var, d_mean, d_var = self.mean_var(x)
        std = math.sqrt(var)
        d_std = d_var / (2.0 * std)
        if self.beta is not None:
            return mean + self.beta * std, d_mean + self.beta * d_std
        u = (mean - self.best_f) / std
        value = log_h(u)
        d_u = (d_mean - u * d_std) / std
        return value + math.log(std), math.exp(float(log_ndtr(u)) - value) * d_u + d_std / std


def continuous_step(acquisition: ClosedFormAcquisition, X: np.ndarray, continuous: Sequence[int],
                    bounds: np.ndarray, simplex: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Maximise ``acquisition`` over the ``continuous`` columns from each row of ``X`` (``r x d``), the
    other columns held; ``simplex`` columns (a subset of them) sum to one. SLSQP for `MAX_ITER`
    iterations, as BoTorch's `continuous_step`. Returns the points and their values."""
    continuous = np.asarray(continuous, dtype=int)
    position = {c: i for i, c in enumerate(continuous)}
    on_simplex = np.array([position[c] for c in simplex], dtype=int)
    low, high = bounds[0, continuous], bounds[1, continuous]
    constraints = []
    if len(on_simplex):
        normal = np.zeros(len(continuous))
        normal[on_simplex] = 1.0
        constraints = [{"type": "eq", "fun": lambda c: c @ normal - 1.0, "jac": lambda c: normal}]
    out, values = X.copy(), np.empty(len(X))
    for row, x in enumerate(X):
        point = x.copy()

        def negative(c: np.ndarray, point: np.ndarray = point) -> tuple[float, np.ndarray]:
            point[continuous] = c
            value, grad = acquisition(point)
            if not math.isfinite(value):
                return 1e10, np.zeros(len(c))
            return -value, -grad[continuous]

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            result = minimize(negative, np.clip(x[continuous], low, high), jac=True, method="SLSQP",
                              bounds=list(zip(low, high)), constraints=constraints, options={"maxiter": MAX_ITER})
        point[continuous] = np.clip(result.x, low, high)
        out[row] = point
        values[row] = acquisition(point)[0]
    return out, values
