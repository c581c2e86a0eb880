"""Run functions in subprocesses with a wall-clock limit, turning every failure into an error.

A trial that crashes (segfault, out-of-memory kill), hangs or raises must not take the
optimiser down, and must leave nothing behind (memory, threads, adapters wrapped into a model).
A `WorkerProcess` is started with ``spawn`` (no inherited state) and runs calls one after
another; `call_in_subprocess` uses a fresh one for a single call (training runs, whose model
must not outlive them). The child sends its log records and results through a pipe, and writes
its low-level stderr to a temporary file whose tail goes into the error message when it dies
without a word.
"""

from __future__ import annotations

import faulthandler
import logging
import multiprocessing
import multiprocessing.util
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Mapping, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from cotune.exceptions import TrialFailedError, TrialTimeoutError, UnguardedMainError, WorkerLostError

STDERR_TAIL_CHARS = 4000  # how much of a dead child's stderr goes into the error message
_POLL_S = 0.5  # how often the parent checks that the child is alive
_CLOSE_WAIT_S = 5.0  # how long a worker asked to stop may take before it is killed
#: Exit code of a subprocess that found itself importing a script that starts a study.
UNGUARDED_MAIN_EXIT = 87
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


def _serve(conn: Connection, stderr_path: str, level: int, env: Mapping[str, str], parent: int) -> None:
    """Worker entry point: run each ``("call", fn, args)`` received, answering ``("ok", result)``
    or ``("error", text)``, until ``("stop",)`` or the end of the pipe."""
    os.environ.update(env)  # before anything initialises a GPU runtime
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    fd = os.open(stderr_path, os.O_WRONLY | os.O_APPEND)
    os.dup2(fd, 2)  # C-level messages and fatal tracebacks go where the parent can read them
    os.close(fd)
    faulthandler.enable()
    root = logging.getLogger()
    root.handlers = [_PipeHandler(conn)]
    root.setLevel(level)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message[0] == "stop":
            return
        if message[0] == "exit":  # quickly: release multiprocessing's resources, skip the interpreter's teardown
            multiprocessing.util._run_finalizers()
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        _, fn, args = message
        try:
            reply = ("ok", fn(*args))
        except BaseException as err:  # noqa: BLE001 - every failure is reported to the parent
            reply = ("error", f"{type(err).__name__}: {err}\n\nTraceback in the trial subprocess:\n{traceback.format_exc()}")
        try:
            conn.send(reply)
        except Exception as err:  # noqa: BLE001 - e.g. a result that does not pickle
            conn.send(("error", f"{type(err).__name__}: the result could not be sent back: {err}"))


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


