"""`RayEvaluator`: train candidates on a Ray cluster (or a local Ray instance).

Candidates run in Ray actors, each holding one `Trainer`: the dataset is put in the object store
once and moved to each actor's device once, not per candidate. Each actor asks Ray for
``gpus_per_candidate`` GPUs (fractional: 0.25 packs four candidates on a GPU) and
``cpus_per_candidate`` CPUs. An actor whose process dies (segfault, OOM kill, lost node) is
restarted by Ray and its candidate retried ``max_retries`` times; after that the candidate is
recorded as failed. Ray holds no state the search needs: the run directory stays the single
source of truth, so an interrupted search resumes with any evaluator.

Ray is an optional dependency (``pip install 'pytorch-devol[ray]'``), imported only here.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from typing import Any

from ..._checks import check_int
from ...training import EvalResult, TrainConfig
from .base import Task, build_trainer, set_threads, train_task

__all__ = ["RayEvaluator", "import_ray"]

_DEATHS = ("ActorDiedError", "ActorUnavailableError", "RayActorError", "WorkerCrashedError",
           "NodeDiedError", "OutOfMemoryError", "LocalRayletDiedError", "OwnerDiedError")


def import_ray() -> Any:
    """``import ray``, with the install hint when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("RayEvaluator needs Ray, an optional dependency: "
                          "pip install 'pytorch-devol[ray]'") from exc
    return ray


class _CandidateActor:
    """Lives in a Ray worker: one Trainer on the GPU Ray assigned (or the CPU)."""

    def __init__(self, schema: Any, data: Any, config: TrainConfig, threads: int,
                 shared_device: bool = False) -> None:
        import ray
        import torch

        set_threads(threads)
        gpu_ids = [str(g) for g in ray.get_gpu_ids()]
        device = None
        if config.device == "auto":  # Ray's logical GPUs need not be real ones (tests, CI)
            device = "cuda" if gpu_ids and torch.cuda.is_available() else "cpu"
        self.schema = schema
        self.trainer = build_trainer(data, config, device, shared_device=shared_device)
        self.info = {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                     "gpu_ids": gpu_ids, "device": str(self.trainer.device)}
        self.served = 0

    def ready(self) -> dict[str, Any]:
        return self.info

    def evaluate(self, task: Task) -> tuple[EvalResult, dict[str, Any]]:
        if self.trainer.broken:  # an earlier candidate broke this worker's CUDA context:
            os._exit(1)          # die, so Ray restarts the actor and retries this task
        start = time.perf_counter()
        result = train_task(self.trainer, self.schema, task)
        self.served += 1
        return result, {**self.info, "served": self.served,
                        "seconds": time.perf_counter() - start}


