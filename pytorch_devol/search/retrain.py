"""Retrain a searched architecture from scratch with several seeds, and say how reliable its
score is: held-out test metrics as mean and standard deviation over the seeds.

    summary = load_result("runs/x").retrain(epochs=30, seeds=3)   # CLI: pytorch-devol retrain

(``retrain(run_dir, ...)``, in ``result.py``, is the same for a run directory.)

Writes ``<run>/retrain/<candidate>/``: each seed's weights (``seed<K>.pt``, the format of
``export_model(format="state_dict")``, so ``load_exported_state_dict`` and ``export
--retrained K`` read it) and ``metrics.json``, rewritten after every seed. A killed retrain
run again with the same settings keeps the seeds already done.
"""

from __future__ import annotations

import io
import json
import math
import os
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import torch

from .._checks import check_int
from ..training import (
    RETRIED_FAILURES,
    DataSplits,
    EvalResult,
    TrainConfig,
    Trainer,
    as_splits,
)
from ..training.saved import check_same_data, load_saved_data
from .durable import atomic_write
from .layout import RETRAIN_METRICS, SEED_FILES, RunLayout, seed_file, state_dict_payload
from .lock import RunLock
from .store import RunStore

__all__ = ["TRAIN_ON", "RetrainSummary", "retrain_run", "retrained_weights_path"]

TRAIN_ON = ("train", "train+val")
REPORTED = ("test_accuracy", "test_loss", "test_mae", "val_accuracy", "val_loss", "val_mae",
            "epochs", "train_seconds")


