"""DEvol's ``DEvol`` class: ``run`` drives the package's ``Search`` and writes DEvol's CSV.

Where the files go: DEvol's CSV at ``data_path`` and the run directory (``results.csv`` with
every detail, ``results.jsonl``, ``checkpoint.json``, ``best.pt``) beside it, named after it
(``x.csv`` -> ``x.run/``). Without ``data_path``: ``runs/devol-<date>-<time>.csv`` and
``runs/devol-<date>-<time>.run/`` under the working directory (DEvol wrote a ``ctime()``-named
CSV and ``best-model.h5`` straight into it).

DEvol's CSV gets each candidate's row as it finishes, flushed and fsynced, so a killed run
keeps them; a resume rebuilds it from ``results.jsonl`` (see ``DevolCsvLog``).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from torch import nn

from .._checks import check_int
from ..search import Evaluator, RunStore, Search, SearchResult
from ..search.layout import RECORDS
from ..search.strategies import DEVOL_GA_OPTIONS
from ..training import DataSplits, TrainConfig, as_splits
from .csvlog import DevolCsvLog, write_devol_csv
from .handler import GenomeHandler

__all__ = ["KERAS_BATCH_SIZE", "DEvol", "default_paths"]

KERAS_BATCH_SIZE = 32
"""Keras's default ``fit`` batch size, which every DEvol model trained with."""


def default_paths(data_path: str | os.PathLike[str] = "",
                  run_dir: str | os.PathLike[str] | None = None) -> tuple[Path, Path]:
    """(CSV path, run directory) for ``DEvol(data_path, run_dir=...)``; see the module doc."""
    if data_path:
        csv_path = Path(data_path)
    else:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        csv_path, k = Path("runs", f"devol-{stamp}.csv"), 1
        while csv_path.exists() or csv_path.with_suffix(".run").exists():
            k += 1
            csv_path = Path("runs", f"devol-{stamp}-{k}.csv")
    if run_dir is not None:
        return csv_path, Path(run_dir)
    run = csv_path.with_suffix(".run")
    return csv_path, run if run != csv_path else csv_path.with_name(csv_path.name + ".run")


def _metric(metric: str) -> str:
    metric = "accuracy" if metric == "acc" else metric
    if metric not in ("accuracy", "loss"):
        raise ValueError(f"Invalid metric name {metric!r} provided - should be 'accuracy' or "
                         "'loss'")
    return metric


