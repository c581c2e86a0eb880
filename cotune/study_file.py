"""Studies from YAML files (`cotune run study.yaml`): model, domains, evaluation, space, budgets, method.

The file is validated by pydantic against the training backend's settings dataclasses, so every
unknown key and bad value is reported with the file, the key path and the reason. The word
``packaged`` stands for the offline demo: the packaged SmolLM2-135M as ``model``, all six demo
domains as ``data.domains`` (or one of them as the path of a domain of that name, e.g.
``{games: packaged, mine: my.jsonl}``) and its held-out questions as ``evaluation.path`` (4-way
multiple-choice rows for kind ``multiple_choice``, question and answer rows for ``exact_match``
and ``loss``).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pydantic
import yaml

from cotune.allocation import short_budget_ladder
from cotune.exceptions import SettingsError, SpaceError
from cotune.executors import Executor, InlineExecutor, ProcessExecutor, RayExecutor
from cotune.space.search_space import SearchSpace
from cotune.train.config import DataConfig, EvalConfig, ModelConfig, TrainConfig

PACKAGED = "packaged"


class _Strict(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")


class QueuedConfig(_Strict):
    """A configuration of one's own (`cotune.Study.enqueue`, a baseline): the baseline's values fill the rest."""

    mixture: dict[str, float] | None = None
    params: dict[str, Any] = {}


class SpaceSection(_Strict):
    """The joint space: `cotune.lora_space` over the data domains."""

    n_layers: int | Literal["auto"] = pydantic.Field("auto", description="the model's layer count, or auto to read it")
    max_rank: int = pydantic.Field(256, ge=2, description="largest LoRA rank searched")
    max_alpha: float = pydantic.Field(500.0, gt=1.0, description="largest LoRA alpha searched")
    params: dict[str, dict[str, Any]] = pydantic.Field(
        {}, description="parameters to add or redefine: name -> {kind: float|int|bool|choice, low, high, log, "
                        "default, choices}, e.g. learning_rate or lora_o")
    remove: list[str] = pydantic.Field([], description="parameters not searched (they train at their defaults)")
    baseline: QueuedConfig | None = pydantic.Field(
        None, description="the configuration trained first (what you train today): mixture and/or params")
    mixture_bounds: dict[str, tuple[float, float]] = pydantic.Field(
        {}, description="domain -> [low, high]: the weights a domain may take (others 0 to 1)")


class StudySection(_Strict):
    """Budgets, method and storage, as `cotune.Study` takes them."""

    method: str = "jobs"
    total_budget: float
    full_budget: float
    small_budget: float | None = None
    budget_unit: Literal["seconds", "steps", "tokens", "flops"] = "steps"
    n_init: int | Literal["auto"] | None = None
    n_confirm: int | None = None
    seed: int = 0
    kernel: Literal["matern", "deep"] = "matern"
    acquisition: Literal["ucb", "logei"] = "ucb"
    short_runs: Literal["tested", "always"] = "tested"
    storage: str = "cotune-study.db"
    study_name: str = "cotune"
    warm_start: str | None = pydantic.Field(
        None, description="SQLite file of an earlier study on the same space to learn from (its study 'cotune')")


class ExecutionSection(_Strict):
    """Where trials run and how many at once, as `cotune.optimize` takes them."""

    executor: Literal["inline", "process", "ray"] = pydantic.Field(
        "inline", description="inline (threads of the driver), process (local processes) or ray (a Ray cluster)")
    n_workers: int = pydantic.Field(1, ge=1, description="trials running at once")
    retries: int = pydantic.Field(0, ge=0, description="times a failed attempt of a trial is run again")
    trial_timeout_s: float | None = pydantic.Field(None, gt=0, description="wall-clock limit of one trial")
    devices: list[str | int] | None = pydantic.Field(None, description="process: GPU ids, one per worker slot")
    ray_address: str | None = pydantic.Field(None, description="ray: cluster address, e.g. auto")
    resources_per_trial: dict[str, float] | None = pydantic.Field(None, description="ray: e.g. {GPU: 1}")

    @pydantic.model_validator(mode="after")
    def _options_match_the_executor(self) -> ExecutionSection:
        if self.devices is not None and self.executor != "process":
            raise ValueError("devices applies to executor: process only")
        if (self.ray_address is not None or self.resources_per_trial is not None) and self.executor != "ray":
            raise ValueError("ray_address and resources_per_trial apply to executor: ray only")
        if self.trial_timeout_s is not None and self.executor == "inline":
            raise ValueError("trial_timeout_s needs executor: process or ray (a thread cannot be stopped); "
                             "train.timeout_s limits each training run already")
        return self

    def make_executor(self) -> Executor:
        """The executor these settings describe."""
        if self.executor == "process":
            return ProcessExecutor(self.n_workers, timeout_s=self.trial_timeout_s, devices=self.devices)
        if self.executor == "ray":
            return RayExecutor(self.n_workers, address=self.ray_address, resources_per_trial=self.resources_per_trial,
                               timeout_s=self.trial_timeout_s)
        return InlineExecutor(self.n_workers)


class ProxySection(_Strict):
    """A proxy model: a smaller sibling of ``model`` whose runs inform the target's (`cotune.optimize`'s ``proxies``)."""

    model: dict[str, Any] | Literal["packaged"] = pydantic.Field(
        description="the proxy model, with the keys of the top-level model section, or packaged")
    cost: float | None = pydantic.Field(
        None, gt=0, lt=1, description="cost of a unit of budget in the target's units (default: the ratio of the "
                                      "models' weights per token)")


class StudyFile(_Strict):
    """The whole file."""

    model: dict[str, Any] | Literal["packaged"]
    data: dict[str, Any]
    evaluation: dict[str, Any] | list[dict[str, Any]]
    train: dict[str, Any] = {}
    space: SpaceSection = SpaceSection()
    study: StudySection
    execution: ExecutionSection = ExecutionSection()
    enqueue: list[QueuedConfig] = []
    proxies: dict[str, ProxySection] = {}


@dataclasses.dataclass(frozen=True)
class LoadedStudy:
    """A validated study file, with relative paths resolved against the file's folder."""

    model: ModelConfig
    data: DataConfig
    evaluation: EvalConfig | tuple[EvalConfig, ...]
    train: TrainConfig
    space: SpaceSection
    study: StudySection
    execution: ExecutionSection
    enqueue: tuple[QueuedConfig, ...] = ()
    proxies: dict[str, ModelConfig] = dataclasses.field(default_factory=dict)
    proxy_costs: dict[str, float] = dataclasses.field(default_factory=dict)


