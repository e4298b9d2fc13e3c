"""The search loop's own cost per candidate, this tree against another (the code before a
change), with an evaluator that trains nothing.

Each run is a fresh process that imports ``pytorch_devol`` from the tree under test and runs
one search of N candidates with `InstantEvaluator`: a pseudo-fitness from the genome and the
untrained network's weights (so best.pt, the donor pool and the Pareto front are written as in
a real search). The loop's overhead is the search's wall time minus the evaluator's own time,
per candidate. Trees alternate run by run (interleaved repeats); the report gives each arm's
median over repeats and the ratio of medians with its spread (the ratio of each repeat pair).

    git worktree add /tmp/before <rev> --detach
    python benchmarks/loop_overhead.py --baseline /tmp/before --out results/loop_overhead
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks.common import cpu_name, loadavg  # noqa: E402

RESULTS = HERE / "results"
ARMS = {  # the same keywords in both trees
    "ga+sh+heredity": dict(strategy="ga", fidelity="sh", inherit_weights=True),
    "re+asha+heredity": dict(strategy="regularized", fidelity="asha", inherit_weights=True),
    "nsga2 (accuracy, params)": dict(objectives=["accuracy", "params"], fidelity=None,
                                     inherit_weights=False),
}


class InstantEvaluator:
    """Trains nothing: accuracy from the genome, the untrained weights; times itself."""

    capacity = 1

    def __init__(self) -> None:
        self.queue: deque = deque()
        self.seconds = 0.0

    def open(self, schema, data, config) -> None:
        self.schema = schema

    def submit(self, task) -> None:
        self.queue.append(task)

    def next_result(self):
        from pytorch_devol.training import EvalResult

        start = time.perf_counter()
        task = self.queue.popleft()
        acc = 0.1 + 0.8 * (sum((i + 1) * g for i, g in enumerate(task.genome)) % 997) / 997
        acc *= 0.5 + 0.5 * (task.epochs or 3) / 3
        weights = self.schema.build_model(task.vector).state_dict()
        result = EvalResult(status="ok", val_accuracy=acc, val_loss=1 - acc,
                            test_accuracy=acc, test_loss=1 - acc, epochs=task.epochs or 3,
                            params=sum(int(t.numel()) for t in weights.values()),
                            state_dict=weights)
        self.seconds += time.perf_counter() - start
        return task, result

    def close(self) -> None:
        pass


def child(tree: str, arm: str, candidates: int) -> None:
    """Run one search from ``tree`` and print its timings as JSON (the child process)."""
    sys.path.insert(0, tree)
    import torch

    torch.set_num_threads(1)
    import pytorch_devol
    from pytorch_devol import GenomeSchema, Search, load_dataset

    assert Path(pytorch_devol.__file__).resolve().is_relative_to(Path(tree).resolve()), \
        f"imported {pytorch_devol.__file__}, not the tree {tree}"
    data = load_dataset("digits")
    schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                                max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
    evaluator = InstantEvaluator()
    with tempfile.TemporaryDirectory() as tmp:
        search = Search(schema, data, generations=candidates // 20, population_size=20,
                        epochs=3, seed=0, run_dir=Path(tmp) / "run", evaluator=evaluator,
                        verbose=False, **ARMS[arm])
        start = time.perf_counter()
        result = search.run()
        wall = time.perf_counter() - start
    print(json.dumps({"wall": wall, "evaluator": evaluator.seconds,
                      "records": len(result.history),
                      "candidates": len({r["index"] for r in result.history})}))


def run(tree: Path, arm: str, candidates: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--child", str(tree), arm, str(candidates)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    data = json.loads(out.stdout.strip().splitlines()[-1])
    data["overhead_ms_per_candidate"] = 1000 * (data["wall"] - data["evaluator"]) / \
        data["candidates"]
    return data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--baseline", help="a source tree (e.g. a git worktree)")
    p.add_argument("--candidates", type=int, default=400)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", default=str(RESULTS / "loop_overhead"))
    p.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args.child[0], args.child[1], int(args.child[2]))
    if args.baseline is None:
        p.error("--baseline TREE is required")
    trees = {"baseline": Path(args.baseline).resolve(), "this": HERE.parent}
    start, rows = time.time(), {}
    for arm in ARMS:
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for repeat in range(args.repeats):
            order = list(trees) if repeat % 2 == 0 else list(trees)[::-1]
            for name in order:
                runs[name].append(run(trees[name], arm, args.candidates))
        ratios = [t["overhead_ms_per_candidate"] / b["overhead_ms_per_candidate"]
                  for t, b in zip(runs["this"], runs["baseline"])]
        rows[arm] = {name: {"median_ms": statistics.median(r["overhead_ms_per_candidate"]
                                                           for r in runs[name]),
                            "runs": runs[name]} for name in trees}
        rows[arm]["ratio"] = {"median": statistics.median(ratios), "min": min(ratios),
                              "max": max(ratios)}
        print(arm, rows[arm]["this"]["median_ms"], rows[arm]["baseline"]["median_ms"],
              rows[arm]["ratio"], flush=True)
    meta = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_name(), "cpus": os.cpu_count(), "load": loadavg(),
            "seconds": time.time() - start, "candidates": args.candidates,
            "repeats": args.repeats, "baseline": str(trees["baseline"]),
            "baseline_rev": _rev(trees["baseline"]), "this_rev": _rev(trees["this"]),
            "command": "python benchmarks/loop_overhead.py " + " ".join(sys.argv[1:])}
    Path(args.out).with_suffix(".json").write_text(json.dumps({"meta": meta, "arms": rows},
                                                               indent=1))
    Path(args.out).with_suffix(".md").write_text(_report(meta, rows))


def _rev(tree: Path) -> str:
    out = subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(tree), "status", "--porcelain", "pytorch_devol"],
                           capture_output=True, text=True).stdout.strip()
    return out.stdout.strip() + (" + uncommitted changes" if dirty else "")


def _report(meta: dict[str, Any], rows: dict[str, Any]) -> str:
    lines = [f"# The loop's own cost per candidate ({meta['date']})", "",
             f"{meta['cpu']}, {meta['cpus']} CPUs, 1 torch thread; load {meta['load']}; "
             f"{meta['seconds']:.0f} s in all. Baseline: git {meta['baseline_rev']}; this: "
             f"git {meta['this_rev']}.", "", f"Command: `{meta['command']}`", "",
             f"{meta['candidates']} candidates per search (digits, a DEvol space of 1 conv "
             "and 2 dense layers, population 20, networks of 3 epochs), an evaluator that "
             "trains nothing; overhead = wall time of `Search.run()` minus the evaluator's "
             f"own time, per candidate. {meta['repeats']} interleaved repeats per tree; "
             "median, and the ratio of each repeat pair (median [min, max]).", "",
             "| arm | baseline ms/candidate | this ms/candidate | ratio this / baseline |",
             "| --- | --- | --- | --- |"]
    for arm, row in rows.items():
        r = row["ratio"]
        lines.append(f"| {arm} | {row['baseline']['median_ms']:.2f} | "
                     f"{row['this']['median_ms']:.2f} | {r['median']:.2f} "
                     f"[{r['min']:.2f}, {r['max']:.2f}] |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
