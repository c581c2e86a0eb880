"""The trial subprocess: results, raised errors, hard crashes and timeouts become parent-side errors.

Targets are stdlib functions or defined here, and this module imports nothing heavy, so each
spawned child starts in well under a second.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time

import pytest

from cotune.exceptions import TrialFailedError, TrialTimeoutError, WorkerLostError
from cotune.isolation import call_in_subprocess


def _logs_and_returns(value: int) -> dict:
    logging.getLogger("cotune.train.test").warning("child says %d", value)
    return {"value": value, 1.5: [1, 2]}


def _raises() -> None:
    raise ValueError("bad learning rate 1e9")


def _env(name: str) -> str | None:
    return os.environ.get(name)


def _crashes() -> None:
    os.write(2, b"native library: fatal error in kernel\n")
    os._exit(3)


def test_result_and_logs_come_back(caplog):
    with caplog.at_level(logging.INFO, logger="cotune"):
        assert call_in_subprocess(_logs_and_returns, (7,)) == {"value": 7, 1.5: [1, 2]}
    assert "child says 7" in caplog.text


def test_raised_error_carries_the_child_traceback():
    with pytest.raises(TrialFailedError, match="ValueError: bad learning rate 1e9") as info:
        call_in_subprocess(_raises)
    assert "Traceback in the trial subprocess" in str(info.value) and "_raises" in str(info.value)


def test_hard_crash_reports_exit_code_and_stderr():
    with pytest.raises(WorkerLostError, match="exited with code 3 without reporting a result") as info:
        call_in_subprocess(_crashes)
    assert "native library: fatal error in kernel" in str(info.value)


def test_killed_child_names_the_signal():
    with pytest.raises(WorkerLostError, match="killed by signal SIGABRT"):
        call_in_subprocess(os.abort)


def test_environment_is_set_in_the_child():
    assert call_in_subprocess(_env, ("CUDA_VISIBLE_DEVICES",), env={"CUDA_VISIBLE_DEVICES": "3"}) == "3"


def test_cancel_kills_the_child():
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    start = time.monotonic()
    with pytest.raises(WorkerLostError, match="cancelled"):
        call_in_subprocess(time.sleep, (60,), cancel=cancel)
    assert time.monotonic() - start < 30


def test_timeout_kills_the_child():
    start = time.monotonic()
    with pytest.raises(TrialTimeoutError, match="wall-clock limit of 1 s"):
        call_in_subprocess(time.sleep, (60,), timeout_s=1.0)
    assert time.monotonic() - start < 30


def test_a_finished_child_leaves_no_semaphore_behind(tmp_path):
    # tqdm makes a multiprocessing lock in every process that shows a bar (the training loop does); a child
    # killed after its call left it to the resource tracker, which warned at exit once per trial
    (tmp_path / "bar_in_child.py").write_text(
        "from tqdm.auto import tqdm\n\n\ndef show_bar():\n    return sum(tqdm(range(3)))\n")
    script = ("from bar_in_child import show_bar\nfrom cotune.isolation import call_in_subprocess\n\n"
              "if __name__ == '__main__':\n    print([call_in_subprocess(show_bar) for _ in range(2)])\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[3, 3]"
    assert "leaked semaphore" not in done.stderr