def _validate(errors: list[str], section: str, cls: type, values: dict[str, Any]) -> Any:
    """Validate one section against a settings dataclass, unknown keys rejected; problems are
    appended to ``errors`` (one line each, with the key path) and None returned."""
    wrapper = pydantic.create_model(cls.__name__, __config__=pydantic.ConfigDict(extra="forbid"), **{section: (cls, ...)})
    try:
        return getattr(wrapper.model_validate({section: values}), section)
    except pydantic.ValidationError as err:
        errors.extend(_lines(err))
        return None


def _lines(err: pydantic.ValidationError) -> list[str]:
    return [f"  {'.'.join(str(part) for part in item['loc']) or '(top level)'}: {item['msg']}" for item in err.errors()]


def _hub_domain(errors: list[str], name: str, spec: dict[str, Any]) -> str:
    """A Hugging Face dataset domain (``{hf: org/name, split:, columns:, ...}``) as a local JSONL file."""
    from cotune.train.errors import TrainingConfigError
    from cotune.train.hub import dataset_domain
    from cotune.train.model import default_cache_dir

    try:
        return dataset_domain(spec, default_cache_dir())
    except TrainingConfigError as err:
        errors.append(f"  data.domains.{name}: {err}")
        return ""


def _check_space(errors: list[str], space: SpaceSection) -> None:
    """Every parameter the file adds, redefines or removes is one the training backend trains."""
    from cotune.space.params import param_from_dict
    from cotune.train.params import PARAM_NAMES

    for key, names in (("params", space.params), ("remove", space.remove)):
        for name in names:
            if name not in PARAM_NAMES:
                errors.append(f"  space.{key}.{name}: not a training parameter; the backend trains "
                              f"{', '.join(sorted(PARAM_NAMES))}")
    for name, spec in space.params.items():
        try:
            param_from_dict(spec)
        except (SpaceError, TypeError) as err:
            errors.append(f"  space.params.{name}: {err}")


