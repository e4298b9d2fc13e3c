"""``GenomeSchema``: the flat integer layout of a search space and its compiler to nn.Sequential.

A schema is an ordered list of slots (gene types, repeatable), any number of training genes
and a head. Position ``i`` of a genome vector holds an index in ``0..cardinalities[i]-1``;
that vector is all the evolution engine ever sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import numpy as np
import torch
from torch import nn

from .._checks import check_int, make_rng
from .alleles import check_registered, gene_choices, index_of, is_gene, slot_prefix
from .contracts import is_training_gene
from .errors import InvalidGenomeError
from .genes import flat_size
from .registry import make_optimizer
from .spec import portable, restore, schema_from_spec, schema_to_spec

__all__ = ["GenomeSchema", "Part", "Slot"]

TASKS = ("classification", "regression")


@attrs.frozen
class Slot:
    """One gene in the layout: its name (``conv2d0``), type and first position."""

    name: str
    gene_type: type
    start: int
    fields: tuple[str, ...]
    choices: tuple[tuple[Any, ...], ...]
    training: bool = False

    @property
    def stop(self) -> int:
        return self.start + len(self.fields)

    @property
    def optional(self) -> bool:
        return "active" in self.fields


@attrs.frozen
class Part:
    """One slot of a built network: the slot's name, its gene values (its positions of the
    genome), the input shape it was built for and its modules, in `build_model`'s order."""

    slot: str
    values: tuple[int, ...]
    input_shape: tuple[int, ...]
    modules: tuple[nn.Module, ...] = attrs.field(eq=False, repr=False)


