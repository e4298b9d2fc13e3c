"""Built-in training genes: each sets one thing about how a candidate trains, and they compose.

Put any number of them in a schema (``training=[OptimizerGene, LearningRateGene, ...]``);
their settings merge, and two genes setting the same thing is an error when the schema is
made. ``optimizer_kwargs`` go to the optimizer the schema's optimizer gene chooses (Adam when
none does); ``overrides`` set `TrainConfig` fields for this candidate only.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .alleles import allele, gene
from .contracts import SCHEDULES

__all__ = ["AugmentGene", "BatchSizeGene", "LabelSmoothingGene", "LearningRateGene",
           "SCHEDULES", "ScheduleGene", "WeightDecayGene"]


@gene
class LearningRateGene:
    """The learning rate as a multiple of the chosen optimizer's default (Adam 1e-3, SGD 1e-2,
    Adadelta 1.0, ...: see ``OPTIMIZERS``), log-spaced around 1, so the same gene suits any
    optimizer. The baseline, scale 1, is the optimizer's default."""

    lr_scale: float = allele([0.1, 0.3, 1.0, 3.0, 10.0], default=1.0)

    slot_name: ClassVar[str] = "lr"

    def optimizer_kwargs(self) -> dict[str, Any]:
        return {"lr_scale": self.lr_scale}


@gene
class WeightDecayGene:
    """Weight decay (L2 for Adam/SGD, decoupled for AdamW)."""

    weight_decay: float = allele([0.0, 1e-5, 1e-4, 5e-4])

    slot_name: ClassVar[str] = "weightdecay"

    def optimizer_kwargs(self) -> dict[str, Any]:
        return {"weight_decay": self.weight_decay}


@gene
class BatchSizeGene:
    """The training batch size (the best one depends on the budget: small batches take more
    optimizer steps per epoch)."""

    batch_size: int = allele([32, 64, 128, 256], default=128)

    slot_name: ClassVar[str] = "batch"

    def overrides(self) -> dict[str, Any]:
        return {"batch_size": self.batch_size}


@gene
class ScheduleGene:
    """The learning-rate schedule over the candidate's epochs: constant, cosine decay to zero,
    or one-cycle (linear warm-up over the first quarter, then cosine decay)."""

    schedule: str = allele(SCHEDULES)

    slot_name: ClassVar[str] = "schedule"

    def overrides(self) -> dict[str, Any]:
        return {"schedule": self.schedule}


@gene
class LabelSmoothingGene:
    """Label smoothing of the training loss (classification only; validation is unsmoothed)."""

    label_smoothing: float = allele([0.0, 0.05, 0.1])

    slot_name: ClassVar[str] = "smoothing"

    def overrides(self) -> dict[str, Any]:
        return {"label_smoothing": self.label_smoothing}


@gene
class AugmentGene:
    """On-device augmentation of training batches (image inputs only): a random translation
    of up to ``shift`` pixels (zero padding, then a crop) and, optionally, a horizontal flip.
    The first choices are off. Applied in the trainer's fast path: batched, no host sync."""

    shift: int = allele([0, 2, 4])
    flip: bool = allele([False, True])

    slot_name: ClassVar[str] = "augment"

    def overrides(self) -> dict[str, Any]:
        return {"augment_shift": self.shift, "augment_flip": self.flip}
