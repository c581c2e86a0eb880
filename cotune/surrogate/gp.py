"""Gaussian-process surrogates over the unit-cube encoding: ARD Matérn-5/2 or a deep kernel.

Observations carry a per-point noise variance: zero for measured full-budget scores and the
predictor's error for predicted ones (the heteroscedastic treatment of the JoBS paper's
Theorem 4.1); a homoscedastic noise term is learned on top for the measurement noise.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import warnings
from typing import Any

import numpy as np
import torch
from botorch.exceptions import InputDataWarning
from botorch.exceptions.errors import BotorchError, ModelFittingError
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import Kernel, MaternKernel
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior

from cotune.exceptions import CotuneError
from cotune.surrogate.marginal_likelihood import matern_loss_closure

logger = logging.getLogger(__name__)

DTYPE = torch.float64
#: `GPFitter` refits hyperparameters once the observations grew by this share since the last fit
#: (at every new observation up to 10 of them, every second one at 20, every fifth at 50).
REFIT_GROWTH = 0.1
#: Hyperparameters are fitted on at most this many observations (evenly spaced over the study), the
#: GP then conditions on all of them: a fit's cost grows with the cube of its points.
MAX_FIT_POINTS = 400
#: Smallest per-point noise variance in standardised units (keeps the Cholesky stable).
MIN_NOISE = 1e-6
#: What a marginal-likelihood fit raises when it fails numerically: BoTorch's "all attempts failed",
#: linear_operator's NotPSDError/NanError and torch's LinAlgError (RuntimeErrors), scipy's ValueErrors
#: on NaN or inf, floating-point errors.
_FIT_FAILURES = (ModelFittingError, BotorchError, RuntimeError, ValueError, ArithmeticError)


class DeepKernel(Kernel):
    """Matérn-5/2 on learned features: an MLP maps the encoding to a small feature space."""

    def __init__(self, dim: int, *, hidden: int = 32, features: int = 4) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Linear(dim, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, hidden), torch.nn.Tanh(),
            torch.nn.Linear(hidden, features),
        ).to(DTYPE)
        self.base = MaternKernel(nu=2.5, ard_num_dims=features)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, diag: bool = False, **params: Any) -> torch.Tensor:
        """x1: ``... x n x d``, x2: ``... x m x d`` -> ``... x n x m`` (``... x n`` if diag)."""
        return self.base.forward(self.net(x1), self.net(x2), diag=diag, **params)


def _covar_module(kernel: str, dim: int) -> Kernel:
    """The kernel on standardised scores: unit signal variance, as BoTorch's default models use."""
    if kernel == "matern":
        # BoTorch's dimension-scaled lengthscale prior, with a Matérn-5/2 kernel as in the paper.
        prior = LogNormalPrior(loc=math.sqrt(2) + 0.5 * math.log(dim), scale=math.sqrt(3))
        return MaternKernel(nu=2.5, ard_num_dims=dim, lengthscale_prior=prior,
                            lengthscale_constraint=GreaterThan(2.5e-2))
    if kernel == "deep":
        return DeepKernel(dim)
    raise CotuneError(f"unknown kernel {kernel!r}; use 'matern' or 'deep'")


