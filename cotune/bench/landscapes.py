"""Synthetic fine-tuning landscapes with a known optimum, for comparing methods cheaply.

The score of a configuration at the full budget is a known optimum minus a *mixture* penalty
(distance to an ideal mixture that moves with the LoRA settings: the paper's chicken-and-egg
interaction) and a *model* penalty. Learning curves depend on the configuration: high-capacity
settings and hard domains keep improving with budget while others stagnate, so a short run's
ranking differs from the full run's and only a predictor that knows the configuration can
correct it. Observations carry Gaussian noise seeded by the configuration, budget and seed.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np

from cotune.space.lora import TARGET_SWITCHES, lora_space
from cotune.space.search_space import Config, SearchSpace
from cotune.trial import Result


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoraMixtureLandscape:
    """A mixture-over-``domains`` plus LoRA landscape whose best mixture depends on the LoRA settings.

    Args:
        domains: Domain names; the first half favour low-capacity models, the rest high-capacity.
        n_layers: Layer count of the imaginary model (``lora_layers`` runs from 1 to it).
        full_budget: The budget ``B`` at which ``true_score`` is defined.
        noise: Standard deviation of the observation noise.
        curve_budgets: Budgets below the requested one at which a run also reports its score.
        seed: Seed of the observation noise.
    """

    domains: tuple[str, ...] = ("wiki", "code", "math", "chat")
    n_layers: int = 24
    full_budget: float = 100.0
    noise: float = 0.003
    curve_budgets: tuple[float, ...] = ()
    seed: int = 0
    optimum: float = 0.8

    # The optimum's model settings (on the grid of the space, so the optimum is attainable).
    _best_rank = 32
    _best_layers_frac = 0.75
    _best_switches = (True, False, True, True, False)
    _best_dropout = 0.1

    @functools.cached_property
    def space(self) -> SearchSpace:
        """The search space: `cotune.lora_space` over the domains."""
        return lora_space(list(self.domains), self.n_layers)

    def _features(self, config: Config) -> dict[str, float]:
        space = self.space
        p = config.params
        return {
            "rank": space.params["lora_rank"].encode(p["lora_rank"]),
            "layers": space.params["lora_layers"].encode(p["lora_layers"]),
            "alpha": space.params["lora_alpha"].encode(p["lora_alpha"]),
            "dropout": p["lora_dropout"],
            "rear": float(p["rear"]),
            "modules": sum(p[s] for s in TARGET_SWITCHES) / len(TARGET_SWITCHES),
        }

    def best_layers(self) -> int:
        """The optimal number of adapted layers."""
        return int(round(1 + self._best_layers_frac * (self.n_layers - 1)))

    def ideal_mixture(self, config: Config) -> np.ndarray:
        """The mixture that is best for this configuration's model settings (sums to 1)."""
        f = self._features(config)
        capacity = 0.5 * f["rank"] + 0.3 * f["layers"] + 0.2 * f["modules"]
        n = len(self.domains)
        # Domains are ordered from "easy" to "hard"; capacity tilts the mixture towards hard ones,
        # and alpha (the effective learning rate) towards the middle.
        position = np.linspace(-1.0, 1.0, n)
        logits = 3.5 * (capacity - 0.5) * position - 1.5 * (f["alpha"] - 0.6) ** 2 * position**2 + 0.3 * np.cos(
            3.0 * position
        )
        w = np.exp(logits - logits.max())
        return w / w.sum()

    def model_penalty(self, config: Config) -> float:
        """Loss of score from the LoRA settings alone (0 at the optimum)."""
        f = self._features(config)
        p = config.params
        best_rank = self.space.params["lora_rank"].encode(self._best_rank)
        best_layers = self.space.params["lora_layers"].encode(self.best_layers())
        ideal_alpha = 0.3 + 0.5 * f["rank"]  # alpha should grow with rank, as lora_alpha / r matters
        switches = sum(p[s] != b for s, b in zip(TARGET_SWITCHES, self._best_switches))
        return (
            0.10 * (f["rank"] - best_rank) ** 2
            + 0.06 * (f["layers"] - best_layers) ** 2
            + 0.08 * (f["alpha"] - ideal_alpha) ** 2
            + 0.10 * (f["dropout"] - self._best_dropout) ** 2
            + 0.006 * switches
            + 0.02 * (1.0 - f["rear"]) * (1.0 - f["layers"])
        )

    def true_score(self, config: Config, budget: float | None = None) -> float:
        """Noise-free score of ``config`` after ``budget`` (default: the full budget)."""
        full = self.full_score(config)
        if budget is None or budget >= self.full_budget:
            return full
        return full - self.learning_gap(config) * (1.0 - (budget / self.full_budget) ** 0.5)

    def full_score(self, config: Config) -> float:
        """Noise-free score of ``config`` at the full budget."""
        w = np.array([config.mixture[d] for d in self.domains])
        mixture_penalty = 1.0 * float(np.sum((w - self.ideal_mixture(config)) ** 2))
        return self.optimum - mixture_penalty - self.model_penalty(config)

    def learning_gap(self, config: Config) -> float:
        """How much the score still rises between a tiny budget and the full one.

        High-capacity settings, larger learning rates (alpha) and hard domains keep learning;
        low-capacity settings stagnate early.
        """
        f = self._features(config)
        w = np.array([config.mixture[d] for d in self.domains])
        hardness = np.linspace(0.0, 1.0, len(self.domains))
        return 0.01 + 0.25 * (0.6 * f["rank"] + 0.4 * f["layers"]) * (1.0 - f["dropout"]) + 0.12 * float(w @ hardness)

    def short_run_correlation(self, small_budget: float, *, n: int = 512) -> float:
        """Spearman rank correlation of the noise-free scores at ``small_budget`` and at the full
        budget over ``n`` random configurations: how well a short run ranks configurations."""
        return rank_correlation(self, small_budget, n=n)

    def optimal_config(self) -> Config:
        """A configuration attaining `optimum` (model settings at their best, ideal mixture)."""
        params = dict(self.space.default_config().params)
        params.update(
            lora_rank=self._best_rank, lora_layers=self.best_layers(), rear=True, lora_dropout=self._best_dropout,
            **dict(zip(TARGET_SWITCHES, self._best_switches)),
        )
        rank = self.space.params["lora_rank"].encode(self._best_rank)
        params["lora_alpha"] = self.space.params["lora_alpha"].decode(0.3 + 0.5 * rank)
        probe = Config({d: 1.0 / len(self.domains) for d in self.domains}, params)
        return Config(dict(zip(self.domains, self.ideal_mixture(probe).tolist())), params)

    def regret(self, config: Config) -> float:
        """Optimum minus the noise-free full-budget score of ``config``."""
        return self.optimum - self.full_score(config)

    def _noise(self, config: Config, budget: float) -> float:
        digest = hashlib.sha256(f"{self.seed}|{budget!r}|{config.key()}".encode()).digest()
        return float(np.random.default_rng(int.from_bytes(digest[:8], "little")).normal(0.0, self.noise))

    def __call__(self, config: Config, budget: float) -> Result:
        """The objective: a noisy score after ``budget``, with the curve at ``curve_budgets``."""
        score = self.true_score(config, budget) + self._noise(config, budget)
        curve = {b: self.true_score(config, b) + self._noise(config, b) for b in self.curve_budgets if b < budget}
        curve[float(budget)] = score
        return Result(score=score, cost=budget, curve=curve)


