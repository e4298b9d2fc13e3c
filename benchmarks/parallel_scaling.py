"""Parallel evaluation scaling: candidates per minute with 1, 2, 4, ... pool workers.

The same fixed genomes (a seeded draw from DEvol's search space, ``GenomeSchema.devol``) are
trained by the in-process ``SerialEvaluator`` (baseline) and by ``ProcessPoolEvaluator`` with
each worker count; on CUDA, with K = 1, 2, 4, 8 workers per GPU (small networks leave a large GPU
idle; several per GPU fill it). Worker start-up (spawn, import, data to the device) is timed
apart, and one warm-up candidate per worker (oneDNN / cuDNN initialisation) runs before the
clock starts: the rate is the steady state a long search sees.

    python benchmarks/parallel_scaling.py --dataset digits            # quick, CPU
    python benchmarks/parallel_scaling.py --train-size 6000 --epochs 1 --workers 1,2
    python3 benchmarks/parallel_scaling.py --data-root datasets       # GPU: all of MNIST

Writes benchmarks/results/parallel_<device>.json and .md (``--tag`` changes the suffix).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machine import cpu_name, default_data_root  # noqa: E402

from pytorch_devol.schema import GenomeSchema  # noqa: E402
from pytorch_devol.search import SerialEvaluator, Task  # noqa: E402
from pytorch_devol.search.pool import ProcessPoolEvaluator, usable_cores  # noqa: E402
from pytorch_devol.training import DATA_ENV_VAR, TrainConfig, load_dataset  # noqa: E402


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=["digits", "mnist", "fashion-mnist"])
    p.add_argument("--data-root", type=Path, default=None,
                   help=f"torchvision layout root (default ${DATA_ENV_VAR}, <repo>/datasets "
                        "or <repo>/../shared/datasets)")
    p.add_argument("--train-size", type=int, default=None,
                   help="training examples kept (default: all; 10%% become validation)")
    p.add_argument("--test-size", type=int, default=None)
    p.add_argument("--n-genomes", type=int, default=16)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--workers", type=_ints, default=None,
                   help="CPU: worker counts to try, e.g. 1,2,4 (default: 1, 2, 4, ... up to "
                        "the usable cores)")
    p.add_argument("--workers-per-gpu", type=_ints, default=[1, 2, 4, 8],
                   help="CUDA: workers per GPU to try (default 1,2,4,8), on every visible GPU")
    p.add_argument("--threads-per-worker", type=int, default=None,
                   help="torch threads per worker (default: the pool's choice)")
    p.add_argument("--no-serial", action="store_true", help="skip the in-process baseline")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every configuration this many times, interleaved, and keep "
                        "its fastest round (use 2-3 on a shared machine)")
    p.add_argument("--seed", type=int, default=0, help="seed of the genome draw and training")
    p.add_argument("--max-conv-layers", type=int, default=6)
    p.add_argument("--max-dense-layers", type=int, default=4)
    p.add_argument("--max-filters", type=int, default=256)
    p.add_argument("--max-dense-nodes", type=int, default=1024)
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--tag", default=None, help="file name suffix (default: the device type)")
    p.add_argument("--no-write", action="store_true", help="print only, write no files")
    return p.parse_args(argv)


def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "platform": platform.platform(), "cpu": cpu_name(),
        "cpu_count": os.cpu_count(), "usable_cores": usable_cores(), "device": str(device),
    }
    if os.path.exists("/proc/loadavg"):
        info["loadavg_at_start"] = Path("/proc/loadavg").read_text().split()[:3]
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpus=torch.cuda.device_count(),
                    gpu_memory_gib=round(props.total_memory / 2**30, 1), cuda=torch.version.cuda)
    return info


def draw_genomes(schema: GenomeSchema, n: int, seed: int) -> list[tuple[int, ...]]:
    """The first n distinct genomes of a seeded draw that build."""
    rng, genomes, keys = np.random.default_rng(seed), [], set()
    for _ in range(100 * n):
        g = schema.random(rng)
        key = schema.key(g)
        if key in keys:
            continue
        try:
            schema.build_model(g)
        except ValueError:
            continue
        keys.add(key)
        genomes.append(tuple(int(v) for v in g))
        if len(genomes) == n:
            break
    return genomes


def measure(evaluator: Any, schema: GenomeSchema, data: Any, config: TrainConfig,
            genomes: list[tuple[int, ...]], seed: int) -> dict[str, Any]:
    """Start-up time, then one warm-up candidate per worker, then the timed genomes."""
    start = time.perf_counter()
    evaluator.open(schema, data, config)
    startup = time.perf_counter() - start
    try:
        warm = min(genomes, key=sum)
        for i in range(evaluator.capacity):
            evaluator.submit(Task(-1 - i, warm, seed))
        for _ in range(evaluator.capacity):
            evaluator.next_result()
        start = time.perf_counter()
        for i, genome in enumerate(genomes):
            evaluator.submit(Task(i, genome, seed + i))
        results = [evaluator.next_result()[1] for _ in genomes]
        wall = time.perf_counter() - start
    finally:
        evaluator.close()
    ok = [r for r in results if r.ok]
    return {"startup_s": round(startup, 2), "wall_s": round(wall, 2),
            "candidates_per_min": round(60 * len(genomes) / wall, 2),
            "mean_candidate_s": round(statistics.fmean(r.total_seconds for r in results), 3),
            "failed": len(results) - len(ok),
            "mean_val_accuracy": round(statistics.fmean(r.val_accuracy for r in ok), 4)
            if ok else math.nan}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    root = args.data_root or default_data_root()
    limit = None if args.train_size is None and args.test_size is None else (
        args.train_size, args.test_size)
    data = load_dataset(args.dataset, root=root, seed=args.seed, limit=limit)
    schema = GenomeSchema.devol(
        max_conv_layers=args.max_conv_layers, max_dense_layers=args.max_dense_layers,
        max_filters=args.max_filters, max_dense_nodes=args.max_dense_nodes,
        input_shape=data.input_shape, n_classes=data.n_outputs)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=None,
                         device=args.device, seed=args.seed, precision=args.precision)
    device = config.resolve_device()
    genomes = draw_genomes(schema, args.n_genomes, args.seed)
    print(f"{data.summary()}; {len(genomes)} genomes, {args.epochs} epochs, {device}",
          flush=True)

    plans: list[dict[str, Any]] = []
    if not args.no_serial:
        plans.append({"mode": "in-process", "workers": 1, "workers_per_gpu": None})
    if device.type == "cuda":
        n_gpus = 1 if device.index is not None else torch.cuda.device_count()
        for k in args.workers_per_gpu:
            plans.append({"mode": "pool", "workers": n_gpus * k, "workers_per_gpu": k})
    else:
        counts = args.workers or [2**i for i in range(8) if 2**i <= usable_cores()]
        plans.extend({"mode": "pool", "workers": n, "workers_per_gpu": None} for n in counts)

    runs: list[list[dict[str, Any]]] = [[] for _ in plans]
    for round_ in range(args.rounds):      # rounds interleave the plans: load drifts evenly
        for plan, done in zip(plans, runs):
            if plan["mode"] == "in-process":
                evaluator: Any = SerialEvaluator()
            else:
                evaluator = ProcessPoolEvaluator(
                    workers=plan["workers"], workers_per_gpu=plan["workers_per_gpu"] or 1,
                    threads_per_worker=args.threads_per_worker)
            run = measure(evaluator, schema, data, config, genomes, args.seed)
            if device.type == "cuda":
                torch.cuda.empty_cache()   # the in-process run's cache: give it to the workers
            run["threads_per_worker"] = getattr(evaluator, "threads", torch.get_num_threads())
            done.append(run)
            print(json.dumps({"round": round_, **plan, **run}), flush=True)
    rows = []
    for plan, done in zip(plans, runs):
        # The least disturbed round: other load only ever slows a run down.
        row = {**plan, **max(done, key=lambda r: r["candidates_per_min"])}
        row["candidates_per_min_each_round"] = [r["candidates_per_min"] for r in done]
        row["failed"] = sum(r["failed"] for r in done)
        rows.append(row)

    base = rows[0]["candidates_per_min"]
    for row in rows:
        row["speedup_vs_first"] = round(row["candidates_per_min"] / base, 2)
    pools = [r for r in rows if r["mode"] == "pool"]
    best = max(pools, key=lambda r: r["candidates_per_min"]) if pools else None
    result = {
        "benchmark": "parallel_scaling", "machine": machine(device),
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "data_root": str(root), "data": data.summary(),
                     "genomes": [list(g) for g in genomes]},
        "rows": rows,
        "best": None if best is None else {k: best[k] for k in (
            "workers", "workers_per_gpu", "threads_per_worker", "candidates_per_min")},
    }
    if not args.no_write:
        write(result, args.out_dir, args.tag or device.type)
    return result


def write(result: dict[str, Any], out_dir: Path, tag: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"parallel_{tag}.json").write_text(json.dumps(result, indent=1) + "\n")
    m, s = result["machine"], result["settings"]
    gpus = f" x {m['gpus']}" if "gpus" in m else ""
    lines = [
        f"# Parallel evaluation scaling ({tag})", "",
        f"{m['date']}; {m.get('gpu', m['cpu'])}"
        f"{gpus}; {m['usable_cores']} usable cores; "
        f"torch {m['torch']}, Python {m['python']}; load average at start "
        f"{' '.join(m.get('loadavg_at_start', []))}.", "",
        f"{s['data']}. {len(s['genomes'])} genomes drawn with seed {s['seed']} from "
        f"GenomeSchema.devol(max_conv_layers={s['max_conv_layers']}, "
        f"max_dense_layers={s['max_dense_layers']}, max_filters={s['max_filters']}, "
        f"max_dense_nodes={s['max_dense_nodes']}); {s['epochs']} epochs each, batch "
        f"{s['batch_size']}, no early stopping, precision {s['precision']}.", "",
        f"Each row: the fastest of {s['rounds']} interleaved round(s) (other load only slows a "
        "run down; every round's rate is listed).", "",
        "| evaluator | workers | per GPU | threads/worker | start-up s | wall s | "
        "candidates/min | each round | speed-up | mean s/candidate | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        lines.append(f"| {r['mode']} | {r['workers']} | {r['workers_per_gpu'] or '-'} | "
                     f"{r['threads_per_worker']} | {r['startup_s']} | {r['wall_s']} | "
                     f"{r['candidates_per_min']} | {r['candidates_per_min_each_round']} | "
                     f"{r['speedup_vs_first']} | "
                     f"{r['mean_candidate_s']} | {r['failed']} |")
    if result["best"]:
        lines += ["", f"Best: {result['best']}"]
    lines += ["", "Command: `python benchmarks/parallel_scaling.py "
              f"--dataset {s['dataset']} --epochs {s['epochs']} --n-genomes {s['n_genomes']}"
              + (f" --max-conv-layers {s['max_conv_layers']} --max-dense-layers "
                 f"{s['max_dense_layers']} --max-filters {s['max_filters']} "
                 f"--max-dense-nodes {s['max_dense_nodes']}" if s["dataset"] == "digits" else "")
              + (f" --train-size {s['train_size']}" if s["train_size"] else "")
              + (f" --test-size {s['test_size']}" if s["test_size"] else "")
              + (f" --workers {','.join(map(str, s['workers']))}" if s["workers"] else "")
              + f" --rounds {s['rounds']}`", ""]
    (out_dir / f"parallel_{tag}.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
