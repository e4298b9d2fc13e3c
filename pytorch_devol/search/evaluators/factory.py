"""`make_evaluator`: the evaluator the command-line flags ask for.

    --workers N          a local process pool of N workers (0: in-process; "auto": one per GPU,
                         or half the CPU cores)
    --workers-per-gpu K  K pool workers share each GPU (small networks leave a GPU idle)
    --ray [ADDRESS]      Ray: a local instance without ADDRESS, else that cluster ("auto", ...)
"""

from __future__ import annotations

from typing import Any

from ..._checks import check_int

__all__ = ["make_evaluator"]

LOCAL_RAY = ("", "local")


def make_evaluator(workers: int | str | None = None, workers_per_gpu: int = 1,
                   ray_address: str | None = None, **options: Any) -> Any:
    """Build the evaluator for ``--workers``, ``--workers-per-gpu`` and ``--ray``.

    - ``ray_address`` set: ``RayEvaluator`` ("local" or "" starts a local instance); there
      ``workers`` caps how many candidates run at once and ``workers_per_gpu=K`` asks 1/K GPU
      per candidate.
    - else ``workers`` >= 1, "auto", or ``workers_per_gpu`` > 1: ``ProcessPoolEvaluator``.
    - else (nothing asked, or ``workers=0``): the in-process ``SerialEvaluator``.
    ``options`` go to the evaluator's constructor (e.g. ``max_retries``).
    """
    if workers is not None and workers != "auto" and (
            isinstance(workers, bool) or not isinstance(workers, int) or workers < 0):
        raise ValueError(f"workers must be an integer >= 0 or 'auto', got {workers!r}")
    workers_per_gpu = check_int(workers_per_gpu, "workers_per_gpu")
    count = None if workers in (None, "auto") else int(workers)
    if ray_address is not None:
        from .ray import RayEvaluator

        if workers_per_gpu > 1:
            options.setdefault("gpus_per_candidate", 1 / workers_per_gpu)
        return RayEvaluator(address=None if ray_address in LOCAL_RAY else ray_address,
                            actors=count or None, **options)
    if count == 0 or (workers is None and workers_per_gpu == 1):
        from .serial import SerialEvaluator

        return SerialEvaluator()
    from .pool import ProcessPoolEvaluator

    return ProcessPoolEvaluator(workers=count, workers_per_gpu=workers_per_gpu, **options)
