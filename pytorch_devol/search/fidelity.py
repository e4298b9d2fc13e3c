"""Multi-fidelity schedulers: which candidates earn more epochs, and how many.

A candidate is first trained for ``min_epochs``; the best continue (from their weights,
optimizer and random state: promotion never restarts) to ``min_epochs * eta``, then
``min_epochs * eta**2`` and so on up to the search's ``epochs``. Each budget is a *rung*.
The search loop asks a scheduler which candidates to promote; neither the strategy nor the
trainer knows how it decides.

* `SuccessiveHalving` (Jamieson & Talwalkar 2016), synchronous: each generation of the GA
  trains everyone at rung 0, then the best ``1/eta`` of those who entered a rung go on to the
  next, until the top rung. An elite the GA carries over arrives at its old rung (a cached
  copy): it enters no lower rung and takes no place there.
* `ASHA` (Li et al. 2020), asynchronous: whenever a worker is free, it takes the best
  not-yet-promoted candidate of the highest rung whose top ``1/eta`` holds one, else a new
  candidate. No worker ever waits for a rung to fill. When the candidates run out with no
  result at the top rung (a search too small for the rule), the best of the highest rung goes
  on anyway, rung by rung, so the search still ends with a fully trained network.

What the strategy is told (`rung_major`): a candidate's latest result, ranked rung first, then
metric, so a score after few epochs never outranks one after more. The GA is told each
generation once, after its last rung; an asynchronous strategy is told each candidate when its
first rung ends, and a promoted candidate's later result through its optional ``update``.
With accuracy the value is ``rung + accuracy`` (squeezed below 1); with a loss (lower is better)
``(top - rung) + loss / (1 + loss)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import attrs

from .._checks import check_int

__all__ = ["ASHA", "FIDELITIES", "Fidelity", "SuccessiveHalving", "make_fidelity",
           "rung_budgets", "rung_major"]

FIDELITIES = ("none", "sh", "asha")
_BELOW_ONE = 1.0 - 1e-9  # keeps rung + accuracy below rung + 1


def rung_budgets(min_epochs: int, max_epochs: int, eta: int) -> tuple[int, ...]:
    """Epochs at each rung: ``min_epochs * eta**k`` below ``max_epochs``, then ``max_epochs``."""
    min_epochs, max_epochs = check_int(min_epochs, "min_epochs"), check_int(max_epochs,
                                                                           "max_epochs")
    eta = check_int(eta, "eta", 2)
    if min_epochs > max_epochs:
        raise ValueError(f"min_epochs ({min_epochs}) is more than the search's epochs "
                         f"({max_epochs})")
    budgets, epochs = [], min_epochs
    while epochs < max_epochs:
        budgets.append(epochs)
        epochs *= eta
    return (*budgets, max_epochs)


def rung_major(value: float, rung: int, top: int, maximize: bool) -> float:
    """``value`` at ``rung`` (of ``0..top``) as one number that ranks rung first, then value.

    Maximised values must lie in [0, 1] (accuracy); minimised ones in [0, inf) (loss, MAE).
    NaN (a failure) stays NaN, which every strategy ranks worst.
    """
    if math.isnan(value):
        return value
    if maximize:  # rung k spans [k, k + 1): a perfect score never ties the next rung
        return rung + min(max(value, 0.0), 1.0) * _BELOW_ONE
    return (top - rung) + value / (1.0 + value)


def _ranked(scores: Sequence[tuple[int, float]], maximize: bool) -> list[int]:
    """Ids best first; NaN last; ties to the lower id (arrival order never matters)."""
    def order(item: tuple[int, float]) -> tuple[bool, float, int]:
        ident, value = item
        bad = math.isnan(value)
        return bad, 0.0 if bad else (-value if maximize else value), ident
    return [ident for ident, _ in sorted(scores, key=order)]


@runtime_checkable
class Fidelity(Protocol):
    """A multi-fidelity scheduler: its rungs' budgets, and whether it runs asynchronously."""

    min_epochs: int
    eta: int
    max_epochs: int | None
    asynchronous: bool

    def budgets(self, epochs: int) -> tuple[int, ...]: ...


