"""Smoke test of benchmarks/multi_objective.py: every arm on a tiny budget, one seed."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "multi_objective.py"
# The arms with code of their own (nsga2, nsga2_sh_eps and random are nsga2_sh's Search with
# other settings): a smoke test that stays short.
ARMS = ["nsga2_sh", "optuna", "moasha", "nsga2_sh_con"]
NEEDS = {"optuna": "optuna", "moasha": "syne_tune"}


@pytest.mark.slow
def test_multi_objective_smoke(tmp_path, fashion_mnist_root):
    """Four arms at a 4-epoch budget on 200 images: each arm ran (or was skipped with a
    reason), spent at most its budget, hypervolumes lie in [0, 1], the report has its targets,
    and the constraint run's infeasible count matches its records."""
    out = tmp_path / "mo"
    env = {**os.environ, "PYTORCH_DEVOL_DATA": str(fashion_mnist_root)}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--seeds", "1", "--epochs", "2", "--budget-candidates",
         "2", "--population", "2", "--limit", "200", "--test", "50", "--arms", ",".join(ARMS),
         "--out", str(out)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    saved = json.loads(out.with_suffix(".json").read_text())
    setting, summary, budget = saved["setting"], saved["summary"], 4
    assert setting["budget"] == budget
    for arm in ARMS:
        missing = arm in NEEDS and importlib.util.find_spec(NEEDS[arm]) is None
        if arm in setting["skipped_arms"]:
            assert setting["skipped_arms"][arm], arm
            assert arm not in saved["runs"]
            continue
        assert not missing, arm
        (run,) = saved["runs"][arm]
        spent = sum(e["epochs"] for e in run["events"])
        assert run["stop"] == "budget" and budget <= spent <= budget + 2, (arm, spent)
        if arm != "nsga2_sh_con":
            s = summary["arms"][arm]
            assert s["spent"]["median"] <= budget
            hvs = [s["final_hv"]["median"]] + [g["hv"]["median"] for g in s["grid"]]
            assert all(0.0 <= h <= 1.0 for h in hvs), (arm, hvs)
    md = out.with_suffix(".md").read_text()
    assert "## Targets" in md and "1. NSGA-II + SH reaches" in md
    if "nsga2_sh_con" in saved["runs"]:
        limit = int(setting["constraint"].split("<=")[1])
        (row,) = summary["constraint"]
        events = saved["runs"]["nsga2_sh_con"][0]["events"]
        bad = [e for e in events if e["status"] == "infeasible"]
        assert row["infeasible"] == len(bad) and row["infeasible_epochs"] == 0
        assert all(e["epochs"] == 0 and not e["final"] and e["params"] > limit for e in bad)
        assert all(e["params"] <= limit for e in events if e["final"])
        assert "## Constraint run" in md and 0.0 <= row["feasible_hv"] <= 1.0
    again = tmp_path / "again"
    subprocess.run([sys.executable, str(SCRIPT), "--from-json", str(out.with_suffix(".json")),
                    "--out", str(again)], cwd=tmp_path, env=env, check=True,
                   capture_output=True, timeout=120)
    assert again.with_suffix(".md").read_text().split("## Targets")[1] == \
        md.split("## Targets")[1]
