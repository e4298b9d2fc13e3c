"""Experiment trackers: a search's progress in TensorBoard or MLflow, as search callbacks.

    Search(schema, data, callbacks=[TensorBoardCallback("tb/digits")]).run()
    Search(schema, data, callbacks=[MLflowCallback("sqlite:///mlflow.db")]).run()

Both log the same numbers. Per candidate (step = candidate index): its fitness and finite
metrics, only for records that trained fully and fresh (the final rung of a multi-fidelity
search, not a cached copy, status "ok"), so each candidate index appears at most once. Per
generation (step = generation): best, mean and std fitness, the best so far, and how many
candidates were evaluated, cached, failed or infeasible. At the end: the best candidate's
metrics and decoded genome. Each needs an optional extra (``pip install
'pytorch-devol[tensorboard]'`` / ``'pytorch-devol[mlflow]'``), imported only when the callback
is built. Both are ``best_effort``: one that cannot write (an OSError: a full disk) is dropped
with a warning and the search goes on; any other error stops the search.
"""

from __future__ import annotations

import importlib
import json
import os
import time
from pathlib import Path
from typing import Any

from ..callbacks import Callback, GenerationSummary, RunInfo
from ..layout import TRACKED
from .tracked_values import (
    best_values,
    candidate_values,
    generation_values,
    genome_hparams,
    settings_text,
)

__all__ = ["MLflowCallback", "TensorBoardCallback"]

DEFAULT_EXPERIMENT = "pytorch-devol"
RUN_DIR_TAG = "pytorch_devol.run_dir"



def _require(module: str, extra: str, user: str) -> None:
    """Import ``module`` or say which extra installs it."""
    try:
        importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{user} needs {module}: pip install 'pytorch-devol[{extra}]'") \
            from err


class TensorBoardCallback(Callback):
    """Writes the search's scalars, and the best candidate's hparams, to TensorBoard.

    Event files go into ``log_dir`` itself: use one per search (``tensorboard --logdir tb``
    shows ``tb/<name>`` side by side); a resume adds an event file there, read as the same run.
    Scalars: ``candidate/*`` (step = candidate index), ``generation/*`` (step = generation),
    ``best/*`` (step = number of records) and the hparams of the best genome; texts
    ``search/settings`` and ``best/genome``. Flushed after each candidate and generation, closed
    at the end.
    """

    best_effort = True  # not the record: a full disk drops it with a warning

    def __init__(self, log_dir: str | os.PathLike[str], flush_secs: int = 30):
        _require("tensorboard", "tensorboard", "TensorBoardCallback")
        from torch.utils.tensorboard import SummaryWriter

        self._writer_type = SummaryWriter
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)  # an unusable folder fails here, early
        self.flush_secs = flush_secs
        self.writer: Any = None

    def describe(self) -> str:
        """How to pass this callback again (saved in ``config.json``, shown on resume)."""
        return f"TensorBoardCallback({str(self.log_dir)!r}) (CLI: --tensorboard {self.log_dir})"

    def _open(self) -> Any:
        if self.writer is None:
            self.writer = self._writer_type(str(self.log_dir), flush_secs=self.flush_secs)
        return self.writer

    def on_start(self, run: RunInfo) -> None:
        writer = self._open()
        if not run.resumed:
            writer.add_text("search/settings", settings_text(run.config))

    def on_record(self, record: dict[str, Any]) -> None:
        values = candidate_values(record)
        if values:
            writer = self._open()
            for tag, value in values.items():
                writer.add_scalar(tag, value, record["index"], walltime=record["finished_at"])
            writer.flush()  # on disk now: a crash loses none of it (a resume never relogs it)

    def on_generation(self, summary: GenerationSummary) -> None:
        writer = self._open()
        for tag, value in generation_values(summary).items():
            writer.add_scalar(tag, value, summary.generation)
        writer.flush()

    def on_end(self, result: Any) -> None:
        writer = self._open()
        record = result.best_record
        if record is not None:
            self._write_best(writer, result, record)
        writer.close()
        self.writer = None

    @staticmethod
    def _write_best(writer: Any, result: Any, record: dict[str, Any]) -> None:
        """The best genome as an HParams session whose metrics are the ``best/*`` scalars
        (TensorBoard's own ``hparams`` protos: booleans stay booleans)."""
        from tensorboard.plugins.hparams import summary_v2 as hp

        step = len(result.history)
        metrics = {f"best/{k}": v for k, v in best_values(result).items()}
        values, domains = genome_hparams(result.schema, record["genome"])
        params = {name: hp.HParam(name, hp.Discrete(domains[name])) for name in values}
        config = hp.hparams_config_pb(hparams=list(params.values()),
                                      metrics=[hp.Metric(tag) for tag in metrics])
        session = hp.hparams_pb({params[k]: v for k, v in values.items()},
                                trial_id=result.run_dir.name)
        for summary in (config, session):
            writer.file_writer.add_summary(summary, step)
        for tag, value in metrics.items():
            writer.add_scalar(tag, value, step)
        lines = [f"candidate {record['index']}", *result.describe()]
        writer.add_text("best/genome", "\n".join("    " + line for line in lines), step)

    def close(self) -> None:
        """Close the event file early (a search that ends closes it itself)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    """Nested settings as dotted MLflow params; None and empty sections are left out."""
    if value is None:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out)
    elif isinstance(value, (list, tuple)):
        out[prefix] = json.dumps(value, default=str)
    else:
        out[prefix] = str(value)


def search_params(config: dict[str, Any]) -> dict[str, str]:
    """``config.json``'s search and train settings and the data's summary, fingerprint and
    spec, as ``search.*``, ``train.*`` and ``data.*`` params."""
    out: dict[str, str] = {}
    _flatten("search", config.get("search"), out)
    _flatten("train", config.get("train"), out)
    data = config.get("data") or {}
    for key in ("summary", "fingerprint", "spec"):
        _flatten(f"data.{key}", data.get(key), out)
    return out


def _context_tags(tags: dict[str, str]) -> dict[str, str]:
    """``tags`` plus the user and source tags MLflow's own ``start_run`` adds."""
    try:
        from mlflow.tracking.context.registry import resolve_tags
    except ImportError:  # an MLflow without it: our tags alone
        return tags
    return resolve_tags(tags)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]


