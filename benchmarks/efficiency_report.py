"""The analysis, table and plot of ``search_efficiency.py``'s runs (kept apart from the arms
so a saved run can be re-rendered: ``search_efficiency.py --from-json FILE``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    fmt_quartiles,
    json_number,
    json_numbers,
    number,
    paired_differences,
    provenance_lines,
    quartiles,
    write_result,
)

ARM_LABELS = {"ga": "GA (full fidelity)", "ga_sh": "GA + successive halving",
              "re": "regularized evolution", "re_asha": "regularized evolution + ASHA",
              "random": "random search", "optuna": "Optuna TPE + Hyperband",
              "ga_inherit": "GA + heredity", "ga_sh_inherit": "GA + SH + heredity"}
# Incumbent test accuracy is reported at these fractions of the full GA's epoch budget.
FRACTIONS = (1 / 9, 1 / 6, 1 / 3, 1 / 2, 2 / 3, 1.0)
# Further paired comparisons at equal epochs (reported, no target attached).
EXTRA_PAIRS = (("ga_sh", "ga"), ("re_asha", "re"), ("ga_sh", "random"), ("re_asha", "optuna"),
               ("ga", "random"), ("ga_inherit", "ga"), ("ga_sh_inherit", "ga_sh"),
               ("ga_sh_inherit", "random"), ("ga_inherit", "optuna"))

# -- analysis ------------------------------------------------------------------------------------

def trace(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """After each record: cumulative epochs and seconds, and the incumbent's accuracies."""
    out, epochs, seconds = [], 0, 0.0
    best_val, inc_test, inc_index = -math.inf, None, None
    for ev in events:
        epochs += ev["epochs"]
        seconds += ev["seconds"]
        if ev["final"] and ev["val_accuracy"] is not None and ev["val_accuracy"] > best_val:
            best_val, inc_test, inc_index = ev["val_accuracy"], ev["test_accuracy"], ev["index"]
        out.append({"epochs": epochs, "seconds": seconds, "test": inc_test,
                    "val": None if inc_index is None else best_val, "incumbent": inc_index})
    return out


def at(tr: list[dict[str, Any]], budget: float, key: str = "epochs") -> float:
    """Incumbent test accuracy among the records finished within ``budget`` (NaN: none yet)."""
    value = math.nan
    for p in tr:
        if p[key] > budget + 1e-9:
            break
        value = math.nan if p["test"] is None else p["test"]
    return value


def first_reach(tr: list[dict[str, Any]], target: float, key: str = "epochs") -> float:
    """Cumulative ``key`` when the incumbent's test accuracy first reached ``target`` (inf:
    never)."""
    for p in tr:
        if p["test"] is not None and p["test"] >= target - 1e-12:
            return float(p[key])
    return math.inf


def grid_curve(traces: list[list[dict[str, Any]]], key: str, points: np.ndarray
               ) -> list[dict[str, Any]]:
    """Median and IQR over seeds of the incumbent's test accuracy at each budget in
    ``points`` (a seed whose run ended earlier keeps its last incumbent)."""
    out = []
    for x in points:
        vals = [at(tr, float(x), key) for tr in traces]
        have = [v for v in vals if not math.isnan(v)]
        row = {key: float(x), "seeds_with_incumbent": len(have)}
        if len(have) == len(vals):
            q1, med, q3 = np.percentile(have, [25, 50, 75])
            row.update(median=float(med), iqr=[float(q1), float(q3)])
        else:
            row.update(median=None, iqr=[None, None])
        out.append(row)
    return out


def arm_counts(run: dict[str, Any]) -> dict[str, Any]:
    ev = run["events"]
    return {"candidates": len({e["index"] for e in ev}),
            "trainings": sum(1 for e in ev if e["epochs"] > 0),
            "cached_records": sum(1 for e in ev if e["cached"]),
            "records": len(ev),
            "final_records": sum(1 for e in ev if e["final"]),
            "failed_records": sum(1 for e in ev if e["status"] != "ok"),
            "epochs": sum(e["epochs"] for e in ev),
            "seconds": sum(e["seconds"] for e in ev)}


