"""What a short run is worth, measured from a study's own data (DESIGN item 8).

Two models of a configuration's full-budget score are compared on the same points:

- ``F``, the performance predictor, from the configuration *and* its short-run score, by k-fold
  cross-validation on the (short, full) pairs of the full runs, and, once the search has run,
  by its predictions of the confirmation runs made *before* they ran: an out-of-sample test
  exactly where the search went;
- a GP on the configuration *alone*, fitted to the full runs, by leave-one-out at the pairs, and
  at each confirmation from the full runs made before it (as F's prediction was).

Short runs pay when ``F``'s squared error is well below the configuration-only model's: then a
short run says something about the full run that the configuration does not. Where the search
went, ``F``'s error is compared with the configuration-only model's typical (leave-one-out) error:
the configuration-only model's own error at the confirmations is shown, not used, as they are
picked where it is confident. How the budget
acts on this lives in `cotune.allocation`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Confirmations F must have predicted before their error replaces the cross-validated one.
MIN_CHECKED = 3


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShortRunEvidence:
    """F against a model of the configuration alone, in RMSE of the full-budget score.

    Args:
        n_pairs: Full runs with a short-run score (F's training pairs).
        predictor_rmse: F's k-fold cross-validated RMSE on the pairs.
        configuration_rmse: Leave-one-out RMSE, at the pairs, of a GP on the configuration alone.
        n_checked: Confirmation runs whose full score F predicted from their short run before they ran.
        checked_predictor_rmse: F's RMSE on those (None without any).
        checked_configuration_rmse: The configuration-only GP's RMSE at them, each predicted from
            the full runs before it.
    """

    n_pairs: int
    predictor_rmse: float
    configuration_rmse: float
    n_checked: int = 0
    checked_predictor_rmse: float | None = None
    checked_configuration_rmse: float | None = None

    @property
    def checked(self) -> bool:
        """Whether enough confirmations were predicted for their error to be the one that counts."""
        return self.n_checked >= MIN_CHECKED and self.checked_predictor_rmse is not None

    @property
    def explained(self) -> float:
        """Share of the configuration-only model's squared error that F removes, by
        cross-validation on the pairs: 1 when F is exact, 0 when it is no better, negative when worse."""
        return _explained(self.predictor_rmse, self.configuration_rmse)

    @property
    def explained_where_searched(self) -> float | None:
        """The same share with F's error on the confirmations (where the search went) in place of
        its cross-validated one; None before `MIN_CHECKED` confirmations."""
        return _explained(self.checked_predictor_rmse, self.configuration_rmse) if self.checked else None

    @property
    def noise_variance(self) -> float:
        """The error variance F's predictions enter the GP with: the larger of its cross-validated
        error and its error on the confirmations (where the search goes)."""
        checked = self.checked_predictor_rmse if self.checked else 0.0
        return max(self.predictor_rmse, checked or 0.0) ** 2

    def describe(self) -> str:
        """One line for `cotune status` and the report."""
        text = (f"short runs explain {max(0.0, self.explained):.0%} of the full-score variance beyond the "
                f"configuration alone (cross-validated on {self.n_pairs} full runs: F's error "
                f"{self.predictor_rmse:.4g}, the configuration alone {self.configuration_rmse:.4g})")
        if self.checked:
            text += (f"; on {self.n_checked} confirmations F predicted beforehand its error was "
                     f"{self.checked_predictor_rmse:.4g} ({max(0.0, self.explained_where_searched):.0%} explained), "
                     f"the configuration alone's from the full runs before each {self.checked_configuration_rmse:.4g}")
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form stored with the study, with the explained shares."""
        return {**dataclasses.asdict(self), "explained": self.explained,
                "explained_where_searched": self.explained_where_searched}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShortRunEvidence:
        """Rebuild from `to_dict` output (the derived shares are recomputed)."""
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data})


def describe_attributes(attributes: dict[str, Any]) -> list[str]:
    """The evidence and the decision stored with a study, as lines for people (none if absent)."""
    lines = []
    if "short_run_evidence" in attributes:
        lines.append(ShortRunEvidence.from_dict(attributes["short_run_evidence"]).describe())
    if len(attributes.get("short_run_ladder") or {}) > 1:
        lines.append("explained by each cheap run: " + ", ".join(
            f"{'at ' if not label.startswith('proxy') else ''}{label}: {max(0.0, share):.0%}"
            for label, share in attributes["short_run_ladder"].items()))
    if "decision" in attributes:
        lines.append(f"decision: {attributes['decision']}")
    return lines


