"""The ``pytorch-devol`` command, run as a user would: in a subprocess."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TINY = ["--max-conv-layers", "1", "--max-dense-layers", "2", "--max-filters", "16",
        "--max-dense-nodes", "32", "--generations", "3", "--population", "4", "--epochs", "2",
        "--seed", "5", "--precision", "fp32", "--fidelity", "none"]


def cli(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run([sys.executable, "-m", "pytorch_devol.cli", *args], capture_output=True,
                          text=True, env=env, timeout=600, **kw)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def records(run: Path) -> list[dict]:
    lines = (run / "results.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def comparable(recs: list[dict]) -> list[tuple]:
    return sorted((r["index"], tuple(r["genome"]), r["cached"], r["fitness"],
                   r["metrics"]["val_loss"]) for r in recs)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("cli") / "run"
    out = cli("search", *TINY, "--run-dir", str(run)).stdout
    assert "Generation 2:" in out and str(run) in out
    return run


def test_search_show_and_existing_dir(finished_run):
    assert len(records(finished_run)) == 12
    shown = cli("show", str(finished_run)).stdout
    assert "Best (candidate" in shown and "head: Linear" in shown
    assert "Top" in shown
    again = cli("search", *TINY, "--run-dir", str(finished_run), check=False)
    assert again.returncode == 2
    assert again.stderr.count("\n") == 1 and "already exists" in again.stderr


def test_user_mistakes_are_one_line_errors(tmp_path):
    for args, message in [
        (["search", "--dataset", "mnist", "--data-root", str(tmp_path)], "not found"),
        (["search", "--epochs", "0"], "--epochs must be >= 1"),
        (["search", "--fidelity", "none", "--eta", "2"], "need --fidelity sh or asha"),
        (["search", "--fidelity", "sh", "--eta", "1"], "--eta must be >= 2"),
        (["search", "--fidelity", "asha"], "steady-state strategy"),
        (["search", "--strategy", "regularized", "--fidelity", "sh"], "generational"),
        (["search", "--fidelity", "sh", "--epochs", "2", "--min-epochs", "3"], "min_epochs"),
        (["show", str(tmp_path / "nope")], "not a pytorch-devol run directory"),
        (["search", "--resume", str(tmp_path / "nope")], "not a pytorch-devol run directory"),
    ]:
        proc = cli(*args, check=False)
        assert proc.returncode == 2, args
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


def test_plot_and_export(finished_run, tmp_path):
    png = tmp_path / "p.png"
    cli("plot", str(finished_run), "--out", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = cli("export", str(finished_run), "--format", "torchscript", "--out",
              str(tmp_path / "m.pt")).stdout
    assert "m.pt" in out and (tmp_path / "m.pt").stat().st_size > 0


@pytest.mark.parametrize("trial", [0, 1])
def test_kill_9_then_resume_loses_and_duplicates_nothing(finished_run, tmp_path, trial):
    run = tmp_path / "run"
    wait_for = random.Random(trial).randint(1, 9)   # candidates logged before the kill
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "pytorch_devol.cli", "search", *TINY,
                             "--run-dir", str(run), "--quiet"], env=env)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (run / "results.jsonl").exists() and \
                (run / "results.jsonl").read_text().count("\n") >= wait_for:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = records(run)
    assert len(before) < 12, "the search finished before it could be killed"
    cli("search", "--resume", str(run), "--quiet")
    after = records(run)
    indices = [r["index"] for r in after]
    assert len(indices) == len(set(indices)) == 12
    assert comparable(after) == comparable(records(finished_run))
    best = json.loads((run / "best_genome.json").read_text())
    reference = json.loads((finished_run / "best_genome.json").read_text())
    for key in ("index", "genome", "fitness", "layers"):
        assert best[key] == reference[key]


def test_search_with_a_worker_pool(tmp_path):
    run = tmp_path / "pool"
    cli("search", *TINY, "--workers", "2", "--run-dir", str(run), "--quiet")
    recs = records(run)
    assert sorted(r["index"] for r in recs) == list(range(12))
    assert (run / "best.pt").exists()
    bad = cli("search", "--workers", "two", check=False)
    assert bad.returncode == 2 and "integer >= 0 or 'auto'" in bad.stderr


def test_file_system_mistakes_are_one_line_errors(finished_run, tmp_path):
    (tmp_path / "afile").write_text("not a folder")
    proc = cli("export", str(finished_run), "--out", str(tmp_path / "afile" / "m.pt"),
               check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "afile" in proc.stderr and proc.stderr.count("\n") == 1
