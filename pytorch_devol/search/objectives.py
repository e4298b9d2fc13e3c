"""What a multi-objective search optimises: objectives with a direction, and constraints.

Built-in objectives (``OBJECTIVES``): ``val_accuracy`` (max), ``val_loss`` and ``val_mae``
(min), ``params`` (min), ``flops`` (min: multiply-accumulates per example, counted from the
built network by torch's FLOP counter on the meta device, so no memory or compute is spent)
and ``latency_ms`` (min: the median of ``repeats`` timed forward passes of the untrained network
at ``latency_batch`` examples, on the search's device, in this process, after a warm-up).
Aliases: "accuracy", "loss", "mae", "latency". A user objective is
``Objective(name, direction, fn)`` with ``fn(result, model) -> float``: the candidate's
`EvalResult` and its (untrained) network. A failed candidate scores NaN on every objective.

A constraint (``"params<=1e6"``, ``"latency_ms<=5"``) is on any objective's quantity; a
candidate that breaks it is ranked after every feasible one (Deb's constrained domination),
by how far it breaks it, relative to the bound. A constraint on ``params``, ``flops`` or
``latency_ms`` is checked before training: a candidate that breaks it is logged "infeasible"
with 0 epochs and never trained.
"""

from __future__ import annotations

import math
import re
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..training import EvalResult

__all__ = ["ALIASES", "OBJECTIVES", "STRUCTURAL", "Constraint", "Objective", "ObjectiveMeter",
           "count_macs", "count_params",
           "objectives_and_constraints", "objectives_config", "objectives_from_config",
           "parse_constraint", "resolve_objectives"]

#: The built-in objectives by the name ``Search(objectives=[...])`` takes, and their direction.
OBJECTIVES = {"val_accuracy": "max", "val_loss": "min", "val_mae": "min", "params": "min",
              "flops": "min", "latency_ms": "min"}
#: Other names for built-in objectives (as in the CLI and in constraints).
ALIASES = {"accuracy": "val_accuracy", "loss": "val_loss", "mae": "val_mae",
           "latency": "latency_ms", "macs": "flops"}
DIRECTIONS = ("max", "min")
#: Objectives measured on the untrained network: known before training, the same at every rung.
STRUCTURAL = ("params", "flops", "latency_ms")


@attrs.frozen
class Objective:
    """One objective: a name, a direction ("max" or "min") and, for a user objective, the
    function ``fn(result, model) -> float`` that measures it."""

    name: str
    direction: str = attrs.field(validator=attrs.validators.in_(DIRECTIONS))
    fn: Callable[[EvalResult, nn.Module], float] | None = attrs.field(default=None, eq=False)

    @property
    def maximize(self) -> bool:
        return self.direction == "max"


def _built_in(name: str, task: str) -> Objective:
    name = ALIASES.get(name, name)
    if name not in OBJECTIVES:
        raise ValueError(f"unknown objective {name!r}; built in: {', '.join(OBJECTIVES)} "
                         f"(aliases {', '.join(ALIASES)}), or pass Objective(name, "
                         "direction, fn)")
    if (name == "val_accuracy" and task != "classification") or \
            (name == "val_mae" and task == "classification"):
        raise ValueError(f"objective {name!r} does not apply to {task}")
    return Objective(name, OBJECTIVES[name])


def resolve_objectives(items: Sequence[Any], task: str) -> tuple[Objective, ...]:
    """Objectives from names and `Objective`s, checked before anything trains."""
    if isinstance(items, str):
        items = [s.strip() for s in items.split(",") if s.strip()]
    out: list[Objective] = []
    for item in items:
        if isinstance(item, str):
            out.append(_built_in(item, task))
        elif isinstance(item, Objective):
            if item.fn is None and item.name not in OBJECTIVES:
                raise ValueError(f"objective {item.name!r} is not built in: give its fn")
            out.append(item if item.fn is not None else _built_in(item.name, task))
        elif callable(item):
            fn = getattr(item, "__name__", "fn")
            raise ValueError(f"a callable objective needs a name and a direction: "
                             f"Objective('name', 'max' or 'min', {fn})")
        else:
            raise ValueError(f"an objective is a name or an Objective, got {item!r}")
    names = [o.name for o in out]
    if not out or len(set(names)) != len(names):
        raise ValueError(f"objectives must be one or more distinct names, got {names}")
    return tuple(out)