def analyse(runs: dict[str, list[dict[str, Any]]], budget: int) -> dict[str, Any]:
    arms = list(runs)
    n = len(runs[arms[0]])
    traces = {arm: [trace(r["events"]) for r in runs[arm]] for arm in arms}
    final = {arm: [tr[-1]["test"] if tr and tr[-1]["test"] is not None else math.nan
                   for tr in traces[arm]] for arm in arms}
    max_epochs = max(tr[-1]["epochs"] for trs in traces.values() for tr in trs if tr)
    max_seconds = max(tr[-1]["seconds"] for trs in traces.values() for tr in trs if tr)
    epoch_grid = np.arange(0, max_epochs + 1)
    second_grid = np.linspace(0.0, max_seconds, 61)
    out: dict[str, Any] = {"budget_epochs": budget, "arms": {}}
    reference = "ga" if "ga" in runs else None
    if reference is not None:
        target = float(np.median(final["ga"])) if not any(map(math.isnan, final["ga"])) \
            else math.nan
        ga_epochs = [tr[-1]["epochs"] for tr in traces["ga"]]
        ga_seconds = [tr[-1]["seconds"] for tr in traces["ga"]]
        out["target_accuracy"] = {"what": "median over seeds of the full GA's final "
                                          "incumbent test accuracy", "value": target}
    for arm in arms:
        counts = [arm_counts(r) for r in runs[arm]]
        entry: dict[str, Any] = {
            "final_test_accuracy": quartiles(final[arm]),
            "final_val_accuracy": quartiles([
                tr[-1]["val"] if tr and tr[-1]["val"] is not None else math.nan
                for tr in traces[arm]]),
            "counts": {k: quartiles([c[k] for c in counts]) for k in counts[0]},
            "at_fraction_of_budget": [
                {"fraction": f, "epochs": f * budget,
                 "test_accuracy": quartiles([at(tr, f * budget) for tr in traces[arm]])}
                for f in FRACTIONS],
            "curve_epochs": grid_curve(traces[arm], "epochs", epoch_grid),
            "curve_seconds": grid_curve(traces[arm], "seconds", second_grid)}
        if reference is not None and not math.isnan(target):
            reach_e = [first_reach(tr, target) for tr in traces[arm]]
            reach_s = [first_reach(tr, target, "seconds") for tr in traces[arm]]
            entry["reach_target"] = {
                "epochs": quartiles(reach_e),
                "fraction_of_ga_epochs": quartiles([r / g for r, g in
                                                    zip(reach_e, ga_epochs, strict=True)]),
                "fraction_of_ga_seconds": quartiles([r / g if g > 0 else math.inf for r, g in
                                                     zip(reach_s, ga_seconds, strict=True)]),
                "seeds_reached": sum(math.isfinite(r) for r in reach_e), "seeds": n}
        out["arms"][arm] = entry
    # Equal compute, paired by seed: the largest epoch count every arm of that seed reached.
    paired = []
    for i in range(n):
        cut = min(traces[arm][i][-1]["epochs"] if traces[arm][i] else 0 for arm in arms)
        paired.append({"seed": runs[arms[0]][i]["seed"], "epochs": cut,
                       **{arm: json_number(at(traces[arm][i], cut)) if not math.isnan(
                           at(traces[arm][i], cut)) else None for arm in arms}})
    out["equal_epochs"] = paired
    out["equal_epochs_summary"] = {arm: quartiles([number(p[arm]) for p in paired])
                                   for arm in arms}
    return out


def paired_verdict(paired: list[dict[str, Any]], ours: str, other: str) -> dict[str, Any]:
    diffs = [number(p[ours]) - number(p[other]) for p in paired]
    if any(math.isnan(d) for d in diffs):
        return {"ours": ours, "other": other, "diffs": json_numbers(diffs), "met": None,
                "note": "an arm had no incumbent at the equal-compute cut in some seed"}
    return {"ours": ours, "other": other, **paired_differences(diffs)}


