"""Benchmarks replayed from recorded real training runs: (configuration, budget, score) tables.

A recording holds real LoRA runs of the packaged model, each evaluated at several budgets up to
the full one (`benchmarks/record_real_runs.py` makes it). Replaying answers a configuration
with the learning curve of the nearest recorded configuration in the encoded space, read at the
requested fraction of the full budget, so methods can be compared on real scores in seconds.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from collections.abc import Callable, Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cotune.space.search_space import Config, SearchSpace
from cotune.trial import Result

#: Facts of a run's info kept in a recording (timings and the final training loss).
INFO_KEYS = ("steps", "train_seconds", "eval_seconds", "wall_seconds", "train_loss_last")
#: Recordings shipped with the package, by benchmark name.
RECORDINGS = {"smollm2-trivia": "smollm2-trivia.json", "smollm2-blend": "smollm2-blend.json",
              "scales-real": "scales-real-m.json"}
#: Recordings of the same configurations on smaller models, by benchmark name: ``(proxy, file)``.
PROXY_RECORDINGS = {"scales-real": (("xs", "scales-real-xs.json"), ("s", "scales-real-s.json"))}


def packaged_data(filename: str) -> Path:
    """A file in the package's benchmark data folder."""
    return Path(str(resources.files("cotune.bench") / "data" / filename))


def recording_path(name: str) -> Path:
    """The packaged data file of recording ``name``."""
    return packaged_data(RECORDINGS[name])


def proxy_recording_paths(name: str) -> tuple[tuple[str, Path], ...]:
    """``(proxy, packaged file)`` of recording ``name``'s proxy models (none for most)."""
    return tuple((proxy, packaged_data(file)) for proxy, file in PROXY_RECORDINGS.get(name, ()))


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecordedLandscape:
    """Replay of a recording, scaled to the harness's budgets.

    Args:
        path: The recording (JSON written by `record`).
        full_budget: The harness's full budget; a request for budget ``c`` reads the curves at
            ``c / full_budget`` of the recorded full budget.
        curve_budgets: Budgets below the requested one at which a run also reports its score.
        seed: Unused (a replay is deterministic); accepted like the synthetic landscapes'.
        proxy_paths: ``(name, path)`` of recordings of the same configurations on proxy models
            (`benchmarks/record_multiscale.py`): ``objective(config, budget, proxy=name)`` replays
            those, charged the share of weights per token the recordings state. Only the
            configurations every recording holds are replayed.
        keep: Keys of the configurations replayed (None: every recorded one).
    """

    path: str | os.PathLike[str]
    full_budget: float = 100.0
    curve_budgets: tuple[float, ...] = ()
    seed: int = 0
    proxy_paths: tuple[tuple[str, str | os.PathLike[str]], ...] = ()
    keep: frozenset[str] | None = None

    @functools.cached_property
    def data(self) -> dict[str, Any]:
        data = _read(self.path)
        keep = self.keep
        if self.proxy_paths:
            keep = set.intersection(_keys(data), *(_keys(_read(p)) for _, p in self.proxy_paths))
        return data if keep is None else {**data, "runs": [r for r in data["runs"] if _key(r) in keep]}

    @functools.cached_property
    def _proxies(self) -> dict[str, RecordedLandscape]:
        keep = frozenset(_keys(self.data))
        return {name: RecordedLandscape(path=path, full_budget=self.full_budget, curve_budgets=self.curve_budgets,
                                        keep=keep) for name, path in self.proxy_paths}

    @property
    def proxies(self) -> dict[str, float]:
        """The proxy models by name, with their cost per unit of budget (a study's ``proxies``):
        the ratio of their weights per token to the target's."""
        own = float(self.data["weights_per_token"]) if self.proxy_paths else 1.0
        return {name: float(p.data["weights_per_token"]) / own for name, p in self._proxies.items()}

    def proxy_rank_correlations(self) -> dict[str, float]:
        """Spearman correlation of each proxy's and the target's full-budget scores over the
        recorded configurations: how well the proxy ranks them for the target."""
        from scipy.stats import spearmanr

        configs = [Config.from_dict(r["config"]) for r in self.data["runs"]]
        target = [self.true_score(c) for c in configs]
        return {name: float(spearmanr([p.true_score(c) for c in configs], target).statistic)
                for name, p in self._proxies.items()}

    @functools.cached_property
    def space(self) -> SearchSpace:
        """The space the runs were recorded in."""
        return SearchSpace.from_dict(self.data["space"])

    @functools.cached_property
    def _runs(self) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        runs = self.data["runs"]
        X = self.space.encode_many([Config.from_dict(r["config"]) for r in runs])
        recorded_full = float(self.data["full_budget"])
        fractions = [np.array(sorted(float(b) for b in r["curve"])) / recorded_full for r in runs]
        scores = [np.array([r["curve"][k] for k in sorted(r["curve"], key=float)]) for r in runs]
        return X, fractions, scores

    @property
    def optimum(self) -> float:
        """The best recorded full-budget score."""
        return max(float(s[-1]) for s in self._runs[2])

    def nearest(self, config: Config) -> int:
        """Index of the recorded run whose configuration is closest in the encoded space."""
        X = self._runs[0]
        return int(np.argmin(((X - self.space.encode(config)) ** 2).sum(axis=1)))

    def score_at(self, index: int, budget: float) -> float:
        """Run ``index``'s score at ``budget`` (linear between recorded points, flat outside them)."""
        _, fractions, scores = self._runs
        return float(np.interp(budget / self.full_budget, fractions[index], scores[index]))

    def true_score(self, config: Config, budget: float | None = None) -> float:
        """The replayed score of ``config`` (default: at the full budget)."""
        return self.score_at(self.nearest(config), self.full_budget if budget is None else budget)

    def regret(self, config: Config) -> float:
        """Best recorded full-budget score minus the replayed full-budget score of ``config``."""
        return self.optimum - self.true_score(config)

    def short_run_correlation(self, small_budget: float) -> float:
        """Spearman rank correlation of the recorded runs' scores at ``small_budget`` and at the
        full budget: how well a short run ranks them."""
        from scipy.stats import spearmanr

        n = len(self._runs[2])
        short = [self.score_at(i, small_budget) for i in range(n)]
        full = [self.score_at(i, self.full_budget) for i in range(n)]
        return float(spearmanr(short, full).statistic)

    @property
    def noise_std(self) -> float | None:
        """Standard deviation of the baseline's full-budget score over the training seeds it was
        also recorded with (`record_noise`; with the design's own run), or None without them."""
        noise = [float(n["score"]) for n in self.data.get("noise", [])]
        if not noise:
            return None
        default = self.space.encode(self.space.default_config())
        own = [float(r["curve"][max(r["curve"], key=float)]) for r, x in zip(self.data["runs"], self._runs[0])
               if np.allclose(x, default)]
        return float(np.std(noise + own, ddof=1)) if len(noise + own) > 1 else None

    def __call__(self, config: Config, budget: float, proxy: str | None = None) -> Result:
        """The objective: the nearest recorded run's score at ``budget``, with curve points (of
        the proxy model ``proxy``'s recording, at its cost, when given)."""
        if proxy is not None:
            if proxy not in self._proxies:
                raise ValueError(f"unknown proxy {proxy!r}; this recording has {sorted(self._proxies)}")
            result = self._proxies[proxy](config, budget)
            return dataclasses.replace(result, cost=budget * self.proxies[proxy])
        index = self.nearest(config)
        curve = {b: self.score_at(index, b) for b in self.curve_budgets if b < budget}
        score = self.score_at(index, budget)
        curve[float(budget)] = score
        return Result(score=score, cost=budget, curve=curve)


