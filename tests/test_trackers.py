"""TensorBoardCallback and MLflowCallback on real tiny searches, read back with each tool's own
reader (TensorBoard's EventAccumulator, an MlflowClient on a SQLite store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.search import Callback, RunStore
from pytorch_devol.search.report.tracked_values import candidate_values
from pytorch_devol.search.report.trackers import MLflowCallback, TensorBoardCallback
from pytorch_devol.training import TrainConfig

pytestmark = [pytest.mark.slow,  # MLflow's own SQLAlchemy use, not ours:
              pytest.mark.filterwarnings("ignore:The ``noload`` loader:DeprecationWarning")]

SETTINGS = dict(generations=2, population_size=4, epochs=1, seed=0, verbose=False,
                train_config=TrainConfig(precision="fp32", batch_size=64))
CUT = 5  # records logged before the interrupted session stops


def tiny_schema() -> GenomeSchema:
    return GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                              max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)


def trained(records) -> list[dict]:
    """What the trackers log per candidate: fresh, final, successful trainings."""
    return sorted((r for r in records if r["final"] and not r["cached"]
                   and r["metrics"]["status"] == "ok"), key=lambda r: r["index"])


class Interrupted(Exception):
    """Stands in for a crash (or Ctrl-C) part-way through a search."""


class StopAfter(Callback):
    def __init__(self, n: int):
        self.left = n

    def on_record(self, record) -> None:
        self.left -= 1
        if self.left == 0:
            raise Interrupted


# -- without the extras ----------------------------------------------------------------------
def test_importing_the_module_imports_neither_tracker():
    code = ("import sys, pytorch_devol.search.report.trackers\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('tensorboard', 'mlflow') or m.startswith('torch.utils.tensorboard')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("cls, module, arg", [(TensorBoardCallback, "tensorboard", "tb"),
                                              (MLflowCallback, "mlflow", None)])
def test_a_missing_extra_says_how_to_install_it(monkeypatch, cls, module, arg):
    monkeypatch.setitem(sys.modules, module, None)  # "import module" now fails
    with pytest.raises(ImportError, match=rf"pip install 'pytorch-devol\[{module}\]'"):
        cls(arg)


def test_only_fresh_final_successful_records_are_logged_per_candidate():
    ok = {"index": 3, "fitness": 0.5, "cached": False, "final": True,
          "metrics": {"status": "ok", "val_accuracy": 0.5, "val_loss": 1.0, "params": 10,
                      "test_accuracy": None, "train_seconds": float("nan")}}
    assert candidate_values(ok) == {"candidate/fitness": 0.5, "candidate/val_accuracy": 0.5,
                                    "candidate/val_loss": 1.0, "candidate/params": 10.0}
    assert candidate_values({**ok, "cached": True}) == {}
    assert candidate_values({**ok, "final": False}) == {}
    assert candidate_values({**ok, "fitness": None,
                             "metrics": {**ok["metrics"], "status": "failed"}}) == {}


# -- TensorBoard -----------------------------------------------------------------------------
def events(log_dir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def tb_search(tmp_path_factory, digits_splits):
    pytest.importorskip("tensorboard", reason="TensorBoardCallback needs tensorboard")
    tmp = tmp_path_factory.mktemp("tb")
    result = Search(tiny_schema(), digits_splits, run_dir=tmp / "run",
                    callbacks=[TensorBoardCallback(tmp / "tb")], **SETTINGS).run()
    return result, events(tmp / "tb")


def test_tensorboard_logs_each_trained_candidate_by_index(tb_search):
    result, acc = tb_search
    expected = trained(result.history)
    assert expected and len(expected) <= len(result.history)
    fitness = acc.Scalars("candidate/fitness")
    assert [e.step for e in fitness] == [r["index"] for r in expected]
    assert [e.value for e in fitness] == pytest.approx([r["fitness"] for r in expected])
    for name in ("val_accuracy", "val_loss", "test_accuracy", "params", "train_seconds"):
        logged = acc.Scalars(f"candidate/{name}")
        assert [e.step for e in logged] == [r["index"] for r in expected], name
        assert [e.value for e in logged] == pytest.approx(
            [r["metrics"][name] for r in expected], rel=1e-6), name


def test_tensorboard_logs_each_generation(tb_search):
    result, acc = tb_search
    generations = range(SETTINGS["generations"])
    for tag in ("best_fitness", "mean_fitness", "best_so_far", "failed", "cached"):
        assert [e.step for e in acc.Scalars(f"generation/{tag}")] == list(generations), tag
    best = [max(r["fitness"] for r in result.history if r["generation"] == g
                and r["fitness"] is not None) for g in generations]
    assert [e.value for e in acc.Scalars("generation/best_fitness")] == pytest.approx(best)
    cached = [sum(r["cached"] for r in result.history if r["generation"] == g)
              for g in generations]
    assert [e.value for e in acc.Scalars("generation/cached")] == cached
    assert acc.Scalars("generation/best_so_far")[-1].value == pytest.approx(result.best_fitness)


def test_tensorboard_holds_the_best_genome_as_hparams(tb_search):
    from tensorboard.plugins.hparams import plugin_data_pb2

    result, acc = tb_search
    content = acc.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(content)
    data = plugin_data_pb2.HParamsPluginData.FromString
    hparams = data(content["_hparams_/session_start_info"]).session_start_info.hparams
    schema, genome = result.schema, result.best_genome
    arr = schema.validate(genome)
    for slot, gene in zip(schema.slots, schema.decode(genome)):
        active = schema.is_active(slot, arr)
        for field in slot.fields:
            name = f"{slot.name}.{field}"
            if not active and field != "active":
                assert name not in hparams
                continue
            value, logged = getattr(gene, field), hparams[name]
            if isinstance(value, bool):
                assert logged.bool_value is value, name
            elif isinstance(value, (int, float)):
                assert logged.number_value == pytest.approx(value), name
            else:
                assert logged.string_value == (value if isinstance(value, str)
                                               else repr(value)), name
    experiment = data(content["_hparams_/experiment"]).experiment
    assert "best/fitness" in {m.name.tag for m in experiment.metric_infos}
    assert acc.Scalars("best/fitness")[-1].value == pytest.approx(result.best_fitness)
    assert acc.Scalars("best/test_accuracy")[-1].value == pytest.approx(
        result.best_metrics["test_accuracy"])
    assert {"search/settings/text_summary", "best/genome/text_summary"} <= \
        set(acc.Tags()["tensors"])


# -- MLflow ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tracking(tmp_path_factory) -> tuple[str, Path]:
    """One SQLite store for the module (creating one takes seconds) and a folder for
    artifacts."""
    pytest.importorskip("mlflow", reason="MLflowCallback needs mlflow")
    pytest.importorskip("sqlalchemy", reason="MLflow's SQLite store needs sqlalchemy")
    from mlflow.tracking import MlflowClient

    tmp = tmp_path_factory.mktemp("mlflow")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    here = os.getcwd()
    os.chdir(tmp)  # the store's default artifact root is ./mlruns where it is created
    try:
        MlflowClient(uri).search_experiments()  # creates the database
    finally:
        os.chdir(here)
    return uri, tmp


def mlflow_callback(tracking, experiment: str) -> MLflowCallback:
    uri, tmp = tracking
    return MLflowCallback(uri, experiment, artifact_location=tmp / experiment)


def runs_of(callback: MLflowCallback):
    client = callback.client
    experiment = client.get_experiment_by_name(callback.experiment)
    return client.search_runs([experiment.experiment_id])


def test_mlflow_logs_one_finished_run_per_search(tracking, digits_splits, tmp_path,
                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)  # nothing MLflow writes may land outside tmp
    callback = mlflow_callback(tracking, "whole")
    result = Search(tiny_schema(), digits_splits, run_dir=tmp_path / "run",
                    callbacks=[callback], **SETTINGS).run()
    (run,) = runs_of(callback)
    client, run_id = callback.client, run.info.run_id
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.tags["pytorch_devol.run_dir"] == str((tmp_path / "run").resolve())
    assert run.data.params["search.generations"] == "2"
    assert run.data.params["search.population_size"] == "4"
    assert run.data.params["train.epochs"] == "1"
    assert run.data.params["data.summary"].startswith("digits")
    expected = trained(result.history)
    history = sorted(client.get_metric_history(run_id, "candidate/val_accuracy"),
                     key=lambda m: m.step)
    assert [m.step for m in history] == [r["index"] for r in expected]
    assert [m.value for m in history] == [r["metrics"]["val_accuracy"] for r in expected]
    steps = {m.step for m in client.get_metric_history(run_id, "generation/best_fitness")}
    assert steps == {0, 1}
    assert run.data.metrics["best_fitness"] == pytest.approx(result.best_fitness)
    assert run.data.metrics["best_test_accuracy"] == pytest.approx(
        result.best_metrics["test_accuracy"])
    assert run.data.tags["pytorch_devol.best_genome"] == "\n".join(result.describe())
    names = {a.path for a in client.list_artifacts(run_id)}
    assert {"best.pt", "best_genome.json", "results.csv", "config.json"} <= names
    assert Path(run.info.artifact_uri.removeprefix("file://")).is_relative_to(tracking[1])
    copy = client.download_artifacts(run_id, "best_genome.json", str(tmp_path))
    assert json.loads(Path(copy).read_text()) == RunStore(tmp_path / "run").best_info()
    assert not any(tmp_path.glob("mlruns")) and not any(tmp_path.glob("mlflow.db"))


def test_a_resumed_search_continues_its_mlflow_run(tracking, digits_splits, tmp_path,
                                                   monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    first = mlflow_callback(tracking, "resumed")
    with pytest.raises(Interrupted):
        Search(tiny_schema(), digits_splits, run_dir=run_dir,
               callbacks=[first, StopAfter(CUT)], **SETTINGS).run()
    (cut,) = runs_of(first)
    assert cut.info.status == "RUNNING"

    second = mlflow_callback(tracking, "resumed")
    result = Search.resume(run_dir, verbose=False, callbacks=[second]).run()
    (run,) = runs_of(second)
    assert run.info.run_id == cut.info.run_id and run.info.status == "FINISHED"
    client = second.client
    expected = trained(result.history)
    history = sorted(client.get_metric_history(run.info.run_id, "candidate/fitness"),
                     key=lambda m: m.step)
    assert [m.step for m in history] == [r["index"] for r in expected]  # each once
    assert [m.value for m in history] == [r["fitness"] for r in expected]
    assert min(m.step for m in history) < CUT <= max(m.step for m in history)  # both sessions
    generations = client.get_metric_history(run.info.run_id, "generation/best_fitness")
    assert sorted(m.step for m in generations) == [0, 1]
    assert run.data.params["search.generations"] == "2"
    assert run.data.metrics["best_fitness"] == pytest.approx(result.best_fitness)


# -- the command line ------------------------------------------------------------------------
def test_cli_tensorboard_and_mlflow_flags(tracking, tmp_path, monkeypatch):
    """``search --tensorboard DIR --mlflow URI``: event files TensorBoard reads, and an MLflow
    run an MlflowClient finds, with one entry per trained candidate in both."""
    from mlflow.tracking import MlflowClient

    from .cli_helpers import main, search_in_process

    pytest.importorskip("tensorboard", reason="--tensorboard needs tensorboard")
    monkeypatch.chdir(tmp_path)
    uri, _ = tracking
    MlflowClient(uri).create_experiment("pytorch-devol", str(tmp_path / "artifacts"))
    run = tmp_path / "run"
    search_in_process("--max-conv-layers", "1", "--max-dense-layers", "2", "--max-filters",
                      "16", "--max-dense-nodes", "32", "--generations", "2", "--population",
                      "3", "--epochs", "1", "--fidelity", "none", "--precision", "fp32",
                      "--quiet", "--run-dir", str(run), "--tensorboard", str(tmp_path / "tb"),
                      "--mlflow", uri)
    expected = [r["index"] for r in trained(RunStore(run).records())]
    acc = events(tmp_path / "tb")
    assert [e.step for e in acc.Scalars("candidate/fitness")] == expected
    assert [e.step for e in acc.Scalars("generation/best_fitness")] == [0, 1]
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("pytorch-devol")
    (found,) = client.search_runs([experiment.experiment_id],
                                  f"tags.`pytorch_devol.run_dir` = '{run.resolve()}'")
    assert found.info.status == "FINISHED"
    history = client.get_metric_history(found.info.run_id, "candidate/fitness")
    assert sorted(m.step for m in history) == expected
    assert found.data.params["search.population_size"] == "3"
    assert (tmp_path / "artifacts").is_dir()
    code, out, err = main("search", "--resume", str(run))  # without the flags: told so
    assert code == 0, err
    notes = [line for line in out.splitlines() if line.startswith("note: this search was")]
    assert len(notes) == 2 and f"--tensorboard {tmp_path / 'tb'}" in notes[0]
    assert f"--mlflow {uri}" in notes[1]
    assert not (Path(__file__).resolve().parents[1] / "mlruns").exists()
