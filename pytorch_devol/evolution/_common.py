"""Shared validation and JSON helpers for the evolution engine (``make_rng`` and ``SeedLike``
come from the package's private leaf module ``pytorch_devol._checks``).

Everything here works on plain numpy arrays. Genomes are always ``int64`` arrays of shape
``(k, L)``; the search space is the vector of cardinalities (position ``i`` takes the values
``0 .. cardinalities[i] - 1``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .._checks import SeedLike, make_rng

__all__ = [
    "MAX_CARDINALITY",
    "FloatArray",
    "IntArray",
    "SeedLike",
    "as_cardinalities",
    "check_fitness",
    "check_genomes",
    "check_objective_values",
    "check_probability",
    "check_violation",
    "floats2d_from_json",
    "floats2d_to_json",
    "floats_from_json",
    "floats_to_json",
    "genomes_from_json",
    "locate_outstanding",
    "make_rng",
    "match_rows",
    "rng_from_json",
    "rng_to_json",
    "space_size",
]

#: A genome population ``(n, L)`` or a vector of alleles, indices or cardinalities.
IntArray = npt.NDArray[np.int64]
#: Fitness values, one per genome (or ``(n, k)`` for several objectives).
FloatArray = npt.NDArray[np.float64]

MAX_CARDINALITY = int(np.iinfo(np.int64).max)
"""Largest allowed cardinality: alleles must fit an ``int64``."""

# Bit generators a saved state may name: looked up in this table, never with getattr.
_BIT_GENERATORS = {
    "PCG64": np.random.PCG64,
    "PCG64DXSM": np.random.PCG64DXSM,
    "MT19937": np.random.MT19937,
    "Philox": np.random.Philox,
    "SFC64": np.random.SFC64,
}


def as_cardinalities(cardinalities: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Validate a cardinality vector: 1-D, non-empty, integers in ``[1, 2**63 - 1]``.

    Returns a read-only ``int64`` copy.
    """
    raw = np.asarray(cardinalities)
    if raw.dtype == object:
        if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in raw.flat):
            raise ValueError("cardinalities must be integers")
        if any(int(c) > MAX_CARDINALITY or int(c) < 1 for c in raw.flat):
            raise ValueError(f"cardinalities must lie in [1, {MAX_CARDINALITY}]")
        raw = raw.astype(np.int64)
    if raw.dtype.kind not in "iu":
        raise ValueError(f"cardinalities must be integers, got dtype {raw.dtype}")
    if raw.ndim != 1 or raw.size == 0:
        raise ValueError(f"cardinalities must be a non-empty 1-D sequence, got shape {raw.shape}")
    if raw.dtype.kind == "u" and raw.max() > MAX_CARDINALITY:
        raise ValueError(f"cardinalities must lie in [1, {MAX_CARDINALITY}]")
    cards = raw.astype(np.int64)
    bad = np.flatnonzero(cards < 1)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"cardinality at position {i} is {int(cards[i])}; each must be >= 1")
    cards.setflags(write=False)
    return cards


def space_size(cardinalities: npt.NDArray[np.int64]) -> int:
    """Number of distinct genomes (exact Python int, no overflow)."""
    return math.prod(int(c) for c in cardinalities)


