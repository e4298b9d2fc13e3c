"""benchmarks/gpu_suite.sh --dry-run: the GPU suite's plumbing, on CPU at tiny sizes.

The real suite runs on an H100/H200 (see the script's header); CI runs its dry run so that the
script, its four steps and the result files they write stay working between GPU runs.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys

import pytest

from .conftest import REPO

SUITE = REPO / "benchmarks" / "gpu_suite.sh"


# The dry run's budget. Its steps are sized by count, so this only sets their hard limits: at 6
# minutes each step's share is about 10x what it takes on a slow 2-core CPU (environment 40 s
# for ~2 s, train_throughput 71 s for ~7 s, parallel_scaling 111 s for ~11 s, devol_slice at
# least 93 s, in practice ~280 s, for ~12 s). A pass takes ~35 s there.
DRY_RUN_MINUTES = 6
SPACE = ["--max-conv-layers", "2", "--max-dense-layers", "2", "--max-filters", "16",
         "--max-dense-nodes", "32"]


@pytest.mark.slow
def test_gpu_suite_dry_run(tmp_path, mnist_root):
    if shutil.which("bash") is None or shutil.which("timeout") is None:
        pytest.skip("the suite needs bash and coreutils' timeout")
    out = tmp_path / "results"
    env = {**os.environ, "PYTHON": sys.executable, "PYTORCH_DEVOL_DATA": str(mnist_root),
           "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run(["bash", str(SUITE), "--dry-run", "--out-dir", str(out),
                           "--minutes", str(DRY_RUN_MINUTES)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60 * DRY_RUN_MINUTES + 60)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log

    steps = [line.split("\t") for line in
             (out / "gpu_suite_logs" / "steps_cpu-dry-run.tsv").read_text().splitlines()]
    assert [s[0] for s in steps] == ["environment", "train_throughput", "parallel_scaling",
                                     "devol_slice", "summary"], log
    assert all(s[1] == "0" for s in steps), steps
    assert all(int(s[2]) <= int(s[3]) for s in steps), steps  # each within its share

    # Every step is sized by count and has no soft budget: it does all of its work.
    tt = json.loads((out / "train_throughput_cpu-dry-run.json").read_text())
    s = tt["summary"]
    assert set(s["ways"]) == {"ours", "tuned", "tutorial"}
    assert (s["genomes_drawn"], s["genomes_counted"], s["rounds_counted"]) == (1, 1, 1), s
    assert not s["partial_round"] and not s["stopped_by_time_budget"]
    assert all(w["failed"] == 0 and w["seconds_per_round"]["n"] == 1
               for w in s["ways"].values())
    for name in ("ours_vs_tuned", "ours_vs_tutorial", "tuned_vs_tutorial"):
        ratio = s["ratios"][name]
        assert ratio["n"] == 1 and ratio["min"] == ratio["median"] == ratio["max"] > 0
        assert ratio["test_accuracy_diff"]["pairs"] == 1
    assert s["matmul_tflops"]["size"] == 128
    assert s["matmul_tflops"]["bf16"]["n"] == s["matmul_tflops"]["fp32"]["n"] == 1
    assert s["matmul_tflops"]["bf16"]["median"] > 0
    assert s["ways"]["ours"]["fraction_of_bf16_matmul"] > 0

    par = json.loads((out / "parallel_cpu-dry-run.json").read_text())
    assert [r["mode"] for r in par["rows"]] == ["in-process", "pool"]
    assert all(r["rounds"] == 1 and r["failed"] == 0 for r in par["rows"])
    assert par["skipped"] == [] and par["best_pool"]["workers"] == 1

    devol = json.loads((out / "devol_mnist_cpu_gpu-suite-slice.json").read_text())
    assert devol["complete"] and devol["evaluations_planned"] == 2
    assert devol["counts"]["evaluated"] == 2 and devol["counts"]["failed"] == 0
    assert "--workers 1" in devol["command"]  # the best K of step 2
    assert devol["candidates_per_minute"] > 0
    assert devol["projected_seconds_for_all_planned"] > 0

    summary = json.loads((out / "gpu_suite_cpu-dry-run.json").read_text())
    assert {"train_throughput", "parallel", "devol_slice"} <= set(summary)
    assert summary["shortfalls"] == [] and summary["stale_results_ignored"] == []
    md = (out / "gpu_suite_cpu-dry-run.md").read_text()
    assert "Ours vs tuned" in md and "candidates/min" in md
    assert "Every step ran to its end" in md
    # The dry run writes only where it was told to.
    assert not (tmp_path / "benchmarks").exists()


@pytest.mark.slow
def test_devol_mnist_out_of_time_is_a_result(tmp_path, mnist_root):
    """A time-boxed slice that finishes no candidate writes its record (0 candidates, no rate,
    no projection, no plot) and exits 0. The pool's start-up alone (a fresh Python importing
    torch) outlasts the 0.03 s budget on any machine, so nothing can finish."""
    out = tmp_path / "out"
    env = {**os.environ, "PYTORCH_DEVOL_DATA": str(mnist_root), "RAY_AUTH_MODE": "disabled"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "devol_mnist.py"), "--device", "cpu",
         "--max-minutes", "0.0005", "--generations", "2", "--population", "2", "--epochs", "1",
         "--train-size", "1000", "--test-size", "1000", *SPACE, "--workers", "1",
         "--out-dir", str(out), "--run-dir", str(out / "run"), "--quiet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    log = proc.stdout[-4000:] + proc.stderr[-4000:]
    assert proc.returncode == 0, log
    (path,) = out.glob("devol_mnist_*.json")
    record = json.loads(path.read_text())
    assert record["counts"] == {"evaluated": 0, "trained": 0, "cached": 0, "failed": 0,
                                "infeasible": 0}
    assert record["complete"] is False and record["evaluations_planned"] == 4
    assert record["outcome"].startswith("0 of 4 candidates evaluated in "), record["outcome"]
    assert "0 of 4 candidates evaluated" in proc.stdout
    assert record["candidates_per_minute"] == 0
    assert record["projected_seconds_for_all_planned"] is None
    assert record["seconds_per_candidate"] is None
    assert record["seconds_per_trained_candidate"] is None
    assert record["running_best_val_accuracy_per_generation"] == []
    assert "best" not in record and record["plot"] is None
    assert any(n.startswith("0 candidates evaluated") for n in record["notes"])
    assert not list(out.glob("*.png"))


def _num(x):
    """efficiency_report's JSON numbers: "inf" (not reached), None or "nan" (not defined)."""
    return math.inf if x == "inf" else (math.nan if x is None or x == "nan" else float(x))