class MLflowCallback(Callback):
    """Logs the search as one MLflow run, through an ``MlflowClient`` (no global state).

    ``tracking_uri`` None: MLflow's default (``MLFLOW_TRACKING_URI``, else its own). The run
    goes into ``experiment`` (default "pytorch-devol", created when missing, with
    ``artifact_location`` if given), is named after the run directory and tagged with its
    absolute path (``pytorch_devol.run_dir``); a resumed search finds that run by the tag and
    continues it. Params: ``search.*``, ``train.*``, ``data.*`` from ``config.json``. Metrics:
    ``candidate/*`` (step = candidate index, timestamp = when it finished), ``generation/*``
    (step = generation), and at the end ``best_*`` and ``candidates_*`` counts. Tags
    ``pytorch_devol.best_index`` and ``pytorch_devol.best_genome`` (its layers, one a line).
    Artifacts: best.pt, best_genome.json, results.csv, config.json, pareto.json (if any). The
    run ends FINISHED; an interrupted search leaves it RUNNING, for its resume to continue.
    """

    best_effort = True

    def __init__(self, tracking_uri: str | None = None, experiment: str | None = None, *,
                 artifact_location: str | os.PathLike[str] | None = None):
        _require("mlflow", "mlflow", "MLflowCallback")
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient(tracking_uri)
        self.experiment = experiment or DEFAULT_EXPERIMENT
        self.artifact_location = None if artifact_location is None else str(artifact_location)
        self.experiment_id = self._experiment_id()  # a bad URI or store fails here, early
        self.run_id: str | None = None  # the MLflow run of the current search

    def describe(self) -> str:
        """How to pass this callback again (saved in ``config.json``, shown on resume)."""
        uri = self.client.tracking_uri
        return (f"MLflowCallback({uri!r}, {self.experiment!r}) (CLI: --mlflow {uri}"
                + ("" if self.experiment == DEFAULT_EXPERIMENT else "; experiment: Python only")
                + ")")

    # -- the run ------------------------------------------------------------------------------
    def _experiment_id(self) -> str:
        from mlflow.exceptions import MlflowException

        found = self.client.get_experiment_by_name(self.experiment)
        if found is None:
            try:
                return self.client.create_experiment(self.experiment, self.artifact_location)
            except MlflowException:  # created meanwhile by another process
                found = self.client.get_experiment_by_name(self.experiment)
                if found is None:
                    raise
        if found.lifecycle_stage != "active":
            raise ValueError(f"MLflow experiment {self.experiment!r} is deleted: restore it "
                             "or choose another experiment=")
        return found.experiment_id

    def _find(self, experiment_id: str, run_dir: str) -> Any:
        """The latest active MLflow run tagged with ``run_dir``, or None."""
        order = ["attributes.start_time DESC"]
        for quote in ("'", '"'):
            if quote not in run_dir:
                runs = self.client.search_runs(
                    [experiment_id], f"tags.`{RUN_DIR_TAG}` = {quote}{run_dir}{quote}",
                    max_results=1, order_by=order)
                return runs[0] if runs else None
        token = None  # a path with both quotes: compare every run's tag here
        while True:
            page = self.client.search_runs([experiment_id], "", order_by=order,
                                           page_token=token)
            match = next((r for r in page if r.data.tags.get(RUN_DIR_TAG) == run_dir), None)
            if match is not None or not page.token:
                return match
            token = page.token

    def on_start(self, run: RunInfo) -> None:
        experiment_id = self.experiment_id
        run_dir = str(Path(run.run_dir).resolve())
        found = self._find(experiment_id, run_dir) if run.resumed else None
        if found is None:
            summary = (run.config.get("data") or {}).get("summary")
            tags = {RUN_DIR_TAG: run_dir,
                    "mlflow.note.content": f"pytorch-devol search in {run_dir}"
                    + (f" on {summary}" if summary else "")}
            found = self.client.create_run(experiment_id, run_name=Path(run_dir).name,
                                           tags=_context_tags(tags))
        else:
            self.client.update_run(found.info.run_id, status="RUNNING")
        self.run_id = found.info.run_id
        logged = found.data.params  # params are immutable: log only what is missing
        self._log_params({k: v for k, v in search_params(run.config).items()
                          if k not in logged})

    def _log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param
        from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH, MAX_PARAMS_TAGS_PER_BATCH

        items = [Param(k, v[:MAX_PARAM_VAL_LENGTH]) for k, v in params.items()]
        for chunk in _chunks(items, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(self._run(), params=chunk)

    def _log_metrics(self, values: dict[str, float], step: int,
                     timestamp: float | None = None) -> None:
        from mlflow.entities import Metric
        from mlflow.utils.validation import MAX_METRICS_PER_BATCH

        ms = int(1000 * (time.time() if timestamp is None else timestamp))
        items = [Metric(k, v, ms, step) for k, v in values.items()]
        for chunk in _chunks(items, MAX_METRICS_PER_BATCH):
            self.client.log_batch(self._run(), metrics=chunk)

    def _run(self) -> str:
        if self.run_id is None:
            raise RuntimeError("MLflowCallback got an event before on_start: pass it to "
                               "Search(callbacks=[...]) rather than calling it yourself")
        return self.run_id

    # -- events -------------------------------------------------------------------------------
    def on_record(self, record: dict[str, Any]) -> None:
        values = candidate_values(record)
        if values:
            self._log_metrics(values, record["index"], record.get("finished_at"))

    def on_generation(self, summary: GenerationSummary) -> None:
        self._log_metrics(generation_values(summary), summary.generation)

    def on_end(self, result: Any) -> None:
        from mlflow.utils.validation import MAX_TAG_VAL_LENGTH

        run_id = self._run()
        counts = {f"candidates_{k}": v for k, v in result.counts().items()}
        if result.objectives:
            counts["pareto_front_size"] = len(result.pareto_front)
        best = {f"best_{k}": v for k, v in best_values(result).items()}
        self._log_metrics({**best, **counts}, 0)
        record = result.best_record
        if record is not None:
            self.client.set_tag(run_id, "pytorch_devol.best_index", str(record["index"]))
            self.client.set_tag(run_id, "pytorch_devol.best_genome",
                                "\n".join(result.describe())[:MAX_TAG_VAL_LENGTH])
        for name in TRACKED:
            path = Path(result.run_dir) / name
            if path.is_file():
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED")
        self.run_id = None
