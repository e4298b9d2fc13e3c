"""The tools every benchmark shares, so that its results read alike and are comparable.

* statistics (defined in ``benchmarks.stats``, importable from here too): medians over
  interleaved repeats with their spread (never best-of), quartiles over seeds that keep "not
  reached" (inf) and "not defined" (NaN) apart, ratio and paired verdicts that claim a
  difference only when every repeat or seed lies on one side;
* the machine record: one function, one set of fields, for every result;
* the provenance header: when, by which command, on which code (git commit, uncommitted changes,
  a hash of pytorch_devol/), with which versions; and its one-line Markdown rendering;
* result writing: ``<name>.json`` and its ``<name>.md``, by default under benchmarks/results/.

Scripts import it after putting the repository first on ``sys.path``::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.common import ...  # noqa: E402
"""

from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.stats import (
    fmt_quartiles,
    fmt_spread,
    json_number,
    json_numbers,
    number,
    paired_differences,
    quartiles,
    ratio_spread,
    ratio_verdict,
    spread,
)

__all__ = [
    "REPO", "RESULTS", "default_data_root", "data_root_candidates",
    "spread", "ratio_spread", "ratio_verdict", "fmt_spread",
    "quartiles", "fmt_quartiles", "json_number", "json_numbers", "number", "paired_differences",
    "cpu_name", "loadavg", "machine_record", "versions",
    "now", "code_state", "code_change", "command_line", "Provenance", "provenance_lines",
    "Budget", "BudgetSpent", "CANDIDATE_CAP", "run_until_spent", "devol_schema", "settings_of",
    "write_result", "merge_saved",
]

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


# -- data ----------------------------------------------------------------------------------------

def data_root_candidates() -> list[Path]:
    """Where the real datasets may be, in order: $PYTORCH_DEVOL_DATA, <repo>/datasets (the GPU
    machine's copy, git-ignored), <repo>/../shared/datasets."""
    env = os.environ.get("PYTORCH_DEVOL_DATA")
    return [Path(p) for p in (env, REPO / "datasets", REPO.parent / "shared" / "datasets") if p]


def default_data_root() -> Path:
    """$PYTORCH_DEVOL_DATA when set, else the first candidate folder that exists (else
    <repo>/datasets, so that the error names it)."""
    if os.environ.get("PYTORCH_DEVOL_DATA"):
        return Path(os.environ["PYTORCH_DEVOL_DATA"])
    return next((p for p in data_root_candidates() if p.is_dir()), REPO / "datasets")


def devol_schema(args: argparse.Namespace, data: Any) -> Any:
    """DEvol's space sized by a script's --max-conv-layers/--max-dense-layers/--max-filters/
    --max-dense-nodes, for ``data``'s input shape and classes."""
    from pytorch_devol import GenomeSchema

    return GenomeSchema.devol(
        max_conv_layers=args.max_conv_layers, max_dense_layers=args.max_dense_layers,
        max_filters=args.max_filters, max_dense_nodes=args.max_dense_nodes,
        input_shape=data.input_shape, n_classes=data.n_outputs)


# -- the machine ---------------------------------------------------------------------------------

def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform.processor())."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def loadavg() -> list[str] | None:
    """1/5/15-minute load averages (Linux): how busy the machine was around the run."""
    try:
        return Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return None


def machine_record(device: Any = None) -> dict[str, Any]:
    """Where a benchmark ran, the same fields in every result: CPU, its cores (all, and those
    this process may use), torch's threads, the platform, the training device (None: the
    benchmark trains nothing), whether the device has native bf16 kernels, torch's CUDA build
    and the visible GPUs; on a CUDA device also its name, memory and cuDNN version."""
    import torch

    from pytorch_devol.search.evaluators.devices import usable_cores
    from pytorch_devol.training.config import cpu_has_fast_bf16

    dev = None if device is None else torch.device(device)
    cuda = torch.cuda.is_available()
    info: dict[str, Any] = {
        "cpu": cpu_name(), "cpu_count": os.cpu_count(), "usable_cores": usable_cores(),
        "threads": torch.get_num_threads(), "platform": platform.platform(),
        "device": None if dev is None else str(dev),
        "native_bf16": (torch.cuda.is_bf16_supported() if dev is not None and dev.type == "cuda"
                        else cpu_has_fast_bf16()),
        "cuda": torch.version.cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda else [],
    }
    if dev is not None and dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    cudnn=torch.backends.cudnn.version())
    return info


