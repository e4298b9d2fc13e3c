"""The user's own data from files: .npz archives and image folders, their specs, every error."""

from __future__ import annotations

import json
import re
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol.training import as_splits
from pytorch_devol.training.files import FILE_SPEC_KEYS, load_data, load_npz, load_spec
from pytorch_devol.training.imagefolder import IMG_EXTENSIONS, load_image_folder

Image = pytest.importorskip("PIL.Image")


def _same(a, b) -> None:
    """Equal tensors of every part, task and outputs."""
    assert (a.task, a.n_outputs) == (b.task, b.n_outputs)
    for part in ("train", "val", "test"):
        for got, want in zip(a.part(part), b.part(part)):
            assert got.dtype == want.dtype and torch.equal(got, want), part


def _arrays(n_train=30, n_test=9, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x_tr = rng.integers(0, 256, (n_train, 5, 4, 3), dtype=np.uint8)  # channels-last
    x_te = rng.integers(0, 256, (n_test, 5, 4, 3), dtype=np.uint8)
    y_tr = np.eye(classes, dtype=np.float32)[np.arange(n_train) % classes]  # one-hot
    y_te = np.eye(classes, dtype=np.float32)[np.arange(n_test) % classes]
    return x_tr, y_tr, x_te, y_te


@pytest.fixture
def npz(tmp_path):
    x_tr, y_tr, x_te, y_te = _arrays()
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te, notes=np.arange(3))
    return path


# -- .npz ------------------------------------------------------------------------------------
def test_npz_converts_as_as_splits_and_rebuilds_from_its_spec(npz):
    data = load_npz(npz, val_fraction=0.2, seed=4)
    x_tr, y_tr, x_te, y_te = _arrays()
    _same(data, as_splits(((x_tr, y_tr), (x_te, y_te)), val_fraction=0.2, seed=4))
    assert data.input_shape == (3, 5, 4) and data.x_train.dtype == torch.float32
    assert data.y_test.tolist() == [i % 3 for i in range(9)]
    assert float(data.x_train.max()) <= 1.0 and data.name == "mine.npz"
    assert data.spec == {"name": "npz", "path": str(npz.resolve()), "task": "classification",
                         "val_fraction": 0.2, "seed": 4, "limit": None}
    again = load_spec(json.loads(json.dumps(data.spec)))
    assert again.fingerprint() == data.fingerprint()
    assert load_data(npz, val_fraction=0.2, seed=4).fingerprint() == data.fingerprint()


def test_npz_validation_pair_is_the_val_part(tmp_path):
    x_tr, y_tr, x_te, y_te = _arrays()
    path = tmp_path / "v.npz"
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te,
             x_val=x_te[:4], y_val=y_te[:4])
    data = load_npz(path)
    assert data.sizes() == {"train": 30, "val": 4, "test": 9}
    assert torch.equal(data.x_val, torch.from_numpy(x_te[:4]).permute(0, 3, 1, 2) / 255.0)
    assert load_spec(data.spec).fingerprint() == data.fingerprint()


def test_npz_regression_targets(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "r.npz"
    np.savez(path, x_train=rng.random((20, 6)), y_train=rng.random((20, 2)),
             x_test=rng.random((5, 6)), y_test=rng.random((5, 2)))
    data = load_npz(path, task="regression", limit=10)
    assert (data.task, data.n_outputs, data.input_shape) == ("regression", 2, (6,))
    assert data.y_train.dtype == torch.float32 and data.sizes()["train"] == 9
    assert load_spec(data.spec).fingerprint() == data.fingerprint()
    assert load_npz(path).task == "regression"  # float targets: inferred


def test_npz_limit_keeps_n_stratified_training_examples(npz):
    data = load_npz(npz, limit=12, val_fraction=0.25)
    assert data.sizes() == {"train": 9, "val": 3, "test": 9}
    labels = torch.cat([data.y_train, data.y_val])
    assert torch.bincount(labels).tolist() == [4, 4, 4] and data.n_outputs == 3
    assert data.spec["limit"] == 12
    assert load_spec(data.spec).fingerprint() == data.fingerprint()
    assert load_npz(npz, limit=1000).fingerprint() == load_npz(npz).fingerprint()
    with pytest.raises(ValueError, match="limit must be an integer >= 2 or None"):
        load_npz(npz, limit=(10, 5))


def test_npz_errors_name_the_file_and_the_problem(tmp_path):
    x_tr, y_tr, x_te, y_te = _arrays()
    with pytest.raises(FileNotFoundError, match="no such data file"):
        load_npz(tmp_path / "absent.npz")
    part = tmp_path / "part.npz"
    np.savez(part, x_train=x_tr, y_train=y_tr, extra=x_te)
    with pytest.raises(ValueError, match=r"lacks the array\(s\) x_test, y_test \(it has: "
                                         r"x_train, y_train, extra\)"):
        load_npz(part)
    alone = tmp_path / "alone.npz"
    np.savez(alone, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=y_te, x_val=x_te)
    with pytest.raises(ValueError, match="has x_val but no y_val"):
        load_npz(alone)
    obj = tmp_path / "obj.npz"
    np.savez(obj, x_train=x_tr, y_train=np.array([{"a": 1}] * 30, dtype=object),
             x_test=x_te, y_test=y_te)
    with pytest.raises(ValueError, match="y_train is an object array, which needs pickle"):
        load_npz(obj)
    text = tmp_path / "text.npz"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match=re.escape(f"{text} is not a readable .npz file")):
        load_npz(text)
    single = tmp_path / "one.npy"
    np.save(single, x_tr)
    with pytest.raises(ValueError, match="holds one array"):
        load_npz(single)
    with pytest.raises(ValueError, match="is a directory"):
        load_npz(tmp_path)


