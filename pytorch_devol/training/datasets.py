"""`load_dataset`: the built-in datasets as checked `DataSplits`.

- "digits": scikit-learn's bundled 8x8 digits (offline everywhere; demos and quick tests).
- "mnist", "fashion-mnist": torchvision's on-disk layout ``<root>/MNIST/raw/*.gz``, read by our
  IDX reader (the same bytes torchvision reads; torchvision is only needed to download).
Validation comes out of the training part (seeded by ``seed``, stratified); the test part is the
official test set (for digits, a stratified 20% hold-out). The test part never depends on
``seed``: the digits hold-out and the ``limit`` subset of the test part use fixed seeds, so runs
with different seeds are scored on the same test examples.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pytorch_devol._checks import check_int
from pytorch_devol.training.idx import find_idx_file, read_idx
from pytorch_devol.training.splits import DataSplits
from pytorch_devol.training.validate import split_indices, validate_splits

__all__ = ["load_dataset", "default_data_root", "DATASETS", "DATA_ENV_VAR"]

DATA_ENV_VAR = "PYTORCH_DEVOL_DATA"
"""The environment variable naming the default data root of ``load_dataset`` (else ``./data``)."""
DIGITS_TEST_FRACTION = 0.2
# Fixed seeds of the test part (the values seed 0 used when they followed the search seed).
DIGITS_TEST_SEED = 1   # which digits are held out for testing
TEST_SUBSET_SEED = 3   # which test examples ``limit`` keeps

# name -> (folder under root, torchvision class name)
_IDX_DATASETS = {
    "mnist": ("MNIST", "MNIST"),
    "fashion-mnist": ("FashionMNIST", "FashionMNIST"),
}
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
DATASETS = ("digits", *_IDX_DATASETS)
"""The built-in dataset names ``load_dataset`` and ``--dataset`` take."""


def default_data_root() -> Path:
    """``$PYTORCH_DEVOL_DATA`` when set, else ``./data``."""
    return Path(os.environ.get(DATA_ENV_VAR) or "data")


def _normalise_limit(limit: Any) -> tuple[int | None, int | None] | None:
    if limit is None:
        return None
    if isinstance(limit, int | np.integer) and not isinstance(limit, bool):
        limit = (int(limit), None)
    if not isinstance(limit, Sequence) or len(limit) != 2:
        raise ValueError(f"limit must be None or (n_train, n_test), got {limit!r}")
    n_train, n_test = (check_int(value, f"each entry of limit {limit!r}", 2,
                                 allow_none=True) for value in limit)
    return n_train, n_test


def _subset(n: int, k: int | None, seed: int, labels: np.ndarray) -> np.ndarray:
    """Seeded, stratified choice of ``k`` of ``n`` indices (all of them when k is None)."""
    if k is None or k >= n:
        return np.arange(n)
    _, chosen = split_indices(n, k / n, seed, torch.from_numpy(labels))
    return chosen


def _digits_table() -> np.ndarray:
    """The 1,797 x 65 table scikit-learn ships (64 pixels 0-16, then the label): read from its
    file, which skips the 3 s that importing sklearn.datasets takes; through load_digits if
    the file is not where it has always been."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    if spec is None:
        raise ImportError("the 'digits' dataset needs scikit-learn: pip install "
                          "'pytorch-devol[digits]'")
    path = Path(spec.origin).parent / "datasets" / "data" / "digits.csv.gz"
    if path.is_file():
        return np.loadtxt(path, delimiter=",", dtype=np.float64)
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target])


