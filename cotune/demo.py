"""`cotune demo`: JoBS on real LoRA fine-tuning of the packaged SmolLM2-135M, on the CPU.

Six training domains built from installed packages (trivia categories, country facts, Python's
documentation). The default task (``blend``) is a target the user wants the model good at: an
uneven blend (`TARGET`) of facts about countries and of Python documentation topics that no
training row holds, scored by the held-out loss; the four trivia domains are distractors, and the
learning rate is searched with the mixture and the LoRA settings. ``--task trivia`` scores
held-out 4-way trivia questions instead (the demo of cotune 0.1). The settings below finish in
about 6-7 minutes on a 2-core CPU: four full runs teach the predictor, then short runs search and
two full runs confirm if the short runs pay, or full runs go on if they do not.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from cotune.space.lora import lora_space
from cotune.space.params import Float
from cotune.space.search_space import SearchSpace
from cotune.study import OptimizeResult, Study
from cotune.train.errors import TrainingConfigError

if TYPE_CHECKING:
    from cotune.train import TrainingObjective

logger = logging.getLogger(__name__)

#: The demo's tasks: a blend of held-out rows of two training domains, or held-out trivia questions.
TASKS = ("blend", "trivia")
#: The ``blend`` task's target: held-out rows of these domains, by weight (score: minus the weighted loss).
TARGET = {"countries": 0.75, "python_docs": 0.25}
#: The ``trivia`` task's score: the mean probability of the right one of four answers (smoother than accuracy).
METRIC = "prob_correct"
#: The learning rates the ``blend`` task searches (log scale), around the loop's default of 1e-3.
LEARNING_RATES = (1e-4, 1e-2)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DemoSettings:
    """Budgets (in training steps) and sizes of the demo; every field has a CPU-friendly default."""

    full_budget: float = dataclasses.field(default=20, metadata={"help": "steps of a full run, B"})
    small_budget: float = dataclasses.field(default=5, metadata={"help": "steps of a short run, b"})
    n_init: int = dataclasses.field(default=4, metadata={"help": "full runs that teach the predictor"})
    n_short: int = dataclasses.field(default=10, metadata={"help": "short runs of the search"})
    n_confirm: int = dataclasses.field(default=2, metadata={"help": "final confirmation full runs"})
    batch_size: int = dataclasses.field(default=4, metadata={"help": "sequences per step (of 128 tokens at most)"})
    micro_batch_size: int = dataclasses.field(
        default=4, metadata={"help": "sequences per forward pass, grouped by length (a divisor of the batch size)"})
    warmup_steps: int = dataclasses.field(default=5, metadata={"help": "steps of linear learning-rate warm-up"})
    domains: str = dataclasses.field(
        default="games,pop_culture,science_sports,us_geography,countries,python_docs",
        metadata={"help": "comma-separated training domains of the mixture, of the six the demo builds"})
    n_examples: int = dataclasses.field(default=256, metadata={"help": "training examples, split by the mixture"})
    n_eval: int = dataclasses.field(
        default=24, metadata={"help": "held-out rows of each target domain (blend) or questions (trivia) scored"})
    max_rank: int = dataclasses.field(default=64, metadata={"help": "largest LoRA rank searched"})
    max_alpha: float = dataclasses.field(default=500.0, metadata={"help": "largest LoRA alpha searched"})
    seed: int = dataclasses.field(default=0, metadata={"help": "seed of the study and of the data"})
    task: str = dataclasses.field(
        default="blend", metadata={"help": "what the answer is scored on: 'blend' (held-out countries and Python "
                                           "docs, 3:1, by loss; the learning rate is searched too) or 'trivia' "
                                           "(held-out 4-way trivia questions, the demo of cotune 0.1 with --n-eval 48)"})

    @property
    def total_budget(self) -> float:
        """``C = n_init B + T b + k B``."""
        return (self.n_init + self.n_confirm) * self.full_budget + self.n_short * self.small_budget


def demo_training(settings: DemoSettings = DemoSettings()) -> TrainingObjective:
    """The demo's objective: the packaged model and data, trained at ``settings``' sizes (built and cached once)."""
    from cotune.train import demo_objective

    if settings.task not in TASKS:
        raise TrainingConfigError(f"unknown task {settings.task!r}; choose from {', '.join(TASKS)}")
    return demo_objective(
        domains=settings.domains.split(","), small_budget=settings.small_budget, n_examples=settings.n_examples,
        n_eval=settings.n_eval, metric=METRIC, seed=settings.seed, batch_size=settings.batch_size,
        micro_batch_size=settings.micro_batch_size, warmup_steps=settings.warmup_steps,
        target=TARGET if settings.task == "blend" else None,
    )


def demo_space(objective: TrainingObjective, settings: DemoSettings = DemoSettings()) -> SearchSpace:
    """The demo's search space: the paper's joint space over ``objective``'s domains and model
    layers, with the learning rate for the ``blend`` task."""
    space = lora_space(objective.domains, objective.n_layers(), max_rank=settings.max_rank,
                       max_alpha=settings.max_alpha)
    if settings.task != "blend":
        return space
    low, high = LEARNING_RATES
    params = {**space.params, "learning_rate": Float(low, high, log=True, default=objective.train.learning_rate)}
    return SearchSpace(mixture=space.domains, params=params, at_least_one=space.at_least_one)


def _flag(field: dataclasses.Field) -> str:
    """The command-line flag of a `DemoSettings` field: ``batch_size`` is ``--batch-size``."""
    return "--" + field.name.replace("_", "-")


def add_settings_arguments(parser: argparse.ArgumentParser) -> None:
    """One ``--flag`` per `DemoSettings` field, so ``cotune demo`` and the demo's scripts take the same settings."""
    for field in dataclasses.fields(DemoSettings):
        parser.add_argument(_flag(field), type=type(field.default), default=field.default,
                            help=f"{field.metadata['help']} (default {field.default})")


def settings_from_arguments(args: argparse.Namespace) -> DemoSettings:
    """The `DemoSettings` of arguments parsed with `add_settings_arguments`."""
    return DemoSettings(**{field.name: getattr(args, field.name) for field in dataclasses.fields(DemoSettings)})


def settings_flags(settings: DemoSettings) -> list[str]:
    """The command-line arguments that give ``settings``: a flag and its value for each non-default field."""
    default = DemoSettings()
    flags = []
    for field in dataclasses.fields(DemoSettings):
        value = getattr(settings, field.name)
        if value != getattr(default, field.name):
            flags += [_flag(field), str(value)]
    return flags


def run_demo(settings: DemoSettings = DemoSettings(), *, storage: str | Path = "cotune-demo.db",
             progress: bool = True) -> OptimizeResult:
    """Build the demo data and model (cached after the first run) and run the study; resumes from ``storage``."""
    objective = demo_training(settings)
    space = demo_space(objective, settings)
    study = Study(
        space, total_budget=settings.total_budget, full_budget=settings.full_budget,
        small_budget=settings.small_budget, method="jobs", n_init=settings.n_init, n_confirm=settings.n_confirm,
        seed=settings.seed, budget_unit="steps", storage=storage, study_name="demo",
    )
    return study.optimize(objective, progress=progress)
