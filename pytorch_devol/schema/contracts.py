"""The gene contracts: what a layer gene and a training gene provide, checked at declaration.

A **layer gene** builds modules from an input shape::

    def build(self, in_shape: tuple[int, ...]) -> tuple[list[nn.Module], tuple[int, ...]]

and raises `InvalidGenomeError` for an input shape it cannot take (the candidate's fault). An
optional allele field ``active`` (False/True) lets a slot be switched off.

A **training gene** provides one or more of::

    def make_optimizer(self, params, device=None, **hparams) -> torch.optim.Optimizer
        # chooses the optimizer (at most one such gene per schema); receives the merged
        # ``optimizer_kwargs`` of every training gene as ``hparams``
    def optimizer_kwargs(self) -> dict   # optimizer hyperparameters: lr_scale, weight_decay...
    def overrides(self) -> dict          # TrainConfig fields: see TRAINING_FIELDS

A schema may hold any number of training genes; their settings merge, and two genes setting
the same key is an error when the schema is made. ``@gene`` checks the contract when the class
is declared: an annotated attribute that is not an allele, a class that is neither kind (or
both), and a ``build`` whose return is not ``(modules, shape)`` are a `TypeError` naming the
class.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import nn

from .errors import InvalidGenomeError

__all__ = ["SCHEDULES", "TRAINING_FIELDS", "LayerGene", "OptimizerChoice", "OptimizerSettings",
           "TrainingGene", "TrainingOverrides", "check_contract", "is_layer_gene",
           "is_training_gene"]

TRAINING_METHODS = ("make_optimizer", "optimizer_kwargs", "overrides")
SCHEDULES = ("constant", "cosine", "onecycle")  # the learning-rate schedules a gene may set
# Kept here so the schema layer can check them without importing training;
# TrainConfig.with_overrides enforces the same list.
TRAINING_FIELDS = frozenset({"epochs", "batch_size", "patience", "max_seconds", "restore_best",
                             "schedule", "label_smoothing", "augment_shift", "augment_flip"})
"""The ``TrainConfig`` fields a training gene's ``overrides()`` may set; the others (device,
precision, seed...) are fixed for the whole search."""
# Input shapes a build() is probed with at declaration (images and flat features).
_PROBE_SHAPES = ((3, 16, 16), (16,))


@runtime_checkable
class LayerGene(Protocol):
    """Builds the modules of one slot from its input shape (see the module docstring)."""

    def build(self, in_shape: tuple[int, ...]) -> tuple[list[nn.Module], tuple[int, ...]]: ...


@runtime_checkable
class OptimizerChoice(Protocol):
    """A training gene that chooses the optimizer (at most one per schema)."""

    def make_optimizer(self, params: Any, device: Any = None,
                       **hparams: Any) -> torch.optim.Optimizer: ...


@runtime_checkable
class OptimizerSettings(Protocol):
    """A training gene that sets optimizer hyperparameters (``lr_scale``, ``weight_decay``)."""

    def optimizer_kwargs(self) -> dict[str, Any]: ...


@runtime_checkable
class TrainingOverrides(Protocol):
    """A training gene that sets `TrainConfig` fields (only ``TRAINING_FIELDS``)."""

    def overrides(self) -> dict[str, Any]: ...


TrainingGene = OptimizerChoice | OptimizerSettings | TrainingOverrides
"""A training gene is any of the three protocols (one gene may provide several):
:class:`OptimizerChoice`, :class:`OptimizerSettings`, :class:`TrainingOverrides`."""


def is_layer_gene(cls: type) -> bool:
    return callable(getattr(cls, "build", None))


def is_training_gene(cls: type) -> bool:
    return any(callable(getattr(cls, m, None)) for m in TRAINING_METHODS)


def _check_build_result(cls: type, result: Any) -> None:
    name = cls.__name__
    if isinstance(result, nn.Module):
        raise TypeError(f"{name}.build() returned a bare module; return ([modules], "
                        "out_shape), e.g. ([nn.Conv2d(...)], (c, h, w))")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise TypeError(f"{name}.build() must return ([modules], out_shape), got "
                        f"{type(result).__name__}")
    modules, shape = result
    if not isinstance(modules, (list, tuple)) or not all(isinstance(m, nn.Module)
                                                        for m in modules):
        raise TypeError(f"{name}.build() must return a list of nn.Module first, got "
                        f"{modules!r:.80}")
    if not isinstance(shape, (tuple, list)) or not all(
            isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise TypeError(f"{name}.build() must return the output shape (a tuple of ints) "
                        f"second, got {shape!r:.80}")


def _probe_build(cls: type) -> None:
    """Build the default instance on a few shapes (meta device): check what it returns.
    Shapes it refuses, and any error (left to the schema's dry run), prove nothing here."""
    try:
        instance = cls()
    except Exception:  # noqa: BLE001 - a field without a usable default: the dry run checks
        return
    for shape in _PROBE_SHAPES:
        try:
            with torch.device("meta"):
                result = instance.build(shape)
        except InvalidGenomeError:
            continue
        except Exception:  # noqa: BLE001 - not this check's business (see above)
            continue
        _check_build_result(cls, result)
        return


def _probe_training(cls: type) -> None:
    try:
        instance = cls()
    except Exception:  # noqa: BLE001 - see _probe_build
        return
    for method in ("optimizer_kwargs", "overrides"):
        if callable(getattr(cls, method, None)):
            try:
                value = getattr(instance, method)()
            except Exception:  # noqa: BLE001 - the dry run reports it with the value
                continue
            if not isinstance(value, dict):
                raise TypeError(f"{cls.__name__}.{method}() must return a dict, got "
                                f"{type(value).__name__}")
            bad = sorted(set(value) - TRAINING_FIELDS) if method == "overrides" else []
            if bad:
                raise TypeError(f"{cls.__name__}.overrides() sets {bad}; a training gene may "
                                f"set only {sorted(TRAINING_FIELDS)}")


def check_contract(cls: type, non_alleles: list[str]) -> None:
    """Raise TypeError, naming ``cls``, if it breaks the gene contract (module docstring)."""
    if non_alleles:
        raise TypeError(
            f"{cls.__name__}.{non_alleles[0]} is annotated but is not an allele: declare its "
            f"choices with allele([...]), or make it a constant with ClassVar[...] (or no "
            "annotation)")
    layer, training = is_layer_gene(cls), is_training_gene(cls)
    if layer and training:
        raise TypeError(f"{cls.__name__} defines build() and a training method "
                        f"({', '.join(TRAINING_METHODS)}); a gene is one or the other")
    if not layer and not training:
        raise TypeError(f"{cls.__name__} defines neither build(self, in_shape) (a layer gene) "
                        f"nor any of {', '.join(TRAINING_METHODS)} (a training gene)")
    if layer:
        _probe_build(cls)
    else:
        _probe_training(cls)
