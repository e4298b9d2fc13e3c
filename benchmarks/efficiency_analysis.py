"""The statistics of ``search_efficiency.py``'s runs: incumbent traces, equal-compute pairs,
paired mean differences with bootstrap intervals, and the targets' verdicts (kept apart from
the arms so a saved run can be analysed again: ``search_efficiency.py --from-json FILE``)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from benchmarks.common import json_number, number, quartiles
from benchmarks.levers import LEVERS, split_arm

__all__ = ["ARM_LABELS", "FRACTIONS", "OURS", "analyse", "arm_counts", "at", "bootstrap_mean",
           "hyperband_counterpart",
           "paired", "t_interval", "trace", "verdicts"]

class _Labels(dict):
    """Arm -> label; an ablation arm ``base+lever+...`` is labelled from its parts."""

    def __missing__(self, arm: str) -> str:
        base, levers = split_arm(arm)
        if not levers:
            raise KeyError(arm)
        return " + ".join([self[base], *(LEVERS[name][0] for name in levers)])


ARM_LABELS = _Labels({"ga": "GA (full fidelity)", "ga_sh": "GA + SH",
              "ga_inherit": "GA + heredity", "ga_sh_inherit": "GA + SH + heredity",
              "re": "regularized evolution", "re_asha": "RE + ASHA",
              "re_asha_inherit": "RE + ASHA + heredity", "random": "random search",
              "ga_hb": "GA + Hyperband", "ga_hb_inherit": "GA + Hyperband + heredity",
              "re_hb": "RE + async Hyperband",
              "re_hb_inherit": "RE + async Hyperband + heredity",
              "optuna": "Optuna TPE + Hyperband", "dehb": "DEHB"})
OURS = ("ga", "ga_sh", "ga_inherit", "ga_sh_inherit", "re", "re_asha", "re_asha_inherit",
        "ga_hb", "ga_hb_inherit", "re_hb", "re_hb_inherit")
BASELINES = ("random", "optuna", "dehb")
TARGET_ARM = "ga_sh_inherit"  # the arm the speed target is judged on, named in advance
# Incumbent test accuracy is reported at these fractions of the epoch budget.
FRACTIONS = (1 / 8, 1 / 4, 1 / 2, 3 / 4, 1.0)
EXTRA_PAIRS = (("ga_sh", "ga"), ("ga_sh_inherit", "ga"), ("ga_sh_inherit", "ga_sh"),
               ("re_asha_inherit", "re_asha"), ("re_asha", "ga_sh"), ("optuna", "random"),
               ("dehb", "random"), ("dehb", "optuna"))


def hyperband_counterpart(arm: str) -> str:
    """The one-ladder arm a Hyperband arm is judged against: ``ga_hb...`` -> ``ga_sh...``,
    ``re_hb...`` -> ``re_asha...`` (levers kept)."""
    return arm.replace("ga_hb", "ga_sh", 1).replace("re_hb", "re_asha", 1)


def trace(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """After each record: cumulative epochs and seconds, and the incumbent's accuracies (an
    event with ``new_incumbent`` carries its whole-test-set accuracy)."""
    out, epochs, seconds, val, test = [], 0, 0.0, None, None
    for ev in events:
        epochs += ev["epochs"]
        seconds += ev["seconds"]
        if ev.get("new_incumbent"):
            val, test = ev["val_accuracy"], ev["test_accuracy"]
        out.append({"epochs": epochs, "seconds": seconds, "val": val, "test": test})
    return out


def at(tr: list[dict[str, Any]], budget: float, key: str = "epochs") -> float:
    """Incumbent test accuracy among the records finished within ``budget`` (NaN: none yet)."""
    value = math.nan
    for p in tr:
        if p[key] > budget + 1e-9:
            break
        value = math.nan if p["test"] is None else p["test"]
    return value


def first_reach(tr: list[dict[str, Any]], target: float) -> float:
    """Cumulative epochs when the incumbent's test accuracy first reached ``target`` (inf:
    never)."""
    for p in tr:
        if p["test"] is not None and p["test"] >= target - 1e-12:
            return float(p["epochs"])
    return math.inf


def arm_counts(run: dict[str, Any]) -> dict[str, Any]:
    ev = run["events"]
    return {"candidates": len({e["index"] for e in ev}),
            "trainings": sum(1 for e in ev if e["epochs"] > 0),
            "cached_records": sum(1 for e in ev if e["cached"]),
            "records": len(ev), "final_records": sum(1 for e in ev if e["final"]),
            "failed_records": sum(1 for e in ev if e["status"] != "ok"),
            "incumbents": sum(1 for e in ev if e.get("new_incumbent")),
            "epochs": sum(e["epochs"] for e in ev),
            "seconds": sum(e["seconds"] for e in ev)}


def bootstrap_mean(diffs: list[float], n: int = 10_000, seed: int = 0) -> list[float]:
    """The 95% percentile bootstrap interval of the mean of ``diffs`` (seeds resampled)."""
    d = np.asarray(diffs, dtype=float)
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(n, d.size))].mean(axis=1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def t_interval(diffs: list[float]) -> list[float]:
    """Student's t 95% interval of the mean of ``diffs`` (the percentile bootstrap is
    narrower with few seeds: about 90% coverage at 8)."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    half = float(stats.t.ppf(0.975, d.size - 1) * d.std(ddof=1) / np.sqrt(d.size))
    return [float(d.mean()) - half, float(d.mean()) + half]


