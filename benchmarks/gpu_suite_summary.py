"""The last step of benchmarks/gpu_suite.sh: one page with each step's exit code and wall time,
the steps that got no time or finished nothing, and the headline figures of the results the
suite wrote.

    python benchmarks/gpu_suite_summary.py --out-dir benchmarks/results --tag cuda

Writes <out-dir>/gpu_suite_<tag>.json and .md.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import fmt_spread, now  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--tag", required=True)
    p.add_argument("--total-seconds", type=float, default=None)
    return p.parse_args(argv)


def load(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def shortfalls(steps: list[dict[str, Any]], tt: dict[str, Any] | None,
               par: dict[str, Any] | None, devol: dict[str, Any] | None) -> list[dict[str, str]]:
    """The steps that got no time, were stopped, failed, or ran but measured nothing."""
    out: list[dict[str, str]] = []
    ran = {s["step"]: s for s in steps}
    for s in steps:
        if s["exit"] == "skipped":
            out.append({"step": s["step"], "problem": f"got no time: skipped, its share "
                        f"({s['hard_limit_s']} s) too small to start it"})
        elif s["exit"] in ("124", "137"):
            out.append({"step": s["step"], "problem": f"stopped by its hard limit "
                        f"({s['hard_limit_s']} s) after {s['wall_s']} s"})
        elif s["exit"] != "0":
            out.append({"step": s["step"], "problem": f"failed (exit {s['exit']}) after "
                        f"{s['wall_s']} s"})
    results = {"train_throughput": tt, "parallel_scaling": par, "devol_slice": devol}
    for name, result in results.items():
        if name not in ran or ran[name]["exit"] == "skipped":
            continue
        if result is None:
            out.append({"step": name, "problem": "wrote no result"})
        elif name == "train_throughput" and not result["summary"]["genomes_counted"]:
            out.append({"step": name, "problem": "measured nothing: " + result["summary"].get(
                "outcome", "0 genomes measured in every way")})
        elif name == "parallel_scaling" and not any(r["rounds"] for r in result["rows"]):
            out.append({"step": name, "problem": "measured nothing: " + result.get(
                "outcome", f"all {len(result['skipped'])} measurements skipped")})
        elif name == "devol_slice" and not result["counts"]["evaluated"]:
            out.append({"step": name, "problem": "evaluated nothing: " + result.get(
                "outcome", f"0 candidates evaluated in {result['wall_seconds']} s")})
    return out


def read_steps(out: Path, tag: str) -> list[dict[str, Any]]:
    """The suite's steps file: each step's exit code, wall time and hard limit."""
    steps = []
    steps_file = out / "gpu_suite_logs" / f"steps_{tag}.tsv"
    if steps_file.exists():
        for line in steps_file.read_text().splitlines():
            name, rc, wall, cap = line.split("\t")
            steps.append({"step": name, "exit": rc, "wall_s": int(wall), "hard_limit_s": cap})
    return steps


def read_results(out: Path, tag: str) -> dict[str, Any]:
    """The environment and the results this run wrote (train_throughput, parallel, the newest
    devol slice and its file), and the older results left out."""
    env_file = out / "gpu_suite_logs" / f"environment_{tag}.json"
    env = load(env_file) or {}
    # The environment file is the suite's first output: a result older than it is a previous
    # run's (benchmarks/results keeps them), not this run's, and is left out (and listed).
    since = env_file.stat().st_mtime if env_file.exists() else None
    stale: list[str] = []

    def fresh(path: Path) -> bool:
        if since is not None and path.exists() and path.stat().st_mtime < since:
            stale.append(path.name)
            return False
        return True

    tt_file, par_file = out / f"train_throughput_{tag}.json", out / f"parallel_{tag}.json"
    tt = load(tt_file) if fresh(tt_file) else None
    par = load(par_file) if fresh(par_file) else None
    devol_files = sorted((f for f in out.glob("devol_mnist_*_gpu-suite-slice.json") if fresh(f)),
                         key=lambda f: f.stat().st_mtime)
    devol = load(devol_files[-1]) if devol_files else None
    return {"env": env, "stale": stale, "tt": tt, "par": par, "devol": devol,
            "devol_file": devol_files[-1] if devol_files else None}


def head_lines(summary: dict[str, Any], env: dict[str, Any], steps: list[dict[str, Any]],
               total_seconds: float | None, stale: list[str]) -> list[str]:
    """The title, the steps' table, the budget, the shortfalls and the results left out."""
    tag = summary["tag"]
    lines = [f"# GPU suite ({tag})", "",
             f"{summary['date']}; {', '.join(env.get('gpus', [])) or 'no GPU (dry run)'}; "
             f"torch {env.get('torch')}, CUDA {env.get('cuda')}. Produced by "
             "`bash benchmarks/gpu_suite.sh`" + (" --dry-run" if "dry" in tag else "") + ".", "",
             "| step | exit | wall s | hard limit s |", "| --- | --- | --- | --- |"]
    lines += [f"| {s['step']} | {s['exit']} | {s['wall_s']} | {s['hard_limit_s']} |"
              for s in steps]
    lines += ["", f"Steps took {summary['steps_wall_seconds']} s of the "
              f"{total_seconds:g} s budget." if total_seconds else "", ""]
    if summary["shortfalls"]:
        lines += ["**Steps that got no time, were stopped, failed or finished nothing:**", ""]
        lines += [f"- {f['step']}: {f['problem']}" for f in summary["shortfalls"]] + [""]
    else:
        lines += ["Every step ran to its end and measured something.", ""]
    if stale:
        lines += [f"Older results left out (not written by this run): {', '.join(stale)}.", ""]
    return lines