def verdicts(summary: dict[str, Any], runs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    arms = summary["arms"]
    if "ga" in runs and "ga_sh" in runs and "reach_target" in arms["ga_sh"]:
        frac = number(arms["ga_sh"]["reach_target"]["fraction_of_ga_epochs"]["median"])
        out["sh_speedup"] = {
            "target": "GA + SH reaches the full GA's final median test accuracy with at most "
                      "1/3 of the GA's epochs (median over seeds)",
            "median_fraction": json_number(frac) if not math.isnan(frac) else None,
            "met": bool(frac <= 1 / 3 + 1e-9)}
    else:
        out["sh_speedup"] = {"met": None, "note": "needs the ga and ga_sh arms"}
    if "ga_sh" in runs and "optuna" in runs:
        out["sh_vs_optuna"] = {
            "target": "at equal compute GA + SH is at least as good as Optuna TPE + Hyperband "
                      "(median paired difference >= 0)",
            **paired_verdict(summary["equal_epochs"], "ga_sh", "optuna")}
    else:
        out["sh_vs_optuna"] = {"met": None, "note": "needs the ga_sh and optuna arms"}
    if "ga_sh_inherit" in runs and "optuna" in runs:
        out["heredity_vs_optuna"] = {
            "target": "at equal compute GA + SH + heredity is at least as good as Optuna TPE + "
                      "Hyperband (median paired difference >= 0)",
            **paired_verdict(summary["equal_epochs"], "ga_sh_inherit", "optuna")}
    for ours, other in EXTRA_PAIRS:
        if ours in runs and other in runs:
            out[f"{ours}_vs_{other}"] = paired_verdict(summary["equal_epochs"], ours, other)
    return out


def plot(summary: dict[str, Any], path: Path) -> str | None:
    """The incumbent's test accuracy against epochs and seconds; a note when matplotlib is
    missing (then no PNG)."""
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed: no plot"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    for ax, key, label in ((axes[0], "epochs", "cumulative training epochs"),
                           (axes[1], "seconds", "cumulative training seconds")):
        for arm, s in summary["arms"].items():
            pts = [p for p in s[f"curve_{key}"] if p["median"] is not None]
            if not pts:
                continue
            x = [p[key] for p in pts]
            line, = ax.step(x, [p["median"] for p in pts], where="post",
                            label=ARM_LABELS[arm])
            ax.fill_between(x, [p["iqr"][0] for p in pts], [p["iqr"][1] for p in pts],
                            step="post", alpha=0.1, color=line.get_color())
        target = (summary.get("target_accuracy") or {}).get("value")
        if target is not None and math.isfinite(target):
            ax.axhline(target, color="grey", ls="--", lw=1,
                       label="full GA's final median" if key == "epochs" else None)
        if key == "epochs":
            ax.axvline(summary["budget_epochs"] / 3, color="grey", ls=":", lw=1,
                       label="1/3 of the budget")
        ax.set_xlabel(label + (" (median and IQR over seeds)"))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("incumbent's test accuracy")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Best network found (chosen on validation, full budget) vs training compute")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# -- report --------------------------------------------------------------------------------------

_q = fmt_quartiles


def _met(v: dict[str, Any]) -> str:
    return {True: "**met**", False: "**not met**", None: "**not evaluated**"}[v.get("met")]


