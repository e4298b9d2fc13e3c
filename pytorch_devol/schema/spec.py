"""Saving a schema as JSON: gene types by importable name, plus their changed choices.

A run directory stores this so that ``Search.resume`` (or a worker process) can rebuild the
exact search space, user gene types included, as long as their module is importable.
"""

from __future__ import annotations

import importlib
from typing import Any

from .alleles import base_gene_type, with_choices

__all__ = ["gene_type_from_name", "gene_type_name", "portable", "restore", "schema_from_spec",
           "schema_to_spec"]


def gene_type_name(gene_type: type) -> str:
    """``module:QualName`` of a gene type's ``@gene`` base class."""
    base, _ = base_gene_type(gene_type)
    if "<locals>" in base.__qualname__:
        raise ValueError(f"gene type {base.__qualname__} is defined inside a function; define it "
                         "at module level so a saved search can import it again")
    return f"{base.__module__}:{base.__qualname__}"


def gene_type_from_name(name: str) -> type:
    """Import a gene type written by ``gene_type_name``."""
    module_name, _, qualname = name.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as err:
        raise ValueError(f"cannot import gene type {name!r} ({err}); is its module importable "
                         "(installed or on PYTHONPATH)?") from err
    return obj


def portable(gene_type: type) -> tuple[type, dict[str, tuple]]:
    """(base type, changed choices): what pickle and JSON can carry."""
    return base_gene_type(gene_type)


def restore(base: type, overrides: dict[str, Any]) -> type:
    """Inverse of ``portable``."""
    return with_choices(base, **overrides) if overrides else base


def _gene_spec(gene_type: type) -> dict[str, Any]:
    _, overrides = portable(gene_type)
    return {"type": gene_type_name(gene_type),
            "choices": {k: list(v) for k, v in overrides.items()}}


def _gene_from_spec(spec: dict[str, Any]) -> type:
    return restore(gene_type_from_name(spec["type"]), spec.get("choices") or {})


def schema_to_spec(schema: Any) -> dict[str, Any]:
    return {
        "layers": [{**_gene_spec(t), "slots": n} for t, n in schema.layer_groups],
        "training": _gene_spec(schema.training) if schema.training is not None else None,
        "input_shape": list(schema.input_shape),
        "n_outputs": int(schema.n_outputs),
        "task": schema.task,
    }


def schema_from_spec(cls: type, spec: dict[str, Any]) -> Any:
    try:
        layers = [(_gene_from_spec(g), int(g["slots"])) for g in spec["layers"]]
        training = _gene_from_spec(spec["training"]) if spec.get("training") else None
        return cls(layers, training, tuple(spec["input_shape"]), int(spec["n_outputs"]),
                   spec.get("task", "classification"))
    except KeyError as err:
        raise ValueError(f"schema spec is missing the key {err}") from None
