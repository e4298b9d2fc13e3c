"""Multi-fidelity: the `Fidelity` protocol (``fidelity_protocol.py``, re-exported here with
its optional hooks and rung arithmetic) and the built-in schedulers, by the names that
``Search(fidelity=)`` and ``--fidelity`` take (`FIDELITIES`), and how a run directory saves
them.

* `SuccessiveHalving` (Jamieson & Talwalkar 2016), synchronous: each generation of the GA
  trains everyone at rung 0, then the best ``1/eta`` of those who entered a rung go on to the
  next, until the top rung. An elite the GA carries over arrives at its old rung (a cached
  copy): it enters no lower rung and takes no place there.
* `ASHA` (Li et al. 2020), asynchronous: whenever a worker is free, it takes the best
  not-yet-promoted candidate of the highest rung whose top ``1/eta`` holds one, else a new
  candidate. No worker ever waits for a rung to fill. When the candidates run out with no
  result at the top rung (a search too small for the rule), the best of the highest rung goes
  on anyway, rung by rung, so the search still ends with a fully trained network.
* `Hyperband` (Li et al. 2018): successive halving hedged over brackets. Bracket ``s`` starts
  its candidates at rung ``s`` (bracket 0 is plain successive halving, the top bracket trains
  every candidate in full), with Li et al.'s number of candidates per bracket
  (`Hyperband.brackets`). Synchronous (each GA generation spread over the brackets, halved
  within each) or, with ``asynchronous=True``, asynchronous (ASHA within each bracket).
"""

from __future__ import annotations

import math
from collections.abc import Sequence, Set
from typing import Any

import attrs

from .._checks import check_int
from .fidelity_protocol import (
    PARETO_ORDERS,
    EntryRung,
    Fidelity,
    ParetoOrdered,
    check_budgets,
    entry_rung_of,
    pareto_order_of,
    ranked,
    rung_budgets,
    rung_major,
)

__all__ = ["ASHA", "FIDELITIES", "PARETO_ORDERS", "Bracket", "EntryRung", "Fidelity",
           "Hyperband", "ParetoOrdered", "SuccessiveHalving", "asynchronous_halving",
           "check_budgets", "default_fidelity", "entry_rung_of", "fidelity_config", "halving",
           "make_fidelity", "pareto_order_of", "ranked", "rung_budgets", "rung_major",
           "saved_fidelity"]


