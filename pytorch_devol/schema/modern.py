"""``GenomeSchema.modern``: a search space beyond DEvol's, with defaults a newcomer can use.

DEvol's space fixes 3x3 kernels, has no residual connections, no global pooling, a fixed
learning rate and batch size and no augmentation. This preset searches convolution blocks
(kernel, downsampling, separable), residual blocks, the head's pooling, a dense layer, and the
training genes: optimizer, learning rate, weight decay, batch size, schedule, label smoothing
(classification) and, if asked, augmentation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .blocks import ConvBlockGene, GlobalPoolGene, ResidualBlockGene
from .genes import DenseGene, OptimizerGene
from .training_genes import (
    AugmentGene,
    BatchSizeGene,
    LabelSmoothingGene,
    LearningRateGene,
    ScheduleGene,
    WeightDecayGene,
)

__all__ = ["modern_schema"]


def _positive_ints(values: Sequence[int], what: str) -> tuple[int, ...]:
    values = tuple(values)
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                             for v in values):
        raise ValueError(f"{what} must be positive integers, got {values!r}")
    return values


def modern_schema(
    cls: type,
    input_shape: Sequence[int] = (1, 28, 28),
    n_classes: int = 10,
    max_blocks: int = 4,
    widths: Sequence[int] = (16, 32, 64, 128),
    max_dense_layers: int = 1,
    dense_units: Sequence[int] = (64, 128, 256),
    optimizers: Sequence[str] = ("adam", "adamw", "sgd"),
    augment: bool = False,
    task: str = "classification",
) -> Any:
    """The modern preset (see the module docstring).

    ``max_blocks`` slots of blocks: the first half (rounded up) convolution blocks, the rest
    residual blocks, each optional and ``widths`` wide; then the head's pooling (flatten or
    global average), ``max_dense_layers`` optional dense layers of ``dense_units``, and the
    output layer. ``augment=True`` adds `AugmentGene` (translation, flips). ``n_classes`` is
    the number of outputs for ``task="regression"``. Image inputs only: ``(C, H, W)``.
    """
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"GenomeSchema.modern is for image inputs (C, H, W), got {shape}; "
                         "use GenomeSchema.devol(max_conv_layers=0, ...) for flat features")
    for name, value, minimum in (("max_blocks", max_blocks, 0),
                                 ("max_dense_layers", max_dense_layers, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    widths = _positive_ints(widths, "widths")
    dense_units = _positive_ints(dense_units, "dense_units")
    n_conv = (max_blocks + 1) // 2
    layers = [(ConvBlockGene.with_choices(filters=widths), n_conv),
              (ResidualBlockGene.with_choices(filters=widths), max_blocks - n_conv),
              (GlobalPoolGene, 1),
              (DenseGene.with_choices(units=dense_units, activation=("relu", "gelu"),
                                      dropout=(0.0, 0.1, 0.2, 0.3)), max_dense_layers)]
    training: list[type] = [OptimizerGene.with_choices(optimizer=tuple(optimizers)),
                            LearningRateGene, WeightDecayGene, BatchSizeGene, ScheduleGene]
    if task == "classification":
        training.append(LabelSmoothingGene)
    if augment:
        training.append(AugmentGene)
    return cls([(t, n) for t, n in layers if n], training, shape, n_classes, task)
