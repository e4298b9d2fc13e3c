"""The run directory's layout: the name and place of every file a search, ``retrain`` and
``export`` write, and the export file's format. No other module spells a run-directory path;
this one imports nothing from the package, so everything that reads or writes a run (the
store, the Pareto front, the donor pool, warm start, the lock, ``result``, ``retrain``,
``report``) depends on it and it on none of them.

=========================  ====================================================================
``config.json``            schema spec, data spec, settings (``search`` section: `Settings`)
``results.jsonl``          one record per candidate per rung reached: the log, the only truth
``results.csv``            the same rows in DEvol's column layout, plus ours (rebuilt from the
                           log on resume)
``checkpoint.json``        strategy state, counters, candidates asked but not yet told
``best.pt``                the best model's state_dict; ``best_genome.json`` names it
``writer.lock``            held by the one search writing the directory
``states/``                paused training states (multi-fidelity), by genome and rung
``pareto.json``            multi-objective: the front; ``front/<index>.pt`` its weights
``donors/``                heredity: the donor pool's weights, ``<index>.pt``
``warm/``                  warm start: copies of the earlier run's weights, until the end
``retrain/<index>/``       ``seed<K>.pt`` (export format) and ``metrics.json``
``progress.png``           ``plot``; ``pareto.png`` for several objectives
=========================  ====================================================================
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import attrs

__all__ = ["BEST_GENOME", "BEST_WEIGHTS", "CHECKPOINT", "CONFIG", "CSV_FILE", "DONORS",
           "EXPORT_NAMES", "FRONT_DIR", "LOCK_FILE", "PARETO_FILE", "PARETO_PLOT",
           "PROGRESS_PLOT", "RECORDS", "RETRAIN_DIR", "RETRAIN_METRICS", "SEED_FILES", "STATES",
           "STATE_DICT_FORMAT", "STATE_DICT_VERSION", "TRACKED", "WARM", "WARM_SOURCES",
           "WEIGHT_FILES", "RunLayout",
           "front_entry", "keyed", "seed_file", "state_dict_payload", "unkeyed"]

CONFIG, RECORDS, CSV_FILE, CHECKPOINT = ("config.json", "results.jsonl", "results.csv",
                                         "checkpoint.json")
BEST_WEIGHTS, BEST_GENOME, LOCK_FILE = "best.pt", "best_genome.json", "writer.lock"
STATES, DONORS, WARM, FRONT_DIR, RETRAIN_DIR = "states", "donors", "warm", "front", "retrain"
PARETO_FILE, RETRAIN_METRICS, SEED_FILES = "pareto.json", "metrics.json", "seed*.pt"
PROGRESS_PLOT, PARETO_PLOT = "progress.png", "pareto.png"
#: The files a tracker (MLflow, TensorBoard) uploads at the end of a search, where present.
TRACKED = (BEST_WEIGHTS, BEST_GENOME, CSV_FILE, CONFIG, PARETO_FILE)
#: The weight files of a folder (``donors/``, ``front/``, ``warm/``): ``<index>.pt``.
WEIGHT_FILES = "*.pt"
#: The weight files a warm start's config may name in the earlier run (nothing else is read).
WARM_SOURCES = re.compile(rf"{re.escape(BEST_WEIGHTS)}|({DONORS}|{FRONT_DIR})/\d+\.pt")
#: ``export``'s default file names by format.
EXPORT_NAMES = {"state_dict": "model_state_dict.pt", "torchscript": "model.torchscript.pt",
                "onnx": "model.onnx"}
STATE_DICT_FORMAT, STATE_DICT_VERSION = "pytorch-devol/state_dict", 1
KEYED_FORMAT = "pytorch-devol/keyed"


@attrs.frozen
class RunLayout:
    """The paths of one run directory (nothing is read or created here)."""

    root: Path = attrs.field(converter=Path)

    def state(self, key: tuple[int, ...], rung: int) -> Path:
        """The training state a genome with canonical ``key`` paused in at ``rung``."""
        return self.root / STATES / f"{_digest(key)}-r{rung}.pt"

    def states_of(self, key: tuple[int, ...] | None) -> str:
        """A glob pattern (inside ``states/``) for the states of ``key`` (None: of all)."""
        return "*-r*.pt" if key is None else f"{_digest(key)}-r*.pt"

    def front_weights(self, index: int) -> Path:
        return self.root / front_entry(index)

    def donor(self, index: int) -> Path:
        return self.root / DONORS / f"{index}.pt"

    def warm_weights(self, position: int) -> Path:
        """The copy of the ``position``-th warm-start genome's weights (``warm/``)."""
        return self.root / WARM / f"{position}.pt"

    def retrained(self, candidate: int) -> Path:
        """The folder of candidate ``candidate``'s retrained seeds."""
        return self.root / RETRAIN_DIR / str(candidate)

    def retrained_weights(self, candidate: int, seed: int) -> Path:
        return self.retrained(candidate) / seed_file(seed)


def seed_file(seed: int) -> str:
    """The file of one retrained seed, in its candidate's ``retrain/<index>/`` folder."""
    return f"seed{seed}.pt"


def front_entry(index: int) -> str:
    """How ``pareto.json`` names a front member's weights (relative to the run directory)."""
    return f"{FRONT_DIR}/{index}.pt"


def _digest(key: tuple[int, ...]) -> str:
    return hashlib.sha256(",".join(map(str, key)).encode()).hexdigest()[:24]


def keyed(key: tuple[int, ...], tensors: dict[str, Any]) -> dict[str, Any]:
    """A donor's weights or a paused state as saved in the run directory: with the canonical
    key of the genome they belong to, so a file of another genome is never used."""
    return {"format": KEYED_FORMAT, "key": [int(k) for k in key], "tensors": tensors}


def unkeyed(payload: Any, key: tuple[int, ...]) -> dict[str, Any]:
    """The tensors of a `keyed` payload (or of a bare dict, as runs before keys saved them),
    checked to belong to ``key``; ValueError otherwise."""
    if not isinstance(payload, dict):
        raise ValueError("not a dict of tensors")
    if payload.get("format") != KEYED_FORMAT:
        return payload  # an older run's bare file
    if payload.get("key") != [int(k) for k in key]:
        raise ValueError("it belongs to another genome")
    if not isinstance(payload.get("tensors"), dict):
        raise ValueError("no tensors")
    return payload["tensors"]


def state_dict_payload(schema: Any, state_dict: dict[str, Any], genome: Any, metric: str,
                       fitness: float | None) -> dict[str, Any]:
    """What a state_dict export (and a retrained seed's file) holds: the weights on the CPU,
    the genome, the schema's spec and its decoded layers; plain data, loadable with
    ``torch.load(weights_only=True)``."""
    genome = [int(v) for v in genome]
    finite = fitness is not None and fitness == fitness and abs(fitness) != float("inf")
    return {
        "format": STATE_DICT_FORMAT, "version": STATE_DICT_VERSION,
        "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
        "genome": genome, "schema": schema.to_spec(), "metric": metric,
        "fitness": float(fitness) if finite else None,
        "layers": schema.describe(genome),
    }
