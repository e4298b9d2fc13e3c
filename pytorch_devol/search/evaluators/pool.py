"""`ProcessPoolEvaluator`: train candidates in parallel in local worker processes.

Each worker is a fresh Python process pinned to one device: round-robin over the visible GPUs
with ``workers_per_gpu`` workers on each (small networks leave a large GPU idle; several share
it well), or CPU workers splitting the cores when there is no GPU. Workers never import the
user's script, so a search runs the same from a script with or without the
``if __name__ == "__main__":`` guard, from ``python - < script`` or a notebook; the price is
that gene types must live in an importable module, not in ``__main__`` (checked by ``open``).
A worker receives the dataset once at start-up (memory-mapped from one file; see
`pool_protocol`) and moves it to its device once.

Why not ``concurrent.futures.ProcessPoolExecutor``: one dead worker breaks that whole pool.
Here each worker has its own connection, so a worker that dies (segfault, SIGKILL, CUDA fatal
error) costs only its current candidate: the worker is replaced and the candidate retried
(``max_retries`` times), then recorded as failed ("infrastructure": not cached, so a resume
trains it again). Workers end with the pool (``close``), and on their own when the parent
process dies.
"""

from __future__ import annotations

import math
import os
import pickle
import socket
import subprocess
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as _wait
from typing import Any

import attrs

from ..._checks import check_int
from ...training import EvalResult, TrainConfig
from .base import Task
from .devices import plan_devices, usable_cores
from .pool_protocol import (
    PROTOCOL,
    Payload,
    StderrTail,
    describe_exit,
    main_module_names,
    pack,
    pack_registrations,
    parent_sys_path,
    reap,
    send_quietly,
    shared_devices,
    worker_command,
    worker_env,
)

__all__ = ["ProcessPoolEvaluator", "WorkerStartupError", "plan_devices", "shared_devices",
           "usable_cores"]

_MAX_STARTUP_FAILURES = 3
_RETIRE_GRACE_S = 30.0  # a broken worker that does not exit by itself by then is killed
_LOAD_HINT = ("\nPool workers are fresh Python processes: they import the modules that define "
              "your gene types, but never run your script. Gene types, and activations or "
              "optimizers you register, must be defined in an importable module.")


class WorkerStartupError(RuntimeError):
    """A worker could not start (e.g. its device is unusable): a setup problem, not a
    candidate's, so the search stops instead of recording failures."""


