"""Every example study file runs end to end on the tiny model: its method, space, baseline, tasks,
fine-tuning mode and budget unit as written, with the model, data and budgets made tiny."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
import yaml

from cotune.cli import main
from cotune.demo import DemoSettings
from cotune.study import Study

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: Full runs of this many optimizer steps (or their tokens, flops or seconds); the study affords three.
STEPS = 2


def tiny_budgets(unit: str, model_params: int) -> tuple[float, float]:
    """A full and a short budget of about ``STEPS`` and one step of the tiny model in ``unit``."""
    tokens_per_step = 4 * 12  # batch 4, about 12 non-padding tokens a row
    per_step = {"steps": 1.0, "tokens": tokens_per_step, "flops": 6.0 * model_params * tokens_per_step,
                "seconds": 0.5}[unit]
    return STEPS * per_step, per_step


def shrink(example: dict, tiny_model: str, data_files: dict[str, str], model_params: int, storage: Path) -> dict:
    """``example`` with the tiny model, the fixture data under the example's own domain names,
    the fixture evaluation of each task's kind, and three full runs of budget; all else as written."""
    study = dict(example)
    study["model"] = {"name_or_path": tiny_model, "device": "cpu"}
    domains = example["data"]["domains"]
    names = DemoSettings().domains.split(",") if domains == "packaged" else list(domains)
    files = itertools.cycle([data_files[k] for k in ("alpha", "beta", "gamma")])
    study["data"] = {"domains": {name: next(files) for name in names}, "n_examples": 16, "max_length": 24}
    by_kind = {"multiple_choice": data_files["mc"], "exact_match": data_files["em"], "loss": data_files["alpha"]}
    tasks = example["evaluation"] if isinstance(example["evaluation"], list) else [example["evaluation"]]
    tiny_tasks = [{**task, "path": by_kind[task["kind"]], "n_examples": 6, "batch_size": 8,
                   **({"max_new_tokens": 3} if task["kind"] == "exact_match" else {})} for task in tasks]
    study["evaluation"] = tiny_tasks if isinstance(example["evaluation"], list) else tiny_tasks[0]
    study["train"] = {**example.get("train", {}), "batch_size": 4, "learning_rate": 1.0e-2, "timeout_s": 300}
    space = dict(example.get("space", {}))
    if isinstance(space.get("n_layers"), int):
        space["n_layers"] = "auto"  # the tiny model has 4 layers
    study["space"] = space
    full, small = tiny_budgets(example["study"].get("budget_unit", "steps"), model_params)
    kept = {k: v for k, v in example["study"].items() if k not in ("n_init", "n_confirm", "storage")}
    study["study"] = {**kept, "full_budget": full, "small_budget": small, "total_budget": 3 * full,
                      "storage": str(storage)}
    study.pop("execution", None)  # a Ray cluster or GPUs are not here: trials run in this process
    return study


@pytest.fixture(scope="module")
def tiny_params(tiny_model) -> int:
    """The tiny model's parameter count (what a flops budget counts), loaded once for every example."""
    from transformers import AutoModelForCausalLM

    return sum(p.numel() for p in AutoModelForCausalLM.from_pretrained(tiny_model).parameters())


@pytest.mark.usefixtures("trials_in_this_process")
@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.yaml")))
def test_example_runs_on_the_tiny_model(name, tiny_model, tiny_params, data_files, tmp_path, capsys):
    example = yaml.safe_load((EXAMPLES / name).read_text())
    study_file = tmp_path / name
    study_file.write_text(yaml.safe_dump(shrink(example, tiny_model, data_files, tiny_params, tmp_path / "run.db")))

    assert main(["run", str(study_file)]) == 0
    capsys.readouterr()
    study = Study.load(tmp_path / "run.db")
    done = [t for t in study.trials if t.state.value == "complete"]
    assert len(done) >= 2 and study.settings.method == example["study"].get("method", "jobs")
    # a run stops after the step that reaches its budget: at most about a step over, per trial
    step = tiny_budgets(study.settings.budget_unit, tiny_params)[1]
    assert sum(t.cost for t in study.trials) <= study.settings.total_budget + len(study.trials) * 1.5 * step
    baseline = example.get("space", {}).get("baseline")
    if baseline is not None:  # the team's own configuration is the method's first trial (after enqueued ones)
        first = next(t for t in study.trials if t.role.value != "user").config
        assert first.mixture == pytest.approx(baseline["mixture"])
        assert all(first.params[k] == v for k, v in baseline.get("params", {}).items())
    if isinstance(example["evaluation"], list):  # every task's score is kept on every trial
        names = {task["name"] for task in example["evaluation"]}
        assert all(set(t.task_scores) == names for t in done)
    assert main(["best", str(tmp_path / "run.db")]) == 0
