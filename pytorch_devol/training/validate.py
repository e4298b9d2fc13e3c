"""Turn user data (DEvol's numpy form or PyTorch tensors) into checked `DataSplits`.

Every problem is reported before any training starts, as a ValueError that names the array and
the offending index or value: mismatched lengths, empty parts, NaN/inf, labels that are not
integers or lie outside [0, n_classes), shapes that do not match the schema.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from pytorch_devol.training.splits import TASKS, DataSplits

__all__ = ["as_splits", "check_compatible", "validate_splits", "split_indices"]

_CHANNEL_COUNTS = (1, 2, 3, 4)


def _to_tensor(value: Any, name: str) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    try:
        array = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise ValueError(f"{name} cannot be converted to an array: {exc}") from exc
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{name} must hold numbers, got dtype {array.dtype}")
    return torch.from_numpy(np.ascontiguousarray(array))


def _first_bad(mask: torch.Tensor) -> tuple[int, ...]:
    return tuple(int(i) for i in torch.nonzero(mask)[0])


def _fmt_index(index: tuple[int, ...]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def _check_finite(t: torch.Tensor, name: str) -> None:
    if t.is_floating_point():
        bad = ~torch.isfinite(t)
        if bool(bad.any()):
            idx = _first_bad(bad)
            raise ValueError(
                f"{name} contains {int(bad.sum())} non-finite value(s) (NaN or inf); "
                f"first at {name}{_fmt_index(idx)} = {t[idx].item()}"
            )


def _images_layout(shape: tuple[int, ...], input_shape: tuple[int, ...] | None,
                   name: str) -> str:
    """Decide how to read one example's shape: 'same', 'nhwc' or 'add_channel'."""
    if input_shape is not None:
        if shape == input_shape:
            return "same"
        if len(input_shape) == 3:
            c, h, w = input_shape
            if shape == (h, w, c):
                return "nhwc"
            if c == 1 and shape == (h, w):
                return "add_channel"
        accepted = f"{input_shape}"
        if len(input_shape) == 3:
            accepted += f" or channels-last {(input_shape[1], input_shape[2], input_shape[0])}"
        raise ValueError(f"{name} has examples of shape {shape}, which does not fit the "
                         f"expected input shape {input_shape} (accepted: {accepted})")
    if len(shape) == 3:
        # Channels-last when the last axis looks like channels and the first does not.
        if shape[-1] in _CHANNEL_COUNTS and shape[0] not in _CHANNEL_COUNTS:
            return "nhwc"
        return "same"
    if len(shape) == 2:  # (N, H, W): one grey channel
        return "add_channel"
    if len(shape) == 1:  # (N, F): flat features
        return "same"
    raise ValueError(f"{name} must have shape (N, F), (N, H, W), (N, C, H, W) or "
                     f"(N, H, W, C); got {(-1, *shape)}")