def _check_study(errors: list[str], study: StudySection) -> None:
    """The study section's settings as `cotune.Study` checks them, every mistake reported."""
    from cotune.methods import METHODS
    from cotune.settings import StudySettings

    settings = study.model_dump(exclude={"storage", "study_name", "warm_start"})
    if settings["method"] not in METHODS:
        errors.append(f"  study.method: unknown method {settings['method']!r}; choose one of {', '.join(METHODS)}")
        settings["method"] = "random"  # to check the rest
    try:
        StudySettings(**settings)
    except SettingsError as err:
        errors.append(f"  study: {err}")


def load_study_file(path: str | Path) -> LoadedStudy:
    """Read and validate a study file.

    Raises:
        SettingsError: the file is missing, is not YAML, or has unknown keys or bad values
            (the message names the file, the key and the reason).
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except OSError as err:
        raise SettingsError(f"cannot read study file {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise SettingsError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(raw, dict):
        raise SettingsError(f"{path}: a study file is a mapping with model, data, evaluation and study keys")
    try:
        parsed = StudyFile.model_validate(raw)
    except pydantic.ValidationError as err:
        raise SettingsError("\n".join([f"{path}: invalid study file", *_lines(err)])) from None
    errors: list[str] = []
    _check_study(errors, parsed.study)
    _check_space(errors, parsed.space)
    if "epochs" in parsed.space.params and parsed.study.budget_unit != "steps":
        errors.append(f"  space.params.epochs: needs study.budget_unit: steps (a full run's steps and batch size "
                      f"set how many distinct examples it sees), got {parsed.study.budget_unit}")
    base = path.resolve().parent
    demo = None
    domains = parsed.data.get("domains")
    packaged_domains = domains == PACKAGED or (isinstance(domains, dict) and PACKAGED in domains.values())
    packaged_eval = any(t.get("path") == PACKAGED for t in
                        (parsed.evaluation if isinstance(parsed.evaluation, list) else [parsed.evaluation]))
    if parsed.model == PACKAGED or packaged_domains or packaged_eval:
        from cotune.train.demo_data import build_demo_data

        demo = build_demo_data(seed=parsed.study.seed)
    model = _model(errors, "model", parsed.model)
    proxies = {name: _model(errors, f"proxies.{name}.model", proxy.model) for name, proxy in parsed.proxies.items()}
    if parsed.proxies and parsed.study.budget_unit not in ("steps", "tokens"):
        errors.append(f"  proxies: need study.budget_unit steps or tokens (a proxy's run of "
                      f"{parsed.study.budget_unit} costs as much as the target's), got {parsed.study.budget_unit}")
    data = dict(parsed.data)
    if domains == PACKAGED:
        data["domains"] = dict(demo.domains)
    elif isinstance(domains, dict):
        unknown = sorted(name for name, p in domains.items() if p == PACKAGED and name not in demo.domains)
        if unknown:
            errors.append(f"  data.domains: {unknown} are 'packaged' but not demo domains; the demo builds "
                          f"{', '.join(demo.domains)}")
        data["domains"] = {name: demo.domains.get(name, "") if p == PACKAGED else _hub_domain(errors, name, p)
                           if isinstance(p, dict) else str(base / p) for name, p in domains.items()}
    strange = sorted(set(parsed.space.mixture_bounds) - set(data.get("domains") or ()))
    if strange:
        errors.append(f"  space.mixture_bounds: {strange} are not data domains "
                      f"({', '.join(data.get('domains') or ()) or 'none'})")
    elif parsed.space.mixture_bounds:
        try:
            SearchSpace(list(data["domains"]), mixture_bounds=parsed.space.mixture_bounds)
        except SpaceError as err:
            errors.append(f"  space.mixture_bounds: {err}")
    several = isinstance(parsed.evaluation, list)
    tasks = []
    for i, task in enumerate(parsed.evaluation if several else [parsed.evaluation]):
        task, key = dict(task), f"evaluation.{i}" if several else "evaluation"
        if task.get("path") == PACKAGED:
            if task.get("kind") not in demo.eval_files:
                errors.append(f"  {key}.path: 'packaged' holds the demo's questions, for kind "
                              f"{', '.join(demo.eval_files)}; kind {task.get('kind')!r} needs a path of its own")
            task["path"] = demo.eval_files.get(task.get("kind"), "")
        elif isinstance(task.get("path"), str):
            task["path"] = str(base / task["path"])
        tasks.append(_validate(errors, key, EvalConfig, task))
    if several and not tasks:
        errors.append("  evaluation: an empty list; give at least one task")
    train = dict(parsed.train)
    train.setdefault("budget_unit", parsed.study.budget_unit)
    train.setdefault("small_budget", parsed.study.small_budget)
    if parsed.study.budget_unit == "steps":
        train.setdefault("full_budget", parsed.study.full_budget)  # what `epochs` counts from
    if parsed.study.method == "jobs" and parsed.study.small_budget is not None:
        # full runs evaluate on jobs' whole ladder of short budgets, so it can pick the one that predicts
        ladder = short_budget_ladder(parsed.study.small_budget, parsed.study.full_budget)
        train.setdefault("eval_budgets", ladder[1:])
    train.setdefault("seed", parsed.study.seed)
    if train["budget_unit"] != parsed.study.budget_unit:
        errors.append(f"  train.budget_unit: {train['budget_unit']} differs from study.budget_unit "
                      f"({parsed.study.budget_unit}); set it in study only")
    storage = Path(parsed.study.storage)
    paths = {"storage": str(storage if storage.is_absolute() else base / storage)}
    if parsed.study.warm_start is not None:
        warm = Path(parsed.study.warm_start)
        paths["warm_start"] = str(warm if warm.is_absolute() else base / warm)
    study = parsed.study.model_copy(update=paths)
    sections = {name: _validate(errors, name, cls, values) for name, cls, values in
                (("data", DataConfig, data), ("train", TrainConfig, train))}
    sections["evaluation"] = tuple(tasks) if several else tasks[0]
    if errors:
        raise SettingsError("\n".join([f"{path}: invalid study file", *errors]))
    return LoadedStudy(
        model=model,
        **sections,
        space=parsed.space,
        study=study,
        execution=parsed.execution,
        enqueue=tuple(parsed.enqueue),
        proxies=proxies,
        proxy_costs={name: proxy.cost for name, proxy in parsed.proxies.items() if proxy.cost is not None},
    )


def _model(errors: list[str], key: str, spec: dict[str, Any] | str) -> ModelConfig | None:
    """The `ModelConfig` of a model section (``packaged``: the packaged SmolLM2), problems appended to ``errors``."""
    if spec == PACKAGED:
        from cotune.train.model import smollm2_model_config

        return smollm2_model_config()
    found: list[str] = []
    model = _validate(found, "model", ModelConfig, spec)
    errors.extend(line.replace("  model", f"  {key}", 1) for line in found)
    return model


def _space(section: SpaceSection, base: SearchSpace) -> SearchSpace:
    """The paper's space as the file's ``space`` section changes it: parameters added or redefined,
    some removed, and the team's own baseline."""
    from cotune.space.params import Bool, param_from_dict

    params = {name: p for name, p in base.params.items() if name not in section.remove}
    params.update({name: param_from_dict(spec) for name, spec in section.params.items()})
    groups = [[n for n in group if isinstance(params.get(n), Bool)] for group in base.at_least_one]
    baseline = None if section.baseline is None else section.baseline.model_dump()
    return SearchSpace(base.domains, params, at_least_one=[g for g in groups if g], baseline=baseline,
                       mixture_bounds=section.mixture_bounds or None)