class SmoothRandomFunction:
    """A smooth random function of the encoded configuration: the mean of 32 random Fourier
    features (an RBF-kernel GP sample, roughly) of lengthscale ``lengthscale``, drawn with ``seed``."""

    n_features = 32

    def __init__(self, space: SearchSpace, *, seed: tuple[int, ...], lengthscale: float) -> None:
        rng = np.random.default_rng(list(seed))
        self.space = space
        self.omega = rng.normal(0.0, 1.0 / lengthscale, size=(self.n_features, space.dim))
        self.phase = rng.uniform(0.0, 2 * np.pi, size=self.n_features)

    def __call__(self, configs: list[Config]) -> np.ndarray:
        return np.cos(self.space.encode_many(configs) @ self.omega.T + self.phase).mean(axis=1)


@dataclasses.dataclass(frozen=True)
class Blend:
    """``(1 - lam) * base + lam * other``, where ``other`` is a raw random function's value
    rescaled from its own mean and spread (``raw_mean``, ``raw_std``) to the base's."""

    lam: float
    raw_mean: float
    raw_std: float
    base_mean: float
    base_std: float

    def __call__(self, base: float, raw: float) -> float:
        other = self.base_mean + self.base_std * (raw - self.raw_mean) / self.raw_std
        return (1 - self.lam) * base + self.lam * other


