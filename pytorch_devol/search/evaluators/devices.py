"""Which device each pool worker trains on, and how many CPU cores this process may use."""

from __future__ import annotations

import os

import torch

from ..._checks import check_int

__all__ = ["plan_devices", "usable_cores"]

_MAX_DEFAULT_CPU_WORKERS = 8


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
    workers = check_int(workers, "workers", allow_none=True)
    workers_per_gpu = check_int(workers_per_gpu, "workers_per_gpu")
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
