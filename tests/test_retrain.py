"""Retraining the winner: from scratch, K seeds, held-out test metrics as mean ± sd, written
under the run directory, resumable, exportable, the same from the CLI and from Python."""

from __future__ import annotations

import json
import shutil
import statistics

import pytest
import torch

from pytorch_devol.search import load_result, retrain
from pytorch_devol.search.report.export import load_exported_state_dict
from pytorch_devol.search.retrain import retrained_weights_path

from .cli_helpers import main, search_in_process

TINY = ["--max-conv-layers", "1", "--max-dense-layers", "2", "--max-filters", "16",
        "--max-dense-nodes", "32", "--generations", "2", "--population", "3", "--epochs", "2",
        "--seed", "5", "--precision", "fp32", "--fidelity", "none", "--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("retrain") / "run"
    search_in_process(*TINY, "--run-dir", str(path))
    return path


def _accuracy(model, data) -> float:
    with torch.no_grad():
        return float((model(data.x_test).argmax(1) == data.y_test).float().mean())


def test_retrain_reports_test_metrics_and_writes_them(run, digits, one_thread):
    code, out, err = main("retrain", str(run), "--seeds", "2", "--epochs", "1")
    assert code == 0, err
    best = load_result(run).best_record["index"]
    saved = json.loads((run / "retrain" / str(best) / "metrics.json").read_text())
    seeds = saved["seeds"]
    assert [s["seed"] for s in seeds] == [0, 1] and all(s["status"] == "ok" for s in seeds)
    values = [s["test_accuracy"] for s in seeds]
    summary = saved["summary"]["test_accuracy"]
    assert summary["mean"] == pytest.approx(statistics.fmean(values))
    assert summary["std"] == pytest.approx(statistics.stdev(values)) and summary["n"] == 2
    assert f"test_accuracy: {summary['mean']:.4f} ± {summary['std']:.4f}" in out
    assert saved["settings"]["epochs"] == 1 and all(s["epochs"] == 1 for s in seeds)
    for s in seeds:  # the weights written are the weights scored
        model, genome = load_exported_state_dict(retrained_weights_path(run, best, s["seed"]))
        assert genome.tolist() == load_result(run).best_record["genome"]
        assert _accuracy(model, digits) == pytest.approx(s["test_accuracy"], abs=1e-6)


def _copy(run, tmp_path):
    """The searched run without any retrain yet."""
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("retrain"))
    return copy


def test_a_second_retrain_keeps_the_seeds_done_and_python_agrees(run, tmp_path, one_thread):
    run = _copy(run, tmp_path)
    main("retrain", str(run), "--seeds", "1", "--epochs", "1")
    best = load_result(run).best_record["index"]
    weights = retrained_weights_path(run, best, 0)
    before = weights.stat().st_mtime_ns
    trained = []
    summary = load_result(run).retrain(epochs=1, seeds=2, progress=trained.append)
    assert [s["seed"] for s in trained] == [1]  # seed 0 was done: not trained again
    assert weights.stat().st_mtime_ns == before
    again = retrain(run, epochs=1, seeds=2, progress=trained.append)
    assert len(trained) == 1 and again.seeds == summary.seeds
    assert summary.mean("test_accuracy") == pytest.approx(
        statistics.fmean(s["test_accuracy"] for s in summary.seeds))


def test_other_settings_are_refused_unless_overwritten(run, tmp_path, one_thread):
    run = _copy(run, tmp_path)
    main("retrain", str(run), "--seeds", "1", "--epochs", "1")
    code, _, err = main("retrain", str(run), "--seeds", "1", "--epochs", "2")
    assert code == 2 and "epochs 1, now 2" in err and "--overwrite" in err
    code, out, err = main("retrain", str(run), "--seeds", "1", "--epochs", "2",
                          "--train-on", "train+val", "--overwrite")
    assert code == 0, err
    assert "validation data was trained on" in out
    best = load_result(run).best_record["index"]
    saved = json.loads((run / "retrain" / str(best) / "metrics.json").read_text())
    assert saved["settings"]["train_on"] == "train+val"
    assert saved["seeds"][0]["epochs"] == 2  # no early stopping on data it trains on


