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
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from machine import (  # noqa: E402
    Budget,
    code_state,
    cpu_name,
    default_data_root,
    fmt_spread,
    loadavg,
    now,
    ratio_verdict,
    spread,
)

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
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
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


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the two plain loops ---------------------------------------------------------------------
def tutorial_train(schema: Any, genome: np.ndarray, data: Any, epochs: int, batch_size: int,
                   device: torch.device, seed: int) -> dict[str, Any]:
    """What a PyTorch tutorial does: DataLoader, fp32, .item() per batch."""
    torch.manual_seed(seed)
    model = schema.build_model(genome).to(device)
    optimizer = schema.make_optimizer(genome, model.parameters())  # torch's default variant
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=batch_size,
                       shuffle=True)
    val = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=batch_size)
    test = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=batch_size)

    def score(loader: DataLoader) -> tuple[float, float]:
        model.eval()
        loss_sum, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                out = model(xb)
                loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
                correct += (out.argmax(1) == yb).sum().item()
                n += len(yb)
        return loss_sum / n, correct / n

    val_acc, finite = math.nan, True
    for _ in range(epochs):
        model.train()
        running = 0.0
        for xb, yb in train:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item()
        if not math.isfinite(running):
            finite = False
            break
        _, val_acc = score(val)
    _, test_acc = score(test)
    sync(device)
    return {"status": "ok" if finite else "nan", "val_accuracy": val_acc,
            "test_accuracy": test_acc}


