"""`Incumbent`: the best fully trained candidate so far, chosen the same way whatever the order
in which parallel results arrive."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["Incumbent"]


class Incumbent:
    """The best record so far by validation fitness (``record`` is None until one)."""

    def __init__(self, maximize: bool) -> None:
        self.maximize = maximize
        self.record: dict[str, Any] | None = None

    def beaten_by(self, fitness: float, index: int) -> bool:
        """Strictly better than the best so far; ties go to the earlier candidate."""
        if math.isnan(fitness):
            return False
        if self.record is None:
            return True
        best = self.record["fitness"]
        if fitness == best:
            return index < self.record["index"]
        return fitness > best if self.maximize else fitness < best

    def observe(self, record: dict[str, Any]) -> None:
        """Take ``record`` if it was trained (not a cached copy) at the full budget and wins."""
        if record["fitness"] is not None and not record["cached"] and \
                record["final"] and self.beaten_by(record["fitness"], record["index"]):
            self.record = record