def _load_digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits as (x_train, y_train, x_test, y_test): a fixed stratified 20% test hold-out."""
    table = _digits_table()
    x = (table[:, :64].astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = table[:, 64].astype(np.int64)
    train, test = split_indices(len(y), DIGITS_TEST_FRACTION, DIGITS_TEST_SEED,
                                torch.from_numpy(y))
    return x[train], y[train], x[test], y[test]


def _idx_paths(directory: Path) -> dict[str, Path] | None:
    paths = {key: find_idx_file(directory, stem) for key, stem in _IDX_FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    return paths  # type: ignore[return-value]


def _download(name: str, root: Path) -> None:
    try:
        import torchvision.datasets as tvd
    except Exception as exc:  # broken torchvision raises RuntimeError, not ImportError
        raise RuntimeError(
            f"download=True needs a working torchvision to fetch {name!r} "
            f"(import failed: {type(exc).__name__}: {exc}); copy the raw files into "
            f"{root / _IDX_DATASETS[name][0] / 'raw'} instead"
        ) from exc
    cls = getattr(tvd, _IDX_DATASETS[name][1])
    for train in (True, False):
        cls(root=str(root), train=train, download=True)


def _load_idx(name: str, root: Path, download: bool) -> tuple[np.ndarray, ...]:
    directory = root / _IDX_DATASETS[name][0] / "raw"
    paths = _idx_paths(directory)
    if paths is None and download:
        _download(name, root)
        paths = _idx_paths(directory)
    if paths is None:
        missing = [f"{stem}(.gz)" for stem in _IDX_FILES.values()
                   if find_idx_file(directory, stem) is None]
        raise FileNotFoundError(
            f"{name!r} not found: expected the files {', '.join(missing)} in "
            f"{directory.resolve()} (torchvision's layout <root>/{_IDX_DATASETS[name][0]}/raw). "
            f"Pass root=..., set ${DATA_ENV_VAR}, or use download=True where torchvision and a "
            "network are available."
        )
    arrays = {key: read_idx(path) for key, path in paths.items()}
    for part in ("train", "test"):
        x, y = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{name} {part} files disagree: images {x.shape}, labels {y.shape} "
                             f"(in {directory})")
    return (arrays["x_train"], arrays["y_train"].astype(np.int64),
            arrays["x_test"], arrays["y_test"].astype(np.int64))


def load_dataset(name: str, root: str | os.PathLike[str] | None = None,
                 val_fraction: float = 0.1, seed: int = 0, download: bool = False,
                 limit: int | tuple[int | None, int | None] | None = None) -> DataSplits:
    """Load a built-in dataset as validated train / val / test `DataSplits`.

    ``name``: "digits", "mnist" or "fashion-mnist". ``root``: folder holding torchvision's
    layout (default: ``$PYTORCH_DEVOL_DATA`` or ``./data``; unused for digits).
    ``val_fraction`` of the training part becomes the validation part (seeded by ``seed``,
    stratified). ``limit=(n_train, n_test)`` keeps a stratified subset: ``n_train`` examples of
    the training part (before the validation split; seeded by ``seed``) and ``n_test`` of the
    test part; either may be None. ``seed`` never changes the test part (digits' hold-out and
    the ``n_test`` subset use fixed seeds), so searches with different seeds are compared on
    the same test examples. The result's ``spec`` rebuilds it: ``load_dataset(**data.spec)``.
    """
    key = str(name).lower().replace("_", "-")
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    lim = _normalise_limit(limit)
    base = None
    if key == "digits":
        x_tr, y_tr, x_te, y_te = _load_digits()
    else:  # the spec keeps the absolute folder, so a resume elsewhere finds the same files
        base = (Path(root) if root is not None else default_data_root()).resolve()
        x_tr, y_tr, x_te, y_te = _load_idx(key, base, download)
    if lim is not None:
        tr = _subset(len(y_tr), lim[0], seed + 2, y_tr)
        te = _subset(len(y_te), lim[1], TEST_SUBSET_SEED, y_te)
        x_tr, y_tr, x_te, y_te = x_tr[tr], y_tr[tr], x_te[te], y_te[te]
    keep, held = split_indices(len(y_tr), val_fraction, seed, torch.from_numpy(y_tr))

    def images(a: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(a))
        if t.dtype == torch.uint8:
            t = t.to(torch.float32).div_(255.0)
        if t.dim() == 3:
            t = t.unsqueeze(1)
        return t.contiguous()

    spec: dict[str, Any] = {"name": key, "root": None if base is None else str(base),
                            "val_fraction": val_fraction, "seed": seed,
                            "limit": None if lim is None else list(lim)}
    data = DataSplits(
        x_train=images(x_tr[keep]), y_train=torch.from_numpy(y_tr[keep]),
        x_val=images(x_tr[held]), y_val=torch.from_numpy(y_tr[held]),
        x_test=images(x_te), y_test=torch.from_numpy(np.ascontiguousarray(y_te)),
        task="classification", n_outputs=10, name=key, spec=spec,
    )
    validate_splits(data)
    return data
