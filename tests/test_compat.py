"""DEvol's API (pytorch_devol.compat): tiny DEvol-style searches on real data, the CSV round
trip on our CSVs and on one written the way DEvol writes it, and one test per DEvol defect
that docs/migrating-from-devol.md says is fixed (named ``test_defect_*``)."""

from __future__ import annotations

import csv
import inspect
import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from pytorch_devol.compat import (
    KERAS_BATCH_SIZE,
    DEvol,
    GenomeHandler,
    best_row,
    devol_penalty,
)
from pytorch_devol.evolution._selection import fitness_proportional
from pytorch_devol.evolution._variation import single_point_crossover
from pytorch_devol.schema import OPTIMIZERS, InvalidGenomeError
from pytorch_devol.search.store import read_jsonl
from pytorch_devol.training import read_idx

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]


# -- data in DEvol's form: numpy, channels-last, float in [0, 1], one-hot labels -----------------
def keras_style(x: np.ndarray, y: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    return (x[..., None].astype("float32") / scale), np.eye(10, dtype="float32")[y]


def devol_digits(datasets) -> tuple:
    """scikit-learn's digits as DEvol's dataset tuple ((x_train, y_train), (x_test, y_test))."""
    bunch = datasets.load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    x, y = keras_style(bunch.images[order], bunch.target[order], 16.0)
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


@pytest.fixture(scope="module")
def digits_devol():
    return devol_digits(pytest.importorskip("sklearn.datasets", reason="digits need scikit-learn"))


def small_handler(**kw) -> GenomeHandler:
    args = dict(max_conv_layers=1, max_dense_layers=2, max_filters=16, max_dense_nodes=32,
                input_shape=(8, 8, 1), n_classes=10, optimizers=["adam", "rmsprop"], seed=0)
    return GenomeHandler(**{**args, **kw})


def read_rows(path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def searched(tmp_path_factory, digits_devol):
    """One DEvol-style search on digits: 2 generations of 4, 3 epochs."""
    out = tmp_path_factory.mktemp("devol")
    handler = small_handler()
    devol = DEvol(handler, str(out / "log.csv"), seed=0, verbose=False)
    model = devol.run(digits_devol, num_generations=2, pop_size=4, epochs=3)
    return handler, devol, model


# -- the API surface -----------------------------------------------------------------------------
def test_signatures_are_devols():
    def params(f):
        return [(p.name, p.default) for p in inspect.signature(f).parameters.values()
                if p.kind is p.POSITIONAL_OR_KEYWORD and p.name != "self"]

    e = inspect.Parameter.empty
    assert params(GenomeHandler.__init__) == [
        ("max_conv_layers", e), ("max_dense_layers", e), ("max_filters", e),
        ("max_dense_nodes", e), ("input_shape", e), ("n_classes", e),
        ("batch_normalization", True), ("dropout", True), ("max_pooling", True),
        ("optimizers", None), ("activations", None)]
    assert params(DEvol.__init__) == [("genome_handler", e), ("data_path", "")]
    assert params(DEvol.run) == [("dataset", e), ("num_generations", e), ("pop_size", e),
                                 ("epochs", e), ("fitness", None), ("metric", "accuracy")]
    assert params(GenomeHandler.best_genome) == [("csv_path", e), ("metric", "accuracy"),
                                                 ("include_metrics", True)]
    assert params(GenomeHandler.mutate) == [("genome", e), ("num_mutations", e)]


def test_genome_layout_and_names_are_devols():
    h = GenomeHandler(6, 4, 256, 1024, (28, 28, 1), 10)
    names = h.genome_representation()
    expected = [f"Conv{i} {k}" for i in range(6) for k in (
        "active", "num filters", "batch normalization", "activation", "dropout",
        "max pooling")] + [f"Dense{i} {k}" for i in range(3) for k in (
            "active", "num nodes", "batch normalization", "activation", "dropout")]
    assert names == expected + ["Optimizer"]
    genome = h.generate()
    assert len(genome) == len(names) == 52 and all(type(g) is int for g in genome)
    assert genome[1] in (8, 16, 32, 64, 128, 256) and 0 <= genome[4] <= 10
    assert genome[0] == 1  # DEvol: a generated genome has its first layer
    assert h.is_compatible_genome(genome)
    assert not h.is_compatible_genome(genome[:-1])
    bad = list(genome)
    bad[1] = 63
    assert not h.is_compatible_genome(bad)
    with pytest.raises(ValueError, match=r"gene 1 \(Conv0 num filters\) = 63"):
        h.decode(bad)


@pytest.mark.parametrize("position, value", [(0, 5), (2, 7), (5, 3), (4, 2.5), (3, 1.7)])
def test_genes_outside_the_space_are_rejected_not_coerced(position, value):
    h = GenomeHandler(1, 2, 64, 64, (8, 8, 1), 10)
    genome = [1, 16, 0, 0, 2, 1, 1, 32, 0, 0, 0, 0]
    assert h.is_compatible_genome(genome)
    genome[position] = value
    assert not h.is_compatible_genome(genome)
    with pytest.raises(InvalidGenomeError):
        h.to_vector(genome)


def test_decode_builds_devols_layers():
    h = GenomeHandler(2, 2, 64, 64, (28, 28, 1), 10)
    #        conv0: 32 filters, BN, sigmoid, dropout 0.25, pool | conv1 off | dense0: 64, relu
    genome = [1, 32, 1, 1, 5, 1] + [0, 8, 0, 0, 0, 0] + [1, 64, 0, 0, 0] + [3]
    model = h.decode(genome)
    kinds = [type(m).__name__ for m in model]
    assert kinds == ["Conv2d", "BatchNorm2d", "Sigmoid", "Dropout", "MaxPool2d", "Flatten",
                     "Linear", "ReLU", "Linear"]
    assert model[0].out_channels == 32 and model[3].p == 0.25 and model[6].out_features == 64
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_keras_optimizer_values_and_batch_size_are_pinned(tmp_path):
    h = GenomeHandler(1, 2, 16, 32, (8, 8, 1), 10)
    assert h.optimizer == ["adam", "rmsprop", "adagrad", "adadelta"]
    genome = h.generate()
    optimizers = {}
    for k in range(4):
        genome[-1] = k
        params = [nn.Parameter(torch.zeros(1))]
        optimizers[k] = h.schema.make_optimizer(h.to_vector(genome), params).defaults
    assert optimizers[0]["eps"] == 1e-7                      # Keras Adam
    assert optimizers[1]["alpha"] == 0.9 and optimizers[1]["lr"] == 1e-3  # Keras RMSprop rho
    assert optimizers[2]["lr"] == 1e-3 and optimizers[3]["lr"] == 1e-3    # Adagrad, Adadelta
    ours = GenomeHandler(1, 2, 16, 32, (8, 8, 1), 10, keras_optimizers=False)
    genome[-1] = 3
    params = [nn.Parameter(torch.zeros(1))]
    assert ours.schema.make_optimizer(ours.to_vector(genome), params).defaults["lr"] == 1.0
    devol = DEvol(h, str(tmp_path / "x.csv"), verbose=False)
    assert devol.train_config.batch_size == KERAS_BATCH_SIZE == 32


# -- a real search ---------------------------------------------------------------------------------
def test_run_returns_the_best_trained_model_and_writes_devols_csv(searched, digits_devol):
    handler, devol, model = searched
    result = devol.result
    assert isinstance(model, nn.Sequential) and not model.training
    assert result.counts()["evaluated"] == 8
    rows = read_rows(devol.datafile)
    assert rows[0] == handler.genome_representation() + ["Val Loss", "Val Accuracy"]
    assert len(rows) == 9 and all(len(r) == len(rows[0]) for r in rows)
    assert_rows_match_log(rows[1:], result.history)  # one row per candidate, in the log's order
    best = result.best_metrics
    assert best["val_accuracy"] == max(float(r[-1]) for r in rows[1:]) > 0.5
    # The returned model is the trained best: it scores what the log says on the test part.
    (_, _), (x_test, y_test) = digits_devol
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test).permute(0, 3, 1, 2))
    accuracy = float((logits.argmax(1).numpy() == y_test.argmax(1)).mean())
    assert accuracy == pytest.approx(best["test_accuracy"], abs=0.02)
    # Validation came out of the training part (10%), not out of the test set.
    summary = json.loads((Path(devol.run_dir) / "config.json").read_text())["data"]["summary"]
    assert "train 1260, val 140, test 397" in summary