def tuned_train(schema: Any, genome: np.ndarray, data: Any, epochs: int, batch_size: int,
                device: torch.device, seed: int, bf16: bool, channels_last: bool,
                eval_batch: int) -> dict[str, Any]:
    """The tutorial loop plus the one-line speed-ups a good engineer adds."""
    torch.manual_seed(seed)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = schema.build_model(genome).to(device, memory_format=fmt)
    optimizer = schema.make_optimizer(genome, model.parameters(), device=device)
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=batch_size,
                       shuffle=True, pin_memory=cuda)
    val = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=eval_batch,
                     pin_memory=cuda)
    test = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=eval_batch,
                      pin_memory=cuda)

    def autocast() -> Any:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    def batch(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xb = xb.to(device, non_blocking=True)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, yb.to(device, non_blocking=True)

    def score(loader: DataLoader) -> float:
        model.eval()
        correct = torch.zeros((), device=device, dtype=torch.int64)
        n = 0
        with torch.inference_mode(), autocast():
            for xb, yb in loader:
                xb, yb = batch(xb, yb)
                correct += (model(xb).argmax(1) == yb).sum()
                n += len(yb)
        return int(correct) / n

    val_acc, finite = math.nan, True
    for _ in range(epochs):
        model.train()
        running = torch.zeros((), device=device)
        for xb, yb in train:
            xb, yb = batch(xb, yb)
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                out = model(xb)
            loss = F.cross_entropy(out.float(), yb)
            loss.backward()
            optimizer.step()
            running += loss.detach()
        if not math.isfinite(float(running)):  # one sync per epoch
            finite = False
            break
        val_acc = score(val)
    test_acc = score(test)
    sync(device)
    return {"status": "ok" if finite else "nan", "val_accuracy": val_acc,
            "test_accuracy": test_acc}


# -- FLOPs and matmul rates ------------------------------------------------------------------
def count_flops(schema: Any, genome: np.ndarray, shape: tuple[int, ...], device: torch.device,
                batch: int = 16) -> tuple[float, float]:
    """(training FLOPs per image: forward + backward, inference FLOPs per image)."""
    model = schema.build_model(genome).to(device)
    x = torch.rand((batch, *shape), device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    train = counter.get_total_flops() / batch
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return train, counter.get_total_flops() / batch


def matmul_rate(device: torch.device, dtype: torch.dtype, seconds: float, n: int) -> float:
    """Measured dense matmul FLOP/s of n x n matrices on ``device`` in ``dtype`` (the practical
    peak)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10 if device.type == "cuda" else 1):
            a @ b
            reps += 1
        sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start)


def matmul_rates(device: torch.device, seconds: float | None = None,
                 repeats: int = 3, n: int | None = None) -> dict[str, Any]:
    """bf16 and fp32 rates, interleaved, median and range over ``repeats`` measurements."""
    if seconds is None:
        seconds = 1.0 if device.type == "cuda" else 0.7
    n = n or (8192 if device.type == "cuda" else 1024)
    rates: dict[str, list[float]] = {"bf16": [], "fp32": []}
    for _ in range(repeats):
        rates["bf16"].append(matmul_rate(device, torch.bfloat16, seconds, n) / 1e12)
        rates["fp32"].append(matmul_rate(device, torch.float32, seconds, n) / 1e12)
    return {**{k: spread(v) for k, v in rates.items()}, "size": n}


# -- machine description ---------------------------------------------------------------------
def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": now(), "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "platform": platform.platform(),
        "cpu": cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return info


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
def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    started, load_start = now(), loadavg()
    budget = Budget(args.max_minutes)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    root = args.data_root or default_data_root()
    limit = None if args.train_size >= 60000 and args.test_size >= 10000 else (
        args.train_size, args.test_size)
    data = load_dataset(args.dataset, root=root, seed=args.seed, limit=limit)
    schema = GenomeSchema.devol(
        max_conv_layers=args.max_conv_layers, max_dense_layers=args.max_dense_layers,
        max_filters=args.max_filters, max_dense_nodes=args.max_dense_nodes,
        input_shape=data.input_shape, n_classes=data.n_outputs)
    channels_last = {"auto": "auto", "on": True, "off": False}[args.channels_last]
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=None,
                         device=args.device, seed=args.seed, precision=args.precision,
                         channels_last=channels_last, restore_best=False)
    trainer = Trainer(data, config)
    device = trainer.device
    bf16, layout = trainer.bf16, trainer.channels_last
    eval_batch = config.resolved_eval_batch_size(device)
    print(f"{data.summary()}\n{trainer}", flush=True)
    genomes = draw_genomes(schema, args.n_genomes, args.seed)
    n_train = data.sizes()["train"]
    n_images = args.epochs * n_train

    def run(way: str, genome: np.ndarray, d: Any, t: Trainer, epochs: int,
            seed: int) -> dict[str, Any]:
        start = time.perf_counter()
        if way == "ours":
            if device.type == "cuda":  # Trainer turns it on once; the tutorial turned it off
                torch.backends.cudnn.benchmark = True
            r = t.evaluate(schema, genome, seed=seed)
            out = {"status": r.status, "val_accuracy": r.val_accuracy,
                   "test_accuracy": r.test_accuracy}
            if r.status != "ok":
                out["reason"] = r.reason
        else:
            if way == "tutorial" and device.type == "cuda":
                torch.backends.cudnn.benchmark = False  # torch's default
            try:
                if way == "tuned":
                    out = tuned_train(schema, genome, d, epochs, args.batch_size, device, seed,
                                      bf16, layout, eval_batch)
                else:
                    out = tutorial_train(schema, genome, d, epochs, args.batch_size, device,
                                         seed)
            except Exception as exc:  # OOM etc.: record, do not stop the benchmark
                out = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}",
                       "val_accuracy": math.nan, "test_accuracy": math.nan}
            if device.type == "cuda":
                torch.cuda.empty_cache()
        out["seconds"] = time.perf_counter() - start
        return out

    # Warm-up (oneDNN / cuDNN / allocator), untimed, on a tiny subset.
    small = load_dataset(args.dataset, root=root, limit=(2 * args.batch_size + 20, 64))
    small_trainer = Trainer(small, TrainConfig(
        epochs=1, batch_size=args.batch_size, patience=None, device=args.device,
        precision=args.precision, channels_last=channels_last, restore_best=False))
    warm_all = args.warmup == "on" or (args.warmup == "auto" and device.type == "cuda")
    for genome in genomes if warm_all else genomes[:1]:
        for way in args.ways:
            run(way, genome, small, small_trainer, 1, args.seed)
    print(f"warm-up done ({budget.elapsed():.0f} s)", flush=True)

    records: list[dict[str, Any]] = []
    for genome in genomes:
        rec: dict[str, Any] = {"genome": [int(v) for v in genome],
                               "layers": schema.describe(genome),
                               "params": sum(p.numel() for p in schema.build_model(
                                   genome).parameters()),
                               "runs": {way: [] for way in args.ways}}
        if not args.no_flops:
            train_f, infer_f = count_flops(schema, genome, data.input_shape, device)
            sizes = data.sizes()
            rec["flops"] = (args.epochs * (n_train * train_f + sizes["val"] * infer_f)
                            + sizes["test"] * infer_f)
            rec["train_flops_per_image"] = train_f
        records.append(rec)

    rounds_done, stopped = 0, False
    for r in range(args.repeats):
        for gi, (genome, rec) in enumerate(zip(genomes, records, strict=True)):
            if budget.spent():
                stopped = True
                break
            k = (gi + r) % len(args.ways)  # rotate who goes first
            for way in args.ways[k:] + args.ways[:k]:
                out = run(way, genome, data, trainer, args.epochs, args.seed + r)
                out["round"] = r
                rec["runs"][way].append(out)
            print(json.dumps({"round": r, "genome": gi, **{
                w: {k2: (round(v, 4) if isinstance(v, float) else v)
                    for k2, v in rec["runs"][w][-1].items() if k2 != "reason"}
                for w in args.ways}}), flush=True)
        if stopped:
            break
        rounds_done += 1

    summary = summarise(records, args.ways, n_images, rounds_done, not args.no_flops)
    if summary["genomes_counted"] == 0:  # a result, not a crash: say so, measure nothing more
        summary["matmul_tflops_skipped"] = "no genome was measured: no rate to compare with"
    elif not args.no_flops:
        summary["matmul_tflops"] = matmul_rates(device, args.matmul_seconds,
                                                args.matmul_repeats, args.matmul_size)
        for way in args.ways:
            tf = summary["ways"][way].get("tflops_per_s")
            if tf is not None:
                summary["ways"][way]["fraction_of_bf16_matmul"] = (
                    tf["median"] / summary["matmul_tflops"]["bf16"]["median"])
                summary["ways"][way]["fraction_of_fp32_matmul"] = (
                    tf["median"] / summary["matmul_tflops"]["fp32"]["median"])
    summary["stopped_by_time_budget"] = stopped
    info = machine(device)
    info.update(started=started, loadavg_at_start=load_start, loadavg_at_end=loadavg(),
                wall_seconds=round(budget.elapsed(), 1), code=code_state())
    counted = summary["genomes_counted"]
    summary["outcome"] = (f"{counted} of {summary['genomes_drawn']} genomes measured in every "
                          f"way, {summary['rounds_counted'] if counted else 0} round(s), in "
                          f"{info['wall_seconds']:.0f} s"
                          + (" (stopped by --max-minutes)" if stopped else ""))
    result = {
        "benchmark": "train_throughput", "machine": info,
        "command": shlex.join(["python", "benchmarks/train_throughput.py", *argv]),
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "data_root": str(root), "data": data.summary(),
                     "bf16": bf16, "channels_last": layout, "eval_batch_size": eval_batch},
        "summary": summary, "genomes": records,
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "per_genome"}, indent=1))
    if not args.no_write:
        write(result, args.out_dir, args.tag or device.type)
    return result


def summarise(records: list[dict[str, Any]], ways: list[str], n_images: int, rounds_done: int,
              flops: bool) -> dict[str, Any]:
    """Per-round totals over the genomes that trained in every way of every counted round."""
    if rounds_done >= 1:
        rounds, partial = list(range(rounds_done)), False
    else:  # the budget ran out inside round 0: use the genomes it finished
        rounds, partial = [0], True

    def run_of(rec: dict[str, Any], way: str, r: int) -> dict[str, Any] | None:
        return next((x for x in rec["runs"][way] if x["round"] == r), None)

    usable = [rec for rec in records
              if all((x := run_of(rec, w, r)) is not None and x["status"] == "ok"
                     for w in ways for r in rounds)]
    out: dict[str, Any] = {
        "rounds_counted": len(rounds), "partial_round": partial,
        "genomes_counted": len(usable), "genomes_drawn": len(records),
        "images_per_genome": n_images, "ways": {}, "ratios": {},
    }
    per_round = {w: [sum(run_of(rec, w, r)["seconds"] for rec in usable) for r in rounds]
                 if usable else [] for w in ways}  # no genome: no timing (not 0 s)
    total_flops = sum(rec.get("flops", 0.0) for rec in usable)
    for w in ways:
        secs = per_round[w]
        entry: dict[str, Any] = {
            "seconds_per_round": spread(secs),
            "images_per_s": spread(n_images * len(usable) / s for s in secs if s > 0),
        }
        if flops and usable:
            entry["tflops_per_s"] = spread(total_flops / s / 1e12 for s in secs if s > 0)
        runs = [x for rec in records for x in rec["runs"][w] if x["round"] in rounds]
        accs = [x["test_accuracy"] for x in runs if x["status"] == "ok"]
        entry["mean_test_accuracy"] = statistics.fmean(accs) if accs else math.nan
        entry["failed"] = sum(x["status"] != "ok" for x in runs)
        out["ways"][w] = entry
    pairs = [(a, b) for a, b in (("tuned", "ours"), ("tutorial", "ours"), ("tutorial", "tuned"))
             if a in ways and b in ways]
    for a, b in pairs:
        ratios = spread(sa / sb for sa, sb in zip(per_round[a], per_round[b], strict=True)
                        if sb > 0)
        ratios["verdict"] = ratio_verdict(ratios, "faster")
        per_genome = []
        for rec in usable:
            per_genome.append(statistics.median(
                run_of(rec, a, r)["seconds"] / run_of(rec, b, r)["seconds"] for r in rounds))
        ratios["per_genome_median_min_max"] = (
            [statistics.median(per_genome), min(per_genome), max(per_genome)]
            if per_genome else None)
        # Accuracy: the same (genome, seed) trained both ways.
        diffs = [run_of(rec, b, r)["test_accuracy"] - run_of(rec, a, r)["test_accuracy"]
                 for rec in usable for r in rounds]
        ratios["test_accuracy_diff"] = {
            "what": f"{b} minus {a}, paired by (genome, seed)", "pairs": len(diffs),
            "mean": statistics.fmean(diffs) if diffs else math.nan,
            "sd": statistics.stdev(diffs) if len(diffs) > 1 else math.nan,
            "stderr": (statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1
                       else math.nan),
            "min": min(diffs) if diffs else math.nan, "max": max(diffs) if diffs else math.nan}
        out["ratios"][f"{b}_vs_{a}"] = ratios
    return out


def code_line(c: dict[str, Any]) -> str:
    return (f"git {c['git_head']}" + (" + uncommitted changes in pytorch_devol/"
                                      if c["pytorch_devol_uncommitted_changes"] else "")
            + f" (pytorch_devol sha256 {c['pytorch_devol_sha256']})")


def write(result: dict[str, Any], out_dir: Path, tag: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"train_throughput_{tag}.json"
    path.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")
    s, m, st = result["summary"], result["machine"], result["settings"]
    flops = "matmul_tflops" in s
    rounds = (f"{s['rounds_counted']} interleaved round(s)" if not s["partial_round"] else
              "a PARTIAL first round (the time budget ran out)")
    if not s["genomes_counted"]:
        rounds = "NOTHING MEASURED: no genome trained in every way within the time budget"
    lines = [
        f"# Training throughput ({tag})", "",
        f"{m['date']} - {m.get('gpu', m['cpu'])} ({m['cpu_count']} CPUs, {m['torch_threads']} "
        f"torch threads), torch {m['torch']}, Python {m['python']}; load average "
        f"{' '.join(m['loadavg_at_start'] or [])} at start, "
        f"{' '.join(m['loadavg_at_end'] or [])} at the end; {m['wall_seconds']} s in all. "
        f"Code: {code_line(m['code'])}.", "",
        f"Command: `{result['command']}`", "",
        f"{s['genomes_counted']} of {s['genomes_drawn']} genomes (seed {st['seed']}) from "
        f"GenomeSchema.devol(max_conv_layers={st['max_conv_layers']}, max_dense_layers="
        f"{st['max_dense_layers']}, max_filters={st['max_filters']}, max_dense_nodes="
        f"{st['max_dense_nodes']}); {st['data']}; {st['epochs']} epoch(s), batch "
        f"{st['batch_size']}, no early stopping, last weights kept; every way includes build, "
        f"per-epoch validation and test. {rounds}; round r trains with seed {st['seed']} + r, "
        "the order of the ways rotating per genome and round. Cells: median over rounds "
        "(min-max).", "",
        "| way | seconds per round | images/s | mean test acc |" + (
            " TFLOP/s | % of bf16 matmul | % of fp32 matmul |" if flops else ""),
        "| --- | --- | --- | --- |" + (" --- | --- | --- |" if flops else ""),
    ]
    for way, w in s["ways"].items():
        row = (f"| {way} | {fmt_spread(w['seconds_per_round'], 1)} | "
               f"{fmt_spread(w['images_per_s'], 0)} | {w['mean_test_accuracy']:.4f} |")
        if flops and "tflops_per_s" in w:
            row += (f" {fmt_spread(w['tflops_per_s'], 4)} | "
                    f"{100 * w['fraction_of_bf16_matmul']:.1f} | "
                    f"{100 * w['fraction_of_fp32_matmul']:.1f} |")
        lines.append(row)
    lines.append("")
    for name, r in s["ratios"].items():
        b, a = name.split("_vs_")
        acc = r["test_accuracy_diff"]
        pg = r["per_genome_median_min_max"]
        lines.append(f"- **{b} vs {a}**: {r['verdict']}"
                     + (f"; per genome median {pg[0]:.2f}x (min {pg[1]:.2f}, max {pg[2]:.2f})"
                        if pg else "")
                     + (f". Test accuracy, {acc['what']} ({acc['pairs']} pairs): mean "
                        f"{acc['mean']:+.4f} (sd {acc['sd']:.4f}, standard error "
                        f"{acc['stderr']:.4f}, range {acc['min']:+.3f} to {acc['max']:+.3f})."
                        if acc["pairs"] else ": no pairs."))
    if flops:
        pk = s["matmul_tflops"]
        lines += ["", f"Measured dense matmul rate ({pk.get('size', '?')} x "
                  f"{pk.get('size', '?')}, same device and threads, median of "
                  f"{pk['bf16']['n']}): bf16 {fmt_spread(pk['bf16'], 3)} TFLOP/s, fp32 "
                  f"{fmt_spread(pk['fp32'], 3)} TFLOP/s."]
    lines += ["", f"Ours and tuned: bf16 autocast={st['bf16']}, channels_last="
              f"{st['channels_last']}, evaluation batch {st['eval_batch_size']}. Tutorial: fp32, "
              f"evaluation batch {st['batch_size']}. See the script's docstring for each way.",
              ""]
    failed = {way: w["failed"] for way, w in s["ways"].items() if w["failed"]}
    if failed:
        lines += [f"**Failed runs** (left out of every timing; see the JSON): {failed}.", ""]
    if s["stopped_by_time_budget"]:
        lines += [f"Stopped by --max-minutes {st['max_minutes']}: rounds not completed are "
                  "left out.", ""]
    if not s["genomes_counted"]:
        lines += [f"**{s['outcome']}**: no timing, ratio or matmul rate to report "
                  f"({s.get('matmul_tflops_skipped', 'see the JSON')}).", ""]
    if st.get("note"):
        lines += ["## Notes", ""] + [f"- {n}" for n in st["note"]] + [""]
    (out_dir / f"train_throughput_{tag}.md").write_text("\n".join(lines))
    print(f"wrote {path} and {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
