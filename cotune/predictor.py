"""The performance predictor F: full-budget score from a configuration and its short-run score.

An ensemble of MLPs (3 hidden layers of width 64, as in the JoBS paper) maps the unit-cube
encoding of a configuration and its standardised short-run score to the standardised *gain*
``y_full - y_small``; the prediction is ``y_small`` plus the ensemble's mean gain. Predicting
the gain rather than ``y_full`` itself makes "the short run already tells most of it" the
default, which is what a predictor learnt from a dozen full runs needs.

Every ensemble member and every cross-validation fold is trained in one batched computation
(weights of shape ``models x in x out``), so fitting with 5-fold CV costs one training.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np

from cotune.exceptions import CotuneError


@dataclasses.dataclass(frozen=True)
class _Standardiser:
    """Column means and spreads of the training inputs and of the target."""

    x_mean: np.ndarray
    x_std: np.ndarray
    t_mean: float
    t_std: float

    @classmethod
    def fit(cls, inputs: np.ndarray, target: np.ndarray) -> _Standardiser:
        x_std = inputs.std(axis=0)
        t_std = float(target.std())
        return cls(inputs.mean(axis=0), np.where(x_std > 1e-12, x_std, 1.0), float(target.mean()),
                   t_std if t_std > 1e-12 else 1.0)


def _check(X: np.ndarray, y_small: np.ndarray, y_full: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    X = np.asarray(X, dtype=np.float64)
    y_small = np.asarray(y_small, dtype=np.float64).reshape(-1)
    if X.ndim != 2 or X.shape[0] != y_small.shape[0] or X.shape[0] == 0:
        raise CotuneError(f"predictor needs X of shape n x d and n short scores with n >= 1, "
                          f"got X {X.shape} and y_small {y_small.shape}")
    arrays = [X, y_small]
    if y_full is not None:
        y_full = np.asarray(y_full, dtype=np.float64).reshape(-1)
        if y_full.shape != y_small.shape:
            raise CotuneError(f"y_full has shape {y_full.shape}, y_small {y_small.shape}; they must match")
        arrays.append(y_full)
    if not all(np.all(np.isfinite(a)) for a in arrays):
        raise CotuneError("predictor inputs contain NaN or inf; drop failed runs before fitting")
    return tuple(arrays)


class Predictor:
    """Ensemble of MLPs predicting a configuration's full-budget score from its short-run score.

    Args:
        n_members: Ensemble size; the spread of the members is the predictive variance.
        hidden: Width of each hidden layer.
        n_layers: Number of hidden layers.
        epochs: Full-batch Adam steps.
        lr: Adam learning rate.
        weight_decay: L2 penalty on the weights (the data sets are tiny).
        prior_weight: Loss weight of warm-start observations from other studies.
        seed: Seed of the initial weights and of the cross-validation folds.
    """

    def __init__(self, *, n_members: int = 5, hidden: int = 64, n_layers: int = 3, epochs: int = 200,
                 lr: float = 3e-3, weight_decay: float = 1e-3, prior_weight: float = 0.5, seed: int = 0) -> None:
        if n_members < 1 or hidden < 1 or n_layers < 1 or epochs < 1:
            raise CotuneError("n_members, hidden, n_layers and epochs must all be at least 1")
        self.n_members, self.hidden, self.n_layers = n_members, hidden, n_layers
        self.epochs, self.lr, self.weight_decay = epochs, lr, weight_decay
        self.prior_weight, self.seed = prior_weight, seed
        self._weights: list | None = None
        self._scale: _Standardiser | None = None
        self.cv_rmse: float | None = None

    # ------------------------------------------------------------------ training
    def _train(self, inputs: np.ndarray, target: np.ndarray, masks: np.ndarray, seed: int):
        """Train ``len(masks)`` MLPs at once; ``masks`` (``models x n``) weights each model's loss.

        inputs: ``n x p`` standardised; target: ``n`` standardised. Returns the weight list.
        """
        import torch

        gen = torch.Generator().manual_seed(seed)
        n_models, p = masks.shape[0], inputs.shape[1]
        sizes = [p] + [self.hidden] * self.n_layers + [1]
        weights = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            w = (torch.rand(n_models, fan_in, fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound
            b = (torch.rand(n_models, 1, fan_out, generator=gen, dtype=torch.float64) * 2 - 1) * bound
            weights += [w.requires_grad_(), b.requires_grad_()]
        x = torch.as_tensor(inputs).expand(n_models, -1, -1)  # ``models x n x p``
        y = torch.as_tensor(target)  # ``n``
        m = torch.as_tensor(masks)  # ``models x n``
        denom = m.sum(dim=1).clamp_min(1e-12)
        opt = torch.optim.Adam(weights, lr=self.lr, weight_decay=self.weight_decay)
        for _ in range(self.epochs):
            opt.zero_grad(set_to_none=True)
            pred = self._forward(weights, x)  # ``models x n``
            loss = (((pred - y) ** 2 * m).sum(dim=1) / denom).sum()
            loss.backward()
            opt.step()
        return [w.detach() for w in weights]

    @staticmethod
    def _forward(weights, x):
        """x: ``models x n x p`` -> ``models x n``."""
        import torch

        h = x
        for i in range(0, len(weights) - 2, 2):
            h = torch.nn.functional.silu(torch.baddbmm(weights[i + 1], h, weights[i]))
        return torch.baddbmm(weights[-1], h, weights[-2]).squeeze(-1)

    @staticmethod
    def _inputs(X: np.ndarray, y_small: np.ndarray) -> np.ndarray:
        return np.column_stack([X, y_small])

    def fit(self, X: np.ndarray, y_small: np.ndarray, y_full: np.ndarray, *,
            prior: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> Predictor:
        """Fit on ``n`` configurations: X ``n x d`` encodings, their short and full scores (``n`` each).

        ``prior`` adds observations from another study or a file (same encoding), with loss
        weight ``prior_weight``.
        """
        X, y_small, y_full = _check(X, y_small, y_full)
        inputs, gain, weight = self._inputs(X, y_small), y_full - y_small, np.ones(len(y_small))
        if prior is not None:
            Xp, sp, fp = _check(*prior)
            inputs = np.vstack([inputs, self._inputs(Xp, sp)])
            gain = np.concatenate([gain, fp - sp])
            weight = np.concatenate([weight, np.full(len(sp), self.prior_weight)])
        self._scale = _Standardiser.fit(inputs, gain)
        masks = np.tile(weight, (self.n_members, 1))
        self._weights = self._train(*self._standardise(inputs, gain), masks, self.seed)
        return self

    def _standardise(self, inputs: np.ndarray, gain: np.ndarray | None = None):
        s = self._scale
        z = (inputs - s.x_mean) / s.x_std
        return (z,) if gain is None else (z, (gain - s.t_mean) / s.t_std)

    def predict(self, X: np.ndarray, y_small: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Full-budget score mean and variance (the ensemble's spread) for ``m`` configurations.

        Args:
            X: ``m x d`` encodings; y_small: ``m`` short-run scores.

        Returns:
            mean ``m`` and variance ``m``, in score units.
        """
        import torch

        if self._weights is None:
            raise CotuneError("the predictor is not fitted yet; call fit() first")
        X, y_small = _check(X, y_small)
        (z,) = self._standardise(self._inputs(X, y_small))
        with torch.no_grad():
            out = self._forward(self._weights, torch.as_tensor(z).expand(self.n_members, -1, -1)).numpy()
        gains = out * self._scale.t_std + self._scale.t_mean  # ``members x m``
        return y_small + gains.mean(axis=0), gains.var(axis=0) + 1e-12

    # ------------------------------------------------------------------ validation
    def cross_validate(self, X: np.ndarray, y_small: np.ndarray, y_full: np.ndarray, *, k: int = 5) -> float:
        """k-fold cross-validated RMSE of the full-score prediction (score units); also stored in ``cv_rmse``."""
        import torch

        X, y_small, y_full = _check(X, y_small, y_full)
        n = len(y_small)
        if n < 2:
            raise CotuneError(f"cross-validation needs at least 2 observations, got {n}")
        k = min(k, n)
        folds = np.random.default_rng(self.seed).permutation(n) % k
        inputs, gain = self._inputs(X, y_small), y_full - y_small
        errors = np.empty(n)
        scale = _Standardiser.fit(inputs, gain)
        z, t = (inputs - scale.x_mean) / scale.x_std, (gain - scale.t_mean) / scale.t_std
        masks = np.repeat((folds[None, :] != np.arange(k)[:, None]).astype(np.float64), self.n_members, axis=0)
        weights = self._train(z, t, masks, self.seed)
        with torch.no_grad():
            out = self._forward(weights, torch.as_tensor(z).expand(len(masks), -1, -1)).numpy()
        out = out.reshape(k, self.n_members, n).mean(axis=1) * scale.t_std + scale.t_mean  # ``k x n`` gains
        for fold in range(k):
            held = folds == fold
            errors[held] = y_small[held] + out[fold, held] - y_full[held]
        self.cv_rmse = float(np.sqrt(np.mean(errors**2)))
        return self.cv_rmse

    def learning_curve(self, X: np.ndarray, y_small: np.ndarray, y_full: np.ndarray, *,
                       sizes: Sequence[int] | None = None, k: int = 5) -> list[tuple[int, float]]:
        """Cross-validated RMSE when only the first ``m`` (seeded order) observations are used, per size."""
        X, y_small, y_full = _check(X, y_small, y_full)
        n = len(y_small)
        sizes = sorted({int(s) for s in (sizes or np.linspace(max(2, n // 3), n, 4))})
        if sizes[0] < 2 or sizes[-1] > n:
            raise CotuneError(f"learning-curve sizes must lie in [2, {n}], got {sizes}")
        order = np.random.default_rng(self.seed + 1).permutation(n)
        curve = []
        for m in sizes:
            idx = order[:m]
            curve.append((m, self.cross_validate(X[idx], y_small[idx], y_full[idx], k=k)))
        return curve


def fit_error_curve(sizes: Sequence[float], errors: Sequence[float]) -> Callable[[float], float]:
    """Fit ``err(n) = a * n**(-c) + e_inf`` (``a, e_inf >= 0``, ``0 <= c <= 2``) to a learning curve.

    With fewer than three points, ``e_inf = 0`` and ``c = 0.5`` (the Monte Carlo rate) are assumed.
    """
    from scipy.optimize import least_squares

    n = np.asarray(sizes, dtype=np.float64)
    e = np.asarray(errors, dtype=np.float64)
    if n.shape != e.shape or n.size == 0 or np.any(n <= 0) or not np.all(np.isfinite(e)):
        raise CotuneError(f"need matching positive sizes and finite errors, got {list(n)} and {list(e)}")
    if n.size < 3:
        a = float(np.mean(e * np.sqrt(n)))
        return lambda m: a * float(m) ** -0.5
    start = [max(float(e[0] * n[0] ** 0.5), 1e-9), 0.5, max(float(e.min()) * 0.5, 0.0)]
    fit = least_squares(lambda p: p[0] * n ** -p[1] + p[2] - e, start,
                        bounds=([0.0, 0.0, 0.0], [np.inf, 2.0, np.inf]))
    a, c, e_inf = (float(v) for v in fit.x)
    return lambda m: a * float(m) ** -c + e_inf
