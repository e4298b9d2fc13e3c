"""What every benchmark records about where it ran, and where it finds the real datasets."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["REPO", "cpu_name", "default_data_root", "loadavg"]

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