def _setting(meta: dict[str, Any], seeds: list[int], budget: int) -> list[str]:
    """What was run: data, space, training, budget, fidelity, seeds; what is reported."""
    s = meta["setting"]
    space = s["space"]
    return [f"{meta['data']}. Space: `GenomeSchema.devol(max_conv_layers="
            f"{space['max_conv_layers']}, max_dense_layers={space['max_dense_layers']}, "
            f"max_filters={space['max_filters']}, max_dense_nodes={space['max_dense_nodes']})`"
            f" ({meta['space_genes']} genes). Every network trains at most {s['epochs']} epochs "
            f"(`TrainConfig(patience=None)`, batch 128, the same learning-rate schedule length "
            f"for a paused and continued network), with the training seed "
            f"`candidate_seed(seed, canonical key)` in every arm. Every arm has the same budget "
            f"of {budget} cumulative training epochs (the full GA's {s['generations']} "
            f"generations x {s['population']} x {s['epochs']} epochs"
            + ("" if budget == s['generations'] * s['population'] * s['epochs']
               else ", overridden by --budget-epochs")
            + f") and runs until it has spent it; population {s['population']}. Fidelity: "
            f"rungs of {s['min_epochs']} x {s['eta']}^k epochs up to {s['epochs']} "
            f"(`SuccessiveHalving` / `ASHA` with min_epochs={s['min_epochs']}, eta={s['eta']};"
            f" Optuna `HyperbandPruner(min_resource={s['min_epochs']}, max_resource="
            f"{s['epochs']}, reduction_factor={s['eta']})`). A genome already trained is a "
            f"cached copy (no epochs, no seconds). {len(seeds)} seeds "
            f"({', '.join(map(str, seeds))}), arms interleaved within each seed, order rotated "
            f"by seed.", "",
            "Incumbent: the candidate with the best validation accuracy among those trained at "
            f"the full {s['epochs']} epochs (Optuna: among completed, unpruned trials); its "
            "held-out test accuracy is what is reported. Epochs and seconds are training only "
            "(`rung_epochs` / `rung_seconds` of the search's records; the Optuna objective's "
            "own count), summed in log order; this machine is shared, so seconds are noisy."]