class DEvol:
    """DEvol's genetic search with DEvol's signature, on the package's engine and trainer.

    ``data_path``: where DEvol's CSV goes (see the module doc for the default). Added,
    keyword-only: ``run_dir`` (default: beside the CSV), ``seed`` (GA and training; DEvol was
    unseeded), ``train_config`` (default: ``TrainConfig(batch_size=32)``, Keras's batch size;
    ``run``'s ``epochs`` overrides its epochs), ``device``, ``evaluator`` (e.g. a
    ``ProcessPoolEvaluator``), ``validation_split`` (the share of the training data held out
    for fitness and early stopping when the dataset has no validation part), ``resume`` (continue
    an interrupted run of the same ``data_path``/``run_dir``), ``verbose``.
    """

    def __init__(self, genome_handler: GenomeHandler, data_path: str | os.PathLike[str] = "",
                 *, run_dir: str | os.PathLike[str] | None = None, seed: int = 0,
                 train_config: TrainConfig | None = None, device: str | None = None,
                 evaluator: Evaluator | None = None, validation_split: float = 0.1,
                 resume: bool = False, verbose: bool = True):
        if not isinstance(genome_handler, GenomeHandler):
            raise TypeError("genome_handler must be a pytorch_devol.compat.GenomeHandler, got "
                            f"{type(genome_handler).__name__}")
        seed = check_int(seed, "seed", 0)
        if not 0.0 < float(validation_split) < 1.0:
            raise ValueError(f"validation_split must lie in (0, 1), got {validation_split!r}")
        self.genome_handler = genome_handler
        datafile, self.run_dir = default_paths(data_path, run_dir)
        self.datafile = str(datafile)
        self.seed, self.device, self.evaluator = seed, device, evaluator
        self.train_config = train_config or TrainConfig(batch_size=KERAS_BATCH_SIZE)
        self.validation_split, self.resume, self.verbose = float(validation_split), resume, verbose
        self.result: SearchResult | None = None
        if not resume:
            if datafile.is_file() and datafile.stat().st_size > 0:
                raise ValueError(f"Non-empty file {datafile} already exists. Please change the "
                                 "file path to prevent overwriting genome data (or pass "
                                 "resume=True to continue that run).")
            RunStore(self.run_dir).check_new()
        if not datafile.is_file() or datafile.stat().st_size == 0:
            write_devol_csv(datafile, genome_handler.genome_representation(), [])
        if verbose:
            print(f"Genome encoding and metric data stored at {datafile} (run directory "
                  f"{self.run_dir})\n", flush=True)

    def __repr__(self) -> str:
        return f"DEvol({self.genome_handler!r}, data_path={self.datafile!r})"

    def _splits(self, dataset: Any) -> DataSplits:
        schema = self.genome_handler.schema
        return as_splits(dataset, val_fraction=self.validation_split, seed=self.seed,
                         task="classification", input_shape=schema.input_shape,
                         n_outputs=schema.n_outputs)

    def _search(self, data: DataSplits, num_generations: int, pop_size: int, epochs: int,
                fitness: Callable[..., Any] | None, metric: str,
                on_record: Callable[[dict[str, Any]], None]) -> Search:
        if self.resume and RunStore(self.run_dir).exists():
            saved = RunStore(self.run_dir).config()
            asked = {"generations": num_generations, "population_size": pop_size,
                     "metric": metric}
            differ = {k: (saved["search"][k], v) for k, v in asked.items()
                      if saved["search"][k] != v}
            if saved["train"]["epochs"] != epochs:
                differ["epochs"] = (saved["train"]["epochs"], epochs)
            if differ:
                raise ValueError(f"cannot resume {self.run_dir} with other settings: "
                                 + ", ".join(f"{k} was {a!r}, now {b!r}"
                                             for k, (a, b) in differ.items()))
            return Search.resume(self.run_dir, data=data, fitness=fitness,
                                 evaluator=self.evaluator, verbose=self.verbose,
                                 device=self.device, on_record=on_record)
        return Search(self.genome_handler.schema, data, generations=num_generations,
                      population_size=pop_size, epochs=epochs, seed=self.seed,
                      run_dir=self.run_dir, device=self.device, evaluator=self.evaluator,
                      metric=metric, fitness=fitness, train_config=self.train_config,
                      verbose=self.verbose, on_record=on_record,
                      # DEvol's algorithm, not Search's defaults: its GA, every candidate
                      # trained in full, no heredity
                      strategy="ga", strategy_options=dict(DEVOL_GA_OPTIONS) or None,
                      fidelity=None, inherit_weights=False)

    def run(self, dataset: Any, num_generations: int, pop_size: int, epochs: int,
            fitness: Callable[..., Any] | None = None, metric: str = "accuracy") -> nn.Module:
        """Search and return the best trained model (``nn.Sequential``, CPU, eval mode).

        ``dataset`` is DEvol's ``((x_train, y_train), (x_test, y_test))`` with an optional
        third ``(x_val, y_val)``: numpy or torch, channels-last or NCHW images, one-hot or
        integer labels (or a ``DataSplits``). Fitness is the accuracy (or loss) on validation
        data: the given ``(x_val, y_val)``, else ``validation_split`` of the training part
        held out (seeded, stratified). The test part is only reported (DEvol selected on it).
        ``fitness`` is DEvol's transform of the min-max scaled scores. Each candidate's row is
        appended to DEvol's CSV as it finishes (flushed and fsynced: a killed run keeps it)
        and ``self.result`` holds the ``SearchResult``. Raises RuntimeError when no candidate
        trained at all.
        """
        metric = _metric(metric)
        log = self._csv_log()
        search = self._search(self._splits(dataset), num_generations, pop_size, epochs,
                              fitness, metric, on_record=log.add)
        log.rebuild()  # a resume starts from the rows of the log, never repeating one
        self.result = search.run()
        model = self.result.best_model
        if model is None:
            reasons = {r["metrics"].get("reason") for r in self.result.history}
            raise RuntimeError(f"no candidate trained successfully (reasons: "
                               f"{sorted(str(r) for r in reasons)[:3]}); see "
                               f"{self.run_dir}/results.csv")
        return model

    def _csv_log(self) -> DevolCsvLog:
        return DevolCsvLog(self.datafile, self.genome_handler.genome_representation(),
                           Path(self.run_dir) / RECORDS)

    def write_csv(self) -> None:
        """Rewrite DEvol's CSV at ``datafile`` from the run directory's log (in its order)."""
        if RunStore(self.run_dir).exists():
            self._csv_log().rebuild()
