"""Learning-rate schedules over a candidate's planned steps, stepped once per batch."""

from __future__ import annotations

import math

import torch

from ..schema.contracts import SCHEDULES

__all__ = ["SCHEDULES", "make_schedule"]

WARMUP_FRACTION = 0.25  # one-cycle: the share of the steps spent warming up
WARMUP_START = 0.04     # one-cycle: the first step's fraction of the peak rate


def _factor(schedule: str, step: int, total: int) -> float:
    t = min(step, total) / total
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t))
    if t < WARMUP_FRACTION:  # one-cycle: linear warm-up, then cosine decay
        return WARMUP_START + (1.0 - WARMUP_START) * t / WARMUP_FRACTION
    return 0.5 * (1.0 + math.cos(math.pi * (t - WARMUP_FRACTION) / (1.0 - WARMUP_FRACTION)))


def make_schedule(optimizer: torch.optim.Optimizer, schedule: str,
                  total_steps: int) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-batch scheduler for ``schedule`` over ``total_steps`` (None for "constant").

    The peak is the optimizer's learning rate; "cosine" decays it to zero, "onecycle" warms up
    linearly over the first quarter, then decays it by a cosine."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if schedule == "constant":
        return None
    total = max(1, int(total_steps))
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: _factor(schedule, step,
                                                                             total))
