"""Bytes the search writes to its checkpoint per candidate, ours against the previous design.

The loop saves a checkpoint after every ask and every tell. It used to hold the strategy's
whole state, including its memory of every genome ever asked, so over a steady-state run of N
candidates it wrote O(N^2) bytes. Now that memory is left out and rebuilt from the log on
restore (``RunState.compact``). Both are measured in one run, on the same search,
with an evaluator that trains nothing (instant fitness from the genome), so only the
bookkeeping is measured: bytes written to ``checkpoint.json`` per candidate at 1,000 and at
10,000 candidates, for the generational GA and for regularized evolution. Bytes are exact
(deterministic); seconds are medians over interleaved repeats where the run is short enough.

    python benchmarks/checkpoint_bytes.py               # writes results/checkpoint_bytes.{json,md}
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import cpu_name, loadavg  # noqa: E402
from pytorch_devol import GenomeSchema, Search, load_dataset  # noqa: E402
from pytorch_devol.search.run_state import RunState  # noqa: E402
from pytorch_devol.search.store import RunStore  # noqa: E402
from pytorch_devol.search.strategies import DEVOL_GA_OPTIONS  # noqa: E402
from pytorch_devol.training import EvalResult  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# The old design at 10,000 steady-state candidates would write tens of GB; it is run only up
# to this many candidates and its larger sizes are projected (and labelled so).
BASELINE_STEADY_LIMIT = 2_000


class InstantEvaluator:
    """Trains nothing: a deterministic pseudo-fitness from the genome, at once."""

    capacity = 1

    def __init__(self) -> None:
        self.queue: deque = deque()

    def open(self, schema, data, config) -> None:
        pass

    def submit(self, task) -> None:
        self.queue.append(task)

    def next_result(self):
        task = self.queue.popleft()
        acc = (sum((i + 1) * g for i, g in enumerate(task.genome)) % 997) / 997
        return task, EvalResult(status="ok", val_accuracy=acc, val_loss=1 - acc,
                                test_accuracy=acc, test_loss=1 - acc, epochs=1)

    def close(self) -> None:
        pass


def measured_settings(strategy: str) -> dict[str, Any]:
    """What the committed figures ran with: every candidate in full, no heredity, and for the
    GA DEvol's operators (Search's defaults before issue 30; the checkpoint holds them)."""
    return {"fidelity": None, "inherit_weights": False,
            **({"strategy_options": DEVOL_GA_OPTIONS} if strategy == "ga" else {})}


def measure(strategy: str, candidates: int, compact: bool, data) -> dict:
    """One search; bytes and count of checkpoint writes, seconds of the whole loop."""
    written = {"bytes": 0, "writes": 0}
    original_save = RunStore.save_checkpoint
    original_compact = RunState.compact

    def counting_save(self, checkpoint):
        original_save(self, checkpoint)
        written["bytes"] += (self.path / "checkpoint.json").stat().st_size
        written["writes"] += 1

    RunStore.save_checkpoint = counting_save
    if not compact:
        RunState.compact = property(lambda self: False)
    try:
        schema = GenomeSchema.devol(input_shape=(1, 8, 8), n_classes=10)  # 6 conv, 3 dense
        with tempfile.TemporaryDirectory() as tmp:
            search = Search(schema, data, generations=candidates // 50, population_size=50,
                            seed=0, run_dir=Path(tmp) / "run", strategy=strategy,
                            evaluator=InstantEvaluator(), verbose=False,
                            **measured_settings(strategy))
            start = time.perf_counter()
            result = search.run()
            seconds = time.perf_counter() - start
            assert len(result.history) == candidates
    finally:
        RunStore.save_checkpoint = original_save
        RunState.compact = original_compact
    return {"strategy": strategy, "candidates": candidates, "compact": compact,
            "checkpoint_bytes": written["bytes"], "checkpoint_writes": written["writes"],
            "bytes_per_candidate": written["bytes"] / candidates, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved, for the seconds")
    parser.add_argument("--out", default=str(RESULTS / "checkpoint_bytes"))
    args = parser.parse_args()
    data = load_dataset("digits", limit=(200, 100))
    rows = []
    for strategy in ("ga", "regularized"):
        for n in args.sizes:
            arms = [True] + ([False] if strategy == "ga" or n <= BASELINE_STEADY_LIMIT else [])
            runs: dict[bool, list[dict]] = {arm: [] for arm in arms}
            repeats = args.repeats if n <= BASELINE_STEADY_LIMIT else 1
            for _ in range(repeats):
                for arm in arms:
                    runs[arm].append(measure(strategy, n, arm, data))
                    print(json.dumps(runs[arm][-1]), flush=True)
            for samples in runs.values():
                secs = [s["seconds"] for s in samples]
                rows.append({**samples[0], "seconds_median": statistics.median(secs),
                             "seconds_min_max": [min(secs), max(secs)], "repeats": len(secs),
                             "measured": True})
    # Steady state, old design, beyond the limit: its bytes grow quadratically; project from
    # the largest measured size (labelled as projected, never mixed with measured rows).
    for n in args.sizes:
        if n > BASELINE_STEADY_LIMIT:
            base = max((r for r in rows if r["strategy"] == "regularized" and not r["compact"]),
                       key=lambda r: r["candidates"], default=None)
            if base is not None:
                scale = (n / base["candidates"]) ** 2
                rows.append({"strategy": "regularized", "candidates": n, "compact": False,
                             "checkpoint_bytes": base["checkpoint_bytes"] * scale,
                             "bytes_per_candidate": base["checkpoint_bytes"] * scale / n,
                             "measured": False,
                             "note": f"projected (N^2) from {base['candidates']} measured"})
    meta = {"date": dt.datetime.now().isoformat(timespec="seconds"),
            "machine": {"cpu": cpu_name(), "cores": torch.get_num_threads(),
                        "platform": platform.platform(), "loadavg": loadavg()},
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "numpy": np.__version__},
            "schema": "GenomeSchema.devol() defaults (60 genes), population 50"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows}, indent=2))
    lines = [f"# Checkpoint bytes per candidate ({meta['date']})", "",
             f"{meta['machine']['cpu']}, torch {torch.__version__}; {meta['schema']}; an "
             "evaluator that trains nothing, so only the bookkeeping is measured.", "",
             "| strategy | candidates | design | checkpoint bytes / candidate | writes | "
             "loop seconds (median [min, max], repeats) |", "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        design = "compact (ours)" if r["compact"] else "full state (before)"
        secs = (f"{r['seconds_median']:.2f} [{r['seconds_min_max'][0]:.2f}, "
                f"{r['seconds_min_max'][1]:.2f}], {r['repeats']}") if r["measured"] else \
            r["note"]
        lines.append(f"| {r['strategy']} | {r['candidates']:,} | {design} | "
                     f"{r['bytes_per_candidate']:,.0f} | {r.get('checkpoint_writes', '-')} | "
                     f"{secs} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