def throughput_section(tt: dict[str, Any] | None, tag: str) -> tuple[dict[str, Any] | None,
                                                                     list[str]]:
    """train_throughput's headline figures (None without a result) and their lines."""
    if not tt:
        return None, ["## Training throughput", "", "No result (see the step's log).", ""]
    s = tt["summary"]
    head = s["ratios"].get("ours_vs_tuned")
    t = {"file": f"train_throughput_{tag}.md", "rounds": s["rounds_counted"],
         "partial_round": s["partial_round"], "genomes": s["genomes_counted"],
         "ours_vs_tuned": head and head["verdict"],
         "ours_vs_tutorial": s["ratios"].get("ours_vs_tutorial", {}).get("verdict"),
         "ours_tflops_per_s": s["ways"].get("ours", {}).get("tflops_per_s"),
         "ours_fraction_of_bf16_matmul": s["ways"].get("ours", {}).get(
             "fraction_of_bf16_matmul")}
    lines = ["## Training throughput", "",
             f"`train_throughput_{tag}.md`: {t['genomes']} genomes, {t['rounds']} round(s)"
             + (" (partial)" if t["partial_round"] else "") + f". Ours vs tuned: "
             f"{t['ours_vs_tuned']}. Ours vs tutorial: {t['ours_vs_tutorial']}."
             if t["genomes"] else
             f"`train_throughput_{tag}.md`: NOTHING MEASURED ("
             + s.get("outcome", "0 genomes measured in every way") + ")."]
    if t["ours_tflops_per_s"]:
        lines.append(f"Ours: {fmt_spread(t['ours_tflops_per_s'], 2)} TFLOP/s, "
                     f"{100 * t['ours_fraction_of_bf16_matmul']:.1f}% of the measured bf16 "
                     "matmul rate.")
    lines.append("")
    return t, lines


