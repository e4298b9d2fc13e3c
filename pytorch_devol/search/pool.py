"""`ProcessPoolEvaluator`: train candidates in parallel in local worker processes.

Each worker is a spawned process pinned to one device: round-robin over the visible GPUs with
``workers_per_gpu`` workers on each (small networks leave a large GPU idle; several share it
well), or CPU workers splitting the cores when there is no GPU. A worker receives the dataset
once at start-up (through shared memory; a copy where /dev/shm is too small) and moves it to its
device once.

Why not ``concurrent.futures.ProcessPoolExecutor``: one dead worker breaks that whole pool.
Here each worker has its own pipe, so a worker that dies (segfault, SIGKILL, CUDA fatal error)
costs only its current candidate: the worker is replaced and the candidate retried
(``max_retries`` times), then recorded as failed with the reason. Workers end with the pool
(``close``), and on their own when the parent process dies.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import wait as _wait
from typing import Any

import attrs
import torch

from ..training import EvalResult, TrainConfig
from .evaluator import Task
from .pool_worker import worker_main

__all__ = ["ProcessPoolEvaluator", "WorkerStartupError", "plan_devices", "usable_cores"]

_START_METHODS = ("spawn", "forkserver", "fork")
_MAX_STARTUP_FAILURES = 3
_MAX_DEFAULT_CPU_WORKERS = 8


def _shm_free() -> int:
    """Free bytes in /dev/shm (0 where there is none: then data is copied to workers)."""
    try:
        stats = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return 0
    return stats.f_bavail * stats.f_frsize


def _payload(schema: Any, data: Any, config: TrainConfig) -> tuple[str, Any]:
    """What each worker is sent at start-up: the data's tensors moved to shared memory once
    (workers get handles, and CPU workers share one copy), or, where /dev/shm is too small
    (e.g. Docker's default 64 MB), one pickled copy per worker."""
    tensors = [getattr(data, a.name) for a in attrs.fields(type(data))
               if isinstance(getattr(data, a.name), torch.Tensor)] if attrs.has(type(data)) \
        else []
    size = sum(t.numel() * t.element_size() for t in tensors)
    if tensors and _shm_free() > 2 * size + (64 << 20):
        try:
            for t in tensors:
                t.share_memory_()
            return "shared-memory", (schema, data, config)
        except RuntimeError:
            pass
    return "copy", pickle.dumps((schema, data, config), protocol=pickle.HIGHEST_PROTOCOL)


def _send_payload(conn: Any, payload: tuple[str, Any]) -> None:
    kind, obj = payload
    try:  # the worker reads both with recv()
        conn.send(obj) if kind == "shared-memory" else conn.send_bytes(obj)
    except Exception:  # noqa: BLE001 - the worker died or the pool closed: its sentinel says
        pass


class WorkerStartupError(RuntimeError):
    """A worker could not start (e.g. its device is unusable): a setup problem, not a
    candidate's, so the search stops instead of recording failures."""


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def plan_devices(workers: int | None = None, workers_per_gpu: int = 1,
                 device: str = "auto") -> list[str]:
    """The device of each worker: round-robin over the GPUs ``device`` allows ("auto" or
    "cuda": every visible GPU; "cuda:k": that one), ``workers_per_gpu`` per GPU by default;
    CPU workers (one per core, at most 8, by default) when there is no GPU or
    ``device == "cpu"``: single-threaded processes train small networks faster than one
    process with many threads (see benchmarks/results/parallel_cpu.md)."""
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or workers < 1):
        raise ValueError(f"workers must be an integer >= 1 or None, got {workers!r}")
    if isinstance(workers_per_gpu, bool) or not isinstance(workers_per_gpu, int) or \
            workers_per_gpu < 1:
        raise ValueError(f"workers_per_gpu must be an integer >= 1, got {workers_per_gpu!r}")
    kind = torch.device("cuda" if device == "auto" else device)
    if kind.type == "cuda" and torch.cuda.is_available():
        gpus = [kind.index] if kind.index is not None else list(range(torch.cuda.device_count()))
        n = workers or len(gpus) * workers_per_gpu
        return [f"cuda:{gpus[i % len(gpus)]}" for i in range(n)]
    if kind.type == "cuda" and device != "auto":
        raise ValueError(f"device {device!r} asked for but CUDA is not available")
    if kind.type not in ("cpu", "cuda"):
        return [str(kind)] * (workers or 1)
    return ["cpu"] * (workers or min(usable_cores(), _MAX_DEFAULT_CPU_WORKERS))


