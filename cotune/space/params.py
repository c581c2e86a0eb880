"""Parameter types of a search space and their one-dimensional unit-interval encoding."""

from __future__ import annotations

import abc
import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from cotune.exceptions import SpaceError

#: Discrete dimensions with at most this many values are searched value by value by the
#: acquisition optimiser; larger ones are relaxed to a continuous dimension and rounded.
MAX_DISCRETE_VALUES = 32
#: Significant digits kept by decoded floats.
FLOAT_DIGITS = 10


class Param(abc.ABC):
    """One model parameter: its bounds, default and mapping to ``[0, 1]``."""

    kind: ClassVar[str]

    @abc.abstractmethod
    def encode(self, value: Any) -> float:
        """Map a valid value to ``[0, 1]``."""

    @abc.abstractmethod
    def decode(self, u: float) -> Any:
        """Map any number to the nearest valid value (clipping to ``[0, 1]`` first)."""

    @abc.abstractmethod
    def validate(self, value: Any, name: str) -> Any:
        """Return ``value`` as this parameter's type, or raise `SpaceError` naming ``name``."""

    @property
    @abc.abstractmethod
    def default_value(self) -> Any:
        """The value a user's current setup would use."""

    def grid(self) -> list[float] | None:
        """Encoded values of a discrete parameter, or None for a continuous one."""
        return None

    def round_many(self, u: np.ndarray) -> np.ndarray:
        """``encode(decode(x))`` for every finite ``x`` of ``u``: the encodings as trained."""
        return np.array([self.encode(self.decode(float(x))) for x in u], dtype=np.float64)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able description, the inverse of `param_from_dict`."""
        return {"kind": self.kind, **dataclasses.asdict(self)}  # type: ignore[call-overload]


def _clip01(u: float) -> float:
    if not math.isfinite(u):
        raise SpaceError(f"cannot decode the non-finite encoded value {u!r}")
    return min(1.0, max(0.0, float(u)))


def _round_decimals(v: np.ndarray, digits: np.ndarray, fallback: np.ndarray, inputs: np.ndarray,
                    exact: Callable[[float], float]) -> np.ndarray:
    """``round(x, d)`` for every ``x`` of ``v`` and ``d`` of ``digits``, as Python rounds floats (to the
    nearest decimal, ties to even): ``rint(x * 10**d) / 10**d`` is exact except within rounding
    error of a tie, so those (and ``fallback`` ones) take ``exact`` of their ``inputs``, the scalar path."""
    out = np.empty_like(v)
    ok = ~fallback & (np.abs(digits) <= 22)
    d = np.where(ok, digits, 0.0)
    up = d >= 0
    scale = 10.0 ** np.abs(d)
    x = np.where(up, v * scale, v / scale)
    q = np.rint(x)
    ok &= np.abs(x - np.floor(x) - 0.5) > 1e-3
    out[ok] = np.where(up, q / scale, q * scale)[ok]
    if not ok.all():
        distinct, index = np.unique(inputs[~ok], return_inverse=True)  # e.g. every clipped point at once
        out[~ok] = np.array([exact(float(x)) for x in distinct])[index.reshape(-1)]
    return out


def _check_bounds(low: float, high: float, log: bool, cls: str) -> None:
    if not (math.isfinite(low) and math.isfinite(high)):
        raise SpaceError(f"{cls} bounds must be finite, got low={low!r}, high={high!r}")
    if low >= high:
        raise SpaceError(f"{cls} needs low < high, got low={low!r}, high={high!r}")
    if log and low <= 0:
        raise SpaceError(f"{cls}(log=True) needs low > 0, got low={low!r}; use log=False or a positive low")


@dataclasses.dataclass(frozen=True)
class Float(Param):
    """A real number in ``[low, high]``, on a log scale when ``log`` (for rates, alphas)."""

    low: float
    high: float
    log: bool = False
    default: float | None = None
    kind: ClassVar[str] = "float"

    def __post_init__(self) -> None:
        _check_bounds(self.low, self.high, self.log, "Float")
        if self.default is not None and not self.low <= self.default <= self.high:
            raise SpaceError(f"Float default {self.default!r} is outside [{self.low}, {self.high}]")

    @property
    def default_value(self) -> float:
        if self.default is not None:
            return float(self.default)
        return math.sqrt(self.low * self.high) if self.log else (self.low + self.high) / 2

    def encode(self, value: Any) -> float:
        v = float(value)
        if self.log:
            return (math.log(v) - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (v - self.low) / (self.high - self.low)

    def decode(self, u: float) -> float:
        u = _clip01(u)
        # One exact, storable value per configuration, stable under encode/decode: 10 significant
        # digits on a log scale, 10 digits of the range on a linear one (so 0 stays 0, not 1e-18).
        if self.log:
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
            v = float(f"{v:.{FLOAT_DIGITS}g}")
        else:
            v = self.low + u * (self.high - self.low)
            v = round(v, FLOAT_DIGITS - 1 - math.floor(math.log10(self.high - self.low)))
        return min(self.high, max(self.low, v))

    def decode_many(self, u: np.ndarray) -> np.ndarray:
        """`decode` of every finite value of ``u``, exactly, in numpy (the acquisition optimiser
        rounds thousands of candidates); rounding ties and decade edges go through `decode`."""
        u = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            v = np.exp(lo + u * (hi - lo))
            with np.errstate(divide="ignore"):
                exponent = np.log10(v)
            digits = FLOAT_DIGITS - 1 - np.floor(exponent)
            edge = np.abs(exponent - np.rint(exponent)) < 1e-9
        else:
            v = self.low + u * (self.high - self.low)
            digits = np.full(v.shape, FLOAT_DIGITS - 1 - math.floor(math.log10(self.high - self.low)), dtype=np.float64)
            edge = np.zeros(v.shape, dtype=bool)
        v = _round_decimals(v, digits, edge, u, self.decode)
        return np.where(v < self.high, np.where(v > self.low, v, self.low), self.high)

    def round_many(self, u: np.ndarray) -> np.ndarray:
        v = self.decode_many(u)
        if self.log:  # math.log, as `encode`: numpy's log may differ in the last bit on some CPUs
            logs = np.fromiter(map(math.log, v.tolist()), dtype=np.float64, count=v.size)
            return (logs - math.log(self.low)) / (math.log(self.high) - math.log(self.low))
        return (v - self.low) / (self.high - self.low)

    def validate(self, value: Any, name: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpaceError(f"parameter {name!r} must be a number, got {value!r}")
        if not self.low <= float(value) <= self.high:
            raise SpaceError(f"parameter {name!r}={value!r} is outside [{self.low}, {self.high}]")
        return float(value)


@dataclasses.dataclass(frozen=True)
class Int(Param):
    """An integer in ``[low, high]`` (both included), on a log scale when ``log`` (for ranks)."""

    low: int
    high: int
    log: bool = False
    default: int | None = None
    kind: ClassVar[str] = "int"

    def __post_init__(self) -> None:
        for field in ("low", "high"):
            if isinstance(getattr(self, field), bool) or not isinstance(getattr(self, field), int):
                raise SpaceError(f"Int {field} must be an int, got {getattr(self, field)!r}")
        _check_bounds(self.low, self.high, self.log, "Int")
        if self.default is not None:
            if isinstance(self.default, bool) or not isinstance(self.default, int):
                raise SpaceError(f"Int default must be an int, got {self.default!r}")
            if not self.low <= self.default <= self.high:
                raise SpaceError(f"Int default {self.default!r} is outside [{self.low}, {self.high}]")

    @property
    def _relaxed(self) -> Float:
        return Float(float(self.low), float(self.high), self.log)

    @property
    def default_value(self) -> int:
        if self.default is not None:
            return self.default
        return int(round(self._relaxed.default_value))

    def encode(self, value: Any) -> float:
        return self._relaxed.encode(value)

    def decode(self, u: float) -> int:
        return int(min(self.high, max(self.low, round(self._relaxed.decode(u)))))

    def round_many(self, u: np.ndarray) -> np.ndarray:
        values = np.clip(np.rint(self._relaxed.decode_many(u)), self.low, self.high)
        distinct, index = np.unique(values, return_inverse=True)
        return np.array([self.encode(int(v)) for v in distinct], dtype=np.float64)[index.reshape(-1)]

    def grid(self) -> list[float] | None:
        return [self.encode(v) for v in range(self.low, self.high + 1)]

    def validate(self, value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            else:
                raise SpaceError(f"parameter {name!r} must be an int, got {value!r}")
        if not self.low <= value <= self.high:
            raise SpaceError(f"parameter {name!r}={value!r} is outside [{self.low}, {self.high}]")
        return int(value)


@dataclasses.dataclass(frozen=True)
class Bool(Param):
    """An on/off switch (e.g. a LoRA target module)."""

    default: bool = False
    kind: ClassVar[str] = "bool"

    @property
    def default_value(self) -> bool:
        return bool(self.default)

    def encode(self, value: Any) -> float:
        return 1.0 if value else 0.0

    def decode(self, u: float) -> bool:
        return _clip01(u) >= 0.5

    def round_many(self, u: np.ndarray) -> np.ndarray:
        return (np.asarray(u, dtype=np.float64) >= 0.5).astype(np.float64)

    def grid(self) -> list[float]:
        return [0.0, 1.0]

    def validate(self, value: Any, name: str) -> bool:
        if not isinstance(value, bool):
            raise SpaceError(f"parameter {name!r} must be a bool, got {value!r}")
        return value


@dataclasses.dataclass(frozen=True)
class Choice(Param):
    """One of a few values (strings, numbers or bools), e.g. the optimizer."""

    choices: Sequence[Any]
    default: Any = None
    kind: ClassVar[str] = "choice"

    def __post_init__(self) -> None:
        object.__setattr__(self, "choices", tuple(self.choices))
        if not self.choices:
            raise SpaceError("Choice needs at least one value")
        if len(set(map(repr, self.choices))) != len(self.choices):
            raise SpaceError(f"Choice values must be distinct, got {list(self.choices)!r}")
        if self.default is not None and self.default not in self.choices:
            raise SpaceError(f"Choice default {self.default!r} is not one of {list(self.choices)!r}")

    @property
    def default_value(self) -> Any:
        return self.choices[0] if self.default is None else self.default

    def _index(self, value: Any) -> int:
        for i, choice in enumerate(self.choices):
            if type(choice) is type(value) and choice == value:
                return i
        raise SpaceError(f"{value!r} is not one of {list(self.choices)!r}")

    def encode(self, value: Any) -> float:
        k = len(self.choices)
        return self._index(value) / (k - 1) if k > 1 else 0.0

    def decode(self, u: float) -> Any:
        k = len(self.choices)
        return self.choices[int(round(_clip01(u) * (k - 1)))]

    def round_many(self, u: np.ndarray) -> np.ndarray:
        k = len(self.choices)
        return np.rint(np.clip(u, 0.0, 1.0) * (k - 1)) / (k - 1) if k > 1 else np.zeros(len(u))

    def grid(self) -> list[float]:
        k = len(self.choices)
        return [i / (k - 1) for i in range(k)] if k > 1 else [0.0]

    def validate(self, value: Any, name: str) -> Any:
        try:
            return self.choices[self._index(value)]
        except SpaceError as err:
            raise SpaceError(f"parameter {name!r}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "choices": list(self.choices), "default": self.default}


_PARAM_TYPES: dict[str, type[Param]] = {cls.kind: cls for cls in (Float, Int, Bool, Choice)}


def param_from_dict(data: dict[str, Any]) -> Param:
    """Rebuild a parameter from `Param.to_dict` output."""
    data = dict(data)
    kind = data.pop("kind", None)
    if kind not in _PARAM_TYPES:
        raise SpaceError(f"unknown parameter kind {kind!r}; expected one of {sorted(_PARAM_TYPES)}")
    return _PARAM_TYPES[kind](**data)
