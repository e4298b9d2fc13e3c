"""DEvol's ``GenomeHandler``, built on ``GenomeSchema.devol`` and the evolution operators.

It speaks DEvol's genome: a flat list of allele *values* (``[1, 64, 0, 1, 5, 1, ...]``: active,
filters, batch norm, activation index, dropout/20, max pooling 0/1/2, ..., optimizer index),
while the search space, the network compiler and the mutation operator are the package's own
(``handler.schema`` is the ``GenomeSchema``; ``from_devol``/``to_devol`` convert).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from .._checks import DEVOL_ACTIVATIONS, DEVOL_OPTIMIZERS, check_int, make_rng
from ..evolution import DevolMutation
from ..schema import GenomeSchema, InvalidGenomeError, devol_columns, from_devol, to_devol
from .csvlog import best_row

__all__ = ["DEVOL_ACTIVATIONS", "DEVOL_OPTIMIZERS", "KERAS_OPTIMIZERS", "GenomeHandler"]

KERAS_OPTIMIZERS = {name: f"keras-{name}" for name in DEVOL_OPTIMIZERS}
"""DEvol's optimizer names -> registry entries pinning Keras's defaults (lr, eps, rho)."""
_NO_POOLING = 2  # DEvol's third max-pooling value: it never pooled (same network as 0)


class GenomeHandler:
    """DEvol's search-space object with DEvol's signature, methods and genome format.

    Arguments are DEvol's: ``max_dense_layers`` counts the output layer; ``input_shape`` may be
    channels-last as in Keras (``(28, 28, 1)``) or channels-first; ``optimizers`` and
    ``activations`` are names from ``pytorch_devol.schema.OPTIMIZERS`` / ``ACTIVATIONS``
    (register your own there). Added, keyword-only:

    - ``seed``: int or ``numpy.random.Generator`` for ``generate`` and ``mutate`` (DEvol used
      the unseeded global RNGs; this never touches them).
    - ``keras_optimizers=True``: DEvol's four optimizer names train with Keras's default
      hyper-parameters (the "keras-*" registry entries: e.g. Adam eps 1e-7, RMSprop rho 0.9,
      Adagrad and Adadelta lr 1e-3), as DEvol's models did. False: the package's defaults.
    """

    def __init__(self, max_conv_layers: int, max_dense_layers: int, max_filters: int,
                 max_dense_nodes: int, input_shape: Sequence[int], n_classes: int,
                 batch_normalization: bool = True, dropout: bool = True,
                 max_pooling: bool = True, optimizers: Sequence[str] | None = None,
                 activations: Sequence[str] | None = None, *,
                 seed: int | np.random.Generator | None = None,
                 keras_optimizers: bool = True):
        self.optimizer = list(optimizers or DEVOL_OPTIMIZERS)
        self.activation = list(activations or DEVOL_ACTIVATIONS)
        for kind, names in (("optimizers", self.optimizer), ("activations", self.activation)):
            bad = [n for n in names if not isinstance(n, str)]
            if bad:
                raise TypeError(f"{kind} are registered names (strings), got {bad[0]!r}; "
                                "register a factory in pytorch_devol.schema and pass its name")
        self.keras_optimizers = bool(keras_optimizers)
        names = [KERAS_OPTIMIZERS.get(o, o) if self.keras_optimizers else o
                 for o in self.optimizer]
        self.schema = GenomeSchema.devol(
            max_conv_layers=max_conv_layers, max_dense_layers=max_dense_layers,
            max_filters=max_filters, max_dense_nodes=max_dense_nodes, input_shape=input_shape,
            n_classes=n_classes, batch_normalization=batch_normalization, dropout=dropout,
            max_pooling=max_pooling, optimizers=names, activations=self.activation)
        self.convolution_layers = int(max_conv_layers)
        self.dense_layers = int(max_dense_layers) - 1  # the output layer is not a slot
        self.convolution_layer_size, self.dense_layer_size = 6, 5
        self.input_shape = tuple(int(d) for d in input_shape)
        self.n_classes = int(n_classes)
        self.rng = make_rng(seed)
        self._columns: list[str] = devol_columns(self.schema) or []
        self._pool_positions = {i for i, c in enumerate(self._columns)
                                if c.endswith("max pooling")}

    def __repr__(self) -> str:
        return (f"GenomeHandler(conv={self.convolution_layers}, dense={self.dense_layers}+1, "
                f"genome length {len(self.schema)}, input_shape={self.schema.input_shape}, "
                f"n_classes={self.n_classes})")

    # -- conversion ---------------------------------------------------------------------------
    def to_vector(self, genome: Sequence[Any]) -> np.ndarray:
        """The schema's index vector of a DEvol genome; InvalidGenomeError (a ValueError)
        naming the first gene that is not one of this space's values."""
        try:
            values = list(genome)
        except TypeError:
            raise InvalidGenomeError(f"a DEvol genome is a list of ints, got {genome!r}") from None
        if len(values) != len(self.schema):
            raise InvalidGenomeError(f"DEvol genome has length {len(values)}, this handler "
                                     f"needs {len(self.schema)}")
        ints = []
        for i, v in enumerate(values):
            integral = isinstance(v, numbers.Integral | np.bool_) or (
                isinstance(v, numbers.Real) and float(v).is_integer())
            if not integral:
                raise InvalidGenomeError(f"DEvol gene {i} ({self._columns[i]}) = {v!r} is not "
                                         "an integer")
            ints.append(int(v))
        vector = from_devol(self.schema, ints)
        # from_devol reads any non-1 value of a yes/no gene as "no": insist on a round trip.
        for i, (given, back) in enumerate(zip(ints, to_devol(self.schema, vector))):
            if given != back and not (i in self._pool_positions and given == _NO_POOLING):
                raise InvalidGenomeError(f"DEvol gene {i} ({self._columns[i]}) = {given} is "
                                         "not one of this space's values")
        return vector

    def from_vector(self, vector: Any) -> list[int]:
        """DEvol's value genome of one of the schema's index vectors."""
        return [int(v) for v in to_devol(self.schema, vector)]

    # -- DEvol's methods ----------------------------------------------------------------------
    def genome_representation(self) -> list[str]:
        """DEvol's column names: ``Conv0 active``, ..., ``Dense0 dropout``, ``Optimizer``."""
        return list(self._columns)

    def generate(self) -> list[int]:
        """A random genome (uniform over each gene) with its first layer active, as DEvol.

        DEvol's max pooling had a third value, 2, that never pooled; generated genomes hold 0
        or 1 only (pooling with probability 1/2, not 1/3), and 2 is still accepted as input.
        """
        vector = self.schema.random(self.rng)
        first = self.schema.slots[0]
        if first.optional:
            j = first.fields.index("active")
            vector[first.start + j] = first.choices[j].index(True)
        return self.from_vector(vector)

    def mutate(self, genome: Sequence[Any], num_mutations: int) -> list[int]:
        """A mutated copy of ``genome`` (the argument is not modified, unlike DEvol).

        Changes between 1 and ``num_mutations - 1`` distinct genes (at least 1), each to a
        different value: DEvol drew ``0 .. num_mutations - 1`` changes that could keep the old
        value, so most early calls changed nothing. Any gene may change, ``active`` included
        (DEvol revived a deactivated layer with probability 0.01 and never touched gene 0).
        This is the operator the search's genetic algorithm uses. A max-pooling 2 comes back
        as 0 (the same network).
        """
        num_mutations = check_int(num_mutations, "num_mutations")
        vector = self.to_vector(genome)
        mutation = DevolMutation(base=num_mutations, minimum=1)
        mutated = mutation(self.rng, vector[None, :], self.schema.cardinalities)
        return self.from_vector(mutated[0])

    def decode(self, genome: Sequence[Any]) -> nn.Sequential:
        """The (untrained) network of a genome, as ``nn.Sequential``.

        It takes NCHW float tensors and returns logits (DEvol's Keras model ended in a
        softmax: apply ``.softmax(1)`` for probabilities). Raises InvalidGenomeError, a
        ValueError as in DEvol, naming the bad gene.
        """
        return self.schema.build_model(self.to_vector(genome))

    def is_compatible_genome(self, genome: Sequence[Any]) -> bool:
        """True when ``genome`` is a valid DEvol genome of this handler."""
        try:
            self.to_vector(genome)
        except (InvalidGenomeError, ValueError, TypeError):
            return False
        return True

    def best_genome(self, csv_path: str | os.PathLike[str], metric: str = "accuracy",
                    include_metrics: bool = True) -> list[Any]:
        """The best genome logged in a CSV: DEvol's own or a run directory's ``results.csv``.

        ``metric``: "accuracy" (highest ``Val Accuracy``) or "loss" (lowest ``Val Loss``).
        Returns the genome, followed by ``[loss, accuracy]`` when ``include_metrics``. Failed
        candidates are skipped (ours have no metrics; DEvol's carry its penalty score, which
        under ``metric="loss"`` beat every real model).
        """
        row = best_row(csv_path, self._columns, metric, n_classes=self.n_classes)
        return [*row.genome, row.loss, row.accuracy] if include_metrics else list(row.genome)

    def decode_best(self, csv_path: str | os.PathLike[str],
                    metric: str = "accuracy") -> nn.Sequential:
        """``decode`` of ``best_genome(csv_path, metric)``: an untrained network (the trained
        one is ``DEvol.run``'s return value, or the run directory's ``best.pt``)."""
        return self.decode(self.best_genome(csv_path, metric, include_metrics=False))
