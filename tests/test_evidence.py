"""What a short run is worth: F against a GP on the configuration alone."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cotune.evidence import ShortRunEvidence, configuration_residuals, describe_attributes, measure
from cotune.surrogate.gp import build_gp


def _data(n: int = 14, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, 3))
    return X, np.sin(3 * X[:, 0]) + X[:, 1] ** 2 + 0.01 * rng.normal(size=n)


def test_leave_one_out_residuals_match_refitting_without_each_point():
    X, y = _data()
    residual = configuration_residuals(X, y, ~np.eye(len(y), dtype=bool))
    gp = build_gp(X, y, np.zeros(len(y)))
    for i in (0, 5, 13):
        keep = np.arange(len(y)) != i
        held_out = build_gp(X[keep], y[keep], np.zeros(len(y) - 1), warm_start=gp.hyperparameters(), fit=False,
                            standardise=(gp.y_mean, gp.y_std))
        mean, _ = held_out.posterior_mean_std(X[i:i + 1])
        assert residual[i] == pytest.approx(mean[0] - y[i], abs=1e-8)


def test_a_confirmation_is_predicted_from_the_full_runs_before_it_only():
    X, y = _data()
    before = np.zeros((len(y), len(y)), dtype=bool)
    before[13, :5] = True  # point 13 may use the first five only
    residual = configuration_residuals(X, y, before)
    assert np.isnan(residual[0])  # nothing before it
    loo = configuration_residuals(X, y, ~np.eye(len(y), dtype=bool))
    assert abs(residual[13]) != pytest.approx(abs(loo[13]), rel=1e-3)


def test_explained_share_noise_and_description_by_hand():
    evidence = ShortRunEvidence(n_pairs=20, predictor_rmse=0.01, configuration_rmse=0.04)
    assert evidence.explained == pytest.approx(1 - 1 / 16)
    assert evidence.explained_where_searched is None and evidence.noise_variance == pytest.approx(1e-4)
    assert evidence.describe().startswith("short runs explain 94% of the full-score variance")
    checked = ShortRunEvidence(n_pairs=20, predictor_rmse=0.01, configuration_rmse=0.04, n_checked=3,
                               checked_predictor_rmse=0.03, checked_configuration_rmse=0.02)
    assert checked.explained_where_searched == pytest.approx(1 - 9 / 16)
    assert checked.noise_variance == pytest.approx(9e-4)  # F's error where the search went counts
    assert ShortRunEvidence.from_dict(checked.to_dict()) == checked
    lines = describe_attributes({"short_run_evidence": checked.to_dict(), "decision": "full runs only: x"})
    assert "on 3 confirmations F predicted beforehand its error was 0.03 (44% explained)" in lines[0]
    assert lines[1] == "decision: full runs only: x"


def test_measure_compares_both_models_on_the_same_points():
    X, y = _data(20, seed=1)
    evidence = measure(range(20), 0.005, X_full=X, y_full=y, order=np.arange(20), checked=[(19, y[19] + 0.02)])
    loo = configuration_residuals(X, y, ~np.eye(20, dtype=bool))
    assert evidence.configuration_rmse == pytest.approx(math.sqrt(np.mean(loo[:19] ** 2)))
    assert evidence.n_checked == 1 and evidence.checked_predictor_rmse == pytest.approx(0.02)
    assert not evidence.checked  # one confirmation is too few to judge by
