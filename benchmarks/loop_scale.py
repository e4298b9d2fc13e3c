"""What the search loop itself costs per candidate as a run grows to 10,000 candidates.

An evaluator that trains nothing (``loop_overhead.InstantEvaluator``: a pseudo-fitness from
the genome and the untrained weights) runs one search of N candidates per setting: the GA, the
GA with successive halving, with heredity too, regularized evolution, with ASHA and heredity,
and NSGA-II (accuracy and parameters). The loop's overhead per candidate is the wall time
minus the evaluator's own, over the first, the fifth and the last tenth of the candidates (at
10,000: up to 1,000, 4,000 to 5,000, 9,000 to 10,000), as the log, the cache, the donor pool,
the front and the checkpoint grow. At the end: the bytes of ``results.jsonl`` and
``checkpoint.json``, and the seconds to resume the finished run (read the log, rebuild the
state) and to ``show`` it.

    python benchmarks/loop_scale.py                      # ~30-40 min on a 2-core CPU
    python benchmarks/loop_scale.py --candidates 2000    # quicker
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from benchmarks.common import cpu_name, loadavg  # noqa: E402
from benchmarks.loop_overhead import InstantEvaluator  # noqa: E402

RESULTS = HERE / "results"
SETTINGS = {
    "ga": dict(strategy="ga", fidelity=None, inherit_weights=False),
    "ga+sh": dict(strategy="ga", fidelity="sh", inherit_weights=False),
    "ga+sh+heredity": dict(strategy="ga", fidelity="sh", inherit_weights=True),
    "re": dict(strategy="regularized", fidelity=None, inherit_weights=False),
    "re+asha+heredity": dict(strategy="regularized", fidelity="asha", inherit_weights=True),
    "nsga2": dict(objectives=["accuracy", "params"], fidelity=None, inherit_weights=False),
}
POPULATION = 50


class Clock:
    """On each record: the time, the evaluator's time so far, and the candidates seen."""

    def __init__(self, evaluator: InstantEvaluator) -> None:
        self.evaluator, self.marks = evaluator, []
        self.seen: set[int] = set()

    def __call__(self, record: dict[str, Any]) -> None:
        if record["index"] not in self.seen:
            self.seen.add(record["index"])
            self.marks.append((time.perf_counter(), self.evaluator.seconds))

    def overhead_ms(self, start: int, stop: int) -> float | None:
        """Loop milliseconds per candidate between the start-th and stop-th new candidate."""
        if stop > len(self.marks):
            return None
        (t0, e0), (t1, e1) = self.marks[max(0, start - 1)], self.marks[stop - 1]
        return 1000 * ((t1 - t0) - (e1 - e0)) / (stop - max(0, start - 1) - 1 or 1)


def windows(n: int) -> tuple[tuple[int, int], ...]:
    """The first, fifth and last tenth of ``n`` candidates."""
    return (0, n // 10), (4 * n // 10, n // 2), (9 * n // 10, n)


def measure(name: str, candidates: int, data: Any) -> dict[str, Any]:
    from pytorch_devol import GenomeSchema, Search
    from pytorch_devol.cli import main

    schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                                max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
    evaluator = InstantEvaluator()
    clock = Clock(evaluator)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        search = Search(schema, data, generations=candidates // POPULATION,
                        population_size=POPULATION, epochs=3, seed=0, run_dir=run,
                        evaluator=evaluator, verbose=False, on_record=clock, **SETTINGS[name])
        start = time.perf_counter()
        search.run()
        wall = time.perf_counter() - start
        sizes = {f: (run / f).stat().st_size for f in ("results.jsonl", "checkpoint.json")}
        start = time.perf_counter()
        Search.resume(run, evaluator=InstantEvaluator(), verbose=False).run()
        resume = time.perf_counter() - start
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["show", str(run)]) == 0
        show = time.perf_counter() - start
    return {"setting": name, "candidates": len(clock.marks), "wall_s": wall,
            "overhead_ms": {f"{a}-{b}": clock.overhead_ms(a, b) for a, b in windows(candidates)},
            "bytes": sizes, "resume_s": resume, "show_s": show}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--candidates", type=int, default=10_000)
    p.add_argument("--settings", default=",".join(SETTINGS))
    p.add_argument("--out", default=str(RESULTS / "loop_scale"))
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    from pytorch_devol import load_dataset

    data, rows, began = load_dataset("digits"), [], time.time()
    for name in args.settings.split(","):
        rows.append(measure(name, args.candidates, data))
        print(json.dumps(rows[-1]), flush=True)
    meta = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu_name(), "cpus": os.cpu_count(), "load": loadavg(),
            "seconds": time.time() - began,
            "command": "python benchmarks/loop_scale.py " + " ".join(sys.argv[1:])}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    out.with_suffix(".md").write_text(report(meta, rows))


def report(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    def ms(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    lines = [f"# The loop's own cost as a run grows ({meta['date']})", "",
             f"{meta['cpu']}, {meta['cpus']} CPUs, 1 torch thread; load {meta['load']}; "
             f"{meta['seconds']:.0f} s in all.", "", f"Command: `{meta['command']}`", "",
             "One search per setting (digits, a DEvol space of 1 conv and 2 dense layers, "
             f"population {POPULATION}, networks of 3 epochs), an evaluator that trains "
             "nothing. Loop overhead: wall time minus the evaluator's own, in ms per "
             "candidate over the candidates numbered in each window. Target: at 10,000 "
             "within 2x of at 1,000, and under 5 ms.", "",
             "| setting | ms/candidate, first tenth | fifth tenth | last tenth | last / first "
             "| results.jsonl "
             "| checkpoint.json | resume s | show s |", "| --- " * 9 + "|"]
    for r in rows:
        o = list(r["overhead_ms"].values())
        ratio = "-" if None in (o[0], o[-1]) else f"{o[-1] / o[0]:.2f}"
        lines.append(f"| {r['setting']} | {ms(o[0])} | {ms(o[1])} | {ms(o[2])} | {ratio} | "
                     f"{r['bytes']['results.jsonl'] / 1e6:.1f} MB | "
                     f"{r['bytes']['checkpoint.json'] / 1e3:.1f} kB | {r['resume_s']:.1f} | "
                     f"{r['show_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