def calibrated_blend(base: np.ndarray, raw: np.ndarray, target: np.ndarray, correlation: float,
                     *, name: str = "correlation") -> Blend:
    """The `Blend` of ``base`` and ``raw`` (sampled over the same configurations) whose Spearman
    correlation with ``target`` is ``correlation`` (its weight found by bisection)."""
    from scipy.stats import spearmanr

    if not 0.0 <= correlation < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {correlation}")
    other = base.mean() + base.std() * (raw - raw.mean()) / raw.std()
    low, high = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (low + high)
        value = float(spearmanr((1 - mid) * base + mid * other, target).statistic)
        low, high = (mid, high) if value > correlation else (low, mid)
    return Blend(0.5 * (low + high), float(raw.mean()), float(raw.std()), float(base.mean()), float(base.std()))


@dataclasses.dataclass(frozen=True, kw_only=True)
class LateLearnerLandscape(LoraMixtureLandscape):
    """`LoraMixtureLandscape` whose learning curves cross by a chosen amount, so that a short run
    ranks configurations only as well as ``correlation`` says.

    The score at the short budget ``B / 10`` is a blend ``(1 - lam) * base + lam * late`` of the
    base landscape's short score and a smooth random function of the encoded configuration
    (random Fourier features drawn with ``family``, scaled to the base short scores' mean and
    spread), independent of the full-budget score: configurations it rates low look poor early
    and catch up by the full budget, others look good early and stall. ``lam`` is set so that the
    Spearman correlation of the noise-free short and full scores over random configurations is
    ``correlation``; other budgets follow the same square-root curve through both points. The
    full-budget landscape, its optimum and the regret are the base landscape's.

    Args:
        correlation: Target rank correlation of short (``B / 10``) and full scores, in ``[0, 1)``.
        family: Seed of the random function (another family is another landscape).
        lengthscale: Its lengthscale in encoded units (shorter: harder for a predictor to learn).
    """

    correlation: float = 0.5
    family: int = 0
    lengthscale: float = 0.35

    #: The short budget, a fraction of the full one, at which ``correlation`` holds.
    calibration_fraction = 0.1

    def _sample(self, seed: int, n: int) -> list[Config]:
        from cotune.space.design import random_configs

        return random_configs(self.space, n, np.random.default_rng([self.family, seed]))

    @functools.cached_property
    def _random_function(self) -> SmoothRandomFunction:
        return SmoothRandomFunction(self.space, seed=(self.family, len(self.domains), 7), lengthscale=self.lengthscale)

    def _raw_late(self, configs: list[Config]) -> np.ndarray:
        return self._random_function(configs)

    def _base_short(self, config: Config) -> float:
        shrink = 1.0 - self.calibration_fraction**0.5
        return self.full_score(config) - LoraMixtureLandscape.learning_gap(self, config) * shrink

    @functools.cached_property
    def _calibration(self) -> Blend:
        """The blend of the base short score and the random function."""
        configs = self._sample(11, 1024)
        base = np.array([self._base_short(c) for c in configs])
        full = np.array([self.full_score(c) for c in configs])
        return calibrated_blend(base, self._raw_late(configs), full, self.correlation)

    def learning_gap(self, config: Config) -> float:
        """Full minus short score (at ``B / 10``) over the square-root curve's drop to that budget."""
        short = self._calibration(self._base_short(config), float(self._raw_late([config])[0]))
        return (self.full_score(config) - short) / (1.0 - self.calibration_fraction**0.5)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SiblingLandscape(LoraMixtureLandscape):
    """`LoraMixtureLandscape`'s sibling task: the same domains and space, the optimum's model
    settings moved (rank 16 not 32, half the layers not three quarters, dropout 0.2 not 0.1, K
    adapted and Up not), so its best mixture moves too; its optimum is 2.3% of the optimum from
    `lora-mix`'s (chosen so, before any method ran on it: related, not the same task, and more
    than twice the 1% target away). A study of it is a related earlier study for a warm start."""

    _best_rank = 16
    _best_layers_frac = 0.5
    _best_dropout = 0.2
    _best_switches = (True, True, True, False, False)


