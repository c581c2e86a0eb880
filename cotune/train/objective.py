"""The objective the optimiser calls: ``objective(config, budget) -> cotune.Result``.

Each trial runs in its own ``spawn`` subprocess with a wall-clock limit, so a crash, an
out-of-memory kill, a hang or a diverged loss becomes an exception here (the optimiser records
a failed trial with its text) and nothing of one trial can leak into the next.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cotune.train.config import DataConfig, EvalConfig, ModelConfig, TrainConfig
from cotune.train.errors import TrainingConfigError
from cotune.isolation import call_in_subprocess
from cotune.train.params import resolve_params
from cotune.train.proxy import cost_factor, layer_count, proxy_layers
from cotune.train.run import TrialSpec, resolve_mixture, run_trial

if TYPE_CHECKING:
    from cotune.space.search_space import Config
    from cotune.trial import Result


class TrainingObjective:
    """Fine-tune a LoRA adapter on a configuration's data mixture and score it on a held-out task.

    Trials run in ``spawn`` subprocesses, which import the main script again: a script that
    starts the optimisation must do so under ``if __name__ == "__main__":``.

    Args:
        model: The base model (local files only).
        data: The training domains; their names are the mixture's.
        evaluation: The held-out task, or several (``EvalConfig.name`` and ``weight``): the score is
            their weighted mean, and each task's metrics are kept as ``<name>/<metric>``.
        train: Loop settings and LoRA defaults (``budget_unit`` must match the study's).
        proxies: Smaller models by name (the study's proxies): ``objective(config, budget,
            proxy=name)`` trains that model instead, for the same steps or tokens.
        proxy_costs: A proxy's cost per unit of budget in the target's units (default: `proxy_costs`
            measures it from the models' sizes).
        in_process: Run trials in this process (for tests and debugging): no isolation and no
            timeout, and errors propagate as raised.
    """

    def __init__(self, *, model: ModelConfig, data: DataConfig, evaluation: EvalConfig | Sequence[EvalConfig],
                 train: TrainConfig | None = None, proxies: Mapping[str, ModelConfig] | None = None,
                 proxy_costs: Mapping[str, float] | None = None, in_process: bool = False) -> None:
        self.model = model
        self.proxies = dict(proxies or {})
        self._proxy_costs = {name: float(c) for name, c in (proxy_costs or {}).items()}
        self.data = data
        self.evaluation = evaluation if isinstance(evaluation, EvalConfig) else tuple(evaluation)
        self.train = train or TrainConfig()
        self.in_process = in_process
        missing = {name: path for name, path in data.domains.items() if not Path(path).expanduser().exists()}
        if missing:
            raise TrainingConfigError(f"domain data not found: {missing}; check DataConfig.domains")
        _check_proxies(self.proxies, self._proxy_costs, self.train.budget_unit)

    @property
    def domains(self) -> list[str]:
        """Domain names, for the search space's mixture."""
        return list(self.data.domains)

    def n_layers(self) -> int:
        """The base model's layer count, for ``cotune.lora_space(domains, n_layers)`` (dequantises once)."""
        return layer_count(self.model)

    def proxy_costs(self) -> dict[str, float]:
        """Each proxy's cost per unit of budget in the target's units, what ``cotune.optimize(...,
        proxies=)`` takes: as given in ``proxy_costs``, else the ratio of the models' weights per
        token (`cotune.train.proxy.cost_factor`; reads their configs, no weights)."""
        for name, model in self.proxies.items():
            if name not in self._proxy_costs:
                self._proxy_costs[name] = cost_factor(model, self.model)
        return dict(self._proxy_costs)

    def spec(self, config: Config, budget: float, proxy: str | None = None) -> TrialSpec:
        """The trial for ``config`` at ``budget`` (on the proxy model ``proxy``, its adapted layers
        the same share of its own), validated here before any process starts."""
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not (math.isfinite(budget) and budget > 0):
            raise TrainingConfigError(f"budget must be a positive number of {self.train.budget_unit}, got {budget!r}")
        resolve_params(config.params, self.train)
        resolve_mixture(config.mixture, self.data.domains)
        params = dict(config.params)
        model = self.model
        if proxy is not None:
            if proxy not in self.proxies:
                raise TrainingConfigError(f"unknown proxy model {proxy!r}; this objective has "
                                          f"{', '.join(self.proxies) or 'none'} (TrainingObjective proxies=)")
            model = self.proxies[proxy]
            if params.get("lora_layers") is not None:
                params["lora_layers"] = proxy_layers(int(params["lora_layers"]), target_layers=self.n_layers(),
                                                     proxy_layers=layer_count(model))
        return TrialSpec(model=model, data=self.data, evaluation=self.evaluation, train=self.train,
                         mixture=dict(config.mixture), params=params, budget=float(budget))

    def train_and_save(self, config: Config, budget: float, folder: str | Path) -> Result:
        """Train ``config`` for ``budget`` as a trial does and save the adapter and tokenizer to
        ``folder`` (peft's ``save_pretrained``; load with ``PeftModel.from_pretrained``)."""
        Path(folder).mkdir(parents=True, exist_ok=True)
        return self._run(dataclasses.replace(self.spec(config, budget), save_to=str(folder)))

    def __call__(self, config: Config, budget: float, proxy: str | None = None) -> Result:
        """Train ``config`` for ``budget`` (on the proxy model ``proxy``, None: the base model) and
        return its score, cost (a proxy's in the target's units) and curve.

        Raises:
            TrainingConfigError: The configuration, the budget or the proxy is invalid.
            TrialFailedError: The trial raised, crashed or timed out in its subprocess.
            TrainingDivergedError: (in-process only) the loss became NaN or infinite.
        """
        result = self._run(self.spec(config, budget, proxy))
        if proxy is None:
            return result
        return dataclasses.replace(result, cost=result.cost * self.proxy_costs()[proxy])

    def _run(self, spec: TrialSpec) -> Result:
        from cotune.trial import Result

        if self.in_process:
            out = run_trial(spec)
        else:
            out = call_in_subprocess(run_trial, (spec,), timeout_s=self.train.timeout_s,
                                     timeout_hint="raise TrainConfig.timeout_s or lower the budget")
        return Result(score=out["score"], cost=out["cost"], curve=out["curve"], info=out["info"])


def _check_proxies(proxies: dict[str, ModelConfig], costs: dict[str, float], unit: str) -> None:
    """Proxies need a budget a smaller model spends more cheaply (steps or tokens), and costs in (0, 1)."""
    unknown = sorted(set(costs) - set(proxies))
    if unknown:
        raise TrainingConfigError(f"proxy_costs names {unknown}, which are not proxies ({', '.join(proxies) or 'none'})")
    bad = {name: c for name, c in costs.items() if not (math.isfinite(c) and 0.0 < c < 1.0)}
    if bad:
        raise TrainingConfigError(f"a proxy's cost is a share of the target's, strictly between 0 and 1; got {bad}")
    if proxies and unit not in ("steps", "tokens"):
        raise TrainingConfigError(
            f"proxy models need budget_unit steps or tokens (a proxy's run of {unit} costs as much as the target's); "
            f"got {unit}")


def demo_objective(
    *,
    budget_unit: str = "steps",
    small_budget: float | None = None,
    n_examples: int = 256,
    n_eval: int = 100,
    metric: str = "accuracy",
    domains: list[str] | None = None,
    target: dict[str, float] | None = None,
    cache_dir: str | None = None,
    seed: int = 0,
    timeout_s: float | None = None,
    in_process: bool = False,
    **train: Any,
) -> TrainingObjective:
    """The offline demo: LoRA on the packaged SmolLM2-135M-Instruct, trivia/country/Python-docs
    domains, scored on held-out trivia questions (trivia categories no training domain holds), or
    with ``target`` on held-out rows of some of the domains.

    CPU-friendly defaults: batch 8 of at most 128 tokens, 256 training examples, 100 evaluation
    questions. The model has 30 layers: ``cotune.lora_space(obj.domains, n_layers=30)``.

    Args:
        budget_unit: ``"steps"``, ``"tokens"`` or ``"seconds"`` (match the study's).
        small_budget: Also evaluate here during longer runs (the study's small budget).
        n_examples: Training examples per trial, split by the mixture.
        n_eval: Evaluation questions.
        metric: ``"loss"`` (score = minus the mean token loss of the questions' answers), or
            ``"accuracy"``, ``"accuracy_norm"`` or ``"prob_correct"`` of 4-way multiple choice
            (``prob_correct`` is smoother with few questions).
        domains: A subset of the demo domains (default all six).
        target: Score instead on held-out rows (`DemoData.targets`) of these domains, weighted:
            minus the weighted mean of their token losses, each a task of its own
            (``Trial.task_scores``); ``metric`` is then unused. E.g. ``{"countries": 0.75, "python_docs": 0.25}``.
        cache_dir: Cache root for the built data and the dequantised model.
        seed: Seed of data sampling, adapter initialisation and the evaluation distractors.
        timeout_s: Wall-clock limit per trial.
        in_process: Run trials in this process.
        **train: Further `TrainConfig` fields (e.g. ``learning_rate``, ``batch_size``).
    """
    from cotune.train.demo_data import build_demo_data
    from cotune.train.model import smollm2_model_config

    demo = build_demo_data(cache_dir, seed=seed)
    chosen = domains or list(demo.domains)
    unknown = sorted(set(chosen) - set(demo.domains))
    if unknown:
        raise TrainingConfigError(f"unknown demo domains {unknown}; choose from {sorted(demo.domains)}")
    unknown = sorted(set(target or ()) - set(demo.targets))
    if unknown:
        raise TrainingConfigError(f"no held-out rows of {unknown}; target domains are {sorted(demo.targets)}")
    kind = "loss" if metric == "loss" else "multiple_choice"
    evaluation: EvalConfig | list[EvalConfig] = EvalConfig(
        kind=kind, path=demo.eval_files[kind], n_examples=n_eval, batch_size=16,
        metric=None if kind == "loss" else metric)
    if target:
        # 64 tokens hold a whole question row (prompts are cut from the left) and a text row's start
        evaluation = [EvalConfig(kind="loss", path=demo.targets[name], n_examples=n_eval, batch_size=16, max_length=64,
                                 name=name, weight=weight) for name, weight in target.items()]
    return TrainingObjective(
        model=smollm2_model_config(cache_dir=cache_dir),
        data=DataConfig(domains={name: demo.domains[name] for name in chosen}, n_examples=n_examples, max_length=128),
        evaluation=evaluation,
        train=TrainConfig(budget_unit=budget_unit, small_budget=small_budget, seed=seed, timeout_s=timeout_s, **train),
        in_process=in_process,
    )
