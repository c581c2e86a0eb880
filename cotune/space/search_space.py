"""The joint search space (data mixture on the simplex plus model parameters) and its configurations."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from cotune.exceptions import SpaceError
from cotune.space.params import MAX_DISCRETE_VALUES, Bool, Choice, Param, param_from_dict

#: Mixture weights are rounded to this many decimals before renormalisation, so that a
#: configuration has one exact, storable form.
MIXTURE_DECIMALS = 6


class Config:
    """One training configuration: a data mixture and model parameter values.

    ``mixture`` maps every domain to its weight (non-negative, summing to 1; empty when the
    space has no mixture); ``params`` maps every parameter to a value of its type.
    Configurations compare and hash by value.
    """

    __slots__ = ("mixture", "params")

    def __init__(self, mixture: Mapping[str, float] | None = None, params: Mapping[str, Any] | None = None):
        self.mixture: dict[str, float] = dict(mixture or {})
        self.params: dict[str, Any] = dict(params or {})

    def key(self) -> str:
        """A canonical string identifying the configuration (used to avoid exact repeats)."""
        return json.dumps({"mixture": self.mixture, "params": self.params}, sort_keys=True, default=repr)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, the inverse of `Config.from_dict`."""
        return {"mixture": dict(self.mixture), "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Config:
        """Rebuild a configuration from `Config.to_dict` output."""
        return cls(data.get("mixture"), data.get("params"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    def __repr__(self) -> str:
        mix = ", ".join(f"{k}={v:.3f}" for k, v in self.mixture.items())
        params = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Config(mixture={{{mix}}}, params={{{params}}})"


class SearchSpace:
    """Data mixture over named domains plus model parameters, encoded jointly in ``[0, 1]^d``.

    The encoding puts the mixture weights first (one dimension per domain, constrained to the
    simplex) and then one dimension per parameter, in the order given. Integers, bools and
    choices are rounded on decoding; ``at_least_one`` lists groups of `Bool` parameters of which
    at least one must be on (e.g. LoRA target modules), repaired on decoding by switching on the
    one whose encoded value is largest.

    Args:
        mixture: Domain names, or None for a space without a data mixture.
        params: Parameter name to `Int`, `Float`, `Bool` or `Choice`.
        at_least_one: Groups of Bool parameter names of which one must be on.
        baseline: The configuration every study trains first, e.g. what a team trains today: a
            `Config`, or a mapping with ``mixture`` and/or ``params`` (what it leaves out is the
            uniform mixture and the parameters' defaults, the baseline when none is given).
        mixture_bounds: Domain name to ``(low, high)``, the weights that domain may take (e.g. at
            least 10% of the data from the target's own domain); other domains keep ``(0, 1)``.
            Every configuration proposed or trained keeps to them; the default mixture is the
            uniform one moved inside them.
    """

    def __init__(
        self,
        mixture: Sequence[str] | None = None,
        params: Mapping[str, Param] | None = None,
        *,
        at_least_one: Sequence[Sequence[str]] = (),
        baseline: Config | Mapping[str, Any] | None = None,
        mixture_bounds: Mapping[str, Sequence[float]] | None = None,
    ) -> None:
        if isinstance(mixture, str):
            raise SpaceError(f"mixture must be a list of domain names, got the string {mixture!r}")
        self.domains: tuple[str, ...] = tuple(mixture or ())
        self.params: dict[str, Param] = dict(params or {})
        self.at_least_one: tuple[tuple[str, ...], ...] = tuple(tuple(g) for g in at_least_one)
        self._check()
        self.mixture_bounds: dict[str, tuple[float, float]] = self._check_bounds(mixture_bounds or {})
        self._baseline: Config | None = None
        if baseline is not None:
            self._baseline = self.complete(baseline)  # filled in from the plain default

    def _check(self) -> None:
        for name in self.domains:
            if not isinstance(name, str) or not name:
                raise SpaceError(f"domain names must be non-empty strings, got {name!r}")
        if len(set(self.domains)) != len(self.domains):
            raise SpaceError(f"domain names must be unique, got {list(self.domains)!r}")
        for name, param in self.params.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(f"parameter names must be non-empty strings, got {name!r}")
            if not isinstance(param, Param):
                raise SpaceError(
                    f"parameter {name!r} must be cotune.Int, Float, Bool or Choice, got {param!r}"
                )
        if not self.domains and not self.params:
            raise SpaceError("the search space is empty: give a mixture, params, or both")
        for group in self.at_least_one:
            for name in group:
                if not isinstance(self.params.get(name), Bool):
                    raise SpaceError(f"at_least_one names {name!r}, which is not a Bool parameter of the space")
            if not any(self.params[n].default_value for n in group):
                raise SpaceError(f"the defaults of at_least_one group {list(group)!r} are all off; switch one on")

    def _check_bounds(self, bounds: Mapping[str, Sequence[float]]) -> dict[str, tuple[float, float]]:
        out = {}
        for name, pair in bounds.items():
            if name not in self.domains:
                raise SpaceError(f"mixture_bounds names {name!r}, which is not a domain of the space "
                                 f"({', '.join(self.domains) or 'none'})")
            try:
                low, high = (float(v) for v in pair)
            except (TypeError, ValueError):
                raise SpaceError(f"mixture_bounds[{name!r}] must be [low, high], got {pair!r}") from None
            if not 0.0 <= low <= high <= 1.0:
                raise SpaceError(f"mixture_bounds[{name!r}] must have 0 <= low <= high <= 1, got [{low}, {high}]")
            out[name] = (low, high)
        if not out:
            return out
        low, high = self.mixture_limits(out)
        if low.sum() > 1.0 + 1e-9 or high.sum() < 1.0 - 1e-9:
            raise SpaceError(f"no mixture fits mixture_bounds {out}: the lows sum to {low.sum():g} and the highs "
                             f"to {high.sum():g}; the lows must sum to at most 1 and the highs to at least 1")
        return out

    def mixture_limits(self, bounds: Mapping[str, tuple[float, float]] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The lowest and highest weight of every domain, in the encoding's order."""
        bounds = self.mixture_bounds if bounds is None else bounds
        low = np.array([bounds.get(d, (0.0, 1.0))[0] for d in self.domains], dtype=np.float64)
        high = np.array([bounds.get(d, (0.0, 1.0))[1] for d in self.domains], dtype=np.float64)
        return low, high

    # ----------------------------------------------------------------- dimensions
    @property
    def dim(self) -> int:
        """Number of dimensions of the encoding."""
        return len(self.domains) + len(self.params)

    @property
    def mixture_dims(self) -> list[int]:
        """Indices of the mixture weights in the encoding (they sum to 1)."""
        return list(range(len(self.domains)))

    @property
    def dim_names(self) -> list[str]:
        """A label per encoded dimension: ``mixture:<domain>`` then the parameter names."""
        return [f"mixture:{d}" for d in self.domains] + list(self.params)

    def discrete_dims(self) -> dict[int, list[float]]:
        """Encoded dimension index to its allowed values, for small integer and bool dimensions."""
        out: dict[int, list[float]] = {}
        for i, param in enumerate(self.params.values(), start=len(self.domains)):
            grid = param.grid()
            if grid is not None and not isinstance(param, Choice) and len(grid) <= MAX_DISCRETE_VALUES:
                out[i] = grid
        return out

    def categorical_dims(self) -> dict[int, list[float]]:
        """Encoded dimension index to its allowed values, for choices with two or more values."""
        return {
            i: param.grid()
            for i, param in enumerate(self.params.values(), start=len(self.domains))
            if isinstance(param, Choice) and len(param.choices) > 1
        }

    # ----------------------------------------------------------------- configurations
    def default_config(self) -> Config:
        """The baseline every study trains first: the ``baseline`` given, else the uniform mixture
        and every parameter at its default."""
        if self._baseline is not None:
            return self._baseline
        n = len(self.domains)
        weights = [1.0 / n] * n if n else []
        if self.mixture_bounds:  # the uniform mixture moved inside the bounds
            weights = _normalise_mixture(np.array(weights), *self.mixture_limits())
        return Config(dict(zip(self.domains, weights)), {name: p.default_value for name, p in self.params.items()})

    def complete(self, config: Config | Mapping[str, Any]) -> Config:
        """A configuration from a mapping with ``mixture`` and ``params`` that may leave either out in
        part (the baseline's values fill in), validated (`validate`)."""
        if not isinstance(config, Config):
            base = self.default_config()
            mixture = base.mixture if config.get("mixture") is None else dict(config["mixture"])
            config = Config(mixture, {**base.params, **dict(config.get("params") or {})})
        return self.validate(config)

    def validate(self, config: Config) -> Config:
        """Check a configuration against the space; return it with values of the exact types.

        Raises:
            SpaceError: a domain or parameter is missing, unknown, out of bounds or mistyped,
                or the mixture does not sum to 1.
        """
        if set(config.mixture) != set(self.domains):
            raise SpaceError(
                f"mixture domains {sorted(config.mixture)} do not match the space's {sorted(self.domains)}"
            )
        if set(config.params) != set(self.params):
            raise SpaceError(f"parameters {sorted(config.params)} do not match the space's {sorted(self.params)}")
        weights = [float(config.mixture[d]) for d in self.domains]
        if any(not math.isfinite(w) or w < 0 for w in weights):
            raise SpaceError(f"mixture weights must be finite and >= 0, got {config.mixture!r}")
        if self.domains and abs(sum(weights) - 1.0) > 1e-6:
            raise SpaceError(f"mixture weights must sum to 1, got a sum of {sum(weights)!r}")
        for name, w in zip(self.domains, weights):
            low, high = self.mixture_bounds.get(name, (0.0, 1.0))
            if not low - 1e-9 <= w <= high + 1e-9:
                raise SpaceError(f"the weight of {name!r} is {w:g}, outside its mixture_bounds [{low:g}, {high:g}]")
        params = {name: p.validate(config.params[name], name) for name, p in self.params.items()}
        for group in self.at_least_one:
            if not any(params[n] for n in group):
                raise SpaceError(f"at least one of {list(group)!r} must be on")
        return Config(dict(zip(self.domains, weights)), params)

    def encode(self, config: Config) -> np.ndarray:
        """Map a configuration to ``[0, 1]^d`` (a ``d``-dim float64 array)."""
        config = self.validate(config)
        mix = [config.mixture[d] for d in self.domains]
        rest = [p.encode(config.params[name]) for name, p in self.params.items()]
        return np.asarray(mix + rest, dtype=np.float64)

    def encode_many(self, configs: Sequence[Config]) -> np.ndarray:
        """Encode several configurations into an ``n x d`` array."""
        if not configs:
            return np.zeros((0, self.dim))
        return np.stack([self.encode(c) for c in configs])

    def decode(self, u: Sequence[float] | np.ndarray) -> Config:
        """Map any point of ``R^d`` to the nearest valid configuration (the one actually trained).

        Mixture weights are clipped at 0, renormalised (uniform if all are 0), moved inside
        ``mixture_bounds`` and rounded; parameters are clipped to their bounds and rounded to their type.
        """
        u = np.asarray(u, dtype=np.float64).reshape(-1)
        if u.shape[0] != self.dim:
            raise SpaceError(f"expected an encoded vector of length {self.dim}, got {u.shape[0]}")
        if not np.all(np.isfinite(u)):
            raise SpaceError(f"cannot decode a vector with non-finite values: {u.tolist()!r}")
        n = len(self.domains)
        limits = self.mixture_limits() if self.mixture_bounds else (None, None)
        mixture = _normalise_mixture(u[:n], *limits)
        params = {name: p.decode(float(v)) for (name, p), v in zip(self.params.items(), u[n:])}
        for group in self.at_least_one:
            if not any(params[name] for name in group):
                enc = {name: float(u[n + list(self.params).index(name)]) for name in group}
                params[max(group, key=lambda name: enc[name])] = True
        return Config(dict(zip(self.domains, mixture)), params)

    def round(self, u: np.ndarray) -> np.ndarray:
        """Project encoded points (``... x d``) onto configurations as trained: ``encode(decode(u))``
        row by row, computed a column at a time (the acquisition optimiser rounds hundreds of points)."""
        arr = np.asarray(u, dtype=np.float64)
        flat = arr.reshape(-1, self.dim)
        if not np.all(np.isfinite(flat)):
            raise SpaceError("cannot round encoded points with non-finite values")
        out = np.empty_like(flat)
        n = len(self.domains)
        if n:
            out[:, :n] = _normalise_mixtures(flat[:, :n], *(self.mixture_limits() if self.mixture_bounds else (None, None)))
        for j, param in enumerate(self.params.values(), start=n):
            out[:, j] = param.round_many(flat[:, j])
        names = list(self.params)
        for group in self.at_least_one:
            cols = [n + names.index(name) for name in group]
            none_on = ~out[:, cols].any(axis=1)
            # as `decode`: the member with the largest encoded value (the first of equals) goes on
            first_max = np.asarray(cols)[flat[:, cols].argmax(axis=1)]
            out[none_on, first_max[none_on]] = 1.0
        return out.reshape(arr.shape)

    # ----------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-able description, stored with a study to detect a changed space on resume."""
        out = {
            "mixture": list(self.domains) or None,
            "params": {name: p.to_dict() for name, p in self.params.items()},
            "at_least_one": [list(g) for g in self.at_least_one],
        }
        if self._baseline is not None:
            out["baseline"] = self._baseline.to_dict()
        if self.mixture_bounds:
            out["mixture_bounds"] = {name: list(pair) for name, pair in self.mixture_bounds.items()}
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SearchSpace:
        """Rebuild a space from `SearchSpace.to_dict` output."""
        params = {name: param_from_dict(p) for name, p in (data.get("params") or {}).items()}
        return cls(data.get("mixture"), params, at_least_one=data.get("at_least_one") or (),
                   baseline=data.get("baseline"), mixture_bounds=data.get("mixture_bounds"))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchSpace) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"SearchSpace(mixture={list(self.domains)!r}, params={self.params!r})"


def _normalise_mixture(w: np.ndarray, low: np.ndarray | None = None, high: np.ndarray | None = None) -> list[float]:
    """Clip, round and renormalise raw weights onto the simplex (uniform if nothing is left), within
    ``low <= w <= high`` when given (the closest such weights: ``clip(w - t, low, high)``)."""
    if w.size == 0:
        return []
    return [float(v) for v in _normalise_mixtures(np.asarray(w, dtype=np.float64).reshape(1, -1), low, high)[0]]


def _normalise_mixtures(W: np.ndarray, low: np.ndarray | None = None, high: np.ndarray | None = None) -> np.ndarray:
    """`_normalise_mixture` of every row of ``W`` (``m x k``), as an ``m x k`` array."""
    W = np.clip(W, 0.0, None)
    total = W.sum(axis=1, keepdims=True)
    W = np.where(total > 0, W / np.where(total > 0, total, 1.0), 1.0 / W.shape[1])
    scale = 10**MIXTURE_DECIMALS
    k = W.shape[1]
    lo = np.zeros(k, dtype=np.int64) if low is None else np.ceil(np.asarray(low) * scale - 1e-6).astype(np.int64)
    hi = np.full(k, scale, dtype=np.int64) if high is None else np.floor(np.asarray(high) * scale + 1e-6).astype(np.int64)
    if low is not None:
        W = _within(W, lo / scale, hi / scale)
    # Integer units of 10**-MIXTURE_DECIMALS summing exactly to one, within the bounds; the units
    # lost or gained by rounding go to the weights whose rounding moved them most (largest
    # remainder first, each taking as many as its bound allows).
    units = np.clip(np.round(W * scale).astype(np.int64), lo, hi)
    error = W * scale - units
    short = scale - units.sum(axis=1, keepdims=True)
    gain = short > 0
    order = np.argsort(np.where(gain, -error, error), axis=1, kind="stable")
    room = np.take_along_axis(np.where(gain, hi - units, units - lo), order, axis=1)
    before = np.cumsum(room, axis=1) - room
    move = np.clip(np.abs(short) - before, 0, room)
    np.put_along_axis(units, order, np.take_along_axis(units, order, axis=1) + np.sign(short) * move, axis=1)
    return units / scale


def _within(W: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """The rows of ``W`` moved inside the bounds, each to ``clip(w - t, low, high)`` summing to one
    (``t`` by bisection, per row): each weight shifted alike until the bounds stop it."""
    lo_t = (W - high).min(axis=1) - 1.0
    hi_t = (W - low).max(axis=1) + 1.0
    for _ in range(100):
        t = 0.5 * (lo_t + hi_t)
        over = np.clip(W - t[:, None], low, high).sum(axis=1) > 1.0
        lo_t, hi_t = np.where(over, t, lo_t), np.where(over, hi_t, t)
    return np.clip(W - 0.5 * (lo_t + hi_t)[:, None], low, high)