@dataclasses.dataclass(frozen=True, kw_only=True)
class MultiScaleLandscape(LateLearnerLandscape):
    """`LateLearnerLandscape` (the target model, whose short runs rank configurations with rank
    correlation ``correlation``) with a proxy model: a smaller sibling whose runs cost
    ``proxy_cost`` of the target's per unit of budget and whose full runs rank configurations
    with rank correlation ``proxy_correlation`` -- the case where a small model's full run says
    more than the large model's first steps.

    The proxy's full-budget score is a blend ``(1 - lam) * full + lam * other - proxy_offset`` of
    the target's full score and another smooth random function of the configuration (scaled to
    the full scores' mean and spread), ``lam`` set so that the Spearman correlation of the
    proxy's and the target's noise-free full scores over random configurations is
    ``proxy_correlation``; its learning curve has the base landscape's shape. Call the objective
    with ``proxy="small"`` for the proxy. The target's scores, optimum and regret are as before.
    """

    correlation: float = 0.3
    proxy_correlation: float = 0.9
    proxy_cost: float = 0.05
    proxy_offset: float = 0.05

    @property
    def proxies(self) -> dict[str, float]:
        """The proxy models by name, with their cost per unit of budget (a study's ``proxies``)."""
        return {"small": self.proxy_cost}

    @functools.cached_property
    def _proxy_function(self) -> SmoothRandomFunction:
        return SmoothRandomFunction(self.space, seed=(self.family, len(self.domains), 11), lengthscale=self.lengthscale)

    @functools.cached_property
    def _proxy_calibration(self) -> Blend:
        """The blend of the target's full score and the proxy's random function."""
        configs = self._sample(13, 1024)
        full = np.array([self.full_score(c) for c in configs])
        return calibrated_blend(full, self._proxy_function(configs), full, self.proxy_correlation,
                                name="proxy_correlation")

    def proxy_score(self, config: Config, budget: float | None = None) -> float:
        """Noise-free score of the proxy's run of ``config`` after ``budget`` (default: the full budget)."""
        raw = float(self._proxy_function([config])[0])
        score = self._proxy_calibration(self.full_score(config), raw) - self.proxy_offset
        if budget is None or budget >= self.full_budget:
            return score
        return score - LoraMixtureLandscape.learning_gap(self, config) * (1.0 - (budget / self.full_budget) ** 0.5)

    def proxy_rank_correlations(self, *, n: int = 512) -> dict[str, float]:
        """Spearman correlation of the proxy's and the target's noise-free full scores over ``n``
        random configurations, by proxy: how well the proxy ranks configurations for the target."""
        from scipy.stats import spearmanr

        configs = self._sample(0, n)
        proxy, full = [self.proxy_score(c) for c in configs], [self.full_score(c) for c in configs]
        return {"small": float(spearmanr(proxy, full).statistic)}

    def __call__(self, config: Config, budget: float, proxy: str | None = None) -> Result:
        """The objective: the target's run as the late-learner landscape's, or the proxy's run
        (charged ``budget * proxy_cost``) with its curve at ``curve_budgets``."""
        if proxy is None:
            return super().__call__(config, budget)
        if proxy not in self.proxies:
            raise ValueError(f"unknown proxy {proxy!r}; this landscape has {sorted(self.proxies)}")
        noise = {b: self._noise(config, -b) for b in (*self.curve_budgets, float(budget))}  # not the target's draws
        curve = {b: self.proxy_score(config, b) + noise[b] for b in self.curve_budgets if b < budget}
        score = self.proxy_score(config, budget) + noise[float(budget)]
        curve[float(budget)] = score
        return Result(score=score, cost=budget * self.proxy_cost, curve=curve)