def assert_rows_match_log(rows: list[list[str]], records: list[dict]) -> None:
    """DEvol's CSV rows are the records of results.jsonl, in the same order."""
    assert len(rows) >= len(records)
    for row, record in zip(rows, records):
        assert [int(v) for v in row[:-2]] == record["csv_genome"]
        m = record["metrics"]
        assert row[-2:] == ["", ""] if m.get("val_loss") is None else \
            [float(v) for v in row[-2:]] == pytest.approx([m["val_loss"], m["val_accuracy"]])


CHILD = """
import sys
from sklearn import datasets
from pytorch_devol.compat import DEvol
from tests.test_compat import devol_digits, small_handler
DEvol(small_handler(), sys.argv[1], seed=0, verbose=False).run(
    devol_digits(datasets), num_generations=2, pop_size=4, epochs=1)
"""


def test_csv_rows_are_written_as_candidates_finish_and_survive_kill_9(tmp_path, digits_devol):
    csv_path = tmp_path / "killed.csv"
    log = tmp_path / "killed.run" / "results.jsonl"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(csv_path)], cwd=REPO,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while len(read_jsonl(log)) < 2:
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "no 2 candidates logged in 300 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL  # killed mid-run, not finished
    records, rows = read_jsonl(log), read_rows(csv_path)
    header = small_handler().genome_representation() + ["Val Loss", "Val Accuracy"]
    assert rows[0] == header
    # Each row is appended right after its record is logged: a kill between the two may leave
    # the CSV one row behind the log, never more (the resume below rebuilds it).
    assert 2 <= len(records) < 8 and len(rows) - 1 >= len(records) - 1 >= 1
    assert_rows_match_log(rows[1:], records[:len(rows) - 1])
    for row in rows[1:]:  # well-formed, the last one too
        assert len(row) == len(header) and all(v.isdigit() for v in row[:-2])
        assert all(v == "" or 0.0 <= float(v) < 100.0 for v in row[-2:])
    # Resuming finishes the run, with every row once.
    again = DEvol(small_handler(), str(csv_path), seed=0, resume=True, verbose=False)
    again.run(digits_devol, num_generations=2, pop_size=4, epochs=1)
    history, rows = again.result.history, read_rows(csv_path)
    assert sorted(r["index"] for r in history) == list(range(8))
    assert rows[0] == header and len(rows) == 9
    assert_rows_match_log(rows[1:], history)


