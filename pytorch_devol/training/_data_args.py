"""Checks and subsets shared by the data-file loaders (`files`, `imagefolder`)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch

from pytorch_devol._checks import check_int
from pytorch_devol.training.validate import split_indices

__all__ = ["fraction_arg", "keep_subset", "limit_arg"]


def fraction_arg(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be a number between 0 and 1 (exclusive), got {value!r}")
    return float(value)


def limit_arg(value: Any, name: str = "limit") -> int | None:  # training examples; test: all
    return check_int(value, name, 2, allow_none=True)


def keep_subset(n: int, limit: int | None, seed: int, strata: np.ndarray | None) -> np.ndarray:
    """Seeded choice of ``limit`` of ``n`` training indices (stratified by ``strata`` when
    given), as load_dataset's limit: seed + 2, all of them when limit is None or >= n."""
    if limit is None or limit >= n:
        return np.arange(n)
    labels = None if strata is None else torch.from_numpy(np.ascontiguousarray(strata))
    return split_indices(n, limit / n, seed + 2, labels)[1]
