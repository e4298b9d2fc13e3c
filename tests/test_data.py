"""Data loading and validation: built-in datasets, user arrays, and every bad-input error."""

from __future__ import annotations

import gzip
import importlib.util
import re

import numpy as np
import pytest
import torch

from pytorch_devol.training import (
    DataSplits,
    as_splits,
    check_compatible,
    load_dataset,
    read_idx,
    split_indices,
    validate_splits,
)


def _rows(x: torch.Tensor) -> list[bytes]:
    return sorted(r.numpy().tobytes() for r in x.reshape(len(x), -1))


def _make(n_train=40, n_test=20, shape=(1, 4, 4), classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x_tr = rng.random((n_train, *shape), dtype=np.float32)
    x_te = rng.random((n_test, *shape), dtype=np.float32)
    y_tr = np.arange(n_train) % classes
    y_te = np.arange(n_test) % classes
    return (x_tr, y_tr), (x_te, y_te)


# -- built-in datasets -----------------------------------------------------------------------
def test_digits_is_a_seeded_partition_of_sklearn_digits(digits_splits):
    from sklearn.datasets import load_digits

    sizes = digits_splits.sizes()
    assert sum(sizes.values()) == 1797
    assert digits_splits.input_shape == (1, 8, 8) and digits_splits.n_outputs == 10
    assert digits_splits.x_train.dtype == torch.float32
    assert digits_splits.y_train.dtype == torch.int64
    assert 0.0 <= float(digits_splits.x_train.min()) and float(digits_splits.x_train.max()) <= 1.0
    assert sizes["test"] == pytest.approx(0.2 * 1797, abs=1)
    assert sizes["val"] == pytest.approx(0.1 * (sizes["train"] + sizes["val"]), abs=1)
    # The three parts together are exactly the original images: disjoint and complete.
    everything = torch.cat([digits_splits.x_train, digits_splits.x_val, digits_splits.x_test])
    original = torch.from_numpy(load_digits().images.astype(np.float32) / 16.0)
    assert _rows(everything) == _rows(original)
    # Stratified: every class is in the validation part.
    assert set(digits_splits.y_val.tolist()) == set(range(10))


def test_digits_from_sklearns_file_equal_load_digits(monkeypatch):
    """Digits are read from the file scikit-learn ships (no sklearn.datasets import: 3 s per
    process), or through load_digits where the file is not found: the same table."""
    from sklearn.datasets import load_digits

    from pytorch_devol.training import datasets

    bunch = load_digits()
    table = datasets._digits_table()
    np.testing.assert_array_equal(table, np.column_stack([bunch.data, bunch.target]))
    monkeypatch.setattr(datasets.Path, "is_file", lambda self: False)
    np.testing.assert_array_equal(datasets._digits_table(), table)


def test_same_seed_same_data_other_seed_other_split(digits_splits):
    again = load_dataset("digits", seed=0)
    other = load_dataset("digits", seed=1)
    assert again.fingerprint() == digits_splits.fingerprint()
    assert other.fingerprint() != digits_splits.fingerprint()
    assert load_dataset(**digits_splits.spec).fingerprint() == digits_splits.fingerprint()
    assert re.fullmatch(r"[0-9a-f]{64}", digits_splits.fingerprint())


def _same_test_other_validation(a: DataSplits, b: DataSplits) -> None:
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)
    assert a.x_val.shape == b.x_val.shape and not torch.equal(a.x_val, b.x_val)


def test_the_test_part_does_not_depend_on_the_seed(digits_splits):
    other = load_dataset("digits", seed=1)
    _same_test_other_validation(digits_splits, other)
    # Only the validation split moved: train + val are the same examples for every seed.
    pool = [torch.cat([d.x_train, d.x_val]) for d in (digits_splits, other)]
    assert _rows(pool[0]) == _rows(pool[1])
    limited = [load_dataset("digits", seed=s, limit=(600, 150)) for s in (0, 7)]
    _same_test_other_validation(*limited)
    assert limited[0].sizes()["test"] == 150


