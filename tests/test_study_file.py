"""Study files: validation with file, key and reason; paths; the examples."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from cotune.cli import main
from cotune.exceptions import SettingsError, StudyBusyError
from cotune.study_file import load_study_file

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
VALID = """
model: {name_or_path: /models/m}
data: {domains: {a: a.jsonl, b: sub/b.jsonl}, n_examples: 64}
evaluation: {kind: loss, path: eval.jsonl}
study: {total_budget: 100, full_budget: 10, small_budget: 2, storage: s.db}
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(text)
    return path


def test_valid_file_resolves_paths_against_its_folder(tmp_path):
    loaded = load_study_file(write(tmp_path, VALID))
    assert loaded.data.domains == {"a": str(tmp_path / "a.jsonl"), "b": str(tmp_path / "sub" / "b.jsonl")}
    assert loaded.evaluation.path == str(tmp_path / "eval.jsonl")
    assert loaded.study.storage == str(tmp_path / "s.db")
    assert loaded.train.small_budget == 2 and loaded.train.budget_unit == "steps"
    assert loaded.space.n_layers == "auto"
    assert loaded.study.warm_start is None
    warm = load_study_file(write(tmp_path, VALID.replace("storage: s.db", "storage: s.db, warm_start: old/a.db")))
    assert warm.study.warm_start == str(tmp_path / "old" / "a.db")


def test_proxies_are_models_with_an_optional_cost(tmp_path):
    loaded = load_study_file(write(tmp_path, VALID + "proxies:\n  small: {model: {name_or_path: /models/s}, cost: 0.1}\n"
                                                     "  packed: {model: packaged}\n"))
    assert loaded.proxies["small"].name_or_path == "/models/s" and loaded.proxies["packed"].gguf_file.endswith(".gguf")
    assert loaded.proxy_costs == {"small": 0.1}  # the other's is measured when the study opens
    assert load_study_file(write(tmp_path, VALID)).proxies == {}


