"""Search spaces: parameter types, the mixture simplex, encodings and designs."""

from cotune.space.design import cube_to_encoded, initial_design, random_configs, random_encoded, sobol_design
from cotune.space.lora import TARGET_SWITCHES, lora_space
from cotune.space.params import Bool, Choice, Float, Int, Param
from cotune.space.search_space import Config, SearchSpace

__all__ = [
    "Bool",
    "Choice",
    "Config",
    "Float",
    "Int",
    "Param",
    "SearchSpace",
    "TARGET_SWITCHES",
    "cube_to_encoded",
    "initial_design",
    "lora_space",
    "random_configs",
    "random_encoded",
    "sobol_design",
]
