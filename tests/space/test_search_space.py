"""Encoding, decoding and validation of the joint search space."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import cotune
from cotune.space import sobol_design

SPACE = cotune.SearchSpace(
    mixture=["wiki", "code", "math"],
    params={
        "lora_rank": cotune.Int(1, 256, log=True, default=8),
        "lora_layers": cotune.Int(1, 30, default=30),
        "rear": cotune.Bool(default=False),
        "lora_dropout": cotune.Float(0.0, 0.5, default=0.05),
        "lora_alpha": cotune.Float(1.0, 500.0, log=True, default=16.0),
        "optimizer": cotune.Choice(["adamw", "sgd", "adafactor"], default="adamw"),
    },
)
LORA = cotune.lora_space([f"d{i}" for i in range(25)], n_layers=12)
vectors = st.integers(min_value=0, max_value=2**32 - 1).map(lambda s: np.random.default_rng(s))


def assert_valid(space: cotune.SearchSpace, config: cotune.Config) -> None:
    assert space.validate(config) == config
    if space.domains:
        assert math.isclose(sum(config.mixture.values()), 1.0, abs_tol=1e-9)
        assert min(config.mixture.values()) >= 0


@settings(max_examples=200, deadline=None)
@given(rng=vectors, scale=st.sampled_from([1.0, 3.0]))
def test_any_vector_decodes_to_a_valid_configuration(rng, scale):
    for space in (SPACE, LORA):
        u = rng.normal(0.5, scale, size=space.dim)
        assert_valid(space, space.decode(u))


@settings(max_examples=200, deadline=None)
@given(rng=vectors)
def test_encode_decode_is_stable(rng):
    for space in (SPACE, LORA):
        config = space.decode(rng.random(space.dim))
        u = space.encode(config)
        assert np.all((u >= 0) & (u <= 1))
        assert space.decode(u) == config
        np.testing.assert_allclose(space.round(u), u, atol=1e-12)


BOUNDED = cotune.SearchSpace(
    mixture=["x", "y", "z", "w"],
    params={"lr": cotune.Float(1e-5, 1e-2, log=True), "n": cotune.Int(0, 1000), "c": cotune.Choice(["a", "b", 3]),
            "q": cotune.Bool(default=True), "v": cotune.Bool()},
    at_least_one=[["q", "v"]], mixture_bounds={"x": (0.1, 0.5), "y": (0.0, 0.3)},
)


@settings(max_examples=50, deadline=None)
@given(rng=vectors, scale=st.sampled_from([0.3, 2.0]))
def test_round_of_many_points_is_encode_of_decode_of_each(rng, scale):
    # round works a column at a time; it must give exactly what decoding and encoding each row gives,
    # off the cube, on grid ties (0.5) and with every at_least_one member off
    for space in (SPACE, LORA, BOUNDED):
        U = np.vstack([rng.normal(0.5, scale, size=(40, space.dim)), np.round(rng.random((20, space.dim)) * 4) / 4,
                       np.zeros((1, space.dim))])
        expected = np.stack([space.encode(space.decode(row)) for row in U])
        np.testing.assert_array_equal(space.round(U), expected)
        np.testing.assert_array_equal(space.round(U.reshape(-1, 1, space.dim)), expected.reshape(-1, 1, space.dim))


@pytest.mark.parametrize("param", [
    cotune.Float(1e-5, 1e-2, log=True), cotune.Float(1e-30, 1e-20, log=True), cotune.Float(3.0, 1e25, log=True),
    cotune.Float(0.0, 0.3), cotune.Float(-1.0, 1.0), cotune.Float(2.0, 2.0000001), cotune.Float(0.0, 1e5),
    cotune.Int(0, 1000), cotune.Int(1, 256, log=True), cotune.Int(-5, 5),
])
def test_numeric_params_round_many_values_exactly_as_one_at_a_time(param):
    # the vectorised path must agree bit for bit with decode then encode, at decimal rounding ties,
    # decade edges (log scales) and clipped values too
    rng = np.random.default_rng(0)
    u = np.concatenate([rng.normal(0.5, 0.6, 20000), np.linspace(0.0, 1.0, 4097), [0.0, -0.0, 1.0, -3.0, 7.0]])
    expected = np.array([param.encode(param.decode(float(x))) for x in u])
    np.testing.assert_array_equal(param.round_many(u), expected)


def test_round_refuses_non_finite_points():
    with pytest.raises(cotune.SpaceError, match="non-finite"):
        SPACE.round(np.full((2, SPACE.dim), np.nan))


def test_types_and_bounds_of_decoded_values():
    config = SPACE.decode(np.full(SPACE.dim, 0.37))
    assert isinstance(config.params["lora_rank"], int) and 1 <= config.params["lora_rank"] <= 256
    assert isinstance(config.params["rear"], bool)
    assert config.params["optimizer"] in ("adamw", "sgd", "adafactor")
    top = SPACE.decode(np.ones(SPACE.dim))
    assert top.params["lora_rank"] == 256 and top.params["lora_alpha"] == pytest.approx(500.0)


def test_log_scale_encoding_is_geometric():
    rank = cotune.Int(1, 256, log=True)
    assert rank.encode(16) == pytest.approx(0.5)
    assert rank.decode(0.5) == 16


def test_default_config_is_uniform_mixture_and_defaults():
    config = SPACE.default_config()
    assert config.mixture == {"wiki": 1 / 3, "code": 1 / 3, "math": 1 / 3}
    assert config.params["lora_rank"] == 8 and config.params["optimizer"] == "adamw"


def test_lora_space_keeps_one_target_module_on():
    u = LORA.encode(LORA.default_config())
    switches = [LORA.dim_names.index(s) for s in cotune.space.TARGET_SWITCHES]
    u[switches] = [0.1, 0.4, 0.2, 0.3, 0.0]
    config = LORA.decode(u)
    assert [config.params[s] for s in cotune.space.TARGET_SWITCHES] == [False, True, False, False, False]
    bad = cotune.Config(config.mixture, {**config.params, "lora_k": False})
    with pytest.raises(cotune.SpaceError, match="at least one"):
        LORA.validate(bad)


def test_lora_space_layer_bounds():
    space = cotune.lora_space(["a", "b"], n_layers=30)
    assert space.params["lora_layers"].high == 30
    assert space.default_config().params["lora_layers"] == 30
    with pytest.raises(cotune.SpaceError):
        cotune.lora_space(["a"], n_layers=0)


def test_lora_space_rank_and_alpha_ranges():
    space = cotune.lora_space(["a", "b"], n_layers=4, max_rank=32, max_alpha=128)
    assert (space.params["lora_rank"].high, space.params["lora_alpha"].high) == (32, 128.0)
    assert space.default_config().params["lora_alpha"] == 16.0
    assert cotune.lora_space(None, n_layers=4, max_alpha=10).default_config().params["lora_alpha"] == 10.0
    with pytest.raises(cotune.SpaceError, match="max_alpha"):
        cotune.lora_space(["a"], n_layers=4, max_alpha=1)


@pytest.mark.parametrize(
    "config, match",
    [
        (cotune.Config({"wiki": 0.5, "code": 0.5}, {}), "mixture domains"),
        (cotune.Config({"wiki": 0.5, "code": 0.4, "math": 0.2}, SPACE.default_config().params), "sum to 1"),
        (cotune.Config(SPACE.default_config().mixture, {**SPACE.default_config().params, "lora_rank": 0}), "outside"),
        (cotune.Config(SPACE.default_config().mixture, {**SPACE.default_config().params, "rear": 1}), "bool"),
        (cotune.Config(SPACE.default_config().mixture, {**SPACE.default_config().params, "optimizer": "x"}), "not one of"),
    ],
)
def test_validate_rejects_invalid_configurations(config, match):
    with pytest.raises(cotune.SpaceError, match=match):
        SPACE.validate(config)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: cotune.Int(5, 1), "low < high"),
        (lambda: cotune.Float(0.0, 1.0, log=True), "low > 0"),
        (lambda: cotune.Int(1, 4, default=9), "outside"),
        (lambda: cotune.Choice([]), "at least one"),
        (lambda: cotune.SearchSpace(mixture="wiki"), "list of domain names"),
        (lambda: cotune.SearchSpace(mixture=["a", "a"]), "unique"),
        (lambda: cotune.SearchSpace(), "empty"),
        (lambda: cotune.SearchSpace(params={"x": 3}), "cotune.Int"),
    ],
)
def test_invalid_spaces_are_rejected_with_a_reason(make, match):
    with pytest.raises(cotune.SpaceError, match=match):
        make()


def test_space_round_trips_through_dict():
    for space in (SPACE, LORA):
        assert cotune.SearchSpace.from_dict(space.to_dict()) == space


def test_sobol_design_is_seeded_and_prefix_stable():
    a = sobol_design(LORA, 5, seed=3)
    b = sobol_design(LORA, 12, seed=3)
    assert a == b[:5]
    assert sobol_design(LORA, 5, seed=4) != a
    for config in b:
        assert_valid(LORA, config)


def test_sobol_mixtures_cover_the_simplex_uniformly():
    """A flat Dirichlet over n domains has mean weight 1/n and each weight ~ Beta(1, n - 1)."""
    space = cotune.SearchSpace(mixture=[f"d{i}" for i in range(20)])
    weights = np.array([[c.mixture[d] for d in space.domains] for c in sobol_design(space, 1024, seed=0)])
    n = len(space.domains)
    np.testing.assert_allclose(weights.mean(axis=0), 1 / n, rtol=0.1)
    expected_var = (n - 1) / (n**2 * (n + 1))
    np.testing.assert_allclose(weights.var(axis=0), expected_var, rtol=0.25)
    for i in range(n):  # every marginal is Beta(1, n - 1), corners included
        assert stats.kstest(weights[:, i], stats.beta(1, n - 1).cdf).pvalue > 0.001


def test_a_baseline_of_ones_own_is_the_default_configuration_and_survives_storage():
    space = cotune.SearchSpace(mixture=["a", "b", "c"], params={"rank": cotune.Int(1, 64, default=8),
                                                               "lr": cotune.Float(1e-4, 1e-2, log=True, default=1e-3)},
                               baseline={"mixture": {"a": 0.5, "b": 0.5, "c": 0.0}, "params": {"rank": 32}})
    assert space.default_config() == cotune.Config({"a": 0.5, "b": 0.5, "c": 0.0}, {"rank": 32, "lr": 1e-3})
    assert cotune.SearchSpace.from_dict(space.to_dict()) == space
    assert "baseline" not in cotune.SearchSpace(mixture=["a", "b"]).to_dict()  # older studies' spaces unchanged
    with pytest.raises(cotune.SpaceError, match="sum to 1"):
        cotune.SearchSpace(mixture=["a", "b"], baseline={"mixture": {"a": 0.5, "b": 0.2}})
    result = cotune.optimize(lambda c, b: c.mixture["a"], space, method="bo", total_budget=300, full_budget=100)
    assert result.trials[0].config == space.default_config() and result.baseline.config == space.default_config()


def test_mixture_bounds_hold_for_every_decoded_proposed_and_default_mixture():
    from cotune.space import random_configs

    rng = np.random.default_rng(0)
    space = cotune.SearchSpace(["a", "b", "c"], {"r": cotune.Int(1, 8)}, mixture_bounds={"a": (0.5, 0.9), "c": (0, 0.1)})
    assert space.default_config().mixture == {"a": 0.5, "b": 0.4, "c": 0.1}  # the uniform one moved inside
    assert space.decode(np.array([1.0, 0.0, 0.0, 0.5])).mixture == {"a": 0.9, "b": 0.05, "c": 0.05}
    for u in rng.normal(size=(200, 4)) * 3:
        w = space.decode(u).mixture
        assert 0.5 <= w["a"] <= 0.9 and 0.0 <= w["b"] and w["c"] <= 0.1 and math.isclose(sum(w.values()), 1.0)
    assert all(0.5 <= c.mixture["a"] <= 0.9 for c in random_configs(space, 50, rng))
    assert cotune.SearchSpace.from_dict(space.to_dict()) == space
    assert "mixture_bounds" not in cotune.SearchSpace(["a", "b"]).to_dict()  # older studies' spaces compare equal
    with pytest.raises(cotune.SpaceError, match="the weight of 'a' is 0.2, outside its mixture_bounds"):
        space.validate(cotune.Config({"a": 0.2, "b": 0.7, "c": 0.1}, {"r": 1}))


@pytest.mark.parametrize(("bounds", "message"), [
    ({"z": (0, 1)}, "mixture_bounds names 'z', which is not a domain"),
    ({"a": (0.6, 0.4)}, r"must have 0 <= low <= high <= 1, got \[0.6, 0.4\]"),
    ({"a": (0.6, 1), "b": (0.5, 1)}, "no mixture fits .* the lows sum to 1.1"),
    ({"a": "x"}, r"must be \[low, high\]"),
])
def test_impossible_mixture_bounds_are_refused_with_the_reason(bounds, message):
    with pytest.raises(cotune.SpaceError, match=message):
        cotune.SearchSpace(["a", "b"], mixture_bounds=bounds)


def test_every_method_keeps_its_trials_inside_the_mixture_bounds():
    space = cotune.SearchSpace(["a", "b", "c"], {"r": cotune.Float(0.0, 1.0)}, mixture_bounds={"c": (0.3, 0.6)})

    def objective(config, budget):  # best with all of "a": outside the bounds, so the bound is what binds
        return cotune.Result(score=config.mixture["a"] - (config.params["r"] - 0.5) ** 2,
                             curve={budget / 10: 0.5 * config.mixture["a"]})

    for method in ("bo", "jobs", "mfms"):
        result = cotune.optimize(objective, space, method=method, seed=0, total_budget=800, full_budget=100,
                                 small_budget=10)
        assert all(0.3 <= t.config.mixture["c"] <= 0.6 for t in result.trials), method
        assert result.best.config.mixture["a"] > 0.4, method