def check_genomes(genomes: npt.ArrayLike, cardinalities: npt.NDArray[np.int64],
                  name: str = "genomes") -> npt.NDArray[np.int64]:
    """Validate genomes against the cardinalities and return an ``int64`` (k, L) copy.

    A 1-D array is taken as a single genome. Raises ValueError naming the first bad row,
    position and value.
    """
    arr = np.asarray(genomes)
    length = cardinalities.shape[0]
    if arr.dtype == object:
        if not all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in arr.flat):
            raise ValueError(f"{name} must hold integers (allele indices)")
        if any(int(v) < 0 or int(v) > MAX_CARDINALITY for v in arr.flat):
            raise ValueError(f"{name} holds a value outside the int64 allele range")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise ValueError(f"{name} must be integers (allele indices), got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != length:
        raise ValueError(
            f"{name} must have shape (k, {length}) for {length} positions, got {arr.shape}")
    if arr.size and arr.dtype.kind == "u" and arr.max() > MAX_CARDINALITY:
        row, pos = np.argwhere(arr > MAX_CARDINALITY)[0]
        raise ValueError(f"{name}[{row}, {pos}] = {int(arr[row, pos])} is out of range")
    out = arr.astype(np.int64, copy=True)
    bad = (out < 0) | (out >= cardinalities)
    if bad.any():
        row, pos = (int(x) for x in np.argwhere(bad)[0])
        raise ValueError(
            f"{name}[{row}, {pos}] = {int(out[row, pos])} is out of bounds: position {pos} "
            f"takes values 0..{int(cardinalities[pos]) - 1}")
    return out


def check_fitness(fitness: Any, count: int) -> npt.NDArray[np.float64]:
    """Validate fitness values: ``count`` real numbers, NaN allowed (a failed candidate).

    Rejects +/-inf, non-numeric values (strings, None, complex, bools) and wrong lengths.
    """
    arr = np.asarray(fitness)
    if arr.dtype == object:
        for i, v in enumerate(arr.reshape(-1)):
            if v is None:
                raise ValueError(
                    f"fitness[{i}] is None; use float('nan') to record a failed candidate")
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise ValueError(f"fitness[{i}] = {v!r} is not a real number")
        arr = arr.astype(np.float64)
    if arr.dtype.kind not in "iuf":
        raise ValueError(f"fitness must be real numbers, got dtype {arr.dtype}")
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise ValueError(f"fitness must be 1-D, got shape {arr.shape}")
    if arr.shape[0] != count:
        raise ValueError(f"got {arr.shape[0]} fitness values for {count} genomes")
    out = arr.astype(np.float64, copy=True)
    inf = np.flatnonzero(np.isinf(out))
    if inf.size:
        i = int(inf[0])
        raise ValueError(
            f"fitness[{i}] = {out[i]} is infinite; only finite values or NaN (failed) allowed")
    return out


def check_objective_values(fitness: Any, count: int, k: int) -> npt.NDArray[np.float64]:
    """Validate multi-objective fitness: a ``(count, k)`` array of reals, NaN allowed (failed).

    A 1-D array is one row when ``count == 1`` or one column when ``k == 1``.
    """
    arr = np.asarray(fitness)
    if count == 0 and arr.size == 0:
        return np.zeros((0, k), dtype=np.float64)
    if arr.ndim <= 1:
        if count == 1 and arr.size == k:
            arr = arr.reshape(1, k)
        elif k == 1 and arr.size == count:
            arr = arr.reshape(count, 1)
    if arr.ndim != 2 or arr.shape != (count, k):
        raise ValueError(f"fitness must have shape ({count}, {k}) for {count} genomes and {k} "
                         f"objectives, got {np.shape(fitness)}")
    flat = check_fitness(arr.reshape(-1), count * k)
    return flat.reshape(count, k)


def check_violation(violation: Any, count: int) -> npt.NDArray[np.float64]:
    """Validate constraint violations: ``count`` reals >= 0 (0 = feasible), NaN = failed.

    ``None`` means every candidate is feasible.
    """
    if violation is None:
        return np.zeros(count, dtype=np.float64)
    out = check_fitness(violation, count)
    bad = np.flatnonzero(out < 0)
    if bad.size:
        i = int(bad[0])
        raise ValueError(f"violation[{i}] = {out[i]} is negative; a constraint violation is >= 0 "
                         "(0 = feasible)")
    return out


def check_probability(value: Any, name: str, *, open_low: bool = False) -> float:
    """``value`` as a float in [0, 1] (``(0, 1]`` with ``open_low``); ValueError naming it."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    v = float(value) if ok else math.nan
    if not (0.0 < v <= 1.0 if open_low else 0.0 <= v <= 1.0):
        raise ValueError(f"{name} must lie in {'(0' if open_low else '[0'}, 1], got {value!r}")
    return v


def locate_outstanding(current: npt.NDArray[np.int64], told: npt.NDArray[np.bool_], handed: int,
                       genomes: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Row of ``current`` (handed out, not yet told) that each genome answers.

    Raises ValueError naming the first genome that is not outstanding.
    """
    open_idx = np.flatnonzero(~told[:handed])
    k, first = genomes.shape[0], int(open_idx[0]) if open_idx.size else 0
    if (k <= open_idx.size and open_idx[k - 1] == first + k - 1
            and np.array_equal(genomes, current[first: first + k])):
        return open_idx[np.arange(k)]  # told in the order asked: no copy, no Python loop
    found = match_rows(current[open_idx], genomes)
    missing = np.flatnonzero(found < 0)
    if missing.size:
        j = int(missing[0])
        raise ValueError(
            f"genomes[{j}] = {genomes[j].tolist()} was not asked in the current generation "
            "(or was already told)")
    return open_idx[found]


def match_rows(pool: npt.NDArray[np.int64], rows: npt.NDArray[np.int64]
               ) -> npt.NDArray[np.int64]:
    """For each row, the index of an equal row of ``pool`` (-1 if none is left).

    Each pool row is matched at most once, the earliest free one first. Rows given in the
    pool's own order (a prefix of it) are matched without a Python loop.
    """
    k = rows.shape[0]
    if k <= pool.shape[0] and np.array_equal(rows, pool[:k]):
        return np.arange(k, dtype=np.int64)
    free: dict[bytes, list[int]] = {}
    for i in range(pool.shape[0] - 1, -1, -1):
        free.setdefault(pool[i].tobytes(), []).append(i)
    out = np.full(k, -1, dtype=np.int64)
    for j in range(k):
        left = free.get(rows[j].tobytes())
        if left:
            out[j] = left.pop()
    return out


def floats_to_json(values: npt.NDArray[np.float64]) -> list[float | None]:
    """Plain list of floats with NaN stored as None (valid strict JSON)."""
    return [None if math.isnan(v) else float(v) for v in values.tolist()]


def floats_from_json(values: Sequence[float | None]) -> npt.NDArray[np.float64]:
    """Inverse of :func:`floats_to_json`."""
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def floats2d_to_json(values: npt.NDArray[np.float64]) -> list[list[float | None]]:
    """Rows of floats, NaN as None (see :func:`floats_to_json`)."""
    return [floats_to_json(row) for row in values]


def floats2d_from_json(rows: Sequence[Sequence[float | None]], k: int
                       ) -> npt.NDArray[np.float64]:
    """Inverse of :func:`floats2d_to_json`; an empty list gives shape (0, k)."""
    out = np.array([[np.nan if v is None else float(v) for v in row] for row in rows],
                   dtype=np.float64)
    return out.reshape(len(rows), k)


def genomes_from_json(rows: Sequence[Sequence[int]], cardinalities: npt.NDArray[np.int64],
                      name: str) -> npt.NDArray[np.int64]:
    """Genome rows from a state dict, validated; an empty list gives shape (0, L)."""
    if len(rows) == 0:
        return np.zeros((0, cardinalities.shape[0]), dtype=np.int64)
    return check_genomes(np.array(rows, dtype=np.int64), cardinalities, name)


def _to_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, list | tuple):
        return [_to_json(v) for v in value]
    return value


_ARRAY_DTYPES = {"uint32": np.uint32, "uint64": np.uint64, "int64": np.int64}


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            dtype = _ARRAY_DTYPES.get(value.get("dtype"))
            if dtype is None:
                raise ValueError(f"unsupported array dtype in rng state: {value.get('dtype')!r}")
            return np.array(value["__ndarray__"], dtype=dtype)
        return {k: _from_json(v) for k, v in value.items()}
    return value


def rng_to_json(rng: np.random.Generator) -> dict[str, Any]:
    """The Generator's bit-generator state as plain JSON types (big ints stay Python ints)."""
    return _to_json(rng.bit_generator.state)


def rng_from_json(state: dict[str, Any]) -> np.random.Generator:
    """Rebuild a Generator from :func:`rng_to_json` output."""
    name = state.get("bit_generator") if isinstance(state, dict) else None
    cls = _BIT_GENERATORS.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown or missing bit generator in rng state: {name!r}")
    bit_gen = cls()
    bit_gen.state = _from_json(state)
    return np.random.Generator(bit_gen)