def test_export_of_a_retrained_model(run, tmp_path, one_thread):
    main("retrain", str(run), "--seeds", "1", "--epochs", "1", "--overwrite")
    out = tmp_path / "m.pt"
    code, _, err = main("export", str(run), "--retrained", "--out", str(out))
    assert code == 0, err
    best = load_result(run).best_record["index"]
    model, _ = load_exported_state_dict(out)
    ref, _ = load_exported_state_dict(retrained_weights_path(run, best, 0))
    x = torch.randn(3, 1, 8, 8)
    assert torch.equal(model(x), ref(x))
    code, _, err = main("export", str(run), "--retrained", "7")
    assert code == 2 and "no retrained weights of seed 7" in err and "--seeds 8" in err
    code, printed, err = main("export", str(run), "--retrained")  # its own default name
    assert code == 0, err
    assert f"model-candidate{best}-retrained0_state_dict.pt" in printed
    assert not (run / "model_state_dict.pt").exists()


@pytest.mark.parametrize("args, message", [
    (["--candidate", "999"], "no candidate 999"),
    (["--seeds", "0"], "--seeds must be >= 1"),
    (["--epochs", "0"], "--epochs must be >= 1"),
])
def test_bad_retrain_arguments_are_one_line_errors(run, args, message):
    code, _, err = main("retrain", str(run), *args)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_retrain_of_a_run_on_arrays_of_ones_own_needs_them(tmp_path, digits):
    from pytorch_devol import GenomeSchema, Search

    schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=1, max_filters=16,
                                max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
    arrays = ((digits.x_train.numpy(), digits.y_train.numpy()),
              (digits.x_test.numpy(), digits.y_test.numpy()),
              (digits.x_val.numpy(), digits.y_val.numpy()))
    Search(schema, arrays, generations=1, population_size=2, epochs=1, run_dir=tmp_path / "r",
           verbose=False).run()
    with pytest.raises(ValueError, match="pass them again"):
        retrain(tmp_path / "r", seeds=1)
    summary = retrain(tmp_path / "r", seeds=1, data=arrays)
    assert summary.seeds[0]["status"] == "ok"


def test_machine_failures_are_retrained_and_own_failures_kept(tmp_path):
    from pytorch_devol.search.retrain import _final

    (tmp_path / "seed0.pt").write_bytes(b"")
    assert _final({"seed": 0, "status": "ok"}, tmp_path)
    assert not _final({"seed": 1, "status": "ok"}, tmp_path)  # its weights are missing
    assert _final({"seed": 2, "status": "failed", "failure": "candidate"}, tmp_path)
    for kind in ("infrastructure", "timeout"):
        assert not _final({"seed": 3, "status": "failed", "failure": kind}, tmp_path)
    assert not _final({"seed": "0", "status": "ok"}, tmp_path)  # a damaged entry


def test_a_cached_copy_retrains_as_the_candidate_it_copied_and_patience_applies(
        run, tmp_path, one_thread):
    run = _copy(run, tmp_path)
    history = load_result(run).history
    copy = next((r for r in history if r["cached"]), None)
    target = copy["source_index"] if copy else load_result(run).best_record["index"]
    code, out, err = main("retrain", str(run), "--candidate",
                          str(copy["index"] if copy else target), "--seeds", "1",
                          "--epochs", "3", "--patience", "0")
    assert code == 0, err
    assert f"Candidate {target}," in out and "early stopping off" in out
    saved = json.loads((run / "retrain" / str(target) / "metrics.json").read_text())
    assert saved["settings"]["patience"] is None and saved["seeds"][0]["epochs"] == 3
