"""The user's own data from files, as checked `DataSplits`: an ``.npz`` archive or a folder of
images, with a ``spec`` that rebuilds the same data when a run is resumed.

- ``.npz``: ``x_train, y_train, x_test, y_test`` (optionally ``x_val, y_val``), read without
  pickle (a data file must never run code) and converted by `as_splits`.
- image folder: ``DIR/<class>/<images>`` (test part: a stratified hold-out with a fixed seed)
  or ``DIR/train/<class>/...`` + ``DIR/test/<class>/...`` (+ optional ``DIR/val/...``), the
  same listing rules as torchvision's ``ImageFolder`` (sorted class folders, its extensions),
  hidden files and folders skipped, decoded by Pillow (``pip install 'pytorch-devol[images]'``).

A saved spec is data: `load_spec` checks every key and type against an allow-list per kind.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from pytorch_devol._checks import check_int
from pytorch_devol.training._data_args import fraction_arg, keep_subset, limit_arg
from pytorch_devol.training.imagefolder import load_image_folder
from pytorch_devol.training.splits import TASKS, DataSplits
from pytorch_devol.training.validate import as_splits

__all__ = ["FILE_SPEC_KEYS", "load_data", "load_npz", "load_spec"]

#: The keys a saved spec of each kind has (all of them, nothing else).
FILE_SPEC_KEYS: dict[str, tuple[str, ...]] = {
    "npz": ("name", "path", "task", "val_fraction", "seed", "limit"),
    "folder": ("name", "path", "image_size", "grayscale", "val_fraction", "seed",
               "test_fraction", "limit", "classes"),
}
_NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """The archive's data arrays (never unpickling); every problem a one-line error."""
    if not path.exists():
        raise FileNotFoundError(f"no such data file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a directory, not an .npz file")
    try:
        archive = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path} is not a readable .npz file ({type(exc).__name__}: "
                         f"{exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path} holds one array (.npy), not an .npz archive with "
                         f"{', '.join(_NPZ_KEYS)}")
    with archive:
        have = list(archive.files)
        missing = [k for k in _NPZ_KEYS if k not in have]
        if missing:
            raise ValueError(f"{path} lacks the array(s) {', '.join(missing)} (it has: "
                             f"{', '.join(have) or 'no arrays'}); expected {', '.join(_NPZ_KEYS)}"
                             " and optionally x_val, y_val")
        if ("x_val" in have) != ("y_val" in have):
            alone, other = ("x_val", "y_val") if "x_val" in have else ("y_val", "x_val")
            raise ValueError(f"{path} has {alone} but no {other}: give both or neither")
        arrays = {}
        for key in [*_NPZ_KEYS, *(("x_val", "y_val") if "x_val" in have else ())]:
            try:
                arrays[key] = archive[key]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
                why = ("an object array, which needs pickle (never used for a data file): save "
                       "it as numbers" if "pickle" in str(exc).lower() else
                       f"unreadable ({type(exc).__name__}: {exc})")
                raise ValueError(f"{path}: {key} is {why}") from None
    return arrays


def _npz_labels(ys: list[np.ndarray], task: str | None) -> tuple[str, np.ndarray | None, int]:
    """(task, class indices of y_train or None for regression, n_outputs) as `as_splits`
    reads the labels (one-hot, (N, 1), integer floats), checking them in the user's indices:
    ``ys`` is (y_train, y_test) or (y_train, y_test, y_val)."""
    pairs = [(np.zeros((len(y), 1), np.float32), y) for y in ys]
    view = as_splits(pairs if len(pairs) == 3 else [*pairs, pairs[0]], task=task)
    strata = view.y_train.numpy() if view.task == "classification" else None
    return view.task, strata, view.n_outputs


def load_npz(path: str | os.PathLike[str], *, task: str | None = None,
             val_fraction: float = 0.1, seed: int = 0, limit: int | None = None) -> DataSplits:
    """Load ``x_train, y_train, x_test, y_test`` (optionally ``x_val, y_val``) from an .npz
    file as checked `DataSplits`, converted as `as_splits` converts arrays.

    Without ``x_val``/``y_val``, ``val_fraction`` of the training part is held out (seeded).
    ``limit=n``: a seeded (stratified for classification) subset of n training examples
    before that split; the test part is untouched. ``task=None`` infers it as `as_splits`
    does. ``spec`` rebuilds the result (`load_spec`)."""
    p = Path(path)
    if task is not None and task not in TASKS:
        raise ValueError(f"task must be None or one of {TASKS}, got {task!r}")
    val_fraction = fraction_arg(val_fraction, "val_fraction")
    seed = check_int(seed, "seed", 0)
    limit = limit_arg(limit)
    arrays = _read_npz(p)
    x_tr, y_tr, x_te, y_te = (arrays[k] for k in _NPZ_KEYS)
    val = [(arrays["x_val"], arrays["y_val"])] if "x_val" in arrays else []
    n_outputs = None
    try:
        ys = [y_tr, y_te, *(y for _, y in val)]
        shaped = min(x_tr.ndim, *(y.ndim for y in ys)) >= 1 and len(x_tr) == len(y_tr)
        if limit is not None and shaped and limit < len(y_tr):
            task, strata, n_classes = _npz_labels(ys, task)
            n_outputs = n_classes if task == "classification" else None
            keep = keep_subset(len(y_tr), limit, seed, strata)
            x_tr, y_tr = x_tr[keep], y_tr[keep]
        pairs = [(x_tr, y_tr), (x_te, y_te), *val]
        data = as_splits(pairs, val_fraction=val_fraction, seed=seed, task=task,
                         n_outputs=n_outputs, name=p.name)
    except ValueError as exc:
        raise ValueError(f"{p}: {exc}") from None
    spec = {"name": "npz", "path": str(p.resolve()), "task": data.task,
            "val_fraction": val_fraction, "seed": seed, "limit": limit}
    return attrs.evolve(data, spec=spec)