@pytest.mark.slow
def test_search_efficiency_smoke(tmp_path, fashion_mnist_root):
    """benchmarks/search_efficiency.py at a 12-epoch budget on 300 images: every arm stops at
    its budget, each new incumbent is scored on the whole (here 500-image) test set, the
    pairs and targets follow from the numbers, and a saved run re-renders from its JSON."""
    arms = ["ga", "ga_sh_inherit", "random"] + [
        arm for arm, module in (("optuna", "optuna"), ("dehb", "dehb"))
        if importlib.util.find_spec(module) is not None]
    out = tmp_path / "se"
    env = {**os.environ, "PYTORCH_DEVOL_DATA": str(fashion_mnist_root),
           "RAY_AUTH_MODE": "disabled"}
    script = str(REPO / "benchmarks" / "search_efficiency.py")
    proc = subprocess.run(
        [sys.executable, script, "--seeds", "2", "--train", "300", "--val", "200", "--test",
         "500", "--epochs", "2", "--eta", "2", "--population", "4", "--budget-epochs", "12",
         "--arms", ",".join(arms), "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)  # hang guard (~30 s)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]

    saved = json.loads(out.with_suffix(".json").read_text())
    assert list(saved["runs"]) == arms
    for arm in arms:
        for run in saved["runs"][arm]:
            spent = sum(e["epochs"] for e in run["events"])
            assert 12 <= spent <= 12 + 2 and run["stop"] == "budget", (arm, spent, run["stop"])
            new = [e for e in run["events"] if e["new_incumbent"]]
            assert new and run["test_scorings"] == len(new), arm
            assert all(e["final"] and 0 <= e["test_accuracy"] <= 1 for e in new), arm
            # a test accuracy on 500 images is a multiple of 1/500
            assert all(abs(e["test_accuracy"] * 500 - round(e["test_accuracy"] * 500)) < 1e-9
                       for e in new)
    cuts = saved["summary"]["equal_epochs"]
    assert [c["seed"] for c in cuts] == [0, 1] and all(c["epochs"] >= 12 for c in cuts)
    pair = saved["verdicts"]["pairs"]["ga_sh_inherit-random"]
    diffs = [_num(c["ga_sh_inherit"]) - _num(c["random"]) for c in cuts]
    assert pair["diffs"] == pytest.approx(diffs)
    assert pair["ci95"][0] <= pair["mean"] <= pair["ci95"][1]
    assert pair["wins"] + pair["ties"] + pair["losses"] == 2
    target = saved["verdicts"]["targets"]["quarter_of_ga_epochs"]
    assert target["met"] is (_num(target["median_fraction"]) <= 0.25)
    assert saved["verdicts"]["targets"]["heredity_beats_random"]["met"] is (
        min(pair["ci95"][0], pair["t95"][0]) > 0)
    assert target["arm"] == "ga_sh_inherit"
    md = out.with_suffix(".md").read_text()
    assert "## Targets" in md and "## Paired differences at equal epochs" in md
    again = tmp_path / "again"
    subprocess.run([sys.executable, script, "--from-json", str(out.with_suffix(".json")),
                    "--out", str(again)], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=120)
    assert again.with_suffix(".md").read_text() == md.replace("(se.png)", "(again.png)")
