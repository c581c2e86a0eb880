"""Study settings: budgets, method and modelling choices, validated once and stored with the study."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any, Literal

from cotune.exceptions import CotuneWarning, SettingsError

KERNELS = ("matern", "deep")
ACQUISITIONS = ("ucb", "logei")
#: When `jobs` searches with short runs: once its full runs show they pay, or always (the paper's JoBS).
SHORT_RUNS = ("tested", "always")
#: What a unit of budget is; ``flops`` counts 6 x the model's parameters x the tokens trained on.
BUDGET_UNITS = ("seconds", "steps", "tokens", "flops")


@dataclasses.dataclass(frozen=True, kw_only=True)
class StudySettings:
    """Everything that defines a study besides its space; a resumed study must match it exactly."""

    method: str = dataclasses.field(default="jobs", metadata={"help": "optimisation method"})
    total_budget: float = dataclasses.field(metadata={"help": "budget of the whole study, C"})
    full_budget: float = dataclasses.field(metadata={"help": "budget of one full run, B"})
    small_budget: float | None = dataclasses.field(
        default=None, metadata={"help": "budget of one short run, b (default B/20, as in the paper)"}
    )
    n_init: int | Literal["auto"] | None = dataclasses.field(
        default=None, metadata={"help": "full runs that teach the predictor: a count, 'auto' to minimise the "
                                        "regret bound, or None for 60% of the budget (jobs' default)"}
    )
    n_confirm: int | None = dataclasses.field(
        default=None, metadata={"help": "full runs confirming the best short-run configurations, k: a count (made "
                                        "last), or None for the method's default (jobs: half of what its initial "
                                        "full runs leave, spread over the search; mfms: 3)"}
    )
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of every random choice"})
    budget_unit: Literal["seconds", "steps", "tokens", "flops"] = dataclasses.field(
        default="steps", metadata={"help": "what a unit of budget is"}
    )
    kernel: Literal["matern", "deep"] = dataclasses.field(default="matern", metadata={"help": "GP kernel"})
    acquisition: Literal["ucb", "logei"] = dataclasses.field(default="ucb", metadata={"help": "acquisition function"})
    short_runs: Literal["tested", "always"] = dataclasses.field(
        default="tested", metadata={"help": "jobs: search with short runs once the study's own full runs show they "
                                            "pay (tested), or after n_init full runs whatever they show (always: "
                                            "the paper's JoBS, to measure what the test buys)"}
    )
    proxies: dict[str, float] = dataclasses.field(
        default_factory=dict, metadata={"help": "proxy models (e.g. a small sibling of the target) by name, each with "
                                                "what a unit of its budget costs in the target's units (0 < cost < 1)"}
    )

    def __post_init__(self) -> None:
        if self.small_budget is None:
            object.__setattr__(self, "small_budget", self.full_budget / 20)
        for name in ("total_budget", "full_budget", "small_budget"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise SettingsError(f"{name} must be a positive number, got {value!r}")
            object.__setattr__(self, name, float(value))
        if not self.small_budget < self.full_budget:
            raise SettingsError(
                f"small_budget ({self.small_budget}) must be smaller than full_budget ({self.full_budget})"
            )
        if self.full_budget > self.total_budget:
            raise SettingsError(
                f"full_budget ({self.full_budget}) exceeds total_budget ({self.total_budget}); "
                "no full run would fit: raise total_budget or lower full_budget"
            )
        from cotune.methods import METHODS

        if self.method not in METHODS:
            raise SettingsError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.n_init not in (None, "auto") and (
            isinstance(self.n_init, bool) or not isinstance(self.n_init, int) or self.n_init < 1
        ):
            raise SettingsError(f"n_init must be a positive int, 'auto' or None, got {self.n_init!r}")
        if self.n_confirm is not None and (
            isinstance(self.n_confirm, bool) or not isinstance(self.n_confirm, int) or self.n_confirm < 0
        ):
            raise SettingsError(f"n_confirm must be an int >= 0 or None, got {self.n_confirm!r}")
        for name, allowed in (("budget_unit", BUDGET_UNITS), ("kernel", KERNELS), ("acquisition", ACQUISITIONS),
                              ("short_runs", SHORT_RUNS)):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise SettingsError(f"seed must be an int, got {self.seed!r}")
        object.__setattr__(self, "proxies", _checked_proxies(self.proxies))

    def charge(self, budget: float, proxy: str | None = None) -> float:
        """What a run of ``budget`` on ``proxy`` (None: the target) costs in the target's units."""
        return budget * (1.0 if proxy is None else self.proxies[proxy])

    @property
    def n_init_count(self) -> int | None:
        """The number of initial full runs the user fixed, or None when the method chooses (None or 'auto')."""
        return self.n_init if isinstance(self.n_init, int) else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form stored with the study."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudySettings:
        """Rebuild settings from `StudySettings.to_dict` output; a setting this version does not
        know (stored by a newer one) is dropped with a warning, a missing one takes its default."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            warnings.warn(f"study settings {', '.join(unknown)} are unknown to this cotune and ignored "
                          "(stored by a newer version?)", CotuneWarning, stacklevel=2)
        return cls(**{k: v for k, v in data.items() if k in known})


def _checked_proxies(proxies: Any) -> dict[str, float]:
    """``proxies`` as a plain ``{name: cost factor}`` dict, or `SettingsError` saying what is wrong."""
    if not isinstance(proxies, Mapping):
        raise SettingsError(f"proxies must map proxy names to their cost per unit of budget, e.g. "
                            f"{{'smollm2-135m': 0.05}}, got {proxies!r}")
    out = {}
    for name, cost in proxies.items():
        if not isinstance(name, str) or not name:
            raise SettingsError(f"proxy names must be non-empty strings, got {name!r}")
        if isinstance(cost, bool) or not isinstance(cost, (int, float)) or not 0 < cost < 1:
            raise SettingsError(f"proxy {name!r} must cost a number in (0, 1) per unit of the target's budget "
                                f"(a proxy cheaper than the target), got {cost!r}")
        out[name] = float(cost)
    return out
