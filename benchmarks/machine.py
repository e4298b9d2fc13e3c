"""What every benchmark records about where it ran, where it finds the real datasets, and how it
summarises repeated timings (medians over interleaved repeats with their spread; never best-of).
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import platform
import statistics
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["REPO", "cpu_name", "code_state", "default_data_root", "loadavg", "now", "spread",
           "ratio_verdict", "fmt_spread", "Budget"]

REPO = Path(__file__).resolve().parents[1]


def default_data_root() -> Path:
    """$PYTORCH_DEVOL_DATA, else <repo>/datasets (the GPU machine's copy), else
    <repo>/../shared/datasets."""
    if os.environ.get("PYTORCH_DEVOL_DATA"):
        return Path(os.environ["PYTORCH_DEVOL_DATA"])
    for candidate in (REPO / "datasets", REPO.parent / "shared" / "datasets"):
        if candidate.is_dir():
            return candidate
    return REPO / "datasets"


def loadavg() -> list[str] | None:
    """1/5/15-minute load averages (Linux): how busy the machine was around the run."""
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def code_state() -> dict[str, Any]:
    """Which code was measured: the git commit, whether pytorch_devol/ differs from it, and a
    SHA-256 over pytorch_devol/**/*.py (identifies an uncommitted tree too). Read-only: git
    runs with --no-optional-locks, so it never rewrites the index."""
    digest = hashlib.sha256()
    for path in sorted((REPO / "pytorch_devol").rglob("*.py")):
        digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    state: dict[str, Any] = {"pytorch_devol_sha256": digest.hexdigest()[:16]}

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "--no-optional-locks", *args], cwd=REPO,
                                 capture_output=True, text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    state["git_head"] = git("rev-parse", "--short", "HEAD")
    changed = git("status", "--porcelain", "--untracked-files=all", "--", "pytorch_devol")
    state["pytorch_devol_uncommitted_changes"] = None if changed is None else bool(changed)
    return state


def now() -> str:
    """UTC time stamp, seconds precision."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Median, min, max and count of the finite values (all values kept for the record)."""
    vals = [float(v) for v in values]
    finite = [v for v in vals if math.isfinite(v)]
    if not finite:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0, "values": vals}
    return {"median": statistics.median(finite), "min": min(finite), "max": max(finite),
            "n": len(finite), "values": vals}


def ratio_verdict(ratios: dict[str, Any], above: str = "faster",
                  below: str = "slower") -> str:
    """How to state a ratio measured over repeats: a claim only when every repeat lies on the
    same side of 1 (the spread is smaller than the effect). ``above`` names a ratio > 1 (e.g.
    time of the baseline / time of ours = "faster"), ``below`` a ratio < 1 (stated as its
    inverse)."""
    lo, hi, med, n = ratios["min"], ratios["max"], ratios["median"], ratios["n"]
    if n == 0:
        return "not measured"
    if n > 1 and lo <= 1.0 <= hi:
        return (f"no measurable difference: the repeats range {lo:.2f}x-{hi:.2f}x, across 1 "
                f"(median {med:.2f}x)")
    if med >= 1.0:
        text = f"{med:.2f}x {above}"
        rng = f"range {lo:.2f}-{hi:.2f}x"
    else:
        text = f"{1 / med:.2f}x {below}"
        rng = f"range {1 / hi:.2f}-{1 / lo:.2f}x"
    if n == 1:
        return f"{text} (one repeat only: no spread measured)"
    return f"{text} (median of {n} repeats, {rng})"


def fmt_spread(s: dict[str, Any], digits: int = 1, scale: float = 1.0) -> str:
    """'median (min-max)' for a table cell."""
    if s["n"] == 0:
        return "-"
    f = f"{{:.{digits}f}}"
    if s["n"] == 1:
        return f.format(s["median"] * scale)
    dash = " to " if s["min"] < 0 else "-"
    return (f"{f.format(s['median'] * scale)} ({f.format(s['min'] * scale)}{dash}"
            f"{f.format(s['max'] * scale)})")


class Budget:
    """A soft time budget: ``spent()`` once ``minutes`` have passed (never, when None)."""

    def __init__(self, minutes: float | None) -> None:
        import time

        self._time = time.monotonic
        self.start = self._time()
        self.deadline = None if minutes is None else self.start + 60.0 * minutes

    def spent(self) -> bool:
        return self.deadline is not None and self._time() > self.deadline

    def elapsed(self) -> float:
        return self._time() - self.start
