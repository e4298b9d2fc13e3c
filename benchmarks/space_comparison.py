"""Which search space finds a better network at equal compute? DEvol's, DEvol's plus the
training genes, or ``GenomeSchema.modern``.

Same data (a Fashion-MNIST subset), same strategy (the GA), same candidates x epochs, same
trainer, seeds interleaved: for each seed the three spaces run one after another. Reported per
space: the held-out test accuracy of the candidate chosen on validation, its parameter count,
the search's wall time, as median and IQR over seeds.

    python benchmarks/space_comparison.py                 # ~25 min on a 2-core CPU
    python benchmarks/space_comparison.py --seeds 1 --generations 1 --population 2 --limit 600
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import cpu_name, default_data_root, loadavg  # noqa: E402
from pytorch_devol import GenomeSchema, Search, load_dataset  # noqa: E402
from pytorch_devol.schema import (  # noqa: E402
    BatchSizeGene,
    LabelSmoothingGene,
    LearningRateGene,
    OptimizerGene,
    ScheduleGene,
    WeightDecayGene,
)
from pytorch_devol.search.strategies import DEVOL_GA_OPTIONS  # noqa: E402
from pytorch_devol.training import TrainConfig  # noqa: E402

# What the committed figures ran with (Search's defaults before issue 30): the GA with DEvol's
# operators, every candidate trained in full, no heredity.
DEVOL_GA = {"strategy_options": DEVOL_GA_OPTIONS, "fidelity": None, "inherit_weights": False}

RESULTS = Path(__file__).resolve().parent / "results"
DEVOL = dict(max_conv_layers=3, max_dense_layers=2, max_filters=64, max_dense_nodes=256)


def spaces(input_shape: tuple[int, ...]) -> dict[str, GenomeSchema]:
    devol = GenomeSchema.devol(input_shape=input_shape, n_classes=10, **DEVOL)
    training = [OptimizerGene, LearningRateGene, WeightDecayGene, BatchSizeGene, ScheduleGene,
                LabelSmoothingGene]
    return {
        "devol": devol,
        "devol+training": GenomeSchema(devol.layer_groups, training, input_shape, 10),
        "modern": GenomeSchema.modern(input_shape=input_shape, n_classes=10, max_blocks=4,
                                      widths=(16, 32, 64), dense_units=(64, 128, 256)),
    }


def run_one(schema: GenomeSchema, data, seed: int, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = Search(schema, data, generations=args.generations,
                        population_size=args.population, epochs=args.epochs, seed=seed,
                        run_dir=Path(tmp) / "run", train_config=TrainConfig(patience=None),
                        verbose=False, **DEVOL_GA).run()
        seconds = time.perf_counter() - start
    best = result.best_metrics
    trained = [r for r in result.history if not r["cached"]]
    return {"seed": seed, "test_accuracy": best.get("test_accuracy"),
            "val_accuracy": best.get("val_accuracy"), "params": best.get("params"),
            "seconds": seconds, "candidates": len(result.history), "trained": len(trained),
            "epochs_trained": sum(r["metrics"].get("epochs", 0) for r in trained),
            "failed": sum(r["metrics"]["status"] != "ok" for r in trained),
            "best_layers": result.describe()}


def _stats(values: list[float]) -> dict:
    q1, med, q3 = np.percentile(values, [25, 50, 75])
    return {"median": float(med), "iqr": [float(q1), float(q3)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--limit", type=int, default=5000, help="training images (+ val)")
    parser.add_argument("--test", type=int, default=2000, help="held-out test images")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--population", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "space_comparison_cpu"))
    args = parser.parse_args()
    data = load_dataset(args.dataset, root=default_data_root(), limit=(args.limit, args.test))
    arms = spaces(data.input_shape)
    runs: dict[str, list[dict]] = {name: [] for name in arms}
    for seed in range(args.seeds):  # interleaved: every space once per seed
        for name, schema in arms.items():
            runs[name].append(run_one(schema, data, seed, args))
            print(name, json.dumps(runs[name][-1]), flush=True)
        write(args, runs)  # after every seed: a cut-short run still leaves its figures


def write(args: argparse.Namespace, runs: dict[str, list[dict]]) -> None:
    """The JSON and markdown results of the seeds finished so far."""
    summary = {name: {key: _stats([r[key] for r in rs])
                      for key in ("test_accuracy", "params", "seconds", "epochs_trained")}
               for name, rs in runs.items()}
    seeds = min(len(rs) for rs in runs.values())
    meta = {"date": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(),
                        "platform": platform.platform(), "loadavg_after": loadavg(),
                        "note": "2 cores shared with other jobs: compare accuracy, not seconds"},
            "versions": {"python": platform.python_version(), "torch": torch.__version__},
            "setting": {**vars(args), "devol_space": DEVOL, "strategy": "ga",
                        "train_config": "TrainConfig(patience=None), default batch 128 "
                                        "unless a BatchSizeGene chooses"}}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**meta, "summary": summary, "runs": runs},
                                                   indent=2))
    lines = [f"# Search spaces at equal compute ({meta['date']})", "",
             f"{args.dataset}: {args.limit} training images (10% of them validation), "
             f"{args.test} held-out test images; GA, {args.generations} generations x "
             f"{args.population}, {args.epochs} epochs each (no early stopping); "
             f"{seeds} of {args.seeds} seeds done, interleaved. {meta['machine']['cpu']}, torch "
             f"{torch.__version__}; {meta['machine']['note']}.", "",
             "| space | test accuracy of the best (median [IQR]) | its parameters | "
             "search seconds | epochs trained |", "| --- | --- | --- | --- | --- |"]
    for name, s in summary.items():
        acc, par, sec, ep = (s[k] for k in ("test_accuracy", "params", "seconds",
                                            "epochs_trained"))
        lines.append(f"| {name} | {acc['median']:.4f} [{acc['iqr'][0]:.4f}, "
                     f"{acc['iqr'][1]:.4f}] | {par['median']:,.0f} | {sec['median']:.0f} | "
                     f"{ep['median']:.0f} |")
    base = summary["devol"]["test_accuracy"]["median"]
    lines += ["", "Difference to DEvol's space (median test accuracy, points): " + ", ".join(
        f"{name} {100 * (s['test_accuracy']['median'] - base):+.2f}"
        for name, s in summary.items() if name != "devol")]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