# -- either, and saved specs -----------------------------------------------------------------
_OPTIONS = {"npz": ("task", "val_fraction", "seed", "limit"),
            "folder": ("image_size", "grayscale", "val_fraction", "seed", "test_fraction",
                       "limit")}


def load_data(path: str | os.PathLike[str], **options: Any) -> DataSplits:
    """Load a data file or folder: a directory through `load_image_folder`, an ``.npz`` file
    through `load_npz`. An option of the other kind is refused unless it is unset (None,
    ``grayscale=False``, ``task="classification"`` for a folder), so a caller such as the CLI
    may pass every option it has."""
    p = Path(path)
    if p.is_dir():
        kind, loader = "folder", load_image_folder
    elif p.suffix.lower() == ".npz":
        kind, loader = "npz", load_npz
    elif not p.exists():
        raise FileNotFoundError(f"no such data file or folder: {p}")
    else:
        raise ValueError(f"{p}: data must be an .npz file (x_train, y_train, x_test, y_test) "
                         "or a folder of images (DIR/<class>/<images>), got a file ending "
                         f"{p.suffix or '(no extension)'!r}")
    known = {*_OPTIONS["npz"], *_OPTIONS["folder"]}
    given = {}
    for key, value in options.items():
        if key not in known:
            raise ValueError(f"unknown data option {key!r}; options: {', '.join(sorted(known))}")
        if key in _OPTIONS[kind]:
            given[key] = value
        elif not (value is None or (key == "grayscale" and value is False)
                  or (key == "task" and value == "classification")):
            what = "an .npz file" if kind == "npz" else "an image folder (classification only)"
            raise ValueError(f"the option {key}={value!r} does not apply to {what} ({p}); its "
                             f"options: {', '.join(_OPTIONS[kind])}")
    return loader(p, **given)


def _checked_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    """(kind, loader arguments) of a saved spec: exactly its kind's keys, each of its type."""
    if not isinstance(spec, dict):
        raise ValueError(f"the saved data spec must be a dict, got {type(spec).__name__}")
    kind = spec.get("name")
    if not isinstance(kind, str) or kind not in FILE_SPEC_KEYS:
        raise ValueError(f"the saved data spec's name {kind!r} is not one of "
                         f"{', '.join(FILE_SPEC_KEYS)}")
    keys = FILE_SPEC_KEYS[kind]
    unknown = sorted(str(k) for k in spec if k not in keys)
    missing = [k for k in keys if k not in spec]
    if unknown or missing:
        raise ValueError(f"the saved {kind} data spec has the unexpected key(s) {unknown} and "
                         f"lacks {missing}: expected exactly {', '.join(keys)}")
    if not isinstance(spec["path"], str) or not spec["path"]:
        raise ValueError(f"the saved data path {spec['path']!r} is not a path")
    args = {"val_fraction": fraction_arg(spec["val_fraction"], "the saved val_fraction"),
            "seed": check_int(spec["seed"], "the saved data seed", 0),
            "limit": limit_arg(spec["limit"], "the saved limit")}
    if kind == "npz":
        if spec["task"] not in TASKS:
            raise ValueError(f"the saved task {spec['task']!r} is not one of {TASKS}")
        return kind, {**args, "task": spec["task"]}
    size, classes = spec["image_size"], spec["classes"]
    if size is not None and not (isinstance(size, list | tuple) and len(size) == 2):
        raise ValueError(f"the saved image_size {size!r} is not null or [height, width]")
    if not isinstance(spec["grayscale"], bool):
        raise ValueError(f"the saved grayscale {spec['grayscale']!r} is not true or false")
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ValueError(f"the saved classes {classes!r} are not a list of names")
    return kind, {**args, "image_size": None if size is None else tuple(
        check_int(v, "each entry of the saved image_size") for v in size),
        "grayscale": spec["grayscale"],
        "test_fraction": fraction_arg(spec["test_fraction"], "the saved test_fraction")}


def load_spec(spec: dict[str, Any], path: str | os.PathLike[str] | None = None) -> DataSplits:
    """Rebuild the data a saved ``spec`` (from `load_npz` / `load_image_folder`, read back
    from a run directory) describes. The spec is data: its keys and types are checked and
    nothing in it is imported or executed. ``path`` replaces the saved path (a moved run):
    the file or folder itself, or a directory holding one of the saved name."""
    kind, args = _checked_spec(spec)
    saved = Path(spec["path"])
    if path is None:
        where = saved
        if not where.exists():
            raise FileNotFoundError(
                f"the run's data {saved} is missing (moved?): pass its new place (CLI: --data "
                "NEWPATH, the file or the folder holding it; Python: data_root=NEWPATH)")
    else:
        where = Path(path)
        holder = where.is_dir() and where.name != saved.name and (where / saved.name).exists()
        if holder or (kind == "npz" and where.is_dir()):
            where = where / saved.name
        if not where.exists():
            raise FileNotFoundError(f"{where} not found (the run's data was {saved})")
    if kind == "npz":
        return load_npz(where, **args)
    data = load_image_folder(where, **args)
    found = data.spec["classes"] if data.spec else []
    if found != spec["classes"]:
        added = sorted(set(found) - set(spec["classes"]))
        lost = sorted(set(spec["classes"]) - set(found))
        raise ValueError(f"the image folder {where} changed since the run was saved: classes "
                         f"added {added}, missing {lost} (saved {spec['classes']})")
    return data
