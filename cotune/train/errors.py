"""Errors of the training backend; all derive from `cotune.exceptions.CotuneError`."""

from __future__ import annotations

from cotune.exceptions import CotuneError


class TrainingError(CotuneError, RuntimeError):
    """A training trial could not run or did not finish (the optimiser records it as failed)."""


class TrainingConfigError(CotuneError, ValueError):
    """A training setting or a trial's parameters are invalid; the message names the fix."""


class TrainingDivergedError(TrainingError):
    """The training loss became NaN or infinite."""
