"""`DataSplits`: the three disjoint parts of a dataset (train / validation / test) as tensors.

Fitness is measured on the validation part; the test part is only reported. Keeping all six
tensors in one frozen object lets the trainer move them to the device once and lets a resumed
search check (``fingerprint``) that it was given exactly the same data.
"""

from __future__ import annotations

import hashlib
from typing import Any

import attrs
import torch

from .._checks import check_int

__all__ = ["DataSplits", "TASKS"]

TASKS = ("classification", "regression")
"""The kinds of task a dataset and a schema can be: integer class labels, or float targets."""
_PARTS = ("train", "val", "test")


def _check_task(instance: Any, attribute: attrs.Attribute, value: str) -> None:
    if value not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {value!r}")


def _check_n_outputs(instance: Any, attribute: attrs.Attribute, value: int) -> None:
    check_int(value, "n_outputs")


def _check_tensor(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, torch.Tensor):
        raise ValueError(
            f"DataSplits.{attribute.name} must be a torch.Tensor, got {type(value).__name__} "
            "(use as_splits(...) to convert numpy arrays)"
        )


@attrs.frozen(eq=False)
class DataSplits:
    """Train / validation / test tensors plus what the task is.

    x tensors are float32, shaped (N, C, H, W) for images or (N, F) for flat features; y tensors
    are int64 class indices (N,) for classification or float32 (N, k) for regression.
    Build one with `load_dataset` or `as_splits`; both validate the contents.
    """

    x_train: torch.Tensor = attrs.field(validator=_check_tensor)
    y_train: torch.Tensor = attrs.field(validator=_check_tensor)
    x_val: torch.Tensor = attrs.field(validator=_check_tensor)
    y_val: torch.Tensor = attrs.field(validator=_check_tensor)
    x_test: torch.Tensor = attrs.field(validator=_check_tensor)
    y_test: torch.Tensor = attrs.field(validator=_check_tensor)
    task: str = attrs.field(default="classification", validator=_check_task)
    n_outputs: int = attrs.field(default=10, converter=int, validator=_check_n_outputs)
    name: str = "custom"
    spec: dict[str, Any] | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. (1, 28, 28) or (F,)."""
        return tuple(int(d) for d in self.x_train.shape[1:])

    @property
    def device(self) -> torch.device:
        """Device the tensors live on."""
        return self.x_train.device

    def part(self, which: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(x, y)`` of "train", "val" or "test"."""
        if which not in _PARTS:
            raise ValueError(f"part must be one of {_PARTS}, got {which!r}")
        return getattr(self, f"x_{which}"), getattr(self, f"y_{which}")

    def sizes(self) -> dict[str, int]:
        """Number of examples in each part."""
        return {p: int(self.part(p)[0].shape[0]) for p in _PARTS}

    def summary(self) -> str:
        """One line describing the data, e.g. for logs."""
        s = self.sizes()
        what = f"{self.n_outputs} classes" if self.task == "classification" else (
            f"{self.n_outputs} targets")
        return (
            f"{self.name}: {self.task}, {what}, input {self.input_shape}, "
            f"train {s['train']}, val {s['val']}, test {s['test']} ({self.device})"
        )

    def to(self, device: str | torch.device) -> DataSplits:
        """A copy with every tensor on ``device`` (self when already there)."""
        device = torch.device(device)
        if all(t.device == device for t in self._tensors()):
            return self
        moved = {name: t.to(device) for name, t in zip(self._names(), self._tensors(),
                                                          strict=True)}
        return attrs.evolve(self, **moved)

    def fingerprint(self) -> str:
        """Stable hex digest (SHA-256) of the task, the outputs and all six arrays.

        Independent of the device; equal fingerprints mean equal data, so a resumed search can
        check that it was handed the same dataset.
        """
        digest = hashlib.sha256()
        digest.update(f"{self.task}|{self.n_outputs}".encode())
        for name, tensor in zip(self._names(), self._tensors(), strict=True):
            array = tensor.detach().to("cpu").contiguous().numpy()
            digest.update(f"|{name}|{array.dtype.str}|{array.shape}|".encode())
            digest.update(array.tobytes())
        return digest.hexdigest()

    @staticmethod
    def _names() -> tuple[str, ...]:
        return tuple(f"{xy}_{p}" for p in _PARTS for xy in ("x", "y"))

    def _tensors(self) -> tuple[torch.Tensor, ...]:
        return tuple(getattr(self, n) for n in self._names())
