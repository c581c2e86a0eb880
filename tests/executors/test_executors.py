"""Executors: where trials run, their slots, and what happens when a trial crashes, hangs or dies."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cotune
from cotune.executors import InlineExecutor, ProcessExecutor, make_executor

from .helpers import SPACE, Logged, Nested, counts

ROOT = Path(__file__).resolve().parents[2]

BUDGETS = dict(total_budget=600, full_budget=100, method="random")


def test_make_executor_by_name_and_errors():
    assert isinstance(make_executor("inline", 3), InlineExecutor)
    executor = make_executor("process", 2, 30)
    assert isinstance(executor, ProcessExecutor) and executor.n_workers == 2 and executor.timeout_s == 30.0
    with pytest.raises(cotune.SettingsError, match="unknown executor 'slurm'"):
        make_executor("slurm")
    with pytest.raises(cotune.SettingsError, match="cannot stop a running thread"):
        make_executor("inline", 1, 10)
    with pytest.raises(cotune.SettingsError, match="n_workers must be a positive int"):
        make_executor("process", 0)


def test_process_workers_get_one_gpu_each(tmp_path):
    log = str(tmp_path / "log")
    executor = ProcessExecutor(2, devices=["5", "7"])
    result = cotune.optimize(Logged(log, seconds=0.3), SPACE, executor=executor, **BUDGETS)
    assert all(t.state is cotune.TrialState.COMPLETE for t in result.trials)
    seen = {(t.info["worker"], t.info["gpu"]) for t in result.trials}
    assert seen == {("0", "5"), ("1", "7")}
    by_slot = {}
    for t in result.trials:
        by_slot.setdefault(t.info["worker"], set()).add(t.info["pid"])
    assert all(len(p) == 1 for p in by_slot.values())  # each slot's process runs one trial after another
    assert len(set().union(*by_slot.values())) == 2


def test_a_trial_in_a_worker_process_may_start_subprocesses_of_its_own():
    result = cotune.optimize(Nested(), SPACE, executor="process", n_workers=2, **BUDGETS)
    assert all(t.state is cotune.TrialState.COMPLETE for t in result.trials)
    assert all(t.info["inner"] != t.info["outer"] for t in result.trials)


def test_a_script_without_the_main_guard_stops_with_one_clear_error(tmp_path):
    log = tmp_path / "log"
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(f"""
        import cotune
        from tests.executors.helpers import SPACE, Logged

        cotune.optimize(Logged({str(log)!r}), SPACE, total_budget=600, full_budget=100, method="random",
                        executor="process", n_workers=2)
    """))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode != 0
    assert "UnguardedMainError" in done.stderr and 'if __name__ == "__main__":' in done.stderr
    assert done.stderr.count("Traceback (most recent call last)") == 1  # the driver's, not one per worker
    assert not log.exists()  # no trial ran


def test_process_executor_without_gpus_shares_the_cpus():
    env = ProcessExecutor(2, devices=[]).slot_env(1)
    assert env["COTUNE_WORKER"] == "1" and "CUDA_VISIBLE_DEVICES" not in env and int(env["OMP_NUM_THREADS"]) >= 1


def test_process_executor_needs_a_picklable_objective():
    with pytest.raises(cotune.SettingsError, match="must be picklable"):
        cotune.optimize(lambda c, b: 1.0, SPACE, executor="process", **BUDGETS)


@pytest.mark.parametrize("executor", ["inline", "process"])
def test_a_failed_attempt_is_retried_then_the_trial_completes(tmp_path, executor):
    log = str(tmp_path / "log")
    result = cotune.optimize(Logged(log, fault="raise"), SPACE, executor=executor, retries=1, **BUDGETS)
    flaky = [t for t in result.trials if t.info.get("failed_attempts")]
    assert flaky and all(t.state is cotune.TrialState.COMPLETE for t in result.trials)
    assert all("flaky failure (simulated)" in t.info["failed_attempts"][0]["error"] for t in flaky)
    assert all(n == 1 for n in counts(log, "done").values())  # every trial finished exactly once


def test_without_retries_the_failure_is_final(tmp_path):
    log = str(tmp_path / "log")
    result = cotune.optimize(Logged(log, fault="raise"), SPACE, **BUDGETS)
    failed = [t for t in result.trials if t.state is cotune.TrialState.FAIL]
    assert failed and all("flaky failure" in t.error for t in failed)
    assert all(len(t.info["failed_attempts"]) == 1 for t in failed)


def test_a_killed_worker_is_retried_and_no_trial_runs_twice(tmp_path):
    log = str(tmp_path / "log")
    result = cotune.optimize(Logged(log, fault="sigkill"), SPACE, executor="process", n_workers=2, retries=2,
                             **BUDGETS)
    lost = [t for t in result.trials if t.info.get("failed_attempts")]
    assert lost, "the fault hit no trial"
    assert all("WorkerLostError" in t.info["failed_attempts"][0]["error"] and "SIGKILL" in
               t.info["failed_attempts"][0]["error"] for t in lost)
    assert all(t.state is cotune.TrialState.COMPLETE for t in result.trials)
    done = counts(log, "done")
    assert len(done) == len(result.trials) and set(done.values()) == {1}


def test_a_hanging_trial_is_killed_at_its_timeout_and_retried(tmp_path):
    log = str(tmp_path / "log")
    result = cotune.optimize(Logged(log, fault="hang"), SPACE, executor="process", n_workers=2, retries=1,
                             trial_timeout_s=3, total_budget=300, full_budget=100, method="random")
    hung = [t for t in result.trials if t.info.get("failed_attempts")]
    assert hung and all("wall-clock limit of 3 s" in t.info["failed_attempts"][0]["error"] for t in hung)
    assert all(t.state is cotune.TrialState.COMPLETE for t in result.trials)