@dataclasses.dataclass
class FittedGP:
    """A fitted GP with the standardisation it was fitted under (predictions in score units)."""

    model: SingleTaskGP
    y_mean: float
    y_std: float
    kernel: str

    def posterior_mean_std(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """X: ``m x d`` encoded points -> mean and standard deviation of the score, each ``m`` (the
        acquisition's closed-form posterior: GPyTorch's first prediction on a new GP costs ~20 ms)."""
        from cotune.surrogate.acquisition import CachedPosterior  # it builds on this module

        with torch.no_grad():
            mean, std = CachedPosterior(self)(torch.as_tensor(X, dtype=DTYPE))
        return mean.numpy() * self.y_std + self.y_mean, std.numpy() * self.y_std

    def hyperparameters(self) -> dict[str, torch.Tensor]:
        """Kernel, mean and learned-noise parameters, to warm-start or condition another GP."""
        return {k: v.clone() for k, v in self.model.state_dict().items() if "noise_covar.noise" not in k
                or "second" in k}

    def information_gain(self) -> float:
        """``0.5 log det(I + K)`` over the training points, the IGP-UCB information-gain term."""
        with torch.no_grad():
            X = self.model.train_inputs[0]
            K = self.model.covar_module(X).to_dense()
            eye = torch.eye(K.shape[-1], dtype=DTYPE)
            return float(0.5 * torch.logdet(eye + K))

    def mean_noise_variance(self) -> float:
        """Average observation noise variance in standardised units (fixed plus learned)."""
        with torch.no_grad():
            lik = self.model.likelihood
            fixed = lik.noise_covar.noise.mean()
            extra = lik.second_noise_covar.noise.squeeze() if lik.second_noise_covar is not None else 0.0
            return float(fixed + extra)


def build_gp(
    X: np.ndarray,
    y: np.ndarray,
    yvar: np.ndarray | None = None,
    *,
    kernel: str = "matern",
    warm_start: dict[str, torch.Tensor] | None = None,
    fit: bool = True,
    standardise: tuple[float, float] | None = None,
) -> FittedGP:
    """Build (and by default fit by marginal likelihood) a GP on encoded points.

    Args:
        X: ``n x d`` encoded configurations as trained, in ``[0, 1]^d``.
        y: ``n`` scores (measured or predicted).
        yvar: ``n`` noise variances of the scores in score units (0 for measured), or None.
        kernel: ``"matern"`` (ARD Matérn-5/2) or ``"deep"`` (MLP features into Matérn-5/2).
        warm_start: Hyperparameters of a previous fit to start from (or to use as they are
            when ``fit`` is False, e.g. to condition on pending points).
        fit: Whether to fit hyperparameters; False keeps ``warm_start``'s.
        standardise: ``(mean, std)`` to use instead of the data's own (to share units).
    """
    X_t = torch.as_tensor(np.asarray(X, dtype=np.float64), dtype=DTYPE)
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    if X_t.ndim != 2 or X_t.shape[0] != y.shape[0] or X_t.shape[0] == 0:
        raise CotuneError(f"GP needs n x d inputs and n targets with n >= 1, got X {tuple(X_t.shape)}, y {y.shape}")
    y_mean, y_std = _standardisation(y) if standardise is None else standardise
    Y_t = torch.as_tensor((y - y_mean) / y_std, dtype=DTYPE).unsqueeze(-1)
    var = np.zeros_like(y) if yvar is None else np.asarray(yvar, dtype=np.float64).reshape(-1)
    noise = torch.as_tensor(np.maximum(var / y_std**2, MIN_NOISE), dtype=DTYPE)
    likelihood = FixedNoiseGaussianLikelihood(
        noise=noise, learn_additional_noise=True, noise_prior=LogNormalPrior(loc=-4.0, scale=1.0)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", InputDataWarning)
        model = SingleTaskGP(X_t, Y_t, likelihood=likelihood, covar_module=_covar_module(kernel, X_t.shape[-1]),
                             outcome_transform=None)
    if warm_start is not None:
        model.load_state_dict(warm_start, strict=False)
    if fit:
        mll = ExactMarginalLogLikelihood(model.likelihood, model)
        try:
            # From a warm start one attempt is enough: no random restarts when L-BFGS merely warns.
            attempts = 5 if warm_start is None else 1
            fit_gpytorch_mll(mll, closure=matern_loss_closure(mll), optimizer_kwargs={"options": {"maxiter": 200}},
                             max_attempts=attempts)
        except _FIT_FAILURES as err:
            # A numerical failure (no attempt converged, a Cholesky or NaN error) must not stop the
            # study when a previous fit's hyperparameters are at hand; anything else is a bug and raises.
            if warm_start is None:
                raise
            logger.warning("GP fit on %d points failed (%s: %s); keeping the previous hyperparameters",
                           X_t.shape[0], type(err).__name__, err)
            model.load_state_dict(warm_start, strict=False)
    model.eval()
    return FittedGP(model=model, y_mean=y_mean, y_std=y_std, kernel=kernel)


def _standardisation(y: np.ndarray) -> tuple[float, float]:
    """The scores' mean and standard deviation (1 where they do not vary), the GP's units."""
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    return float(y.mean()), float(y.std()) if y.shape[0] > 1 and y.std() > 1e-12 else 1.0


class GPFitter:
    """Fits GPs to a study's growing observations, refitting hyperparameters only as often as they change.

    Hyperparameters are fitted by marginal likelihood (from the last fit's, a warm start) once the
    observations grew by `REFIT_GROWTH` since the last fit or changed as many times as that share
    of them (data a caller keeps at a fixed size, e.g. `cotune.methods.mfms.MAX_POINTS`), but
    never twice on the same data (the proposals of one batch, for workers freed together, share a
    fit). In between, the GP
    conditions on every observation with the last hyperparameters (a Cholesky factorisation
    instead of an L-BFGS fit, the bulk of a proposal's time with hundreds of observations). Above
    `MAX_FIT_POINTS` observations the fit sees an evenly spaced subset of them. A new fitter (a
    resumed study) fits at once.
    """

    def __init__(self, *, kernel: str = "matern") -> None:
        self.kernel = kernel
        self.warm: dict[str, torch.Tensor] | None = None
        self._fitted_n = 0
        self._seen = b""
        self._changes = 0

    def fit(self, X: np.ndarray, y: np.ndarray, yvar: np.ndarray | None = None) -> FittedGP:
        """The GP on ``n x d`` encoded points, ``n`` scores and ``n`` noise variances (`build_gp`)."""
        n = len(y)
        data = hashlib.sha1(b"".join(np.ascontiguousarray(a, dtype=np.float64).tobytes()
                                     for a in (X, y, np.zeros(n) if yvar is None else yvar))).digest()
        # a batch of proposals for free workers, with no new observation between them, shares one fit;
        # changes are counted, not points, so data a caller keeps at a fixed size is refitted too
        if data != self._seen:
            self._seen, self._changes = data, self._changes + 1
        refit = self.warm is None or (self._changes > 0 and (
            n < self._fitted_n or n >= self._fitted_n * (1 + REFIT_GROWTH)
            or self._changes >= REFIT_GROWTH * self._fitted_n))
        if refit and n > MAX_FIT_POINTS:
            subset = np.unique(np.linspace(0, n - 1, MAX_FIT_POINTS).round().astype(int))
            fitted = build_gp(X[subset], y[subset], None if yvar is None else np.asarray(yvar)[subset],
                              kernel=self.kernel, warm_start=self.warm, standardise=_standardisation(y))
            self.warm = fitted.hyperparameters()
        gp = build_gp(X, y, yvar, kernel=self.kernel, warm_start=self.warm, fit=refit and n <= MAX_FIT_POINTS)
        if refit:
            self.warm, self._fitted_n, self._changes = gp.hyperparameters(), n, 0
        return gp