class WorkerProcess:
    """A ``spawn`` subprocess that runs one function call after another (`call`), so that a
    short call does not pay a Python and torch start-up each time.

    ``env`` is set in it before anything runs (e.g. ``CUDA_VISIBLE_DEVICES``). A call that
    times out or is cancelled kills the process; so does a crash. Then `alive` is False and the
    owner starts a new one. The process is not a daemon, so a call may start subprocesses of
    its own; it ends with its parent, and `close` stops it.
    """

    def __init__(self, *, env: Mapping[str, str] | None = None, what: str = "trial") -> None:
        ctx = multiprocessing.get_context("spawn")
        self.what = what
        self._conn, child = ctx.Pipe(duplex=True)
        with tempfile.NamedTemporaryFile(prefix="cotune-", suffix=".stderr", delete=False) as handle:
            self._stderr_path = handle.name
        level = logging.getLogger("cotune").getEffectiveLevel()
        self._process = ctx.Process(target=_serve, args=(child, self._stderr_path, level, dict(env or {}),
                                                         os.getpid()), daemon=False)
        self._process.start()
        child.close()  # the worker holds the only other end, so its death ends the pipe
        self._finalizer = weakref.finalize(self, _stop_worker, self._process, self._conn, self._stderr_path)

    @property
    def alive(self) -> bool:
        """Whether the process can take another call."""
        return self._process.is_alive()

    @property
    def pid(self) -> int | None:
        """The worker's process id."""
        return self._process.pid

    def call(self, fn: Callable[..., Any], args: Sequence[Any] = (), *, timeout_s: float | None = None,
             timeout_hint: str = "raise the time limit or lower the budget",
             cancel: threading.Event | None = None) -> Any:
        """Return ``fn(*args)`` computed in the worker (``fn`` and ``args`` picklable, ``fn`` a
        module-level function); the worker's log records are re-emitted here.

        Raises:
            TrialFailedError: The call raised (the message holds its traceback).
            WorkerLostError: The worker died without a word (crash, kill) or was cancelled.
            TrialTimeoutError: The call ran past ``timeout_s`` seconds and the worker was killed.
            UnguardedMainError: The worker, importing the main script as it started, found it
                starting a study.
        """
        what = self.what
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        try:
            self._conn.send(("call", fn, tuple(args)))
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass  # it died before the call: reported below
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                self.kill()
                raise TrialTimeoutError(
                    f"the {what} ran past its wall-clock limit of {timeout_s:g} s and was killed; "
                    f"{timeout_hint}{_tail(self._stderr_path)}"
                )
            if cancel is not None and cancel.is_set():
                self.kill()
                raise WorkerLostError(f"the {what} was cancelled and its subprocess killed")
            try:
                ready = self._conn.poll(_POLL_S if remaining is None else min(_POLL_S, remaining))
                message = self._conn.recv() if ready else None
            except (EOFError, OSError):
                ready, message = True, None
            if message is not None:
                kind, payload = message
                if kind == "log":
                    logging.getLogger(payload["name"]).handle(logging.makeLogRecord(payload))
                    continue
                if kind == "ok":
                    return payload
                raise TrialFailedError(f"the {what} failed: {payload}")
            if not ready and self._process.is_alive():
                continue
            if not ready and self._conn.poll(0):
                continue  # it sent its last words just before exiting: read them first
            # the pipe ended, or the worker is gone without a word: it died
            self._process.join()
            code = self._process.exitcode
            if code == UNGUARDED_MAIN_EXIT:
                raise UnguardedMainError(
                    f"the {what}'s subprocess re-imports the main script as it starts, and the script starts a study "
                    "when imported; move the code that runs the study under `if __name__ == \"__main__\":`"
                )
            hint = _SPAWN_HINT if code == 1 else ""  # how an unguarded main script fails otherwise
            raise WorkerLostError(
                f"the {what} subprocess {_describe_exit(code)} without reporting a result{hint}"
                f"{_tail(self._stderr_path)}"
            )

    def kill(self) -> None:
        """End the worker now."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()

    def close(self, *, quick: bool = False) -> None:
        """Stop the worker (killing it if it does not stop within a few seconds) and free its files;
        done at interpreter exit for a worker never closed. ``quick``: the worker releases what
        multiprocessing holds (tqdm's semaphore) and exits without the interpreter's teardown (its
        atexit handlers; ~0.7 s with torch loaded), for a one-shot worker whose result is in."""
        if quick and self._process.is_alive():
            try:
                self._conn.send(("exit",))
                self._process.join(_CLOSE_WAIT_S)
            except OSError:
                pass
        self._finalizer()


def _stop_worker(process: multiprocessing.process.BaseProcess, conn: Connection, stderr_path: str) -> None:
    if process.is_alive():
        try:
            conn.send(("stop",))
        except OSError:
            pass
        process.join(_CLOSE_WAIT_S)
    if process.is_alive():
        process.kill()
    process.join()
    conn.close()
    Path(stderr_path).unlink(missing_ok=True)


def refuse_unguarded_start() -> None:
    """End this process at once if it is a ``spawn`` subprocess still importing the main script
    (a script that starts a study at import time, without the ``__main__`` guard): the parent
    then stops its study with `UnguardedMainError` instead of every subprocess running the study."""
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        sys.stderr.write("cotune: this subprocess was started to run a trial and is importing a script that "
                         "starts a study; stopping (add the `if __name__ == \"__main__\":` guard)\n")
        sys.stderr.flush()
        os._exit(UNGUARDED_MAIN_EXIT)


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
    """Return ``fn(*args)`` computed in a fresh ``spawn`` subprocess (a `WorkerProcess` used once).

    ``fn`` and ``args`` must be picklable (``fn`` a module-level function). Log records of the
    child are re-emitted in this process. ``env`` is set in the child before ``fn`` runs (e.g.
    ``CUDA_VISIBLE_DEVICES``); setting ``cancel`` kills the child. Raises what `WorkerProcess.call` raises.
    """
    worker = WorkerProcess(env=env, what=what)
    try:
        return worker.call(fn, args, timeout_s=timeout_s, timeout_hint=timeout_hint, cancel=cancel)
    finally:
        # asked to exit, the child releases its semaphores (tqdm's lock): a killed one left them to the
        # resource tracker, which warned of "leaked semaphore objects" once per trial
        worker.close(quick=True)
