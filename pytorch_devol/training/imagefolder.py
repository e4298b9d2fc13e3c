"""`load_image_folder`: a folder of images, one subfolder per class, as checked `DataSplits`.

``DIR/<class>/<images>`` (test part: a stratified hold-out with a fixed seed) or
``DIR/train/<class>/...`` + ``DIR/test/<class>/...`` (+ optional ``DIR/val/...``), listed by the
rules of torchvision's ``ImageFolder`` (sorted class folders, its extensions; torchvision's own
class when it imports), hidden files and folders skipped, decoded by Pillow
(``pip install 'pytorch-devol[images]'``).
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np
import torch

from pytorch_devol._checks import check_int
from pytorch_devol.training._data_args import fraction_arg, keep_subset, limit_arg
from pytorch_devol.training.splits import DataSplits
from pytorch_devol.training.validate import as_splits, split_indices

__all__ = ["FOLDER_TEST_SEED", "IMG_EXTENSIONS", "load_image_folder"]

#: torchvision's ``IMG_EXTENSIONS`` (compared case-insensitively).
IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: Seed of a one-folder layout's test hold-out: fixed, so every search seed sees the same test.
FOLDER_TEST_SEED = 1
_GREY_MODES = frozenset({"1", "L", "LA", "La", "F"})
_WIDE_GREY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})  # 16-bit range
_SPLIT_DIRS = ("train", "val", "test")
_PIL_HINT = "pip install 'pytorch-devol[images]'"
# The Pillow decoders of those extensions, and no other: Pillow picks a decoder by content, and
# some (EPS runs Ghostscript) must never see a file that only claims to be an image.
_PIL_FORMATS = ("JPEG", "PNG", "PPM", "BMP", "TIFF", "WEBP")


def _image_size(value: Any) -> tuple[int, int] | None:
    if value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool)):
        return None if value is None else (check_int(value, "image_size"),) * 2
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        return tuple(check_int(v, f"each entry of image_size {value!r}") for v in value)
    raise ValueError(f"image_size must be None, an int n (n x n pixels) or (height, width), "
                     f"got {value!r}")


def _pil() -> Any:
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(f"reading an image folder needs Pillow: {_PIL_HINT}") from exc
    return Image


def _visible_dirs(directory: str | os.PathLike[str]) -> list[str]:
    return sorted(e.name for e in os.scandir(directory)
                  if e.is_dir() and not e.name.startswith("."))


def _is_image(path: str, root: str) -> bool:
    parts = Path(os.path.relpath(path, root)).parts
    return (os.path.splitext(path)[1].lower() in IMG_EXTENSIONS
            and not any(part.startswith(".") for part in parts))


def _own_listing(root: str) -> tuple[list[str], list[tuple[str, int]]]:
    """ImageFolder's listing without torchvision: sorted classes, each walked recursively in
    sorted order (links followed), files with an image extension, hidden ones skipped."""
    classes = _visible_dirs(root)
    samples = []
    for index, name in enumerate(classes):
        for dirpath, _, files in sorted(os.walk(os.path.join(root, name), followlinks=True)):
            samples += [(os.path.join(dirpath, f), index) for f in sorted(files)
                        if _is_image(os.path.join(dirpath, f), root)]
    return classes, samples


def _listing(root: str) -> tuple[list[str], list[tuple[str, int]]]:
    """(classes, [(path, class index)]) of one ``<class>/<images>`` folder: torchvision's
    ImageFolder when it imports (with the same rules), else our own."""
    try:
        from torchvision.datasets import ImageFolder
    except Exception:  # absent, or a build that fails to import (RuntimeError)
        return _own_listing(root)

    class _Visible(ImageFolder):  # type: ignore[misc, valid-type]
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            classes = _visible_dirs(directory)
            return classes, {c: i for i, c in enumerate(classes)}

    try:
        folder = _Visible(root, is_valid_file=lambda p: _is_image(p, root))
    except Exception:  # e.g. an empty class: our own listing says which
        return _own_listing(root)
    return list(folder.classes), [(str(p), int(i)) for p, i in folder.samples]


def _class_part(root: Path, minimum: int = 1) -> tuple[list[str], list[tuple[str, int]]]:
    """The classes and samples of one <class>/<images> folder, every class non-empty."""
    classes, samples = _listing(str(root))
    if not classes:
        raise ValueError(f"{root} has no class subfolders: expected <class>/<images>")
    if len(classes) < minimum:
        raise ValueError(f"{root} needs at least {minimum} class folders, found {classes}")
    counts = np.bincount([i for _, i in samples], minlength=len(classes))
    empty = [c for c, n in zip(classes, counts) if n == 0]
    if empty:
        raise ValueError(f"the class folder(s) {', '.join(empty)} in {root} hold no images "
                         f"(accepted: {' '.join(IMG_EXTENSIONS)}, any case)")
    return classes, samples


def _folder_parts(root: Path, test_fraction: float
                  ) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """The classes and each part's (path, class index): one folder split with the fixed test
    seed, or train/ + test/ (+ val/) whose classes must be among train's."""
    dirs = _visible_dirs(root)
    if "train" in dirs and "test" not in dirs and set(dirs) <= set(_SPLIT_DIRS):
        raise ValueError(f"{root} has train/ but no test/: give both (DIR/train/<class>/..., "
                         "DIR/test/<class>/...) or use one folder DIR/<class>/...")
    if not {"train", "test"} <= set(dirs):
        classes, samples = _class_part(root, 2)
        labels = torch.tensor([i for _, i in samples], dtype=torch.int64)
        try:
            train, test = split_indices(len(samples), test_fraction, FOLDER_TEST_SEED, labels)
        except ValueError as exc:
            raise ValueError(f"{root}: too few images for test_fraction {test_fraction}: "
                             f"{exc}") from None
        return classes, {"train": [samples[i] for i in train], "test": [samples[i] for i in test]}
    extra = sorted(set(dirs) - set(_SPLIT_DIRS))
    if extra:
        raise ValueError(f"{root} has train/ and test/ and also {', '.join(extra)}: expected "
                         "only train/, test/ and optionally val/")
    classes, train = _class_part(root / "train", 2)
    parts = {"train": train}
    for part in ("test", "val"):
        if part in dirs:
            names, samples = _class_part(root / part)
            unknown = sorted(set(names) - set(classes))
            if unknown:
                raise ValueError(f"{root / part} has class folder(s) {', '.join(unknown)} that "
                                 f"{root / 'train'} lacks (train classes: {', '.join(classes)})")
            parts[part] = [(p, classes.index(names[i])) for p, i in samples]
    return classes, parts


