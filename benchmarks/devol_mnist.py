"""DEvol's README experiment reproduced through pytorch_devol.compat: MNIST, 20 generations x 50,
up to 6 conv and 4 dense layers (the output layer included), at most 256 filters and 1024 dense
nodes, 10 epochs with early stopping (patience 1). DEvol reported 99.4% test accuracy.

    python benchmarks/devol_mnist.py                          # the whole experiment (a GPU)
    python benchmarks/devol_mnist.py --scale 0.06 --device cpu
    python benchmarks/devol_mnist.py --workers-per-gpu 4 --max-minutes 8   # stops resumably
    python benchmarks/devol_mnist.py --resume runs/devol_mnist_h200_full   # continues it
    python benchmarks/devol_mnist.py --split devol-t10k --api search --fidelity sh ...

``--scale S`` shrinks the search, never the search space: generations max(2, round(20 S)),
population max(4, round(50 S)), epochs max(1, round(10 S)), a seeded stratified subset of
round(60000 S) training images (at least 1000) and max(1000, round(10000 S)) test images; 1 is
the full experiment. Any of these can be set by flag. 10% of the training images are held out
for validation: fitness and the choice of the best model use it, the test set is only reported.
Batch size 128 by default (``--batch-size 32`` is Keras's, which DEvol used).

MNIST comes from torchvision's layout ``<root>/MNIST/raw``: ``--data-root``, else
``$PYTORCH_DEVOL_DATA``, ``<repo>/datasets`` (git-ignored; the GPU machine's copy), then
``<repo>/../shared/datasets``. Missing data is an error: nothing is ever substituted.

``--split devol-t10k`` is the split DEvol itself was measured on here (DEVOL.md): the MNIST
t10k images, the first 8,000 for training (10% of them held out for validation, seeded and
stratified) and the last 2,000 as the test set; the search sizes then come from the flags.
``--api search`` runs ``Search`` with the package's defaults (our optimizer defaults, batch
128) instead of ``compat.DEvol`` (Keras's optimizer values); e.g. DEvol's measured setting:

    python benchmarks/devol_mnist.py --split devol-t10k --api search --generations 3 \
        --population 6 --epochs 2 --max-conv-layers 3 --max-dense-layers 2 --max-filters 64 \
        --max-dense-nodes 256 --device cpu --tag devol-t10k-search

With ``--max-minutes`` the record gives candidates per minute and the linear projection of the
time all ``generations x population`` candidates would take. A budget that runs out before any
candidate finishes is a result too: the record says "0 candidates evaluated in N s" (no rate
per candidate, no projection, no plot) and the script exits 0.

Writes ``benchmarks/results/devol_mnist_<device>_<scale>.json`` and ``.png`` (the running best
validation accuracy; skipped, and said so, without matplotlib); the run itself goes to
``runs/devol_mnist_<device>_<scale>`` (+ ``.csv``) unless ``--run-dir`` says otherwise.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import re
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import code_state, cpu_name  # noqa: E402
from pytorch_devol.compat import DEvol, GenomeHandler  # noqa: E402
from pytorch_devol.schema import GenomeSchema  # noqa: E402
from pytorch_devol.search import Search, SerialEvaluator, load_result  # noqa: E402
from pytorch_devol.search.fidelity import make_fidelity  # noqa: E402
from pytorch_devol.training import (  # noqa: E402
    DATA_ENV_VAR,
    TrainConfig,
    as_splits,
    load_dataset,
    read_idx,
)

SPACE = dict(max_conv_layers=6, max_dense_layers=4, max_filters=256, max_dense_nodes=1024)
FULL = dict(generations=20, population=50, epochs=10, train_size=60000, test_size=10000)
DEVOL_TEST_ACCURACY = 0.994
OFFICIAL_MD5 = {  # torchvision's records of the official MNIST files
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
SEGMENTS = "benchmark_segments.json"
DEVOL_T10K = dict(train_size=8000, test_size=2000)  # DEvol's measured split (DEVOL.md)


class OutOfTime(Exception):
    """The time budget is spent; the run directory can be resumed."""


class Deadline:
    """Wraps an evaluator: raises OutOfTime before starting a result once the budget is spent
    (a candidate in training finishes first, so leave it some headroom)."""

    def __init__(self, inner: Any, deadline: float) -> None:
        self.inner, self.deadline, self.capacity = inner, deadline, inner.capacity

    def open(self, schema: Any, data: Any, config: Any) -> None:
        self.inner.open(schema, data, config)

    def submit(self, task: Any) -> None:
        self.inner.submit(task)

    def next_result(self) -> Any:
        if time.monotonic() > self.deadline:
            raise OutOfTime("time budget spent")
        return self.inner.next_result()

    def close(self) -> None:
        self.inner.close()


def scaled(scale: float) -> dict[str, int]:
    """The search settings of ``--scale`` (see the module docstring)."""
    if not 0 < scale <= 1:
        raise SystemExit(f"--scale must lie in (0, 1], got {scale}")
    if scale == 1:
        return dict(FULL)
    return dict(generations=max(2, round(20 * scale)), population=max(4, round(50 * scale)),
                epochs=max(1, round(10 * scale)), train_size=max(1000, round(60000 * scale)),
                test_size=max(1000, round(10000 * scale)))


def find_data_root(given: str | None) -> Path:
    tried = [Path(given)] if given else [
        Path(p) for p in (os.environ.get(DATA_ENV_VAR), REPO / "datasets",
                          REPO.parent / "shared" / "datasets") if p]
    for root in tried:
        if any((root / "MNIST" / "raw").glob("train-images-idx3-ubyte*")):
            return root
    raise SystemExit(f"MNIST not found under {', '.join(map(str, tried))} (expected "
                     "<root>/MNIST/raw/*-ubyte.gz); pass --data-root. Nothing is substituted.")


def data_files(root: Path) -> dict[str, Any]:
    files = {p.name: hashlib.md5(p.read_bytes()).hexdigest()
             for p in sorted((root / "MNIST" / "raw").glob("*-ubyte*"))}
    return {"files_md5": files,
            "official_files": all(files.get(k) == v for k, v in OFFICIAL_MD5.items())}


def device_label(device: torch.device) -> str:
    if device.type != "cuda":
        return device.type
    name = torch.cuda.get_device_name(device)
    match = re.search(r"\b([A-Z]{1,2}\d{2,4}[A-Z]?)\b", name)
    return match.group(1).lower() if match else "cuda"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="1 = the full experiment")
    for name in ("generations", "population", "epochs", "train-size", "test-size"):
        p.add_argument(f"--{name}", type=int, metavar="N", help="override the scaled value")
    for name in SPACE:
        p.add_argument(f"--{name.replace('_', '-')}", type=int, metavar="N",
                       help=f"override the search space (DEvol's: {SPACE[name]})")
    p.add_argument("--data-root", help="folder holding MNIST/raw")
    p.add_argument("--split", default="default", choices=["default", "devol-t10k"],
                   help="default: a seeded subset of the official train/test sets (all of "
                        "them at scale 1); devol-t10k: t10k's first 8,000 images for training, "
                        "its last 2,000 as the test set (where DEvol was measured here)")
    p.add_argument("--api", default="compat", choices=["compat", "search"],
                   help="compat: pytorch_devol.compat.DEvol (Keras's optimizer values); "
                        "search: Search with the package's defaults")
    p.add_argument("--fidelity", default="none", choices=["none", "sh", "asha"],
                   help="--api search: multi-fidelity (successive halving or ASHA)")
    p.add_argument("--min-epochs", type=int, default=1, help="--fidelity: rung 0's epochs")
    p.add_argument("--eta", type=int, default=3, help="--fidelity: keep 1/eta per rung")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:K")
    p.add_argument("--workers", type=int, help="local worker processes (default: in-process)")
    p.add_argument("--workers-per-gpu", type=int, help="worker processes per GPU")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--torch-optimizers", action="store_true",
                   help="our optimizer defaults instead of Keras's (DEvol's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, help="stop (resumably) after this much time")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run with its settings")
    p.add_argument("--run-dir", help="default runs/devol_mnist_<device>_<scale>")
    p.add_argument("--tag", help="the <scale> part of the file names")
    p.add_argument("--note", action="append", default=[], help="a note for the record")
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--quiet", action="store_true")
    return p.parse_args(argv)


def settings_from(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    if args.resume:
        return json.loads((Path(args.resume) / SEGMENTS).read_text())["settings"]
    search = scaled(args.scale)
    if args.split == "devol-t10k":
        search.update(DEVOL_T10K)
    overridden = False
    for key in search:
        value = getattr(args, key)
        if value is not None:
            search[key], overridden = value, True
    space = {k: v if (v := getattr(args, k)) is not None else SPACE[k] for k in SPACE}
    overridden = overridden or space != SPACE
    label = args.tag or ("full" if args.scale == 1 and not overridden else
                         f"{args.scale:g}" + ("-custom" if overridden else ""))
    name = f"devol_mnist_{device_label(device)}_{label}"
    if args.split == "devol-t10k" and (search["train_size"], search["test_size"]) != (
            DEVOL_T10K["train_size"], DEVOL_T10K["test_size"]):
        raise SystemExit("--split devol-t10k fixes 8,000 training and 2,000 test images")
    if args.fidelity != "none" and args.api != "search":
        raise SystemExit("--fidelity needs --api search (compat.DEvol trains every candidate "
                         "in full, as DEvol did)")
    return {"scale": args.scale, "label": label, "name": name, **search, **space,
            "split": args.split, "api": args.api,
            "batch_size": args.batch_size, "precision": args.precision, "patience": 1,
            "keras_optimizers": args.api == "compat" and not args.torch_optimizers,
            "seed": args.seed, "run_dir": args.run_dir or str(REPO / "runs" / name),
            "fidelity": None if args.fidelity == "none" else
            {"kind": args.fidelity, "min_epochs": args.min_epochs, "eta": args.eta}}


def evaluator_for(args: argparse.Namespace, device: torch.device) -> Any:
    if args.workers is None and args.workers_per_gpu is None:
        return SerialEvaluator()
    from pytorch_devol.search.evaluators.pool import ProcessPoolEvaluator

    if device.type == "cpu":
        return ProcessPoolEvaluator(devices=["cpu"] * (args.workers or 1))
    return ProcessPoolEvaluator(workers=args.workers, workers_per_gpu=args.workers_per_gpu or 1)


def devol_t10k_split(root: Path, seed: int) -> Any:
    """DEvol's measured split: t10k's first 8,000 images train (10% of them validation,
    seeded, stratified), its last 2,000 are the test set."""
    raw = root / "MNIST" / "raw"
    x = read_idx(next(raw.glob("t10k-images-idx3-ubyte*")))
    y = read_idx(next(raw.glob("t10k-labels-idx1-ubyte*"))).astype(np.int64)
    n = DEVOL_T10K["train_size"]
    return as_splits(((x[:n], y[:n]), (x[n:n + DEVOL_T10K["test_size"]],
                                       y[n:n + DEVOL_T10K["test_size"]])),
                     val_fraction=0.1, seed=seed, input_shape=(1, 28, 28), n_outputs=10,
                     name="mnist-t10k-devol-split")


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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = TrainConfig(device=args.device).resolve_device()
    s = settings_from(args, device)
    root = find_data_root(args.data_root)
    split = s.get("split", "default")
    full = split == "default" and s["train_size"] >= FULL["train_size"] and \
        s["test_size"] >= FULL["test_size"]
    if split == "devol-t10k":
        data = devol_t10k_split(root, s["seed"])
    else:
        data = load_dataset("mnist", root=root, val_fraction=0.1, seed=s["seed"],
                            limit=None if full else (s["train_size"], s["test_size"]))
    print(f"data: MNIST from {root.resolve()} ({split} split): {data.summary()}", flush=True)
    run_dir = Path(s["run_dir"])
    segments = json.loads((run_dir / SEGMENTS).read_text())["segments"] if args.resume else []

    handler = GenomeHandler(**{k: s[k] for k in SPACE}, input_shape=data.input_shape, n_classes=10,
                            seed=s["seed"], keras_optimizers=s["keras_optimizers"])
    evaluator = evaluator_for(args, device)
    start = time.monotonic()
    if args.max_minutes:
        evaluator = Deadline(evaluator, start + 60 * args.max_minutes)
    config = TrainConfig(batch_size=s["batch_size"], precision=s["precision"],
                         patience=s["patience"], device=str(device))
    load_start = os.getloadavg()
    devol_csv = None
    if s.get("api", "compat") == "compat":
        devol = DEvol(handler, str(run_dir) + ".csv", run_dir=run_dir, seed=s["seed"],
                      train_config=config, evaluator=evaluator, resume=bool(args.resume),
                      verbose=not args.quiet)
        devol_csv = devol.datafile

        def go() -> None:
            devol.run(data, s["generations"], s["population"], s["epochs"])
    else:
        if args.resume:
            search = Search.resume(run_dir, data=data, evaluator=evaluator,
                                   verbose=not args.quiet)
        else:
            schema = GenomeSchema.devol(**{k: s[k] for k in SPACE},
                                        input_shape=data.input_shape, n_classes=10)
            search = Search(schema, data, generations=s["generations"],
                            population_size=s["population"], epochs=s["epochs"],
                            seed=s["seed"], run_dir=run_dir, evaluator=evaluator,
                            train_config=config, verbose=not args.quiet,
                            fidelity=make_fidelity((s.get("fidelity") or {}).get("kind"),
                                                   **{k: v for k, v in (s.get("fidelity") or {})
                                                      .items() if k != "kind"}))

        def go() -> None:
            search.run()
    complete, failure = True, None
    try:
        go()
    except OutOfTime:
        complete = False
    except RuntimeError as exc:  # compat.DEvol.run: every candidate failed; still a result
        if not str(exc).startswith("no candidate trained successfully"):
            raise
        failure = str(exc)
    wall = time.monotonic() - start
    segments.append({"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     "wall_seconds": round(wall, 1), "complete": complete,
                     "load_average_start": load_start, "load_average_end": os.getloadavg()})
    (run_dir / SEGMENTS).write_text(json.dumps({"settings": s, "segments": segments}, indent=2))

    total = sum(seg["wall_seconds"] for seg in segments)
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
    args.out_dir.mkdir(parents=True, exist_ok=True)
    out = args.out_dir / f"{s['name']}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")  # before plotting: a plot cannot lose it
    png = "no plot (no candidate was evaluated)"
    if evaluated:
        try:
            from pytorch_devol.search.report.plot import plot_run

            png = record["plot"] = str(plot_run(run_dir, out=args.out_dir / f"{s['name']}.png"))
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
    return record


if __name__ == "__main__":
    main()
