"""A warm-started GP fit that fails keeps the previous hyperparameters, and says so."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from botorch.exceptions.errors import ModelFittingError

import cotune.surrogate.gp as gp_module
from cotune.surrogate.gp import build_gp


def _data(n: int = 8, d: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.random((n, d))
    return X, np.sin(3 * X[:, 0]) + X[:, 1] ** 2


def _fail_with(error: BaseException):
    def fit(*args, **kwargs):
        raise error
    return fit


@pytest.mark.parametrize("error", [ModelFittingError("All attempts to fit the model have failed."),
                                   torch.linalg.LinAlgError("cholesky: the leading minor of order 3 is not positive")])
def test_failed_warm_fit_logs_a_warning_and_keeps_the_warm_start(monkeypatch, caplog, error):
    X, y = _data()
    warm = build_gp(X, y).hyperparameters()
    monkeypatch.setattr(gp_module, "fit_gpytorch_mll", _fail_with(error))
    with caplog.at_level(logging.WARNING, logger="cotune.surrogate.gp"):
        fitted = build_gp(X, y, warm_start=warm)
    records = [r for r in caplog.records if r.name == "cotune.surrogate.gp" and r.levelno == logging.WARNING]
    assert len(records) == 1
    message = records[0].getMessage()
    assert type(error).__name__ in message and str(error) in message
    assert "previous hyperparameters" in message
    kept = fitted.hyperparameters()
    for name, value in warm.items():
        assert torch.equal(kept[name], value), name


def test_failed_cold_fit_raises(monkeypatch):
    X, y = _data()
    monkeypatch.setattr(gp_module, "fit_gpytorch_mll", _fail_with(ModelFittingError("no luck")))
    with pytest.raises(ModelFittingError, match="no luck"):
        build_gp(X, y)


def test_a_programming_error_in_a_warm_fit_is_not_swallowed(monkeypatch):
    X, y = _data()
    warm = build_gp(X, y).hyperparameters()
    monkeypatch.setattr(gp_module, "fit_gpytorch_mll", _fail_with(TypeError("unexpected keyword 'maxiterr'")))
    with pytest.raises(TypeError, match="maxiterr"):
        build_gp(X, y, warm_start=warm)
