"""Allele fields and the ``@gene`` decorator: how a gene type declares its choices.

A gene type is a frozen attrs class whose fields are alleles: each field lists the values it may
take. The gene instance holds the chosen *values*; the genome vector holds their *indices*.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from .contracts import check_contract

__all__ = [
    "allele",
    "base_gene_type",
    "check_registered",
    "gene",
    "gene_choices",
    "index_of",
    "is_gene",
    "known_gene_type",
    "slot_prefix",
    "with_choices",
]

_CHOICES = "pytorch_devol_choices"
_LABEL = "pytorch_devol_label"
_REGISTRY = "pytorch_devol_registry"

# Every @gene class by "module:QualName": the only gene types a saved schema may name. A class
# gets here by being defined (its module imported by the program), never by a file's say-so.
_KNOWN_GENE_TYPES: dict[str, type] = {}


def index_of(choices: Sequence[Any], value: Any) -> int | None:
    """Position of ``value`` among ``choices`` (strings match only strings), or None."""
    for i, c in enumerate(choices):
        if isinstance(c, str) != isinstance(value, str):
            continue
        try:
            if bool(c == value):
                return i
        except (TypeError, ValueError):
            continue
    return None


def _in_choices(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    choices = gene_choices(type(instance)).get(attribute.name, ())
    if index_of(choices, value) is None:
        raise ValueError(
            f"{type(instance).__name__}.{attribute.name}={value!r} is not one of {list(choices)}"
        )


def allele(
    choices: Sequence[Any],
    *,
    default: Any = attrs.NOTHING,
    label: str | None = None,
    registry: Any = None,
):
    """An attrs field that may take one of ``choices`` (the genome stores the index).

    ``default`` defaults to the first choice. ``label`` is an optional human name for the
    position (DEvol's CSV names, e.g. ``"num filters"``). ``registry`` (e.g. ``ACTIVATIONS``)
    makes a schema check, before anything trains, that every choice is a registered name.
    """
    choices = tuple(choices)
    if not choices:
        raise ValueError("allele() needs at least one choice")
    if len(set(map(repr, choices))) != len(choices):
        raise ValueError(f"allele() choices must be distinct, got {list(choices)}")
    if default is attrs.NOTHING:
        default = choices[0]
    return attrs.field(
        default=default,
        validator=_in_choices,
        metadata={_CHOICES: choices, _LABEL: label, _REGISTRY: registry},
    )


def gene(cls: type) -> type:
    """Make a class a gene type: a frozen attrs class whose fields are all alleles.

    Layer genes define ``build(self, in_shape) -> (modules, out_shape)``; a field named
    ``active`` (choices False/True) makes the slot optional. Training genes define any of
    ``make_optimizer``, ``optimizer_kwargs`` and ``overrides`` (see ``schema.contracts``). The
    contract is checked now (TypeError naming the class).
    """
    if not attrs.has(cls) or "__attrs_attrs__" not in cls.__dict__:
        cls = attrs.frozen(cls)
    fields = attrs.fields(cls)
    if not fields:
        raise TypeError(f"gene type {cls.__name__} declares no allele fields")
    non_alleles = [f.name for f in fields if _CHOICES not in f.metadata]
    fields = [f for f in fields if _CHOICES in f.metadata]
    choices = {f.name: f.metadata[_CHOICES] for f in fields}
    if "active" in choices and set(map(bool, choices["active"])) - {False, True}:
        raise TypeError(f"{cls.__name__}.active must choose among False/True")
    cls.__allele_choices__ = choices
    cls.__allele_labels__ = {f.name: f.metadata[_LABEL] or f.name for f in fields}
    cls.__allele_registries__ = {
        f.name: f.metadata[_REGISTRY] for f in fields if f.metadata[_REGISTRY] is not None
    }
    cls.with_choices = classmethod(with_choices)
    check_contract(cls, non_alleles)
    _KNOWN_GENE_TYPES[f"{cls.__module__}:{cls.__qualname__}"] = cls
    return cls


def known_gene_type(name: str) -> type | None:
    """The ``@gene`` class registered as ``module:QualName`` (None if none is)."""
    return _KNOWN_GENE_TYPES.get(name)


def is_gene(obj: Any) -> bool:
    """True for a gene type made by ``@gene`` (or derived from one by ``with_choices``)."""
    return isinstance(obj, type) and "__allele_choices__" in dir(obj)


def gene_choices(gene_type: type) -> dict[str, tuple]:
    """Field name -> allowed values, in field order."""
    try:
        return gene_type.__allele_choices__
    except AttributeError:
        raise TypeError(f"{gene_type!r} is not a gene type (decorate it with @gene)") from None


def with_choices(gene_type: type, **choices: Sequence[Any]) -> type:
    """A gene type like ``gene_type`` but with other choices for the named fields.

    The result subclasses the original, so its behaviour (``build``, ...) is unchanged.
    """
    current = dict(gene_choices(gene_type))
    for name, values in choices.items():
        if name not in current:
            raise ValueError(
                f"{gene_type.__name__} has no allele {name!r}; its alleles are {list(current)}"
            )
        values = tuple(values)
        if not values:
            raise ValueError(f"{gene_type.__name__}.{name}: at least one choice is needed")
        if len(set(map(repr, values))) != len(values):
            raise ValueError(f"{gene_type.__name__}.{name}: choices must be distinct: {values}")
        current[name] = values
    base, overrides = base_gene_type(gene_type)
    overrides = {**overrides, **{k: tuple(v) for k, v in choices.items()}}
    new = type(gene_type.__name__, (gene_type,), {"__allele_choices__": current})
    new.__qualname__ = gene_type.__qualname__
    new.__module__ = gene_type.__module__
    new.__derived_from__ = (base, overrides)
    return new


def base_gene_type(gene_type: type) -> tuple[type, dict[str, tuple]]:
    """The ``@gene`` class a type derives from and the choices ``with_choices`` overrode.

    This is how a schema is saved: the base type by importable name plus the overrides.
    """
    return gene_type.__dict__.get("__derived_from__", (gene_type, {}))


def check_registered(gene_type: type) -> None:
    """Raise ValueError if a registry-backed allele lists a name its registry does not know."""
    for name, registry in getattr(gene_type, "__allele_registries__", {}).items():
        for choice in gene_choices(gene_type)[name]:
            registry.get(choice)


def slot_prefix(gene_type: type) -> str:
    """Column prefix of a gene type: ``Conv2dGene`` -> ``conv2d``, ``MyBlock`` -> ``myblock``."""
    name = getattr(gene_type, "slot_name", None) or gene_type.__name__
    if name.endswith("Gene") and len(name) > 4:
        name = name[:-4]
    return name.lower()