@attrs.frozen
class RetrainSummary:
    """Per-seed metrics of a retrained candidate and their mean and sample sd (NaN for one
    seed). With ``train_on="train+val"`` the validation metrics are on training data."""

    candidate: int
    directory: Path
    settings: dict[str, Any]
    seeds: tuple[dict[str, Any], ...]

    def values(self, metric: str) -> list[float]:
        return [s[metric] for s in self.seeds if s.get(metric) is not None
                and math.isfinite(s[metric])]

    def mean(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.fmean(values) if values else math.nan

    def std(self, metric: str) -> float:
        values = self.values(metric)
        return statistics.stdev(values) if len(values) > 1 else math.nan

    def to_dict(self) -> dict[str, Any]:
        metrics = [m for m in REPORTED if self.values(m)]
        return {"candidate": self.candidate, "settings": self.settings,
                "seeds": list(self.seeds),
                "summary": {m: {"mean": self.mean(m), "std": self.std(m),
                                "n": len(self.values(m))} for m in metrics}}


def retrained_weights_path(run_dir: str | os.PathLike[str], candidate: int, seed: int) -> Path:
    """Where ``retrain`` keeps candidate ``candidate``'s weights of seed ``seed``."""
    return RunLayout(run_dir).retrained_weights(candidate, seed)


def _record(result: Any, candidate: int | None) -> dict[str, Any]:
    if candidate is None:
        best = result.best_record
        if best is None:
            raise ValueError(f"{result.run_dir}: no candidate has trained successfully, "
                             "nothing to retrain")
        return best
    for r in result.history:
        if r["index"] == candidate:  # a cached copy: the candidate it copied
            return _record(result, r["source_index"]) if r["cached"] and \
                r["source_index"] != candidate else r
    raise ValueError(f"{result.run_dir}: no candidate {candidate} to retrain (indices run "
                     f"0..{max((r['index'] for r in result.history), default=-1)})")


def _data(config: dict[str, Any], data: Any, data_root: Any, run_dir: Path) -> DataSplits:
    saved = config["data"]
    if data is None:
        if saved["spec"] is None:
            raise ValueError(f"{run_dir} was searched on arrays of your own: pass them again "
                             "(retrain(..., data=...))")
        splits = load_saved_data(saved["spec"], data_root)
    else:
        splits = as_splits(data)
    check_same_data(splits, saved, run_dir)
    return splits


def _on(splits: DataSplits, train_on: str) -> DataSplits:
    if train_on == "train":
        return splits
    return attrs.evolve(splits, x_train=torch.cat([splits.x_train, splits.x_val]),
                        y_train=torch.cat([splits.y_train, splits.y_val]))


def _seed_metrics(seed: int, result: EvalResult) -> dict[str, Any]:
    metrics = result.to_dict()
    out: dict[str, Any] = {"seed": seed, "status": metrics["status"]}
    out.update({k: metrics[k] for k in REPORTED if metrics.get(k) is not None})
    if not result.ok:
        out.update(reason=metrics.get("reason"), failure=result.failure)
    return out


def _final(seed: Any, directory: Path) -> bool:
    """A seed that needs no more training: trained (its weights on disk) or failed by its own
    fault; a machine's failure (a lost worker, a shared GPU's OOM) trains again."""
    if not isinstance(seed, dict) or not isinstance(seed.get("seed"), int):
        return False
    if seed.get("status") == "ok":
        return (directory / seed_file(seed["seed"])).exists()
    return seed.get("failure") not in RETRIED_FAILURES


def _previous(directory: Path, settings: dict[str, Any], overwrite: bool) -> list[dict[str, Any]]:
    """Seeds already retrained with these settings (a killed retrain continues); an earlier
    retrain with other settings is refused, or deleted with ``overwrite``."""
    path = directory / RETRAIN_METRICS
    if not path.exists():
        return []
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is damaged ({err}); move it away to retrain afresh") from None
    if not isinstance(saved, dict):
        raise ValueError(f"{path} is not a retrain summary; move it away to retrain afresh")
    old = saved.get("settings")
    if old != settings:
        if not overwrite:
            what = "; ".join(f"{k} {old.get(k)!r}, now {v!r}" for k, v in settings.items()
                             if old.get(k) != v) if isinstance(old, dict) else repr(old)
            raise ValueError(f"{directory} holds a retrain with other settings ({what}): "
                             "retrain with those, or overwrite it (--overwrite)")
        for stale in [path, *directory.glob(SEED_FILES)]:
            stale.unlink()
        return []
    return [s for s in saved.get("seeds", []) if _final(s, directory)]


def _save_weights(path: Path, result: Any, genome: list[int], outcome: EvalResult) -> None:
    """A seed's trained weights, in the ``state_dict`` export format."""
    buf = io.BytesIO()
    torch.save(state_dict_payload(result.schema, outcome.state_dict, genome, result.metric,
                                  outcome.fitness(result.metric)), buf)
    atomic_write(path, buf.getvalue())


def retrain_run(result: Any, candidate: int | None = None, epochs: int | None = None,
                seeds: int = 3, train_on: str = "train", *,
                patience: int | None | str = "search", data: Any = None,
                data_root: str | os.PathLike[str] | None = None, device: str | None = None,
                progress: Callable[[dict[str, Any]], None] | None = None,
                overwrite: bool = False) -> RetrainSummary:
    """`SearchResult.retrain` (see ``retrain`` for the arguments): ``result`` is the run's
    `SearchResult`, of which this reads ``run_dir``, ``schema``, ``metric``, ``history`` and
    ``best_record``."""
    run_dir = result.run_dir
    if train_on not in TRAIN_ON:
        raise ValueError(f"train_on must be one of {TRAIN_ON}, got {train_on!r}")
    seeds = check_int(seeds, "seeds")
    config = RunStore(run_dir).config()
    record = _record(result, candidate)
    train = {**config["train"], **({} if device is None else {"device": device})}
    train["epochs"] = check_int(epochs, "epochs") if epochs is not None else train["epochs"]
    if patience != "search":
        train["patience"] = check_int(patience, "patience", allow_none=True)
    if train_on == "train+val":
        train.update(patience=None, restore_best=False)
    splits = _on(_data(config, data, data_root, Path(run_dir)), train_on)
    settings = {"epochs": train["epochs"], "patience": train["patience"],
                "train_on": train_on, "genome": list(record["genome"])}
    directory = RunLayout(run_dir).retrained(record["index"])
    directory.mkdir(parents=True, exist_ok=True)
    with RunLock(directory):
        done = {s["seed"]: s for s in _previous(directory, settings, overwrite)}
        config, trainer = TrainConfig(**train), None

        def summary() -> RetrainSummary:
            return RetrainSummary(record["index"], directory, settings,
                                  tuple(done[k] for k in sorted(done) if k < seeds))

        for seed in range(seeds):
            if seed in done:
                continue
            if trainer is None or trainer.broken:  # a broken CUDA context: a fresh one
                trainer = Trainer(splits, config)
            outcome = trainer.evaluate(result.schema, record["genome"], seed=seed,
                                       keep_weights=True)
            if outcome.ok:
                _save_weights(retrained_weights_path(run_dir, record["index"], seed), result,
                              record["genome"], outcome)
            done[seed] = _seed_metrics(seed, outcome)
            atomic_write(directory / RETRAIN_METRICS,
                         json.dumps(summary().to_dict(), indent=2).encode())
            if progress is not None:
                progress(done[seed])
        return summary()
