"""Optimisation methods, one module each, looked up by name."""

from __future__ import annotations

import importlib

from cotune.exceptions import SettingsError
from cotune.methods.base import History, Method, TrialRequest
from cotune.settings import StudySettings
from cotune.space.search_space import SearchSpace

#: Method name -> "module:Class"; modules are imported on use so that `import cotune` stays light.
METHODS: dict[str, str] = {
    "jobs": "cotune.methods.jobs:JobsMethod",
    "random": "cotune.methods.random:RandomMethod",
    "bo": "cotune.methods.bo:BOMethod",
    "bo-data": "cotune.methods.bo_data:BODataMethod",
    "bo-model": "cotune.methods.bo_model:BOModelMethod",
    "alternating": "cotune.methods.alternating:AlternatingMethod",
    "hyperband": "cotune.methods.hyperband:HyperbandMethod",
    "mfms": "cotune.methods.mfms:MFMSMethod",
}


def make_method(name: str, space: SearchSpace, settings: StudySettings) -> Method:
    """Instantiate the method called ``name``."""
    if name not in METHODS:
        raise SettingsError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    module, cls = METHODS[name].split(":")
    return getattr(importlib.import_module(module), cls)(space, settings)


__all__ = ["METHODS", "History", "Method", "TrialRequest", "make_method"]
