"""The keyword arguments strategies took before operators were objects, kept as deprecated
aliases: each sets one parameter of the matching operator (``tournament_size=5`` is
``Tournament(k=5)``'s ``k``), so old code and saved ``strategy_options`` still work.
"""

from __future__ import annotations

import warnings
from typing import Any

import attrs

from .selection import FitnessProportional, Tournament, Truncation
from .variation import DevolMutation, PointMutation, RateMutation, SinglePoint, Uniform

__all__ = ["GA_KEYWORDS", "RE_KEYWORDS", "apply_legacy"]

# keyword -> (role, operator class it parametrises, field)
_CLASS_KEYWORDS: dict[str, tuple[str, type, str]] = {
    "selection_floor": ("selection", FitnessProportional, "floor"),
    "tournament_size": ("selection", Tournament, "k"),
    "truncation_fraction": ("selection", Truncation, "fraction"),
    "allow_parent_copies": ("crossover", SinglePoint, "allow_copies"),
    "uniform_probability": ("crossover", Uniform, "p"),
}
# keyword -> field of whichever mutation operator has it
_MUTATION_KEYWORDS = {
    "mutation_base": "base", "mutation_divisor": "divisor", "min_mutations": "minimum",
    "n_mutations": "count", "force_change": "force_change",
    "distinct_positions": "distinct", "mutable_positions": "mutable",
}
GA_KEYWORDS = frozenset({*_CLASS_KEYWORDS, "mutation_base", "mutation_divisor", "min_mutations",
                         "mutation_rate", "force_change", "distinct_positions",
                         "mutable_positions"})
RE_KEYWORDS = frozenset({"n_mutations", "mutation_rate", "force_change", "mutable_positions"})
_NONE_MEANS_UNSET = ("mutation_rate", "mutable_positions")


def _evolve(op: Any, field: str, key: str, value: Any) -> Any:
    try:
        return attrs.evolve(op, **{field: value})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{key}={value!r}: {exc}") from None


def _conflict(key: str, role: str, op: Any) -> TypeError:
    return TypeError(f"{key}= cannot be combined with the {role} operator {op!r}: set the "
                     "parameter on the operator itself")


def apply_legacy(options: dict[str, Any], allowed: frozenset[str], owner: str,
                 operators: dict[str, tuple[Any, bool]], stacklevel: int = 3) -> dict[str, Any]:
    """Operators by role after applying deprecated keywords.

    ``operators`` maps a role to ``(operator, given)``; a keyword for an operator the caller
    gave explicitly is a TypeError, one for a built-in default of another type is ignored
    (as it was before), an unknown keyword is a TypeError.
    """
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"{owner}() got an unexpected keyword argument {unknown[0]!r}")
    ops = {role: op for role, (op, _) in operators.items()}
    given = {role: g for role, (_, g) in operators.items()}
    options = {k: v for k, v in options.items() if not (v is None and k in _NONE_MEANS_UNSET)}
    if not options:
        return ops
    warnings.warn(f"{owner}: the keywords {', '.join(sorted(options))} are deprecated; pass "
                  "operator objects instead (selection=, crossover=, mutation=; e.g. "
                  "Tournament(k=5), Uniform(p=0.5), DevolMutation(mutable=...), RateMutation(0.1))",
                  DeprecationWarning, stacklevel=stacklevel)
    for key, (role, cls, field) in _CLASS_KEYWORDS.items():
        if key in options:
            if type(ops[role]) is cls:
                ops[role] = _evolve(ops[role], field, key, options[key])
            elif given[role]:
                raise _conflict(key, role, ops[role])
            else:  # not used by this operator (as before), but a bad value is still an error
                _evolve(cls(), field, key, options[key])
    if "mutation" not in ops:
        return ops
    mutation_keys = [k for k in options if k in _MUTATION_KEYWORDS or k == "mutation_rate"]
    if mutation_keys and given["mutation"]:
        raise _conflict(mutation_keys[0], "mutation", ops["mutation"])
    if "mutation_rate" in options:
        old = ops["mutation"]
        try:
            ops["mutation"] = RateMutation(options["mutation_rate"],
                                           force_change=getattr(old, "force_change", True),
                                           mutable=getattr(old, "mutable", None))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"mutation_rate={options['mutation_rate']!r}: {exc}") from None
    for key, field in _MUTATION_KEYWORDS.items():
        op = ops["mutation"]
        if key not in options:
            continue
        if attrs.has(type(op)) and field in attrs.fields_dict(type(op)):
            ops["mutation"] = _evolve(op, field, key, options[key])
        else:  # not used by this operator (as before), but a bad value is still an error
            _evolve(PointMutation() if field == "count" else DevolMutation(), field, key,
                    options[key])
    return ops
