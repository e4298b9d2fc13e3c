"""What promoting a candidate costs: continuing from its saved state, against retraining it.

A multi-fidelity search pauses every candidate below the top rung and saves its training
state in the run directory (``states/``); a promoted candidate loads it and trains only the
new epochs. The alternative a simpler tool takes is to retrain a promoted candidate from
scratch up to the next rung. Both are measured in one run, per genome, interleaved:

* ``continue``: train ``--low`` epochs with ``keep_state`` and save the state with the run
  store (every paused candidate pays this); then the promotion: load it, pickle it once (what
  a pool worker's message pays) and train on to ``--high`` (timed from the load);
* ``retrain``: the promotion without a state: train from scratch to ``--high`` epochs.

Reported: bytes of state per genome (and per parameter), the seconds of saving + loading +
pickling against one training epoch, and the wall time of each path, as medians with the
range over genomes x repeats. DEvol's measured space (3 conv, 2 dense, 64 filters, 256 nodes)
on 2,700 MNIST training images, as in ``train_throughput.py``.

    python benchmarks/promotion_cost.py          # writes results/promotion_cost_cpu.{json,md}
"""

from __future__ import annotations

import argparse
import json
import pickle
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    code_state,
    cpu_name,
    default_data_root,
    fmt_spread,
    loadavg,
    now,
    ratio_verdict,
    spread,
)
from pytorch_devol import GenomeSchema, load_dataset  # noqa: E402
from pytorch_devol.search.store import RunStore  # noqa: E402
from pytorch_devol.training import TrainConfig, Trainer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SPACE = dict(max_conv_layers=3, max_dense_layers=2, max_filters=64, max_dense_nodes=256)


def one_genome(trainer: Trainer, schema: GenomeSchema, genome: np.ndarray, seed: int,
               low: int, high: int, store: RunStore) -> dict[str, float] | None:
    """Both paths for one genome (the order alternates with the seed); None if it fails."""
    out: dict[str, float] = {}

    def continued() -> None:
        paused = trainer.evaluate(schema, genome, seed=seed, epochs=low, keep_state=True)
        if not paused.ok or paused.train_state is None:
            raise RuntimeError(paused.reason or "no state")
        t0 = time.perf_counter()
        out["bytes_on_disk"] = store.save_state((seed,), 0, paused.train_state)
        t1 = time.perf_counter()
        state = store.load_state((seed,), 0)
        t2 = time.perf_counter()
        wire = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        state = pickle.loads(wire)
        t3 = time.perf_counter()
        done = trainer.evaluate(schema, genome, seed=seed, epochs=high, resume=state)
        out.update(continue_wall=time.perf_counter() - t1, save=t1 - t0, load=t2 - t1,
                   pickle=t3 - t2, pickle_bytes=len(wire), state_bytes=state.nbytes(),
                   epoch=paused.train_seconds / low, params=paused.params,
                   continue_val=done.val_loss)

    def retrained() -> None:
        start = time.perf_counter()
        done = trainer.evaluate(schema, genome, seed=seed, epochs=high)
        out.update(retrain_wall=time.perf_counter() - start, retrain_val=done.val_loss)

    try:
        for step in ((continued, retrained) if seed % 2 == 0 else (retrained, continued)):
            step()
    except RuntimeError:
        return None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--genomes", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--train-size", type=int, default=3000)
    parser.add_argument("--low", type=int, default=1)
    parser.add_argument("--high", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "promotion_cost_cpu")
    args = parser.parse_args()
    data = load_dataset("mnist", root=default_data_root(), limit=(args.train_size, 500))
    schema = GenomeSchema.devol(**SPACE, input_shape=data.input_shape, n_classes=10)
    trainer = Trainer(data, TrainConfig(epochs=args.high, patience=None, device="cpu"))
    genomes = schema.random(np.random.default_rng(0), size=args.genomes)
    rows, load_before, started = [], loadavg(), time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(tmp)
        for rep in range(args.repeats):
            for i, genome in enumerate(genomes):
                row = one_genome(trainer, schema, genome, 1000 * rep + i, args.low, args.high,
                                 store)
                if row is not None:
                    rows.append({"genome": i, "repeat": rep, **row})
    io = [r["save"] + r["load"] + r["pickle"] for r in rows]
    summary = {
        "state_bytes": spread(r["state_bytes"] for r in rows),
        "bytes_on_disk": spread(r["bytes_on_disk"] for r in rows),
        "bytes_per_parameter": spread(r["bytes_on_disk"] / r["params"] for r in rows),
        "io_seconds": spread(io),
        "epoch_seconds": spread(r["epoch"] for r in rows),
        "io_per_epoch": spread(x / r["epoch"] for x, r in zip(io, rows)),
        "speedup": spread(r["retrain_wall"] / r["continue_wall"] for r in rows),
        "same_result": all(r["continue_val"] == r["retrain_val"] for r in rows),
    }
    meta = {"date": now(), "command": "python " + " ".join(
                shlex.quote(a) for a in ["benchmarks/promotion_cost.py", *sys.argv[1:]]),
            "machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(),
                        "loadavg_before": load_before, "loadavg_after": loadavg()},
            "versions": {"python": platform.python_version(), "torch": torch.__version__},
            "code": code_state(), "wall_seconds": time.perf_counter() - started,
            "setting": vars(args) | {"out": str(args.out), "space": SPACE}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(
        {**meta, "summary": summary, "rows": rows}, indent=1, default=str))
    s = summary
    text = "\n".join([
        f"# Promotion: continue from saved state vs retrain ({meta['date']})", "",
        f"{meta['machine']['cpu']}, {meta['machine']['threads']} torch threads, torch "
        f"{torch.__version__}; load average {load_before} -> {loadavg()}.",
        f"Command: `{meta['command']}`", "",
        f"{len(rows)} (genome, repeat) pairs of DEvol's measured space on {data.summary()}; "
        f"pause after {args.low} epoch(s), promote to {args.high}. Median (range).", "",
        "| what | value |", "| --- | --- |",
        f"| state held (tensors) | {fmt_spread(s['state_bytes'], 2, 1e-6)} MB |",
        f"| state file on disk | {fmt_spread(s['bytes_on_disk'], 2, 1e-6)} MB, "
        f"{fmt_spread(s['bytes_per_parameter'], 1)} bytes per parameter |",
        f"| save + load + one pickle round trip | {fmt_spread(s['io_seconds'], 3)} s |",
        f"| one training epoch | {fmt_spread(s['epoch_seconds'], 2)} s |",
        f"| state I/O per training epoch | {fmt_spread(s['io_per_epoch'], 3)} |",
        f"| a promotion: retrain wall / continue wall (from the load) | "
        f"{fmt_spread(s['speedup'], 2)}: "
        f"{ratio_verdict(s['speedup'], 'faster to continue', 'slower to continue')} |",
        f"| same validation loss either way | {s['same_result']} |", ""])
    args.out.with_suffix(".md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