def versions(**extra: str | None) -> dict[str, str | None]:
    """Python, torch and numpy versions, and ``extra`` ones (e.g. optuna=optuna.__version__)."""
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__,
            "numpy": np.__version__, **extra}


# -- provenance ----------------------------------------------------------------------------------

def now() -> str:
    """UTC time stamp, seconds precision."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


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


def code_change(start: dict[str, Any], end: dict[str, Any]) -> str:
    """What changed in the code between a run's start and its end ("" when nothing): others
    may edit the tree meanwhile, and the modules measured are those imported at the start."""
    if end == start:
        return ""
    if end["pytorch_devol_sha256"] == start["pytorch_devol_sha256"]:
        return (f"; HEAD moved to {end['git_head']} during the run, pytorch_devol/ itself "
                "unchanged")
    return (f"; pytorch_devol/ changed during the run (sha256 {end['pytorch_devol_sha256']} "
            "at the end); the modules measured were imported at the start")


def command_line(script: str, argv: Sequence[str] | None = None) -> str:
    """How to run it again: ``python benchmarks/<script> ARGS`` (argv: default sys.argv[1:])."""
    args = list(sys.argv[1:] if argv is None else argv)
    return shlex.join(["python", f"benchmarks/{script}", *args])


class Provenance:
    """A run's provenance: created when the run starts (time, load average, code imported),
    ``header()`` when it writes its result."""

    def __init__(self, script: str, argv: Sequence[str] | None = None) -> None:
        self.command = command_line(script, argv)
        self.started = now()
        self.loadavg_before = loadavg()
        self.code = code_state()
        self._start = time.monotonic()

    def header(self, device: Any = None, note: str | None = None,
               **extra_versions: str | None) -> dict[str, Any]:
        """The first keys of every result: date (the end), started, command, machine (with the
        load averages before and after, and ``note``), versions, code at the start and at the
        end, wall seconds so far."""
        machine = {**machine_record(device), "loadavg_before": self.loadavg_before,
                   "loadavg_after": loadavg()}
        if note:
            machine["note"] = note
        return {"date": now(), "started": self.started, "command": self.command,
                "machine": machine, "versions": versions(**extra_versions), "code": self.code,
                "code_at_end": code_state(),
                "wall_seconds": round(time.monotonic() - self._start, 1)}


def _load(value: Any) -> str:
    return " ".join(value) if isinstance(value, list) else str(value)


def provenance_lines(record: dict[str, Any]) -> list[str]:
    """A result's provenance for its Markdown: one paragraph (date, machine, versions, load,
    wall time, code), a blank line, the command. Reads results written before ``Provenance``
    too (fewer machine fields)."""
    m, v, c = record["machine"], record.get("versions", {}), record["code"]
    gpus = m.get("gpus") or []
    where = m.get("gpu", m["cpu"]) + (f" x {len(gpus)}" if "gpu" in m and len(gpus) > 1 else "")
    cores = (f"{m['cpu_count']} CPUs ({m.get('usable_cores', '?')} usable), "
             if "cpu_count" in m else "")
    vers = ", ".join(f"{k} {v[k]}" for k in ("torch", "numpy", "optuna") if v.get(k))
    code = (f"git {c['git_head']}" + (" + uncommitted changes in pytorch_devol/"
                                      if c["pytorch_devol_uncommitted_changes"] else "")
            + f" (pytorch_devol sha256 {c['pytorch_devol_sha256']}")
    if "code_at_end" in record:
        code += ", at the start" + code_change(c, record["code_at_end"])
    line = (f"{record['date']}; {where}; {cores}{m['threads']} torch threads; {vers}, Python "
            f"{v.get('python')}; load average {_load(m.get('loadavg_before'))} at the start, "
            f"{_load(m.get('loadavg_after'))} at the end")
    if record.get("wall_seconds") is not None:
        line += f"; {record['wall_seconds']:.0f} s in all"
    if m.get("note"):
        line += f" ({m['note']})"
    return [f"{line}. Code: {code}).", "", f"Command: `{record['command']}`"]


# -- arms that stop at an epoch budget -------------------------------------------------------------

CANDIDATE_CAP = 3  # an arm asks at most CANDIDATE_CAP x its epoch budget candidates


class BudgetSpent(Exception):
    """Raised (from a record callback or a trainer wrapper) once an arm has spent its epoch
    budget: stops the arm."""


def run_until_spent(arm: Callable[[], Any]) -> str:
    """Run one arm's loop; why it stopped: "budget" (BudgetSpent) or "candidate cap"."""
    try:
        arm()
    except BudgetSpent:
        return "budget"
    return "candidate cap"