def parallel_section(par: dict[str, Any] | None, tag: str) -> tuple[dict[str, Any] | None,
                                                                    list[str]]:
    """parallel_scaling's rows and best pool (None without a result) and their lines."""
    if not par:
        return None, ["## Workers per GPU", "", "No result (see the step's log).", ""]
    rows = [{"mode": r["mode"], "workers": r["workers"],
             "workers_per_gpu": r["workers_per_gpu"], "rounds": r["rounds"],
             "candidates_per_min": r["candidates_per_min"]["median"],
             "speedup": (r.get("speedup_vs_in_process") or {}).get("verdict")}
            for r in par["rows"]]
    entry = {"file": f"parallel_{tag}.md", "rows": rows,
             "best_pool": par["best_pool"], "skipped": par["skipped"]}
    lines = ["## Workers per GPU", "", f"`parallel_{tag}.md`:", ""]
    lines += [f"- {r['mode']} x{r['workers']}"
              + (f" ({r['workers_per_gpu']} per GPU)" if r["workers_per_gpu"] else "")
              + (f": {r['candidates_per_min']} candidates/min (median of {r['rounds']})"
                 if r["rounds"] else ": not measured")
              + (f"; {r['speedup']}" if r["speedup"] and r["mode"] == "pool" else "")
              for r in rows]
    lines += ["", (f"Highest median pool rate: {par['best_pool']}" if par["best_pool"]
                   else "No pool configuration measured")
              + (f"; skipped: {len(par['skipped'])} measurement(s)" if par["skipped"]
                 else "") + ".", ""]
    return entry, lines


def devol_section(devol: dict[str, Any] | None, file: Path | None) -> tuple[
        dict[str, Any] | None, list[str]]:
    """The devol slice's counts, rate and projection (None without a result) and its lines."""
    if not devol:
        return None, ["## DEvol's whole experiment, time-boxed", "",
                      "No result (see the step's log).", ""]
    d = {"file": file.name, "complete": devol["complete"],
         "evaluated": devol["counts"]["evaluated"], "trained": devol["counts"]["trained"],
         "planned": devol["evaluations_planned"], "wall_seconds": devol["wall_seconds"],
         "candidates_per_minute": devol.get("candidates_per_minute"),
         "projected_seconds_for_all_planned": devol.get("projected_seconds_for_all_planned"),
         "best_val_accuracy": devol.get("best", {}).get("val_accuracy"),
         "best_test_accuracy": devol.get("best", {}).get("test_accuracy")}
    proj = d["projected_seconds_for_all_planned"]
    lines = ["## DEvol's whole experiment, time-boxed", ""]
    if not d["evaluated"]:
        lines += [f"`{d['file']}`: NOTHING EVALUATED: 0 of {d['planned']} candidates in "
                  f"{d['wall_seconds']} s (no rate, no projection, no plot).", ""]
    else:
        lines += [f"`{d['file']}`: {d['evaluated']} of {d['planned']} candidates evaluated "
                  f"({d['trained']} trained) in {d['wall_seconds']} s: "
                  f"{d['candidates_per_minute']} candidates/min; projected time for all "
                  f"{d['planned']}: "
                  + (f"{proj:.0f} s ({proj / 60:.1f} min)" if proj else "-")
                  + f" ({devol.get('projection', '')}). Best so far: validation "
                  f"{d['best_val_accuracy']}, its test accuracy "
                  f"{d['best_test_accuracy']}.", ""]
    return d, lines


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out, tag = args.out_dir, args.tag
    steps = read_steps(out, tag)
    r = read_results(out, tag)
    env, stale = r["env"], r["stale"]
    summary: dict[str, Any] = {"benchmark": "gpu_suite", "date": now(), "tag": tag,
                               "environment": {k: v for k, v in env.items()
                                               if k != "nvidia_smi"},
                               "steps": steps, "budget_seconds": args.total_seconds,
                               "stale_results_ignored": stale,
                               "steps_wall_seconds": sum(s["wall_s"] for s in steps)}
    summary["shortfalls"] = shortfalls(steps, r["tt"], r["par"], r["devol"])
    summary["steps_that_finished_nothing"] = sorted({f["step"] for f in summary["shortfalls"]})
    lines = head_lines(summary, env, steps, args.total_seconds, stale)
    for key, (entry, more) in (("train_throughput", throughput_section(r["tt"], tag)),
                               ("parallel", parallel_section(r["par"], tag)),
                               ("devol_slice", devol_section(r["devol"], r["devol_file"]))):
        if entry is not None:
            summary[key] = entry
        lines += more

    out.mkdir(parents=True, exist_ok=True)
    (out / f"gpu_suite_{tag}.json").write_text(json.dumps(summary, indent=1) + "\n")
    (out / f"gpu_suite_{tag}.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return summary


if __name__ == "__main__":
    main()
