"""The worker side of the parallel evaluators: one process, one device, one `Trainer`.

A pool worker is a fresh interpreter started by `ProcessPoolEvaluator` (see `pool_protocol`):
it never imports the user's script. It receives the schema, the data and the training config
once, moves the data to its device once (by building one `Trainer`) and then trains whatever
candidates it is sent, one at a time. It never outlives its parent: a watchdog thread ends it
when the parent process is gone (killed by SIGKILL, say), and end-of-file on its connection
ends it too. It ignores SIGINT: on Ctrl-C the whole terminal process group gets the signal, and
shutting workers down is the parent's job. After a sticky CUDA error (``Trainer.broken``) it
sends its result and exits, and the pool starts a fresh one.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection
from typing import Any

import attrs

from ...training import EvalResult, Trainer
from ...training.failures import error_origin
from .base import Task, build_trainer, set_threads, train_task
from .pool_protocol import PROTOCOL, register_missing, unpack

__all__ = ["evaluate_task", "main", "result_message"]

_WATCH_INTERVAL_S = 0.5
# Where a start-up failure happened; "load" failures get the parent's hint about __main__.
LOAD, DEVICE = "load", "device"


def _parent_alive(parent_pid: int, direct: bool) -> bool:
    if direct:  # our parent started us: once it dies we are reparented
        return os.getppid() == parent_pid
    try:  # it died before we looked (or we were started through a helper): does it exist?
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _watch_parent(parent_pid: int) -> None:
    direct = os.getppid() == parent_pid

    def watch() -> None:
        while True:
            time.sleep(_WATCH_INTERVAL_S)
            if not _parent_alive(parent_pid, direct):
                os._exit(0)

    threading.Thread(target=watch, name="pytorch-devol-parent-watch", daemon=True).start()


def _send(conn: Connection, *message: Any) -> None:
    conn.send_bytes(pickle.dumps(message, protocol=PROTOCOL))


def evaluate_task(trainer: Trainer, schema: Any, task: Task) -> EvalResult:
    """Train one candidate. `Trainer.evaluate` turns the candidate's own errors into failed
    results; anything else that escapes it still becomes one ("unexpected", with where it was
    raised), so the worker keeps serving."""
    try:
        return train_task(trainer, schema, task)
    except Exception as exc:  # noqa: BLE001 - reported as the candidate's result
        return EvalResult.failed(f"{type(exc).__name__}: {exc}", "unexpected",
                                 origin=error_origin(exc), error=exc, task=trainer.data.task)


def _round_trips(error: BaseException) -> bool:
    """Whether the parent can unpickle ``error`` (some exceptions pickle but cannot be rebuilt,
    e.g. one whose ``__init__`` takes other arguments than its ``args``)."""
    try:
        pickle.loads(pickle.dumps(error, protocol=PROTOCOL))
    except Exception:  # noqa: BLE001 - any failure means: do not send it
        return False
    return True


def result_message(index: int, result: EvalResult, info: dict[str, Any]) -> bytes:
    """The pickled ``("result", index, result, info)``; without ``result.error`` when that
    exception does not survive pickling (the reason and origin still say what happened)."""
    if result.error is not None and not _round_trips(result.error):
        result = attrs.evolve(result, error=None)
    try:
        return pickle.dumps(("result", index, result, info), protocol=PROTOCOL)
    except Exception:  # noqa: BLE001 - the error is the only free-form field; drop it
        return pickle.dumps(("result", index, attrs.evolve(result, error=None), info),
                            protocol=PROTOCOL)


def _start(conn: Connection, setup: dict[str, Any]) -> tuple[Any, Trainer] | None:
    """Load the schema and data, build the Trainer; report "ready" or the error (and where)."""
    phase = LOAD
    try:
        sys.path[:] = setup["sys_path"]  # before unpickling: gene modules import as in parent
        set_threads(setup["threads"])
        register_missing(setup["registrations"])  # registered by the user's script, say
        schema, data, config = unpack(setup["payload"], setup["data_fd"])
        phase = DEVICE
        trainer = build_trainer(data, config, setup["device"], setup["shared_device"])
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it there
        _send(conn, "error", traceback.format_exc(), phase)
        return None
    _send(conn, "ready", os.getpid(), str(trainer.device))
    return schema, trainer


def _serve(conn: Connection, schema: Any, trainer: Trainer) -> None:
    served = 0
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the parent closed the connection or died
        if message[0] != "task":
            return
        task = message[1]
        start = time.perf_counter()
        result = evaluate_task(trainer, schema, task)
        served += 1
        info = {"pid": os.getpid(), "device": str(trainer.device), "served": served,
                "seconds": time.perf_counter() - start, "broken": trainer.broken}
        try:
            conn.send_bytes(result_message(task.index, result, info))
        except (EOFError, OSError):
            return
        if trainer.broken:  # a sticky CUDA error: this process's context is unusable
            return


def main(argv: list[str] | None = None) -> None:
    """Entry point of a pool worker: ``argv`` = [socket descriptor, parent pid].

    Protocol (pickles over the connection): the parent first sends a setup dict (``sys_path``,
    ``device``, ``threads``, ``shared_device``, ``registrations``, ``payload``, ``data_fd``: see
    `pool_protocol`),
    then ``("task", Task)`` or ``("stop",)``; the worker answers
    ``("ready", pid, device)`` or ``("error", traceback, phase)`` once, then
    ``("result", index, EvalResult, info)`` per task.
    """
    args = sys.argv[1:] if argv is None else argv
    socket_fd, parent_pid = int(args[0]), int(args[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent(parent_pid)
    conn = Connection(socket_fd)
    try:
        started = _start(conn, pickle.loads(conn.recv_bytes()))
        if started is not None:
            _serve(conn, *started)
    except (EOFError, OSError):
        pass  # the parent is gone
    finally:
        conn.close()
        sys.stdout.flush()
        sys.stderr.flush()
