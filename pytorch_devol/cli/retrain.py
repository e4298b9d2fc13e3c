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
    from ..search import retrain

    for name, low in (("epochs", 1), ("seeds", 1), ("patience", 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise UserError(f"--{name} must be >= {low}, got {value}")
    patience = "search" if args.patience is None else args.patience or None
    bar = _bar(args.seeds, args.quiet)
    trained: list[int] = []

    def progress(seed: dict[str, Any]) -> None:
        trained.append(seed["seed"])
        if bar is not None:
            bar.update(1)
        if not args.quiet:
            scored = "test accuracy" if "test_accuracy" in seed else "test MAE"
            what = (f"{scored} {fmt(seed.get('test_accuracy', seed.get('test_mae')))}, test "
                    f"loss {fmt(seed.get('test_loss'))}" if seed["status"] == "ok" else
                    f"failed: {seed.get('reason')}")
            line = (f"seed {seed['seed']}: {what} ({seed.get('epochs', 0)} epochs, "
                    f"{fmt(seed.get('train_seconds'), 1)} s)")
            (bar.write(line, file=sys.stdout) if bar is not None else print(line))

    try:
        summary = retrain(args.run_dir, args.candidate, args.epochs, args.seeds, args.train_on,
                          patience=patience, data_root=args.data or args.data_root,
                          device=args.device, gene_modules=args.gene_modules,
                          progress=progress, overwrite=args.overwrite)
    except KeyboardInterrupt:
        print("\ninterrupted; run the same command again to train only the seeds not done",
              file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
    s = summary.settings
    print(f"Candidate {summary.candidate}, retrained from scratch with "
          f"{len(summary.seeds)} seed(s) ({s['epochs']} epochs at most, early stopping "
          f"{'off' if s['patience'] is None else 'after ' + str(s['patience'])}, on "
          f"{s['train_on']}):")
    for metric in ("test_accuracy", "test_mae", "test_loss", "val_accuracy", "val_mae",
                   "val_loss"):
        if summary.values(metric):
            seen = " (validation data was trained on)" if metric.startswith("val") and \
                s["train_on"] == "train+val" else ""
            print(f"  {metric}: {_pm(summary, metric)}{seen}")
    earlier = [str(seed["seed"]) for seed in summary.seeds if seed["seed"] not in trained]
    if earlier:
        print(f"  seed(s) {', '.join(earlier)}: retrained earlier with these settings, kept")
    failed = sum(1 for seed in summary.seeds if seed["status"] != "ok")
    if failed:
        print(f"  {failed} of {len(summary.seeds)} seeds failed (see metrics.json)")
    print(f"Written: {summary.directory}/ (metrics.json, seed<K>.pt); export one with: "
          f"pytorch-devol export {args.run_dir} --candidate {summary.candidate} --retrained K")
    return 0