def test_best_genome_and_decode_best_read_our_csvs(searched):
    handler, devol, model = searched
    result = devol.result
    expected = handler.from_vector(result.best_genome)
    for path in (devol.datafile, Path(devol.run_dir) / "results.csv"):
        got = handler.best_genome(path)
        assert got[:-2] == expected
        assert got[-2:] == pytest.approx([result.best_metrics["val_loss"],
                                          result.best_metrics["val_accuracy"]])
        assert handler.best_genome(path, include_metrics=False) == expected
        by_loss = handler.best_genome(path, metric="loss")
        assert by_loss[-2] == pytest.approx(min(r["metrics"]["val_loss"]
                                                for r in result.history))
        untrained = handler.decode_best(path)
        assert [(k, v.shape) for k, v in untrained.state_dict().items()] == \
            [(k, v.shape) for k, v in model.state_dict().items()]


def test_resume_returns_the_finished_run_and_refuses_other_settings(searched, digits_devol):
    handler, devol, model = searched
    again = DEvol(handler, devol.datafile, seed=0, resume=True, verbose=False)
    resumed = again.run(digits_devol, num_generations=2, pop_size=4, epochs=3)
    assert len(again.result.history) == 8  # nothing retrained
    for a, b in zip(resumed.state_dict().values(), model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="epochs was 3, now 4"):
        again.run(digits_devol, num_generations=2, pop_size=4, epochs=4)


def test_mnist_subset_in_devols_numpy_form(tmp_path, mnist_root):
    raw = mnist_root / "MNIST" / "raw"
    images = read_idx(next(raw.glob("train-images-idx3-ubyte*")))
    labels = read_idx(next(raw.glob("train-labels-idx1-ubyte*"))).astype(int)
    x, y = keras_style(images[:1500], labels[:1500], 255.0)
    dataset = ((x[:1000], y[:1000]), (x[1000:], y[1000:]))
    handler = GenomeHandler(max_conv_layers=2, max_dense_layers=2, max_filters=16,
                            max_dense_nodes=64, input_shape=x.shape[1:], n_classes=10,
                            optimizers=["adam"], seed=1)
    devol = DEvol(handler, str(tmp_path / "mnist.csv"), seed=1, verbose=False)
    model = devol.run(dataset, num_generations=1, pop_size=3, epochs=2)
    assert model(torch.zeros(1, 1, 28, 28)).shape == (1, 10)
    assert devol.result.best_metrics["val_accuracy"] > 0.5  # chance is 0.1