@attrs.define(eq=False)
class _Worker:
    """Parent-side handle of one worker process."""

    slot: int
    device: str
    process: Any
    conn: Any
    ready: bool = False
    task: Task | None = None
    started_task_at: float = 0.0
    started_at: float = attrs.Factory(time.monotonic)


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "closed its pipe"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


class ProcessPoolEvaluator:
    """Trains candidates in ``workers`` local processes, each pinned to one device.

    ``workers``: how many (default: ``workers_per_gpu`` per visible GPU, or one per CPU core, at
    most 8, when the search trains on CPU). ``threads_per_worker``: torch CPU threads of each worker
    (default: the cores divided among the workers; at most 4 for GPU workers).
    ``max_retries``: how many times a candidate whose worker died is retried on a fresh worker
    before it is recorded as failed. ``candidate_timeout``: seconds after which a candidate's
    worker is killed and the candidate recorded as failed (None: no limit; prefer
    ``TrainConfig.max_seconds``, which stops training cleanly). ``startup_timeout``: seconds a
    worker may take to start (import, data to its device) before it is restarted; three failed
    starts in a row raise `WorkerStartupError`. ``devices``: an explicit device per worker
    (e.g. ``["cuda:0", "cuda:0", "cuda:1"]``), overriding the plan.

    Use it with ``Search(..., evaluator=ProcessPoolEvaluator(workers=4))``; scripts that use it
    need the ``if __name__ == "__main__":`` guard (spawned workers re-import the main module).
    """

    def __init__(self, workers: int | None = None, workers_per_gpu: int = 1,
                 start_method: str = "spawn", *, threads_per_worker: int | None = None,
                 max_retries: int = 1, candidate_timeout: float | None = None,
                 startup_timeout: float = 600.0, devices: list[str] | None = None) -> None:
        if start_method not in _START_METHODS:
            raise ValueError(f"start_method must be one of {_START_METHODS}, "
                             f"got {start_method!r}")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        if threads_per_worker is not None and (not isinstance(threads_per_worker, int)
                                               or threads_per_worker < 1):
            raise ValueError(f"threads_per_worker must be an integer >= 1 or None, "
                             f"got {threads_per_worker!r}")
        if devices is not None and not devices:
            raise ValueError("devices must name at least one device")
        self.workers, self.workers_per_gpu = workers, workers_per_gpu
        self.start_method, self.threads_per_worker = start_method, threads_per_worker
        self.max_retries, self.candidate_timeout = max_retries, candidate_timeout
        self.startup_timeout = startup_timeout
        self._explicit_devices = list(devices) if devices is not None else None
        self.devices = self._explicit_devices or plan_devices(workers, workers_per_gpu)
        self.capacity = len(self.devices)
        self.assignments: dict[int, dict[str, Any]] = {}  # task index -> where it ran
        self.deaths = 0            # worker processes that died while the pool was open
        self._pool: list[_Worker] = []
        self._queue: deque[Task] = deque()
        self._done: deque[tuple[Task, EvalResult]] = deque()
        self._attempts: dict[int, int] = {}
        self._startup_failures: dict[int, int] = {}
        self._init: tuple[str, Any] | None = None
        self.data_transfer = ""      # "shared-memory" or "copy", chosen by open()
        self.threads = 1            # torch threads of each worker, resolved by open()
        self._task_kind = "classification"

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self, schema: Any, data: Any, config: TrainConfig) -> None:
        """Start the workers, hand each the data once, and wait until all are ready."""
        if self._pool:
            self.close()
        self.devices = self._explicit_devices or plan_devices(
            self.workers, self.workers_per_gpu, config.device)
        self.capacity = len(self.devices)
        n_cpu = sum(d == "cpu" for d in self.devices)
        share = max(1, usable_cores() // max(1, n_cpu if n_cpu else len(self.devices)))
        self.threads = self.threads_per_worker or (share if n_cpu else min(4, share))
        if hasattr(data, "to"):
            data = data.to("cpu")  # workers get it through shared memory (or a copy)
        self._task_kind = getattr(data, "task", None) or getattr(schema, "task", "classification")
        self._init = _payload(schema, data, config)
        self.data_transfer = self._init[0]
        self.assignments, self.deaths = {}, 0
        self._queue.clear()
        self._done.clear()
        self._attempts.clear()
        self._startup_failures.clear()
        try:
            for slot, device in enumerate(self.devices):
                self._pool.append(self._start(slot, device))
            while not all(w.ready for w in self._pool):
                self._pump(self._wait_timeout())  # one stuck in start-up is restarted
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop every worker (idle ones are asked, busy ones terminated) and reap them."""
        pool, self._pool = self._pool, []
        for w in pool:
            if w.task is None and w.ready:
                try:
                    w.conn.send_bytes(pickle.dumps(("stop",)))
                except OSError:
                    pass
            elif w.process.is_alive():
                w.process.terminate()
        deadline = time.monotonic() + 3.0
        for w in pool:
            w.process.join(max(0.0, deadline - time.monotonic()))
        for w in pool:
            if w.process.is_alive():
                w.process.kill()
                w.process.join(5.0)
            w.conn.close()
        self._queue.clear()
        self._init = None

    def __enter__(self) -> ProcessPoolEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        return [w.process.pid for w in self._pool if w.process.pid is not None]

    # -- the protocol -------------------------------------------------------------------------
    def submit(self, task: Task) -> None:
        if self._init is None:
            raise RuntimeError("ProcessPoolEvaluator.open() must be called before submit()")
        self._queue.append(task)
        self._dispatch()

    def next_result(self) -> tuple[Task, EvalResult]:
        """The next finished candidate, whichever it is (blocks until one is)."""
        while not self._done:
            if not self._queue and not any(w.task is not None for w in self._pool):
                raise RuntimeError("next_result() called with no task submitted")
            self._dispatch()
            self._pump(self._wait_timeout())
        return self._done.popleft()

    # -- internals ----------------------------------------------------------------------------
    def _start(self, slot: int, device: str) -> _Worker:
        ctx = multiprocessing.get_context(self.start_method)
        parent_end, child_end = ctx.Pipe(duplex=True)
        process = ctx.Process(target=worker_main, name=f"pytorch-devol-worker-{slot}",
                              args=(child_end, device, self.threads, os.getpid()),
                              daemon=True)
        process.start()
        child_end.close()  # so that the worker's death reads as end-of-file here
        # Sent from a thread: a copy blocks until the worker (still importing) has read it all.
        threading.Thread(target=_send_payload, args=(parent_end, self._init),
                         name=f"pytorch-devol-send-{slot}", daemon=True).start()
        return _Worker(slot, device, process, parent_end)

    def _dispatch(self) -> None:
        for w in self._pool:
            if not self._queue:
                return
            if w.ready and w.task is None:
                task = self._queue.popleft()
                w.task, w.started_task_at = task, time.monotonic()
                try:
                    w.conn.send_bytes(pickle.dumps(("task", task.index, task.genome,
                                                    task.seed, task.keep)))
                except OSError:
                    pass  # died: handled when its sentinel fires

    def _wait_timeout(self) -> float:
        """Until the next start-up or candidate deadline, at most 1 s (Ctrl-C stays prompt)."""
        deadlines = [w.started_at + self.startup_timeout for w in self._pool if not w.ready]
        if self.candidate_timeout is not None:
            deadlines += [w.started_task_at + self.candidate_timeout
                          for w in self._pool if w.task is not None]
        left = min(deadlines, default=math.inf) - time.monotonic()
        return min(1.0, max(0.0, left))

    def _pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` for messages or deaths and handle them."""
        handles = {}
        for w in self._pool:
            handles[w.conn] = w
            handles[w.process.sentinel] = w
        for handle in _wait(list(handles), timeout):
            w = handles[handle]
            if w not in self._pool:  # replaced while handling an earlier handle
                continue
            if not self._drain(w) or w.process.exitcode is not None:
                w.process.join(1.0)
                self._on_death(w, _describe_exit(w.process.exitcode))
        now = time.monotonic()
        for w in list(self._pool):
            if not w.ready and now - w.started_at > self.startup_timeout:
                self._kill(w)
                self._on_death(w, f"did not start within {self.startup_timeout}s")
            elif self.candidate_timeout is not None and w.task is not None and \
                    now - w.started_task_at > self.candidate_timeout:
                self._kill(w)
                self._on_death(w, f"was killed after {self.candidate_timeout}s "
                                  "(candidate_timeout)", retry=False)

    @staticmethod
    def _kill(w: _Worker) -> None:
        w.process.kill()
        w.process.join(5.0)

    def _drain(self, w: _Worker) -> bool:
        """Read every message waiting from ``w``; False once its pipe is closed."""
        try:
            while w.conn.poll(0):
                self._on_message(w, pickle.loads(w.conn.recv_bytes()))
        except (EOFError, OSError):
            return False
        return True

    def _on_message(self, w: _Worker, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "ready":
            w.ready = True
            self._startup_failures[w.slot] = 0
        elif kind == "error":
            raise WorkerStartupError(f"worker {w.slot} on {w.device} failed to start:\n"
                                     f"{message[1]}")
        elif kind == "result":
            _, index, result, info = message
            task, w.task = w.task, None
            if task is None or task.index != index:
                return  # a stale answer (cannot happen with one task per worker at a time)
            self.assignments[index] = {"worker": w.slot, **info,
                                       "attempt": self._attempts.get(index, 0) + 1}
            self._done.append((task, result))

    def _on_death(self, w: _Worker, how: str, retry: bool = True) -> None:
        """Replace dead worker ``w``; retry or fail the candidate it was training."""
        self.deaths += 1
        w.conn.close()
        task = w.task
        if not w.ready:  # not the candidate's fault; a device that never works stops the search
            failures = self._startup_failures.get(w.slot, 0) + 1
            self._startup_failures[w.slot] = failures
            if failures >= _MAX_STARTUP_FAILURES:
                raise WorkerStartupError(f"worker {w.slot} on {w.device} {how} during start-up "
                                         f"{failures} times in a row")
        if task is not None:
            attempts = self._attempts.get(task.index, 0) + 1
            self._attempts[task.index] = attempts
            if retry and attempts <= self.max_retries:
                self._queue.appendleft(task)
            else:
                reason = (f"WorkerDied: worker {w.slot} (pid {w.process.pid}, {w.device}) {how} "
                          f"while training candidate {task.index} "
                          f"({attempts} attempt{'s' if attempts > 1 else ''})")
                self._done.append((task, EvalResult.failed(reason, task=self._task_kind)))
                self.assignments[task.index] = {"worker": w.slot, "pid": w.process.pid,
                                                "device": w.device, "attempt": attempts,
                                                "failed": how}
        replacement = self._start(w.slot, w.device)
        self._pool[self._pool.index(w)] = replacement

    def __repr__(self) -> str:
        return (f"ProcessPoolEvaluator(workers={self.capacity}, devices={self.devices}, "
                f"start_method={self.start_method!r})")