def halving(results: Sequence[tuple[int, float]], promoted: Set[int], maximize: bool,
            eta: int) -> list[int]:
    """Successive halving's rule: the best ``max(1, len(results) // eta)`` go on, where one
    already promoted (or already higher) takes a place."""
    places = max(1, len(results) // eta) - len(promoted)
    waiting = [(i, v) for i, v in results if i not in promoted]
    return ranked(waiting, maximize)[:max(0, places)]


def asynchronous_halving(results: Sequence[tuple[int, float]], promoted: Set[int],
                         maximize: bool, eta: int) -> list[int]:
    """ASHA's rule: those among the top ``len(results) // eta`` not yet promoted."""
    top = ranked(results, maximize)[:len(results) // eta]
    return [i for i in top if i not in promoted]


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
        return halving(results, promoted, maximize, self.eta)


@attrs.frozen
class ASHA(_Rungs):
    """Asynchronous successive halving (for regularized evolution and parallel workers): a
    candidate goes on once it is among the top ``len(results) // eta`` of its rung."""

    asynchronous = True

    def promote(self, rung: int, results: Sequence[tuple[int, float]], promoted: Set[int],
                maximize: bool) -> list[int]:
        return asynchronous_halving(results, promoted, maximize, self.eta)


@attrs.frozen
class Bracket:
    """One row of Hyperband's table: the rung its candidates enter at, how many new
    candidates of each round of ``sum(candidates)`` it takes, and (epochs, candidates) at each
    rung from its entry to the top (Li et al. 2018, Table 1)."""

    entry: int
    candidates: int
    rungs: tuple[tuple[int, int], ...]


@attrs.frozen
class Hyperband(_Rungs):
    """Successive halving hedged over brackets (Li et al. 2018): bracket ``s`` enters its
    candidates at rung ``s`` and halves them (the best ``1/eta`` of a rung's entrants go on)
    up to the top. New candidates are dealt to brackets in rounds by their index (`brackets`:
    bracket 0 first), so every bracket gets Li et al.'s share of them. ``asynchronous``: for
    steady-state strategies, each bracket promotes as ASHA does; otherwise (the GA) each
    generation is halved within each bracket, as `SuccessiveHalving` does."""

    asynchronous: bool = attrs.field(default=False, validator=attrs.validators.instance_of(bool))

    def brackets(self, epochs: int) -> tuple[Bracket, ...]:
        """The bracket table for a search whose full budget is ``epochs``."""
        budgets = self.budgets(epochs)
        top = len(budgets) - 1
        rows = []
        for entry in range(top + 1):
            s = top - entry  # Li et al.'s bracket number: s halvings to go
            n = math.ceil((top + 1) / (s + 1) * self.eta ** s)
            rungs, left = [], n
            for k in range(entry, top + 1):
                rungs.append((budgets[k], left))
                left = max(1, left // self.eta)
            rows.append(Bracket(entry, n, tuple(rungs)))
        return tuple(rows)

    def entry_rung(self, index: int, top: int) -> int:
        """Candidate ``index``'s bracket: rounds of ``n_0`` candidates for bracket 0, then
        ``n_1`` for bracket 1, ... (``n_b`` from `brackets`)."""
        shares = [math.ceil((top + 1) / (top - b + 1) * self.eta ** (top - b))
                  for b in range(top + 1)]
        position = index % sum(shares)
        for entry, share in enumerate(shares):
            if position < share:
                return entry
            position -= share
        raise AssertionError("unreachable")

    def promote(self, rung: int, results: Sequence[tuple[int, float]], promoted: Set[int],
                maximize: bool) -> list[int]:
        rule = asynchronous_halving if self.asynchronous else halving
        return rule(results, promoted, maximize, self.eta)


#: The built-in schedulers by the name ``Search(fidelity=...)`` and ``--fidelity`` take.
FIDELITIES: dict[str, type[_Rungs]] = {"sh": SuccessiveHalving, "asha": ASHA,
                                       "hyperband": Hyperband}


def default_fidelity(steady_state: bool, several_objectives: bool) -> str | None:
    """The scheduler a search gets when it names none (``fidelity="auto"``, the CLI without
    ``--fidelity``): successive halving for a generational strategy, ASHA for a steady-state
    one (both measured ahead of training every candidate in full at equal epochs,
    docs/benchmarks.md); every candidate in full with several objectives or constraints, where
    no scheduler was measured ahead."""
    if several_objectives:
        return None
    return "asha" if steady_state else "sh"


def make_fidelity(fidelity: str | Fidelity | None, min_epochs: int = 1, eta: int = 3,
                  asynchronous: bool = False) -> Fidelity | None:
    """A built-in scheduler's name (or ``"none"``/None), or any `Fidelity` object.
    ``asynchronous``: for "hyperband", whether the strategy is steady-state."""
    if fidelity is None or fidelity == "none":
        return None
    if isinstance(fidelity, str):
        if fidelity not in FIDELITIES:
            raise ValueError(f"fidelity must be one of {['none', *FIDELITIES]} or a Fidelity "
                             f"object, got {fidelity!r}")
        if fidelity == "hyperband":
            return Hyperband(min_epochs=min_epochs, eta=eta, asynchronous=asynchronous)
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
    settings = dict(min_epochs=check_int(saved.get("min_epochs"), "saved min_epochs"),
                    eta=check_int(saved.get("eta"), "saved eta", 2),
                    max_epochs=check_int(max_epochs, "saved max_epochs", allow_none=True),
                    pareto=saved.get("pareto", "epsilon"))
    if saved["kind"] == "hyperband":
        if not isinstance(saved.get("asynchronous"), bool):
            raise ValueError(f"the saved fidelity {saved!r} lacks a bool asynchronous")
        settings["asynchronous"] = saved["asynchronous"]
    return FIDELITIES[saved["kind"]](**settings)