def test_demo_runs_on_digits(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(REPO / "examples" / "devol_demo.py"), "--digits", "--quick",
         "--generations", "1", "--population", "2", "--epochs", "1",
         "--data-path", str(tmp_path / "demo.csv")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "test accuracy of the returned model" in proc.stdout
    assert len(read_rows(tmp_path / "demo.csv")) == 3  # header + 2 candidates


# -- DEvol's CSV -----------------------------------------------------------------------------------
DEVOL_CSV = """\
Conv0 active,Conv0 num filters,Conv0 batch normalization,Conv0 activation,Conv0 dropout,\
Conv0 max pooling,Dense0 active,Dense0 num nodes,Dense0 batch normalization,Dense0 activation,\
Dense0 dropout,Optimizer,Val Loss,Val Accuracy
1,16,1,0,3,2,1,32,0,0,5,1,0.4123,0.8711
1,8,0,1,0,1,0,16,1,1,10,0,2.3001,0.1135
1,16,0,0,2,2,1,16,0,1,4,0,0.3011,0.9023
1,8,1,0,0,0,1,32,1,0,0,1,{penalty},0.1
1,16,0,0,2,0,1,16,0,1,4,0,0.3102,0.9023
1,16,1
"""


@pytest.fixture()
def devol_csv(tmp_path) -> Path:
    """A CSV as DEvol writes it: no extra columns, max pooling 2, a failed model's penalty row
    and a torn last row (DEvol killed mid-write)."""
    path = tmp_path / "Thu Nov 27 10:00:00 2026.csv"
    path.write_text(DEVOL_CSV.format(penalty=repr(devol_penalty(10)[0])))
    return path


def test_defect_best_genome_reads_devols_own_csv(devol_csv):
    h = GenomeHandler(1, 2, 16, 32, (8, 8, 1), 10)
    assert h.best_genome(devol_csv) == [1, 16, 0, 0, 2, 2, 1, 16, 0, 1, 4, 0, 0.3011, 0.9023]
    assert h.best_genome(devol_csv, include_metrics=False)[:6] == [1, 16, 0, 0, 2, 2]
    model = h.decode_best(devol_csv)
    assert not any(isinstance(m, nn.MaxPool2d) for m in model)  # 2 never pooled in DEvol


def test_defect_devols_failure_penalty_never_wins_on_loss(tmp_path):
    # Every real model's loss is above DEvol's penalty 0.325, and the crashed model comes
    # first: were the penalty row not recognised, it would be the best by loss.
    lines = DEVOL_CSV.splitlines()
    header, crashed = lines[0], lines[4].format(penalty=repr(devol_penalty(10)[0]))
    real = ["1,16,1,0,3,2,1,32,0,0,5,1,0.4123,0.8711", "1,8,0,1,0,1,0,16,1,1,10,0,2.3001,0.1135",
            "1,16,0,0,2,2,1,16,0,1,4,0,0.3511,0.9023", "1,16,0,0,2,0,1,16,0,1,4,0,0.3302,0.8990"]
    path = tmp_path / "Thu Nov 27 11:00:00 2026.csv"
    path.write_text("\n".join([header, crashed, *real]) + "\n")
    h = GenomeHandler(1, 2, 16, 32, (8, 8, 1), 10)
    assert devol_penalty(10)[0] == pytest.approx(0.3250829733914482)  # sklearn's value
    assert devol_penalty(10)[0] < min(float(r.split(",")[-2]) for r in real)
    unaware = best_row(path, h.genome_representation(), "loss")  # penalty not recognised
    assert unaware.line == 2 and unaware.genome[:2] == [1, 8]  # the crash would win
    best = h.best_genome(path, metric="loss")
    assert best[-2:] == [0.3302, 0.899] and best[:6] == [1, 16, 0, 0, 2, 0]  # the crash ranks last
    assert h.best_genome(path)[-2:] == [0.3511, 0.9023]


def test_a_csv_of_another_search_space_is_refused(devol_csv):
    with pytest.raises(ValueError, match="another search space"):
        GenomeHandler(2, 2, 16, 32, (8, 8, 1), 10).best_genome(devol_csv)


# -- DEvol's defects, fixed ------------------------------------------------------------------------
def test_defect_elites_are_the_best_members_unmutated(searched):
    _, devol, _ = searched
    history = sorted(devol.result.history, key=lambda r: r["index"])
    first, second = history[:4], history[4:]
    best = max(first, key=lambda r: (r["fitness"], -r["index"]))
    elite = second[-1]  # int(4 * 0.95) = 3 children, then 1 elite
    assert elite["genome"] == best["genome"] and elite["cached"]  # kept as is, not retrained


def test_defect_fitness_is_validation_accuracy_not_test(tmp_path, digits_devol):
    (x_train, y_train), (x_test, y_test) = digits_devol
    wrong = np.roll(y_test, 1, axis=1)  # every test label is wrong: test accuracy ~ 0
    dataset = ((x_train[:1200], y_train[:1200]), (x_test, wrong),
               (x_train[1200:], y_train[1200:]))
    devol = DEvol(small_handler(optimizers=["adam"]), str(tmp_path / "v.csv"), verbose=False)
    devol.run(dataset, num_generations=1, pop_size=3, epochs=3)
    best = devol.result.best_metrics
    assert best["val_accuracy"] > 0.6 and best["test_accuracy"] < 0.2
    rows = read_rows(devol.datafile)[1:]
    assert max(float(r[-1]) for r in rows) == pytest.approx(best["val_accuracy"])
    summary = json.loads((Path(devol.run_dir) / "config.json").read_text())["data"]["summary"]
    assert "train 1200, val 200, test 397" in summary  # the given (x_val, y_val) is used


@pytest.fixture()
def diverging_optimizer(monkeypatch):
    """An optimizer whose steps turn the weights into NaN: the loss becomes NaN, a candidate's
    own failure (an optimizer gene that raises is a bug, refused before training)."""
    class Diverging(torch.optim.SGD):
        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                for param in group["params"]:
                    param.fill_(float("nan"))

    def diverges(params, device=None):
        return Diverging(params, lr=0.1)

    monkeypatch.setitem(OPTIMIZERS._entries, "compat-test-diverging", diverges)
    return "compat-test-diverging"


def test_defect_failed_models_are_recorded_and_never_best(tmp_path, digits_devol,
                                                          diverging_optimizer):
    h = small_handler(optimizers=["adam", diverging_optimizer], seed=3)
    devol = DEvol(h, str(tmp_path / "f.csv"), seed=3, verbose=False)
    devol.run(digits_devol, num_generations=1, pop_size=6, epochs=1, metric="loss")
    rows = read_rows(devol.datafile)[1:]
    assert len(rows) == 6  # the failures did not stop the run
    failed = [r for r in rows if r[-3] == "1"]
    assert failed and all(r[-2:] == ["", ""] for r in failed)  # no made-up penalty score
    assert all(r[-2] != "" for r in rows if r[-3] == "0")
    statuses = {r["metrics"]["status"] for r in devol.result.history if r["genome"][-1] == 1}
    assert statuses and "ok" not in statuses
    assert devol.result.best_genome[-1] == 0 and h.best_genome(devol.datafile, "loss")[-3] == 0


def test_defect_files_stay_out_of_the_working_directory(tmp_path, monkeypatch, digits_devol):
    monkeypatch.chdir(tmp_path)
    h = GenomeHandler(0, 2, 16, 32, (8, 8, 1), 10, optimizers=["adam"], seed=0)
    devol = DEvol(h, verbose=False)
    csv_path = Path(devol.datafile)
    assert csv_path.parent == Path("runs") and " " not in csv_path.name and ":" not in str(
        csv_path)
    devol.run(digits_devol, num_generations=1, pop_size=2, epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]  # no best-model.h5 here
    assert (Path(devol.run_dir) / "best.pt").is_file() and len(read_rows(csv_path)) == 3
    with pytest.raises(ValueError, match="already exists"):
        DEvol(h, str(csv_path), verbose=False)  # DEvol checked the wrong name
    with pytest.raises(FileExistsError):
        DEvol(h, str(tmp_path / "other.csv"), run_dir=devol.run_dir, verbose=False)


def test_defect_zero_conv_layers_and_small_maxima_work(tmp_path, digits):
    dense_only = GenomeHandler(0, 3, 16, 32, (8, 8, 1), 10, seed=0)
    genome = dense_only.generate()
    assert len(genome) == 11 and genome[0] == 1
    assert isinstance(dense_only.decode(genome)[0], nn.Flatten)
    tiny = GenomeHandler(2, 2, max_filters=4, max_dense_nodes=8, input_shape=(8, 8, 1),
                         n_classes=10, max_pooling=False, seed=0)
    for _ in range(20):
        g = tiny.generate()
        model = tiny.decode(g)
        assert g[5] == g[11] == 0 and not any(isinstance(m, nn.MaxPool2d) for m in model)
        assert {m.out_channels for m in model if isinstance(m, nn.Conv2d)} <= {4}
    devol = DEvol(dense_only, str(tmp_path / "d.csv"), verbose=False)  # data as DataSplits
    assert devol.run(digits, num_generations=1, pop_size=2, epochs=1)(
        torch.zeros(1, 1, 8, 8)).shape == (1, 10)


def test_defect_max_pooling_two_is_gone_but_still_read():
    h = GenomeHandler(3, 2, 16, 32, (28, 28, 1), 10, seed=0)
    pools = [g[i] for g in (h.generate() for _ in range(300)) for i in (5, 11, 17)]
    assert set(pools) == {0, 1} and 0.4 < np.mean(pools) < 0.6  # DEvol: 1/3 pooled
    genome = [1, 16, 0, 0, 0, 2] + [0, 8, 0, 0, 0, 0] * 2 + [1, 32, 0, 0, 0] + [0]
    assert h.is_compatible_genome(genome)
    same = list(genome)
    same[5] = 0
    assert str(h.decode(genome)) == str(h.decode(same))
    child = h.mutate(genome, 2)
    assert child[5] in (0, 1) and h.is_compatible_genome(child)  # 2 is written back as 0


def test_defect_mutation_always_changes_and_revives_layers():
    h = GenomeHandler(2, 2, 16, 32, (8, 8, 1), 10, seed=0)
    genome = [1, 16, 0, 0, 0, 0] + [0, 8, 0, 0, 0, 0] + [1, 32, 0, 0, 0] + [0]
    before = list(genome)
    revived = 0
    for _ in range(2000):
        child = h.mutate(genome, 3)
        changed = sum(a != b for a, b in zip(child, genome))
        assert 1 <= changed <= 2 and h.is_compatible_genome(child)  # DEvol: 0 in 63%
        revived += child[6] == 1
    assert genome == before  # DEvol mutated in place
    assert revived / 2000 > 0.04  # DEvol revived an inactive layer in ~0.3% of calls
    with pytest.raises(ValueError):
        h.mutate(genome, 0)


def test_defect_randomness_is_seeded_and_private(tmp_path, digits_devol):
    np_state, py_state = np.random.get_state()[1].copy(), random.getstate()
    a, b = small_handler(seed=7), small_handler(seed=7)
    assert [a.generate() for _ in range(5)] == [b.generate() for _ in range(5)]
    g, _ = a.generate(), b.generate()
    assert [a.mutate(g, 4) for _ in range(5)] == [b.mutate(g, 4) for _ in range(5)]
    c, d = small_handler(seed=7), small_handler(seed=8)
    assert [c.generate() for _ in range(5)] != [d.generate() for _ in range(5)]
    logs = []
    for k in range(2):
        devol = DEvol(small_handler(), str(tmp_path / f"s{k}.csv"), seed=5, verbose=False)
        devol.run(digits_devol, num_generations=1, pop_size=3, epochs=1)
        logs.append(read_rows(devol.datafile))
    assert logs[0] == logs[1]  # same seed, same search, same scores (CPU)
    assert np.array_equal(np.random.get_state()[1], np_state) and random.getstate() == py_state


def test_defect_selection_reaches_every_member_and_crossover_mixes():
    rng = np.random.default_rng(0)
    equal = fitness_proportional(rng, np.full(5, 0.9), 2000)
    assert set(equal.tolist()) == set(range(5))  # DEvol: always member 0
    spread = fitness_proportional(rng, np.array([0.9, 0.5, 0.1]), 4000)
    assert (spread == 2).sum() > 0  # DEvol: the worst scored 0 and was never chosen
    h = GenomeHandler(2, 2, 16, 32, (8, 8, 1), 10)
    zeros = np.zeros((500, len(h.schema)), np.int64)
    ones = np.minimum(1, h.schema.cardinalities - 1)[None, :].repeat(500, 0)
    kids = single_point_crossover(rng, zeros, ones)
    assert not (kids == zeros).all(axis=1).any() and not (kids == ones).all(axis=1).any()
