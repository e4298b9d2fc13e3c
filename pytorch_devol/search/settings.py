"""The settings one search loop runs to, grouped (the `Search` keywords they come from)."""

from __future__ import annotations

import attrs

__all__ = ["LoopSettings"]


@attrs.frozen
class LoopSettings:
    """What one search runs to: its size, seed and metric, and how it is scheduled."""

    generations: int
    population_size: int
    seed: int
    metric: str
    maximize: bool
    asynchronous: bool  # a steady-state strategy: one candidate as each worker frees up
    epochs: int  # the full training budget (the top rung's)
    breaker_window: int | None = None  # None: one population; 0: no circuit breaker
    heredity: str | None = None  # the slot rule new candidates inherit a donor's weights by
