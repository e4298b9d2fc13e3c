"""``pytorch-devol retrain``: train a searched architecture from scratch with several seeds and
print its held-out test metrics as mean ± sd."""

from __future__ import annotations

import argparse
import math
import sys
from typing import Any

from .common import UserError, fmt

__all__ = ["run_retrain"]


def _bar(total: int, quiet: bool) -> Any:
    if quiet:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="retrain", unit="seed", leave=False, file=sys.stderr,
                disable=None)  # off when stderr is not a terminal


def _pm(summary: Any, metric: str) -> str:
    mean, sd = summary.mean(metric), summary.std(metric)
    if math.isnan(mean):
        return "-"
    return f"{mean:.4f} ± {sd:.4f}" if not math.isnan(sd) else f"{mean:.4f} (one seed)"


def run_retrain(args: argparse.Namespace) -> int:
    """Handle ``pytorch-devol retrain``; returns the exit status."""
    from ..search.retrain import retrain

    for name in ("epochs", "seeds"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UserError(f"--{name} must be >= 1, got {value}")
    bar = _bar(args.seeds, args.quiet)

    def progress(seed: dict[str, Any]) -> None:
        if bar is not None:
            bar.update(1)
        if not args.quiet:
            what = (f"test accuracy {fmt(seed.get('test_accuracy'))}, test loss "
                    f"{fmt(seed.get('test_loss'))}" if seed["status"] == "ok" else
                    f"failed: {seed.get('reason')}")
            line = (f"seed {seed['seed']}: {what} ({seed.get('epochs', 0)} epochs, "
                    f"{fmt(seed.get('train_seconds'), 1)} s)")
            (bar.write(line, file=sys.stdout) if bar is not None else print(line))

    try:
        summary = retrain(args.run_dir, args.candidate, args.epochs, args.seeds, args.train_on,
                          data_root=args.data or args.data_root, device=args.device,
                          gene_modules=args.gene_modules, progress=progress,
                          overwrite=args.overwrite)
    finally:
        if bar is not None:
            bar.close()
    s = summary.settings
    print(f"Candidate {summary.candidate}, retrained from scratch with "
          f"{len(summary.seeds)} seed(s) ({s['epochs']} epochs at most, on {s['train_on']}):")
    for metric in ("test_accuracy", "test_loss", "test_mae", "val_accuracy", "val_loss"):
        if summary.values(metric):
            seen = " (validation data was trained on)" if metric.startswith("val") and \
                s["train_on"] == "train+val" else ""
            print(f"  {metric}: {_pm(summary, metric)}{seen}")
    failed = sum(1 for seed in summary.seeds if seed["status"] != "ok")
    if failed:
        print(f"  {failed} of {len(summary.seeds)} seeds failed (see metrics.json)")
    print(f"Written: {summary.directory}/ (metrics.json, seed<K>.pt); export one with: "
          f"pytorch-devol export {args.run_dir} --candidate {summary.candidate} --retrained K")
    return 0