class RayEvaluator:
    """Trains candidates on Ray: ``Search(..., evaluator=RayEvaluator(address="auto"))``.

    ``address``: an existing cluster ("auto", "ray://head:10001", ...); None starts a local
    instance (``num_cpus`` / ``num_gpus`` size it; Ray's logical GPUs need no real GPU) unless
    Ray is already initialised in this process. ``gpus_per_candidate``: GPUs each candidate
    holds (default 1 when the cluster has GPUs, else 0; fractions share a GPU).
    ``cpus_per_candidate``: CPUs (and torch threads) each holds. ``actors``: how many candidates
    train at once (default: as many as the cluster's CPUs and GPUs fit). ``max_retries``: retries
    of a candidate whose worker died. ``init_kwargs``: more ``ray.init`` arguments (e.g.
    ``runtime_env``). Only a Ray instance this evaluator started is shut down by ``close``.
    """

    def __init__(self, address: str | None = None, num_cpus: int | None = None,
                 num_gpus: int | None = None, gpus_per_candidate: float | None = None,
                 cpus_per_candidate: float = 1, max_retries: int = 1,
                 init_kwargs: dict[str, Any] | None = None, actors: int | None = None) -> None:
        self._ray = import_ray()
        for name, value in (("gpus_per_candidate", gpus_per_candidate),
                            ("cpus_per_candidate", cpus_per_candidate)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                      or value < 0 or not math.isfinite(value)):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}")
        max_retries = check_int(max_retries, "max_retries", 0)
        actors = check_int(actors, "actors", allow_none=True)
        if address is not None and (num_cpus is not None or num_gpus is not None):
            raise ValueError("num_cpus/num_gpus size a local Ray instance; an existing cluster "
                             "(address=...) already has its resources")
        self.address, self.num_cpus, self.num_gpus = address, num_cpus, num_gpus
        self.gpus_per_candidate, self.cpus_per_candidate = gpus_per_candidate, cpus_per_candidate
        self.max_retries, self.actors = max_retries, actors
        self.init_kwargs = dict(init_kwargs or {})
        self.capacity = actors or 1
        self.assignments: dict[int, dict[str, Any]] = {}  # task index -> where it ran
        self.actor_info: list[dict[str, Any]] = []  # pid, node, GPU ids of each actor at start
        self.owns_ray = False
        self._actor_class: Any = None
        self._actor_args: tuple[Any, ...] = ()
        self._idle: list[Any] = []
        self._queue: deque[Task] = deque()
        self._running: dict[Any, tuple[Task, Any]] = {}
        self._task_kind = "classification"

    # -- lifecycle ----------------------------------------------------------------------------
    def open(self, schema: Any, data: Any, config: TrainConfig) -> None:
        """Connect to (or start) Ray, put the data in the object store and start the actors."""
        ray = self._ray
        if self._actor_class is not None:
            self.close()
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"include_dashboard": False, "ignore_reinit_error": True,
                                      **self.init_kwargs}
            if self.address is None:
                kwargs.setdefault("num_cpus", self.num_cpus)
                kwargs.setdefault("num_gpus", self.num_gpus)
            ray.init(address=self.address, **kwargs)
            self.owns_ray = True
        try:
            self._start_actors(schema, data, config)
        except BaseException:
            self.close()
            raise

    def _start_actors(self, schema: Any, data: Any, config: TrainConfig) -> None:
        ray = self._ray
        resources = ray.cluster_resources()
        total_cpu, total_gpu = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
        gpus = self.gpus_per_candidate
        if gpus is None:
            gpus = 1 if total_gpu > 0 and config.device != "cpu" else 0
        cpus = self.cpus_per_candidate
        if self.actors is None and (gpus > total_gpu or cpus > total_cpu):
            raise ValueError(f"each candidate asks for {cpus} CPUs and {gpus} GPUs; the Ray "
                             f"cluster has {total_cpu:g} CPUs and {total_gpu:g} GPUs (pass "
                             "actors=N to wait for an autoscaler instead)")
        fits = [math.floor(total_cpu / cpus + 1e-9) if cpus else math.inf,
                math.floor(total_gpu / gpus + 1e-9) if gpus else math.inf]
        count = self.actors or max(1, min(min(fits), 10_000))
        self.capacity = int(count)
        self._task_kind = getattr(data, "task", None) or getattr(schema, "task",
                                                                 "classification")
        if hasattr(data, "to"):
            data = data.to("cpu")
        self._actor_class = ray.remote(_CandidateActor).options(
            num_cpus=cpus, num_gpus=gpus, max_restarts=-1, max_task_retries=self.max_retries)
        self._actor_args = (schema, ray.put(data), config, max(1, int(cpus)), 0 < gpus < 1)
        self.assignments = {}
        actors = [self._actor_class.remote(*self._actor_args) for _ in range(self.capacity)]
        try:  # surface set-up errors (unimportable gene module, bad device) now, not per result
            self.actor_info = ray.get([a.ready.remote() for a in actors])
        except ray.exceptions.RayError as exc:
            for actor in actors:
                ray.kill(actor, no_restart=True)
            raise RuntimeError(f"Ray workers failed to start: {exc}") from exc
        self._idle = actors

    def close(self) -> None:
        """Stop the actors; shut Ray down only if this evaluator started it."""
        ray = self._ray
        actors = self._idle + [actor for _, actor in self._running.values()]
        self._idle, self._running, self._queue = [], {}, deque()
        if ray.is_initialized():
            for actor in actors:
                try:
                    ray.kill(actor, no_restart=True)
                except Exception:  # noqa: BLE001 - already gone
                    pass
        self._actor_class, self._actor_args = None, ()
        if self.owns_ray:
            ray.shutdown()
            self.owns_ray = False

    def __enter__(self) -> RayEvaluator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the protocol -------------------------------------------------------------------------
    def submit(self, task: Task) -> None:
        if self._actor_class is None:
            raise RuntimeError("RayEvaluator.open() must be called before submit()")
        self._queue.append(task)
        self._dispatch()

    def next_result(self) -> tuple[Task, EvalResult]:
        """The next finished candidate, whichever it is (blocks until one is)."""
        ray = self._ray
        if not self._queue and not self._running:
            raise RuntimeError("next_result() called with no task submitted")
        self._dispatch()
        ready: list[Any] = []
        while not ready:  # short waits keep Ctrl-C responsive
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=1.0)
        ref = ready[0]
        task, actor = self._running.pop(ref)
        try:
            result, info = ray.get(ref)
        except ray.exceptions.RayError as exc:
            result, info = self._failure(task, exc), {"failed": type(exc).__name__}
            if isinstance(exc, ray.exceptions.ActorDiedError):  # gone for good: replace it
                ray.kill(actor, no_restart=True)
                actor = self._actor_class.remote(*self._actor_args)
        self._idle.append(actor)
        self.assignments[task.index] = info
        self._dispatch()
        return task, result

    # -- internals ----------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while self._queue and self._idle:
            task, actor = self._queue.popleft(), self._idle.pop()
            ref = actor.evaluate.remote(task)
            self._running[ref] = (task, actor)

    def _failure(self, task: Task, exc: BaseException) -> EvalResult:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        name = type(exc).__name__
        if any(cls.__name__ in _DEATHS for cls in type(exc).__mro__):
            reason = (f"WorkerDied: the Ray worker training candidate {task.index} died "
                      f"({1 + self.max_retries} attempts): {name}: {detail}")
        else:
            reason = f"{name}: {detail}"
        # Candidates' own errors come back as results; a RayError is always the machine's.
        return EvalResult.failed(reason[:2000], "infrastructure", task=self._task_kind)

    def __repr__(self) -> str:
        actors = self.capacity if self._actor_class is not None else (self.actors or "auto")
        return (f"RayEvaluator(address={self.address!r}, actors={actors}, "
                f"gpus_per_candidate={self.gpus_per_candidate}, "
                f"cpus_per_candidate={self.cpus_per_candidate})")
