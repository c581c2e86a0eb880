"""GPFitter: hyperparameters refitted as observations grow, the posterior always on every observation."""

from __future__ import annotations

import numpy as np
import torch

from cotune.surrogate.gp import REFIT_GROWTH, GPFitter


def _data(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.random((n, 3))
    return X, np.sin(4 * X[:, 0]) + X[:, 1] ** 2 + 0.01 * rng.normal(size=n)


def _lengthscale(fitter: GPFitter) -> torch.Tensor:
    return next(v for k, v in fitter.warm.items() if "lengthscale" in k and "prior" not in k)


def test_hyperparameters_are_refitted_once_the_observations_grew_enough():
    n = 200
    X, y = _data(2 * n)
    fitter = GPFitter()
    before, _ = fitter.fit(X[:n], y[:n]).posterior_mean_std(X[n: n + 1])
    first = _lengthscale(fitter).clone()
    y_new = y.copy()
    y_new[n] = 5.0  # an outlier the kept hyperparameters must still condition on
    gp = fitter.fit(X[: n + 1], y_new[: n + 1])
    assert torch.equal(_lengthscale(fitter), first)
    mean, _ = gp.posterior_mean_std(X[n: n + 1])
    assert mean[0] > before[0] + 0.3
    grown = int(np.ceil(n * (1 + REFIT_GROWTH)))
    fitter.fit(X[:grown], y[:grown])
    assert not torch.equal(_lengthscale(fitter), first)


def test_with_few_observations_every_new_one_refits_and_later_every_tenth_share():
    X, y = _data(30)
    fitter = GPFitter()
    fitter.fit(X[:10], y[:10])
    first = _lengthscale(fitter).clone()
    fitter.fit(X[:11], y[:11])  # 11 >= 10 x 1.1
    second = _lengthscale(fitter).clone()
    assert not torch.equal(second, first)
    fitter.fit(X[:12], y[:12])  # 12 < 11 x 1.1: conditioned on, not refitted
    assert torch.equal(_lengthscale(fitter), second)
    fitter.fit(X[:13], y[:13])
    assert not torch.equal(_lengthscale(fitter), second)


def test_asks_with_no_new_observation_share_one_fit(monkeypatch):
    from cotune.surrogate import gp as gp_module

    fits = []
    build = gp_module.build_gp
    monkeypatch.setattr(gp_module, "build_gp", lambda *a, **k: fits.append(k["fit"]) or build(*a, **k))
    X, y = _data(14)
    fitter = GPFitter()
    fitter.fit(X[:12], y[:12])
    fitter.fit(X[:12], y[:12])  # another worker's proposal before any result came back
    fitter.fit(X, y)  # grown by 10%
    assert fits == [True, False, True]


def test_data_kept_at_a_fixed_size_is_refitted_after_enough_changes():
    n = 200
    X, y = _data(2 * n)
    fitter = GPFitter()
    fitter.fit(X[:n], y[:n])
    first = _lengthscale(fitter).clone()
    changes = int(np.ceil(REFIT_GROWTH * n))
    for k in range(1, changes):  # a window of n points sliding one at a time
        fitter.fit(X[k: n + k], y[k: n + k])
        assert torch.equal(_lengthscale(fitter), first)
    fitter.fit(X[changes: n + changes], y[changes: n + changes])
    assert not torch.equal(_lengthscale(fitter), first)


def test_many_observations_fit_on_a_subset_and_condition_on_all(monkeypatch):
    from cotune.surrogate import gp as gp_module

    monkeypatch.setattr(gp_module, "MAX_FIT_POINTS", 40)
    sizes = []
    build = gp_module.build_gp
    monkeypatch.setattr(gp_module, "build_gp", lambda X, *a, **k: sizes.append((len(X), k.get("fit", True))) or build(X, *a, **k))
    X, y = _data(120)
    y[-1] = 5.0  # a point outside the subset the posterior must still see
    gp = GPFitter().fit(X, y)
    assert sizes == [(40, True), (120, False)]
    assert gp.model.train_inputs[0].shape[0] == 120
    mean, _ = gp.posterior_mean_std(X[-1:])
    assert mean[0] > 3.0
