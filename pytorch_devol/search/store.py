"""Reading and writing the run directory, the single source of truth of a search (its
files are listed in ``layout.py``): the config (written once; the data spec again when the
data moved), the log (each record flushed and fsynced) and its CSV, the checkpoint (atomic
rename), the best model with its genome file, and paused training states.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from ..training.state import TrainState
from .durable import append_text, atomic_write
from .layout import (
    BEST_GENOME,
    BEST_WEIGHTS,
    CHECKPOINT,
    CONFIG,
    CSV_FILE,
    LOCK_FILE,
    RECORDS,
    STATES,
    RunLayout,
    keyed,
    unkeyed,
)
from .record import Record, as_record

__all__ = ["CSV_METRIC_COLUMNS", "SHAPES", "RunStore", "damaged", "load_into", "load_pt",
           "read_json", "read_jsonl", "shaped"]

# DEvol's two metric columns (named "Val" by DEvol though it filled them with test results; we
# fill them with validation results), then ours.
CSV_METRIC_COLUMNS = ["Val Loss", "Val Accuracy", "test_loss", "test_accuracy", "val_mae",
                      "test_mae", "params", "epochs", "train_seconds", "status", "failure",
                      "reason", "generation", "index", "cached", "rung", "rung_epochs",
                      "parent", "inherited_params", "lineage_epochs", "parent_run"]


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def _dumps(obj: Any, **kwargs: Any) -> str:
    return json.dumps(obj, default=_json_default, allow_nan=False, **kwargs)


#: The fields (and their types) a file must hold to be read at all; anything else is damage.
_INT, _NUMBER = (int,), (int, float, type(None))
SHAPES: dict[str, dict[str, tuple[type, ...]]] = {
    CONFIG: {"format": _INT, "schema": (dict,), "data": (dict,), "search": (dict,),
             "train": (dict,)},
    CHECKPOINT: {"strategy": (dict,), "next_index": _INT, "told": _INT, "generation": _INT,
                 "pending": (list,)},
    BEST_GENOME: {"index": _INT, "genome": (list,), "weights_sha256": (str,),
                  "fitness": _NUMBER},
    RECORDS: {"index": _INT, "genome": (list,), "key": (list,), "metrics": (dict,),
              "generation": _INT, "seed": _INT, "csv_genome": (list,), "fitness": _NUMBER},
}
_NEXT = {CONFIG: "it cannot be rebuilt (results.jsonl beside it still holds every candidate)",
         CHECKPOINT: "the strategy's state cannot be rebuilt from the log: start a new search "
                     "from this one (--warm-start RUN_DIR)",
         BEST_GENOME: "the best weights cannot be checked: retrain the best candidate "
                      "(pytorch-devol retrain RUN_DIR)",
         RECORDS: "it cannot be rebuilt: a new search can start from the genomes it still "
                  "holds (--warm-start RUN_DIR)"}


def damaged(path: Path, reason: str) -> ValueError:
    """The one-line error for a damaged run-directory file, saying what can be done."""
    return ValueError(f"{path} is damaged ({reason}); {_NEXT.get(path.name, 'move it away')}")


def shaped(path: Path, data: Any, kind: str | None = None) -> dict[str, Any]:
    """``data`` read from ``path`` if it has the fields of ``kind`` (default: the file's
    name, `SHAPES`), else `damaged`."""
    fields = SHAPES[kind or path.name]
    bad = [k for k, types in fields.items()
           if not isinstance(data, dict) or not isinstance(data.get(k), types)]
    if bad:
        raise damaged(path, f"{'no ' + bad[0] if isinstance(data, dict) else 'not an object'}"
                            f" where {kind or path.name} keeps one")
    return data


def read_json(path: Path) -> dict[str, Any]:
    """A run-directory JSON file, checked against its `SHAPES`."""
    try:
        data = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise damaged(path, f"not JSON: {err}") from None
    return shaped(path, data)


def load_pt(path: Path) -> Any:
    """A ``.pt`` file read with ``weights_only=True`` (tensors and plain data, never code); a
    damaged one is `damaged`."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many kinds for a damaged file
        raise damaged(path, f"not a readable weights file: {str(err).splitlines()[0]}") \
            from None