def paired(cuts: list[dict[str, Any]], ours: str, other: str) -> dict[str, Any]:
    """``ours - other`` at equal epochs, paired by seed: mean, bootstrap and t 95% intervals,
    the seeds each way; ``separated`` when both intervals exclude 0."""
    diffs = [number(p[ours]) - number(p[other]) for p in cuts]
    if not diffs or any(math.isnan(d) for d in diffs):
        return {"ours": ours, "other": other, "diffs": [json_number(d) for d in diffs],
                "mean": None, "note": "an arm had no incumbent at the cut in some seed"}
    low, high = bootstrap_mean(diffs)
    t = t_interval(diffs) if len(diffs) > 1 else [math.nan, math.nan]
    return {"ours": ours, "other": other, "diffs": diffs, "mean": float(np.mean(diffs)),
            "ci95": [low, high], "t95": t, "wins": sum(d > 0 for d in diffs),
            "ties": sum(d == 0 for d in diffs), "losses": sum(d < 0 for d in diffs),
            "seeds": len(diffs),
            "separated": len(diffs) > 1 and bool(min(low, t[0]) > 0 or max(high, t[1]) < 0)}


def _reach(traces: list[list[dict[str, Any]]], ga: list[list[dict[str, Any]]],
           target: float) -> dict[str, Any]:
    reach = [first_reach(tr, target) for tr in traces]
    fractions = [r / g[-1]["epochs"] for r, g in zip(reach, ga, strict=True)]
    return {"epochs": quartiles(reach), "fraction_of_ga_epochs": quartiles(fractions),
            "seeds_reached": sum(math.isfinite(r) for r in reach), "seeds": len(reach)}


def analyse(runs: dict[str, list[dict[str, Any]]], budget: int) -> dict[str, Any]:
    """Per arm: final and equal-epoch accuracy, counts, accuracy along the budget, the
    epochs needed to reach the full GA's final median; per seed: the equal-epoch cut."""
    arms = list(runs)
    traces = {arm: [trace(r["events"]) for r in runs[arm]] for arm in arms}
    final = {arm: [number(tr[-1]["test"]) if tr else math.nan for tr in traces[arm]]
             for arm in arms}
    cuts = []
    for i, run in enumerate(runs[arms[0]]):
        cut = min(traces[arm][i][-1]["epochs"] if traces[arm][i] else 0 for arm in arms)
        cuts.append({"seed": run["seed"], "epochs": cut,
                     **{arm: json_number(at(traces[arm][i], cut)) for arm in arms}})
    target = None
    if "ga" in runs and not any(math.isnan(v) for v in final["ga"]):
        target = float(np.median(final["ga"]))
    out: dict[str, Any] = {"budget_epochs": budget, "equal_epochs": cuts, "arms": {},
                           "target_accuracy": target}
    for arm in arms:
        counts = [arm_counts(r) for r in runs[arm]]
        wall = sum(r["wall_seconds"] for r in runs[arm])
        out["arms"][arm] = {
            "final_test_accuracy": quartiles(final[arm]),
            "equal_epochs_test_accuracy": quartiles([number(c[arm]) for c in cuts]),
            "mean_equal_epochs_test_accuracy": json_number(float(np.mean(
                [number(c[arm]) for c in cuts]))),
            "counts": {k: quartiles([c[k] for c in counts]) for k in counts[0]},
            "test_scoring_share_of_wall": sum(r.get("test_seconds", 0.0)
                                              for r in runs[arm]) / wall if wall else None,
            "at_fraction_of_budget": [
                {"fraction": f, "epochs": f * budget,
                 "test_accuracy": quartiles([at(tr, f * budget) for tr in traces[arm]])}
                for f in FRACTIONS],
            "reach_target": None if target is None else _reach(traces[arm], traces["ga"],
                                                               target)}
    return out


def verdicts(summary: dict[str, Any], space: str) -> dict[str, Any]:
    """Every arm against each baseline that ran, the extra pairs, and the issue's targets."""
    arms, cuts = list(summary["arms"]), summary["equal_epochs"]
    wanted = [(a, b) for b in BASELINES for a in arms if a not in BASELINES]
    wanted += [(a, split_arm(a)[0]) for a in arms if split_arm(a)[1]]  # a lever against none
    wanted += [(a, hyperband_counterpart(a)) for a in arms if "_hb" in split_arm(a)[0]]
    pairs = {f"{a}-{b}": paired(cuts, a, b) for a, b in (*wanted, *EXTRA_PAIRS)
             if a in arms and b in arms}
    targets: dict[str, Any] = {}
    key = "ga_sh_inherit-random"
    if space == "devol" and key in pairs:
        v = pairs[key]
        targets["heredity_beats_random"] = {
            "target": "DEvol's space: GA + SH + heredity minus random search, 95% interval "
                      "above 0 (bootstrap and t)", "pair": key,
            "met": None if v["mean"] is None else bool(min(v["ci95"][0], v["t95"][0]) > 0)}
    reach = summary["arms"].get(TARGET_ARM, {}).get("reach_target")
    if reach is not None:
        fraction = number(reach["fraction_of_ga_epochs"]["median"])
        targets["quarter_of_ga_epochs"] = {
            "target": "the full GA's final median test accuracy reached with at most 1/4 of "
                      "its epochs (median over seeds; the arm named in advance)",
            "arm": TARGET_ARM, "median_fraction": json_number(fraction),
            "met": bool(fraction <= 0.25 + 1e-9)}
    return {"pairs": pairs, "targets": targets}
