"""The Matérn-5/2 GP's negative log marginal likelihood and its gradient in closed form, for its fits.

A hyperparameter fit evaluates the loss and its gradient some 30-60 times (L-BFGS). Through
GPyTorch each evaluation builds the kernel as a lazy tensor and back-propagates through it: ~6 ms
at 100 points, most of a proposal's time. Here it is one Cholesky factorisation, one inverse and
a few matrix products in numpy (``0.5 tr((a a^T - C^-1) dC)``, the standard identity), the
parameters' softplus constraints and log-normal priors differentiated by hand. The
value is the one ``ExactMarginalLogLikelihood`` gives, to rounding; BoTorch's fit (its bounds,
retries and warnings) runs on it unchanged. Other kernels keep GPyTorch's closure.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch
from botorch.optim.closures import get_loss_closure_with_grads
from botorch.optim.utils import get_parameters
from gpytorch.constraints import GreaterThan
from gpytorch.kernels import MaternKernel
from gpytorch.likelihoods import FixedNoiseGaussianLikelihood
from gpytorch.means import ConstantMean
from gpytorch.mlls import ExactMarginalLogLikelihood
from gpytorch.priors import LogNormalPrior
from scipy.linalg import cho_solve
from scipy.special import expit
from torch.nn import Softplus

from cotune.surrogate.closed_form import SQRT5

_LOG_2PI = math.log(2.0 * math.pi)
#: Above this torch's softplus is the identity.
_THRESHOLD = 20.0

#: The loss and the gradients of the fitted parameters, in their order: what BoTorch's fit calls.
Closure = Callable[[], tuple[torch.Tensor, tuple[torch.Tensor, ...]]]


def matern_loss_closure(mll: ExactMarginalLogLikelihood) -> Closure | None:
    """BoTorch's loss closure for ``mll`` computed in closed form, or None when the model is not the
    one it covers: an ARD Matérn-5/2 kernel without a scale, a constant mean, fixed plus learned noise,
    softplus constraints and log-normal priors (on the lengthscales and the learned noise only)."""
    model, likelihood = mll.model, mll.likelihood
    kernel = model.covar_module
    if not (is_plain_matern52(kernel) and isinstance(likelihood, FixedNoiseGaussianLikelihood)
            and likelihood.second_noise_covar is not None and isinstance(model.mean_module, ConstantMean)
            and len(model.train_inputs) == 1 and model.train_targets.dim() == 1):
        return None
    noise_module = likelihood.second_noise_covar
    parameters = get_parameters(mll, requires_grad=True)
    raw = {"likelihood.second_noise_covar.raw_noise": noise_module.raw_noise,
           "model.mean_module.raw_constant": model.mean_module.raw_constant,
           "model.covar_module.raw_lengthscale": kernel.raw_lengthscale}
    priors = {name: prior for name, _, prior, _, _ in model.named_priors()}
    constraints = (kernel.raw_lengthscale_constraint, noise_module.raw_noise_constraint)
    if (parameters.keys() != raw.keys() or any(parameters[k] is not v for k, v in raw.items())
            or priors.keys() != {"covar_module.lengthscale_prior", "likelihood.second_noise_covar.noise_prior"}
            or not all(isinstance(p, LogNormalPrior) and p._transform is None for p in priors.values())
            or not all(type(c) is GreaterThan and c.enforced and isinstance(c._transform, Softplus)
                        and (c._transform.beta, c._transform.threshold) == (1.0, _THRESHOLD) for c in constraints)):
        return None
    fallback = get_loss_closure_with_grads(mll, parameters=parameters)
    X = model.train_inputs[0].detach().numpy()
    X = X - X.mean(0)  # distances do not move; the products below lose less to cancellation
    y = model.train_targets.detach().numpy()
    fixed = likelihood.noise_covar.noise.detach().reshape(-1).numpy()
    n = len(y)
    lowers = [float(c.lower_bound) for c in constraints]
    log_normal = [(prior.loc.item(), prior.scale.detach().clone()) for prior in
                  (priors["covar_module.lengthscale_prior"], priors["likelihood.second_noise_covar.noise_prior"])]

    def closure() -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        raw_ls = kernel.raw_lengthscale.detach().numpy()  # 1 x d
        raw_noise = noise_module.raw_noise.detach().numpy()  # 1
        constant = model.mean_module.raw_constant.detach().item()
        ls, d_ls = _softplus(raw_ls, lowers[0])
        extra, d_extra = _softplus(raw_noise, lowers[1])
        Z = X / ls
        row = (Z**2).sum(1)
        sq = np.maximum(row[:, None] + row[None, :] - 2.0 * (Z @ Z.T), 0.0)
        np.fill_diagonal(sq, 0.0)
        r = np.sqrt(sq)
        e = np.exp(-SQRT5 * r)
        C = (1.0 + SQRT5 * r + (5.0 / 3.0) * sq) * e
        C[np.diag_indices(n)] += fixed + extra[0]
        try:
            L = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            return fallback()  # GPyTorch's jittered factorisation, or its NotPSDError for BoTorch's retries
        diff = y - constant
        alpha = cho_solve((L, True), diff, check_finite=False)
        log_likelihood = -0.5 * (diff @ alpha) - np.log(np.diag(L)).sum() - 0.5 * n * _LOG_2PI
        W = np.outer(alpha, alpha) - cho_solve((L, True), np.eye(n), check_finite=False)
        M = W * (-(5.0 / 6.0) * (1.0 + SQRT5 * r) * e)  # W times dK/d(squared scaled distance)
        # sum_ik M_ik (x_ij - x_kj)^2 for each column j, M symmetric
        spread = 2.0 * ((X**2).T @ M.sum(1)) - 2.0 * ((M @ X) * X).sum(0)
        prior_ls, dprior_ls = _log_normal(ls, *log_normal[0])
        prior_noise, dprior_noise = _log_normal(extra, *log_normal[1])
        value = -(log_likelihood + prior_ls.sum() + prior_noise.sum()) / n
        grad_ls = -(-spread / ls**3 + dprior_ls) * d_ls / n
        grad_noise = -(0.5 * np.trace(W) + dprior_noise) * d_extra / n
        grads = {"likelihood.second_noise_covar.raw_noise": grad_noise,
                 "model.mean_module.raw_constant": -alpha.sum() / n, "model.covar_module.raw_lengthscale": grad_ls}
        return (torch.tensor(value, dtype=kernel.raw_lengthscale.dtype),
                tuple(torch.as_tensor(np.reshape(grads[k], p.shape), dtype=p.dtype) for k, p in parameters.items()))

    return closure


def is_plain_matern52(kernel: torch.nn.Module) -> bool:
    """Whether ``kernel`` is gpytorch's Matérn-5/2 on all inputs with one set of lengthscales (no
    output scale, batch or active dimensions): the kernel the fits and the acquisition's posterior
    (`cotune.surrogate.acquisition.CachedPosterior`) compute in closed form."""
    return (isinstance(kernel, MaternKernel) and kernel.nu == 2.5 and kernel.active_dims is None
            and kernel.batch_shape == torch.Size([]) and kernel.lengthscale.shape[-2] == 1)


def _softplus(raw: np.ndarray, lower: float) -> tuple[np.ndarray, np.ndarray]:
    """GPyTorch's ``GreaterThan`` transform (torch's softplus, the identity above its threshold, plus
    the bound) and its derivative."""
    big = raw > _THRESHOLD
    safe = np.where(big, 0.0, raw)
    return np.where(big, raw, np.log1p(np.exp(safe))) + lower, np.where(big, 1.0, expit(safe))


def _log_normal(value: np.ndarray, loc: float, scale: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """The log-normal log density at ``value`` and its derivative; the scale's square and log in the
    precision of its buffer (float32 by default), as torch's ``Normal`` computes them."""
    var, log_scale = (scale**2).item(), scale.log().item()
    log = np.log(value)
    return (-((log - loc) ** 2) / (2.0 * var) - log_scale - 0.5 * _LOG_2PI - log,
            -(1.0 + (log - loc) / var) / value)
