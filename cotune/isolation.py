"""Run a function in a fresh subprocess with a wall-clock limit, turning every failure into an error.

A trial that crashes (segfault, out-of-memory kill), hangs or raises must not take the
optimiser down, and must leave nothing behind (memory, threads, adapters wrapped into a model).
The child is started with ``spawn`` (no inherited state), sends its log records and its result
through a pipe, and writes its low-level stderr to a temporary file whose tail goes into the
error message when it dies without a word.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cotune.exceptions import TrialFailedError, TrialTimeoutError, WorkerLostError

STDERR_TAIL_CHARS = 4000  # how much of a dead child's stderr goes into the error message
_POLL_S = 0.5  # how often the parent checks that the child is alive
_SPAWN_HINT = (
    " (a subprocess re-imports the main script: if yours starts trials at import time, move that code under "
    "`if __name__ == \"__main__\":`)"
)


class _PipeHandler(logging.Handler):
    """Child side: forward log records to the parent, formatted (arguments may not pickle)."""

    def __init__(self, conn: Connection) -> None:
        super().__init__()
        self.conn = conn

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = dict(record.__dict__)
            data["msg"], data["args"] = record.getMessage(), None
            data["exc_text"] = self.format(record).split("\n", 1)[1] if record.exc_info else None
            data["exc_info"] = None
            self.conn.send(("log", data))
        except Exception:
            self.handleError(record)


def _child(conn: Connection, stderr_path: str, level: int, env: Mapping[str, str], parent: int,
           fn: Callable[..., Any], args: Sequence[Any]) -> None:
    """Subprocess entry point: run ``fn(*args)`` and send ``("ok", result)`` or ``("error", text)``."""
    os.environ.update(env)  # before anything initialises a GPU runtime
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    fd = os.open(stderr_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 2)  # C-level messages and fatal tracebacks go where the parent can read them
    os.close(fd)
    faulthandler.enable()
    root = logging.getLogger()
    root.handlers = [_PipeHandler(conn)]
    root.setLevel(level)
    try:
        result = fn(*args)
    except BaseException as err:  # noqa: BLE001 - every failure is reported to the parent
        conn.send(("error", f"{type(err).__name__}: {err}\n\nTraceback in the trial subprocess:\n{traceback.format_exc()}"))
    else:
        conn.send(("ok", result))
    finally:
        conn.close()


def _exit_with_parent(parent: int) -> None:
    """Child side: end this process once its parent ``parent`` is gone, even if it went while this
    one was starting (a killed driver must not leave trials training, holding a GPU, with nobody
    to report to)."""
    while os.getppid() == parent:
        time.sleep(_POLL_S)
    os._exit(1)


def _tail(path: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    text = text[-STDERR_TAIL_CHARS:].strip()
    return f"\n\nLast output of the subprocess (stderr):\n{text}" if text else ""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "did not exit"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.valid_signals() else str(-code)
        hint = " (SIGKILL often means it ran out of memory)" if -code == signal.SIGKILL else ""
        return f"was killed by signal {name}{hint}"
    return f"exited with code {code}"


def call_in_subprocess(
    fn: Callable[..., Any],
    args: Sequence[Any] = (),
    *,
    timeout_s: float | None = None,
    what: str = "trial",
    timeout_hint: str = "raise the time limit or lower the budget",
    env: Mapping[str, str] | None = None,
    cancel: threading.Event | None = None,
) -> Any:
    """Return ``fn(*args)`` computed in a fresh ``spawn`` subprocess.

    ``fn`` and ``args`` must be picklable (``fn`` a module-level function). Log records of the
    child are re-emitted in this process. ``env`` is set in the child before ``fn`` runs (e.g.
    ``CUDA_VISIBLE_DEVICES``); setting ``cancel`` kills the child.

    Raises:
        TrialFailedError: The child raised (the message holds its traceback).
        WorkerLostError: The child died without a word (crash, kill) or was cancelled.
        TrialTimeoutError: The child ran past ``timeout_s`` seconds and was killed.
    """
    ctx = multiprocessing.get_context("spawn")
    receiver, sender = ctx.Pipe(duplex=False)
    with tempfile.NamedTemporaryFile(prefix="cotune-", suffix=".stderr", delete=False) as handle:
        stderr_path = handle.name
    level = logging.getLogger("cotune").getEffectiveLevel()
    process = ctx.Process(target=_child, args=(sender, stderr_path, level, dict(env or {}), os.getpid(), fn,
                                               tuple(args)), daemon=True)
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    process.start()
    sender.close()  # the child holds the only sending end, so its death ends the pipe
    try:
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                process.kill()
                process.join()
                raise TrialTimeoutError(
                    f"the {what} ran past its wall-clock limit of {timeout_s:g} s and was killed; "
                    f"{timeout_hint}{_tail(stderr_path)}"
                )
            if cancel is not None and cancel.is_set():
                process.kill()
                process.join()
                raise WorkerLostError(f"the {what} was cancelled and its subprocess killed")
            if receiver.poll(_POLL_S if remaining is None else min(_POLL_S, remaining)):
                try:
                    kind, payload = receiver.recv()
                except EOFError:
                    kind, payload = "died", None
                if kind == "log":
                    logging.getLogger(payload["name"]).handle(logging.makeLogRecord(payload))
                    continue
                if kind == "ok":
                    return payload
                if kind == "error":
                    raise TrialFailedError(f"the {what} failed: {payload}")
            elif process.is_alive():
                continue
            elif receiver.poll(0):
                continue  # it sent its last words just before exiting: read them first
            # the pipe ended, or the child is gone without a word: it died
            process.join()
            hint = _SPAWN_HINT if process.exitcode == 1 else ""  # how an unguarded main script fails
            raise WorkerLostError(
                f"the {what} subprocess {_describe_exit(process.exitcode)} without reporting a result{hint}"
                f"{_tail(stderr_path)}"
            )
    finally:
        if process.is_alive():
            process.kill()
        process.join()
        receiver.close()
        Path(stderr_path).unlink(missing_ok=True)