@attrs.frozen
class Constraint:
    """``quantity <= bound`` or ``quantity >= bound``."""

    quantity: str
    op: str = attrs.field(validator=attrs.validators.in_(("<=", ">=")))
    bound: float

    def violation(self, value: float) -> float:
        """0 when satisfied; else how far off, relative to the bound (NaN: infinitely)."""
        if value is None or math.isnan(value):
            return math.inf
        excess = value - self.bound if self.op == "<=" else self.bound - value
        return max(0.0, excess) / max(abs(self.bound), 1e-12)

    def __str__(self) -> str:
        return f"{self.quantity}{self.op}{self.bound:g}"


_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=)\s*([-+0-9.eE]+)\s*$")


def parse_constraint(text: str | Constraint, known: Sequence[str]) -> Constraint:
    """``"params<=1e6"`` -> Constraint; the quantity must be one of ``known``."""
    if isinstance(text, Constraint):
        constraint = text
    else:
        match = _CONSTRAINT.match(str(text))
        if match is None:
            raise ValueError(f"constraint {text!r} is not QUANTITY<=NUMBER or "
                             "QUANTITY>=NUMBER, e.g. 'params<=1e6'")
        try:
            bound = float(match.group(3))
        except ValueError:
            raise ValueError(f"constraint {text!r}: {match.group(3)!r} is not a number") from None
        constraint = Constraint(ALIASES.get(match.group(1), match.group(1)), match.group(2),
                                bound)
    if constraint.quantity not in known:
        raise ValueError(f"constraint {str(constraint)!r} is on an unknown quantity "
                         f"{constraint.quantity!r}; known: {', '.join(known)}")
    return constraint


def objectives_and_constraints(objectives: Any, constraints: Any, metric: str, task: str
                               ) -> tuple[tuple[Objective, ...] | None, tuple[Constraint, ...]]:
    """``Search``'s objectives and constraints, checked before training. None objectives (and
    no constraints): a single-objective search on ``metric``. Constraints alone constrain the
    validation metric."""
    if objectives is None and not constraints:
        return None, ()
    if objectives is None:
        objectives = [f"val_{metric}"]
    resolved = resolve_objectives(objectives, task)
    known = list(dict.fromkeys([*OBJECTIVES, *(o.name for o in resolved)]))
    if isinstance(constraints, str):
        constraints = [constraints]
    return resolved, tuple(parse_constraint(c, known) for c in constraints or ())


def objectives_config(objectives: Sequence[Objective] | None,
                      constraints: Sequence[Constraint], latency_batch: int) -> dict[str, Any]:
    """What config.json says about them (a user objective by name only: it is code)."""
    if objectives is None:
        return {}
    return {"objectives": [{"name": o.name, "direction": o.direction,
                            "custom": o.fn is not None} for o in objectives],
            "constraints": [str(c) for c in constraints], "latency_batch": latency_batch}


def objectives_from_config(saved: dict[str, Any], given: Sequence[str | Objective] | None
                           ) -> tuple[Any, list[str], int]:
    """(objectives, constraints, latency_batch) for resuming; user objectives must be given
    again (a run directory never names code)."""
    entries = saved.get("objectives")
    if not entries:
        return None, [], 1
    if any(e.get("custom") for e in entries):
        if given is None:
            names = [e["name"] for e in entries if e.get("custom")]
            raise ValueError(f"the run used objectives of your own ({', '.join(names)}): pass "
                             "them again, Search.resume(run_dir, objectives=[...])")
        if [o if isinstance(o, str) else o.name for o in given] != [e["name"] for e in entries]:
            raise ValueError("the objectives given differ from the run's: "
                             f"{[e['name'] for e in entries]}")
        return list(given), list(saved.get("constraints") or []), saved.get("latency_batch", 1)
    return ([e["name"] for e in entries], list(saved.get("constraints") or []),
            int(saved.get("latency_batch", 1)))