def _open(loaded: LoadedStudy) -> tuple[Any, Any]:
    """The training objective and the study (created or resumed) a loaded study file describes."""
    from cotune.space.lora import lora_space
    from cotune.study import Study
    from cotune.train.objective import TrainingObjective

    objective = TrainingObjective(model=loaded.model, data=loaded.data, evaluation=loaded.evaluation,
                                  train=loaded.train, proxies=loaded.proxies, proxy_costs=loaded.proxy_costs)
    if loaded.train.finetuning == "full":  # no adapter: the LoRA part of the space falls away
        base = SearchSpace(objective.domains)
    else:
        n_layers = objective.n_layers() if loaded.space.n_layers == "auto" else loaded.space.n_layers
        base = lora_space(objective.domains, n_layers, max_rank=loaded.space.max_rank, max_alpha=loaded.space.max_alpha)
    space = _space(loaded.space, base)
    settings = loaded.study.model_dump()
    storage, name = settings.pop("storage"), settings.pop("study_name")
    return objective, Study(space, storage=storage, study_name=name, proxies=objective.proxy_costs(), **settings)


def run_study_file(path: str | Path, *, progress: bool = True):
    """Run (or resume) the study a file describes; returns its `OptimizeResult`."""
    loaded = load_study_file(path)
    objective, study = _open(loaded)
    study.set_attribute("study_file", str(Path(path).resolve()))  # so `cotune train-best DB` finds the setup
    for queued in loaded.enqueue:
        study.enqueue(queued.model_dump())
    return study.optimize(objective, executor=loaded.execution.make_executor(), retries=loaded.execution.retries,
                          progress=progress)