def rank_correlation(landscape: Any, small_budget: float, *, n: int = 512, seed: int = 0) -> float:
    """Spearman correlation of noise-free scores at ``small_budget`` and at the full budget over
    ``n`` random configurations of a synthetic landscape."""
    from scipy.stats import spearmanr

    from cotune.space.design import random_configs

    configs = random_configs(landscape.space, n, np.random.default_rng(seed))
    short = [landscape.true_score(c, small_budget) for c in configs]
    full = [landscape.true_score(c) for c in configs]
    return float(spearmanr(short, full).statistic)


class Landscape(Protocol):
    """What the harness needs of a benchmark: an objective over a space with a known optimum."""

    space: SearchSpace
    optimum: float

    def regret(self, config: Config) -> float: ...

    def short_run_correlation(self, small_budget: float) -> float: ...

    def __call__(self, config: Config, budget: float) -> Result: ...


def _recorded(name: str) -> Callable[..., Landscape]:
    def make(**kw: Any) -> Landscape:
        from cotune.bench.recorded import RecordedLandscape, proxy_recording_paths, recording_path

        return RecordedLandscape(path=recording_path(name), proxy_paths=proxy_recording_paths(name), **kw)

    return make


def _late(domains: int, correlation: float, family: int) -> Callable[..., Landscape]:
    names = tuple(f"domain{i}" for i in range(domains))
    return lambda **kw: LateLearnerLandscape(domains=names, correlation=correlation, family=family, **kw)


#: Rank correlations of short and full scores of the late-learner benchmarks.
LATE_CORRELATIONS = (0.9, 0.6, 0.3, 0.0)
#: Rank correlations of the proxy's and the target's full scores of the multi-scale benchmarks
#: (whose target's short runs rank with 0.3).
SCALE_CORRELATIONS = (0.95, 0.8, 0.3)


def _scales(domains: int, correlation: float, family: int) -> Callable[..., Landscape]:
    names = tuple(f"domain{i}" for i in range(domains))
    return lambda **kw: MultiScaleLandscape(domains=names, proxy_correlation=correlation, family=family, **kw)


#: Benchmarks by name: synthetic landscapes, then replays of recorded real runs. ``late-C`` (4
#: domains, family 0) is the set defaults are chosen on; ``late8-C`` (8 domains, family 1) is
#: the set they are reported on; likewise ``scales-C`` and ``scales8-C``, whose proxy model
#: ranks configurations with rank correlation ``C`` (their target's short runs with 0.3).
LANDSCAPES: dict[str, Callable[..., Landscape]] = {
    "lora-mix": lambda **kw: LoraMixtureLandscape(**kw),
    "lora-mix-10": lambda **kw: LoraMixtureLandscape(domains=tuple(f"domain{i}" for i in range(10)), **kw),
    "lora-mix-sibling": lambda **kw: SiblingLandscape(**kw),
    **{f"late-{c:.1f}": _late(4, c, 0) for c in LATE_CORRELATIONS},
    **{f"late8-{c:.1f}": _late(8, c, 1) for c in LATE_CORRELATIONS},
    **{f"scales-{c:g}": _scales(4, c, 0) for c in SCALE_CORRELATIONS},
    **{f"scales8-{c:g}": _scales(8, c, 1) for c in SCALE_CORRELATIONS},
    "smollm2-trivia": _recorded("smollm2-trivia"),
    "smollm2-blend": _recorded("smollm2-blend"),
    "scales-real": _recorded("scales-real"),
}


def make_landscape(name: str, **kwargs: Any) -> Landscape:
    """A benchmark by name (see `LANDSCAPES`), built with the harness's budgets and seed."""
    if name not in LANDSCAPES:
        raise KeyError(f"unknown benchmark {name!r}; choose one of {', '.join(LANDSCAPES)}")
    return LANDSCAPES[name](**kwargs)


__all__ = ["LANDSCAPES", "Landscape", "LateLearnerLandscape", "LoraMixtureLandscape", "MultiScaleLandscape",
           "make_landscape", "rank_correlation"]
