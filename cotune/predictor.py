"""The performance predictor F: a configuration's full-budget score from its short-run score.

``F(x, y_b) -> y_B`` is an ensemble of MLPs (3 hidden layers of width 64, as in the JoBS paper).
Each member maps the unit-cube encoding ``x`` and the short-run score ``y_b`` (both standardised)
to the standardised *gain* ``y_B - y_b``; the prediction is ``y_b`` plus the ensemble's mean gain.
Predicting the gain rather than ``y_B`` itself makes "the short run already tells most of it"
the default a barely trained or heavily regularised network falls back on, which is what a
predictor learnt from a few dozen full runs needs (see `Predictor` for the comparison).

Every ensemble member, every cross-validation fold and every learning-curve subset is a separate
network with its own loss weights over the observations; all of them are trained together as one
batched computation (weights of shape ``models x in x out``, full-batch AdamW, fixed epochs), so
fitting with 5-fold cross-validation costs about one training.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from cotune.exceptions import CotuneError

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: Observations as ``(X, y_small, y_full)``: encodings ``n x d`` and ``n`` short and full scores.
Observations = tuple[np.ndarray, np.ndarray, np.ndarray]

#: Spreads below this are treated as zero when standardising (the column is then only centred).
_MIN_STD = 1e-12

#: Training and prediction precision; float32 halves the cost and is ample for standardised data.
_DTYPE = "float32"

#: Adam's moment decay rates and its denominator guard.
_BETAS, _EPS = (0.9, 0.999), 1e-8


class PredictorInputError(CotuneError, ValueError):
    """Observations given to the predictor have mismatched shapes, are empty or not finite."""


class NotFittedError(CotuneError, RuntimeError):
    """`Predictor.predict` was called before `Predictor.fit`."""


def _validate(X: Any, y_small: Any, y_full: Any = None, *, what: str = "observations") -> tuple[np.ndarray, ...]:
    """``X`` as ``n x d`` float64 and the scores as ``n`` vectors; raises `PredictorInputError`."""
    X = np.asarray(X, dtype=np.float64)
    y_small = np.asarray(y_small, dtype=np.float64)
    arrays = [X, y_small] if y_full is None else [X, y_small, np.asarray(y_full, dtype=np.float64)]
    shapes = ", ".join(f"{name} {a.shape}" for name, a in zip(("X", "y_small", "y_full"), arrays))
    n = X.shape[0] if X.ndim == 2 else -1
    if X.ndim != 2 or n == 0 or any(a.shape != (n,) for a in arrays[1:]):
        raise PredictorInputError(
            f"{what}: expected X of shape n x d with n >= 1 and scores of shape (n,), got {shapes}"
        )
    for name, a in zip(("X", "y_small", "y_full"), arrays):
        if not np.all(np.isfinite(a)):
            raise PredictorInputError(f"{what}: {name} contains NaN or inf ({shapes}); drop failed runs first")
    return tuple(arrays)


def _standardise(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted means and spreads of ``x`` (``N`` or ``N x p``) for each row of ``w`` (``M x N``, rows sum to 1).

    Returns ``M x 1 [x p]`` means and spreads; a spread below ``_MIN_STD`` becomes 1 (only centred).
    """
    mean = w @ x
    centred = x[None] - mean[:, None]
    var = np.einsum("mn,mn...->m...", w, centred**2)
    std = np.sqrt(var)
    return mean[:, None], np.where(std > _MIN_STD, std, 1.0)[:, None]


