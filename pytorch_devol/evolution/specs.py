"""Operators as data: JSON specs, the registry of built-in operators, argument resolution.

A spec is ``{"type": NAME, **parameters}``, e.g. ``{"type": "Tournament", "k": 2}``. Strategies
save the specs of their operators in ``state_dict`` and compare them on ``load_state_dict``, and
accept a spec (or a built-in class name such as ``"Tournament"``) wherever they take an operator, so
that a configuration stored as JSON (``Search(strategy_options=...)``) can name operators.
Names resolve through the table below only: nothing is imported or looked up by attribute on
the say-so of a file.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Mapping
from typing import Any

import attrs
import numpy as np

from .operators import (
    DevolMutation,
    FitnessProportional,
    PointMutation,
    RateMutation,
    SinglePoint,
    Tournament,
    Truncation,
    Uniform,
)

__all__ = ["BUILT_IN_OPERATORS", "CALLABLE", "OPERATORS", "operator_from_spec", "operator_spec",
           "resolve_operator"]

OPERATORS: dict[str, dict[str, type]] = {
    "selection": {"FitnessProportional": FitnessProportional, "Tournament": Tournament,
                  "Truncation": Truncation},
    "crossover": {"SinglePoint": SinglePoint, "Uniform": Uniform},
    "mutation": {"DevolMutation": DevolMutation, "PointMutation": PointMutation,
                 "RateMutation": RateMutation},
}
"""Built-in operators by role, under their class name (a spec's ``type``); names resolve through
this table, never by import."""

#: The built-in operator classes.
BUILT_IN_OPERATORS = frozenset(cls for table in OPERATORS.values() for cls in table.values())

#: Placeholder for a parameter that is a function (not data: pass the operator again).
CALLABLE = "<callable>"


def _builtin_name(op: Any) -> str | None:
    for table in OPERATORS.values():
        for name, cls in table.items():
            if type(op) is cls:
                return name
    return None


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, list | tuple | range | np.ndarray):
        return [_json_value(v) for v in value]
    if callable(value):
        return CALLABLE
    return f"<{type(value).__name__}>"


def operator_spec(op: Any) -> dict[str, Any]:
    """JSON description of an operator: its type and, for an attrs class or a dataclass, its
    fields (functions among them as ``"<callable>"``). Equal specs mean the same operator."""
    name = _builtin_name(op)
    if name is None:
        owner = op if hasattr(op, "__qualname__") else type(op)  # a function, or an object
        name = f"{owner.__module__}.{owner.__qualname__}"
    spec: dict[str, Any] = {"type": name}
    if attrs.has(type(op)):
        fields = {f.name: getattr(op, f.name) for f in attrs.fields(type(op))}
    elif dataclasses.is_dataclass(op) and not isinstance(op, type):
        fields = {f.name: getattr(op, f.name) for f in dataclasses.fields(op)}
    else:
        fields = {}
    spec.update({k: _json_value(v) for k, v in fields.items()})
    return spec


def operator_from_spec(spec: str | Mapping[str, Any], role: str) -> Any:
    """A built-in operator from its spec or name, for ``role`` "selection", "crossover" or
    "mutation". Raises ValueError for an unknown name or bad parameters."""
    table = OPERATORS[role]
    if isinstance(spec, str):
        spec = {"type": spec}
    if not isinstance(spec, Mapping) or not isinstance(spec.get("type"), str):
        raise ValueError(f"a {role} spec is a name or a dict with a 'type', got {spec!r}")
    name = spec["type"]
    cls = table.get(name)
    if cls is None:
        raise ValueError(f"unknown {role} {name!r}; built-in ones: {sorted(table)} (or pass an "
                         "operator object)")
    params = {k: v for k, v in spec.items() if k != "type"}
    if CALLABLE in params.values():
        raise ValueError(f"{role} spec {dict(spec)!r} names a function, which data cannot "
                         "restore: pass the operator object itself")
    try:
        return cls(**params)
    except TypeError as exc:
        raise ValueError(f"bad parameters for {name}: {exc}") from None


def resolve_operator(value: Any, role: str, default: Any) -> Any:
    """The operator a strategy argument means: ``None`` gives ``default``; a built-in class
    name or a spec dict the built-in operator; a callable is used as is."""
    if value is None:
        return default
    if isinstance(value, str | Mapping):
        return operator_from_spec(value, role)
    if callable(value):
        return value
    raise TypeError(f"{role} must be an operator (a callable), a built-in name or a spec "
                    f"dict, got {type(value).__name__}")
