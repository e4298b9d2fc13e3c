"""Candidate-training throughput: our Trainer against two plain PyTorch loops, same genomes,
same epochs and batch size, all in one run.

A fixed set of genomes is drawn with a fixed seed from DEvol's search space
(``GenomeSchema.devol``); each is trained for the same epochs and batch size three ways:
  ours:      pytorch_devol.training.Trainer (data on the device once, batches sliced from a
             device permutation, one host sync per epoch, bf16 autocast where it pays,
             channels_last, cudnn.benchmark and fused optimizers on CUDA, a faster dropout-mask
             kernel on CPU). Early stopping is off and the last epoch's weights are kept
             (``patience=None, restore_best=False``), so all three do the same work.
  tuned:     what a good engineer writes: the tutorial loop plus its one-line speed-ups, with
             the same precision and layout decisions as ours: bf16 autocast where supported
             (CUDA; CPUs with native bf16 kernels), channels_last (model and batches), pinned
             memory + ``non_blocking`` copies on CUDA, ``cudnn.benchmark`` on, no per-step
             ``.item()`` (the loss summed on the device, one sync per epoch), evaluation under
             ``inference_mode`` in the same large batches as ours, the same optimizer
             construction as ours (fused on CUDA).
  tutorial:  TensorDataset + DataLoader(shuffle=True), fp32, ``loss.item()`` every batch,
             torch's default optimizer variant, torch's default ``cudnn.benchmark`` (off).
The headline is ours against tuned. Every way includes model build, per-epoch validation and
the final test evaluation.

Repeats are interleaved: round r trains every genome with seed ``--seed + r`` in all three ways,
rotating which way goes first. Every timed figure is the median over rounds with its range;
ratios are computed per round (sum of seconds over the genomes) and a ratio whose range
crosses 1 is reported as no measurable difference. The seeds double as the accuracy check: the
three ways train the same (genome, seed) pairs, and the paired test-accuracy differences are
reported. FLOPs (torch.utils.flop_counter) give the achieved TFLOP/s, against a measured dense
matmul rate (bf16 and fp32, medians of several measurements) on the same device and threads.

    python benchmarks/train_throughput.py                                 # see --help
    python3 benchmarks/train_throughput.py --device cuda --train-size 60000 --epochs 1 \\
        --max-minutes 2                                                   # one H100/H200

Writes benchmarks/results/train_throughput_<tag>.json and .md (--out-dir, --tag).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    RESULTS,
    Budget,
    Provenance,
    default_data_root,
    devol_schema,
    settings_of,
)
from benchmarks.train_loops import (  # noqa: E402
    count_flops,
    matmul_rates,
    tuned_train,
    tutorial_train,
)
from benchmarks.train_throughput_report import summarise, write  # noqa: E402
from pytorch_devol.schema import GenomeSchema  # noqa: E402
from pytorch_devol.training import (  # noqa: E402
    DATA_ENV_VAR,
    TrainConfig,
    Trainer,
    load_dataset,
)

WAYS = ("ours", "tuned", "tutorial")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-genomes", type=int, default=6)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-size", type=int, default=3000,
                   help="training examples drawn from the official train set (10%% of them "
                        "become the validation part); 60000 = all MNIST")
    p.add_argument("--test-size", type=int, default=1000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="precision of ours and tuned (tutorial is always fp32)")
    p.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"],
                   help="layout of ours and tuned (auto: on CUDA, and on CPU with bf16)")
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist", "digits"])
    p.add_argument("--data-root", type=Path, default=None,
                   help=f"torchvision layout root (default ${DATA_ENV_VAR}, <repo>/datasets "
                        "or <repo>/../shared/datasets)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the genome draw; round r trains with seed + r")
    p.add_argument("--max-conv-layers", type=int, default=3)
    p.add_argument("--max-dense-layers", type=int, default=2)
    p.add_argument("--max-filters", type=int, default=64)
    p.add_argument("--max-dense-nodes", type=int, default=256)
    p.add_argument("--repeats", type=int, default=3,
                   help="interleaved rounds (each a different training seed)")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new (genome, round) after this long (counted from the start, "
                        "warm-up included); only complete rounds enter the medians (a partial "
                        "first round is used, and labelled; a budget spent before the first "
                        "genome is recorded as 0 genomes measured)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for all ways (default: torch's choice)")
    p.add_argument("--ways", default=",".join(WAYS),
                   help="comma-separated subset of ours,tuned,tutorial")
    p.add_argument("--warmup", default="auto", choices=["auto", "on", "off"],
                   help="train each genome once, untimed, on a tiny subset in every way before "
                        "the rounds (auto: on CUDA, where cuDNN autotunes per shape)")
    p.add_argument("--no-flops", action="store_true", help="skip FLOP counting / matmul rate")
    p.add_argument("--matmul-seconds", type=float, default=None,
                   help="length of each of the --matmul-repeats x 2 matmul-rate measurements "
                        "(default 1 s on CUDA, 0.7 s on CPU)")
    p.add_argument("--matmul-size", type=int, default=None,
                   help="N of the N x N matmuls (default 8192 on CUDA, 1024 on CPU; each "
                        "measurement runs at least 4 of them, and bf16 without native kernels "
                        "is slow: ~3 s per 1024 matmul on one thread of a CPU without them)")
    p.add_argument("--matmul-repeats", type=int, default=3,
                   help="matmul-rate measurements per dtype (the median is reported)")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument("--tag", default=None, help="file name suffix (default: the device type)")
    p.add_argument("--note", action="append", default=[], help="a note for the .md")
    p.add_argument("--no-write", action="store_true", help="print only, write no files")
    args = p.parse_args(argv)
    args.ways = [w.strip() for w in args.ways.split(",") if w.strip()]
    if not args.ways or any(w not in WAYS for w in args.ways):
        p.error(f"--ways must name some of {WAYS}")
    if args.repeats < 1 or args.n_genomes < 1 or args.matmul_repeats < 1:
        p.error("--repeats, --n-genomes and --matmul-repeats must be >= 1")
    return args


def draw_genomes(schema: GenomeSchema, n: int, seed: int) -> list[np.ndarray]:
    """The first n genomes of a seeded draw that build (a build failure is skipped)."""
    rng = np.random.default_rng(seed)
    genomes: list[np.ndarray] = []
    for _ in range(100 * n):
        g = schema.random(rng)
        try:
            schema.build_model(g)
        except ValueError:
            continue
        genomes.append(g)
        if len(genomes) == n:
            break
    return genomes


# -- main ------------------------------------------------------------------------------------
@dataclass
class Setup:
    """What every timed run shares: the data, the space, our Trainer and the decisions it took
    for this device (bf16, channels_last, evaluation batch), which tuned copies."""

    args: argparse.Namespace
    root: Path
    data: Any
    schema: GenomeSchema
    channels_last: Any
    trainer: Trainer
    eval_batch: int

    @property
    def device(self) -> torch.device:
        return self.trainer.device


def setup(args: argparse.Namespace) -> Setup:
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    root = args.data_root or default_data_root()
    limit = None if args.train_size >= 60000 and args.test_size >= 10000 else (
        args.train_size, args.test_size)
    data = load_dataset(args.dataset, root=root, seed=args.seed, limit=limit)
    schema = devol_schema(args, data)
    channels_last = {"auto": "auto", "on": True, "off": False}[args.channels_last]
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=None,
                         device=args.device, seed=args.seed, precision=args.precision,
                         channels_last=channels_last, restore_best=False)
    trainer = Trainer(data, config)
    print(f"{data.summary()}\n{trainer}", flush=True)
    return Setup(args, root, data, schema, channels_last, trainer,
                 config.resolved_eval_batch_size(trainer.device))


def run_way(s: Setup, way: str, genome: np.ndarray, d: Any, t: Trainer, epochs: int,
            seed: int) -> dict[str, Any]:
    """Train ``genome`` one way on ``d`` (ours: with the Trainer ``t``), timed."""
    device = s.device
    start = time.perf_counter()
    if way == "ours":
        if device.type == "cuda":  # Trainer turns it on once; the tutorial turned it off
            torch.backends.cudnn.benchmark = True
        r = t.evaluate(s.schema, genome, seed=seed)
        out = {"status": r.status, "val_accuracy": r.val_accuracy,
               "test_accuracy": r.test_accuracy}
        if r.status != "ok":
            out["reason"] = r.reason
    else:
        if way == "tutorial" and device.type == "cuda":
            torch.backends.cudnn.benchmark = False  # torch's default
        try:
            if way == "tuned":
                out = tuned_train(s.schema, genome, d, epochs, s.args.batch_size, device, seed,
                                  s.trainer.bf16, s.trainer.channels_last, s.eval_batch)
            else:
                out = tutorial_train(s.schema, genome, d, epochs, s.args.batch_size, device,
                                     seed)
        except Exception as exc:  # OOM etc.: record, do not stop the benchmark
            out = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                   "val_accuracy": math.nan, "test_accuracy": math.nan}
        if device.type == "cuda":
            torch.cuda.empty_cache()
    out["seconds"] = time.perf_counter() - start
    return out


def warm_up(s: Setup, genomes: list[np.ndarray]) -> None:
    """oneDNN / cuDNN / the allocator, untimed, on a tiny subset: every genome (--warmup on,
    or auto on CUDA, where cuDNN autotunes per shape), else the first."""
    args = s.args
    small = load_dataset(args.dataset, root=s.root, limit=(2 * args.batch_size + 20, 64))
    small_trainer = Trainer(small, TrainConfig(
        epochs=1, batch_size=args.batch_size, patience=None, device=args.device,
        precision=args.precision, channels_last=s.channels_last, restore_best=False))
    warm_all = args.warmup == "on" or (args.warmup == "auto" and s.device.type == "cuda")
    for genome in genomes if warm_all else genomes[:1]:
        for way in args.ways:
            run_way(s, way, genome, small, small_trainer, 1, args.seed)


def genome_records(s: Setup, genomes: list[np.ndarray]) -> list[dict[str, Any]]:
    """One record per genome: its layers, parameters, FLOPs (unless --no-flops), runs."""
    args, n_train = s.args, s.data.sizes()["train"]
    records: list[dict[str, Any]] = []
    for genome in genomes:
        rec: dict[str, Any] = {"genome": [int(v) for v in genome],
                               "layers": s.schema.describe(genome),
                               "params": sum(p.numel() for p in s.schema.build_model(
                                   genome).parameters()),
                               "runs": {way: [] for way in args.ways}}
        if not args.no_flops:
            train_f, infer_f = count_flops(s.schema, genome, s.data.input_shape, s.device)
            sizes = s.data.sizes()
            rec["flops"] = (args.epochs * (n_train * train_f + sizes["val"] * infer_f)
                            + sizes["test"] * infer_f)
            rec["train_flops_per_image"] = train_f
        records.append(rec)
    return records


def run_rounds(s: Setup, genomes: list[np.ndarray], records: list[dict[str, Any]],
               budget: Budget) -> tuple[int, bool]:
    """The interleaved rounds: round r trains every genome with seed + r in every way, who
    goes first rotating; returns (complete rounds, stopped by the time budget)."""
    args = s.args
    rounds_done, stopped = 0, False
    for r in range(args.repeats):
        for gi, (genome, rec) in enumerate(zip(genomes, records, strict=True)):
            if budget.spent():
                stopped = True
                break
            k = (gi + r) % len(args.ways)  # rotate who goes first
            for way in args.ways[k:] + args.ways[:k]:
                out = run_way(s, way, genome, s.data, s.trainer, args.epochs, args.seed + r)
                out["round"] = r
                rec["runs"][way].append(out)
            print(json.dumps({"round": r, "genome": gi, **{
                w: {k2: (round(v, 4) if isinstance(v, float) else v)
                    for k2, v in rec["runs"][w][-1].items() if k2 != "reason"}
                for w in args.ways}}), flush=True)
        if stopped:
            break
        rounds_done += 1
    return rounds_done, stopped


def add_matmul_rates(summary: dict[str, Any], s: Setup) -> None:
    """The measured bf16/fp32 matmul rates, and each way's TFLOP/s as a fraction of them."""
    args = s.args
    if summary["genomes_counted"] == 0:  # a result, not a crash: say so, measure nothing more
        summary["matmul_tflops_skipped"] = "no genome was measured: no rate to compare with"
        return
    if args.no_flops:
        return
    summary["matmul_tflops"] = matmul_rates(s.device, args.matmul_seconds,
                                            args.matmul_repeats, args.matmul_size)
    for way in args.ways:
        tf = summary["ways"][way].get("tflops_per_s")
        if tf is not None:
            summary["ways"][way]["fraction_of_bf16_matmul"] = (
                tf["median"] / summary["matmul_tflops"]["bf16"]["median"])
            summary["ways"][way]["fraction_of_fp32_matmul"] = (
                tf["median"] / summary["matmul_tflops"]["fp32"]["median"])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    provenance = Provenance("train_throughput.py", argv)
    budget = Budget(args.max_minutes)
    s = setup(args)
    genomes = draw_genomes(s.schema, args.n_genomes, args.seed)
    n_images = args.epochs * s.data.sizes()["train"]
    warm_up(s, genomes)
    print(f"warm-up done ({budget.elapsed():.0f} s)", flush=True)
    records = genome_records(s, genomes)
    rounds_done, stopped = run_rounds(s, genomes, records, budget)

    summary = summarise(records, args.ways, n_images, rounds_done, not args.no_flops)
    add_matmul_rates(summary, s)
    summary["stopped_by_time_budget"] = stopped
    header = provenance.header(s.device)
    counted = summary["genomes_counted"]
    summary["outcome"] = (f"{counted} of {summary['genomes_drawn']} genomes measured in every "
                          f"way, {summary['rounds_counted'] if counted else 0} round(s), in "
                          f"{header['wall_seconds']:.0f} s"
                          + (" (stopped by --max-minutes)" if stopped else ""))
    result = {
        "benchmark": "train_throughput", **header,
        "settings": {**settings_of(args), "data_root": str(s.root), "data": s.data.summary(),
                     "bf16": s.trainer.bf16, "channels_last": s.trainer.channels_last,
                     "eval_batch_size": s.eval_batch},
        "summary": summary, "genomes": records,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "per_genome"}, indent=1))
    if not args.no_write:
        write(result, args.out_dir, args.tag or s.device.type)
    return result


if __name__ == "__main__":
    main()