def _read(path: str | os.PathLike[str]) -> dict[str, Any]:
    with open(path) as fh:
        return json.load(fh)


def _key(run: Mapping[str, Any]) -> str:
    return Config.from_dict(run["config"]).key()


def _keys(data: Mapping[str, Any]) -> set[str]:
    return {_key(r) for r in data["runs"]}


def record(
    objective: Callable[[Config, float], Result],
    space: SearchSpace,
    configs: Sequence[Config],
    *,
    full_budget: float,
    path: str | os.PathLike[str],
    meta: Mapping[str, Any],
    on_run: Callable[[int, Config, Result | BaseException], None] | None = None,
) -> dict[str, Any]:
    """Train each configuration at ``full_budget`` and store its curve in ``path`` after every run.

    A recording already at ``path`` for the same space and budget is resumed: configurations it
    holds are not trained again (its `record_noise` runs are kept), failed ones are tried again.
    Failed runs are stored with their error and left out of replay.
    """
    target = Path(path)
    data: dict[str, Any] = {**meta, "full_budget": float(full_budget), "space": space.to_dict(), "runs": [],
                            "failed": []}
    if target.is_file():
        previous = json.loads(target.read_text())
        if previous.get("space") == data["space"] and previous.get("full_budget") == data["full_budget"]:
            data["runs"] = previous["runs"]
            data.update({"noise": previous["noise"]} if "noise" in previous else {})
    done = {Config.from_dict(r["config"]).key() for r in data["runs"]}
    for i, config in enumerate(configs):
        if config.key() in done:
            continue
        try:
            result: Result | BaseException = objective(config, full_budget)
        except Exception as err:  # noqa: BLE001 - a failed run is recorded, the recording goes on
            result = err
        if isinstance(result, BaseException):
            data["failed"].append({"config": config.to_dict(), "error": str(result)[-500:]})
        else:
            curve = {**(result.curve or {}), float(full_budget): result.score}
            info = {k: v for k, v in (result.info or {}).items() if k in INFO_KEYS}
            data["runs"].append({"config": config.to_dict(), "info": info,
                                 "curve": {str(b): s for b, s in sorted(curve.items())}})
        _save(data, target)
        if on_run is not None:
            on_run(i, config, result)
    return data


def record_noise(
    make_objective: Callable[[int], Callable[[Config, float], Result]],
    config: Config,
    seeds: Sequence[int],
    *,
    full_budget: float,
    path: str | os.PathLike[str],
) -> list[dict[str, Any]]:
    """Train ``config`` (the baseline) at ``full_budget`` once per training seed, with the objective
    ``make_objective(seed)``, and store the scores in the recording at ``path`` under ``noise``
    (seeds already there are not trained again): the noise floor of one score."""
    target = Path(path)
    data = json.loads(target.read_text())
    noise = data.setdefault("noise", [])
    done = {n["seed"] for n in noise if n["config"] == config.to_dict()}
    for seed in seeds:
        if seed in done:
            continue
        result = make_objective(seed)(config, full_budget)
        curve = {**(result.curve or {}), float(full_budget): result.score}
        noise.append({"seed": seed, "config": config.to_dict(), "score": result.score,
                      "curve": {str(b): v for b, v in sorted(curve.items())}})
        _save(data, target)
    return noise


def _save(data: dict[str, Any], target: Path) -> None:
    """Write the recording whole or not at all (a temporary file, then a rename)."""
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(target)