class ObjectiveMeter:
    """Measures a candidate's objectives (and the quantities its constraints name).

    Structural quantities (params, flops, latency) depend only on the genome's canonical key,
    so they are measured once per key."""

    def __init__(self, schema: Any, objectives: Sequence[Objective],
                 constraints: Sequence[Constraint] = (), device: str = "cpu",
                 latency_batch: int = 1, repeats: int = 20) -> None:
        self.schema, self.objectives, self.constraints = schema, tuple(objectives), \
            tuple(constraints)
        self.device, self.latency_batch, self.repeats = torch.device(device), latency_batch, \
            repeats
        self._structural: dict[tuple[int, ...], dict[str, float]] = {}
        self.names = [o.name for o in self.objectives]
        self.quantities = list(dict.fromkeys(
            self.names + [c.quantity for c in self.constraints]))

    @property
    def checks_before_training(self) -> bool:
        """Whether a constraint is on a quantity known before training (params, flops,
        latency_ms): then a candidate that breaks it is never trained."""
        return any(c.quantity in STRUCTURAL for c in self.constraints)

    def before_training(self, genome: Sequence[int]) -> EvalResult | None:
        """An "infeasible" result for a genome whose untrained network breaks a constraint
        on params, flops or latency_ms; None when it may train."""
        known = self._structure(genome)
        broken = [c for c in self.constraints
                  if c.quantity in known and c.violation(known[c.quantity]) > 0]
        if not broken:
            return None
        reason = "; ".join(f"{c.quantity}={known[c.quantity]:g} breaks {c}" for c in broken)
        return EvalResult.infeasible(f"never trained: {reason}", task=self.schema.task,
                                     params=int(known["params"]))

    def measure(self, genome: Sequence[int], result: EvalResult) -> dict[str, float]:
        """Every objective and constrained quantity of one candidate: NaN if it failed; for
        one skipped as infeasible, only those known before training."""
        if result.status == "failed":
            return {q: math.nan for q in self.quantities}
        values: dict[str, float] = {}
        by_name = {o.name: o for o in self.objectives}
        for q in self.quantities:
            if q in STRUCTURAL:
                values[q] = float(result.params) if q == "params" and result.ok \
                    else self._structure(genome)[q]
            elif not result.ok:
                values[q] = math.nan
            elif q in ("val_accuracy", "val_loss", "val_mae"):
                values[q] = float(getattr(result, q))
            else:
                model = self.schema.build_model(genome).eval()
                values[q] = float(by_name[q].fn(result, model))
        return values

    def vector(self, values: dict[str, float]) -> np.ndarray:
        """The objective values in order (what NSGA-II is told)."""
        return np.array([values.get(n, math.nan) for n in self.names], dtype=np.float64)

    def violation(self, values: dict[str, float], known_only: bool = False) -> float:
        """Total constraint violation (0: feasible; inf: a quantity could not be measured).
        ``known_only``: over the quantities measured (a candidate never trained)."""
        return float(sum(c.violation(values.get(c.quantity, math.nan))
                         for c in self.constraints
                         if not known_only or not math.isnan(values.get(c.quantity, math.nan))))

    def annotate(self, record: dict[str, Any], genome: Sequence[int],
                 result: EvalResult | dict[str, Any]) -> None:
        """Put the objective values and violation (None for NaN) into a log record; a cached
        copy (``result`` a record) takes its source's: the same network, the same values."""
        if not isinstance(result, EvalResult):
            record["objectives"], record["violation"] = result.get("objectives"), \
                result.get("violation")
            return
        values = self.measure(genome, result)
        record["objectives"] = {k: None if math.isnan(v) else v for k, v in values.items()}
        violation = self.violation(values, known_only=result.status == "infeasible")
        record["violation"] = violation if math.isfinite(violation) else None

    def _structure(self, genome: Sequence[int]) -> dict[str, float]:
        key = self.schema.key(genome)
        if key not in self._structural:
            out: dict[str, float] = {"params": float(count_params(self.schema, genome))}
            if "flops" in self.quantities:
                out["flops"] = count_macs(self.schema, genome)
            if "latency_ms" in self.quantities:
                out["latency_ms"] = self._latency(genome)
            self._structural[key] = out
        return self._structural[key]

    def _latency(self, genome: Sequence[int]) -> float:
        model = self.schema.build_model(genome).to(self.device).eval()
        x = torch.rand((self.latency_batch, *self.schema.input_shape), device=self.device)
        times = []
        with torch.inference_mode():
            for i in range(self.repeats + 3):
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                start = time.perf_counter()
                model(x)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                if i >= 3:  # the first passes warm up kernels and caches
                    times.append((time.perf_counter() - start) * 1000.0)
        return statistics.median(times)


def _on_meta_or_cpu(schema: Any, genome: Sequence[int], measure: Callable[[nn.Module], float]
                    ) -> float:
    """``measure`` of the genome's untrained network built on the meta device (no memory, no
    compute), or on the CPU for a gene whose modules need real tensors."""
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                model = schema.build_model(genome).eval()
                return measure(model)
        except RuntimeError:
            if device == "cpu":
                raise
    raise AssertionError("unreachable")


def count_params(schema: Any, genome: Sequence[int]) -> int:
    """Parameters of the genome's network, as training counts them, built on the meta device."""
    return int(_on_meta_or_cpu(schema, genome,
                               lambda model: sum(p.numel() for p in model.parameters())))


def count_macs(schema: Any, genome: Sequence[int]) -> float:
    """Multiply-accumulates of one example through the genome's network."""
    def macs(model: nn.Module) -> float:
        x = torch.zeros((1, *schema.input_shape))
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(x)
        return counter.get_total_flops() / 2.0

    return _on_meta_or_cpu(schema, genome, macs)