class GenomeSchema:
    """A search space: layer slots, training genes and a classifier/regressor head.

    ``layers`` is a list of ``(gene_type, slots)`` pairs (a bare gene type means one slot).
    ``training`` is a training gene type, a list of them, or None (Adam, `TrainConfig` as
    given). Their settings merge (see ``schema.contracts``): at most one chooses the
    optimizer, and two setting the same key is a ValueError here. ``schema.training`` is the
    tuple of training gene types.
    """

    def __init__(
        self,
        layers: Iterable[type | tuple[type, int]],
        training: type | Sequence[type] | None = None,
        input_shape: Sequence[int] = (1, 28, 28),
        n_outputs: int = 10,
        task: str = "classification",
    ):
        self.layer_groups = tuple(self._check_group(g) for g in layers)
        self.training = self._check_training(training)
        self.input_shape = self._check_shape(input_shape)
        self.task = task
        self.n_outputs = n_outputs
        if task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")
        if isinstance(n_outputs, bool) or not isinstance(n_outputs, (int, np.integer)):
            raise ValueError(f"n_outputs must be an integer (the head's size), got {n_outputs!r}")
        if n_outputs < (2 if task == "classification" else 1):
            raise ValueError(
                f"n_outputs={n_outputs} leaves no usable head: classification needs >= 2 "
                "classes, regression >= 1 target"
            )
        self.slots = self._layout()
        self.cardinalities = np.array([len(c) for s in self.slots for c in s.choices], np.int64)
        self.cardinalities.setflags(write=False)
        self.column_names = [f"{s.name}.{f}" for s in self.slots for f in s.fields]

    # -- construction -------------------------------------------------------------------------
    @staticmethod
    def _check_group(group: Any) -> tuple[type, int]:
        gene_type, count = (group, 1) if isinstance(group, type) else tuple(group)
        if not is_gene(gene_type) or not hasattr(gene_type, "build"):
            raise TypeError(f"layer gene types need @gene and a build() method, got {gene_type!r}")
        return gene_type, check_int(count, f"slot count for {gene_type.__name__}", 0)

    @staticmethod
    def _check_training(training: Any) -> tuple[type, ...]:
        genes = () if training is None else (training,) if isinstance(training, type) \
            else tuple(training)
        for t in genes:
            if not is_gene(t) or not is_training_gene(t):
                raise TypeError(f"training genes need @gene and make_optimizer(), "
                                f"optimizer_kwargs() or overrides(): {t!r}")
        choosers = [t.__name__ for t in genes if callable(getattr(t, "make_optimizer", None))]
        if len(choosers) > 1:
            raise ValueError(f"more than one training gene chooses the optimizer: {choosers}")
        setters: dict[str, str] = {}
        for t in genes:
            instance = t(**{f: c[0] for f, c in gene_choices(t).items()})
            for method in ("optimizer_kwargs", "overrides"):
                if callable(getattr(t, method, None)):
                    for key in getattr(instance, method)():
                        if key in setters:
                            raise ValueError(f"training genes {setters[key]} and {t.__name__} "
                                             f"both set {key!r}; keep one")
                        setters[key] = t.__name__
        return genes

    @staticmethod
    def _check_shape(shape: Sequence[int]) -> tuple[int, ...]:
        shape = tuple(shape)
        if not shape or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
            raise ValueError(f"input_shape must be positive ints, e.g. (1, 28, 28): {shape!r}")
        return tuple(int(d) for d in shape)

    def _layout(self) -> tuple[Slot, ...]:
        slots, start, counters = [], 0, {}
        groups = [(t, n, False) for t, n in self.layer_groups]
        groups += [(t, 1, True) for t in self.training]
        names: set[str] = set()
        for gene_type, count, training in groups:
            check_registered(gene_type)
            choices = gene_choices(gene_type)
            prefix = slot_prefix(gene_type)
            for _ in range(count):
                if training:
                    name = prefix
                    if name in names:
                        raise ValueError(f"two training genes would both be named {name!r}; "
                                         "a schema takes each training gene once")
                    names.add(name)
                else:
                    name = f"{prefix}{counters.get(prefix, 0)}"
                    counters[prefix] = counters.get(prefix, 0) + 1
                slots.append(Slot(name, gene_type, start, tuple(choices),
                                  tuple(choices.values()), training))
                start += len(choices)
        return tuple(slots)

    # -- layout -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.cardinalities)

    def __repr__(self) -> str:
        groups = ", ".join(f"({t.__name__}, {n})" for t, n in self.layer_groups)
        train = [t.__name__ for t in self.training]
        return (f"GenomeSchema(layers=[{groups}], training={train}, "
                f"input_shape={self.input_shape}, n_outputs={self.n_outputs}, task={self.task!r})")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GenomeSchema) and self.__reduce__()[1] == other.__reduce__()[1]

    def __hash__(self) -> int:
        return hash(repr(self))

    def random(self, rng: np.random.Generator | int | None = None, size: int | None = None):
        """A uniformly random genome (or ``size`` of them as an (n, L) array)."""
        shape = (len(self),) if size is None else (size, len(self))
        return make_rng(rng).integers(0, self.cardinalities, size=shape, dtype=np.int64)

    # -- checking -----------------------------------------------------------------------------
    def validate(self, vector: Any) -> np.ndarray:
        """Return ``vector`` as an int64 array, or raise InvalidGenomeError saying what is wrong."""
        if isinstance(vector, torch.Tensor):
            vector = vector.detach().cpu().numpy()
        arr = np.asarray(vector)
        if arr.ndim != 1:
            raise InvalidGenomeError(f"a genome is a 1-D vector; got shape {arr.shape}")
        if len(arr) != len(self):
            raise InvalidGenomeError(f"genome has length {len(arr)}, this schema needs {len(self)}")
        if arr.dtype == object:
            bad = [i for i, v in enumerate(arr)
                   if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
            if bad:
                i = bad[0]
                raise InvalidGenomeError(
                    f"position {i} ({self.column_names[i]}) = {arr[i]!r} is not an integer")
            arr = arr.astype(np.int64)
        elif arr.dtype.kind not in "iu":
            raise InvalidGenomeError(f"a genome holds integers; got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        bad = np.flatnonzero((arr < 0) | (arr >= self.cardinalities))
        if bad.size:
            i = int(bad[0])
            raise InvalidGenomeError(
                f"position {i} ({self.column_names[i]}) = {arr[i]} is outside the allowed "
                f"range 0..{self.cardinalities[i] - 1}")
        return arr

    # -- genes <-> vector ---------------------------------------------------------------------
    def decode(self, vector: Any) -> tuple[Any, ...]:
        """Gene instances, one per slot (the training gene last)."""
        arr = self.validate(vector)
        return tuple(
            s.gene_type(**{f: c[arr[s.start + j]] for j, (f, c) in enumerate(zip(s.fields,
                                                                              s.choices))})
            for s in self.slots)

    def encode(self, genes: Sequence[Any]) -> np.ndarray:
        """The genome vector of a sequence of gene instances (inverse of ``decode``)."""
        genes = list(genes)
        if len(genes) != len(self.slots):
            raise InvalidGenomeError(f"expected {len(self.slots)} genes (one per slot), "
                                     f"got {len(genes)}")
        out = np.zeros(len(self), np.int64)
        for s, g in zip(self.slots, genes):
            base = getattr(s.gene_type, "__derived_from__", (s.gene_type,))[0]
            if not isinstance(g, base):
                raise InvalidGenomeError(f"slot {s.name} needs a {s.gene_type.__name__}, "
                                         f"got {type(g).__name__}")
            for j, (f, choices) in enumerate(zip(s.fields, s.choices)):
                k = index_of(choices, getattr(g, f))
                if k is None:
                    raise InvalidGenomeError(f"{s.name}.{f} = {getattr(g, f)!r} is not one of "
                                             f"{list(choices)}")
                out[s.start + j] = k
        return out

    def is_active(self, slot: Slot, arr: np.ndarray) -> bool:
        """False for an optional slot whose ``active`` allele is off."""
        if not slot.optional:
            return True
        j = slot.fields.index("active")
        return bool(slot.choices[j][arr[slot.start + j]])

    def canonical(self, vector: Any) -> np.ndarray:
        """The vector with every position that cannot change the network set to 0.

        Genomes that differ only inside inactive slots share one canonical form (and so one
        cache key). Idempotent.
        """
        arr = self.validate(vector).copy()
        for s in self.slots:
            if not self.is_active(s, arr):
                j = s.fields.index("active")
                active = arr[s.start + j]
                arr[s.start:s.stop] = 0
                arr[s.start + j] = active
        return arr

    def key(self, vector: Any) -> tuple[int, ...]:
        """A hashable cache key: the canonical vector as a tuple."""
        return tuple(int(v) for v in self.canonical(vector))

    # -- compiling ----------------------------------------------------------------------------
    def build_model(self, vector: Any) -> nn.Sequential:
        """Compile a genome to ``nn.Sequential`` ending in the head (logits or raw outputs).

        Raises `InvalidGenomeError` when a gene cannot take its input shape; any other
        exception from a gene's ``build`` is a bug in the gene and propagates unchanged.
        """
        return nn.Sequential(*(m for part in self.build_parts(vector) for m in part.modules))

    def build_parts(self, vector: Any) -> list[Part]:
        """The network slot by slot: each active layer slot's modules with the shape they take,
        then the head (slot ``"head"``). `build_model` chains them; heredity matches them."""
        arr = self.validate(vector)
        parts: list[Part] = []
        shape = self.input_shape
        for s, g in zip(self.slots, self.decode(arr)):
            if s.training or not self.is_active(s, arr):
                continue
            try:
                new, out = g.build(shape)
            except InvalidGenomeError as err:  # the gene's "I cannot take this shape"
                raise InvalidGenomeError(
                    f"gene {type(g).__name__} in slot {s.name} cannot accept input shape "
                    f"{shape}: {err}") from err
            # Anything else a gene raises is a bug in it, and propagates as it is.
            out = tuple(int(d) for d in out)
            if not out or min(out) <= 0:
                raise InvalidGenomeError(f"gene {type(g).__name__} in slot {s.name} produced "
                                         f"an empty output shape {out} from {shape}")
            parts.append(Part(s.name, tuple(int(v) for v in arr[s.start:s.stop]), shape,
                              tuple(new)))
            shape = out
        head = ([nn.Flatten()] if len(shape) > 1 else []) + \
            [nn.Linear(flat_size(shape), self.n_outputs)]
        parts.append(Part("head", (self.n_outputs,), shape, tuple(head)))
        return parts

    def describe(self, vector: Any) -> list[str]:
        """One readable line per active slot (and the head), for logs and ``show``."""
        arr = self.validate(vector)
        lines = []
        for s, g in zip(self.slots, self.decode(arr)):
            if not self.is_active(s, arr):
                continue
            args = ", ".join(f"{f}={getattr(g, f)!r}" for f in s.fields if f != "active")
            lines.append(f"{s.name}: {s.gene_type.__name__}({args})")
        lines.append(f"head: Linear(-> {self.n_outputs}, {self.task})")
        return lines

    def make_optimizer(self, vector: Any, params: Iterable[torch.Tensor],
                       device: torch.device | str | None = None) -> torch.optim.Optimizer:
        """The genome's optimizer: its optimizer gene's choice (Adam when none chooses), with
        the merged ``optimizer_kwargs`` of its training genes (learning rate, decay...)."""
        genes = self._training_genes(vector)
        hparams = self._merged(genes, "optimizer_kwargs")
        chooser = next((g for g in genes if callable(getattr(g, "make_optimizer", None))), None)
        if chooser is None:
            return make_optimizer("adam", params, device, **hparams)
        return chooser.make_optimizer(params, device, **hparams) if hparams else \
            chooser.make_optimizer(params, device)

    def training_overrides(self, vector: Any) -> dict[str, Any]:
        """`TrainConfig` fields the training genes choose (their merged ``overrides()``)."""
        return self._merged(self._training_genes(vector), "overrides")

    def _training_genes(self, vector: Any) -> list[Any]:
        if not self.training:
            return []
        return list(self.decode(vector)[-len(self.training):])

    @staticmethod
    def _merged(genes: list[Any], method: str) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for g in genes:
            if callable(getattr(g, method, None)):
                values = dict(getattr(g, method)())
                clash = sorted(set(values) & set(merged))
                if clash:
                    raise ValueError(f"training genes set {clash} twice ({type(g).__name__})")
                merged.update(values)
        return merged

    # -- saving -------------------------------------------------------------------------------
    def to_spec(self) -> dict[str, Any]:
        """A JSON-serialisable description (gene types by importable name)."""
        return schema_to_spec(self)

    @classmethod
    def from_spec(cls, spec: dict[str, Any],
                  gene_modules: Iterable[str] | None = None) -> GenomeSchema:
        """Rebuild a schema written by ``to_spec``. Gene types resolve only to known ones (see
        ``pytorch_devol.schema.spec``); ``gene_modules`` are modules you trust to define the
        rest, imported first."""
        return schema_from_spec(cls, spec, gene_modules)

    def __reduce__(self):
        # Gene types made by with_choices cannot be pickled by name: send (base, overrides).
        layers = [(portable(t), n) for t, n in self.layer_groups]
        training = [portable(t) for t in self.training]
        return (_rebuild, (layers, training, self.input_shape, self.n_outputs, self.task))

    @classmethod
    def devol(cls, **kwargs: Any) -> GenomeSchema:
        """DEvol's search space, from GenomeHandler's keyword arguments (see ``devol_schema``)."""
        from .devol import devol_schema

        return devol_schema(cls, **kwargs)

    @classmethod
    def modern(cls, **kwargs: Any) -> GenomeSchema:
        """Modern blocks, the head's pooling and training genes (see ``modern_schema``)."""
        from .modern import modern_schema

        return modern_schema(cls, **kwargs)


def _rebuild(layers, training, input_shape, n_outputs, task) -> GenomeSchema:
    return GenomeSchema([(restore(*t), n) for t, n in layers],
                        [restore(*t) for t in training], input_shape, n_outputs, task)
