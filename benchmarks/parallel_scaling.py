"""Parallel evaluation scaling: candidates per minute in-process and with 1, 2, 4, ... workers.

The same fixed genomes (a seeded draw from DEvol's search space, ``GenomeSchema.devol``) are
trained by the in-process ``SerialEvaluator`` (the baseline, measured in the same run) and by
``ProcessPoolEvaluator`` with each worker count; on CUDA with K = 1, 2, 4, 8 workers per GPU
(small networks leave a large GPU idle; several per GPU fill it).

One measurement streams the genome list, pass after pass (largest FLOPs first within a pass,
so the last pass ends on small candidates), keeping two candidates per worker in flight; it
stops submitting at the end of the first pass that ends after ``--min-seconds`` (default 30)
and drains. Its rate = candidates / wall seconds (start-up excluded, timed apart; one warm-up
candidate per worker runs before the clock starts). Rounds interleave the configurations;
every figure is the median over rounds with its range, and the speed-up is computed per round
against that round's in-process rate. A speed-up whose range crosses 1 is reported as no
measurable difference.

    python benchmarks/parallel_scaling.py --dataset digits --max-conv-layers 2 \\
        --max-dense-layers 2 --max-filters 32 --max-dense-nodes 64 --epochs 3 --tag cpu-digits
    python benchmarks/parallel_scaling.py --train-size 3000 --test-size 500 --epochs 1
    python3 benchmarks/parallel_scaling.py --device cuda --epochs 1     # GPU: all of MNIST

Writes benchmarks/results/parallel_<tag>.json and .md (``--tag``, default the device type).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    RESULTS,
    Budget,
    Provenance,
    default_data_root,
    devol_schema,
    fmt_spread,
    loadavg,
    provenance_lines,
    ratio_spread,
    settings_of,
    spread,
    write_result,
)
from pytorch_devol.schema import GenomeSchema  # noqa: E402
from pytorch_devol.search import SerialEvaluator, Task  # noqa: E402
from pytorch_devol.search.evaluators.pool import ProcessPoolEvaluator, usable_cores  # noqa: E402
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
    p.add_argument("--epochs", type=int, default=1)
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
    p.add_argument("--serial-threads", type=int, default=None,
                   help="torch threads of the in-process baseline (default: torch's choice); "
                        "1 compares like with like against single-threaded workers")
    p.add_argument("--rounds", type=int, default=3,
                   help="measure every configuration this many times, interleaved")
    p.add_argument("--min-seconds", type=float, default=30.0,
                   help="each measurement runs whole passes until at least this long")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new measurement after this long, counted from the start "
                        "(later ones are skipped and listed as such; a budget spent before the "
                        "first is recorded as 0 measurements)")
    p.add_argument("--seed", type=int, default=0, help="seed of the genome draw and training")
    p.add_argument("--max-conv-layers", type=int, default=6)
    p.add_argument("--max-dense-layers", type=int, default=4)
    p.add_argument("--max-filters", type=int, default=256)
    p.add_argument("--max-dense-nodes", type=int, default=1024)
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--tag", default=None, help="file name suffix (default: the device type)")
    p.add_argument("--note", action="append", default=[], help="a note for the .md")
    p.add_argument("--no-write", action="store_true", help="print only, write no files")
    return p.parse_args(argv)


def flops_per_image(schema: GenomeSchema, genome: tuple[int, ...],
                    shape: tuple[int, ...]) -> float:
    model = schema.build_model(np.asarray(genome))
    counter = FlopCounterMode(display=False)
    with counter:
        model(torch.rand((2, *shape))).sum().backward()
    return counter.get_total_flops() / 2


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
            genomes: list[tuple[int, ...]], seed: int, min_seconds: float) -> dict[str, Any]:
    """Start-up time, one warm-up candidate per worker, then whole passes over ``genomes``
    streamed with two tasks per worker in flight until ``min_seconds`` have passed."""
    load_before = loadavg()
    start = time.perf_counter()
    evaluator.open(schema, data, config)
    startup = time.perf_counter() - start
    try:
        warm = min(genomes, key=sum)
        for i in range(evaluator.capacity):
            evaluator.submit(Task(-1 - i, warm, seed))
        for _ in range(evaluator.capacity):
            evaluator.next_result()
        n, target = len(genomes), 2 * evaluator.capacity
        results, submitted, in_flight, stop = [], 0, 0, False
        start = time.perf_counter()
        while True:
            while not stop and in_flight < target:
                if submitted % n == 0 and submitted and \
                        time.perf_counter() - start >= min_seconds:
                    stop = True
                    break
                evaluator.submit(Task(submitted, genomes[submitted % n], seed + submitted))
                submitted += 1
                in_flight += 1
            if in_flight == 0:
                break
            results.append(evaluator.next_result()[1])
            in_flight -= 1
        wall = time.perf_counter() - start
    finally:
        evaluator.close()
    ok = [r for r in results if r.ok]
    return {"startup_s": round(startup, 2), "wall_s": round(wall, 2),
            "candidates": len(results), "passes": len(results) // n,
            "candidates_per_min": round(60 * len(results) / wall, 2),
            "mean_candidate_s": round(statistics.fmean(r.total_seconds for r in results), 3),
            "failed": len(results) - len(ok),
            "mean_val_accuracy": round(statistics.fmean(r.val_accuracy for r in ok), 4)
            if ok else math.nan,
            "loadavg_before": load_before, "loadavg_after": loadavg()}


def make_plans(args: argparse.Namespace, device: torch.device) -> list[dict[str, Any]]:
    """The configurations: in-process (unless --no-serial), then the pools (K per GPU on
    CUDA; 1, 2, 4, ... workers up to the usable cores, or --workers, on CPU)."""
    plans: list[dict[str, Any]] = []
    if not args.no_serial:
        plans.append({"mode": "in-process", "workers": 1, "workers_per_gpu": None})
    if device.type == "cuda":
        n_gpus = torch.cuda.device_count()
        for k in args.workers_per_gpu:
            plans.append({"mode": "pool", "workers": n_gpus * k, "workers_per_gpu": k})
    else:
        counts = args.workers or [2**i for i in range(8) if 2**i <= usable_cores()]
        plans.extend({"mode": "pool", "workers": n, "workers_per_gpu": None} for n in counts)
    return plans


def make_evaluator(plan: dict[str, Any], args: argparse.Namespace,
                   device: torch.device) -> Any:
    if plan["mode"] == "in-process":
        return SerialEvaluator()
    if device.type == "cuda":
        return ProcessPoolEvaluator(workers=plan["workers"],
                                    workers_per_gpu=plan["workers_per_gpu"],
                                    threads_per_worker=args.threads_per_worker)
    return ProcessPoolEvaluator(devices=["cpu"] * plan["workers"],
                                threads_per_worker=args.threads_per_worker)


def run_plans(plans: list[dict[str, Any]], args: argparse.Namespace, device: torch.device,
              schema: GenomeSchema, data: Any, config: TrainConfig,
              genomes: list[tuple[int, ...]], budget: Budget
              ) -> tuple[list[list[dict[str, Any]]], list[dict[str, Any]]]:
    """Every plan once per round, rounds interleaving the plans (load drifts evenly); a
    measurement not started before the budget is spent is skipped (and returned as such)."""
    runs: list[list[dict[str, Any]]] = [[] for _ in plans]
    skipped: list[dict[str, Any]] = []
    for round_ in range(args.rounds):
        for plan, done in zip(plans, runs, strict=True):
            if budget.spent():
                skipped.append({"round": round_, **plan})
                continue
            evaluator = make_evaluator(plan, args, device)
            threads = torch.get_num_threads()
            if plan["mode"] == "in-process" and args.serial_threads:
                torch.set_num_threads(args.serial_threads)
            try:
                run = measure(evaluator, schema, data, config, genomes, args.seed,
                              args.min_seconds)
                run["threads_per_worker"] = getattr(evaluator, "threads",
                                                    torch.get_num_threads())
            finally:
                torch.set_num_threads(threads)
            if device.type == "cuda":
                torch.cuda.empty_cache()   # the in-process run's cache: give it to the workers
            run["round"] = round_
            done.append(run)
            print(json.dumps({**plan, **run}), flush=True)
    return runs, skipped


def summarise_rows(plans: list[dict[str, Any]],
                   runs: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per plan: medians over rounds with their range; the speed-up per round against
    that round's in-process rate (when the in-process baseline ran)."""
    base_by_round = ({r["round"]: r["candidates_per_min"] for r in runs[0]}
                     if plans and plans[0]["mode"] == "in-process" else {})
    rows = []
    for plan, done in zip(plans, runs, strict=True):
        row: dict[str, Any] = {**plan, "rounds": len(done),
                               "candidates_per_min": spread(r["candidates_per_min"]
                                                            for r in done),
                               "wall_s": spread(r["wall_s"] for r in done),
                               "startup_s": spread(r["startup_s"] for r in done),
                               "mean_candidate_s": spread(r["mean_candidate_s"] for r in done),
                               "candidates_per_measurement": [r["candidates"] for r in done],
                               "failed": sum(r["failed"] for r in done),
                               "threads_per_worker": done[0]["threads_per_worker"]
                               if done else None}
        if base_by_round:
            row["speedup_vs_in_process"] = ratio_spread(
                (r["candidates_per_min"] / base_by_round[r["round"]] for r in done
                 if r["round"] in base_by_round),
                "the in-process rate", "slower than in-process")
        rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    provenance = Provenance("parallel_scaling.py", argv)
    budget = Budget(args.max_minutes)
    root = args.data_root or default_data_root()
    limit = None if args.train_size is None and args.test_size is None else (
        args.train_size, args.test_size)
    data = load_dataset(args.dataset, root=root, seed=args.seed, limit=limit)
    schema = devol_schema(args, data)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=None,
                         device=args.device, seed=args.seed, precision=args.precision)
    device = config.resolve_device()
    drawn = draw_genomes(schema, args.n_genomes, args.seed)
    costs = {g: flops_per_image(schema, g, data.input_shape) for g in drawn}
    genomes = sorted(drawn, key=lambda g: -costs[g])  # largest first within a pass
    print(f"{data.summary()}; {len(genomes)} genomes, {args.epochs} epochs, {device}",
          flush=True)

    plans = make_plans(args, device)
    runs, skipped = run_plans(plans, args, device, schema, data, config, genomes, budget)
    rows = summarise_rows(plans, runs)
    measured = [r for r in rows if r["mode"] == "pool" and r["rounds"]]
    best = max(measured, key=lambda r: r["candidates_per_min"]["median"]) if measured else None
    header = provenance.header(device)
    n_runs = sum(len(done) for done in runs)
    outcome = (f"{n_runs} of {len(plans) * args.rounds} measurements made "
               f"({sum(r['candidates'] for done in runs for r in done)} candidates evaluated) "
               f"in {header['wall_seconds']:.0f} s"
               + (f", {len(skipped)} skipped by --max-minutes" if skipped else ""))
    result = {
        "benchmark": "parallel_scaling", **header,
        "settings": {**settings_of(args), "data_root": str(root), "data": data.summary(),
                     "genomes": [list(g) for g in genomes],
                     "train_flops_per_image": [costs[g] for g in genomes]},
        "outcome": outcome, "rows": rows, "runs": runs, "skipped": skipped,
        "best_pool": None if best is None else {
            "workers": best["workers"], "workers_per_gpu": best["workers_per_gpu"],
            "threads_per_worker": best["threads_per_worker"],
            "candidates_per_min_median": best["candidates_per_min"]["median"]},
    }
    print(outcome, flush=True)
    if not args.no_write:
        write(result, args.out_dir, args.tag or device.type)
    return result