def test_npz_bad_labels_carry_as_splits_message(tmp_path):
    x_tr, _, x_te, _ = _arrays()
    y_tr = np.arange(30) % 3
    y_tr[7] = -1
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=x_tr, y_train=y_tr, x_test=x_te, y_test=np.arange(9) % 3)
    with pytest.raises(ValueError) as direct:
        as_splits(((x_tr, y_tr), (x_te, np.arange(9) % 3)))
    for limit in (None, 10):  # the user's index even when a subset is kept
        with pytest.raises(ValueError, match=re.escape(f"{path}: {direct.value}")):
            load_npz(path, limit=limit)


def test_moved_npz_is_found_by_path_or_folder(npz, tmp_path):
    data = load_npz(npz, seed=2)
    spec = dict(data.spec)
    new_dir = tmp_path / "moved"
    new_dir.mkdir()
    moved = npz.rename(new_dir / npz.name)
    with pytest.raises(FileNotFoundError, match="missing \\(moved\\?\\).*--data NEWPATH"):
        load_spec(spec)
    assert load_spec(spec, path=new_dir).fingerprint() == data.fingerprint()
    assert load_spec(spec, path=moved).fingerprint() == data.fingerprint()
    assert load_spec(spec, path=new_dir).spec["path"] == str(moved.resolve())
    with pytest.raises(FileNotFoundError, match="not found"):
        load_spec(spec, path=tmp_path)


@pytest.mark.parametrize("change, message", [
    ({"download": True}, r"unexpected key\(s\) \['download'\]"),
    ({"name": "pickle"}, "name 'pickle' is not one of npz, folder"),
    ({"seed": "0"}, "saved data seed must be an integer"),
    ({"seed": True}, "saved data seed must be an integer"),
    ({"val_fraction": 2}, "saved val_fraction must be a number between 0 and 1"),
    ({"limit": [5, 5]}, "saved limit must be an integer >= 2 or None"),
    ({"task": "exec"}, "saved task 'exec' is not one of"),
    ({"path": 3}, "saved data path 3 is not a path"),
    ({"image_size": None}, r"unexpected key\(s\) \['image_size'\]"),
])
def test_tampered_npz_spec_is_refused(npz, change, message):
    spec = {**load_npz(npz).spec, **change}
    with pytest.raises(ValueError, match=message):
        load_spec(spec)


def test_spec_lacking_a_key_or_not_a_dict_is_refused(npz):
    spec = dict(load_npz(npz).spec)
    del spec["seed"]
    with pytest.raises(ValueError, match=r"lacks \['seed'\]"):
        load_spec(spec)
    with pytest.raises(ValueError, match="must be a dict"):
        load_spec([("name", "npz")])
    assert set(FILE_SPEC_KEYS) == {"npz", "folder"}


@settings(max_examples=25, deadline=None)
@given(n_train=st.integers(4, 12), n_test=st.integers(1, 4), channels=st.sampled_from([1, 3]),
       h=st.integers(2, 5), w=st.integers(2, 5), last=st.booleans(), one_hot=st.booleans(),
       uint8=st.booleans(), classes=st.integers(2, 3), seed=st.integers(0, 3))
