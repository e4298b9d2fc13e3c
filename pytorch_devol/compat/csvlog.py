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
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import NamedTuple

from ..search.store import atomic_write

__all__ = ["LOSS_COLUMN", "ACCURACY_COLUMN", "BestRow", "best_row", "devol_penalty",
           "write_devol_csv"]

LOSS_COLUMN, ACCURACY_COLUMN = "Val Loss", "Val Accuracy"
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


def write_devol_csv(path: str | os.PathLike[str], genome_columns: Sequence[str],
                    rows: Iterable[tuple[Sequence[int], float | None, float | None]]) -> None:
    """Write (atomically) DEvol's CSV: genome columns, ``Val Loss``, ``Val Accuracy``.

    A metric that is None (a failed candidate) is left empty rather than given a made-up
    penalty score.
    """
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([*genome_columns, LOSS_COLUMN, ACCURACY_COLUMN])
    for genome, loss, acc in rows:
        writer.writerow([*(int(g) for g in genome), "" if loss is None else loss,
                         "" if acc is None else acc])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, out.getvalue().encode())
