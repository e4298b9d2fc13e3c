"""The record of ``devol_mnist.py``'s run: the machine, the data files (checked against the
official MNIST files), the run's counts, timings, best candidate and per-generation bests, its
notes, the rate per candidate and the projection for all planned, written as JSON with its
plot (the running best validation accuracy; skipped, and said so, without matplotlib)."""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.common import code_state, cpu_name
from pytorch_devol.search import load_result

__all__ = ["DEVOL_TEST_ACCURACY", "OFFICIAL_MD5", "data_files", "machine", "summarise",
           "run_notes", "build_record", "write_record"]

DEVOL_TEST_ACCURACY = 0.994
OFFICIAL_MD5 = {  # torchvision's records of the official MNIST files
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def data_files(root: Path) -> dict[str, Any]:
    files = {p.name: hashlib.md5(p.read_bytes()).hexdigest()
             for p in sorted((root / "MNIST" / "raw").glob("*-ubyte*"))}
    return {"files_md5": files,
            "official_files": all(files.get(k) == v for k, v in OFFICIAL_MD5.items())}


def machine(device: torch.device) -> dict[str, Any]:
    info = {"platform": platform.platform(), "cpu": cpu_name(),
            "python": platform.python_version(),
            "torch": torch.__version__, "numpy": np.__version__, "cpu_count": os.cpu_count(),
            "load_average": os.getloadavg(), "torch_threads": torch.get_num_threads(),
            "device": str(device), "code": code_state()}
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def summarise(run_dir: Path, wall: float) -> dict[str, Any]:
    """Counts, the best candidate (by validation accuracy), timings and per-generation bests."""
    result = load_result(run_dir)
    history = sorted(result.history, key=lambda r: r["index"])
    trained = [r for r in history if not r["cached"] and r["metrics"]["status"] == "ok"
               and r.get("final", True)]
    best, counts = result.best_record, result.counts()
    generations: dict[int, list[float]] = {}
    for r in history:
        if r["fitness"] is not None and r.get("final", True):
            generations.setdefault(r["generation"], []).append(r["fitness"])
    running, best_so_far = [], float("-inf")
    for g in sorted(generations):
        best_so_far = max(best_so_far, max(generations[g]))
        running.append(round(best_so_far, 5))
    train_s = [r["metrics"]["train_seconds"] for r in trained]
    out: dict[str, Any] = {
        "counts": counts, "wall_seconds": round(wall, 1),
        "epochs_spent": sum(r.get("rung_epochs", r["metrics"]["epochs"]) for r in history
                            if not r["cached"]),
        "seconds_per_candidate": (round(wall / counts["evaluated"], 2)
                                  if counts["evaluated"] else None),
        "seconds_per_trained_candidate": (round(wall / counts["trained"], 2)
                                          if counts["trained"] else None),
        "train_seconds_per_trained_candidate": {
            "mean": round(statistics.fmean(train_s), 2) if train_s else None,
            "median": round(statistics.median(train_s), 2) if train_s else None},
        "running_best_val_accuracy_per_generation": running,
        "best_test_accuracy_of_any_candidate": max(
            (r["metrics"]["test_accuracy"] for r in trained), default=None),
    }
    if best is not None:
        m = best["metrics"]
        out["best"] = {"index": best["index"], "generation": best["generation"],
                       "val_accuracy": m["val_accuracy"], "val_loss": m["val_loss"],
                       "test_accuracy": m["test_accuracy"], "test_loss": m["test_loss"],
                       "params": m["params"], "epochs": m["epochs"],
                       "devol_genome": best["csv_genome"], "layers": result.describe()}
    return out


def run_notes(args: argparse.Namespace, s: dict[str, Any], device: torch.device, data: Any,
              full: bool, complete: bool, failure: str | None,
              load_start: tuple[float, float, float]) -> list[str]:
    """The record's notes: the user's, then the machine's load, the split or the reduced
    scale, a stop by --max-minutes and a search that ended without a successful candidate."""
    split = s.get("split", "default")
    notes = list(args.note)
    if device.type == "cpu":
        notes.append(f"CPU shared with other engineers' work: load average "
                     f"{load_start[0]:.1f} at start, {os.getloadavg()[0]:.1f} at the end, "
                     f"{os.cpu_count()} cores; timings are pessimistic and noisy")
    if split == "devol-t10k":
        notes.append("DEvol's measured split (DEVOL.md): MNIST t10k, the first 8,000 images for "
                     "training (10% of them the validation part: fitness and the choice of the "
                     "best), the last 2,000 the test set. DEvol chose its best on those 2,000")
    elif not full:
        notes.append(f"reduced scale: {data.sizes()['train']} training images, up to "
                     f"{s['epochs']} epoch(s) per candidate, {s['generations']} x "
                     f"{s['population']} candidates from the full space; accuracy is far below "
                     "what the full experiment reaches: this records the pipeline and the cost "
                     "per candidate")
    if not complete:
        notes.append("stopped by --max-minutes before the end: resume with --resume")
    if failure:
        notes.append(f"the search ended without a successful candidate: {failure}")
    return notes


def build_record(argv: list[str] | None, device: torch.device, s: dict[str, Any], config: Any,
                 complete: bool, segments: list[dict[str, Any]], root: Path, data: Any,
                 full: bool, notes: list[str], run_dir: Path,
                 devol_csv: str | None) -> dict[str, Any]:
    """The run's record: settings, machine, data, the summary of the run directory over all
    its segments, the rate per candidate and the projection for all planned."""
    total = sum(seg["wall_seconds"] for seg in segments)
    record = {
        "benchmark": "devol_mnist", "date": _dt.datetime.now(_dt.timezone.utc).isoformat(
            timespec="seconds"),
        "command": shlex.join(["python", "benchmarks/devol_mnist.py",
                              *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(device), "settings": s, "complete": complete,
        "training": {"bf16_autocast": config.use_bf16(device),
                     "channels_last": config.use_channels_last(device)},
        "evaluations_planned": s["generations"] * s["population"], "segments": segments,
        "data": {"dataset": "mnist", "root": str(root.resolve()), **data_files(root),
                 "sizes": data.sizes(), "subset": not full, "fingerprint": data.fingerprint()},
        "devol_reference": {"test_accuracy": DEVOL_TEST_ACCURACY, "selected_on": "test set",
                            "source": "DEvol README (MNIST, 20 x 50, 6 conv / 4 dense)"},
        **summarise(run_dir, total), "notes": notes,
        "run": {"run_dir": str(run_dir), "devol_csv": devol_csv},
    }
    evaluated = record["counts"]["evaluated"]
    record["candidates_per_minute"] = round(60 * evaluated / total, 2) if total > 0 else None
    record["projected_seconds_for_all_planned"] = (
        round(total * record["evaluations_planned"] / evaluated, 1) if evaluated else None)
    record["projection"] = ("linear in the candidates evaluated so far (later generations may "
                            "train longer or shorter, and repeats of a genome are not trained)")
    record["outcome"] = (f"{evaluated} of {record['evaluations_planned']} candidates evaluated "
                         f"in {total:.0f} s" + ("" if complete else " (stopped by --max-minutes)"))
    record["plot"] = None
    if not evaluated:
        record["notes"].append(f"0 candidates evaluated in {total:.0f} s: no rate per candidate, "
                               "no projection and no plot")
    return record


def write_record(record: dict[str, Any], out_dir: Path, name: str, run_dir: Path) -> None:
    """``<out_dir>/<name>.json``, then its plot ``<name>.png`` (the JSON first: a plot cannot
    lose it), and one line saying what the run gave."""
    evaluated = record["counts"]["evaluated"]
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"{name}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")  # before plotting: a plot cannot lose it
    png = "no plot (no candidate was evaluated)"
    if evaluated:
        try:
            from pytorch_devol.search.report.plot import plot_run

            png = record["plot"] = str(plot_run(run_dir, out=out_dir / f"{name}.png"))
        except ImportError as exc:  # matplotlib is optional (e.g. on the GPU machine)
            png = f"no plot ({exc})"
            record["notes"].append(png)
        out.write_text(json.dumps(record, indent=2) + "\n")
    best = record.get("best", {})
    per = record["seconds_per_candidate"]
    print(f"{record['outcome']}: {record['counts']}"
          + (f" ({per} s per candidate)" if per is not None else "")
          + f"; best val accuracy {best.get('val_accuracy')}, its test accuracy "
          f"{best.get('test_accuracy')} (DEvol: {DEVOL_TEST_ACCURACY}); wrote {out}; {png}")