class Budget:
    """A soft time budget: ``spent()`` once ``minutes`` have passed (never, when None)."""

    def __init__(self, minutes: float | None) -> None:
        self.start = time.monotonic()
        self.deadline = None if minutes is None else self.start + 60.0 * minutes

    def spent(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def elapsed(self) -> float:
        return time.monotonic() - self.start


# -- result writing ------------------------------------------------------------------------------

def settings_of(args: argparse.Namespace, *leave_out: str) -> dict[str, Any]:
    """A script's parsed arguments for its result (paths as strings), less ``leave_out``."""
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()
            if k not in leave_out}


def write_result(path: Path | str, record: dict[str, Any],
                 markdown: str | None = None) -> Path:
    """Write the result ``record`` to ``path`` (a .json file; its folder is made) and
    ``markdown``, when given, next to it with the suffix .md; returns ``path``. Non-finite
    floats are written as JSON's NaN/Infinity extension (Python reads them back)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    if markdown is not None:
        path.with_suffix(".md").write_text(markdown)
    return path


_PER_FILE = ("seeds", "first_seed", "skipped_seeds_by_time", "out", "arms", "arm_labels",
             "merged_from")


def merge_saved(paths: Sequence[str | Path]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Saved result files of one benchmark as one run: ``(meta, runs)``, with the first
    file's metadata and every arm that ran all the seeds the files hold between them, in seed
    order. Files may differ in their seeds (more seeds of the same arms) or in their arms
    (more arms on the same seeds), not in their settings; a seed of an arm run twice is
    refused."""
    saved = [json.loads(Path(p).read_text()) for p in paths]
    meta = {k: v for k, v in saved[0].items() if k not in ("summary", "verdicts", "runs")}

    def same(s: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in s["setting"].items() if k not in _PER_FILE}

    if any(same(s) != same(saved[0]) for s in saved[1:]):
        raise SystemExit("--from-json: the runs' settings differ; only seeds and arms may")
    runs: dict[str, list[dict[str, Any]]] = {}
    for s in saved:
        for a, rs in s["runs"].items():
            runs.setdefault(a, []).extend(rs)
    for a, rs in runs.items():
        rs.sort(key=lambda r: r["seed"])
        if len({r["seed"] for r in rs}) != len(rs):
            raise SystemExit(f"--from-json: arm {a} has a seed in two files")
    seeds = {r["seed"] for rs in runs.values() for r in rs}
    runs = {a: rs for a, rs in runs.items() if {r["seed"] for r in rs} == seeds}
    arms = list(runs)
    if len(saved) > 1:
        setting = meta["setting"]
        meta["setting"] = {
            **setting, "merged_from": [Path(p).name for p in paths], "arms": arms,
            "seeds": len(runs[arms[0]]) if arms else 0,
            "skipped_seeds_by_time": sorted(
                x for s in saved for x in s["setting"].get("skipped_seeds_by_time", []))}
        if "arm_labels" in setting:
            labels = {k: v for s in saved for k, v in s["setting"].get("arm_labels", {}).items()}
            meta["setting"]["arm_labels"] = {a: labels[a] for a in arms}
    return meta, runs