def test_mnist_test_subset_does_not_depend_on_the_seed(mnist_root):
    a, b = (load_dataset("mnist", root=mnist_root, seed=s, limit=(1000, 500)) for s in (0, 1))
    _same_test_other_validation(a, b)
    assert a.sizes()["test"] == 500


def test_val_fraction_and_limit_are_respected():
    data = load_dataset("digits", val_fraction=0.25, limit=(400, 100))
    s = data.sizes()
    assert s["train"] + s["val"] == 400 and s["val"] == 100 and s["test"] == 100
    assert data.spec["limit"] == [400, 100]


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'.*digits.*mnist.*fashion"):
        load_dataset("cifar10")


@pytest.mark.parametrize("bad", [(0, 10), (10,), "x", (10, 1.5)])
def test_bad_limit(bad):
    with pytest.raises(ValueError, match="limit"):
        load_dataset("digits", limit=bad)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_bad_val_fraction(fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("digits", val_fraction=fraction)


def test_missing_mnist_files_say_where_and_what(tmp_path):
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)
    (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("mnist", root=tmp_path)
    msg = str(info.value)
    assert str((tmp_path / "MNIST" / "raw").resolve()) in msg
    assert "t10k-labels-idx1-ubyte" in msg and "train-labels-idx1-ubyte" in msg
    assert "train-images-idx3-ubyte(" not in msg  # present files are not listed as missing


def test_default_root_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("PYTORCH_DEVOL_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path.resolve()))):
        load_dataset("fashion-mnist")


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None,
                    reason="torchvision is installed: download would try the network")
def test_download_without_torchvision_is_a_clear_error(tmp_path):
    with pytest.raises(RuntimeError, match="download=True needs a working torchvision"):
        load_dataset("mnist", root=tmp_path, download=True)


# -- the IDX reader --------------------------------------------------------------------------
def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_round_trip(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = _idx_bytes(images, 0x08)
    path = tmp_path / ("x.idx.gz" if gz else "x.idx")
    path.write_bytes(gzip.compress(raw) if gz else raw)
    np.testing.assert_array_equal(read_idx(path), images)
    floats = np.linspace(0, 1, 6, dtype=np.float32).reshape(2, 3)
    path2 = tmp_path / "f.idx"
    path2.write_bytes(_idx_bytes(floats, 0x0D))
    out = read_idx(path2)
    assert out.dtype == np.float32 and out.dtype.isnative
    np.testing.assert_array_equal(out, floats)


def test_read_idx_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.idx"
    bad.write_bytes(b"\x01\x02\x08\x01")
    with pytest.raises(ValueError, match="magic"):
        read_idx(bad)
    short = tmp_path / "short.idx"
    short.write_bytes(_idx_bytes(np.zeros((4, 2), np.uint8), 0x08)[:-3])
    with pytest.raises(ValueError, match=r"shape \(4, 2\)"):
        read_idx(short)
    broken = tmp_path / "broken.gz"
    broken.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="cannot read"):
        read_idx(broken)


# -- MNIST / Fashion-MNIST from ../shared/datasets -------------------------------------------
def test_mnist_from_disk_matches_the_official_files(mnist_root):
    data = load_dataset("mnist", root=mnist_root, limit=(3000, None))
    s = data.sizes()
    assert data.input_shape == (1, 28, 28) and data.name == "mnist"
    assert s == {"train": 2700, "val": 300, "test": 10000}
    official = read_idx(next((mnist_root / "MNIST" / "raw").glob("t10k-images-idx3-ubyte*")))
    assert official.shape == (10000, 28, 28)
    torch.testing.assert_close(data.x_test[:, 0], torch.from_numpy(official).float() / 255)
    counts = torch.bincount(data.y_train, minlength=10)
    assert int(counts.min()) > 200  # stratified subset: every digit well represented
    assert _rows(data.x_val).__len__() == 300
    assert not set(_rows(data.x_val)) & set(_rows(data.x_train))


def test_fashion_mnist_subset(fashion_mnist_root):
    data = load_dataset("fashion_mnist", root=fashion_mnist_root, limit=(1000, 500), seed=3)
    assert data.sizes() == {"train": 900, "val": 100, "test": 500}
    assert data.name == "fashion-mnist" and data.spec["seed"] == 3
    assert load_dataset(**data.spec).fingerprint() == data.fingerprint()


# -- user arrays ------------------------------------------------------------------------------
def test_devol_form_equals_pytorch_form():
    rng = np.random.default_rng(1)
    imgs = rng.integers(0, 256, size=(60, 6, 5, 3), dtype=np.uint8)  # channels-last
    labels = rng.integers(0, 4, size=60)
    labels[:4] = np.arange(4)
    one_hot = np.eye(4, dtype=np.float32)[labels]
    devol = as_splits(((imgs[:40], one_hot[:40]), (imgs[40:], one_hot[40:])), seed=5)
    nchw = torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 255
    torchy = as_splits(((nchw[:40], torch.from_numpy(labels[:40])),
                        (nchw[40:], torch.from_numpy(labels[40:]))), seed=5)
    assert devol.input_shape == (3, 6, 5) and devol.n_outputs == 4
    assert devol.task == "classification" and devol.y_train.dtype == torch.int64
    assert devol.fingerprint() == torchy.fingerprint()
    torch.testing.assert_close(devol.x_test, nchw[40:])


def test_layout_follows_input_shape_and_grey_images_get_a_channel():
    x = np.zeros((10, 4, 4, 2), np.float32)  # ambiguous without a hint
    y = np.arange(10) % 2
    hinted = as_splits(((x, y), (x, y)), input_shape=(2, 4, 4))
    assert hinted.input_shape == (2, 4, 4)
    grey = as_splits(((np.zeros((10, 7, 7)), y), (np.zeros((3, 7, 7)), y[:3])))
    assert grey.input_shape == (1, 7, 7) and grey.x_train.dtype == torch.float32
    flat = as_splits(((np.zeros((10, 5)), y), (np.zeros((3, 5)), y[:3])))
    assert flat.input_shape == (5,)
    with pytest.raises(ValueError, match=r"\(4, 4, 2\).*\(3, 4, 4\)"):
        as_splits(((x, y), (x, y)), input_shape=(3, 4, 4))


def test_explicit_validation_pair_is_used_and_val_split_is_disjoint():
    x = np.arange(50, dtype=np.float32).reshape(50, 1)  # row i holds the value i
    y = np.arange(50) % 5
    xv, yv = np.full((7, 1), -1.0, np.float32), np.zeros(7, np.int64)
    three = as_splits(((x, y), (x[:5], y[:5]), (xv, yv)))
    assert three.sizes() == {"train": 50, "val": 7, "test": 5}
    two = as_splits(((x, y), (x[:5], y[:5])), val_fraction=0.2, seed=3)
    tr, va = set(two.x_train[:, 0].tolist()), set(two.x_val[:, 0].tolist())
    assert len(va) == 10 and not tr & va and tr | va == set(range(50))
    assert sorted(torch.bincount(two.y_val).tolist()) == [2] * 5  # stratified


def test_data_splits_pass_through_and_move():
    data = as_splits(_make())
    assert as_splits(data) is data
    assert data.to("cpu") is data
    assert "train 36, val 4, test 20" in data.summary()


def test_split_indices_is_seeded_and_exact():
    keep, held = split_indices(101, 0.3, 7, torch.arange(101) % 4)
    assert len(held) == 30 and len(keep) == 71 and not set(keep) & set(held)
    again = split_indices(101, 0.3, 7, torch.arange(101) % 4)
    np.testing.assert_array_equal(held, again[1])


def test_regression_targets_become_float_columns():
    rng = np.random.default_rng(0)
    x, y = rng.random((30, 3)), rng.random(30)
    data = as_splits(((x, y), (x[:5], y[:5])))
    assert data.task == "regression" and data.n_outputs == 1
    assert data.y_train.dtype == torch.float32 and data.y_train.shape[1] == 1
    two = as_splits(((x, np.c_[y, y]), (x[:5], np.c_[y, y][:5])), task="regression")
    assert two.n_outputs == 2


# -- every bad input gets its own error --------------------------------------------------------
@pytest.mark.parametrize("mutate, pattern", [
    (lambda d: ((d[0][0][:-1], d[0][1]), d[1]), r"x_train has 39 examples but y_train has 40"),
    (lambda d: (d[0], (d[1][0][:0], d[1][1][:0])), r"test part is empty"),
    (lambda d: ((np.where(np.arange(40)[:, None, None, None] == 3, np.nan, d[0][0]), d[0][1]),
                d[1]), r"x_train contains 16 non-finite.*x_train\[3, 0, 0, 0\] = nan"),
    (lambda d: (d[0], (d[1][0], np.r_[d[1][1][:-1], 3])), r"y_test\[19\] = 3 is outside \[0, 3\)"),
    (lambda d: ((d[0][0], d[0][1] - 1), d[1]), r"y_train\[.*\] = -1 is outside \[0, 3\)"),
    (lambda d: ((d[0][0], d[0][1] + 0.5), d[1]), r"y_train.*0.5 is not an integer"),
    (lambda d: ((d[0][0], np.array(["a"] * 40)), d[1]), r"y_train must hold numbers"),
    (lambda d: ((d[0][0], d[0][1]),), r"DEvol's \(\(x_train, y_train\), \(x_test, y_test\)\)"),
    (lambda d: (d[0], (d[1][0][:, :, :2], d[1][1])), r"x_test has examples of shape \(1, 2, 4\)"),
])
def test_bad_arrays_are_rejected_with_a_named_problem(mutate, pattern):
    with pytest.raises(ValueError, match=pattern):
        as_splits(mutate(_make()), task="classification", n_outputs=3)


def test_infinite_regression_target_is_named():
    x, y = np.zeros((10, 2)), np.zeros(10)
    y[6] = np.inf
    with pytest.raises(ValueError, match=r"y_train contains 1 non-finite.*y_train\[6, 0\] = inf"):
        as_splits(((x, y), (x, y)), task="regression")


def test_one_hot_width_must_match_n_outputs():
    x = np.zeros((10, 3))
    y = np.eye(4)[np.arange(10) % 4]
    with pytest.raises(ValueError, match="one-hot labels have 4 columns but n_outputs is 10"):
        as_splits(((x, y), (x, y)), n_outputs=10)


def test_validate_splits_catches_hand_built_problems():
    good = as_splits(_make())
    import attrs

    with pytest.raises(ValueError, match=r"y_val\[0\] = 7 is outside \[0, 3\)"):
        validate_splits(attrs.evolve(good, y_val=torch.full_like(good.y_val, 7)))
    with pytest.raises(ValueError, match="x_test must be float32"):
        validate_splits(attrs.evolve(good, x_test=good.x_test.double()))
    with pytest.raises(ValueError, match="must be a torch.Tensor"):
        DataSplits(np.zeros((2, 2)), *[good.y_train] + [good.x_val, good.y_val, good.x_test,
                                                          good.y_test])
    with pytest.raises(ValueError, match="task must be one of"):
        attrs.evolve(good, task="ranking")


class _Schema:
    def __init__(self, input_shape, n_outputs=3, task="classification"):
        self.input_shape, self.n_outputs, self.task = input_shape, n_outputs, task


def test_check_compatible_names_both_sides():
    data = as_splits(_make())
    check_compatible(data, _Schema((1, 4, 4)))
    with pytest.raises(ValueError, match=r"shape \(1, 4, 4\).*input_shape \(1, 28, 28\)"):
        check_compatible(data, _Schema((1, 28, 28)))
    with pytest.raises(ValueError, match="3 classes but the schema has n_outputs = 10"):
        check_compatible(data, _Schema((1, 4, 4), n_outputs=10))
    with pytest.raises(ValueError, match="classification task but the schema is for regression"):
        check_compatible(data, _Schema((1, 4, 4), task="regression"))


def test_check_compatible_with_the_real_schema(digits_splits):
    from pytorch_devol.schema import GenomeSchema

    check_compatible(digits_splits, GenomeSchema.devol(input_shape=(1, 8, 8)))
    with pytest.raises(ValueError, match=r"\(1, 8, 8\).*\(1, 28, 28\)"):
        check_compatible(digits_splits, GenomeSchema.devol())
