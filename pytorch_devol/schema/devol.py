"""DEvol's search space and its genome encoding (for the CSV and the compatibility layer).

DEvol stores allele *values* in its genome (64 filters, dropout 0..10 meaning 0..0.5, an index
for the activation and the optimizer); we store indices. ``to_devol``/``from_devol`` convert.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._checks import DEVOL_ACTIVATIONS, DEVOL_OPTIMIZERS, check_int
from .alleles import base_gene_type, index_of
from .errors import InvalidGenomeError
from .genes import DEVOL_DROPOUTS, Conv2dGene, DenseGene, OptimizerGene
from .training_genes import BatchSizeGene, LearningRateGene, ScheduleGene, WeightDecayGene

__all__ = ["DEVOL_ACTIVATIONS", "DEVOL_OPTIMIZERS", "DEVOL_TRAINING_GENES", "devol_columns",
           "devol_schema", "from_devol", "to_devol"]

DEVOL_TRAINING_GENES = (LearningRateGene, WeightDecayGene, BatchSizeGene, ScheduleGene)
"""The training genes ``GenomeSchema.devol(..., training_genes=True)`` adds after DEvol's
optimizer gene: learning rate, weight decay, batch size and schedule (``--space
devol+training``)."""

_PREFIX = {Conv2dGene: "Conv", DenseGene: "Dense"}


def _powers_of_two(lowest: int, highest: int, what: str) -> list[int]:
    highest = check_int(highest, what)
    # DEvol crashed when the maximum was below its smallest power; we offer the maximum alone.
    values = [2**i for i in range(int(math.log2(lowest)), int(math.log2(highest)) + 1)]
    return values or [int(highest)]


def _channels_first(shape: Sequence[int]) -> tuple[int, ...]:
    shape = tuple(int(d) for d in shape)
    if len(shape) == 3 and shape[-1] <= 4 < shape[0]:  # DEvol/Keras wrote (28, 28, 1)
        return (shape[2], shape[0], shape[1])
    return shape


def devol_schema(
    cls: type,
    max_conv_layers: int = 6,
    max_dense_layers: int = 4,
    max_filters: int = 256,
    max_dense_nodes: int = 1024,
    input_shape: Sequence[int] = (1, 28, 28),
    n_classes: int = 10,
    batch_normalization: bool = True,
    dropout: bool = True,
    max_pooling: bool = True,
    optimizers: Sequence[str] | None = None,
    activations: Sequence[str] | None = None,
    task: str = "classification",
    training_genes: bool = False,
) -> Any:
    """DEvol's GenomeHandler space: conv slots, ``max_dense_layers - 1`` dense slots (the
    output layer counts, as in DEvol), then the optimizer. Channels-last shapes are accepted.

    ``training_genes=True`` (CLI ``--space devol+training``) adds `DEVOL_TRAINING_GENES`
    after the optimizer: learning rate (a multiple of the optimizer's default), weight decay,
    batch size and schedule. The layers are DEvol's; the CSV then names our columns.

    ``task``: "classification" (DEvol's softmax head of ``n_classes``) or "regression" (a
    linear head of ``n_classes`` outputs; DEvol had none, its users asked for it). The genome
    layout and the CSV columns are the same for both."""
    for name, value in (("max_conv_layers", max_conv_layers),
                        ("max_dense_layers", max_dense_layers)):
        check_int(value, name, 0)
    if max_dense_layers < 1:
        raise ValueError("max_dense_layers counts the output layer, so it must be >= 1")
    acts = list(activations or DEVOL_ACTIVATIONS)
    common = {
        "batch_norm": [False, True] if batch_normalization else [False],
        "activation": acts,
        "dropout": list(DEVOL_DROPOUTS) if dropout else [0.0],
    }
    conv = Conv2dGene.with_choices(
        filters=_powers_of_two(8, max_filters, "max_filters"),
        max_pool=[False, True] if max_pooling else [False], **common)
    dense = DenseGene.with_choices(
        units=_powers_of_two(16, max_dense_nodes, "max_dense_nodes"), **common)
    opt = OptimizerGene.with_choices(optimizer=list(optimizers or DEVOL_OPTIMIZERS))
    if not isinstance(training_genes, bool):
        raise TypeError(f"training_genes must be True or False, got {training_genes!r}")
    training = [opt, *DEVOL_TRAINING_GENES] if training_genes else opt
    return cls(layers=[(conv, max_conv_layers), (dense, max_dense_layers - 1)], training=training,
               input_shape=_channels_first(input_shape), n_outputs=n_classes, task=task)


def _is_devol_layout(schema: Any) -> bool:
    bases = [base_gene_type(t)[0] for t, _ in schema.layer_groups]
    training = [base_gene_type(t)[0] for t in schema.training]
    return training == [OptimizerGene] and bases in ([Conv2dGene, DenseGene], [DenseGene],
                                                   [Conv2dGene])


def devol_columns(schema: Any) -> list[str] | None:
    """DEvol's genome column names (``Conv0 num filters``, ..., ``Optimizer``), or None when
    the schema is not made of DEvol's genes."""
    if not _is_devol_layout(schema):
        return None
    names = []
    for slot in schema.slots:
        if slot.training:
            names.append("Optimizer")
            continue
        prefix = _PREFIX[base_gene_type(slot.gene_type)[0]]
        index = slot.name[len(slot.name.rstrip("0123456789")):]
        names += [f"{prefix}{index} {slot.gene_type.__allele_labels__[f]}" for f in slot.fields]
    return names


def _value_to_devol(field: str, value: Any, choices: tuple) -> int:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if field == "dropout":
        return round(float(value) * 20)
    if isinstance(value, str):
        return index_of(choices, value)
    return int(value)


def to_devol(schema: Any, vector: Any) -> list[int]:
    """DEvol's value genome for one of our index vectors."""
    arr = schema.validate(vector)
    return [_value_to_devol(f, c[arr[s.start + j]], c)
            for s in schema.slots for j, (f, c) in enumerate(zip(s.fields, s.choices))]


def _devol_index(field: str, raw: Any, choices: tuple) -> int | None:
    """Index among ``choices`` of one DEvol gene value, or None when it is not a choice."""
    if isinstance(raw, (bool, np.bool_)) or not isinstance(raw, (int, float, np.number)) or \
            float(raw) != int(raw):
        return None                       # DEvol genes are integers (CSV may write 1.0)
    raw = int(raw)
    if isinstance(choices[0], str):       # activation / optimizer: an index
        return raw if 0 <= raw < len(choices) else None
    if isinstance(choices[0], (bool, np.bool_)):
        allowed = (0, 1, 2) if field == "max_pool" else (0, 1)  # pooling 2 = no pooling
        return index_of(choices, raw == 1) if raw in allowed else None
    return index_of(choices, raw / 20 if field == "dropout" else raw)


def from_devol(schema: Any, genome: Sequence[Any]) -> np.ndarray:
    """Our index vector for a DEvol value genome (DEvol's max pooling 2 meant "no pooling")."""
    genome = list(genome)
    if len(genome) != len(schema):
        raise InvalidGenomeError(f"DEvol genome has length {len(genome)}, expected {len(schema)}")
    out = np.zeros(len(schema), np.int64)
    names = devol_columns(schema) or schema.column_names
    for s in schema.slots:
        for j, (f, choices) in enumerate(zip(s.fields, s.choices)):
            raw, i = genome[s.start + j], s.start + j
            k = _devol_index(f, raw, choices)
            if k is None:
                raise InvalidGenomeError(f"DEvol gene {i} ({names[i]}) = {raw!r} "
                                         f"is not one of this space's choices {list(choices)}")
            out[i] = k
    return out
