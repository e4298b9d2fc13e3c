"""``pytorch-devol search --data``: an .npz of one's own (channels-last, one-hot, regression)
and a folder of images, end to end on the CPU; the run directory keeps the path and the
fingerprint, and ``--resume`` finds a moved file and refuses changed data."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from .cli_helpers import main, search_in_process

pytestmark = pytest.mark.slow

TINY = ["--max-conv-layers", "1", "--max-dense-layers", "2", "--max-filters", "16",
        "--max-dense-nodes", "32", "--generations", "1", "--population", "3", "--epochs", "1",
        "--seed", "2", "--precision", "fp32", "--fidelity", "none", "--quiet"]


def _u8_nhwc(x) -> np.ndarray:
    return (x.numpy().transpose(0, 2, 3, 1) * 255).round().astype(np.uint8)


@pytest.fixture
def npz(digits, tmp_path):
    """Digits as a user would save them: channels-last uint8 images, one-hot labels."""
    path = tmp_path / "mine.npz"
    np.savez(path, x_train=_u8_nhwc(digits.x_train), y_train=np.eye(10)[digits.y_train],
             x_test=_u8_nhwc(digits.x_test), y_test=np.eye(10)[digits.y_test],
             x_val=_u8_nhwc(digits.x_val), y_val=np.eye(10)[digits.y_val])
    return path


def _config(run) -> dict:
    return json.loads((run / "config.json").read_text())


def test_search_on_a_channels_last_npz_and_resume_after_it_moved(npz, tmp_path, one_thread):
    run = tmp_path / "run"
    search_in_process("--data", str(npz), *TINY, "--run-dir", str(run))
    config = _config(run)
    spec = config["data"]["spec"]
    assert spec["name"] == "npz" and spec["path"] == str(npz.resolve())
    assert "input (1, 8, 8)" in config["data"]["summary"] and "10 classes" in \
        config["data"]["summary"]
    assert len(config["data"]["fingerprint"]) == 64
    code, shown, err = main("show", str(run))
    assert code == 0 and "mine.npz" in shown, err
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    shutil.move(npz, moved / "mine.npz")
    code, _, err = main("search", "--resume", str(run), "--quiet")
    assert code == 2 and "missing (moved?)" in err and "--data NEWPATH" in err
    code, _, err = main("search", "--resume", str(run), "--data", str(moved), "--quiet")
    assert code == 0, err
    assert _config(run)["data"]["spec"]["path"] == str((moved / "mine.npz").resolve())
    code, _, err = main("search", "--resume", str(run), "--quiet")  # the new place is kept
    assert code == 0, err
    with np.load(moved / "mine.npz") as archive:  # same name, other contents: refused
        changed = {k: archive[k] for k in archive.files}
    changed["x_test"] = 255 - changed["x_test"]
    np.savez(moved / "mine.npz", **changed)
    code, _, err = main("search", "--resume", str(run), "--data", str(moved), "--quiet")
    assert code == 2 and "data differs" in err and "fingerprint" in err
    assert "new run directory" in err


def test_flat_features_search_dense_layers_only(digits, tmp_path, one_thread):
    path = tmp_path / "flat.npz"
    np.savez(path, x_train=digits.x_train.numpy().reshape(-1, 64), y_train=digits.y_train,
             x_test=digits.x_test.numpy().reshape(-1, 64), y_test=digits.y_test)
    tiny = TINY[2:]  # no --max-conv-layers: flat features take none
    code, _, err = main("search", "--data", str(path), *TINY, "--run-dir", str(tmp_path / "x"))
    assert code == 2 and "flat features (64,)" in err and not (tmp_path / "x").exists()
    run = tmp_path / "run"
    search_in_process("--data", str(path), *tiny, "--run-dir", str(run))
    records = [json.loads(r) for r in (run / "results.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["metrics"]["status"] == "ok" for r in records)


def test_resume_names_every_flag_it_ignores_and_refuses_data_for_a_built_in_run(tmp_path):
    run = tmp_path / "run"
    search_in_process(*TINY, "--run-dir", str(run))
    code, _, err = main("search", "--resume", str(run), "--generations", "3", "--constraint",
                        "params<=10", "--space", "modern", "--dataset", "mnist")
    assert code == 0, err
    note = next(line for line in err.splitlines() if line.startswith("note: resuming"))
    for flag in ("--generations", "--constraint", "--space", "--dataset"):
        assert flag in note
    code, _, err = main("search", "--resume", str(run), "--data", str(tmp_path), "--quiet")
    assert code == 2 and "bundled with scikit-learn" in err


def test_search_on_an_image_folder(digits, tmp_path, one_thread):
    image = pytest.importorskip("PIL.Image")
    root = tmp_path / "images"
    x, y = _u8_nhwc(digits.x_train[:90])[..., 0], digits.y_train[:90].numpy()
    for i, (pixels, label) in enumerate(zip(x, y % 3)):
        (root / f"class{label}").mkdir(parents=True, exist_ok=True)
        image.fromarray(pixels).convert("RGB").resize((12, 12)).save(root / f"class{label}" /
                                                                     f"{i}.png")
    run = tmp_path / "run"
    search_in_process("--data", str(root), "--image-size", "8", "--grayscale", *TINY,
                      "--run-dir", str(run))
    spec = _config(run)["data"]["spec"]
    assert spec["name"] == "folder" and spec["image_size"] == [8, 8] and spec["grayscale"]
    assert spec["classes"] == ["class0", "class1", "class2"]
    assert "3 classes, input (1, 8, 8)" in _config(run)["data"]["summary"]
    records = (run / "results.jsonl").read_text().splitlines()
    assert len(records) == 3 and all(json.loads(r)["metrics"]["status"] == "ok"
                                     for r in records)


def test_search_on_regression_targets(digits, tmp_path, one_thread):
    path = tmp_path / "reg.npz"
    target = lambda part: part.float().numpy()[:, None] / 9.0  # noqa: E731
    np.savez(path, x_train=digits.x_train.numpy(), y_train=target(digits.y_train),
             x_test=digits.x_test.numpy(), y_test=target(digits.y_test))
    run = tmp_path / "run"
    search_in_process("--data", str(path), "--task", "regression", *TINY, "--run-dir", str(run))
    config = _config(run)
    assert config["data"]["spec"]["task"] == "regression"
    assert config["search"]["metric"] == "loss" and not config["search"]["maximize"]
    record = json.loads((run / "results.jsonl").read_text().splitlines()[0])
    assert record["metrics"]["val_mae"] is not None


@pytest.mark.parametrize("args, message", [
    (["--task", "regression"], "--task, --image-size and --grayscale need --data"),
    (["--data", "nowhere.npz"], "no such data file"),
    (["--data", "{npz}", "--image-size", "4"], "--image-size and --grayscale apply to a folder"),
    (["--data", "{npz}", "--data-root", "x"], "--data with --data-root or --dataset"),
    (["--data", "{npz}", "--dataset", "mnist"], "--data with --data-root or --dataset"),
    (["--data", "{npz}", "--mlflow", "foo://bar"], "--mlflow foo://bar: "),
    (["--data", "{npz}", "--tensorboard", "{npz}/tb"], "--tensorboard "),
    (["--data", "{npz}", "--image-size", "0"], "expected N or HxW"),
])
def test_bad_data_arguments_fail_before_training(npz, tmp_path, args, message):
    args = [a.replace("{npz}", str(npz)) for a in args]
    code, _, err = main("search", *args, *TINY, "--run-dir", str(tmp_path / "run"))
    assert code == 2 and message in err
    assert not (tmp_path / "run").exists()
