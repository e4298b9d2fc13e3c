"""`TrainConfig`: how one candidate is trained (epochs, batch size, early stopping, device...).

Defaults follow DEvol (10 epochs cap, early stopping on validation loss with patience 1) except
the batch size (128 instead of Keras' 32: the same accuracy in a few more epochs and far fewer
optimizer steps, which is what makes GPU training fast; see benchmarks/results).
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs
import numpy as np
import torch

from .._checks import check_int
from ..schema.contracts import TRAINING_FIELDS
from .schedules import SCHEDULES

__all__ = ["TrainConfig", "PRECISIONS", "check_training_genes", "cpu_has_fast_bf16"]

PRECISIONS = ("auto", "fp32", "bf16")
"""``TrainConfig.precision`` values: ``auto`` (bf16 where the device runs it natively),
``fp32``, ``bf16``."""


def cpu_has_fast_bf16() -> bool:
    """True when oneDNN has native bf16 kernels on this CPU (AVX-512 BF16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except Exception:  # private API; absent or changed in some torch builds
        return False


def _int_at_least(minimum: int, optional: bool = False):
    def check(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
        check_int(value, f"TrainConfig.{attribute.name}", minimum, allow_none=optional)
    return check


def _plain_int(value: Any) -> Any:
    """A numpy integer as a plain int (``_int_at_least`` accepts them; ``attrs.asdict`` of the
    config goes to JSON); anything else as is, for the validator to judge."""
    return int(value) if isinstance(value, np.integer) else value


def _check_device(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value == "auto":
        return
    try:
        torch.device(value)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"TrainConfig.device must be 'auto' or a torch device such as 'cpu', "
                         f"'cuda' or 'cuda:1', got {value!r}") from exc


def _check_precision(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in PRECISIONS:
        raise ValueError(f"TrainConfig.precision must be one of {PRECISIONS}, got {value!r}")


def _check_channels_last(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value != "auto" and not isinstance(value, bool):
        raise ValueError(f"TrainConfig.channels_last must be 'auto', True or False, "
                         f"got {value!r}")


def _check_max_seconds(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"TrainConfig.max_seconds must be a positive number or None, "
                         f"got {value!r}")


def _check_smoothing(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1:
        raise ValueError(f"TrainConfig.label_smoothing must be a number in [0, 1), "
                         f"got {value!r}")


# TrainConfig fields a genome's training genes may override (the schema's contract lists
# them too, so a gene is checked when it is declared).
PER_CANDIDATE_FIELDS = TRAINING_FIELDS


@attrs.frozen
class TrainConfig:
    """Training settings shared by every candidate of a search.

    - ``epochs``: maximum epochs; ``patience``: stop after this many epochs without a lower
      validation loss (None: never stop early). The best-validation weights are restored at the
      end when ``restore_best`` (DEvol kept the last weights).
    - ``device``: "auto" (CUDA when available, else CPU) or a torch device string.
    - ``precision``: "auto" (bf16 autocast on CUDA, and on CPUs with native bf16 kernels),
      "fp32" or "bf16". ``channels_last``: "auto" (on CUDA, and on CPU with bf16), True or
      False.
    - ``eval_batch_size``: batch for validation/test (None: 1024 on CPU, 4096 on CUDA).
    - ``max_seconds``: optional wall-clock cap per candidate; training stops there and the
      candidate is scored with what it has (``EvalResult.stop_reason == "max_seconds"``).
    - ``seed``: default seed of `Trainer.evaluate` (model init, dropout, batch order).
    - ``schedule``: the learning rate over the planned steps, "constant", "cosine" or
      "onecycle" (see ``training.schedules``); ``label_smoothing`` of the training loss;
      ``augment_shift`` / ``augment_flip``: on-device translation by up to that many pixels
      and random horizontal flips of image batches (``training.augment``). Usually set per
      candidate by training genes (``PER_CANDIDATE_FIELDS``).
    """

    epochs: int = attrs.field(default=10, converter=_plain_int, validator=_int_at_least(1))
    batch_size: int = attrs.field(default=128, converter=_plain_int,
                                  validator=_int_at_least(1))
    patience: int | None = attrs.field(default=1, converter=_plain_int,
                                       validator=_int_at_least(1, optional=True))
    device: str = attrs.field(default="auto", validator=_check_device)
    seed: int = attrs.field(default=0, converter=_plain_int, validator=_int_at_least(0))
    precision: str = attrs.field(default="auto", validator=_check_precision)
    channels_last: bool | str = attrs.field(default="auto", validator=_check_channels_last)
    eval_batch_size: int | None = attrs.field(default=None, converter=_plain_int,
                                              validator=_int_at_least(1, optional=True))
    max_seconds: float | None = attrs.field(default=None, validator=_check_max_seconds)
    restore_best: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))
    schedule: str = attrs.field(default="constant", validator=attrs.validators.in_(SCHEDULES))
    label_smoothing: float = attrs.field(default=0.0, validator=_check_smoothing)
    augment_shift: int = attrs.field(default=0, converter=_plain_int,
                                     validator=_int_at_least(0))
    augment_flip: bool = attrs.field(default=False,
                                     validator=attrs.validators.instance_of(bool))

    def resolve_device(self) -> torch.device:
        """The torch device to train on; ValueError when CUDA is asked for but absent."""
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        device = torch.device(self.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"TrainConfig.device is {self.device!r} but CUDA is not available "
                             "(use device='auto' or 'cpu')")
        if device.type == "cuda" and device.index is not None and \
                device.index >= torch.cuda.device_count():
            raise ValueError(f"TrainConfig.device is {self.device!r} but only "
                             f"{torch.cuda.device_count()} CUDA device(s) exist")
        return device

    def use_bf16(self, device: torch.device) -> bool:
        """Whether to train under bf16 autocast on ``device``."""
        if self.precision != "auto":
            return self.precision == "bf16"
        if device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return device.type == "cpu" and cpu_has_fast_bf16()

    def use_channels_last(self, device: torch.device) -> bool:
        """Whether image models and batches use the channels_last memory format.

        "auto": on CUDA, and on CPU together with bf16 (oneDNN's bf16 convolutions are faster
        in NHWC; in fp32 it gains nothing on CPU, see benchmarks/results)."""
        if self.channels_last != "auto":
            return bool(self.channels_last)
        return device.type == "cuda" or (device.type == "cpu" and self.use_bf16(device))

    def resolved_eval_batch_size(self, device: torch.device) -> int:
        """Evaluation batch size on ``device``."""
        if self.eval_batch_size is not None:
            return self.eval_batch_size
        return 4096 if device.type == "cuda" else 1024

    def with_overrides(self, overrides: dict[str, Any]) -> TrainConfig:
        """A copy with a genome's training overrides applied. Only ``PER_CANDIDATE_FIELDS``
        may change per candidate; the others (device, precision, channels_last,
        eval_batch_size, seed) are fixed when the Trainer places the data (ValueError)."""
        if not overrides:
            return self
        bad = sorted(set(overrides) - PER_CANDIDATE_FIELDS)
        if bad:
            raise ValueError(f"training overrides may set {sorted(PER_CANDIDATE_FIELDS)} only, "
                             f"not {bad}")
        return attrs.evolve(self, **overrides)


def check_training_genes(schema: Any, config: TrainConfig, limit: int = 4096) -> None:
    """Every combination of ``schema``'s training genes' choices must give a valid
    `TrainConfig` for its data: checked before a search starts, not when a candidate trains
    (spaces with more than ``limit`` combinations are sampled)."""
    slots = [s for s in schema.slots if s.training]
    if not slots:
        return
    choices = [range(len(c)) for s in slots for c in s.choices]
    positions = [i for s in slots for i in range(s.start, s.stop)]
    image = len(schema.input_shape) == 3
    for combo in itertools.islice(itertools.product(*choices), limit):
        vector = np.zeros(len(schema), dtype=np.int64)
        vector[positions] = combo
        overridden = config.with_overrides(schema.training_overrides(vector))
        if (overridden.augment_shift or overridden.augment_flip) and not image:
            raise ValueError(f"augmentation needs image inputs (C, H, W); this data is "
                             f"{schema.input_shape}: drop AugmentGene")
        if overridden.label_smoothing and schema.task != "classification":
            raise ValueError("label smoothing is for classification: drop "
                             "LabelSmoothingGene from a regression schema")
