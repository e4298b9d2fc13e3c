"""Saving a schema as JSON: gene types by name, plus their changed choices.

A run directory stores this so that ``Search.resume``, ``show``, ``plot`` and ``export`` can
rebuild the exact search space. A run directory is data, never code: a name in it resolves
only to a gene type this program already knows (the built-ins, and every ``@gene`` class whose
module is imported), or to one in a module the caller names explicitly (``gene_modules=``,
CLI ``--import MODULE``). Nothing is imported because a file says so.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import Any

from .alleles import base_gene_type, known_gene_type, with_choices

__all__ = ["gene_type_from_name", "gene_type_name", "import_gene_modules", "portable",
           "restore", "schema_from_spec", "schema_to_spec"]


def gene_type_name(gene_type: type) -> str:
    """``module:QualName`` of a gene type's ``@gene`` base class."""
    base, _ = base_gene_type(gene_type)
    if "<locals>" in base.__qualname__:
        raise ValueError(f"gene type {base.__qualname__} is defined inside a function; define it "
                         "at module level so a saved search can find it again")
    return f"{base.__module__}:{base.__qualname__}"


def import_gene_modules(modules: Iterable[str] | None) -> None:
    """Import the modules the caller trusts to define gene types (the caller's choice, as
    with ``torch.serialization.add_safe_globals``); their ``@gene`` classes become known."""
    if modules is None:
        return
    if isinstance(modules, str):
        modules = [modules]
    for name in modules:
        if not isinstance(name, str) or not name:
            raise ValueError(f"gene_modules must be module names, got {name!r}")
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ImportError(f"cannot import gene module {name!r}: {err}") from err


def gene_type_from_name(name: str) -> type:
    """The known gene type called ``name`` (see the module docstring); never imports."""
    if not isinstance(name, str):
        raise ValueError(f"a gene type name must be a string, got {name!r}")
    gene_type = known_gene_type(name)
    if gene_type is None:
        module = name.partition(":")[0]
        raise ValueError(
            f"unknown gene type {name!r}: not built in and not registered by @gene in this "
            f"program; nothing was imported. If you trust it, import its module yourself: "
            f"gene_modules=[{module!r}] (CLI: --import {module})")
    return gene_type


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
    choices = spec.get("choices") or {}
    if not isinstance(choices, dict) or not all(isinstance(v, list) for v in choices.values()):
        raise ValueError(f"choices of {spec.get('type')!r} must map field names to lists")
    return restore(gene_type_from_name(spec["type"]), choices)


def schema_to_spec(schema: Any) -> dict[str, Any]:
    return {
        "layers": [{**_gene_spec(t), "slots": n} for t, n in schema.layer_groups],
        "training": [_gene_spec(t) for t in schema.training],
        "input_shape": list(schema.input_shape),
        "n_outputs": int(schema.n_outputs),
        "task": schema.task,
    }


def schema_from_spec(cls: type, spec: dict[str, Any],
                     gene_modules: Iterable[str] | None = None) -> Any:
    """Rebuild a schema from ``schema_to_spec``'s output, resolving only known gene types."""
    import_gene_modules(gene_modules)
    try:
        layers = [(_gene_from_spec(g), int(g["slots"])) for g in spec["layers"]]
        saved = spec.get("training") or []
        training = [_gene_from_spec(g) for g in ([saved] if isinstance(saved, dict) else saved)]
        return cls(layers, training, tuple(spec["input_shape"]), int(spec["n_outputs"]),
                   spec.get("task", "classification"))
    except KeyError as err:
        raise ValueError(f"schema spec is missing the key {err}") from None
    except (TypeError, AttributeError) as err:
        raise ValueError(f"schema spec is malformed: {err}") from None
