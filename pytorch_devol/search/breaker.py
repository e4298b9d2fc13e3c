"""`CircuitBreaker`: stop a search whose first candidates all fail the same unexpected way.

One candidate raising a TypeError may be that candidate's bad luck; the first population all
raising the same TypeError from the same line is a bug in the user's code, and training the
rest of the search would only log it a thousand times. The breaker re-raises the original
exception (its type and message) with a note saying why the search stopped.
"""

from __future__ import annotations

from typing import Any

from ..training import RETRIED_FAILURES, EvalResult

__all__ = ["CircuitBreaker", "SearchAborted"]


class SearchAborted(RuntimeError):
    """The circuit breaker stopped the search and the original exception was not available
    (e.g. the failures were read back from a run directory); the message quotes it."""


def _signature(metrics: dict[str, Any]) -> tuple[str, str | None] | None:
    """(exception type, origin) of an unexpected failure, None for any other outcome."""
    if metrics.get("status") != "failed" or metrics.get("failure") != "unexpected":
        return None
    return (metrics.get("reason") or "").partition(":")[0], metrics.get("origin")


class CircuitBreaker:
    """Watches the first ``window`` trained candidates of a run (``None`` or 0: never trips).

    Trips when all of them failed with the same exception type from the same place; any other
    outcome among them disarms it for good (failures that were the machine's fault are not
    counted either way).
    """

    def __init__(self, window: int | None) -> None:
        self.window = window or 0
        self.seen = 0
        self.signature: tuple[str, str | None] | None = None
        self.armed = self.window > 0
        self.errors: dict[int, BaseException] = {}  # index -> exception, in this session

    def blame(self, index: int, result: EvalResult) -> None:
        """Keep a live failure's exception, so a trip re-raises the user's own error."""
        if self.armed and result.error is not None:
            self.errors[index] = result.error

    def observe(self, record: dict[str, Any]) -> None:
        """Count one trained candidate (cached copies and infeasible ones never ran the
        user's code); raise when the breaker trips."""
        metrics = record["metrics"]
        if not self.armed or record["cached"] or metrics.get("status") == "infeasible" or \
                metrics.get("failure") in RETRIED_FAILURES:
            return  # the machine's fault says nothing about the user's code
        result = self.errors.pop(record["index"], None)
        signature = _signature(metrics)
        if signature is None or (self.seen and signature != self.signature):
            self.armed = False
            return
        self.signature, self.seen = signature, self.seen + 1
        if self.seen >= self.window:
            self.armed = False
            self._trip(metrics, result)

    def _trip(self, metrics: dict[str, Any], error: BaseException | None) -> None:
        note = (f"pytorch-devol stopped the search: the first {self.seen} candidates all failed "
                f"with this error at {metrics.get('origin') or 'the same place'}, which looks "
                "like a bug in your code rather than in the candidates. Fix it and start a new "
                "run (the failures are logged in the run directory).")
        if error is not None and hasattr(error, "add_note"):
            error.add_note(note)
            raise error
        raise SearchAborted(f"{metrics.get('reason')}\n{note}")
