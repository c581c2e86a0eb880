"""The Ray executor on a local two-CPU Ray instance: results, a failing trial, a lost worker."""

from __future__ import annotations

from pathlib import Path

import pytest

import cotune

from .helpers import SPACE, Logged, counts

ray = pytest.importorskip("ray", reason="the ray extra is not installed")


#: Ray workers import the objective's module (tests/executors/helpers.py) from this path.
RUNTIME_ENV = {"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1])}}


def test_executor_starts_a_local_instance_with_custom_resources_and_stops_it(tmp_path):
    assert not ray.is_initialized()
    executor = cotune.executors.RayExecutor(
        2, resources_per_trial={"CPU": 0.5, "slot": 1},
        init_kwargs={"num_cpus": 2, "resources": {"slot": 2}, "runtime_env": RUNTIME_ENV},
    )
    result = cotune.optimize(Logged(str(tmp_path / "log"), seconds=0.2), SPACE, total_budget=400, full_budget=100,
                             method="random", executor=executor)
    assert [t.state for t in result.trials] == [cotune.TrialState.COMPLETE] * 4
    assert not ray.is_initialized()  # the executor started Ray, so it stopped it


@pytest.fixture(scope="module")
def local_cluster():
    ray.init(num_cpus=2, include_dashboard=False, configure_logging=False, runtime_env=RUNTIME_ENV)
    yield
    ray.shutdown()


def test_trials_run_as_ray_tasks_and_lost_workers_are_retried(local_cluster, tmp_path):
    log = str(tmp_path / "log")
    executor = cotune.executors.RayExecutor(2, resources_per_trial={"CPU": 1})
    result = cotune.optimize(Logged(log, seconds=0.2, fault="sigkill"), SPACE, total_budget=600, full_budget=100,
                             method="random", executor=executor, retries=1)
    assert all(t.state is cotune.TrialState.COMPLETE for t in result.trials) and len(result.trials) == 6
    lost = [t for t in result.trials if t.info.get("failed_attempts")]
    assert lost and all("WorkerLostError" in t.info["failed_attempts"][0]["error"] for t in lost)
    assert set(counts(log, "done").values()) == {1}
    assert ray.is_initialized()  # a cluster the executor did not start is left running


def test_an_objective_error_fails_the_trial_with_its_text(local_cluster, tmp_path):
    result = cotune.optimize(Logged(str(tmp_path / "log"), fault="raise"), SPACE, total_budget=600, full_budget=100,
                             method="random", executor="ray", n_workers=2)
    failed = [t for t in result.trials if t.state is cotune.TrialState.FAIL]
    assert failed and all("flaky failure (simulated)" in t.error for t in failed)


def test_a_trial_past_its_timeout_is_cancelled(local_cluster, tmp_path):
    executor = cotune.executors.RayExecutor(2, timeout_s=3)
    result = cotune.optimize(Logged(str(tmp_path / "log"), fault="hang"), SPACE, total_budget=300, full_budget=100,
                             method="random", executor=executor)
    hung = [t for t in result.trials if t.state is cotune.TrialState.FAIL]
    assert hung and all("wall-clock limit of 3 s" in t.error for t in hung)
