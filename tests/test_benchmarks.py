"""benchmarks/gpu_suite.sh --dry-run: the GPU suite's plumbing, on CPU at tiny sizes.

The real suite runs on an H100/H200 (see the script's header); CI runs its dry run so that the
script, its four steps and the result files they write stay working between GPU runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO

SUITE = REPO / "benchmarks" / "gpu_suite.sh"


@pytest.mark.slow
def test_gpu_suite_dry_run(tmp_path, mnist_root):
    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("the suite needs bash and coreutils' timeout")
    pytest.importorskip("sklearn", reason="the dry run trains on scikit-learn's digits")
    out = tmp_path / "results"
    env = {**os.environ, "PYTHON": sys.executable, "PYTORCH_DEVOL_DATA": str(mnist_root),
           "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run(["bash", str(SUITE), "--dry-run", "--out-dir", str(out),
                           "--minutes", "2"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=170)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log

    steps = [line.split("\t") for line in
             (out / "gpu_suite_logs" / "steps_cpu-dry-run.tsv").read_text().splitlines()]
    assert [s[0] for s in steps] == ["environment", "train_throughput", "parallel_scaling",
                                     "devol_slice", "summary"], log
    assert all(s[1] == "0" for s in steps), steps

    tt = json.loads((out / "train_throughput_cpu-dry-run.json").read_text())
    s = tt["summary"]
    assert set(s["ways"]) == {"ours", "tuned", "tutorial"}
    assert s["genomes_counted"] >= 1 and all(w["failed"] == 0 for w in s["ways"].values())
    for name in ("ours_vs_tuned", "ours_vs_tutorial", "tuned_vs_tutorial"):
        ratio = s["ratios"][name]
        assert ratio["n"] >= 1 and ratio["min"] <= ratio["median"] <= ratio["max"]
        assert ratio["test_accuracy_diff"]["pairs"] >= 1
    assert s["matmul_tflops"]["bf16"]["median"] > 0

    par = json.loads((out / "parallel_cpu-dry-run.json").read_text())
    assert [r["mode"] for r in par["rows"]] == ["in-process", "pool"]
    assert all(r["rounds"] == 1 and r["failed"] == 0 for r in par["rows"])
    assert par["best_pool"]["workers"] == 1

    devol = json.loads((out / "devol_mnist_cpu_gpu-suite-slice.json").read_text())
    assert devol["counts"]["evaluated"] >= 1 and devol["candidates_per_minute"] > 0
    assert devol["projected_seconds_for_all_planned"] > 0

    summary = json.loads((out / "gpu_suite_cpu-dry-run.json").read_text())
    assert {"train_throughput", "parallel", "devol_slice"} <= set(summary)
    md = (out / "gpu_suite_cpu-dry-run.md").read_text()
    assert "Ours vs tuned" in md and "candidates/min" in md
    # The dry run writes only where it was told to.
    assert not (tmp_path / "benchmarks").exists()


@pytest.mark.slow
def test_search_efficiency_smoke(tmp_path, fashion_mnist_root):
    """benchmarks/search_efficiency.py in its smoke mode: three arms at a 12-epoch budget on
    300 images; the JSON, Markdown and the verdicts are written where told, and a saved run
    re-renders from its JSON."""
    pytest.importorskip("optuna", reason="the benchmark's Optuna arm needs optuna")
    arms = ["ga", "ga_sh", "optuna"]
    out = tmp_path / "se"
    env = {**os.environ, "PYTORCH_DEVOL_DATA": str(fashion_mnist_root),
           "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "search_efficiency.py"), "--seeds", "1",
         "--limit", "300", "--test", "200", "--epochs", "2", "--eta", "2", "--population", "4",
         "--budget-epochs", "12", "--arms", ",".join(arms), "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=170)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log

    saved = json.loads(out.with_suffix(".json").read_text())
    assert list(saved["runs"]) == arms
    for arm in arms:
        (run,) = saved["runs"][arm]
        spent = sum(e["epochs"] for e in run["events"])
        assert 12 <= spent <= 12 + 2 and run["stop"] == "budget", (arm, spent, run["stop"])
        assert any(e["final"] and e["test_accuracy"] is not None for e in run["events"]), arm
        assert saved["summary"]["arms"][arm]["final_test_accuracy"]["median"] is not None
    assert saved["summary"]["equal_epochs"][0]["epochs"] >= 12
    reach = saved["summary"]["arms"]["optuna"]["reach_target"]
    assert reach["seeds"] == 1 and reach["seeds_reached"] in (0, 1)
    md = out.with_suffix(".md").read_text()
    assert "## Targets" in md and "Optuna TPE + Hyperband" in md
    again = tmp_path / "again"
    subprocess.run([sys.executable, str(REPO / "benchmarks" / "search_efficiency.py"),
                    "--from-json", str(out.with_suffix(".json")), "--out", str(again)],
                   cwd=tmp_path, env=env, check=True, capture_output=True, timeout=120)
    targets = md[md.index("## Targets"):]
    assert again.with_suffix(".md").read_text().endswith(targets)
    assert saved["verdicts"]["sh_vs_optuna"]["met"] in (True, False)
    assert saved["verdicts"]["sh_speedup"]["met"] in (True, False)
    assert saved["runs"]["ga_sh"][0]["state_bytes"]["peak"] > 0  # paused states were saved
    # The smoke run writes only where it was told to.
    assert not (tmp_path / "benchmarks").exists()