def load_into(model: torch.nn.Module, state: Any, path: Path) -> torch.nn.Module:
    """``model`` with ``state`` (read from ``path``) loaded; weights of another network (or
    no tensors at all) are `damaged`."""
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError, ValueError) as err:
        raise damaged(path, "its tensors do not fit this candidate's network: "
                            f"{str(err).splitlines()[0]}") from None
    return model


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a JSON-lines file; a torn (incomplete) last line is dropped, not an error."""
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    records = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except (json.JSONDecodeError, UnicodeDecodeError):
            if i >= len(lines) - 2:  # the last line (possibly followed by nothing): torn write
                break
            raise ValueError(f"{path}: line {i + 1} is not valid JSON; the log is damaged "
                             "beyond a torn last line and cannot be rebuilt") from None
    return records


def _lost(checkpoint: dict[str, Any], records: list[Record]) -> list[int]:
    """Candidates whose record ``checkpoint`` relies on and the log lacks: one counted as
    asked and not in flight, a pending task's donor (trained in full), or the rung below a
    pending promotion (or any higher: a cached copy arrives at its old rung). A record is
    always logged before its task leaves the checkpoint, so only a cut or lost log lacks
    one."""
    reached: dict[int, int] = {}
    finals = set()
    for r in records:
        reached[r["index"]] = max(reached.get(r["index"], -1), r["rung"])
        if r["final"]:
            finals.add(r["index"])
    pending = [t for t in checkpoint["pending"] if isinstance(t, dict)]
    flying = {t.get("index") for t in pending}
    lost = [i for i in range(checkpoint["next_index"]) if i not in reached and i not in flying]
    lost += [t["donor"] for t in pending if t.get("donor") is not None
             and t["donor"] not in finals]
    lost += [t["index"] for t in pending if t["index"] in reached
             and reached[t["index"]] < t.get("rung", 0) - 1]
    return lost


class RunStore:
    """Reads and writes one run directory."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self.layout = RunLayout(self.path)

    # -- creation -----------------------------------------------------------------------------
    def check_new(self) -> None:
        """Refuse a non-empty directory: a new run never overwrites an old one."""
        if self.path.exists() and (not self.path.is_dir() or any(
                p.name != LOCK_FILE for p in self.path.iterdir())):
            raise FileExistsError(
                f"run directory {self.path} already exists and is not empty; resume it "
                f"(Search.resume / --resume {self.path}) or choose another --run-dir")

    def create(self, config: dict[str, Any]) -> None:
        """Start a new run in an empty or missing directory."""
        self.check_new()
        self.path.mkdir(parents=True, exist_ok=True)
        self._write_config(config)

    def set_data_spec(self, spec: dict[str, Any]) -> None:
        """Record where the run's data is now (it moved; the fingerprint was checked)."""
        config = self.config()
        config["data"]["spec"] = spec
        self._write_config(config)

    def _write_config(self, config: dict[str, Any]) -> None:
        atomic_write(self.path / CONFIG, _dumps(config, indent=2).encode())

    def exists(self) -> bool:
        return (self.path / CONFIG).exists()

    def config(self) -> dict[str, Any]:
        if not self.exists():
            raise FileNotFoundError(f"{self.path} is not a pytorch-devol run directory "
                                    f"(no {CONFIG})")
        return read_json(self.path / CONFIG)

    # -- records ------------------------------------------------------------------------------
    def records(self) -> list[Record]:
        """Every logged candidate, in the order written (torn last line tolerated), with the
        defaults of `as_record`."""
        path = self.path / RECORDS
        return [as_record(shaped(path, r, RECORDS)) for r in read_jsonl(path)]

    def checked_log(self) -> tuple[list[Record], dict[str, Any] | None]:
        """The records and the checkpoint, checked against each other: a log that lacks what
        the checkpoint relies on is `damaged`. The checkpoint is read first, so a search
        writing meanwhile (the log only grows) never looks cut."""
        checkpoint = self.checkpoint()
        records = self.records()
        if checkpoint is not None:
            lost = _lost(checkpoint, records)
            if lost:
                raise damaged(self.path / RECORDS,
                              f"it lacks candidate {lost[0]}'s record that {CHECKPOINT} "
                              "relies on (and maybe more): the log was cut short")
        return records, checkpoint

    def repair(self, records: list[dict[str, Any]], genome_columns: list[str]) -> None:
        """Rewrite the JSONL (dropping a torn tail) and the CSV from ``records``, atomically.

        Called on resume: a crash can leave a half line, or a JSONL row whose CSV row never
        got written; the JSONL is the truth and the CSV is derived from it.
        """
        body = "".join(_dumps(r) + "\n" for r in records).encode()
        atomic_write(self.path / RECORDS, body)
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(genome_columns + CSV_METRIC_COLUMNS)
        writer.writerows(self._csv_row(r) for r in records)
        atomic_write(self.path / CSV_FILE, out.getvalue().encode())

    def append(self, record: dict[str, Any], genome_columns: list[str]) -> None:
        """Append one candidate to the JSONL and the CSV; both flushed and fsynced."""
        csv_path = self.path / CSV_FILE
        if not csv_path.exists():
            out = io.StringIO()
            csv.writer(out).writerow(genome_columns + CSV_METRIC_COLUMNS)
            atomic_write(csv_path, out.getvalue().encode())
        append_text(self.path / RECORDS, _dumps(record) + "\n")
        out = io.StringIO()
        csv.writer(out).writerow(self._csv_row(record))
        append_text(csv_path, out.getvalue(), newline="")

    @staticmethod
    def _csv_row(record: dict[str, Any]) -> list[Any]:
        m = record["metrics"]

        def num(v: Any) -> Any:
            return "" if v is None or (isinstance(v, float) and math.isnan(v)) else v

        return [*record["csv_genome"], num(m.get("val_loss")), num(m.get("val_accuracy")),
                num(m.get("test_loss")), num(m.get("test_accuracy")), num(m.get("val_mae")),
                num(m.get("test_mae")), m.get("params", 0), m.get("epochs", 0),
                num(m.get("train_seconds")), m["status"], m.get("failure") or "",
                m.get("reason") or "",
                record["generation"], record["index"], int(record["cached"]),
                record["rung"], record["rung_epochs"],
                "" if record["parent"] is None else record["parent"],
                record["inherited_params"], record["lineage_epochs"], record["parent_run"] or ""]

    # -- checkpoint ---------------------------------------------------------------------------
    def save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        atomic_write(self.path / CHECKPOINT, _dumps(checkpoint).encode())

    def checkpoint(self) -> dict[str, Any] | None:
        path = self.path / CHECKPOINT
        return read_json(path) if path.exists() else None

    # -- best model ---------------------------------------------------------------------------
    def save_best(self, state_dict: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
        """Weights first, then the genome file that names them by checksum (both atomic), so a
        crash between the two writes is detected rather than pairing wrong weights."""
        buf = io.BytesIO()
        torch.save(state_dict, buf)
        atomic_write(self.path / BEST_WEIGHTS, buf.getvalue())
        info = {**info, "weights_sha256": hashlib.sha256(buf.getvalue()).hexdigest()}
        atomic_write(self.path / BEST_GENOME, _dumps(info, indent=2).encode())

    def best_info(self) -> dict[str, Any] | None:
        path = self.path / BEST_GENOME
        return read_json(path) if path.exists() else None

    def best_weights(self, index: int | None = None) -> dict[str, torch.Tensor]:
        """The saved best weights, checked against ``best_genome.json`` (and against the
        candidate ``index`` the log says is best, when given)."""
        path, info = self.path / BEST_WEIGHTS, self.best_info()
        if not path.exists() or info is None:
            raise FileNotFoundError(f"{path} does not exist: no candidate has trained yet")
        raw = path.read_bytes()
        if hashlib.sha256(raw).hexdigest() != info.get("weights_sha256") or \
                (index is not None and info["index"] != index):
            raise ValueError(f"{path} does not belong to the best logged candidate (the run "
                             "was interrupted while saving it); resume the run to repair it")
        return torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)

    # -- paused training states (multi-fidelity) -----------------------------------------------
    def save_state(self, key: tuple[int, ...], rung: int, state: TrainState) -> int:
        """Save the state a candidate with ``key`` paused in at ``rung`` (atomic); its bytes."""
        buf = io.BytesIO()
        torch.save(keyed(key, state.to_dict()), buf)
        (self.path / STATES).mkdir(exist_ok=True)
        atomic_write(self.layout.state(key, rung), buf.getvalue())
        return buf.tell()

    def load_state(self, key: tuple[int, ...], rung: int) -> TrainState | None:
        """The saved state of ``key`` at ``rung``; None when there is none or it cannot be
        read (a warning says so): training then starts over, to the same result, at a
        higher cost."""
        path = self.layout.state(key, rung)
        if not path.exists():
            return None
        try:
            return TrainState.from_dict(unkeyed(torch.load(path, map_location="cpu",
                                                           weights_only=True), key))
        except Exception as err:  # noqa: BLE001 - damaged or unreadable: train again instead
            warnings.warn(f"ignoring the unreadable training state {path} ({err}); the "
                          "candidate trains again from the start, to the same result",
                          RuntimeWarning, stacklevel=2)
            path.unlink(missing_ok=True)
            return None

    def drop_states(self, key: tuple[int, ...] | None = None, below: int | None = None) -> None:
        """Delete the saved states of ``key`` at rungs below ``below`` (None: at every rung);
        with no ``key``, of every genome."""
        folder = self.path / STATES
        if not folder.exists():
            return
        if key is not None and below is not None:  # by name: no listing of every state
            for rung in range(below):
                self.layout.state(key, rung).unlink(missing_ok=True)
            return
        for path in folder.glob(self.layout.states_of(key)):
            rung = int(path.stem.rsplit("-r", 1)[1])
            if below is None or rung < below:
                path.unlink(missing_ok=True)

    def files(self) -> Iterable[Path]:
        return sorted(self.path.iterdir())