def _decode(image: Any, path: str, grayscale: bool,
            size: tuple[int, int] | None) -> tuple[np.ndarray, tuple[int, int]]:
    """One image as uint8 (H, W) grey or (H, W, 3) colour, and its original (width, height)."""
    try:
        with image.open(path, formats=_PIL_FORMATS) as im:
            im.load()
            original = tuple(im.size)
            if im.mode in _WIDE_GREY_MODES:  # 16-bit grey: scale to 8 bits (convert clips)
                wide = np.asarray(im, dtype=np.float64)
                img = image.fromarray(np.clip(np.rint(wide / 257.0), 0, 255).astype(np.uint8))
            elif grayscale or im.mode in _GREY_MODES:
                img = im.convert("L")
            else:
                img = im.convert("RGB")
            if size is not None:
                bilinear = getattr(image, "Resampling", image).BILINEAR
                img = img.resize((size[1], size[0]), bilinear)
            return np.array(img, dtype=np.uint8), original
    except Exception as exc:  # whatever Pillow raises for a file it cannot decode
        raise ValueError(f"cannot read the image {path} ({type(exc).__name__}: {exc})") from None


def _read_images(paths: list[str], grayscale: bool, size: tuple[int, int] | None) -> np.ndarray:
    """All images as one uint8 (N, C, H, W) array: 1 channel when every image is grey (or
    ``grayscale``), else 3; without ``size`` every image must have the first one's size."""
    image = _pil()
    arrays, first = [], None
    for path in paths:
        array, original = _decode(image, path, grayscale, size)
        if size is None and first is None:
            first = (path, original)
        elif size is None and original != first[1]:
            raise ValueError(
                f"{path} is {original[1]}x{original[0]} pixels (height x width) but {first[0]} "
                f"is {first[1][1]}x{first[1][0]}: pass image_size=(height, width) (CLI "
                "--image-size HxW) to resize every image to one size")
        arrays.append(array)
    if any(a.ndim == 3 for a in arrays):
        arrays = [np.repeat(a[:, :, None], 3, axis=2) if a.ndim == 2 else a for a in arrays]
        return np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2))
    return np.ascontiguousarray(np.stack(arrays)[:, None])


