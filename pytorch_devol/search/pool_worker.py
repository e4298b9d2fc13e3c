"""The worker side of the parallel evaluators: one process, one device, one `Trainer`.

A worker receives the schema, the data and the training config once, moves the data to its
device once (by building one `Trainer`) and then trains whatever candidates it is sent, one at
a time. It never outlives its parent: a watchdog thread ends it when the parent process is gone
(killed by SIGKILL, say), and end-of-file on its pipe ends it too. It ignores SIGINT: on Ctrl-C
the whole terminal process group gets the signal, and shutting workers down is the parent's job.
"""

from __future__ import annotations

import os
import pickle
import signal
import threading
import time
import traceback
from typing import Any

import attrs
import numpy as np
import torch

from ..training import EvalResult, TrainConfig, Trainer

__all__ = ["build_trainer", "set_threads", "worker_main"]

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_WATCH_INTERVAL_S = 0.5


def set_threads(threads: int | None) -> None:
    """Limit this process's torch CPU threads (several workers share the cores)."""
    if threads is None:
        return
    torch.set_num_threads(max(1, int(threads)))
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # only settable before any inter-op work; harmless if too late
        pass


def build_trainer(data: Any, config: TrainConfig, device: str | None) -> Trainer:
    """A `Trainer` on ``device`` (None: keep ``config.device``); the data moves there now."""
    if device is not None:
        config = attrs.evolve(config, device=device)
        index = torch.device(device).index
        if torch.device(device).type == "cuda" and index is not None:
            torch.cuda.set_device(index)  # no stray context or allocation on GPU 0
    return Trainer(data, config)


def _parent_alive(parent_pid: int, direct: bool) -> bool:
    if direct:  # started by the parent itself (spawn, fork): reparented once it dies
        return os.getppid() == parent_pid
    try:  # started through a forkserver: ask whether the parent's pid still exists
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


def _send(conn: Any, *message: Any) -> None:
    conn.send_bytes(pickle.dumps(message, protocol=_PROTOCOL))


def worker_main(conn: Any, device: str, threads: int | None, parent_pid: int) -> None:
    """Entry point of a pool worker process (see `ProcessPoolEvaluator`).

    Protocol on ``conn``: the parent first sends ``(schema, data, config)`` (CPU tensors as
    shared-memory handles, or a plain pickled copy; ``recv`` reads either), then pickled
    ``("task", index, genome, seed, keep)`` or ``("stop",)``; the worker answers
    ``("ready", pid, device)`` or ``("error", traceback)`` once, then
    ``("result", index, EvalResult, info)`` per task.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _watch_parent(parent_pid)
    set_threads(threads)
    try:
        schema, data, config = conn.recv()
        trainer = build_trainer(data, config, device)
        del data
        _send(conn, "ready", os.getpid(), str(trainer.device))
    except (EOFError, OSError):
        return
    except Exception:  # noqa: BLE001 - reported to the parent, which raises it there
        _send(conn, "error", traceback.format_exc())
        return
    served = 0
    while True:
        try:
            message = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return  # the parent closed the pipe or died
        if message[0] != "task":
            return
        _, index, genome, seed, keep = message
        start = time.perf_counter()
        try:
            result = trainer.evaluate(schema, np.asarray(genome, dtype=np.int64), seed=seed,
                                      keep_weights=keep or True)
        except Exception as exc:  # noqa: BLE001 - evaluate only raises on data/schema misfit
            result = EvalResult.failed(f"{type(exc).__name__}: {exc}", task=trainer.data.task)
        served += 1
        info = {"pid": os.getpid(), "device": str(trainer.device), "served": served,
                "seconds": time.perf_counter() - start}
        try:
            _send(conn, "result", index, result, info)
        except (EOFError, OSError):
            return