@dataclasses.dataclass(frozen=True)
class _Networks:
    """``M`` trained MLPs, each with the standardisation and input range of its own training data."""

    params: list[torch.Tensor]  # per layer: weight ``M x in x out``, bias ``M x 1 x out``
    x_mean: np.ndarray  # ``M x 1 x p``
    x_std: np.ndarray  # ``M x 1 x p``
    z_low: np.ndarray  # ``M x 1 x p``: smallest standardised training input
    z_high: np.ndarray  # ``M x 1 x p``: largest standardised training input
    t_mean: np.ndarray  # ``M x 1``
    t_std: np.ndarray  # ``M x 1``

    def select(self, models: slice) -> _Networks:
        """The networks ``models`` only."""
        return _Networks([p[models] for p in self.params], *(a[models] for a in (
            self.x_mean, self.x_std, self.z_low, self.z_high, self.t_mean, self.t_std)))

    def predict(self, inputs: np.ndarray) -> np.ndarray:
        """Every network's target prediction (score units) for ``inputs`` ``m x p``: ``M x m``.

        Standardised inputs are clipped to the network's training range: an MLP extrapolates
        wildly, and clipping makes it hold its boundary value instead (with a handful of points,
        a column's spread can be tiny and a new point dozens of spreads away). The short-run
        score still enters the prediction unclipped, as the gain is added to it.
        """
        import torch

        z = np.clip((inputs[None] - self.x_mean) / self.x_std, self.z_low, self.z_high)
        with torch.no_grad():
            out = _forward(self.params, torch.as_tensor(z, dtype=getattr(torch, _DTYPE)))[0]
        return out.squeeze(-1).numpy().astype(np.float64) * self.t_std + self.t_mean


