"""The analysis, tables and plot of ``multi_objective.py``'s runs (kept apart from the arms so
a saved run can be re-rendered: ``multi_objective.py --from-json FILE``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    fmt_quartiles,
    json_number,
    number,
    paired_differences,
    provenance_lines,
    quartiles,
    write_result,
)
from pytorch_devol.evolution.pareto import hypervolume

DIRECTIONS = ("max", "min")
ARM_LABELS = {"nsga2": "NSGA-II (full training)", "nsga2_sh": "NSGA-II + SH (crowding)",
              "nsga2_sh_eps": "NSGA-II + SH (epsilon)", "optuna": "Optuna NSGAIISampler",
              "moasha": "Syne Tune MOASHA", "random": "random search",
              "nsga2_sh_con": "NSGA-II + SH, params constrained"}
ARMS = tuple(ARM_LABELS)
CONSTRAINED = "nsga2_sh_con"
REFERENCE_FACTOR = 1.1
GRID_POINTS = 12
SEED_SHARE = 0.8  # target (2): nsga2_sh >= Optuna in at least this share of the seeds

_q = fmt_quartiles


# -- analysis ------------------------------------------------------------------------------------

def within_budget(events: list[dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """The records whose cumulative epochs, up to and including them, are within ``budget``,
    each with its cumulative epochs as ``spent``."""
    out, spent = [], 0
    for e in events:
        spent += e["epochs"]
        if spent > budget:
            break
        out.append({**e, "spent": spent})
    return out


def hv_of(events: list[dict[str, Any]], ref: dict[str, float]) -> float:
    """Normalised hypervolume (0..1) of the final, ok records."""
    pts = [(e["val_accuracy"], e["params"]) for e in events
           if e["final"] and e["status"] == "ok" and e["val_accuracy"] is not None]
    if not pts:
        return 0.0
    r = np.array([ref["val_accuracy"], ref["params"]], dtype=np.float64)
    hv = hypervolume(np.array(pts, dtype=np.float64), r, directions=DIRECTIONS)
    return float(hv / ((1.0 - r[0]) * r[1]))


def hv_at(kept: list[dict[str, Any]], epochs: float, ref: dict[str, float]) -> float:
    return hv_of([e for e in kept if e["spent"] <= epochs], ref)


def first_reach(kept: list[dict[str, Any]], target: float, ref: dict[str, float]) -> float:
    """Cumulative epochs at which the hypervolume first reaches ``target`` (inf: never)."""
    for i, e in enumerate(kept):
        if e["final"] and hv_of(kept[:i + 1], ref) >= target - 1e-12:
            return float(e["spent"])
    return math.inf


def _arm_summary(runs: list[dict[str, Any]], budget: int, grid: list[int],
                 ref: dict[str, float]) -> dict[str, Any]:
    kept = [within_budget(r["events"], budget) for r in runs]
    return {"spent": quartiles([k[-1]["spent"] if k else 0 for k in kept]),
            "records": quartiles([len(k) for k in kept]),
            "final": quartiles([sum(e["final"] for e in k) for k in kept]),
            "cached": quartiles([sum(e["cached"] for e in k) for k in kept]),
            "final_hv": quartiles([hv_of(k, ref) for k in kept]),
            "grid": [{"epochs": x, "hv": quartiles([hv_at(k, x, ref) for k in kept])}
                     for x in grid]}


def _constraint_summary(runs: list[dict[str, Any]], budget: int, epochs: int,
                        ref: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for r in runs:
        kept = within_budget(r["events"], budget)
        bad = [e for e in kept if e["status"] == "infeasible"]
        new = [e for e in bad if not e["cached"]]
        out.append({"seed": r["seed"], "infeasible": len(bad), "infeasible_trained": 0,
                    "infeasible_epochs": sum(e["epochs"] for e in bad),
                    "distinct_infeasible": len(new), "saved_first_rung": len(new),
                    "saved_full": len(new) * epochs, "records": len(kept),
                    "feasible_hv": hv_of(kept, ref),
                    "final": sum(e["final"] for e in kept)})
    return out


def analyse(runs: dict[str, list[dict[str, Any]]], setting: dict[str, Any]) -> dict[str, Any]:
    budget, ref = setting["budget"], setting["reference"]
    grid = sorted({max(1, round(budget * k / GRID_POINTS)) for k in range(1, GRID_POINTS + 1)})
    main = [a for a in runs if a != CONSTRAINED and runs[a]]
    out: dict[str, Any] = {"reference": ref, "budget": budget, "grid": grid,
                           "arms": {a: _arm_summary(runs[a], budget, grid, ref) for a in main}}
    target = number(out["arms"]["optuna"]["final_hv"]["median"]) if "optuna" in main else None
    out["optuna_target_hv"] = None if target is None else json_number(target)
    if target is not None:
        for a in main:
            reach = [first_reach(within_budget(r["events"], budget), target, ref)
                     for r in runs[a]]
            out["arms"][a]["reach_target"] = {
                "fraction": quartiles([x / budget for x in reach]),
                "seeds_reached": sum(math.isfinite(x) for x in reach), "seeds": len(reach)}
    out["equal_epochs"] = []
    for i, r0 in enumerate(runs[main[0]] if main else []):
        kept = {a: within_budget(runs[a][i]["events"], budget) for a in main}
        cut = min(k[-1]["spent"] if k else 0 for k in kept.values())
        out["equal_epochs"].append({"seed": r0["seed"], "epochs": cut,
                                    **{a: hv_at(kept[a], cut, ref) for a in main}})
    if runs.get(CONSTRAINED):
        out["constraint"] = _constraint_summary(runs[CONSTRAINED], budget, setting["epochs"],
                                                ref)
    return out


def verdicts(summary: dict[str, Any], seeds: int) -> dict[str, Any]:
    arms, paired = summary["arms"], summary["equal_epochs"]
    out: dict[str, Any] = {}
    if "nsga2_sh" in arms and "nsga2_sh_eps" in arms and paired:
        out["crowding_vs_epsilon"] = {"other": "nsga2_sh_eps", **paired_differences(
            [p["nsga2_sh"] - p["nsga2_sh_eps"] for p in paired])}
    # The targets are judged on the promotion order measured better (the one kept as the
    # default of SuccessiveHalving(pareto=...)).
    kept = "nsga2_sh_eps" if out.get("crowding_vs_epsilon", {}).get("median_diff", 0) < 0 \
        else "nsga2_sh"
    out["kept"] = kept
    sh = arms.get(kept, {})
    if "reach_target" in sh:
        frac = sh["reach_target"]["fraction"]["median"]
        out["sh_half_epochs"] = {"median_fraction": frac,
                                 "met": frac is not None and number(frac) <= 0.5,
                                 **{k: sh["reach_target"][k] for k in ("seeds_reached",
                                                                       "seeds")}}
    for name, a, b in (("sh_vs_optuna", kept, "optuna"), ("sh_vs_full", kept, "nsga2"),
                       ("sh_vs_moasha", kept, "moasha")):
        if a in arms and b in arms and paired:
            out[name] = {"other": b, **paired_differences([p[a] - p[b] for p in paired])}
    if "sh_vs_optuna" in out:
        need = math.ceil(SEED_SHARE * len(paired))
        out["sh_vs_optuna"]["needed_seeds"] = need
        out["sh_vs_optuna"]["met"] = out["sh_vs_optuna"]["ours_at_least_as_good_in"] >= need
    if kept in arms and "moasha" in arms:
        ours, theirs = (number(arms[a]["final_hv"]["median"]) for a in (kept, "moasha"))
        out["sh_vs_moasha_median"] = {"ours": ours, "moasha": theirs,
                                      "met": bool(ours >= theirs)}
    return out


# -- plot ----------------------------------------------------------------------------------------

def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for arm, s in summary["arms"].items():
        x = [p["epochs"] for p in s["grid"]]
        med = [number(p["hv"]["median"]) for p in s["grid"]]
        lo = [number(p["hv"]["iqr"][0]) for p in s["grid"]]
        hi = [number(p["hv"]["iqr"][1]) for p in s["grid"]]
        (line,) = ax.plot(x, med, marker="o", ms=3, label=ARM_LABELS[arm])
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.15)
    if summary.get("optuna_target_hv") is not None:
        ax.axhline(number(summary["optuna_target_hv"]), color="grey", ls=":", lw=1,
                   label="Optuna's final median")
    ax.set_xlabel("cumulative training epochs")
    ax.set_ylabel("hypervolume (normalised; median, IQR band)")
    ax.set_title("Pareto front (val accuracy max, params min) vs epochs spent")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- report --------------------------------------------------------------------------------------

def _setting(meta: dict[str, Any], summary: dict[str, Any]) -> list[str]:
    s, ref = meta["setting"], summary["reference"]
    space = ", ".join(f"{k}={v}" for k, v in s["space"].items())
    lines = [f"{meta['data']}. Space: `GenomeSchema.devol({space})` "
             f"({meta['space_genes']} genes). Budget of every arm: {s['budget_candidates']} x "
             f"{s['epochs']} = {s['budget']} cumulative training epochs; population "
             f"{s['population']}, eta {s['eta']} (SH rungs and MOASHA reduction factor). "
             f"Seeds: {', '.join(str(r) for r in _seeds(meta, summary))}; arms interleaved "
             "within each seed, order rotated by seed.", "",
             "Hypervolume: final (fully trained), ok records within the budget only, on "
             "(val accuracy max, params min), against ONE fixed reference point for every arm "
             f"and seed: accuracy {ref['val_accuracy']:g}, params {ref['params']:,.0f} (= "
             f"{REFERENCE_FACTOR} x {s['largest_params']:,}, the largest network the space "
             "builds), divided by the reference box, so 1.0 would be 100% accuracy at 0 "
             "parameters.", "",
             "MOASHA samples configurations from numpy's global RNG: the arm seeds it with "
             "`np.random.seed(seed)` and restores the previous state afterwards."]
    for arm, why in s.get("skipped_arms", {}).items():
        lines += ["", f"**Arm {arm} skipped**: {why}."]
    return lines


def _seeds(meta: dict[str, Any], summary: dict[str, Any]) -> list[int]:
    return [p["seed"] for p in summary["equal_epochs"]]


def _tables(summary: dict[str, Any], out: Path) -> list[str]:
    arms = summary["arms"]
    lines = ["## Final hypervolume", "", "Median [IQR] over seeds, records within the budget.",
             "", "| arm | final HV | epochs spent | records | final records | cached | "
             "fraction of budget to reach Optuna's final median HV | seeds reaching it |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for arm, s in arms.items():
        reach = s.get("reach_target")
        seeds = f"{reach['seeds_reached']} of {reach['seeds']}" if reach else "-"
        lines.append(f"| {ARM_LABELS[arm]} | {_q(s['final_hv'])} | {_q(s['spent'], '{:.0f}')} | "
                     f"{_q(s['records'], '{:.0f}')} | {_q(s['final'], '{:.0f}')} | "
                     f"{_q(s['cached'], '{:.0f}')} | "
                     f"{_q(reach['fraction'], '{:.2f}') if reach else '-'} | "
                     f"{seeds} |")
    grid = summary["grid"]
    lines += ["", "## Hypervolume against cumulative epochs", "",
              "Median [IQR] over seeds on a common grid of cumulative training epochs.", "",
              "| epochs | " + " | ".join(ARM_LABELS[a] for a in arms) + " |",
              "| --- " * (len(arms) + 1) + "|"]
    for g, x in enumerate(grid):
        lines.append(f"| {x} | " + " | ".join(_q(arms[a]["grid"][g]["hv"]) for a in arms) + " |")
    lines += ["", f"![hypervolume vs epochs]({out.with_suffix('.png').name})", "",
              "## Per seed, at equal epochs", "",
              "Each seed's arms cut at the fewest epochs any of its arms spent within the "
              "budget.", "", "| seed | epochs | " + " | ".join(ARM_LABELS[a] for a in arms)
              + " |", "| --- " * (len(arms) + 2) + "|"]
    for p in summary["equal_epochs"]:
        lines.append(f"| {p['seed']} | {p['epochs']} | "
                     + " | ".join(f"{p[a]:.4f}" for a in arms) + " |")
    return lines


def _frac(x: Any) -> str:
    return "-" if x is None else ("not reached" if x == "inf" else f"{x:.2f}")


def _met(v: Any) -> str:
    return "**met**" if v else "**not met**"


def _targets(v: dict[str, Any]) -> list[str]:
    kept = ARM_LABELS[v.get("kept", "nsga2_sh")]
    lines = ["", "## Targets", "",
             f"Judged on {kept}, the promotion order measured better (below), which is "
             "`SuccessiveHalving`'s default.", ""]
    t1 = v.get("sh_half_epochs")
    how = (f"{_met(t1['met'])} (median fraction {_frac(t1['median_fraction'])}, reached in "
           f"{t1['seeds_reached']} of {t1['seeds']} seeds)") if t1 else \
        "not measured (an arm is missing)"
    lines.append("1. NSGA-II + SH reaches Optuna's final median hypervolume with at most 1/2 "
                 f"of its epochs: {how}.")
    t2 = v.get("sh_vs_optuna")
    lines.append("2. At equal epochs NSGA-II + SH >= Optuna in at least 8 of 10 seeds (here "
                 f"{SEED_SHARE:.0%} of the seeds): " + (
                     f"{_met(t2['met'])} ({t2['ours_at_least_as_good_in']} of {t2['seeds']}, "
                     f"needed {t2['needed_seeds']}; median difference {t2['median_diff']:+.4f})"
                     if t2 else "not measured (an arm is missing)") + ".")
    t3 = v.get("sh_vs_moasha_median")
    lines.append("3. NSGA-II + SH's median final hypervolume >= MOASHA's: " + (
        f"{_met(t3['met'])} ({t3['ours']:.4f} vs {t3['moasha']:.4f})" if t3
        else "not measured (an arm is missing)") + ".")
    ce = v.get("crowding_vs_epsilon")
    if ce:
        better = "crowding" if ce["median_diff"] > 0 else (
            "epsilon" if ce["median_diff"] < 0 else "neither")
        lines.append(f"- Crowding vs epsilon promotion (paired, at equal epochs): median "
                     f"difference {ce['median_diff']:+.4f}, crowding >= epsilon in "
                     f"{ce['ours_at_least_as_good_in']} of {ce['seeds']} seeds: better by the "
                     f"median: {better}" + ("" if ce["consistent"] else
                                            " (seeds on both sides of 0: not a consistent "
                                            "difference)") + ".")
    full = v.get("sh_vs_full")
    if full:
        lines.append(f"- NSGA-II + SH vs NSGA-II at full training: median difference "
                     f"{full['median_diff']:+.4f}, SH >= full in "
                     f"{full['ours_at_least_as_good_in']} of {full['seeds']} seeds.")
    return lines + [""]


def _constraint(summary: dict[str, Any], meta: dict[str, Any]) -> list[str]:
    rows = summary.get("constraint")
    if not rows:
        return []
    s = meta["setting"]
    n, seed = s["constraint_sample"]["genomes"], s["constraint_sample"]["seed"]
    lines = ["## Constraint run", "",
             f"NSGA-II + SH with `{s['constraint']}` (the median parameter count of {n} "
             f"random genomes, numpy default_rng({seed}), never trained). An infeasible "
             "candidate is logged with 0 epochs and never trained; saved epochs: what each "
             "distinct one would have cost at its first rung (1 epoch) and at full training "
             f"({s['epochs']} epochs).", "",
             "| seed | records | infeasible | distinct infeasible | saved (first rung) | "
             "saved (full) | final | feasible HV |", "| --- " * 8 + "|"]
    for r in rows:
        lines.append(f"| {r['seed']} | {r['records']} | {r['infeasible']} | "
                     f"{r['distinct_infeasible']} | {r['saved_first_rung']} | {r['saved_full']}"
                     f" | {r['final']} | {r['feasible_hv']:.4f} |")
    hv = quartiles([r["feasible_hv"] for r in rows])
    return lines + ["", f"Feasible front's hypervolume, median [IQR]: {_q(hv)}.", ""]


def report(meta: dict[str, Any], summary: dict[str, Any], v: dict[str, Any], out: Path) -> str:
    """The Markdown page of a run (also of a saved one: ``--from-json``)."""
    lines = [f"# Multi-objective search with successive halving at equal epochs "
             f"(cpu, {meta['date']})", "", *provenance_lines(meta), "",
             *_setting(meta, summary), "", *_tables(summary, out), *_targets(v),
             *_constraint(summary, meta)]
    if meta.get("reading"):
        lines += ["## Reading", "", meta["reading"].strip(), ""]
    return "\n".join(lines) + "\n"


def write_outputs(meta: dict[str, Any], runs: dict[str, Any], out: Path) -> str:
    """Analyse ``runs``, plot, and write ``out``.json, .md and .png; returns the Markdown."""
    summary = analyse(runs, meta["setting"])
    v = verdicts(summary, len(summary["equal_epochs"]))
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(summary, out.with_suffix(".png"))
    write_result(out.with_suffix(".json"), {**meta, "summary": summary, "verdicts": v,
                                            "runs": runs})
    text = report(meta, summary, v, out)
    out.with_suffix(".md").write_text(text)
    return text
