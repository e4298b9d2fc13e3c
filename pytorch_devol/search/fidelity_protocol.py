"""The multi-fidelity protocol: which candidates earn more epochs, and how many.

A candidate is first trained for ``min_epochs``; the best continue (from their weights,
optimizer and random state: promotion never restarts) to ``min_epochs * eta``, then
``min_epochs * eta**2`` and so on up to the search's ``epochs``. Each budget is a *rung*.
The search loop asks a scheduler which candidates to promote; neither the strategy nor the
trainer knows how it decides. A scheduler is any object following `Fidelity`: its budgets, and
its promotion decision (see docs/extending/fidelity.md).

The built-in schedulers (`SuccessiveHalving`, `ASHA`, `Hyperband`) are in ``fidelity.py``,
which re-exports everything here.

A scheduler may also say at which rung each new candidate enters (`EntryRung`): Hyperband's
brackets start some candidates higher up. Without it every candidate enters at rung 0. A
candidate's entry rung is a pure function of its index, so a resume needs no saved state;
a rung's candidates are promoted among those that entered at the same rung (a bracket).

With several objectives the loop hands ``promote`` each candidate's place in its rung's
Pareto order (0 = best; `PARETO_ORDERS`, the scheduler's ``pareto`` setting) as its value,
with ``maximize=False``, so any scheduler promotes by non-dominated rank without knowing the
objectives.

What the strategy is told (`rung_major`): a candidate's latest result, ranked rung first, then
metric, so a score after few epochs never outranks one after more. The GA is told each
generation once, after its last rung; an asynchronous strategy is told each candidate when its
first rung ends, and a promoted candidate's later result through its optional ``update``.
With accuracy the value is ``rung + accuracy`` (squeezed below 1); with a loss (lower is better)
``(top - rung) + loss / (1 + loss)``. With several objectives each objective that training
changes is made rung-major this way, so a candidate trained 1 epoch never dominates one trained
9, while ``params``, ``flops`` and ``latency_ms`` (the same at every rung) are told as they
are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence, Set
from typing import Protocol, runtime_checkable

from .._checks import check_int

__all__ = ["PARETO_ORDERS", "EntryRung", "Fidelity", "ParetoOrdered", "check_budgets",
           "entry_rung_of", "pareto_order_of", "ranked", "rung_budgets", "rung_major"]

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


def ranked(results: Sequence[tuple[int, float]], maximize: bool) -> list[int]:
    """Ids of ``results`` (id, value) best first, failures (NaN) left out; ties go to the
    lower id, so arrival order never matters."""
    ok = [(i, v) for i, v in results if not math.isnan(v)]
    return [i for i, _ in sorted(ok, key=lambda item: (-item[1] if maximize else item[1],
                                                       item[0]))]


@runtime_checkable
class Fidelity(Protocol):
    """A multi-fidelity scheduler: how many epochs each rung trains, and who goes up.

    * ``asynchronous``: False to decide once per generation, rung by rung, after every
      candidate of the generation has reported at that rung (for generational strategies, such
      as the GA); True to decide whenever a worker is free (for steady-state strategies, such
      as regularized evolution).
    * ``budgets(epochs)``: the epochs a network has in all at each rung, increasing, the last
      equal to the search's ``epochs`` (the full training).
    * ``promote(rung, results, promoted, maximize)``: ids to send from ``rung`` to the next,
      best first. ``results`` holds (id, value) for the candidates that reached ``rung`` (in
      the generation, when synchronous; in the whole search, when asynchronous), NaN for a
      failure; ``promoted`` the ids among them already sent on (or already higher: an elite
      the GA carried over); ``maximize`` whether higher values are better. Return ids not in
      ``promoted``; an asynchronous search sends the first and asks again when the next worker
      is free. An empty answer from every rung means "start a new candidate".
    """

    asynchronous: bool

    def budgets(self, epochs: int) -> tuple[int, ...]: ...

    def promote(self, rung: int, results: Sequence[tuple[int, float]], promoted: Set[int],
                maximize: bool) -> Sequence[int]: ...


def check_budgets(fidelity: Fidelity, epochs: int) -> tuple[int, ...]:
    """``fidelity.budgets(epochs)``, checked: increasing positive ints ending at ``epochs``."""
    budgets = fidelity.budgets(epochs)
    try:
        values = tuple(check_int(b, "a rung's epochs") for b in budgets)
    except (TypeError, ValueError):
        values = ()
    if not values or values[-1] != epochs or any(a >= b for a, b in zip(values, values[1:])):
        raise ValueError(f"{type(fidelity).__name__}.budgets({epochs}) must be increasing "
                         f"positive ints ending at the search's epochs ({epochs}), got "
                         f"{budgets!r}")
    return values


#: How a multi-objective search orders a rung before promoting its best ``1/eta``: by
#: non-dominated rank, then in epsilon-net order (MOASHA; the default) or by crowding distance
#: (NSGA-II). benchmarks/multi_objective.py found no consistent difference between the two.
PARETO_ORDERS = ("crowding", "epsilon")


@runtime_checkable
class ParetoOrdered(Protocol):
    """Optional for a scheduler: ``pareto``, one of `PARETO_ORDERS`, how a multi-objective
    search orders each rung after non-dominated rank. Without it, "epsilon"."""

    pareto: str


def pareto_order_of(fidelity: Fidelity | None) -> str:
    """The scheduler's Pareto order (`ParetoOrdered`), checked; "epsilon" without one."""
    order = fidelity.pareto if isinstance(fidelity, ParetoOrdered) else "epsilon"
    if order not in PARETO_ORDERS:
        raise ValueError(f"{type(fidelity).__name__}.pareto must be one of {PARETO_ORDERS}, "
                         f"got {order!r}")
    return order




@runtime_checkable
class EntryRung(Protocol):
    """Optional for a scheduler: ``entry_rung(index, top)``, the rung (0 to ``top``) at which
    the new candidate ``index`` (0, 1, 2, ... in the order asked) starts training. It must be
    a pure function of its arguments: a resumed search asks it again. Without it, rung 0.
    Candidates that entered at the same rung form a bracket: ``promote`` is given one
    bracket's results at a time."""

    def entry_rung(self, index: int, top: int) -> int: ...


def entry_rung_of(fidelity: Fidelity | None, index: int, top: int) -> int:
    """The rung candidate ``index`` enters at (`EntryRung`; 0 without it), checked."""
    if not isinstance(fidelity, EntryRung):
        return 0
    rung = fidelity.entry_rung(index, top)
    if isinstance(rung, bool) or not isinstance(rung, int) or not 0 <= rung <= top:
        raise ValueError(f"{type(fidelity).__name__}.entry_rung({index}, top={top}) must be "
                         f"an int from 0 to {top}, got {rung!r}")
    return rung