def write(result: dict[str, Any], out_dir: Path, tag: str) -> None:
    s = result["settings"]
    lines = [
        f"# Parallel evaluation scaling ({tag})", "",
        *provenance_lines(result), "",
        f"{s['data']}. {len(s['genomes'])} genomes drawn with seed {s['seed']} from "
        f"GenomeSchema.devol(max_conv_layers={s['max_conv_layers']}, "
        f"max_dense_layers={s['max_dense_layers']}, max_filters={s['max_filters']}, "
        f"max_dense_nodes={s['max_dense_nodes']}); {s['epochs']} epoch(s) each, batch "
        f"{s['batch_size']}, no early stopping, precision {s['precision']}. Each measurement "
        f"streams whole passes over the genomes for at least {s['min_seconds']:g} s; "
        f"{s['rounds']} interleaved round(s). Cells: median over rounds (min-max); the "
        "speed-up is per round against that round's in-process rate.", "",
        "| evaluator | workers | per GPU | threads/worker | candidates/min | speed-up vs "
        "in-process | wall s per measurement | candidates per measurement | start-up s | "
        "mean s/candidate | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in result["rows"]:
        sp = r.get("speedup_vs_in_process")
        lines.append(
            f"| {r['mode']} | {r['workers']} | {r['workers_per_gpu'] or '-'} | "
            f"{r['threads_per_worker']} | {fmt_spread(r['candidates_per_min'], 1)} | "
            f"{fmt_spread(sp, 2) if sp else '-'} | {fmt_spread(r['wall_s'], 0)} | "
            f"{r['candidates_per_measurement']} | {fmt_spread(r['startup_s'], 1)} | "
            f"{fmt_spread(r['mean_candidate_s'], 2)} | {r['failed']} |")
    lines.append("")
    for r in result["rows"]:
        if r["mode"] == "pool" and r.get("speedup_vs_in_process"):
            lines.append(f"- {r['workers']} worker(s)"
                         + (f" ({r['workers_per_gpu']} per GPU)" if r["workers_per_gpu"] else "")
                         + f": {r['speedup_vs_in_process']['verdict']}.")
    failed = sum(r["failed"] for r in result["rows"])
    if failed:
        lines += ["", f"**{failed} candidate(s) FAILED** (see the JSON's runs): a failed "
                  "candidate costs less than a trained one, so these rates are not "
                  "comparable with a run without failures."]
    if result["best_pool"]:
        lines += ["", f"Highest median pool rate: {result['best_pool']}."]
    else:
        lines += ["", "No pool configuration was measured: no best worker count."]
    if not any(r["rounds"] for r in result["rows"]):
        lines += ["", f"**Nothing measured: {result['outcome']}.**"]
    if result["skipped"]:
        lines += ["", f"Skipped by --max-minutes {s['max_minutes']}: "
                  + ", ".join(f"round {k['round']} {k['mode']} x{k['workers']}"
                              for k in result["skipped"]) + "."]
    if s.get("note"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in s["note"]]
    lines.append("")
    write_result(out_dir / f"parallel_{tag}.json", result, "\n".join(lines))


if __name__ == "__main__":
    main()
