"""Candidate-training throughput: our Trainer vs a plain PyTorch loop, same genomes, one run.

A fixed set of genomes is drawn with a fixed seed from DEvol's MNIST search space
(``GenomeSchema.devol``); each is trained for the same epochs and batch size two ways:
  ours:  pytorch_devol.training.Trainer (data on the device once, permutation slicing, one host
         sync per epoch, bf16 autocast where it pays, channels_last + cudnn benchmark on CUDA,
         fused optimizers on CUDA), early stopping disabled so both run every epoch;
  plain: TensorDataset + DataLoader(shuffle=True), fp32, batches moved per step,
         ``loss.item()`` every batch, torch's default optimizer variant, cudnn.benchmark off.
Both include model build, per-epoch validation and the final test evaluation. Reported:
training images/s of each and their ratio; FLOPs (torch.utils.flop_counter) give the achieved
TFLOP/s, compared with a measured bf16 (and fp32) matmul rate on the same device.

    python benchmarks/train_throughput.py                       # defaults: see --help
    python benchmarks/train_throughput.py --device cuda --train-size 60000 --epochs 2

Writes benchmarks/results/train_throughput_<device>.json and .md (use --out-dir / --tag).
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
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machine import cpu_name, default_data_root, loadavg  # noqa: E402

from pytorch_devol.schema import GenomeSchema  # noqa: E402
from pytorch_devol.training import (  # noqa: E402
    DATA_ENV_VAR,
    TrainConfig,
    Trainer,
    load_dataset,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n-genomes", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-size", type=int, default=6000,
                   help="training examples drawn from the official train set (10%% of them "
                        "become the validation part); 60000 = all")
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="our path's precision (the plain loop is always fp32)")
    p.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"])
    p.add_argument("--dataset", default="mnist", choices=["mnist", "fashion-mnist"])
    p.add_argument("--data-root", type=Path, default=None,
                   help=f"torchvision layout root (default ${DATA_ENV_VAR}, <repo>/datasets "
                        "or <repo>/../shared/datasets)")
    p.add_argument("--seed", type=int, default=0, help="seed of the genome draw and training")
    p.add_argument("--max-conv-layers", type=int, default=6)
    p.add_argument("--max-dense-layers", type=int, default=4)
    p.add_argument("--max-filters", type=int, default=256)
    p.add_argument("--max-dense-nodes", type=int, default=1024)
    p.add_argument("--repeats", type=int, default=1,
                   help="time each genome this many times per path, keep the fastest (a "
                        "shared machine's load only ever slows a run down)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads for both paths (default: torch's choice)")
    p.add_argument("--skip-plain", action="store_true", help="time our path only")
    p.add_argument("--no-flops", action="store_true", help="skip FLOP counting / peak rate")
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    p.add_argument("--tag", default=None, help="file name suffix (default: the device type)")
    p.add_argument("--note", default="", help="free text added to the .md (conditions, caveats)")
    p.add_argument("--no-write", action="store_true", help="print only, write no files")
    return p.parse_args(argv)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the plain loop --------------------------------------------------------------------------
def plain_train(schema: Any, genome: np.ndarray, data: Any, epochs: int, batch_size: int,
                device: torch.device, seed: int) -> dict[str, Any]:
    """What a straightforward PyTorch script does: DataLoader, fp32, .item() per batch."""
    torch.manual_seed(seed)
    start = time.perf_counter()
    model = schema.build_model(genome).to(device)
    optimizer = schema.make_optimizer(genome, model.parameters())  # torch's default variant
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=batch_size,
                       shuffle=True)
    val = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=batch_size)
    test = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=batch_size)

    def score(model: torch.nn.Module, loader: DataLoader) -> tuple[float, float]:
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

    val_loss = val_acc = math.nan
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
            break
        val_loss, val_acc = score(model, val)
    test_loss, test_acc = score(model, test)
    sync(device)
    seconds = time.perf_counter() - start
    del model, optimizer
    return {"seconds": seconds, "val_accuracy": val_acc, "test_accuracy": test_acc,
            "val_loss": val_loss, "test_loss": test_loss}


# -- FLOPs and peak rates --------------------------------------------------------------------
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


def matmul_rate(device: torch.device, dtype: torch.dtype, seconds: float = 1.5) -> float:
    """Measured dense matmul FLOP/s on ``device`` in ``dtype`` (the practical peak)."""
    n = 8192 if device.type == "cuda" else 1024
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10):
            a @ b
        reps += 10
        sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start)


# -- machine description ---------------------------------------------------------------------
def machine(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "platform": platform.platform(),
        "cpu": cpu_name(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    return info


# -- main ------------------------------------------------------------------------------------
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


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    load_start = loadavg()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    root = args.data_root or default_data_root()
    data = load_dataset(args.dataset, root=root, seed=args.seed,
                        limit=(args.train_size, args.test_size))
    schema = GenomeSchema.devol(
        max_conv_layers=args.max_conv_layers, max_dense_layers=args.max_dense_layers,
        max_filters=args.max_filters, max_dense_nodes=args.max_dense_nodes,
        input_shape=data.input_shape, n_classes=data.n_outputs)
    channels_last = {"auto": "auto", "on": True, "off": False}[args.channels_last]
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, patience=None,
                         device=args.device, seed=args.seed, precision=args.precision,
                         channels_last=channels_last)
    trainer = Trainer(data, config)
    device = trainer.device
    print(f"{data.summary()}\n{trainer}", flush=True)
    genomes = draw_genomes(schema, args.n_genomes, args.seed)
    n_train = data.sizes()["train"]
    n_images = args.epochs * n_train

    # Warm-up (oneDNN / cuDNN / allocator), not timed: one small genome each way.
    warm = TrainConfig(epochs=1, batch_size=args.batch_size, patience=None, device=args.device,
                       precision=args.precision, channels_last=channels_last)
    small = load_dataset(args.dataset, root=root, limit=(2 * args.batch_size + 2, 64))
    Trainer(small, warm).evaluate(schema, genomes[0])
    if not args.skip_plain:
        plain_train(schema, genomes[0], small, 1, args.batch_size, device, args.seed)

    records = []
    for i, genome in enumerate(genomes):
        rec: dict[str, Any] = {"genome": [int(v) for v in genome],
                               "layers": schema.describe(genome)}
        ways = ["ours"] + ([] if args.skip_plain else ["plain"])
        times: dict[str, list[float]] = {way: [] for way in ways}
        for rep in range(args.repeats):
            # Alternate who goes first, so slow drifts of a shared machine hit both paths.
            for way in (ways if (i + rep) % 2 == 0 else ways[::-1]):
                if way == "ours":
                    torch.backends.cudnn.benchmark = device.type == "cuda"
                    r = trainer.evaluate(schema, genome)
                    rec["params"] = r.params
                    rec["ours"] = {"status": r.status, "reason": r.reason,
                                   "val_accuracy": r.val_accuracy,
                                   "test_accuracy": r.test_accuracy, "val_loss": r.val_loss}
                    times["ours"].append(r.total_seconds)
                else:
                    torch.backends.cudnn.benchmark = False
                    try:
                        out = plain_train(schema, genome, data, args.epochs, args.batch_size,
                                          device, args.seed)
                    except Exception as exc:  # OOM etc.: record, do not stop the benchmark
                        out = {"seconds": math.nan, "error": f"{type(exc).__name__}: {exc}"}
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
                    times["plain"].append(out.pop("seconds"))
                    rec["plain"] = out
        for way in ways:  # the fastest repeat: the least disturbed by other load
            finite = [t for t in times[way] if math.isfinite(t)]
            rec[way]["seconds"] = min(finite) if finite else math.nan
            rec[way]["all_seconds"] = times[way]
            rec[way]["images_per_s"] = n_images / rec[way]["seconds"]
        if not args.no_flops:
            train_f, infer_f = count_flops(schema, genome, data.input_shape, device)
            sizes = data.sizes()
            rec["flops"] = (args.epochs * (n_train * train_f + sizes["val"] * infer_f)
                            + sizes["test"] * infer_f)
            for way in ("ours", "plain"):
                if way in rec:
                    rec[way]["tflops_per_s"] = rec["flops"] / rec[way]["seconds"] / 1e12
        if "plain" in rec:
            rec["speedup"] = rec["plain"]["seconds"] / rec["ours"]["seconds"]
        print(json.dumps({k: v for k, v in rec.items() if k != "layers"}), flush=True)
        records.append(rec)

    summary = summarise(records, n_images, args.skip_plain)
    if not args.no_flops:
        summary["peak_matmul_tflops"] = {
            "bf16": matmul_rate(device, torch.bfloat16) / 1e12,
            "fp32": matmul_rate(device, torch.float32) / 1e12}
        for way in ("ours", "plain"):
            if f"{way}_tflops_per_s" in summary:
                summary[f"{way}_fraction_of_bf16_peak"] = (
                    summary[f"{way}_tflops_per_s"] / summary["peak_matmul_tflops"]["bf16"])
    info = machine(device)
    info.update(started=started, loadavg_at_start=load_start, loadavg_at_end=loadavg())
    result = {
        "benchmark": "train_throughput", "machine": info,
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "data_root": str(root), "data": data.summary(),
                     "ours": {"bf16": trainer.bf16, "channels_last": trainer.channels_last,
                              "batch_size": config.batch_size},
                     "plain": "TensorDataset + DataLoader(shuffle=True), fp32, loss.item() per "
                              "batch, default optimizer variant, cudnn.benchmark off"},
        "summary": summary, "genomes": records,
    }
    print(json.dumps(summary, indent=2))
    if not args.no_write:
        write(result, args.out_dir, args.tag or device.type)
    return result


def summarise(records: list[dict[str, Any]], n_images: int, skip_plain: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"n_genomes": len(records), "images_per_genome": n_images}
    for way in ("ours",) + (() if skip_plain else ("plain",)):
        secs = [r[way]["seconds"] for r in records]
        out[f"{way}_seconds"] = sum(secs)
        out[f"{way}_images_per_s"] = n_images * len(records) / sum(secs)
        out[f"{way}_mean_test_accuracy"] = statistics.fmean(
            r[way].get("test_accuracy", math.nan) for r in records)
        if all("flops" in r for r in records):
            out[f"{way}_tflops_per_s"] = sum(r["flops"] for r in records) / sum(secs) / 1e12
    if not skip_plain:
        out["speedup_total_time"] = out["plain_seconds"] / out["ours_seconds"]
        ratios = [r["speedup"] for r in records if math.isfinite(r.get("speedup", math.nan))]
        out["speedup_geomean_per_genome"] = math.exp(statistics.fmean(map(math.log, ratios)))
        out["speedup_min_max"] = [min(ratios), max(ratios)]
    out["ours_failed"] = sum(r["ours"]["status"] != "ok" for r in records)
    return out


def write(result: dict[str, Any], out_dir: Path, tag: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"train_throughput_{tag}.json"
    path.write_text(json.dumps(result, indent=1, allow_nan=True) + "\n")
    s, m, st = result["summary"], result["machine"], result["settings"]
    lines = [
        f"# Training throughput ({tag})", "",
        f"{m['date']} - {m.get('gpu', m['cpu'])} ({m['cpu_count']} CPUs, {m['torch_threads']} "
        f"torch threads), torch {m['torch']}, Python {m['python']}.", "",
        f"{s['n_genomes']} genomes from GenomeSchema.devol(max_conv_layers="
        f"{st['max_conv_layers']}, max_dense_layers={st['max_dense_layers']}, max_filters="
        f"{st['max_filters']}, max_dense_nodes={st['max_dense_nodes']}), seed {st['seed']}; "
        f"{st['data']}; {st['epochs']} epochs, batch {st['batch_size']}, both ways including "
        "build, per-epoch validation and test.", "",
        "| path | seconds | images/s | mean test acc |" + (
            " TFLOP/s |" if "ours_tflops_per_s" in s else ""),
        "| --- | --- | --- | --- |" + (" --- |" if "ours_tflops_per_s" in s else ""),
    ]
    for way in ("ours", "plain"):
        if f"{way}_seconds" in s:
            row = (f"| {way} | {s[f'{way}_seconds']:.1f} | {s[f'{way}_images_per_s']:.0f} | "
                   f"{s[f'{way}_mean_test_accuracy']:.4f} |")
            if f"{way}_tflops_per_s" in s:
                row += f" {s[f'{way}_tflops_per_s']:.4f} |"
            lines.append(row)
    lines.append("")
    if "speedup_total_time" in s:
        lines.append(f"Speed-up (total time): **{s['speedup_total_time']:.2f}x**; per genome "
                     f"geometric mean {s['speedup_geomean_per_genome']:.2f}x (min "
                     f"{s['speedup_min_max'][0]:.2f}, max {s['speedup_min_max'][1]:.2f}).")
    if "peak_matmul_tflops" in s:
        pk = s["peak_matmul_tflops"]
        lines.append(f"Measured matmul rate: bf16 {pk['bf16']:.3f} TFLOP/s, fp32 "
                     f"{pk['fp32']:.3f} TFLOP/s; ours reaches "
                     f"{100 * s['ours_fraction_of_bf16_peak']:.1f}% of the bf16 rate.")
    lines += ["", f"Ours: bf16={st['ours']['bf16']}, channels_last={st['ours']['channels_last']}."
              f" Plain: {st['plain']}.", ""]
    if st.get("note"):
        lines += ["## Notes", "", st["note"], ""]
    (out_dir / f"train_throughput_{tag}.md").write_text("\n".join(lines))
    print(f"wrote {path} and {path.with_suffix('.md')}")


if __name__ == "__main__":
    main()