def train_best(path: str | Path, folder: str | Path, *, budget: float | None = None) -> tuple[Any, Any]:
    """Retrain the best configuration of the study a file describes, or of a study database made
    by ``cotune run`` (at the full budget unless ``budget``), and save the adapter, the tokenizer
    and a model card to ``folder``.

    Returns:
        ``(the study's best trial, the retrain's Result)``.

    Raises:
        SettingsError: the study has no full run measured yet, or a database does not say which
            study file made it.
    """
    if _is_sqlite(path):
        path = _study_file_of(path)
    loaded = load_study_file(path)
    objective, study = _open(loaded)
    best = study.best
    if best is None:
        raise SettingsError(f"{path}: study {study.study_name!r} has no full run measured yet; run it first "
                            "(cotune run)")
    budget = study.settings.full_budget if budget is None else float(budget)
    result = objective.train_and_save(best.config, budget, folder)
    Path(folder, "README.md").write_text(_model_card(loaded, study, best, budget, result), encoding="utf-8")
    return best, result


def _is_sqlite(path: str | Path) -> bool:
    """Whether ``path`` is an SQLite database (by its 16-byte header), not a study file."""
    if not Path(path).is_file():
        return False
    with open(path, "rb") as fh:
        return fh.read(16) == b"SQLite format 3\x00"


def _study_file_of(database: str | Path) -> str:
    """The study file that ran the (only or first) study of ``database`` (recorded by `run_study_file`)."""
    from cotune.storage import Storage

    store = Storage(database)
    names = store.study_names()
    found = store.find_study(names[0]) if names else None
    if found is None:
        raise SettingsError(f"{database}: holds no study; run one first (cotune run)")
    recorded = store.get_attrs(found[0]).get("study_file")
    if recorded is None or not Path(recorded).is_file():
        why = "was not run from a study file" if recorded is None else f"was run from {recorded}, which is gone"
        raise SettingsError(f"{database}: study {names[0]!r} {why}, so its model and data are unknown here; "
                            "pass the study file that describes it instead")
    return recorded


def _describe_evaluation(evaluation: EvalConfig | tuple[EvalConfig, ...]) -> str:
    if isinstance(evaluation, EvalConfig):
        return f"{evaluation.kind} on `{evaluation.path or evaluation.task}`"
    return "weighted mean of " + ", ".join(f"{t.name or t.kind} (weight {t.weight:g})" for t in evaluation)


def _model_card(loaded: LoadedStudy, study: Any, best: Any, budget: float, result: Any) -> str:
    """A Hugging Face model card (YAML header for the Hub, then what was trained and measured)."""
    import json

    unit = study.settings.budget_unit
    mixture = "\n".join(f"| {d} | {w:.4f} |" for d, w in best.config.mixture.items())
    baseline = study.baseline
    lines = [
        "---", "library_name: peft", f"base_model: {loaded.model.name_or_path}", "tags: [cotune, lora]", "---", "",
        f"# LoRA adapter chosen by cotune (study {study.study_name!r})", "",
        f"Trained for {budget:g} {unit} with the best configuration study {study.study_name!r} in "
        f"`{study.storage.url}` measured ({len(study.trials)} trials, method `{study.settings.method}`).", "",
        "## Scores", "",
        f"- this training run: **{result.score:.6g}** ({_describe_evaluation(loaded.evaluation)})",
        f"- the same configuration in the study (trial {best.number}, {best.budget:g} {unit}): {best.score:.6g}",
    ]
    if baseline is not None and baseline.score is not None:
        lines.append(f"- the baseline (uniform mixture, default settings) in the study: {baseline.score:.6g}")
    lines += ["", "## Training data mixture", "", "| domain | weight |", "|---|---|", mixture, "",
              "## Settings", "", "```json", json.dumps(best.config.params, indent=2, sort_keys=True), "```", "",
              "Load with `PeftModel.from_pretrained(base_model, this_folder)`.", ""]
    return "\n".join(lines)