def test_jobs_full_runs_evaluate_on_the_short_budget_ladder_unless_told(tmp_path):
    assert load_study_file(write(tmp_path, VALID)).train.eval_budgets == (4.0,)  # b=2 doubled up to B/2=5
    own = VALID + "train: {eval_budgets: [7]}\n"
    assert load_study_file(write(tmp_path, own)).train.eval_budgets == (7.0,)
    bo = VALID.replace("small_budget: 2,", "small_budget: 2, method: bo,")
    assert load_study_file(write(tmp_path, bo)).train.eval_budgets == ()


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t + "extra_key: 1\n", "extra_key: Extra inputs are not permitted"),
        (lambda t: t.replace("n_examples: 64", "n_exampels: 64"), "data.n_exampels: Unexpected keyword argument"),
        (lambda t: t.replace("kind: loss", "kind: bleu"), "evaluation.kind"),
        (lambda t: t.replace("total_budget: 100", "total_budget: lots"), "study.total_budget: Input should be a valid number"),
        (lambda t: t.replace("{name_or_path: /models/m}", "{name_or_path: /m, dtype: float16}"), "model.dtype"),
        (lambda t: t.replace("study:", "stud:"), "study: Field required"),
        (lambda t: t + "execution: {executor: slurm}\n", "execution.executor: Input should be 'inline', 'process' or 'ray'"),
        (lambda t: t + "execution: {n_workers: 0}\n", "execution.n_workers: Input should be greater than or equal to 1"),
        (lambda t: t + "execution: {executor: inline, devices: [0]}\n", "devices applies to executor: process only"),
        (lambda t: t + "execution: {executor: process, ray_address: auto}\n", "apply to executor: ray only"),
        (lambda t: t + "execution: {trial_timeout_s: 60}\n", "trial_timeout_s needs executor: process or ray"),
        (lambda t: t + "proxies: {small: {model: {name_or_path: /s, dtype: float16}}}\n", "proxies.small.model.dtype"),
        (lambda t: t + "proxies: {small: {model: {name_or_path: /s}, cost: 2}}\n",
         "proxies.small.cost: Input should be less than 1"),
        (lambda t: t.replace("storage: s.db", "storage: s.db, budget_unit: seconds") + "proxies: {small: {model: packaged}}\n",
         "proxies: need study.budget_unit steps or tokens"),
    ],
)
def test_bad_files_name_the_file_the_key_and_the_reason(tmp_path, edit, message):
    path = write(tmp_path, edit(VALID))
    with pytest.raises(SettingsError) as info:
        load_study_file(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_execution_section_builds_the_executor(tmp_path):
    from cotune.executors import InlineExecutor, ProcessExecutor, RayExecutor

    assert isinstance(load_study_file(write(tmp_path, VALID)).execution.make_executor(), InlineExecutor)
    process = load_study_file(write(tmp_path, VALID + "execution: {executor: process, n_workers: 4, devices: [0, 1, "
                                    "2, 3], retries: 2, trial_timeout_s: 3600}\n"))
    executor = process.execution.make_executor()
    assert isinstance(executor, ProcessExecutor) and executor.n_workers == 4 and executor.timeout_s == 3600.0
    assert executor.devices == ["0", "1", "2", "3"] and process.execution.retries == 2
    ray = load_study_file(write(tmp_path, VALID + "execution: {executor: ray, n_workers: 8, ray_address: auto, "
                                "resources_per_trial: {GPU: 1}}\n")).execution.make_executor()
    assert isinstance(ray, RayExecutor) and ray.address == "auto" and ray.resources == {"GPU": 1.0}


def test_not_yaml_or_missing(tmp_path):
    with pytest.raises(SettingsError, match="not valid YAML"):
        load_study_file(write(tmp_path, "model: [unclosed"))
    with pytest.raises(SettingsError, match="cannot read study file"):
        load_study_file(tmp_path / "none.yaml")


def test_cli_run_reports_a_bad_file(tmp_path):
    with pytest.raises(SystemExit, match="invalid study file"):
        main(["run", str(write(tmp_path, VALID + "oops: 1\n"))])


def test_cli_run_reports_a_study_another_process_runs(tmp_path, monkeypatch):
    def busy(path):
        raise StudyBusyError("study 'demo' in 's.db' is being run by process 7 on host")

    monkeypatch.setattr("cotune.study_file.run_study_file", busy)
    with pytest.raises(SystemExit, match="^cotune run: study 'demo' in 's.db' is being run by process 7"):
        main(["run", str(write(tmp_path, VALID))])


def test_examples_are_valid():
    demo = load_study_file(EXAMPLES / "demo-cpu.yaml")
    assert demo.model.gguf_file.endswith(".gguf") and len(demo.data.domains) == 6
    assert demo.evaluation.kind == "multiple_choice" and demo.evaluation.path.endswith("eval_multiple_choice.jsonl")
    assert demo.study.total_budget == 4 * 20 + 10 * 5 + 2 * 20
    paper = load_study_file(EXAMPLES / "llama3-8b-gpu.yaml")
    assert len(paper.data.domains) == 10 and paper.study.full_budget == 1000 and paper.study.n_init == 30
    assert paper.study.total_budget == 30 * 1000 + 70 * 50 + 3 * 1000


def test_packaged_domains_one_by_one_beside_own_files(tmp_path):
    text = VALID.replace("{a: a.jsonl, b: sub/b.jsonl}", "{games: packaged, countries: packaged, b: sub/b.jsonl}")
    loaded = load_study_file(write(tmp_path, text))
    assert list(loaded.data.domains) == ["games", "countries", "b"]
    assert loaded.data.domains["games"].endswith("games.jsonl") and Path(loaded.data.domains["games"]).is_file()
    assert loaded.data.domains["b"] == str(tmp_path / "sub" / "b.jsonl")
    with pytest.raises(SettingsError, match=r"data.domains: \['chess'\] are 'packaged' but not demo domains"):
        load_study_file(write(tmp_path, VALID.replace("{a: a.jsonl, b: sub/b.jsonl}", "{chess: packaged}")))


@pytest.mark.parametrize("kind, file", [("multiple_choice", "eval_multiple_choice.jsonl"),
                                        ("exact_match", "eval_exact_match.jsonl"), ("lm_eval", None)])
def test_packaged_evaluation_path_follows_the_kind(tmp_path, kind, file):
    text = VALID.replace("evaluation: {kind: loss, path: eval.jsonl}",
                         f"evaluation: {{kind: {kind}, path: packaged, task: t}}" if kind == "lm_eval"
                         else f"evaluation: {{kind: {kind}, path: packaged}}")
    if file is None:
        with pytest.raises(SettingsError, match="needs a path of its own"):
            load_study_file(write(tmp_path, text))
        return
    assert load_study_file(write(tmp_path, text)).evaluation.path.endswith(file)


def test_enqueue_lists_configurations_to_train_first(tmp_path):
    text = VALID + "enqueue:\n  - {mixture: {a: 0.8, b: 0.2}, params: {lora_rank: 16}}\n  - {params: {lora_alpha: 64}}\n"
    loaded = load_study_file(write(tmp_path, text))
    assert [q.model_dump() for q in loaded.enqueue] == [
        {"mixture": {"a": 0.8, "b": 0.2}, "params": {"lora_rank": 16}}, {"mixture": None, "params": {"lora_alpha": 64}},
    ]
    with pytest.raises(SettingsError, match="enqueue.0.mixtur"):
        load_study_file(write(tmp_path, VALID + "enqueue:\n  - {mixtur: {a: 1.0}}\n"))


def test_the_space_section_adds_redefines_and_removes_parameters_and_sets_the_baseline(tmp_path):
    from cotune.space.params import Bool, Float
    from cotune.study_file import _space
    from cotune.space.lora import lora_space

    text = VALID + """space:
  max_rank: 64
  params:
    learning_rate: {kind: float, low: 1.0e-5, high: 1.0e-2, log: true, default: 1.0e-3}
    lora_o: {kind: bool, default: true}
    epochs: {kind: float, low: 1, high: 4, default: 2}
  remove: [lora_k, lora_dropout]
  baseline: {mixture: {a: 0.7, b: 0.3}, params: {lora_rank: 16}}
  mixture_bounds: {a: [0.5, 0.9]}
"""
    loaded = load_study_file(write(tmp_path, text))
    space = _space(loaded.space, lora_space(["a", "b"], 4, max_rank=64))
    assert space.mixture_bounds == {"a": (0.5, 0.9)}
    assert isinstance(space.params["learning_rate"], Float) and isinstance(space.params["lora_o"], Bool)
    assert "lora_k" not in space.params and "lora_dropout" not in space.params
    baseline = space.default_config()
    assert baseline.mixture == {"a": 0.7, "b": 0.3} and baseline.params["lora_rank"] == 16
    assert baseline.params["learning_rate"] == 1e-3 and baseline.params["epochs"] == 2
    assert loaded.train.full_budget == loaded.study.full_budget  # what a trial's `epochs` counts from
    in_tokens = text.replace("storage: s.db}", "storage: s.db, budget_unit: tokens}")
    with pytest.raises(SettingsError, match="space.params.epochs: needs study.budget_unit: steps"):
        load_study_file(write(tmp_path, in_tokens))
    bad = VALID + "space: {params: {lr: {kind: float, low: 0.1, high: 1}, lora_rank: {kind: int, low: 1}}, remove: [x]}\n"
    with pytest.raises(SettingsError) as info:
        load_study_file(write(tmp_path, bad))
    message = str(info.value)
    assert "space.params.lr: not a training parameter" in message and "space.remove.x: not a training parameter" in message
    assert "space.params.lora_rank: " in message and "high" in message
    for bounds, reason in (("{c: [0, 1]}", "space.mixture_bounds: ['c'] are not data domains (a, b)"),
                           ("{a: [0.7, 1], b: [0.5, 1]}", "space.mixture_bounds: no mixture fits")):
        with pytest.raises(SettingsError, match=re.escape(reason)):
            load_study_file(write(tmp_path, VALID + f"space: {{mixture_bounds: {bounds}}}\n"))


def _fake_hub_datasets(cache: Path, specs: dict) -> None:
    """Place each hub dataset an example names into a Hugging Face cache, with the columns it maps."""
    for spec in specs.values():
        repo = cache / f"datasets--{spec['hf'].replace('/', '--')}"
        folder = repo / "snapshots" / ("c" * 40) / (spec.get("config") or "data")
        folder.mkdir(parents=True)
        row = {column: f"{field} text" for field, column in spec["columns"].items()}
        split = spec.get("split", "train")
        (folder / f"{split}.jsonl").write_text((json.dumps(row) + "\n") * 3)
        if spec.get("config"):  # a named configuration, declared as the hub's dataset cards do
            (folder.parent / "README.md").write_text(
                f"---\nconfigs:\n- config_name: {spec['config']}\n  data_files:\n  - split: {split}\n"
                f"    path: {spec['config']}/{split}.jsonl\n---\n")
        (repo / "refs").mkdir()
        (repo / "refs" / "main").write_text("c" * 40)


def test_every_example_study_file_is_valid(tmp_path, monkeypatch):
    import yaml
    from huggingface_hub import constants

    hub = yaml.safe_load((EXAMPLES / "hf-model-dataset.yaml").read_text())
    _fake_hub_datasets(tmp_path / "hub", hub["data"]["domains"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("COTUNE_CACHE", str(tmp_path / "cache"))
    loaded = {path.name: load_study_file(path) for path in sorted(EXAMPLES.glob("*.yaml"))}
    assert set(loaded) >= {"demo-cpu.yaml", "llama3-8b-gpu.yaml", "local-model-jsonl.yaml", "hf-model-dataset.yaml",
                           "several-tasks.yaml", "full-finetune-flops.yaml", "ray-cluster.yaml"}
    assert loaded["hf-model-dataset.yaml"].model.name_or_path == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert all(Path(p).is_file() for p in loaded["hf-model-dataset.yaml"].data.domains.values())
    assert [t.weight for t in loaded["several-tasks.yaml"].evaluation] == [2, 1]
    assert loaded["full-finetune-flops.yaml"].train.finetuning == "full"
    assert loaded["full-finetune-flops.yaml"].study.budget_unit == "flops"
    assert loaded["ray-cluster.yaml"].execution.executor == "ray"
    assert loaded["local-model-jsonl.yaml"].space.baseline.params == {"lora_rank": 16, "lora_alpha": 32}
