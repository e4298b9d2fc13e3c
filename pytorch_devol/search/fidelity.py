"""Multi-fidelity schedulers: which candidates earn more epochs, and how many.

A candidate is first trained for ``min_epochs``; the best continue (from their weights,
optimizer and random state: promotion never restarts) to ``min_epochs * eta``, then
``min_epochs * eta**2`` and so on up to the search's ``epochs``. Each budget is a *rung*.
The search loop asks a scheduler which candidates to promote; neither the strategy nor the
trainer knows how it decides. A scheduler is any object following `Fidelity`: its budgets, and
its promotion decision (see README's "A fidelity scheduler of your own").

* `SuccessiveHalving` (Jamieson & Talwalkar 2016), synchronous: each generation of the GA
  trains everyone at rung 0, then the best ``1/eta`` of those who entered a rung go on to the
  next, until the top rung. An elite the GA carries over arrives at its old rung (a cached
  copy): it enters no lower rung and takes no place there.
* `ASHA` (Li et al. 2020), asynchronous: whenever a worker is free, it takes the best
  not-yet-promoted candidate of the highest rung whose top ``1/eta`` holds one, else a new
  candidate. No worker ever waits for a rung to fill. When the candidates run out with no
  result at the top rung (a search too small for the rule), the best of the highest rung goes
  on anyway, rung by rung, so the search still ends with a fully trained network.

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
from typing import Any, Protocol, runtime_checkable

import attrs

from .._checks import check_int

__all__ = ["ASHA", "FIDELITIES", "PARETO_ORDERS", "Fidelity", "ParetoOrdered",
           "SuccessiveHalving", "check_budgets", "default_fidelity", "fidelity_config",
           "make_fidelity", "pareto_order_of", "ranked", "rung_budgets", "rung_major",
           "saved_fidelity"]

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


@attrs.frozen
class _Rungs:
    min_epochs: int = attrs.field(default=1)
    eta: int = attrs.field(default=3)
    max_epochs: int | None = attrs.field(default=None)
    pareto: str = attrs.field(default="epsilon", validator=attrs.validators.in_(PARETO_ORDERS))

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
    """Synchronous successive halving within each generation (for the generational GA): the
    best ``max(1, entrants // eta)`` of a rung's entrants go on, where an entrant already
    higher (a cached copy) takes a place."""

    asynchronous = False

    def promote(self, rung: int, results: Sequence[tuple[int, float]], promoted: Set[int],
                maximize: bool) -> list[int]:
        places = max(1, len(results) // self.eta) - len(promoted)
        waiting = [(i, v) for i, v in results if i not in promoted]
        return ranked(waiting, maximize)[:max(0, places)]


@attrs.frozen
class ASHA(_Rungs):
    """Asynchronous successive halving (for regularized evolution and parallel workers): a
    candidate goes on once it is among the top ``len(results) // eta`` of its rung."""

    asynchronous = True

    def promote(self, rung: int, results: Sequence[tuple[int, float]], promoted: Set[int],
                maximize: bool) -> list[int]:
        top = ranked(results, maximize)[:len(results) // self.eta]
        return [i for i in top if i not in promoted]


#: The built-in schedulers by the name ``Search(fidelity=...)`` and ``--fidelity`` take.
FIDELITIES: dict[str, type[_Rungs]] = {"sh": SuccessiveHalving, "asha": ASHA}


def default_fidelity(steady_state: bool, several_objectives: bool) -> str | None:
    """The scheduler a search gets when it names none (``fidelity="auto"``, the CLI without
    ``--fidelity``): successive halving for a generational strategy, ASHA for a steady-state
    one (both measured ahead of training every candidate in full at equal epochs, README's
    benchmarks); every candidate in full with several objectives or constraints, where no
    scheduler was measured ahead."""
    if several_objectives:
        return None
    return "asha" if steady_state else "sh"


def make_fidelity(fidelity: str | Fidelity | None, min_epochs: int = 1,
                  eta: int = 3) -> Fidelity | None:
    """A built-in scheduler's name (or ``"none"``/None), or any `Fidelity` object."""
    if fidelity is None or fidelity == "none":
        return None
    if isinstance(fidelity, str):
        if fidelity not in FIDELITIES:
            raise ValueError(f"fidelity must be one of {['none', *FIDELITIES]} or a Fidelity "
                             f"object, got {fidelity!r}")
        return FIDELITIES[fidelity](min_epochs=min_epochs, eta=eta)
    missing = [name for name in ("budgets", "promote") if not callable(
        getattr(fidelity, name, None))]
    if missing or not isinstance(getattr(fidelity, "asynchronous", None), bool):
        raise TypeError(f"fidelity must be one of {['none', *FIDELITIES]} or a scheduler with "
                        "budgets(epochs), promote(rung, results, promoted, maximize) and a bool "
                        f"asynchronous (see pytorch_devol.search.Fidelity); "
                        f"{type(fidelity).__name__} lacks {missing or ['asynchronous']}")
    return fidelity


def fidelity_config(fidelity: Fidelity | None, epochs: int) -> dict[str, Any] | None:
    """What a run directory saves about its scheduler: a built-in one's name and settings (it
    is rebuilt from them); for your own, its type and budgets (pass it again on resume)."""
    if fidelity is None:
        return None
    budgets = list(check_budgets(fidelity, epochs))
    for name, cls in FIDELITIES.items():
        if type(fidelity) is cls:
            return {"kind": name, **attrs.asdict(fidelity), "budgets": budgets}
    kind = type(fidelity)
    return {"kind": "custom", "type": f"{kind.__module__}.{kind.__qualname__}",
            "asynchronous": fidelity.asynchronous, "budgets": budgets}


def saved_fidelity(saved: Any, given: Fidelity | None, run_dir: Any) -> Fidelity | None:
    """The fidelity scheduler a run directory names (plain values only), or ``given``: your
    own scheduler, passed again."""
    if saved is None:
        return None
    kinds = [*FIDELITIES, "custom"]
    if not isinstance(saved, dict) or saved.get("kind") not in kinds:
        raise ValueError(f"the saved fidelity {saved!r} is not one of {kinds} or null")
    if saved["kind"] == "custom":
        if given is None:
            raise ValueError(f"{run_dir} used a fidelity scheduler of your own "
                             f"({saved.get('type')}): pass it again "
                             "(Search.resume(run_dir, fidelity=...))")
        return given
    max_epochs = saved.get("max_epochs")
    return FIDELITIES[saved["kind"]](
        min_epochs=check_int(saved.get("min_epochs"), "saved min_epochs"),
        eta=check_int(saved.get("eta"), "saved eta", 2),
        max_epochs=check_int(max_epochs, "saved max_epochs", allow_none=True),
        pareto=saved.get("pareto", "epsilon"))
