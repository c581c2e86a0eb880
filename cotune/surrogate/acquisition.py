"""Acquisition functions (IGP-UCB and log-EI) and their optimisation over the mixed joint space."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Container, Mapping
from typing import Any

import numpy as np
import torch
from botorch.acquisition.analytic import _log_ei_helper
from botorch.acquisition.acquisition import AcquisitionFunction
from botorch.exceptions import BotorchWarning
from botorch.generation.gen import gen_candidates_scipy
from botorch.optim.optimize import OptimizeAcqfInputs
from botorch.optim.optimize_mixed import continuous_step, discrete_step
from botorch.utils.sampling import manual_seed
from botorch.utils.transforms import t_batch_mode_transform

from cotune.exceptions import CotuneError
from cotune.space.design import random_encoded
from cotune.space.search_space import Config, SearchSpace
from cotune.surrogate import closed_form
from cotune.surrogate.gp import DTYPE, FittedGP, build_gp
from cotune.surrogate.marginal_likelihood import is_plain_matern52


def igp_ucb_beta(gp: FittedGP, *, rkhs_norm: float = 1.0, delta: float = 0.1) -> float:
    """Exploration weight of IGP-UCB (Chowdhury & Gopalan 2017), as in the JoBS regret bound.

    ``beta_t = B + R * sqrt(2 * (gamma_{t-1} + 1 + ln(1/delta)))`` with ``B`` the RKHS-norm bound
    (1 for standardised scores), ``R`` the sub-Gaussian noise scale (the root of the mean
    observation noise, so predicted points make the search explore more) and ``gamma`` the
    information gain of the points observed so far.
    """
    noise_scale = math.sqrt(gp.mean_noise_variance())
    return rkhs_norm + noise_scale * math.sqrt(2.0 * (gp.information_gain() + 1.0 + math.log(1.0 / delta)))


@dataclasses.dataclass(frozen=True, kw_only=True)
class AcquisitionOptions:
    """How hard to optimise the acquisition function (restarts, raw samples, iterations)."""

    kind: str = "ucb"
    num_restarts: int = 1
    raw_samples: int = 256
    maxiter_alternating: int = 3

    def __post_init__(self) -> None:
        if self.kind not in ("ucb", "logei"):
            raise CotuneError(f"unknown acquisition {self.kind!r}; use 'ucb' or 'logei'")


class CachedPosterior(torch.nn.Module):
    """The exact GP posterior of a fitted model with its training Cholesky factor computed once.

    Equal to ``model.posterior`` (tested) but several times faster per call, which matters because
    the acquisition optimiser evaluates it hundreds of times per proposal: with the ARD Matérn-5/2
    kernel the mean, variance and their gradients are computed in closed form (`_MaternPosterior`).
    """

    def __init__(self, gp: FittedGP) -> None:
        super().__init__()
        model = gp.model
        self.kernel = model.covar_module
        for param in self.kernel.parameters():
            param.requires_grad_(False)
        with torch.no_grad():
            self.train_X = model.train_inputs[0]  # ``n x d``
            noise = model.likelihood.noise_covar.noise + model.likelihood.second_noise_covar.noise.squeeze()
            K = self.kernel(self.train_X).to_dense() + torch.diag_embed(noise)  # ``n x n``
            self.chol = torch.linalg.cholesky(K)
            self.mean_constant = model.mean_module.constant.detach().squeeze()
            resid = (model.train_targets - self.mean_constant).unsqueeze(-1)
            self.alpha = torch.cholesky_solve(resid, self.chol).squeeze(-1)  # ``n``
            self.matern = is_plain_matern52(self.kernel)
            if self.matern:
                self.lengthscale = self.kernel.lengthscale.detach().reshape(-1)  # ``d``
                self.train_Z = self.train_X / self.lengthscale

    def mean(self, X: torch.Tensor) -> torch.Tensor:
        """X: ``b x d`` -> the posterior mean alone (standardised units), as `forward` computes it
        but without the variance's triangular solve (``n^2 b``: most of a call at a few hundred points)."""
        with torch.no_grad():
            if self.matern:
                return self.mean_constant + _matern_cross(X / self.lengthscale, self.train_Z)[0] @ self.alpha
            return self.mean_constant + self.kernel(X, self.train_X).to_dense() @ self.alpha

    def forward(self, X: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """X: ``b x d`` -> posterior mean and standard deviation (standardised units), each ``b``."""
        if self.matern:
            mean, var = _MaternPosterior.apply(X, self)
            return mean, var.clamp_min(1e-12).sqrt()
        k = self.kernel(X, self.train_X).to_dense()  # ``b x n``
        mean = self.mean_constant + k @ self.alpha
        v = torch.linalg.solve_triangular(self.chol, k.transpose(-1, -2), upper=False)  # ``n x b``
        prior_var = self.kernel(X, X, diag=True)
        var = (prior_var - (v**2).sum(-2)).clamp_min(1e-12)
        return mean, var.sqrt()


def _matern_cross(Z: torch.Tensor, T: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Matérn-5/2 between lengthscale-scaled points ``Z`` (``b x d``) and ``T`` (``n x d``): the kernel
    ``k``, the distances ``r`` and ``exp(-sqrt5 r)``, each ``b x n``."""
    sq = (Z**2).sum(-1, keepdim=True) + (T**2).sum(-1) - 2.0 * Z @ T.transpose(-1, -2)
    r = sq.clamp_min(1e-30).sqrt() * (sq > 0)
    e = torch.exp(-closed_form.SQRT5 * r)
    return (1.0 + closed_form.SQRT5 * r + (5.0 / 3.0) * r**2) * e, r, e


class _MaternPosterior(torch.autograd.Function):
    """Posterior mean and variance under an ARD Matérn-5/2 kernel, with analytic gradients.

    ``k(r) = (1 + sqrt5 r + 5/3 r^2) exp(-sqrt5 r)`` on lengthscale-scaled distances has
    ``dk/dx = g(r) (z - t) / l`` with ``g(r) = -5/3 (1 + sqrt5 r) exp(-sqrt5 r)``, smooth at ``r = 0``;
    the mean ``c + k a`` and variance ``1 - k K^-1 k`` follow. Autograd through the kernel's
    generic code costs most of an acquisition evaluation; this costs a few matrix products.
    """

    @staticmethod
    def forward(ctx: Any, X: torch.Tensor, post: CachedPosterior) -> tuple[torch.Tensor, torch.Tensor]:
        Z = X.detach() / post.lengthscale  # ``b x d``
        k, r, e = _matern_cross(Z, post.train_Z)
        v = torch.linalg.solve_triangular(post.chol, k.transpose(-1, -2), upper=False)  # ``n x b``
        mean = post.mean_constant + k @ post.alpha
        var = 1.0 - (v**2).sum(-2)
        ctx.save_for_backward(Z, r, e, v)
        ctx.post = post
        return mean, var

    @staticmethod
    def backward(ctx: Any, grad_mean: torch.Tensor, grad_var: torch.Tensor) -> tuple[torch.Tensor | None, None]:
        Z, r, e, v = ctx.saved_tensors
        post = ctx.post
        beta = torch.linalg.solve_triangular(post.chol.transpose(-1, -2), v, upper=True).transpose(-1, -2)  # ``b x n``
        g = -(5.0 / 3.0) * (1.0 + closed_form.SQRT5 * r) * e  # ``b x n``
        # d(mean)/dX and d(var)/dX are sums over training points of g * w * (z - t) / l, w = alpha or -2 beta
        W = g * (grad_mean.unsqueeze(-1) * post.alpha - 2.0 * grad_var.unsqueeze(-1) * beta)  # ``b x n``
        grad_X = (Z * W.sum(-1, keepdim=True) - W @ post.train_Z) / post.lengthscale
        return grad_X, None


class _CachedAnalytic(AcquisitionFunction):
    """An analytic single-point acquisition on a `CachedPosterior` (``gp``'s, or ``posterior`` when given:
    acquisitions on one GP can share it)."""

    def __init__(self, gp: FittedGP, posterior: CachedPosterior | None = None) -> None:
        super().__init__(model=gp.model)
        self.posterior_cache = posterior or CachedPosterior(gp)

    @t_batch_mode_transform(expected_q=1)
    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """X: ``b x 1 x d`` -> acquisition values ``b``."""
        mean, std = self.posterior_cache(X.squeeze(-2))  # ``b``, ``b``
        return self._value(mean, std)

    def _value(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class IGPUpperConfidenceBound(_CachedAnalytic):
    """``mean + beta * std`` with ``beta`` from the IGP-UCB schedule (`igp_ucb_beta`)."""

    def __init__(self, gp: FittedGP, beta: float) -> None:
        super().__init__(gp)
        self.beta = beta

    def _value(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return mean + self.beta * std


class CachedLogEI(_CachedAnalytic):
    """Log expected improvement over ``best_f`` (BoTorch's numerically stable formulation)."""

    def __init__(self, gp: FittedGP, best_f: float, posterior: CachedPosterior | None = None) -> None:
        super().__init__(gp, posterior)
        self.best_f = best_f

    def _value(self, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
        return _log_ei_helper((mean - self.best_f) / std) + std.log()


def make_acquisition(gp: FittedGP, kind: str, X_train: np.ndarray) -> AcquisitionFunction:
    """UCB with the IGP-UCB schedule, or log expected improvement over the best posterior mean."""
    if kind == "ucb":
        return IGPUpperConfidenceBound(gp, beta=igp_ucb_beta(gp))
    posterior = CachedPosterior(gp)
    best = float(posterior.mean(torch.as_tensor(X_train, dtype=DTYPE)).max())
    return CachedLogEI(gp, best_f=best, posterior=posterior)


def with_pending(gp: FittedGP, X: np.ndarray, y: np.ndarray, yvar: np.ndarray, X_pending: np.ndarray) -> FittedGP:
    """Condition on pending points with their posterior mean as observation (kriging believer),
    keeping the fitted hyperparameters, so a batch proposal does not repeat itself."""
    if len(X_pending) == 0:
        return gp
    mean, _ = gp.posterior_mean_std(X_pending)
    return build_gp(
        np.vstack([X, X_pending]), np.concatenate([y, mean]), np.concatenate([yvar, np.zeros(len(X_pending))]),
        kernel=gp.kernel, warm_start=gp.hyperparameters(), fit=False, standardise=(gp.y_mean, gp.y_std),
    )


def fix_features(acqf: AcquisitionFunction, dim: int, fixed: Mapping[int, float]) -> AcquisitionFunction:
    """``acqf`` (over ``dim`` columns) as a function of the columns not in ``fixed``, in order;
    the fixed columns take their given values (a block held still, or a fidelity)."""
    if not fixed:
        return acqf
    return FixedColumns(acqf, dim, {int(c): float(v) for c, v in fixed.items()})


class FixedColumns(AcquisitionFunction):
    """An acquisition over ``dim`` columns seen as a function of the others, ``fixed`` holding the rest
    (BoTorch's `FixedFeatureAcquisitionFunction`, kept simple so `closed_form` can see through it)."""

    def __init__(self, acqf: AcquisitionFunction, dim: int, fixed: dict[int, float]) -> None:
        super().__init__(model=acqf.model)
        self.base, self.dim, self.fixed = acqf, dim, fixed
        self.free = [i for i in range(dim) if i not in fixed]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """X: ``b x q x (dim - len(fixed))`` -> the base acquisition at the completed points."""
        full = X.new_empty((*X.shape[:-1], self.dim))
        full[..., self.free] = X
        for column, value in self.fixed.items():
            full[..., column] = value
        return self.base(full)


def closed_form_of(acqf: AcquisitionFunction) -> closed_form.ClosedFormAcquisition | None:
    """``acqf`` evaluated in numpy with its gradient (`cotune.surrogate.closed_form`), or None when
    it is not an analytic acquisition on a Matérn-5/2 cached posterior."""
    base, dim, fixed = acqf, None, {}
    if isinstance(acqf, FixedColumns):
        base, dim, fixed = acqf.base, acqf.dim, acqf.fixed
    if not isinstance(base, _CachedAnalytic) or not base.posterior_cache.matern:
        return None
    dim = dim or base.posterior_cache.train_X.shape[-1]
    if isinstance(base, IGPUpperConfidenceBound):
        return closed_form.ClosedFormAcquisition(base.posterior_cache, dim, fixed, beta=base.beta)
    if isinstance(base, CachedLogEI):
        return closed_form.ClosedFormAcquisition(base.posterior_cache, dim, fixed, best_f=base.best_f)
    return None


def optimize_acquisition(
    acqf: AcquisitionFunction,
    space: SearchSpace,
    *,
    seed: int,
    exclude: Container[str],
    options: AcquisitionOptions,
    embed: Callable[[Config], Config] | None = None,
) -> np.ndarray:
    """Maximise ``acqf`` over the joint space and return the best *trainable* encoded point (``d``).

    Starts from the best of ``raw_samples`` seeded uniform configurations (flat Dirichlet
    mixtures, discrete values on their grids), then alternates BoTorch's discrete local search
    (small integer, bool and choice dimensions) with a continuous step (SLSQP with the simplex
    as an equality constraint; large integer ranges relaxed), as `optimize_acqf_mixed_alternating`
    does but without its slow hit-and-run start; for Matérn acquisitions the continuous step runs
    in numpy on the closed-form value and gradient (`cotune.surrogate.closed_form`). The result is rounded to the configuration
    actually trained; if that is one of ``exclude`` (failed or already run), the best of the
    random candidates not excluded is used instead. When ``space`` is a block of the joint
    space, ``embed`` maps its configurations to the joint ones whose keys ``exclude`` holds.
    """
    d = space.dim
    bounds = torch.stack([torch.zeros(d, dtype=DTYPE), torch.ones(d, dtype=DTYPE)])
    if space.mixture_bounds:
        low, high = space.mixture_limits()
        bounds[0, space.mixture_dims], bounds[1, space.mixture_dims] = torch.as_tensor(low), torch.as_tensor(high)
    equality = None
    if len(space.domains) > 1:
        idx = torch.tensor(space.mixture_dims, dtype=torch.long)
        equality = [(idx, torch.ones(len(idx), dtype=DTYPE), 1.0)]
    discrete, categorical = space.discrete_dims(), space.categorical_dims()
    raw = torch.as_tensor(random_encoded(space, options.raw_samples, np.random.default_rng(seed)), dtype=DTYPE)
    with manual_seed(seed), warnings.catch_warnings():
        warnings.simplefilter("ignore", BotorchWarning)
        warnings.simplefilter("ignore", RuntimeWarning)
        with torch.no_grad():
            raw_values = acqf(raw.unsqueeze(-2))  # ``raw_samples``
        best_X = raw[raw_values.topk(min(options.num_restarts, len(raw))).indices].clone()  # ``r x d``
        inputs = OptimizeAcqfInputs(
            acq_function=acqf, bounds=bounds, q=1, num_restarts=len(best_X), raw_samples=None,
            options={}, inequality_constraints=None, equality_constraints=equality,
            nonlinear_inequality_constraints=None, fixed_features={}, post_processing_func=None,
            batch_initial_conditions=best_X.unsqueeze(-2), return_best_only=False,
            gen_candidates=gen_candidates_scipy, sequential=False, return_acq_values=True,
        )
        discrete_idx = torch.tensor(list(discrete), dtype=torch.long)
        categorical_idx = torch.tensor(list(categorical), dtype=torch.long)
        fast = closed_form_of(acqf)
        continuous = [i for i in range(d) if i not in discrete and i not in categorical]
        with torch.no_grad():
            best_values = acqf(best_X.unsqueeze(-2))
        for _ in range(options.maxiter_alternating):
            before = best_values.clone()
            if discrete or categorical:
                best_X, best_values = discrete_step(inputs, discrete, categorical, best_X)
            if fast is None:
                best_X, best_values = continuous_step(inputs, discrete_idx, categorical_idx, best_X)
            elif continuous:
                X_np, values = closed_form.continuous_step(fast, best_X.detach().numpy(), continuous, bounds.numpy(),
                                                           space.mixture_dims if equality else [])
                best_X, best_values = torch.as_tensor(X_np, dtype=DTYPE), torch.as_tensor(values, dtype=DTYPE)
            if bool((best_values - before < 1e-6).all()):
                break
    point = space.round(best_X[best_values.argmax()].detach().numpy())
    embed = embed or (lambda config: config)

    def allowed(p: np.ndarray) -> bool:
        return embed(space.decode(p)).key() not in exclude

    if allowed(point):
        return point
    return _best_random(acqf, space, seed=seed, allowed=allowed, n=options.raw_samples)


def _best_random(
    acqf: AcquisitionFunction, space: SearchSpace, *, seed: int, allowed: Callable[[np.ndarray], bool], n: int
) -> np.ndarray:
    rng = np.random.default_rng([seed, 1])
    points = [p for p in random_encoded(space, n, rng) if allowed(p)]
    if not points:
        raise CotuneError("every sampled configuration was already tried; the space may be exhausted")
    X = torch.as_tensor(np.stack(points), dtype=DTYPE).unsqueeze(1)
    with torch.no_grad():
        values = acqf(X)
    return points[int(values.argmax())]