def test_npz_matches_as_splits(n_train, n_test, channels, h, w, last, one_hot, uint8, classes,
                               seed):
    rng = np.random.default_rng(seed)
    shape = (h, w, channels) if last else (channels, h, w)

    def x(n):
        return (rng.integers(0, 256, (n, *shape), dtype=np.uint8) if uint8
                else rng.random((n, *shape), dtype=np.float32))

    def y(n):
        labels = rng.integers(0, classes, n)
        return np.eye(classes, dtype=np.int64)[labels] if one_hot else labels

    arrays = {"x_train": x(n_train), "y_train": y(n_train), "x_test": x(n_test),
              "y_test": y(n_test)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "h.npz"
        np.savez(path, **arrays)
        data = load_npz(path, val_fraction=0.25, seed=seed)
    want = as_splits(((arrays["x_train"], arrays["y_train"]),
                      (arrays["x_test"], arrays["y_test"])), val_fraction=0.25, seed=seed)
    _same(data, want)


# -- image folders ---------------------------------------------------------------------------
def _png(path: Path, value: int, size=(6, 6), mode="RGB") -> None:
    """A tiny image whose pixels encode ``value`` (so images can be told apart)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    grid = (np.arange(h * w).reshape(h, w) + value * 7) % 256
    if mode == "RGB":
        pixels = np.stack([grid, 255 - grid, np.full_like(grid, value % 256)], axis=2)
    else:
        pixels = grid
    Image.fromarray(pixels.astype(np.uint8)).convert(mode).save(path)


def _folder(root: Path, classes=("cat", "dog", "emu"), n=10, mode="RGB", start=0) -> Path:
    for c, name in enumerate(classes):
        for i in range(n):
            _png(root / name / f"{i:02d}.png", start + 10 * c + i, mode=mode)
    return root


def test_folder_shapes_classes_and_spec(tmp_path):
    root = _folder(tmp_path / "pets")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    _png(root / ".hidden" / "x.png", 99)
    _png(root / "cat" / ".x.png", 98)
    _png(root / "emu" / "UPPER.PNG", 97)
    data = load_image_folder(root, val_fraction=0.25, seed=3)
    assert data.input_shape == (3, 6, 6) and data.n_outputs == 3 and data.name == "pets"
    assert sum(data.sizes().values()) == 31  # hidden and non-image files skipped
    assert data.sizes()["test"] == 6 and data.x_train.dtype == torch.float32
    assert torch.bincount(data.y_test).tolist() == [2, 2, 2]
    assert data.spec == {"name": "folder", "path": str(root.resolve()), "image_size": None,
                         "grayscale": False, "val_fraction": 0.25, "seed": 3,
                         "test_fraction": 0.2, "limit": None, "classes": ["cat", "dog", "emu"]}
    again = load_spec(json.loads(json.dumps(data.spec)))
    assert again.fingerprint() == data.fingerprint()
    assert load_data(root, val_fraction=0.25, seed=3).fingerprint() == data.fingerprint()


def test_folder_pixels_and_class_order(tmp_path):
    root = tmp_path / "two"
    _png(root / "b" / "0.png", 1)
    _png(root / "b" / "1.png", 2)
    _png(root / "a" / "0.png", 3)
    _png(root / "a" / "1.png", 4)
    data = load_image_folder(root, test_fraction=0.5, val_fraction=0.5)
    x = torch.cat([data.x_train, data.x_val, data.x_test])
    y = torch.cat([data.y_train, data.y_val, data.y_test])
    for value, label in ((1, 1), (2, 1), (3, 0), (4, 0)):  # a -> 0, b -> 1 (sorted names)
        w = np.array(Image.open(root / ("b" if label else "a") / f"{(value - 1) % 2}.png"))
        want = torch.from_numpy(w).permute(2, 0, 1).float() / 255.0
        hits = [i for i in range(4) if torch.equal(x[i], want)]
        assert len(hits) == 1 and int(y[hits[0]]) == label


def test_folder_test_part_does_not_depend_on_seed(tmp_path):
    root = _folder(tmp_path / "pets")
    a, b = load_image_folder(root, seed=0), load_image_folder(root, seed=5)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_val, b.x_val)
    c = load_image_folder(root, seed=5, limit=12)
    assert torch.equal(c.x_test, a.x_test) and sum(c.sizes().values()) - 6 == 12
    assert load_spec(c.spec).fingerprint() == c.fingerprint()


def test_folder_grey_detection_and_grayscale_flag(tmp_path):
    grey = load_image_folder(_folder(tmp_path / "grey", mode="L"))
    assert grey.input_shape == (1, 6, 6)
    mixed = _folder(tmp_path / "mixed", mode="L")
    _png(mixed / "dog" / "colour.png", 5, mode="RGBA")
    data = load_image_folder(mixed)
    assert data.input_shape == (3, 6, 6)  # one colour image: all RGB
    grey_images = data.x_train[data.x_train[:, 0].eq(data.x_train[:, 1]).all(-1).all(-1)]
    assert len(grey_images) > 0 and torch.equal(grey_images[:, 0], grey_images[:, 2])
    flag = load_image_folder(_folder(tmp_path / "rgb"), grayscale=True)
    assert flag.input_shape == (1, 6, 6) and flag.spec["grayscale"] is True
    assert load_spec(flag.spec).fingerprint() == flag.fingerprint()


def test_sixteen_bit_grey_is_scaled_not_clipped(tmp_path):
    root = tmp_path / "deep"
    for c in ("a", "b"):
        for i, v in enumerate((0, 32896, 65535, 257)):
            (root / c).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((3, 3), v, np.uint16)).save(root / c / f"{i}.png")
    data = load_image_folder(root, test_fraction=0.25, val_fraction=0.25)
    values = sorted({round(float(v) * 255) for v in torch.cat([data.x_train, data.x_val,
                                                                 data.x_test]).flatten()})
    assert values == [0, 1, 128, 255]


def test_folder_image_size_resizes_and_mixed_sizes_name_the_file(tmp_path):
    root = _folder(tmp_path / "pets", n=4)
    _png(root / "dog" / "big.png", 1, size=(9, 7))
    with pytest.raises(ValueError, match=re.escape(str(root / "dog" / "big.png")) +
                       r" is 7x9 pixels \(height x width\) but .*cat.\d\d\.png is 6x6: pass "
                       r"image_size=\(height, width\) \(CLI --image-size HxW\)"):
        load_image_folder(root, test_fraction=0.25)
    square = load_image_folder(root, image_size=5, test_fraction=0.25)
    assert square.input_shape == (3, 5, 5) and square.spec["image_size"] == [5, 5]
    wide = load_image_folder(root, image_size=(4, 8), test_fraction=0.25)
    assert wide.input_shape == (3, 4, 8)
    assert load_spec(wide.spec).fingerprint() == wide.fingerprint()
    with pytest.raises(ValueError, match="image_size must be None, an int"):
        load_image_folder(root, image_size=(4, 8, 3))


def test_folder_errors(tmp_path):
    root = _folder(tmp_path / "pets", n=4)
    broken = root / "cat" / "broken.png"
    broken.write_bytes(b"no png here")
    with pytest.raises(ValueError, match=re.escape(f"cannot read the image {broken}")):
        load_image_folder(root)
    broken.unlink()
    (root / "fox").mkdir()
    (root / "fox" / "readme.md").write_text("x")
    with pytest.raises(ValueError, match=r"class folder\(s\) fox in .* hold no images"):
        load_image_folder(root)
    one = _folder(tmp_path / "one", classes=("only",))
    with pytest.raises(ValueError, match="needs at least 2 class folders"):
        load_image_folder(one)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="has no class subfolders"):
        load_image_folder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such image folder"):
        load_image_folder(tmp_path / "absent")
    with pytest.raises(ValueError, match="test_fraction must be a number"):
        load_image_folder(tmp_path / "pets", test_fraction=1.0)


def test_folder_without_pillow_says_which_extra(tmp_path, monkeypatch):
    root = _folder(tmp_path / "pets", n=2)
    monkeypatch.setitem(sys.modules, "PIL", None)
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'pytorch-devol[images]'")):
        load_image_folder(root)


def test_train_test_val_layout(tmp_path):
    root = tmp_path / "split"
    _folder(root / "train", n=6)
    _folder(root / "test", classes=("cat", "emu"), n=3, start=100)
    data = load_image_folder(root, val_fraction=0.5, seed=1)
    assert data.sizes() == {"train": 9, "val": 9, "test": 6}
    assert sorted(data.y_test.tolist()) == [0, 0, 0, 2, 2, 2]  # train's indices: emu is 2
    assert load_spec(data.spec).fingerprint() == data.fingerprint()
    _folder(root / "val", classes=("dog",), n=2, start=200)
    with_val = load_image_folder(root, limit=12)
    assert with_val.sizes() == {"train": 12, "val": 2, "test": 6}
    assert with_val.y_val.tolist() == [1, 1]
    _folder(root / "test", classes=("yak",), n=1)
    with pytest.raises(ValueError, match=r"class folder\(s\) yak that .*train lacks"):
        load_image_folder(root)


def test_train_without_test_or_with_extra_folders_is_refused(tmp_path):
    root = tmp_path / "split"
    _folder(root / "train", n=2)
    with pytest.raises(ValueError, match="has train/ but no test/"):
        load_image_folder(root)
    _folder(root / "test", n=2)
    _folder(root / "other", n=2)
    with pytest.raises(ValueError, match="also other: expected only train/, test/"):
        load_image_folder(root)


def test_moved_or_changed_folder(tmp_path):
    root = _folder(tmp_path / "old" / "pets", n=5)
    data = load_image_folder(root)
    spec = json.loads(json.dumps(data.spec))
    moved = root.rename(tmp_path / "pets")
    with pytest.raises(FileNotFoundError, match="--data NEWPATH, the file or the folder"):
        load_spec(spec)
    assert load_spec(spec, path=moved).fingerprint() == data.fingerprint()
    assert load_spec(spec, path=tmp_path).fingerprint() == data.fingerprint()
    _folder(moved, classes=("gnu",), n=5)
    with pytest.raises(ValueError, match=r"changed since the run was saved: classes added "
                                         r"\['gnu'\], missing \[\]"):
        load_spec(spec, path=moved)
    for change, message in (({"grayscale": 1}, "saved grayscale 1 is not true or false"),
                            ({"image_size": [4]}, "saved image_size"),
                            ({"classes": "cat"}, "saved classes 'cat' are not a list"),
                            ({"task": "regression"}, r"unexpected key\(s\) \['task'\]")):
        with pytest.raises(ValueError, match=message):
            load_spec({**spec, **change}, path=moved)


def test_torchvision_image_folder_is_used_with_the_same_rules(tmp_path, monkeypatch):
    """A stand-in for torchvision's ImageFolder (its find_classes / is_valid_file / samples
    contract) gives the same data as our own listing."""
    root = _folder(tmp_path / "pets", n=4)
    _png(root / ".hidden" / "x.png", 1)
    _png(root / "cat" / "sub" / "deep.png", 2)
    want = load_image_folder(root)
    calls = []

    class ImageFolder:
        def __init__(self, root, is_valid_file=None):
            import os
            calls.append(root)
            self.classes, class_to_idx = self.find_classes(root)
            self.samples = [(os.path.join(d, f), class_to_idx[c]) for c in self.classes
                            for d, _, files in sorted(os.walk(os.path.join(root, c)))
                            for f in sorted(files) if is_valid_file(os.path.join(d, f))]

        def find_classes(self, directory):
            raise AssertionError("must be overridden")

    datasets = types.ModuleType("torchvision.datasets")
    datasets.ImageFolder = ImageFolder
    monkeypatch.setitem(sys.modules, "torchvision", types.ModuleType("torchvision"))
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)
    got = load_image_folder(root)
    assert calls == [str(root.resolve())] and got.fingerprint() == want.fingerprint()
    assert sum(got.sizes().values()) == 13


def test_load_data_dispatch_and_options(npz, tmp_path):
    root = _folder(tmp_path / "pets", n=4)
    assert load_data(root, task="classification", image_size=None).n_outputs == 3
    assert load_data(npz, image_size=None, grayscale=False).name == "mine.npz"
    with pytest.raises(ValueError, match="option image_size=5 does not apply to an .npz"):
        load_data(npz, image_size=5)
    with pytest.raises(ValueError, match="option task='regression' does not apply to an "
                                         "image folder"):
        load_data(root, task="regression")
    with pytest.raises(ValueError, match="unknown data option 'download'"):
        load_data(npz, download=True)
    csv = tmp_path / "data.csv"
    csv.write_text("1,2")
    with pytest.raises(ValueError, match="must be an .npz file .* or a folder of images"):
        load_data(csv)
    with pytest.raises(FileNotFoundError, match="no such data file or folder"):
        load_data(tmp_path / "nothing.csv")
    assert ".png" in IMG_EXTENSIONS and ".webp" in IMG_EXTENSIONS


def test_a_file_is_decoded_only_as_an_image_format_its_extension_allows(tmp_path):
    """Pillow picks a decoder by content: a GIF (or an EPS, which would run Ghostscript)
    named .png is refused, naming the file."""
    root = _folder(tmp_path / "pets", n=3)
    fake = root / "dog" / "zz.png"
    Image.new("P", (6, 6)).save(fake, format="GIF")
    with pytest.raises(ValueError, match=re.escape(str(fake)) + " .*cannot identify"):
        load_image_folder(root)
