"""cotune: joint optimisation of the training data mixture and the LoRA configuration (JoBS)."""

from cotune.exceptions import (
    CotuneError,
    CotuneWarning,
    SettingsError,
    SpaceError,
    StorageError,
    StudyBusyError,
    StudyMismatchError,
    TrialFailedError,
    TrialStateError,
    TrialTimeoutError,
    UnguardedMainError,
    WorkerLostError,
)
from cotune import executors
from cotune.optimize import optimize
from cotune.space import Bool, Choice, Config, Float, Int, SearchSpace, lora_space
from cotune.storage import Storage
from cotune.study import OptimizeResult, Study
from cotune.trial import Result, Role, Trial, TrialState

__version__ = "0.1.0"

__all__ = [
    "Bool",
    "Choice",
    "Config",
    "CotuneError",
    "CotuneWarning",
    "Float",
    "Int",
    "OptimizeResult",
    "Result",
    "Role",
    "SearchSpace",
    "SettingsError",
    "SpaceError",
    "Storage",
    "StorageError",
    "Study",
    "StudyBusyError",
    "StudyMismatchError",
    "Trial",
    "TrialFailedError",
    "TrialState",
    "TrialStateError",
    "TrialTimeoutError",
    "UnguardedMainError",
    "WorkerLostError",
    "executors",
    "lora_space",
    "optimize",
]