def _convert_x(x: torch.Tensor, layout: str, name: str) -> torch.Tensor:
    if x.dim() < 2:
        raise ValueError(f"{name} must have a batch axis and at least one feature axis, "
                         f"got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.to(torch.float32).div_(255.0)
    elif x.dtype == torch.bool or not x.is_floating_point():
        x = x.to(torch.float32)
    elif x.dtype != torch.float32:
        x = x.to(torch.float32)
    if layout == "nhwc":
        x = x.permute(0, 3, 1, 2)
    elif layout == "add_channel":
        x = x.unsqueeze(1)
    return x.contiguous()


def _is_one_hot(y: torch.Tensor) -> bool:
    if y.dim() != 2 or y.shape[1] < 2 or y.shape[0] == 0:
        return False
    yf = y.to(torch.float64)
    return bool(((yf == 0) | (yf == 1)).all()) and bool((yf.sum(dim=1) == 1).all())


def _infer_task(ys: Sequence[torch.Tensor]) -> str:
    y = ys[0]
    if _is_one_hot(y) or y.dtype == torch.bool or not y.is_floating_point():
        return "classification"
    return "regression"


def _convert_y_classification(y: torch.Tensor, name: str) -> torch.Tensor:
    if _is_one_hot(y):
        return y.argmax(dim=1).to(torch.int64)
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise ValueError(f"{name} must be class indices of shape (N,) or one-hot (N, "
                         f"n_classes); got shape {tuple(y.shape)}")
    if y.is_floating_point():
        _check_finite(y, name)
        bad = y != torch.round(y)
        if bool(bad.any()):
            i = _first_bad(bad)
            raise ValueError(f"{name} must hold integer class labels; {name}{_fmt_index(i)} "
                             f"= {y[i].item()} is not an integer")
    return y.to(torch.int64)


def _convert_y_regression(y: torch.Tensor, name: str) -> torch.Tensor:
    if y.dim() == 1:
        y = y.unsqueeze(1)
    if y.dim() != 2:
        raise ValueError(f"{name} must be regression targets of shape (N,) or (N, k); got "
                         f"shape {tuple(y.shape)}")
    return y.to(torch.float32).contiguous()


def split_indices(n: int, fraction: float, seed: int,
                  labels: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into (keep, held_out) with ``fraction`` held out.

    Stratified by ``labels`` when given, so every class keeps its share. Both parts are
    non-empty; indices are returned sorted.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {fraction}")
    n_held = int(round(n * fraction))
    if n < 2 or n_held < 1 or n_held >= n:
        raise ValueError(f"cannot hold out a fraction {fraction} of {n} examples and keep both "
                         "parts non-empty")
    rng = np.random.default_rng(seed)
    if labels is None:
        order = rng.permutation(n)
        held = order[:n_held]
    else:
        lab = labels.numpy()
        held_parts = []
        # Round per class, then fix the total so the size is exactly n_held.
        groups = [np.flatnonzero(lab == c) for c in np.unique(lab)]
        for g in groups:
            held_parts.append(rng.permutation(g)[: int(round(len(g) * fraction))])
        held = np.concatenate(held_parts)
        if len(held) != n_held:
            rest = np.setdiff1d(np.arange(n), held)
            if len(held) < n_held:
                held = np.concatenate([held, rng.permutation(rest)[: n_held - len(held)]])
            else:
                held = rng.permutation(held)[:n_held]
    mask = np.zeros(n, dtype=bool)
    mask[held] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def _unpack(data: Any) -> list[tuple[Any, Any]]:
    if not isinstance(data, tuple | list) or len(data) not in (2, 3):
        raise ValueError(
            "data must be a DataSplits, or DEvol's ((x_train, y_train), (x_test, y_test)) "
            "optionally followed by (x_val, y_val); got " + type(data).__name__
            + (f" of length {len(data)}" if isinstance(data, tuple | list) else "")
        )
    pairs = []
    for i, pair in enumerate(data):
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            raise ValueError(f"data[{i}] must be an (x, y) pair")
        pairs.append((pair[0], pair[1]))
    return pairs


def _inputs(xs: list[torch.Tensor], ys: list[torch.Tensor], part_names: list[str],
            in_shape: tuple[int, ...] | None) -> list[torch.Tensor]:
    """The parts' inputs as NCHW float tensors (one layout for all, decided on x_train), after
    checking that every part has examples, as many as labels, and one example shape."""
    for x, y, p in zip(xs, ys, part_names, strict=True):
        if x.dim() == 0 or y.dim() == 0:
            raise ValueError(f"x_{p} and y_{p} must be arrays with a batch axis")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x_{p} has {x.shape[0]} examples but y_{p} has {y.shape[0]}")
        if x.shape[0] == 0:
            raise ValueError(f"the {p} part is empty (x_{p} has 0 examples)")
    shape = tuple(int(d) for d in xs[0].shape[1:])
    layout = _images_layout(shape, in_shape, "x_train")
    for x, p in zip(xs, part_names, strict=True):
        if tuple(x.shape[1:]) != shape:
            raise ValueError(f"x_{p} has examples of shape {tuple(x.shape[1:])} but x_train has "
                             f"{shape}")
    return [_convert_x(x, layout, f"x_{p}") for x, p in zip(xs, part_names, strict=True)]


def _labels(ys: list[torch.Tensor], part_names: list[str], task: str,
            n_outputs: int | None) -> tuple[list[torch.Tensor], int]:
    """The parts' labels (class indices, or float targets of shape (N, outputs)) and the
    number of outputs, inferred where not given and checked against one-hot widths."""
    names = [f"y_{p}" for p in part_names]
    if task != "classification":
        ys = [_convert_y_regression(y, name) for y, name in zip(ys, names, strict=True)]
        return ys, int(ys[0].shape[1]) if n_outputs is None else n_outputs
    widths = {int(raw.shape[1]) for raw in ys if _is_one_hot(raw)}
    ys = [_convert_y_classification(y, name) for y, name in zip(ys, names, strict=True)]
    if len(widths) > 1:
        raise ValueError(f"one-hot labels of different widths {sorted(widths)} across parts")
    if n_outputs is None:
        n_outputs = widths.pop() if widths else int(max(int(y.max()) for y in ys)) + 1
    elif widths and widths != {int(n_outputs)}:
        raise ValueError(f"one-hot labels have {widths.pop()} columns but n_outputs is "
                         f"{n_outputs}")
    return ys, n_outputs


def as_splits(data: Any, *, val_fraction: float = 0.1, seed: int = 0, task: str | None = None,
              input_shape: Sequence[int] | None = None, n_outputs: int | None = None,
              name: str = "custom") -> DataSplits:
    """Convert and validate user data into `DataSplits`.

    ``data`` is a DataSplits (validated, then returned as is) or DEvol's
    ``((x_train, y_train), (x_test, y_test))`` with an optional third ``(x_val, y_val)``, as
    numpy arrays or tensors. Without a validation pair, ``val_fraction`` of the training part is
    held out (seeded, stratified for classification). Channels-last images become NCHW (decided
    by ``input_shape`` when given), (N, H, W) gains a channel axis, uint8 is scaled to [0, 1],
    one-hot labels become class indices. ``task`` defaults to classification for integer or
    one-hot labels and regression for float targets.
    """
    if isinstance(data, DataSplits):
        validate_splits(data)
        return data
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    pairs = _unpack(data)
    part_names = ["train", "test", "val"][: len(pairs)]
    xs = [_to_tensor(x, f"x_{p}") for (x, _), p in zip(pairs, part_names, strict=True)]
    ys = [_to_tensor(y, f"y_{p}") for (_, y), p in zip(pairs, part_names, strict=True)]
    in_shape = tuple(int(d) for d in input_shape) if input_shape is not None else None
    xs = _inputs(xs, ys, part_names, in_shape)
    task = task or _infer_task(ys)
    ys, n_outputs = _labels(ys, part_names, task, n_outputs)

    # Check the parts as the user gave them, so indices in messages are the user's indices.
    for x, y, p in zip(xs, ys, part_names, strict=True):
        _check_part(x, y, p, tuple(xs[0].shape[1:]), task, int(n_outputs))
    if len(pairs) == 3:
        x_val, y_val = xs[2], ys[2]
        x_train, y_train = xs[0], ys[0]
    else:
        strat = ys[0] if task == "classification" else None
        keep, held = split_indices(xs[0].shape[0], val_fraction, seed, strat)
        keep_t, held_t = torch.from_numpy(keep), torch.from_numpy(held)
        x_train, y_train = xs[0][keep_t], ys[0][keep_t]
        x_val, y_val = xs[0][held_t], ys[0][held_t]
    splits = DataSplits(x_train=x_train, y_train=y_train, x_val=x_val, y_val=y_val,
                        x_test=xs[1], y_test=ys[1], task=task, n_outputs=n_outputs, name=name)
    validate_splits(splits)
    if in_shape is not None and splits.input_shape != in_shape:
        raise ValueError(f"data input shape {splits.input_shape} does not match the expected "
                         f"input shape {in_shape}")
    return splits


def _check_part(x: torch.Tensor, y: torch.Tensor, p: str, shape: tuple[int, ...], task: str,
                n_outputs: int) -> None:
    """All checks of one (x, y) part; ``p`` names it in messages (x_<p>, y_<p>)."""
    if x.dim() < 2:
        raise ValueError(f"x_{p} must have shape (N, ...) with at least one feature axis, "
                         f"got {tuple(x.shape)}")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"x_{p} has {x.shape[0]} examples but y_{p} has {y.shape[0]}")
    if x.shape[0] == 0:
        raise ValueError(f"the {p} part is empty (x_{p} has 0 examples)")
    if tuple(x.shape[1:]) != shape:
        raise ValueError(f"x_{p} has examples of shape {tuple(x.shape[1:])} but x_train has "
                         f"{shape}")
    if x.dtype != torch.float32:
        raise ValueError(f"x_{p} must be float32, got {x.dtype} (as_splits converts)")
    _check_finite(x, f"x_{p}")
    if task == "classification":
        if y.dim() != 1 or y.dtype != torch.int64:
            raise ValueError(f"y_{p} must be int64 class indices of shape (N,), got "
                             f"{y.dtype} of shape {tuple(y.shape)} (as_splits converts)")
        bad = (y < 0) | (y >= n_outputs)
        if bool(bad.any()):
            i = _first_bad(bad)
            raise ValueError(f"y_{p}{_fmt_index(i)} = {y[i].item()} is outside "
                             f"[0, {n_outputs}) (n_classes = {n_outputs})")
    else:
        if y.dim() != 2 or y.dtype != torch.float32:
            raise ValueError(f"y_{p} must be float32 targets of shape (N, k), got "
                             f"{y.dtype} of shape {tuple(y.shape)} (as_splits converts)")
        if y.shape[1] != n_outputs:
            raise ValueError(f"y_{p} has {y.shape[1]} target columns but n_outputs is "
                             f"{n_outputs}")
        _check_finite(y, f"y_{p}")


def validate_splits(data: DataSplits) -> None:
    """Check a DataSplits completely; raise ValueError naming the first problem found."""
    for p in ("train", "val", "test"):
        x, y = data.part(p)
        _check_part(x, y, p, data.input_shape, data.task, data.n_outputs)


def check_compatible(data: DataSplits, schema: Any) -> None:
    """Raise ValueError unless ``data`` fits ``schema`` (input shape, task, n_outputs)."""
    want = tuple(int(d) for d in schema.input_shape)
    if data.input_shape != want:
        raise ValueError(f"data examples have shape {data.input_shape} but the schema expects "
                         f"input_shape {want}")
    task = getattr(schema, "task", "classification")
    if data.task != task:
        raise ValueError(f"data is a {data.task} task but the schema is for {task}")
    if data.n_outputs != int(schema.n_outputs):
        what = "classes" if task == "classification" else "targets"
        raise ValueError(f"data has {data.n_outputs} {what} but the schema has n_outputs = "
                         f"{schema.n_outputs}")
