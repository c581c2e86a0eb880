"""Trials (one training run of one configuration at one budget) and objective results."""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping, Sequence
from typing import Any

from cotune.exceptions import CotuneError
from cotune.space.search_space import Config


class TrialState(str, enum.Enum):
    """Life cycle of a trial: WAITING (queued) -> RUNNING -> COMPLETE or FAIL."""

    WAITING = "waiting"
    RUNNING = "running"
    COMPLETE = "complete"
    FAIL = "fail"

    @property
    def finished(self) -> bool:
        """True for states that never change again."""
        return self in (TrialState.COMPLETE, TrialState.FAIL)


class Role(str, enum.Enum):
    """Why a method asked for a trial; decides how the trial enters the surrogate."""

    FULL = "full"  # a full-budget run that teaches the predictor and anchors the GP
    SHORT = "short"  # a short run whose full-budget score is predicted
    CONFIRM = "confirm"  # a full-budget run confirming a promising short-run configuration
    USER = "user"  # a configuration the user queued (`Study.enqueue`), trained before the method's next proposal


@dataclasses.dataclass(frozen=True)
class Result:
    """What an objective may return instead of a bare score.

    Args:
        score: The score at the end of the run (higher is better).
        cost: Budget actually used, charged instead of the requested budget.
        curve: Scores seen during the run, budget -> score (e.g. at the small budget).
        info: Free-form JSON-able details kept with the trial (timings, losses).
    """

    score: float
    cost: float | None = None
    curve: Mapping[float, float] | None = None
    info: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.score, bool) or not isinstance(self.score, (int, float)):
            raise CotuneError(f"Result.score must be a number, got {self.score!r}")
        if self.cost is not None and (not math.isfinite(self.cost) or self.cost < 0):
            raise CotuneError(f"Result.cost must be a finite number >= 0, got {self.cost!r}")
        if self.curve is not None:
            curve = {float(b): float(s) for b, s in self.curve.items()}
            object.__setattr__(self, "curve", dict(sorted(curve.items())))


@dataclasses.dataclass(frozen=True)
class Trial:
    """A read-only record of one training run.

    ``score`` is the measured score at ``budget``; ``predicted`` and ``predicted_var`` hold the
    predictor's estimate of the full-budget score for short runs; ``curve`` maps budgets seen
    during the run to scores; ``cost`` is the budget charged; ``error`` is the failure text.
    ``fidelity`` names the proxy model the run trained (None: the target model); a proxy's
    ``budget`` is in its own units and its ``cost``, reserved as it starts, in the target's.
    """

    number: int
    config: Config
    budget: float
    role: Role
    state: TrialState
    score: float | None = None
    predicted: float | None = None
    predicted_var: float | None = None
    cost: float | None = None
    curve: dict[float, float] = dataclasses.field(default_factory=dict)
    error: str | None = None
    info: dict[str, Any] = dataclasses.field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    fidelity: str | None = None

    @property
    def charged(self) -> float:
        """Budget this trial counts against the total: its cost once finished (or, for a proxy's run,
        reserved), else its budget."""
        if self.cost is not None and (self.state.finished or self.fidelity is not None):
            return self.cost
        return self.budget

    @property
    def task_scores(self) -> dict[str, float]:
        """Each task's score when the study scores several (the training backend stores them as
        ``<task>/score`` among the metrics at the trial's budget); empty otherwise."""
        metrics = (self.info.get("metrics") or {}).get(str(float(self.budget))) or {}
        return {k[: -len("/score")]: v for k, v in metrics.items() if k.endswith("/score")}

    def score_at(self, budget: float, rel_tol: float = 1e-6) -> float | None:
        """The score this trial measured at ``budget`` (its final score or a curve point)."""
        if self.state is not TrialState.COMPLETE:
            return None
        if math.isclose(self.budget, budget, rel_tol=rel_tol) and self.score is not None:
            return self.score
        for b, s in self.curve.items():
            if math.isclose(b, budget, rel_tol=rel_tol):
                return s
        return None


def incumbents(trials: Sequence[Trial], full_budget: float) -> list[tuple[float, Trial | None]]:
    """After each finished trial, in finishing order: the budget spent so far and the best trial
    measured at ``full_budget`` of the target model so far (None before the first), i.e. the answer
    at that moment."""
    spent, best, out = 0.0, None, []
    for trial in sorted((t for t in trials if t.state.finished), key=lambda t: t.finished_at or 0.0):
        spent += trial.charged
        if (trial.state is TrialState.COMPLETE and trial.budget == full_budget and trial.fidelity is None
                and trial.score is not None):
            if best is None or trial.score > best.score:
                best = trial
        out.append((spent, best))
    return out


def finite_curve(curve: Any) -> tuple[dict[float, float], list[float]]:
    """The points of ``curve`` with a finite positive budget and a finite score, and the budgets dropped.

    A NaN or inf point would reach the predictor's training pairs and make every later `ask` raise.
    """
    kept: dict[float, float] = {}
    dropped: list[float] = []
    for budget, score in curve.items():
        b, s = float(budget), float(score)
        if math.isfinite(b) and b > 0 and math.isfinite(s):
            kept[b] = s
        else:
            dropped.append(b)
    return kept, dropped
