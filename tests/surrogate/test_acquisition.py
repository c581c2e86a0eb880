"""GP fitting, the cached posterior, IGP-UCB and the mixed-space acquisition optimiser."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.acquisition import LogExpectedImprovement, UpperConfidenceBound

import cotune
from cotune.space import random_encoded
from cotune.surrogate.acquisition import (
    AcquisitionOptions,
    CachedLogEI,
    CachedPosterior,
    IGPUpperConfidenceBound,
    igp_ucb_beta,
    optimize_acquisition,
    with_pending,
)
from cotune.surrogate.gp import build_gp

SPACE = cotune.lora_space(["a", "b", "c", "d"], n_layers=8)


def data(n: int = 30, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = random_encoded(SPACE, n, rng)
    y = np.sin(3 * X[:, 0]) + X[:, 5] - (X[:, 1] - 0.3) ** 2 + 0.01 * rng.standard_normal(n)
    yvar = np.where(np.arange(n) % 2 == 0, 0.0, 1e-3)
    return X, y, yvar


@pytest.mark.parametrize("kernel", ["matern", "deep"])
def test_cached_acquisitions_equal_botorch(kernel):
    X, y, yvar = data()
    gp = build_gp(X, y, yvar, kernel=kernel)
    Xq = torch.as_tensor(random_encoded(SPACE, 7, np.random.default_rng(5)), dtype=torch.float64).unsqueeze(1)
    ucb = IGPUpperConfidenceBound(gp, beta=1.7)(Xq)
    ref = UpperConfidenceBound(gp.model, beta=1.7**2)(Xq)
    torch.testing.assert_close(ucb, ref, rtol=1e-6, atol=1e-6)
    logei = CachedLogEI(gp, best_f=0.3)(Xq)
    torch.testing.assert_close(logei, LogExpectedImprovement(gp.model, best_f=0.3)(Xq), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel", ["matern", "deep"])
def test_posterior_mean_alone_is_the_mean_of_the_full_posterior_bit_for_bit(kernel):
    # best_f of log-EI comes from it: any difference would change the trials
    X, y, yvar = data()
    posterior = CachedPosterior(build_gp(X, y, yvar, kernel=kernel))
    Xq = torch.as_tensor(np.vstack([random_encoded(SPACE, 40, np.random.default_rng(7)), X]), dtype=torch.float64)
    with torch.no_grad():
        mean, std = posterior(Xq)
    assert torch.equal(posterior.mean(Xq), mean) and std.min() >= 0 and mean.std() > 0.1


@pytest.mark.parametrize("kernel", ["matern", "deep"])
def test_cached_acquisition_gradients_equal_botorch(kernel):
    # the optimiser follows these gradients; the Matérn kernel's are computed in closed form, the deep
    # kernel's by autograd; at a training point too, where the distance to it is zero
    X, y, yvar = data()
    gp = build_gp(X, y, yvar, kernel=kernel)
    Xq = torch.as_tensor(np.vstack([random_encoded(SPACE, 7, np.random.default_rng(6)), X[:1]]), dtype=torch.float64)
    for ours, botorch in [(IGPUpperConfidenceBound(gp, beta=1.7), UpperConfidenceBound(gp.model, beta=1.7**2)),
                          (CachedLogEI(gp, best_f=0.3), LogExpectedImprovement(gp.model, best_f=0.3))]:
        grads = []
        for acqf in (ours, botorch):
            x = Xq.clone().unsqueeze(1).requires_grad_(True)
            grads.append(torch.autograd.grad(acqf(x).sum(), x)[0])
        assert grads[1].abs().max() > 0.1  # a slope worth comparing
        torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("kernel", ["matern", "deep"])
def test_posterior_mean_std_is_gpytorchs_posterior_in_score_units(kernel):
    X, y, yvar = data(30)
    gp = build_gp(X, y, yvar, kernel=kernel)
    Xq = np.vstack([random_encoded(SPACE, 9, np.random.default_rng(8)), X[:2]])  # at training points too
    mean, std = gp.posterior_mean_std(Xq)
    with torch.no_grad():
        post = gp.model.posterior(torch.as_tensor(Xq, dtype=torch.float64))
    np.testing.assert_allclose(mean, post.mean.squeeze(-1).numpy() * gp.y_std + gp.y_mean, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(std, post.variance.clamp_min(1e-12).sqrt().squeeze(-1).numpy() * gp.y_std,
                               rtol=1e-6, atol=1e-9)


def test_gp_fits_the_data_and_reports_score_units():
    X, y, yvar = data(40)
    gp = build_gp(X, y, yvar)
    mean, std = gp.posterior_mean_std(X)
    assert np.corrcoef(mean, y)[0, 1] > 0.95
    assert np.all(std > 0) and mean.shape == std.shape == (40,)


def test_predicted_points_get_their_noise():
    X, y, _ = data(20)
    gp_measured = build_gp(X, y, np.zeros(20))
    gp_noisy = build_gp(X, y, np.full(20, 0.5 * y.var()))
    assert gp_noisy.mean_noise_variance() > 10 * gp_measured.mean_noise_variance()
    assert igp_ucb_beta(gp_noisy) > igp_ucb_beta(gp_measured) >= 1.0


def test_igp_ucb_beta_matches_its_formula():
    X, y, yvar = data(25)
    gp = build_gp(X, y, yvar)
    expected = 1.0 + math.sqrt(gp.mean_noise_variance()) * math.sqrt(
        2 * (gp.information_gain() + 1 + math.log(1 / 0.1))
    )
    assert igp_ucb_beta(gp) == pytest.approx(expected)
    assert gp.information_gain() > 0


@pytest.mark.parametrize("kind", ["ucb", "logei"])
def test_optimiser_returns_a_trainable_configuration_on_the_simplex(kind):
    X, y, yvar = data()
    gp = build_gp(X, y, yvar)
    from cotune.surrogate.acquisition import make_acquisition

    acqf = make_acquisition(gp, kind, X)
    point = optimize_acquisition(acqf, SPACE, seed=0, exclude=set(), options=AcquisitionOptions(kind=kind))
    np.testing.assert_allclose(point, SPACE.round(point))
    assert sum(point[:4]) == pytest.approx(1.0)
    best_random = acqf(torch.as_tensor(random_encoded(SPACE, 256, np.random.default_rng(9))).unsqueeze(1)).max()
    assert acqf(torch.as_tensor(point).reshape(1, 1, -1)) >= best_random - 1e-6
    again = optimize_acquisition(acqf, SPACE, seed=0, exclude=set(), options=AcquisitionOptions(kind=kind))
    np.testing.assert_array_equal(point, again)


def test_excluded_configuration_is_not_returned():
    X, y, yvar = data()
    gp = build_gp(X, y, yvar)
    acqf = IGPUpperConfidenceBound(gp, beta=2.0)
    first = optimize_acquisition(acqf, SPACE, seed=0, exclude=set(), options=AcquisitionOptions())
    second = optimize_acquisition(acqf, SPACE, seed=0, exclude={SPACE.decode(first).key()},
                                  options=AcquisitionOptions())
    assert SPACE.decode(second) != SPACE.decode(first)


def test_pending_points_lower_uncertainty_there():
    X, y, yvar = data()
    gp = build_gp(X, y, yvar)
    pending = random_encoded(SPACE, 1, np.random.default_rng(3))
    conditioned = with_pending(gp, X, y, yvar, pending)
    _, std_before = gp.posterior_mean_std(pending)
    _, std_after = conditioned.posterior_mean_std(pending)
    assert std_after[0] < 0.5 * std_before[0]
