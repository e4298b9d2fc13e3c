"""DEvol's CSV log: reading the best row of either format, writing DEvol's own format.

Two files share DEvol's layout: the CSV DEvol itself wrote (genome columns, then ``Val Loss``,
``Val Accuracy``; failed models carry DEvol's penalty values) and our run directory's
``results.csv`` (the same first columns, empty metrics for failed candidates, then extra
columns). Columns are found by name, never by position from the end, so both parse.
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ..search.durable import append_text, atomic_write
from ..search.store import read_jsonl

__all__ = ["LOSS_COLUMN", "ACCURACY_COLUMN", "BestRow", "DevolCsvLog", "best_row",
           "devol_penalty", "write_devol_csv"]

Row = tuple[Sequence[int], float | None, float | None]

LOSS_COLUMN = "Val Loss"
"""DEvol's CSV column of each candidate's validation loss."""
ACCURACY_COLUMN = "Val Accuracy"
"""DEvol's CSV column of each candidate's validation accuracy (its fitness by default)."""
METRICS = ("accuracy", "loss")


def devol_penalty(n_classes: int) -> tuple[float, float]:
    """(loss, accuracy) DEvol wrote for a model that failed to train.

    DEvol called ``sklearn.metrics.log_loss([1, 0, ..., 0], [1/n] * n)``, which scores n binary
    predictions (0.325 for 10 classes) instead of ln(n); accuracy was ``1/n``.
    """
    p = 1.0 / n_classes
    return -(math.log(p) + (n_classes - 1) * math.log(1.0 - p)) / n_classes, p


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


def _gene(text: str, column: str, path: Path, line: int) -> int:
    value = _number(text.strip())
    if value is None or not value.is_integer():
        raise ValueError(f"{path}, line {line}: {column!r} = {text!r} is not an integer gene")
    return int(value)


class BestRow(NamedTuple):
    """The best row of a DEvol-format CSV (``line`` counts from 1, the header included)."""

    genome: list[int]
    loss: float
    accuracy: float
    line: int


def best_row(path: str | os.PathLike[str], genome_columns: Sequence[str],
             metric: str = "accuracy", n_classes: int | None = None) -> BestRow:
    """The best evaluated row of a DEvol CSV or a run directory's ``results.csv``.

    ``metric``: "accuracy" (highest ``Val Accuracy``) or "loss" (lowest ``Val Loss``); ties go
    to the earliest row, as in DEvol. Rows without metrics (our failed candidates), rows with
    DEvol's failure penalty (when ``n_classes`` is given) and a torn last row are skipped.
    Raises ValueError when the header does not start with ``genome_columns`` or no row is left.
    """
    metric = "accuracy" if metric == "acc" else metric
    if metric not in METRICS:
        raise ValueError(f"metric must be 'accuracy' or 'loss', got {metric!r}")
    path = Path(path)
    with open(path, newline="", encoding="utf-8") as f:
        rows = [(i + 1, r) for i, r in enumerate(csv.reader(f)) if any(c.strip() for c in r)]
    if not rows:
        raise ValueError(f"{path} is empty: no header, no rows")
    header = [c.strip() for c in rows[0][1]]
    columns = list(genome_columns)
    if header[:len(columns)] != columns:
        raise ValueError(f"{path} does not start with this GenomeHandler's columns (it has "
                         f"{len(header)} columns, starting {header[:3]}; expected {len(columns)} "
                         f"genome columns starting {columns[:3]}): a CSV of another search "
                         "space?")
    try:
        i_loss, i_acc = header.index(LOSS_COLUMN), header.index(ACCURACY_COLUMN)
    except ValueError:
        raise ValueError(f"{path} has no {LOSS_COLUMN!r} and {ACCURACY_COLUMN!r} "
                         "columns") from None
    penalty = devol_penalty(n_classes) if n_classes else None
    best: BestRow | None = None
    for line, row in rows[1:]:
        if len(row) <= max(i_loss, i_acc, len(columns) - 1):
            continue  # torn last row of a crashed run
        loss, acc = _number(row[i_loss]), _number(row[i_acc])
        if loss is None or acc is None:
            continue  # a failed candidate of ours
        if penalty and acc == penalty[1] and math.isclose(loss, penalty[0], rel_tol=1e-6):
            continue  # a model DEvol failed to train, scored with its penalty
        score = acc if metric == "accuracy" else -loss
        if best is None or score > (best.accuracy if metric == "accuracy" else -best.loss):
            genome = [_gene(row[j], columns[j], path, line) for j in range(len(columns))]
            best = BestRow(genome, loss, acc, line)
    if best is None:
        raise ValueError(f"{path} holds no successfully evaluated candidate")
    return best


def _csv_text(rows: Iterable[Row], header: Sequence[str] | None = None) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    if header is not None:
        writer.writerow([*header, LOSS_COLUMN, ACCURACY_COLUMN])
    for genome, loss, acc in rows:
        writer.writerow([*(int(g) for g in genome), "" if loss is None else loss,
                         "" if acc is None else acc])
    return out.getvalue()


def write_devol_csv(path: str | os.PathLike[str], genome_columns: Sequence[str],
                    rows: Iterable[Row]) -> None:
    """Write (atomically) DEvol's CSV: genome columns, ``Val Loss``, ``Val Accuracy``.

    A metric that is None (a failed candidate) is left empty rather than given a made-up
    penalty score.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, _csv_text(rows, genome_columns).encode())


def devol_row(csv_genome: Sequence[int], metrics: Mapping[str, Any]) -> Row:
    """One CSV row from a candidate's DEvol genome and metrics (NaN or missing -> empty)."""

    def value(v: Any) -> float | None:
        return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)

    return list(csv_genome), value(metrics.get("val_loss")), value(metrics.get("val_accuracy"))


class DevolCsvLog:
    """DEvol's CSV at ``path``, kept in step with a run's ``results.jsonl`` (``log_path``).

    ``rebuild`` rewrites the CSV from the log (atomically; at the start of a run and of a
    resume), so rows never repeat and a row whose record never reached the log is dropped.
    ``add`` (the search's ``on_record`` hook) appends one candidate's row as it is logged,
    flushed and fsynced, as DEvol did, unless that candidate (by index) has a row already.
    """

    def __init__(self, path: str | os.PathLike[str], genome_columns: Sequence[str],
                 log_path: str | os.PathLike[str]):
        self.path, self.log_path = Path(path), Path(log_path)
        self.columns = list(genome_columns)
        self._written: set[int] = set()   # indices of the candidates that have a row

    def rebuild(self) -> None:
        """Rewrite the CSV from every complete record of the log, in its order."""
        self._written, rows = set(), []
        for record in read_jsonl(self.log_path):
            if record["index"] not in self._written:
                self._written.add(record["index"])
                rows.append(devol_row(record["csv_genome"], record["metrics"]))
        write_devol_csv(self.path, self.columns, rows)

    def add(self, record: Mapping[str, Any]) -> None:
        """Append the row of one logged candidate (a search record) unless it has one."""
        if record["index"] in self._written:
            return
        self._written.add(record["index"])
        append_text(self.path, _csv_text([devol_row(record["csv_genome"], record["metrics"])]),
                    newline="")
