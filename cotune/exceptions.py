"""The library's root exception and warning, and the errors users may catch."""

from __future__ import annotations


class CotuneError(Exception):
    """Root of every error cotune raises on purpose."""


class CotuneWarning(UserWarning):
    """Root of every warning cotune emits."""


class SpaceError(CotuneError, ValueError):
    """A search space or a configuration is invalid."""


class SettingsError(CotuneError, ValueError):
    """Study settings are invalid or contradict each other."""


class StorageError(CotuneError, RuntimeError):
    """The study's storage could not be read or written."""


class StudyMismatchError(StorageError):
    """A stored study was created with another space or other settings than the ones given."""


class TrialStateError(CotuneError, RuntimeError):
    """A trial was told a result in a state that does not accept one (e.g. already finished)."""


class TrialFailedError(CotuneError, RuntimeError):
    """A trial raised, crashed or was killed where it ran; the message holds its error text."""


class TrialTimeoutError(TrialFailedError, TimeoutError):
    """A trial ran past its wall-clock limit and was stopped."""


class WorkerLostError(TrialFailedError):
    """The process or machine running a trial died without reporting a result."""


class StudyBusyError(CotuneError, RuntimeError):
    """Another live process is running the study (a study has one driver at a time)."""


class UnguardedMainError(SettingsError):
    """A trial's subprocess, importing the main script as it started, found the script starting a
    study: the script needs its ``if __name__ == "__main__":`` guard. Stops the study."""