def load_image_folder(path: str | os.PathLike[str], *, image_size: int | Sequence[int] | None
                      = None, grayscale: bool = False, val_fraction: float = 0.1, seed: int = 0,
                      test_fraction: float = 0.2, limit: int | None = None) -> DataSplits:
    """Load a folder of images as classification `DataSplits` (classes: the sorted subfolders).

    ``DIR/<class>/<images>``: the test part is a stratified ``test_fraction`` hold-out with the
    fixed seed `FOLDER_TEST_SEED` (the same for every ``seed``). ``DIR/train/<class>/...`` +
    ``DIR/test/<class>/...``: as given, with ``DIR/val/...`` as the validation part if present;
    else ``val_fraction`` of the training part is held out (seeded). ``grayscale``: 1 channel;
    else 1 when every image is grey, otherwise RGB. ``image_size`` (n or (height, width))
    resizes bilinearly; without it all images must have one size. ``limit=n``: a seeded
    stratified subset of n training examples. ``spec`` rebuilds it (`load_spec`)."""
    _pil()  # the missing extra is reported before anything else
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"no such image folder: {root}")
    if not root.is_dir():
        raise ValueError(f"{root} is not a folder of images (DIR/<class>/<images>)")
    root = root.resolve()
    size = _image_size(image_size)
    if not isinstance(grayscale, bool):
        raise ValueError(f"grayscale must be True or False, got {grayscale!r}")
    val_fraction = fraction_arg(val_fraction, "val_fraction")
    test_fraction = fraction_arg(test_fraction, "test_fraction")
    seed, limit = check_int(seed, "seed", 0), limit_arg(limit)
    classes, parts = _folder_parts(root, test_fraction)
    train = parts["train"]
    parts["train"] = [train[i] for i in keep_subset(len(train), limit, seed,
                                               np.array([c for _, c in train]))]
    order = [p for p in ("train", "test", "val") if p in parts]
    x = _read_images([s for p in order for s, _ in parts[p]], grayscale, size)
    ends = np.cumsum([0, *(len(parts[p]) for p in order)])
    pairs = [(x[a:b], np.array([c for _, c in parts[p]], dtype=np.int64))
             for p, a, b in zip(order, ends[:-1], ends[1:])]
    try:
        data = as_splits(pairs, val_fraction=val_fraction, seed=seed, task="classification",
                         input_shape=x.shape[1:], n_outputs=len(classes), name=root.name)
    except ValueError as exc:
        raise ValueError(f"{root}: {exc}") from None
    spec = {"name": "folder", "path": str(root), "image_size": None if size is None else
            list(size), "grayscale": grayscale, "val_fraction": val_fraction, "seed": seed,
            "test_fraction": test_fraction, "limit": limit, "classes": list(classes)}
    return attrs.evolve(data, spec=spec)