def _explained(predictor_rmse: float | None, configuration_rmse: float) -> float:
    if predictor_rmse is None or not configuration_rmse or not math.isfinite(configuration_rmse):
        return 0.0
    return 1.0 - (predictor_rmse / configuration_rmse) ** 2


def configuration_residuals(X: np.ndarray, y: np.ndarray, before: np.ndarray,
                            *, kernel: str = "matern") -> np.ndarray:
    """Residuals (prediction minus score) of a GP on the configuration alone, each point predicted
    from the others that came before it.

    Args:
        X: ``n x d`` encoded configurations; y: ``n`` measured full-budget scores.
        before: ``n x n`` boolean, ``before[i, j]`` when point ``j`` may be used to predict point
            ``i`` (all ``j != i`` gives leave-one-out).

    Returns:
        ``n`` residuals in score units (NaN for a point with nothing before it). The
        hyperparameters are fitted once on all ``n`` points; each prediction conditions on its subset.
    """
    import torch

    from cotune.surrogate.gp import DTYPE, build_gp

    gp = build_gp(X, y, np.zeros(len(y)), kernel=kernel)
    model = gp.model
    with torch.no_grad():
        train = model.train_inputs[0]
        lik = model.likelihood
        noise = lik.noise_covar.noise.reshape(-1) + (lik.second_noise if lik.second_noise_covar is not None else 0.0)
        K = model.covar_module(train).to_dense()  # ``n x n``, standardised units
        noisy = K + torch.diag(noise.to(DTYPE).expand(len(y)))
        target = (model.train_targets - model.mean_module(train)).numpy()  # ``n``
    K, noisy = K.numpy(), noisy.numpy()
    out = np.full(len(y), np.nan)
    for i in range(len(y)):
        use = np.flatnonzero(before[i])
        if use.size:
            weights = np.linalg.solve(noisy[np.ix_(use, use)], K[use, i])  # ``|use|``
            out[i] = float(weights @ target[use]) - target[i]
    return out * gp.y_std


def measure(
    pairs: Sequence[int],
    predictor_rmse: float,
    *,
    X_full: np.ndarray,
    y_full: np.ndarray,
    order: np.ndarray,
    checked: list[tuple[int, float]] | None = None,
    kernel: str = "matern",
) -> ShortRunEvidence:
    """Compare F with the configuration alone.

    Args:
        pairs: Indices into ``X_full`` of F's ``p`` pairs (full runs with a short-run score).
        predictor_rmse: F's cross-validated RMSE on the pairs.
        X_full: ``n x d`` every measured full run (the pairs among them); y_full: their ``n`` scores.
        order: ``n`` trial numbers of the full runs: a confirmation is predicted, by the
            configuration-only GP, from the full runs before it only, as F was.
        checked: ``(index into X_full, F's prediction made before the run)`` for each confirmation.
        kernel: The GP kernel of the configuration-only model.
    """
    n = len(y_full)
    checked = checked or []
    loo = ~np.eye(n, dtype=bool)
    for i, _ in checked:
        loo[i] = np.asarray(order) < order[i]
    residual = configuration_residuals(X_full, y_full, loo, kernel=kernel)
    done = {i for i, _ in checked}
    at_pairs = [i for i in pairs if i not in done]
    config_rmse = float(np.sqrt(np.mean(residual[at_pairs] ** 2))) if at_pairs else math.inf
    if checked:
        idx = np.array([i for i, _ in checked])
        predicted = np.array([p for _, p in checked])
        checked_f = float(np.sqrt(np.mean((predicted - y_full[idx]) ** 2)))
        checked_c = float(np.sqrt(np.nanmean(residual[idx] ** 2)))
    else:
        checked_f = checked_c = None
    return ShortRunEvidence(n_pairs=len(pairs), predictor_rmse=float(predictor_rmse),
                            configuration_rmse=config_rmse, n_checked=len(checked),
                            checked_predictor_rmse=checked_f, checked_configuration_rmse=checked_c)
