"""Shared Hypothesis strategies and helpers for the evolution tests (no tests here)."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from pytorch_devol.evolution import MAX_CARDINALITY

#: Cardinalities mixing small values, 1s (a position with a single allele) and huge values.
HUGE = [2**31, 2**31 + 7, 2**62, MAX_CARDINALITY]
cardinality = st.one_of(st.integers(1, 6), st.sampled_from([1, 1, *HUGE]))
cardinalities = st.lists(cardinality, min_size=1, max_size=10)
seeds = st.integers(0, 2**32 - 1)
population_sizes = st.integers(1, 12)


def toy_fitness(genomes: np.ndarray, nan_every: int = 5) -> np.ndarray:
    """Deterministic per-genome fitness (order independent), with some NaN (failures)."""
    g = np.asarray(genomes, dtype=np.int64)
    f = (g % 97).sum(axis=1).astype(np.float64) + (g[:, 0] % 13) / 13.0
    if nan_every:
        f[(g % 89).sum(axis=1) % nan_every == 0] = np.nan
    return f


def assert_in_bounds(genomes: np.ndarray, cards: list[int], rows: int | None = None) -> None:
    """Shape (k, L), dtype int64, every allele in 0..card-1."""
    assert isinstance(genomes, np.ndarray)
    assert genomes.dtype == np.int64
    assert genomes.ndim == 2 and genomes.shape[1] == len(cards)
    if rows is not None:
        assert genomes.shape[0] == rows
    assert (genomes >= 0).all()
    assert (genomes < np.array(cards, dtype=np.int64)).all()


def normalised_sum(genomes: np.ndarray, cards: np.ndarray) -> np.ndarray:
    """Separable toy objective: sum of alleles scaled to [0, 1] per position."""
    denom = np.maximum(np.asarray(cards) - 1, 1)
    return (np.asarray(genomes) / denom).sum(axis=1)
