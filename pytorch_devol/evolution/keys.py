"""Memory of genome keys, so that a strategy can avoid asking for an equivalent genome twice.

A *key* maps a genome (1-D ``int64`` array) to a hashable; two genomes with the same key are
the same candidate (e.g. the schema's canonical form, which zeroes genes of inactive layers).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import numpy.typing as npt

from .._checks import check_int

__all__ = ["KeyFunc", "KeyMemory"]

KeyFunc = Callable[[npt.NDArray[np.int64]], Hashable]
"""Maps a genome to a hashable key; genomes with equal keys count as the same (e.g.
``GenomeSchema.canonical_key``)."""


class KeyMemory:
    """Keys already asked or told, and a bounded retry loop that replaces repeats.

    With ``key=None`` the memory is disabled: nothing is stored and nothing is retried.
    The state stores one representative genome per key (keys themselves need not be
    JSON-serialisable); loading recomputes the keys with the same callable.
    """

    def __init__(self, key: KeyFunc | None, retries: int, space_size: int) -> None:
        if key is not None and not callable(key):
            raise TypeError(f"key must be a callable or None, got {type(key).__name__}")
        self.key = key
        self.retries = check_int(retries, "key_retries", 0)
        self.space_size = space_size
        self._seen: set[Hashable] = set()
        self._genomes: list[bytes] = []  # int64 bytes: cheap, and not tracked by the GC

    @property
    def enabled(self) -> bool:
        """Whether a key callable was given."""
        return self.key is not None

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, genome: npt.NDArray[np.int64]) -> bool:
        return self.enabled and self._keys_of(np.asarray(genome)[None])[0] in self._seen

    def _keys_of(self, rows: npt.NDArray[np.int64]) -> list[Hashable]:
        assert self.key is not None
        keys = [self.key(row) for row in rows]
        if keys:
            try:
                hash(keys[0])
            except TypeError:
                raise TypeError("key(genome) must return a hashable value, got "
                                f"{type(keys[0]).__name__}") from None
        return keys

    def _remember(self, keys: list[Hashable], rows: npt.NDArray[np.int64],
                  indices: list[int] | range) -> None:
        seen, genomes = self._seen, self._genomes
        for i in indices:
            k = keys[i]
            if k not in seen:
                seen.add(k)
                genomes.append(rows[i].tobytes())

    def add(self, genomes: npt.NDArray[np.int64]) -> None:
        """Record genomes (k, L) as seen."""
        if not self.enabled:
            return
        rows = np.ascontiguousarray(genomes, dtype=np.int64)
        self._remember(self._keys_of(rows), rows, range(rows.shape[0]))

    def unique(self, rows: npt.NDArray[np.int64],
               regenerate: Callable[[int, int], npt.NDArray[np.int64]]
               ) -> npt.NDArray[np.int64]:
        """Replace rows whose key was seen (or repeats an earlier row) and record all keys.

        ``rows`` (fresh candidates the caller owns) are modified in place and returned.

        ``regenerate(m, attempt)`` must return ``m`` fresh candidate rows; ``attempt`` counts
        the retries from 1, so a strategy can widen its search as repeats persist. Each repeat
        is retried at most ``retries`` times, and retrying stops early once every possible key
        is taken (a key takes at most as many values as the space has genomes), so tiny spaces
        never loop forever; rows still repeated after that are kept as they are.
        """
        if not self.enabled or rows.shape[0] == 0:
            return rows
        rows = np.ascontiguousarray(rows, dtype=np.int64)  # repeats are replaced in place
        seen = self._seen
        keys = self._keys_of(rows)
        accepted: set[Hashable] = set()
        fresh_rows: list[int] = []
        bad: list[int] = []
        for i, k in enumerate(keys):
            if k in seen or k in accepted:
                bad.append(i)
            else:
                accepted.add(k)
                fresh_rows.append(i)
        for attempt in range(1, self.retries + 1):
            if not bad or len(seen) + len(accepted) >= self.space_size:
                break
            fresh = regenerate(len(bad), attempt)
            rows[bad] = fresh
            still: list[int] = []
            for i, k in zip(bad, self._keys_of(fresh), strict=True):
                keys[i] = k
                if k in seen or k in accepted:
                    still.append(i)
                else:
                    accepted.add(k)
                    fresh_rows.append(i)
            bad = still
        self._remember(keys, rows, fresh_rows)
        return rows

    def state_dict(self) -> list[list[int]]:
        """One representative genome per seen key (JSON lists)."""
        return [np.frombuffer(g, dtype=np.int64).tolist() for g in self._genomes]

    def load_state_dict(self, genomes: npt.NDArray[np.int64]) -> None:
        """Reset to the (validated) genomes of :meth:`state_dict`, recomputing their keys."""
        self._seen = set()
        self._genomes = []
        self.add(genomes)
