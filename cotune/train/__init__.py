"""The real training backend: fresh base model per trial, data mixtures, LoRA training, evaluation.

``import cotune.train`` stays light: torch, transformers and peft load inside the functions
that need them (in a trial's subprocess, normally).
"""

from cotune.exceptions import TrialFailedError, TrialTimeoutError
from cotune.train.config import DataConfig, EvalConfig, LoraDefaults, ModelConfig, TrainConfig
from cotune.train.data import mixture_counts
from cotune.train.demo_data import DemoData, build_demo_data
from cotune.train.errors import (
    TrainingConfigError,
    TrainingDivergedError,
    TrainingError,
)
from cotune.train.lora import params_to_lora_dict
from cotune.train.model import default_cache_dir, smollm2_model_config
from cotune.train.objective import TrainingObjective, demo_objective

__all__ = [
    "DataConfig",
    "DemoData",
    "EvalConfig",
    "LoraDefaults",
    "ModelConfig",
    "TrainConfig",
    "TrainingConfigError",
    "TrainingDivergedError",
    "TrainingError",
    "TrainingObjective",
    "TrialFailedError",
    "TrialTimeoutError",
    "build_demo_data",
    "default_cache_dir",
    "demo_objective",
    "mixture_counts",
    "params_to_lora_dict",
    "smollm2_model_config",
]
