"""Recording real runs and replaying them as a benchmark (with a cheap stand-in for training)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import spearmanr

import cotune
from cotune.bench.recorded import RecordedLandscape, record, record_noise
from cotune.space.design import initial_design


@pytest.fixture
def small_space():
    return cotune.SearchSpace(mixture=["a", "b"], params={"rank": cotune.Int(1, 16, log=True, default=4)})


def fake_training(config, budget):
    """A learning curve at 10%, 25%, 50% and 100% of the budget; rank 16 crashes."""
    if config.params["rank"] == 16:
        raise RuntimeError("out of memory (simulated)")
    final = config.mixture["a"] + config.params["rank"] / 100
    curve = {budget * f: final * f for f in (0.1, 0.25, 0.5)}
    return cotune.Result(score=final, curve=curve, info={"train_seconds": 1.5, "secret_path": "/home/x"})


def test_record_stores_curves_resumes_and_keeps_failures(tmp_path, small_space):
    path = tmp_path / "rec.json"
    configs = initial_design(small_space, 6, 0) + [cotune.Config({"a": 0.5, "b": 0.5}, {"rank": 16})]
    trained = []

    def counting(config, budget):
        trained.append(config)
        return fake_training(config, budget)

    data = record(counting, small_space, configs[:3], full_budget=20, path=path, meta={"description": "test"})
    assert len(data["runs"]) == 3 and len(trained) == 3
    assert data["runs"][0]["curve"] == {"2.0": pytest.approx(0.054), "5.0": pytest.approx(0.135),
                                        "10.0": pytest.approx(0.27), "20.0": pytest.approx(0.54)}
    assert data["runs"][0]["info"] == {"train_seconds": 1.5}
    data = record(counting, small_space, configs, full_budget=20, path=path, meta={"description": "test"})
    assert len(trained) == 7  # the first three were not trained again
    assert len(data["runs"]) == 6 and "out of memory" in data["failed"][0]["error"]
    assert json.loads(path.read_text()) == data


def test_replay_reads_the_nearest_run_at_the_budget_fraction(tmp_path, small_space):
    path = tmp_path / "rec.json"
    configs = initial_design(small_space, 6, 0)
    record(fake_training, small_space, configs, full_budget=20, path=path, meta={})
    bench = RecordedLandscape(path=path, full_budget=100.0, curve_budgets=(10.0,))
    assert bench.space == small_space
    best = max(configs, key=lambda c: fake_training(c, 20).score)
    assert bench.optimum == pytest.approx(fake_training(best, 20).score)
    assert bench.regret(best) == 0.0
    result = bench(best, 100.0)
    assert result.score == pytest.approx(bench.optimum) and result.curve[10.0] == pytest.approx(0.1 * bench.optimum)
    assert bench(best, 37.5).score == pytest.approx(0.375 * bench.optimum)  # between the 25% and 50% points
    nearby = cotune.Config({"a": best.mixture["a"] - 0.001, "b": best.mixture["b"] + 0.001}, best.params)
    assert bench.true_score(nearby) == bench.true_score(best)


def test_the_baselines_noise_floor_is_recorded_once_per_seed_and_kept_on_resume(tmp_path, small_space):
    path = tmp_path / "rec.json"
    configs = initial_design(small_space, 4, 0)  # the baseline first
    record(fake_training, small_space, configs, full_budget=20, path=path, meta={})
    seeds_trained = []

    def with_seed(seed):
        def train(config, budget):
            seeds_trained.append(seed)
            result = fake_training(config, budget)
            return cotune.Result(score=result.score + 0.01 * seed, curve=result.curve)
        return train

    default = small_space.default_config()
    noise = record_noise(with_seed, default, [1, 2], full_budget=20, path=path)
    assert [n["seed"] for n in noise] == [1, 2] and seeds_trained == [1, 2]
    record_noise(with_seed, default, [1, 2, 3], full_budget=20, path=path)
    assert seeds_trained == [1, 2, 3]  # 1 and 2 were not trained again
    record(fake_training, small_space, configs, full_budget=20, path=path, meta={})  # a resumed recording
    base = fake_training(default, 20).score
    bench = RecordedLandscape(path=path)
    assert bench.noise_std == pytest.approx(float(np.std([base, base + 0.01, base + 0.02, base + 0.03], ddof=1)))


@pytest.mark.parametrize(("name", "budgets", "least"), [
    ("smollm2-trivia", {"2.0", "5.0", "10.0", "20.0"}, 20),
    ("smollm2-blend", {"5.0", "10.0", "20.0", "40.0"}, 5),  # recorded in chunks, up to 120 runs
])
def test_packaged_recording_replays_through_optimize(name, budgets, least):
    from cotune.bench.landscapes import make_landscape

    bench = make_landscape(name, full_budget=100.0, curve_budgets=(10.0,))
    runs = bench.data["runs"]
    assert len(runs) >= least and bench.data["generator"] == "benchmarks/record_real_runs.py"
    assert all(set(r["curve"]) == budgets for r in runs)
    assert runs[0]["config"] == bench.space.default_config().to_dict()
    result = cotune.optimize(bench, bench.space, total_budget=500, full_budget=100, small_budget=10, method="random")
    worst = min(float(r["curve"][max(r["curve"], key=float)]) for r in runs)
    assert 0.0 <= bench.regret(result.best.config) <= bench.optimum - worst


def test_a_recording_with_proxy_models_replays_each_at_its_cost_over_the_shared_configurations(tmp_path, small_space):
    configs = [c for c in initial_design(small_space, 8, 0) if c.params["rank"] != 16]

    def at_scale(shift):
        def train(config, budget):
            result = fake_training(config, budget)
            return cotune.Result(score=result.score * (1 - shift) + shift * config.mixture["b"], curve=result.curve)
        return train

    paths = {name: tmp_path / f"{name}.json" for name in ("m", "s")}
    record(at_scale(0.0), small_space, configs, full_budget=20, path=paths["m"], meta={"weights_per_token": 400})
    record(at_scale(0.5), small_space, configs[:-1], full_budget=20, path=paths["s"], meta={"weights_per_token": 100})
    landscape = RecordedLandscape(path=paths["m"], proxy_paths=(("s", paths["s"]),), full_budget=100.0,
                                  curve_budgets=(10.0,))
    assert landscape.proxies == {"s": 0.25}
    assert len(landscape.data["runs"]) == len(configs) - 1  # the last one the proxy lacks is not replayed
    config = configs[2]
    proxy, target = landscape(config, 100.0, proxy="s"), landscape(config, 100.0)
    assert proxy.cost == pytest.approx(25.0) and target.cost == 100.0
    assert target.score == pytest.approx(config.mixture["a"] + config.params["rank"] / 100)
    assert proxy.score == pytest.approx(0.5 * target.score + 0.5 * config.mixture["b"])
    assert set(proxy.curve) == {10.0, 100.0}
    # the proxy ranks by a + rank/100 + b = 1 + rank/100, the target by a + rank/100
    kept = [cotune.Config.from_dict(r["config"]) for r in landscape.data["runs"]]
    expected = spearmanr([c.params["rank"] for c in kept], [c.mixture["a"] + c.params["rank"] / 100 for c in kept])
    assert landscape.proxy_rank_correlations() == {"s": pytest.approx(float(expected.statistic))}
    with pytest.raises(ValueError, match="unknown proxy 'xl'"):
        landscape(config, 100.0, proxy="xl")


def test_the_packaged_multi_scale_recording_replays_its_proxies_at_their_cost():
    from cotune.bench.landscapes import make_landscape

    bench = make_landscape("scales-real", full_budget=100.0, curve_budgets=(25.0,))
    assert bench.data["generator"] == "benchmarks/record_multiscale.py" and len(bench.data["runs"]) >= 80
    costs = bench.proxies
    assert set(costs) == {"xs", "s"} and 0 < costs["xs"] < costs["s"] < 0.2  # weights per token of 3 widths
    config = cotune.Config.from_dict(bench.data["runs"][5]["config"])
    assert bench(config, 100.0, proxy="xs").cost == pytest.approx(100.0 * costs["xs"])
    assert bench(config, 100.0, proxy="xs").score != bench(config, 100.0).score
    correlations = bench.proxy_rank_correlations()
    assert set(correlations) == {"xs", "s"} and all(-1 <= c <= 1 for c in correlations.values())
    result = cotune.optimize(bench, bench.space, total_budget=400, full_budget=100, small_budget=25, method="jobs",
                             proxies=costs, seed=0)
    full = {t.config.key() for t in result.trials if t.budget == 100.0 and t.fidelity is None}
    assert {t.config.key() for t in result.trials if t.fidelity == "xs"} <= full  # each full run paired on xs
    assert any(t.fidelity == "xs" for t in result.trials) and 0.0 <= bench.regret(result.best.config)
