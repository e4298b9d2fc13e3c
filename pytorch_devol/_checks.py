"""Private leaf helpers every layer may import: the integer argument check, a Generator from a
seed, and DEvol's activation and optimizer names.

Imports numpy and the standard library only (``pytorch_devol.evolution`` imports this module
and never imports torch).
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

__all__ = ["DEVOL_ACTIVATIONS", "DEVOL_OPTIMIZERS", "SeedLike", "check_int", "make_rng"]

DEVOL_ACTIVATIONS = ("relu", "sigmoid")
"""DEvol's activation names, in DEvol's order (a DEvol genome stores the index)."""
DEVOL_OPTIMIZERS = ("adam", "rmsprop", "adagrad", "adadelta")
"""DEvol's optimizer names, in DEvol's order (a DEvol genome stores the index)."""

SeedLike = int | np.random.Generator | np.random.SeedSequence | None


def check_int(value: Any, name: str, minimum: int = 1, *, allow_none: bool = False) -> int | None:
    """``value`` as a plain int when it is an integer >= ``minimum`` (numpy integers too, never
    a bool); None passes when ``allow_none``. Otherwise ValueError naming ``name``."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}"
                         f"{' or None' if allow_none else ''}, got {value!r}")
    return int(value)


def make_rng(seed: SeedLike) -> np.random.Generator:
    """A ``numpy.random.Generator`` for ``seed``: a Generator is used as is (it advances with
    its new user); anything else ``numpy.random.default_rng`` takes (an int >= 0, None, a
    SeedSequence, a BitGenerator, a sequence of ints) makes a new one. A bool or a non-integral
    number is a TypeError, a negative int a ValueError."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool | np.bool_) or (
            isinstance(seed, numbers.Number) and not isinstance(seed, numbers.Integral)):
        raise TypeError(
            f"seed must be an int, None, a SeedSequence or a numpy Generator, got {seed!r}")
    if isinstance(seed, numbers.Integral) and seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return np.random.default_rng(seed)
