"""`load_saved_data`: rebuild the data a run directory was searched on, from its saved spec.

A run directory is data, never code: its spec is checked against an allow-list of keys and
types, and names only a built-in dataset or a data file (``.npz`` or an image folder), never a
download, a module or anything to unpickle.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pytorch_devol._checks import check_int
from pytorch_devol.training._data_args import fraction_arg
from pytorch_devol.training.datasets import DATASETS, load_dataset
from pytorch_devol.training.files import FILE_SPEC_KEYS, load_spec
from pytorch_devol.training.splits import DataSplits

__all__ = ["DATA_SPEC_KEYS", "check_same_data", "load_saved_data"]

# What a built-in dataset's saved spec may say: load_dataset's arguments minus download.
DATA_SPEC_KEYS = ("name", "root", "val_fraction", "seed", "limit")


def _builtin_arguments(spec: dict[str, Any],
                       root: str | os.PathLike[str] | None) -> dict[str, Any]:
    if set(spec) - set(DATA_SPEC_KEYS):
        raise ValueError(f"the saved dataset spec must have the keys {DATA_SPEC_KEYS} only, "
                         f"got {sorted(spec)}")
    vf = fraction_arg(spec.get("val_fraction", 0.1), "the saved val_fraction")
    seed, limit = check_int(spec.get("seed", 0), "the saved data seed", 0), spec.get("limit")
    if limit is not None and (not isinstance(limit, list) or len(limit) != 2 or not all(
            v is None or (isinstance(v, int) and not isinstance(v, bool)) for v in limit)):
        raise ValueError(f"the saved limit {limit!r} is not [n_train, n_test]")
    saved_root = spec.get("root")
    if saved_root is not None and not isinstance(saved_root, str):
        raise ValueError(f"the saved data root {saved_root!r} is not a path")
    return {"name": spec["name"], "val_fraction": vf, "seed": seed,
            "limit": None if limit is None else tuple(limit),
            "root": os.fspath(root) if root is not None else saved_root}


def load_saved_data(spec: Any, root: str | os.PathLike[str] | None = None) -> DataSplits:
    """The data a saved spec describes. ``root``: where it is now, when it moved (a built-in
    dataset's root folder; a data file's new path, or the folder now holding it)."""
    if not isinstance(spec, dict) or "name" not in spec:
        raise ValueError(f"the saved dataset spec must be a mapping with the keys "
                         f"{DATA_SPEC_KEYS} (or a data file's), got {spec!r}")
    if spec["name"] in DATASETS:
        if root is not None and (spec["name"] == "digits" or Path(root).is_file()):
            raise ValueError(f"the run was searched on the built-in dataset {spec['name']!r}: "
                             + ("it is bundled with scikit-learn, no data path applies"
                                if spec["name"] == "digits" else
                                f"{root} is a file; give the folder holding "
                                f"{spec['name']}'s files (--data-root DIR)"))
        return load_dataset(**_builtin_arguments(spec, root))
    if spec["name"] not in FILE_SPEC_KEYS:
        raise ValueError(f"the saved dataset {spec['name']!r} is not one of "
                         f"{(*DATASETS, *FILE_SPEC_KEYS)}")
    return load_spec(spec, root)


def check_same_data(data: DataSplits, saved: dict[str, Any], run_dir: Any) -> None:
    """Refuse data whose fingerprint differs from the one ``run_dir`` saved (``config.json``'s
    ``data``): a resumed search or a retrain on other data would mix two experiments."""
    now = data.fingerprint()
    if now != saved["fingerprint"]:
        raise ValueError(
            f"the data differs from the data {run_dir} was searched on: fingerprint "
            f"{now[:12]}... against the saved {str(saved['fingerprint'])[:12]}... (saved: "
            f"{saved['summary']}; now: {data.summary()}). The same file with other contents? "
            "Search the new data in a new run directory")