def _final_table(summary: dict[str, Any], runs: dict[str, Any]) -> list[str]:
    """Final and equal-compute accuracy, compute spent and counts per arm."""
    lines = ["## Final and equal-compute accuracy", "",
             "Median [IQR] over seeds. Equal compute: each seed's arms cut at the largest "
             "cumulative epoch count all arms of that seed reached (paired). Trainer calls: "
             "trainings that cost epochs (one per rung reached for the fidelity arms, one per "
             "epoch for Optuna); cached copies: records that cost nothing. Wall seconds: the whole "
             "arm (training, scoring, building models, saving and loading paused states, the "
             "strategy). Training state: what the fidelity arms keep to continue paused "
             "networks, and the heredity arms' donor weights.", "",
             "| arm | final test acc | test acc at equal epochs | epochs | train seconds | "
             "wall seconds | candidates | trainer calls | cached copies | training state bytes "
             "(peak) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    eq = summary["equal_epochs_summary"]
    for arm in runs:
        a = summary["arms"][arm]
        c = a["counts"]
        peaks = [r["state_bytes"]["peak"] for r in runs[arm] if r.get("state_bytes")]
        state = f"{int(np.median(peaks)):,} ({runs[arm][0]['state_bytes']['where']})" \
            if peaks else "-"
        donors = [r["donor_bytes"]["peak"] for r in runs[arm] if r.get("donor_bytes")]
        if donors:
            state += f"; donor weights {int(np.median(donors)):,} (run_dir/donors)"
        lines.append(f"| {ARM_LABELS[arm]} | {_q(a['final_test_accuracy'])} | {_q(eq[arm])} | "
                     f"{_q(c['epochs'], '{:.0f}')} | {_q(c['seconds'], '{:.0f}')} | "
                     f"{_q(quartiles([r['wall_seconds'] for r in runs[arm]]), '{:.0f}')} | "
                     f"{_q(c['candidates'], '{:.0f}')} | {_q(c['trainings'], '{:.0f}')} | "
                     f"{_q(c['cached_records'], '{:.0f}')} | {state} |")
    return lines


def _speedup_table(summary: dict[str, Any], arms: list[str]) -> list[str]:
    """Compute each arm needed to reach the full GA's final median ([] without a target)."""
    target = (summary.get("target_accuracy") or {}).get("value")
    if target is None:
        return []
    lines = ["", "## Speed-up", "",
             f"Compute each arm needed until its incumbent's test accuracy first reached "
             f"{target:.4f}, the full GA's final median: as a fraction of that seed's full "
             "GA epochs (and training seconds), median [IQR] over seeds; a seed that never "
             "reached it counts as infinitely slow (\"not reached\").", "",
             "| arm | fraction of GA epochs | fraction of GA seconds | epochs | seeds "
             "reached |", "| --- | --- | --- | --- | --- |"]
    for arm in arms:
        rt = summary["arms"][arm].get("reach_target")
        if rt is None:
            continue
        lines.append(f"| {ARM_LABELS[arm]} | {_q(rt['fraction_of_ga_epochs'], '{:.3f}')} | "
                     f"{_q(rt['fraction_of_ga_seconds'], '{:.3f}')} | "
                     f"{_q(rt['epochs'], '{:.0f}')} | {rt['seeds_reached']} of "
                     f"{rt['seeds']} |")
    return lines


def _along_budget(meta: dict[str, Any], summary: dict[str, Any], arms: list[str],
                  out: Path) -> list[str]:
    """The incumbent's test accuracy at fractions of the budget, the plot, the per-seed cut."""
    budget = summary["budget_epochs"]
    lines = ["", "## Incumbent's test accuracy along the budget", "",
             "Median [IQR] over seeds at these fractions of the budget of "
             f"{budget} epochs (\"-\": some seed had no incumbent yet).", "",
             "| arm | " + " | ".join(f"{f:.2g} ({f * budget:.0f} ep)" for f in FRACTIONS) + " |",
             "| --- " * (len(FRACTIONS) + 1) + "|"]
    for arm in arms:
        lines.append(f"| {ARM_LABELS[arm]} | " + " | ".join(
            _q(p["test_accuracy"]) for p in summary["arms"][arm]["at_fraction_of_budget"])
            + " |")
    lines += ["", f"![incumbent's test accuracy vs compute]({out.with_suffix('.png').name})"
              if not meta.get("plot_note") else f"No plot: {meta['plot_note']}.", "",
              "## Per seed, at equal epochs", "",
              "| seed | epoch budget | " + " | ".join(ARM_LABELS[a] for a in arms) + " |",
              "| --- " * (len(arms) + 2) + "|"]
    for p in summary["equal_epochs"]:
        lines.append(f"| {p['seed']} | {p['epochs']} | " + " | ".join(
            "-" if p[a] is None else f"{number(p[a]):.4f}" for a in arms) + " |")
    return lines


def _what_ran(arm: str, arm_runs: list[dict[str, Any]]) -> str:
    """One arm's strategy (or fidelity) and options; Optuna's trial states over all seeds."""
    r0 = arm_runs[0]
    what = r0.get("fidelity") or ("uniform random genomes" if arm == "random"
                                  else r0.get("strategy"))
    if r0.get("strategy_options"):
        what = f"{what} {r0['strategy_options']}"
    if arm == "optuna":
        totals: dict[str, int] = {}
        for r in arm_runs:
            for k, v in r["trial_states"].items():
                totals[k] = totals.get(k, 0) + v
        retrained = sum(r["retrained_from_scratch"] for r in arm_runs)
        what += " (trials, all seeds: " + ", ".join(
            f"{v} {k.lower().replace('_', ' ')}" for k, v in totals.items()) \
            + f"; genomes retrained from scratch: {retrained})"
    return what


def _per_arm(summary: dict[str, Any], runs: dict[str, Any]) -> list[str]:
    """What ran in each arm, what stopped it, its record counts."""
    lines = ["", "## Per arm", "",
             "| arm | what ran | stopped by (seeds) | records | final records | failed |",
             "| --- | --- | --- | --- | --- | --- |"]
    for arm in runs:
        stops: dict[str, int] = {}
        for r in runs[arm]:
            stops[r["stop"]] = stops.get(r["stop"], 0) + 1
        c = summary["arms"][arm]["counts"]
        lines.append(f"| {ARM_LABELS[arm]} | {_what_ran(arm, runs[arm])} | "
                     + ", ".join(f"{k}: {v}" for k, v in stops.items())
                     + f" | {_q(c['records'], '{:.0f}')} | {_q(c['final_records'], '{:.0f}')} | "
                     f"{_q(c['failed_records'], '{:.0f}')} |")
    return lines


def _targets(verdict: dict[str, Any]) -> list[str]:
    """The two targets' verdicts, then the further paired comparisons."""
    sp, vo = verdict["sh_speedup"], verdict["sh_vs_optuna"]
    lines = ["", "## Targets", ""]
    if sp.get("met") is None:
        lines.append(f"- GA + SH reaches the full GA's final median accuracy with at most 1/3 "
                     f"of its epochs: {_met(sp)} ({sp['note']}).")
    else:
        frac = sp["median_fraction"]
        lines.append(f"- GA + SH reaches the full GA's final median accuracy with at most 1/3 "
                     f"of its epochs: {_met(sp)} (median fraction "
                     + ("not reached" if frac == "inf" else f"{frac:.3f}") + ").")
    if vo.get("met") is None:
        lines.append(f"- At equal compute GA + SH at least as good as Optuna TPE + Hyperband: "
                     f"{_met(vo)} ({vo['note']}).")
    else:
        lines.append(
            f"- At equal compute GA + SH at least as good as Optuna TPE + Hyperband: {_met(vo)} "
            f"on the median paired difference (GA+SH - Optuna: median {vo['median_diff']:+.4f};"
            f" GA+SH >= Optuna in {vo['ours_at_least_as_good_in']} of {vo['seeds']} seeds; "
            "differences " + ", ".join(f"{d:+.4f}" for d in vo["diffs"]) + "). "
            + ("One seed only: no spread measured." if vo["seeds"] == 1 else
               "Every seed lies on the same side of 0." if vo["consistent"] else
               "The seeds lie on both sides of 0 (or at 0): no measurable difference at this "
               "number of seeds."))
    for name, v in verdict.items():
        if name in ("sh_speedup", "sh_vs_optuna") or v.get("met") is None:
            continue
        lines.append(f"- {ARM_LABELS[v['ours']]} - {ARM_LABELS[v['other']]} at equal epochs: "
                     f"median {v['median_diff']:+.4f}, >= in {v['ours_at_least_as_good_in']} of "
                     f"{v['seeds']} seeds.")
    return lines


def report(meta: dict[str, Any], summary: dict[str, Any], runs: dict[str, Any],
           verdict: dict[str, Any], out: Path) -> str:
    """The Markdown page of a run (also of a saved one: ``--from-json``)."""
    arms = list(runs)
    seeds = [r["seed"] for r in runs[arms[0]]]
    lines = [f"# Search efficiency at equal compute (cpu, {meta['date']})", "",
             *provenance_lines(meta), "", *_setting(meta, seeds, summary["budget_epochs"]), "",
             *_final_table(summary, runs), *_speedup_table(summary, arms),
             *_along_budget(meta, summary, arms, out), *_per_arm(summary, runs),
             *_targets(verdict)]
    notes = meta.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if meta.get("reading"):
        lines += ["", "## Reading", "", meta["reading"].strip()]
    return "\n".join(lines) + "\n"


def write_outputs(meta: dict[str, Any], runs: dict[str, Any], out: Path) -> str:
    """Analyse ``runs``, plot, and write ``out``.json, .md and .png; returns the Markdown."""
    summary = analyse(runs, meta["setting"]["budget"])
    verdict = verdicts(summary, runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    note = plot(summary, out.with_suffix(".png"))
    meta = {**meta, "plot_note": note}
    write_result(out.with_suffix(".json"),  # first: a failing report cannot lose it
                 {**meta, "summary": summary, "verdicts": verdict, "runs": runs})
    text = report(meta, summary, runs, verdict, out)
    out.with_suffix(".md").write_text(text)
    return text