@attrs.define(eq=False)
class _Worker:
    """Parent-side handle of one worker process."""

    slot: int
    device: str
    process: subprocess.Popen[bytes]
    conn: Connection
    stderr: StderrTail
    ready: bool = False
    retiring: float | None = None  # when it reported a broken CUDA context (it then exits)
    task: Task | None = None
    started_task_at: float = 0.0
    started_at: float = attrs.Factory(time.monotonic)


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
    (e.g. ``["cuda:0", "cuda:0", "cuda:1"]``), overriding the plan. Workers are always fresh
    interpreters that never import ``__main__``.

    Use it with ``Search(..., evaluator=ProcessPoolEvaluator(workers=4))``, from any script;
    the schema's gene types must be importable (not defined in ``__main__``).
    """

    def __init__(self, workers: int | None = None, workers_per_gpu: int = 1, *,
                 threads_per_worker: int | None = None,
                 max_retries: int = 1, candidate_timeout: float | None = None,
                 startup_timeout: float = 600.0, devices: list[str] | None = None) -> None:
        max_retries = check_int(max_retries, "max_retries", 0)
        threads_per_worker = check_int(threads_per_worker, "threads_per_worker", allow_none=True)
        if devices is not None and not devices:
            raise ValueError("devices must name at least one device")
        self.workers, self.workers_per_gpu = workers, workers_per_gpu
        self.threads_per_worker = threads_per_worker
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
        self._payload: Payload | None = None
        self._registrations: list[tuple[str, str, bytes]] = []
        self._shared: list[bool] = []
        self.data_transfer = ""      # "mmap-file" or "copy", chosen by open()
        self.threads = 1            # torch threads of each worker, resolved by open()
        self._task_kind = "classification"

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self, schema: Any, data: Any, config: TrainConfig) -> None:
        """Start the workers, hand each the data once, and wait until all are ready.

        Raises ValueError, before starting anything, when a gene type of ``schema`` (or the
        factory of an activation or optimizer it names) is defined in ``__main__``: workers
        cannot import it."""
        in_main = main_module_names(schema)
        if in_main:
            raise ValueError(
                f"ProcessPoolEvaluator: {', '.join(in_main)} defined in the script being run "
                "(__main__). Pool workers are fresh Python processes that do not run your "
                "script, so they cannot import them: move the gene types (and activation or "
                "optimizer factories) into a module (e.g. my_genes.py next to the script) and "
                "import them from there.")
        if self._pool:
            self.close()
        self.devices = self._explicit_devices or plan_devices(
            self.workers, self.workers_per_gpu, config.device)
        self.capacity = len(self.devices)
        self._shared = shared_devices(self.devices)
        n_cpu = sum(d == "cpu" for d in self.devices)
        share = max(1, usable_cores() // max(1, n_cpu if n_cpu else len(self.devices)))
        self.threads = self.threads_per_worker or (share if n_cpu else min(4, share))
        if hasattr(data, "to"):
            data = data.to("cpu")  # workers map it from one file
        self._task_kind = getattr(data, "task", None) or getattr(schema, "task", "classification")
        self._payload = pack((schema, data, config))
        self._registrations = pack_registrations(schema)
        self.data_transfer = self._payload.kind
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
            if w.task is None and w.ready and w.retiring is None:
                send_quietly(w.conn, pickle.dumps(("stop",)))
            elif w.process.poll() is None:
                w.process.terminate()
        deadline = time.monotonic() + 3.0
        for w in pool:
            try:
                w.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                w.process.kill()
                w.process.wait()
            w.conn.close()
        self._queue.clear()
        if self._payload is not None:
            self._payload.close()
            self._payload = None

    def __enter__(self) -> ProcessPoolEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (for monitoring and tests)."""
        return [w.process.pid for w in self._pool]

    # -- the protocol -------------------------------------------------------------------------
    def submit(self, task: Task) -> None:
        if self._payload is None:
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
        """Launch a worker (see `pool_protocol`) and send it its setup from a thread (a large
        copy blocks until the worker, still importing, has read it all)."""
        assert self._payload is not None
        payload = self._payload
        parent_end, child_end = socket.socketpair()
        try:
            with child_end:
                fds = [child_end.fileno()] + ([payload.fd] if payload.fd is not None else [])
                process = subprocess.Popen(
                    worker_command(child_end.fileno(), os.getpid()), pass_fds=fds,
                    env=worker_env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except BaseException:
            parent_end.close()
            raise
        conn = Connection(parent_end.detach())
        assert process.stderr is not None
        setup = {"sys_path": parent_sys_path(), "device": device, "threads": self.threads,
                 "shared_device": self._shared[slot], "registrations": self._registrations,
                 "payload": payload.data, "data_fd": payload.fd}
        threading.Thread(target=send_quietly, args=(conn, pickle.dumps(setup, PROTOCOL)),
                         name=f"pytorch-devol-send-{slot}", daemon=True).start()
        return _Worker(slot, device, process, conn,
                       StderrTail(process.stderr, f"pytorch-devol-stderr-{slot}"))

    def _dispatch(self) -> None:
        for w in self._pool:
            if not self._queue:
                return
            if w.ready and w.task is None and w.retiring is None:
                task = self._queue.popleft()
                w.task, w.started_task_at = task, time.monotonic()
                send_quietly(w.conn, pickle.dumps(("task", task), PROTOCOL))

    def _wait_timeout(self) -> float:
        """Until the next start-up or candidate deadline, at most 1 s (Ctrl-C stays prompt,
        and a worker that died without closing its connection is noticed)."""
        deadlines = [w.started_at + self.startup_timeout for w in self._pool if not w.ready]
        if self.candidate_timeout is not None:
            deadlines += [w.started_task_at + self.candidate_timeout
                          for w in self._pool if w.task is not None]
        left = min(deadlines, default=math.inf) - time.monotonic()
        return min(1.0, max(0.0, left))

    def _pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` for messages or exits and handle them, then the deadlines."""
        by_conn = {w.conn: w for w in self._pool}
        for conn in _wait(list(by_conn), timeout):
            w = by_conn[conn]
            if w in self._pool and not self._drain(w):  # else replaced meanwhile
                self._on_exit(w, describe_exit(reap(w.process)))
        now = time.monotonic()
        for w in list(self._pool):
            if w.process.poll() is not None:  # exited, its connection held open elsewhere
                self._drain(w)
                self._on_exit(w, describe_exit(w.process.returncode))
            elif not w.ready and now - w.started_at > self.startup_timeout:
                self._kill(w)
                self._on_exit(w, f"did not start within {self.startup_timeout}s")
            elif self.candidate_timeout is not None and w.task is not None and \
                    now - w.started_task_at > self.candidate_timeout:
                self._kill(w)
                self._on_exit(w, f"was killed after {self.candidate_timeout}s "
                                 "(candidate_timeout)", timed_out=True)
            elif w.retiring is not None and now - w.retiring > _RETIRE_GRACE_S:
                self._kill(w)
                self._on_exit(w, "did not exit after a broken CUDA context")

    @staticmethod
    def _kill(w: _Worker) -> None:
        w.process.kill()
        w.process.wait()

    def _drain(self, w: _Worker) -> bool:
        """Read every message waiting from ``w``; False once its connection is closed."""
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
            _, trace, phase = message
            raise WorkerStartupError(f"worker {w.slot} on {w.device} failed to start:\n"
                                     f"{trace.rstrip()}" + (_LOAD_HINT if phase == "load" else ""))
        elif kind == "result":
            _, index, result, info = message
            task, w.task = w.task, None
            if info.get("broken"):  # it exits now; replaced without counting a death
                w.retiring = time.monotonic()
            if task is None or task.index != index:
                return  # a stale answer (cannot happen with one task per worker at a time)
            self.assignments[index] = {"worker": w.slot, **info,
                                       "attempt": self._attempts.get(index, 0) + 1}
            self._done.append((task, result))

    def _on_exit(self, w: _Worker, how: str, timed_out: bool = False) -> None:
        """Replace exited worker ``w``; retry or fail the candidate it was training."""
        w.conn.close()
        if w.retiring is not None and w.task is None:  # broken context, result already in
            self._pool[self._pool.index(w)] = self._start(w.slot, w.device)
            return
        self.deaths += 1
        task = w.task
        if not w.ready:  # not the candidate's fault; a device that never works stops the search
            failures = self._startup_failures.get(w.slot, 0) + 1
            self._startup_failures[w.slot] = failures
            if failures >= _MAX_STARTUP_FAILURES:
                tail = w.stderr.text()
                raise WorkerStartupError(
                    f"worker {w.slot} on {w.device} {how} during start-up {failures} times in "
                    "a row" + (f"; the last lines it wrote to stderr:\n{tail}" if tail else ""))
        if task is not None:
            attempts = self._attempts.get(task.index, 0) + 1
            self._attempts[task.index] = attempts
            if not timed_out and attempts <= self.max_retries:
                self._queue.appendleft(task)
            else:
                where = f"worker {w.slot} (pid {w.process.pid}, {w.device})"
                if timed_out:
                    failure, reason = "timeout", (
                        f"CandidateTimeout: candidate {task.index} ran longer than "
                        f"candidate_timeout={self.candidate_timeout}s; {where} was killed")
                else:
                    failure, reason = "infrastructure", (
                        f"WorkerDied: {where} {how} while training candidate {task.index} "
                        f"({attempts} attempt{'s' if attempts > 1 else ''})")
                self._done.append((task, EvalResult.failed(reason, failure,
                                                           task=self._task_kind)))
                self.assignments[task.index] = {"worker": w.slot, "pid": w.process.pid,
                                                "device": w.device, "attempt": attempts,
                                                "failed": how}
        self._pool[self._pool.index(w)] = self._start(w.slot, w.device)

    def __repr__(self) -> str:
        return f"ProcessPoolEvaluator(workers={self.capacity}, devices={self.devices})"
