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
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.devol_mnist_report import (  # noqa: E402
    build_record,
    run_notes,
    write_record,
)
from pytorch_devol.compat import DEvol, GenomeHandler  # noqa: E402
from pytorch_devol.schema import GenomeSchema  # noqa: E402
from pytorch_devol.search import Search, SerialEvaluator  # noqa: E402
from pytorch_devol.search.fidelity import make_fidelity  # noqa: E402
from pytorch_devol.search.strategies import DEVOL_GA_OPTIONS  # noqa: E402
from pytorch_devol.training import (  # noqa: E402
    DATA_ENV_VAR,
    TrainConfig,
    as_splits,
    load_dataset,
    read_idx,
)

SPACE = dict(max_conv_layers=6, max_dense_layers=4, max_filters=256, max_dense_nodes=1024)
FULL = dict(generations=20, population=50, epochs=10, train_size=60000, test_size=10000)
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


def load_data(s: dict[str, Any], root: Path) -> tuple[Any, bool]:
    """The run's MNIST split, and whether it is the whole of the official sets."""
    split = s.get("split", "default")
    full = split == "default" and s["train_size"] >= FULL["train_size"] and \
        s["test_size"] >= FULL["test_size"]
    if split == "devol-t10k":
        data = devol_t10k_split(root, s["seed"])
    else:
        data = load_dataset("mnist", root=root, val_fraction=0.1, seed=s["seed"],
                            limit=None if full else (s["train_size"], s["test_size"]))
    print(f"data: MNIST from {root.resolve()} ({split} split): {data.summary()}", flush=True)
    return data, full


def runner(args: argparse.Namespace, s: dict[str, Any], data: Any, handler: Any,
           evaluator: Any, config: TrainConfig, run_dir: Path) -> tuple[Any, str | None]:
    """The run as a call (compat.DEvol's or Search's, new or resumed) and DEvol's CSV file
    (None for Search)."""
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
                            inherit_weights=False, strategy_options=DEVOL_GA_OPTIONS,
                            fidelity=make_fidelity((s.get("fidelity") or {}).get("kind"),
                                                   **{k: v for k, v in (s.get("fidelity") or {})
                                                      .items() if k != "kind"}))

        def go() -> None:
            search.run()
    return go, devol_csv


def run_to_end(go: Any) -> tuple[bool, str | None]:
    """Run it: (complete, why every candidate failed); out of time is not complete."""
    complete, failure = True, None
    try:
        go()
    except OutOfTime:
        complete = False
    except RuntimeError as exc:  # compat.DEvol.run: every candidate failed; still a result
        if not str(exc).startswith("no candidate trained successfully"):
            raise
        failure = str(exc)
    return complete, failure


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    device = TrainConfig(device=args.device).resolve_device()
    s = settings_from(args, device)
    root = find_data_root(args.data_root)
    data, full = load_data(s, root)
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
    go, devol_csv = runner(args, s, data, handler, evaluator, config, run_dir)
    complete, failure = run_to_end(go)
    wall = time.monotonic() - start
    segments.append({"started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                     "wall_seconds": round(wall, 1), "complete": complete,
                     "load_average_start": load_start, "load_average_end": os.getloadavg()})
    (run_dir / SEGMENTS).write_text(json.dumps({"settings": s, "segments": segments}, indent=2))

    notes = run_notes(args, s, device, data, full, complete, failure, load_start)
    record = build_record(argv, device, s, config, complete, segments, root, data, full, notes,
                          run_dir, devol_csv)
    write_record(record, args.out_dir, s["name"], run_dir)
    return record


if __name__ == "__main__":
    main()