def _forward(
    params: Sequence[torch.Tensor], z: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
    """Batched MLP with SiLU hidden layers.

    Args:
        params: Weight ``M x in x out`` and bias ``M x 1 x out`` of each layer, alternating.
        z: ``M x n x p`` inputs.

    Returns:
        The output ``M x n x 1``, the inputs of every layer and the pre-activations of the
        hidden layers (what backpropagation needs).
    """
    import torch

    layer_inputs, pre = [z], []
    h = z
    for i in range(0, len(params) - 2, 2):
        s = torch.baddbmm(params[i + 1], h, params[i])
        h = torch.nn.functional.silu(s)
        pre.append(s)
        layer_inputs.append(h)
    return torch.baddbmm(params[-1], h, params[-2]), layer_inputs, pre


def _adamw(init: Sequence[torch.Tensor], z: torch.Tensor, u: torch.Tensor, w: torch.Tensor, *, epochs: int,
           lr: float, weight_decay: float) -> list[torch.Tensor]:
    """Full-batch AdamW on ``sum_m sum_i w[m, i] * (net_m(z[m, i]) - u[m, i])**2`` for every network at once.

    Gradients are computed by hand and all parameters live in one flat buffer, so an epoch is a
    dozen batched matrix products and a handful of in-place vector updates (about twice as fast
    as autograd with ``torch.optim`` at these sizes).

    Args:
        init: Initial weight ``M x in x out`` and bias ``M x 1 x out`` of each layer, alternating.
        z: ``M x N x p`` standardised inputs.
        u: ``M x N`` standardised targets.
        w: ``M x N`` loss weights (rows sum to 1).

    Returns:
        The trained parameters, shaped like ``init``.
    """
    import torch

    flat = torch.cat([q.reshape(-1) for q in init])
    grad, m1, m2 = torch.zeros_like(flat), torch.zeros_like(flat), torch.zeros_like(flat)
    bounds = np.cumsum([0] + [q.numel() for q in init])
    params = [flat[lo:hi].view(q.shape) for lo, hi, q in zip(bounds[:-1], bounds[1:], init)]
    grads = [grad[lo:hi].view(q.shape) for lo, hi, q in zip(bounds[:-1], bounds[1:], init)]
    u, w2 = u.unsqueeze(-1), 2.0 * w.unsqueeze(-1)
    (b1, b2), last = _BETAS, len(params) - 2
    for step in range(1, epochs + 1):
        out, layer_inputs, pre = _forward(params, z)
        d = (out - u).mul_(w2)  # d loss / d output, ``M x N x 1``
        for i in range(last, -1, -2):
            if i < last:
                d = torch.ops.aten.silu_backward(d, pre[i // 2])
            torch.bmm(layer_inputs[i // 2].transpose(1, 2), d, out=grads[i])
            torch.sum(d, dim=1, keepdim=True, out=grads[i + 1])
            if i > 0:
                d = torch.bmm(d, params[i].transpose(1, 2))
        flat.mul_(1.0 - lr * weight_decay)
        m1.lerp_(grad, 1.0 - b1)
        m2.mul_(b2).addcmul_(grad, grad, value=1.0 - b2)
        denom = m2.sqrt().div_(math.sqrt(1.0 - b2**step)).add_(_EPS)
        flat.addcdiv_(m1, denom, value=-lr / (1.0 - b1**step))
    return params


class Predictor:
    """Ensemble of MLPs (3 hidden layers of width 64, as in the JoBS paper) predicting full-budget scores.

    The networks predict the standardised gain ``y_full - y_small`` from ``[x, y_small]`` and the
    prediction adds ``y_small`` back. This beat predicting ``y_full`` directly everywhere we
    looked (held-out RMSE, 5 seeds, 30 training points): 0.013 vs 0.022 on the landscape of
    ``tests/test_predictor.py``, 0.047 vs 0.050 with noise 0.02 on both scores, 0.012 vs 0.046 on
    the ``lora-mix`` bench landscape (``b = B / 10``); with 10 points 0.031 vs 0.057, 0.051 vs 0.070,
    0.026 vs 0.091. A network predicting ``y_full`` must first relearn the identity in ``y_small``.

    Members differ by their initial weights. ``predict``'s variance is the ensemble's spread only
    (the model's epistemic uncertainty); the cross-validated error `cv_rmse` measures the typical
    error and is the right noise level for a GP observation (``var + cv_rmse**2``).

    Cost on 2 CPU cores, 30 observations: ``fit`` 0.07 s, ``fit(..., cross_validate=True)``
    0.16 s, the default `learning_curve` (12 cross-validations, 300 networks) 1.9 s.

    Args:
        n_members: Ensemble size.
        hidden: Width of each hidden layer.
        n_layers: Number of hidden layers.
        epochs: Full-batch AdamW steps (fixed, no early stopping, so folds and members train alike).
        lr: AdamW learning rate.
        weight_decay: AdamW's decoupled weight decay; pulls a network with little data towards
            predicting the mean gain.
        prior_weight: Loss weight of a warm-start (prior) observation relative to one of the study's own.
        seed: Seed of the initial weights and of the cross-validation folds.
    """

    def __init__(self, *, n_members: int = 5, hidden: int = 64, n_layers: int = 3, epochs: int = 150,
                 lr: float = 3e-3, weight_decay: float = 0.1, prior_weight: float = 0.5, seed: int = 0) -> None:
        if min(n_members, hidden, n_layers, epochs) < 1:
            raise ValueError(
                f"n_members, hidden, n_layers and epochs must be >= 1, got {n_members}, {hidden}, {n_layers}, {epochs}"
            )
        if lr <= 0 or weight_decay < 0 or prior_weight <= 0:
            raise ValueError(
                f"need lr > 0, weight_decay >= 0, prior_weight > 0; got {lr}, {weight_decay}, {prior_weight}"
            )
        self.n_members, self.hidden, self.n_layers = n_members, hidden, n_layers
        self.epochs, self.lr, self.weight_decay = epochs, lr, weight_decay
        self.prior_weight, self.seed = prior_weight, seed
        self._networks: _Networks | None = None
        self._dim: int | None = None
        self._cv_rmse: float | None = None

    @property
    def cv_rmse(self) -> float | None:
        """k-fold cross-validated RMSE (score units) of the last ``fit(..., cross_validate=True)``, else None."""
        return self._cv_rmse

    @property
    def is_fitted(self) -> bool:
        """Whether `fit` has been called."""
        return self._networks is not None

    # ------------------------------------------------------------------ the target
    @staticmethod
    def _inputs(X: np.ndarray, y_small: np.ndarray) -> np.ndarray:
        """Network inputs ``n x (d + 1)``: the encoding and the short-run score."""
        return np.column_stack([X, y_small])

    @staticmethod
    def _target(y_small: np.ndarray, y_full: np.ndarray) -> np.ndarray:
        """What the networks learn: the gain from the short to the full budget."""
        return y_full - y_small

    @staticmethod
    def _untarget(y_small: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Full-budget scores from predicted targets (``... x m``) and the short-run scores ``m``."""
        return y_small + target

    # ------------------------------------------------------------------ training
    def _init_params(self, p: int, members: np.ndarray) -> list[torch.Tensor]:
        """Initial weights of each model (PyTorch's default uniform ``+-1/sqrt(fan_in)``).

        Model ``j`` starts like ensemble member ``members[j]``; each member's weights come from its
        own seeded ``torch.Generator``, so member ``i`` starts the same whether it is trained alone,
        next to cross-validation folds or in a learning curve.
        """
        import torch

        dtype = getattr(torch, _DTYPE)
        sizes = [p] + [self.hidden] * self.n_layers + [1]
        per_member = []
        for member in range(int(members.max()) + 1):
            seed = int(np.random.SeedSequence([self.seed, member]).generate_state(1)[0])
            gen = torch.Generator().manual_seed(seed)
            layers = []
            for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
                bound = 1.0 / math.sqrt(fan_in)
                layers.append((torch.rand(fan_in, fan_out, generator=gen, dtype=dtype) * 2 - 1) * bound)
                layers.append((torch.rand(1, fan_out, generator=gen, dtype=dtype) * 2 - 1) * bound)
            per_member.append(layers)
        index = torch.as_tensor(members)
        return [torch.stack([layers[i] for layers in per_member])[index] for i in range(len(per_member[0]))]

    def _train(self, inputs: np.ndarray, target: np.ndarray, weights: np.ndarray, members: np.ndarray) -> _Networks:
        """Train one network per row of ``weights``, all in one batched computation.

        Args:
            inputs: ``N x p`` raw network inputs.
            target: ``N`` raw targets.
            weights: ``M x N`` non-negative loss weights; a zero leaves the point out of that
                network's training and standardisation.
            members: ``M`` ensemble-member index of each network (selects its initial weights).
        """
        import torch

        dtype = getattr(torch, _DTYPE)
        w = weights / weights.sum(axis=1, keepdims=True)
        x_mean, x_std = _standardise(inputs, w)
        t_mean, t_std = _standardise(target, w)
        z = (inputs[None] - x_mean) / x_std  # ``M x N x p``
        used = (w > 0)[:, :, None]
        z_low = np.where(used, z, np.inf).min(axis=1, keepdims=True)
        z_high = np.where(used, z, -np.inf).max(axis=1, keepdims=True)
        u = (target[None] - t_mean) / t_std  # ``M x N``
        start = time.perf_counter()
        params = _adamw(self._init_params(inputs.shape[1], members), torch.as_tensor(z, dtype=dtype),
                        torch.as_tensor(u, dtype=dtype), torch.as_tensor(w, dtype=dtype),
                        epochs=self.epochs, lr=self.lr, weight_decay=self.weight_decay)
        logger.debug("trained %d networks on up to %d points for %d epochs in %.3f s",
                     len(w), int((w > 0).sum(axis=1).max()), self.epochs, time.perf_counter() - start)
        return _Networks(params, x_mean, x_std, z_low, z_high, t_mean, t_std)

    def _prior_arrays(self, prior: Observations | None, d: int) -> tuple[np.ndarray, np.ndarray]:
        """Inputs and targets of the warm-start observations (empty without a prior)."""
        if prior is None or len(prior[0]) == 0:
            return np.empty((0, d + 1)), np.empty(0)
        Xp, sp, fp = _validate(*prior, what="prior observations")
        if Xp.shape[1] != d:
            raise PredictorInputError(f"prior observations have X {Xp.shape}, the study's have {d} columns")
        return self._inputs(Xp, sp), self._target(sp, fp)

    def _prepare(self, X: Any, y_small: Any, y_full: Any, prior: Observations | None) -> tuple[np.ndarray, ...]:
        """Validated own observations and the stacked training arrays (own points first, then prior)."""
        X, y_small, y_full = _validate(X, y_small, y_full)
        prior_inputs, prior_target = self._prior_arrays(prior, X.shape[1])
        inputs = np.vstack([self._inputs(X, y_small), prior_inputs])
        target = np.concatenate([self._target(y_small, y_full), prior_target])
        return X, y_small, y_full, inputs, target

    def fit(self, X: np.ndarray, y_small: np.ndarray, y_full: np.ndarray, *, prior: Observations | None = None,
            cross_validate: bool = False, k: int = 5) -> Predictor:
        """Fit the ensemble to ``n`` observed (configuration, short score, full score) triples.

        Args:
            X: ``n x d`` unit-cube encodings.
            y_small: ``n`` short-run scores.
            y_full: ``n`` full-run scores.
            prior: Warm-start observations ``(X_prior, y_small_prior, y_full_prior)`` (``n_p x d``,
                ``n_p``, ``n_p``) from another study or a file, in the same encoding; trained on
                with weight ``prior_weight`` each and never held out in cross-validation. None or
                zero rows for none.
            cross_validate: Also train the k-fold models, in the same batched computation, and
                set `cv_rmse` (as `cross_validate` would return it).
            k: Number of folds (``min(k, n)`` are used).

        Returns:
            self.
        """
        X, y_small, y_full, inputs, target = self._prepare(X, y_small, y_full, prior)
        n, n_prior = len(y_small), len(target) - len(y_small)
        row = np.concatenate([np.ones(n), np.full(n_prior, self.prior_weight)])
        weights, members = np.tile(row, (self.n_members, 1)), np.arange(self.n_members)
        if cross_validate:
            self._check_cv(n, k)
            cv_weights, cv_members, held, group = self._cv_plan([np.arange(n)], n, n_prior, k)
            weights, members = np.vstack([weights, cv_weights]), np.concatenate([members, cv_members])
        networks = self._train(inputs, target, weights, members)
        self._networks, self._dim = networks.select(slice(0, self.n_members)), X.shape[1]
        self._cv_rmse = None
        if cross_validate:
            pred = networks.select(slice(self.n_members, None)).predict(inputs[:n])
            self._cv_rmse = float(self._cv_errors(pred, held, group, y_small, y_full)[0])
        return self

    def predict(self, X: np.ndarray, y_small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predicted full-budget scores of ``m`` configurations.

        Args:
            X: ``m x d`` unit-cube encodings.
            y_small: ``m`` short-run scores.

        Returns:
            ``(mean, variance)``, each ``m``, in score units: the ensemble's mean and its spread
            (population variance over members, floored at a tiny positive value). The variance
            leaves out the model's typical error; add ``cv_rmse**2`` for an observation noise.
        """
        if self._networks is None:
            raise NotFittedError("the predictor is not fitted yet; call fit() first")
        X, y_small = _validate(X, y_small, what="configurations to predict")
        if X.shape[1] != self._dim:
            raise PredictorInputError(f"X has shape {X.shape}; the predictor was fitted on {self._dim} columns")
        full = self._untarget(y_small, self._networks.predict(self._inputs(X, y_small)))  # ``members x m``
        floor = (1e-6 * float(self._networks.t_std.min())) ** 2
        return full.mean(axis=0), np.maximum(full.var(axis=0), floor)

    # ------------------------------------------------------------------ validation
    def _cv_plan(self, subsets: Sequence[np.ndarray], n: int, n_prior: int, k: int) -> tuple[np.ndarray, ...]:
        """Fold models for k-fold cross-validation inside each of ``subsets`` (own-point indices).

        Returns loss weights ``M x (n + n_prior)``, member indices ``M``, held-out masks ``M x n``
        and the subset index ``M`` of each model; models come in blocks of ``n_members`` that share
        a fold. Prior observations are trained on in every fold and never held out.
        """
        weights, members, held, group = [], [], [], []
        for g, subset in enumerate(subsets):
            k_g = min(k, len(subset))
            folds = np.random.default_rng([self.seed, 1, g]).permutation(len(subset)) % k_g
            for fold in range(k_g):
                row = np.concatenate([np.zeros(n), np.full(n_prior, self.prior_weight)])
                row[subset[folds != fold]] = 1.0
                out = np.zeros(n, dtype=bool)
                out[subset[folds == fold]] = True
                weights += [row] * self.n_members
                held += [out] * self.n_members
                members.append(np.arange(self.n_members))
                group += [g] * self.n_members
        return np.array(weights), np.concatenate(members), np.array(held), np.array(group)

    def _cv_errors(self, pred: np.ndarray, held: np.ndarray, group: np.ndarray, y_small: np.ndarray,
                   y_full: np.ndarray) -> np.ndarray:
        """Cross-validated RMSE per subset from the fold models' predictions ``M x n`` (target units)."""
        blocks = len(pred) // self.n_members
        mean = pred.reshape(blocks, self.n_members, -1).mean(axis=1)  # ensemble mean per fold
        sq = (self._untarget(y_small, mean) - y_full) ** 2  # ``blocks x n``
        held, group = held[:: self.n_members], group[:: self.n_members]
        out = np.empty(group.max() + 1)
        for g in range(len(out)):
            mask = held[group == g]
            out[g] = math.sqrt(float(sq[group == g][mask].mean()))
        return out

    @staticmethod
    def _check_cv(n: int, k: int) -> None:
        if k < 2:
            raise ValueError(f"cross-validation needs k >= 2 folds, got k={k}")
        if n < 2:
            raise PredictorInputError(f"cross-validation needs at least 2 observations, got {n}")

    def cross_validate(self, X: np.ndarray, y_small: np.ndarray, y_full: np.ndarray, *, k: int = 5,
                       prior: Observations | None = None) -> float:
        """k-fold cross-validated RMSE (score units) of a predictor with these settings.

        Each held-out point is predicted by the ensemble trained on the other folds (and on
        ``prior``, which is never held out). Trains fresh fold models; a fitted state is left alone.

        Args:
            X: ``n x d`` encodings, ``n >= 2``.
            y_small: ``n`` short-run scores.
            y_full: ``n`` full-run scores.
            k: Number of folds; ``min(k, n)`` are used (leave-one-out for tiny ``n``).
            prior: Warm-start observations as in `fit`.
        """
        X, y_small, y_full, inputs, target = self._prepare(X, y_small, y_full, prior)
        n = len(y_small)
        self._check_cv(n, k)
        return float(self._run_cv([np.arange(n)], inputs, target, y_small, y_full, k)[0])

    def learning_curve(self, X: np.ndarray, y_small: np.ndarray, y_full: np.ndarray, *,
                       sizes: Sequence[int] | None = None, k: int = 5, repeats: int = 3,
                       prior: Observations | None = None) -> list[tuple[int, float]]:
        """Cross-validated RMSE (score units) when only ``m`` of the observations are available, per ``m``.

        For each size, ``repeats`` random subsets of ``m`` points (nested across sizes) are each
        cross-validated with ``min(k, m)`` folds and the squared errors pooled; at ``m = n`` the
        repeats differ in their folds. Everything trains as one batched computation.

        Args:
            X: ``n x d`` encodings.
            y_small: ``n`` short-run scores.
            y_full: ``n`` full-run scores.
            sizes: Subset sizes in ``[2, n]``; default four sizes from about ``n / 4`` to ``n``.
            k: Folds per subset.
            repeats: Subsets per size.
            prior: Warm-start observations as in `fit`, in every training set, never held out.

        Returns:
            ``(m, rmse)`` pairs in increasing ``m``.
        """
        X, y_small, y_full, inputs, target = self._prepare(X, y_small, y_full, prior)
        n = len(y_small)
        self._check_cv(n, k)
        if repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {repeats}")
        if sizes is None:
            sizes = [max(2, round(n * f)) for f in (0.25, 0.5, 0.75, 1.0)]
        sizes = sorted({int(m) for m in sizes})
        if sizes[0] < 2 or sizes[-1] > n:
            raise ValueError(f"learning-curve sizes must lie in [2, {n}], got {sizes}")
        rng = np.random.default_rng([self.seed, 2])
        orders = [rng.permutation(n) for _ in range(repeats)]
        subsets = [order[:m] for m in sizes for order in orders]
        errors = self._run_cv(subsets, inputs, target, y_small, y_full, k)
        rmse = np.sqrt((errors.reshape(len(sizes), repeats) ** 2).mean(axis=1))
        return [(m, float(e)) for m, e in zip(sizes, rmse)]

    def _run_cv(self, subsets: Sequence[np.ndarray], inputs: np.ndarray, target: np.ndarray, y_small: np.ndarray,
                y_full: np.ndarray, k: int) -> np.ndarray:
        """Cross-validated RMSE inside each subset of own points, all subsets trained in one batch."""
        n = len(y_small)
        weights, members, held, group = self._cv_plan(subsets, n, len(target) - n, k)
        pred = self._train(inputs, target, weights, members).predict(inputs[:n])
        return self._cv_errors(pred, held, group, y_small, y_full)