@attrs.frozen
class _Rungs:
    min_epochs: int = attrs.field(default=1)
    eta: int = attrs.field(default=3)
    max_epochs: int | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        check_int(self.min_epochs, "min_epochs")
        check_int(self.eta, "eta", 2)
        check_int(self.max_epochs, "max_epochs", allow_none=True)

    def budgets(self, epochs: int) -> tuple[int, ...]:
        """The rungs' epochs for a search whose full budget is ``epochs``."""
        if self.max_epochs is not None and self.max_epochs != epochs:
            raise ValueError(f"max_epochs ({self.max_epochs}) must equal the search's epochs "
                             f"({epochs}): the top rung is the full training")
        return rung_budgets(self.min_epochs, epochs, self.eta)


@attrs.frozen
class SuccessiveHalving(_Rungs):
    """Synchronous successive halving within each generation (for the generational GA)."""

    asynchronous = False

    def promote(self, entrants: int, scores: Sequence[tuple[int, float]], already: int,
                maximize: bool) -> list[int]:
        """Ids to move up from a rung that ``entrants`` candidates reached: the best of
        ``scores`` (id, metric) of those still there, filling ``max(1, entrants // eta)``
        places of which ``already`` are taken (entrants that moved up as cached copies)."""
        places = max(1, entrants // self.eta) - already
        ok = [(i, v) for i, v in scores if not math.isnan(v)]
        return _ranked(ok, maximize)[:max(0, places)]


@attrs.frozen
class ASHA(_Rungs):
    """Asynchronous successive halving (for regularized evolution and parallel workers)."""

    asynchronous = True

    def next_promotion(self, rungs: Sequence[Sequence[tuple[int, float]]],
                       promoted: Sequence[set[int]], maximize: bool) -> tuple[int, int] | None:
        """``(id, rung)`` to promote from ``rung`` to ``rung + 1``, or None for a new candidate.

        ``rungs[k]`` holds (id, metric) of every candidate that finished rung k; ``promoted[k]``
        the ids already sent on from it. The highest rung with an unpromoted candidate among
        its top ``len(rungs[k]) // eta`` wins (ASHA's rule)."""
        for k in range(len(rungs) - 1, -1, -1):
            top = _ranked([(i, v) for i, v in rungs[k] if not math.isnan(v)], maximize)
            for ident in top[:len(rungs[k]) // self.eta]:
                if ident not in promoted[k]:
                    return ident, k
        return None

    @staticmethod
    def promote_any(scores: Sequence[tuple[int, float]], maximize: bool) -> int | None:
        """The best of ``scores`` (id, metric), whatever its rank: how a search too small for
        the ``1/eta`` rule still fills the top rung once. None if every one failed."""
        ranked = _ranked([(i, v) for i, v in scores if not math.isnan(v)], maximize)
        return ranked[0] if ranked else None


def make_fidelity(fidelity: str | Fidelity | None, min_epochs: int = 1,
                  eta: int = 3) -> Fidelity | None:
    """``"sh"``, ``"asha"``, ``"none"``/None or a scheduler object, as a scheduler or None."""
    if fidelity is None or fidelity == "none":
        return None
    if isinstance(fidelity, str):
        if fidelity not in FIDELITIES:
            raise ValueError(f"fidelity must be one of {FIDELITIES}, a SuccessiveHalving or "
                             f"an ASHA, got {fidelity!r}")
        kind = SuccessiveHalving if fidelity == "sh" else ASHA
        return kind(min_epochs=min_epochs, eta=eta)
    if not isinstance(fidelity, SuccessiveHalving | ASHA):
        raise TypeError(f"fidelity must be one of {FIDELITIES}, a SuccessiveHalving or an "
                        f"ASHA, got {type(fidelity).__name__}")
    return fidelity
