"""The Markdown page and the plot of ``search_efficiency.py``'s runs (the statistics are
``efficiency_analysis.py``)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import fmt_quartiles, number, provenance_lines, write_result
from benchmarks.efficiency_analysis import (
    ARM_LABELS,
    analyse,
    arm_counts,
    trace,
    verdicts,
)

__all__ = ["ARM_LABELS", "arm_counts", "report", "write_outputs"]

_q = fmt_quartiles


def plot(runs: dict[str, Any], path: Path, budget: int) -> str | None:
    """Median incumbent test accuracy against cumulative epochs; a note when matplotlib is
    missing (then no PNG)."""
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed: no plot"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from benchmarks.efficiency_analysis import at

    fig, ax = plt.subplots(figsize=(8, 4.8))
    grid = np.arange(0, budget + 1)
    for arm, arm_runs in runs.items():
        traces = [trace(r["events"]) for r in arm_runs]
        med = [np.median(v) if not any(map(math.isnan, v := [at(t, x) for t in traces]))
               else np.nan for x in grid]
        ax.step(grid, med, where="post", label=ARM_LABELS[arm])
    ax.set_xlabel("cumulative training epochs")
    ax.set_ylabel("incumbent's test accuracy (median over seeds)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


def _setting(meta: dict[str, Any], seeds: list[int], budget: int) -> list[str]:
    s = meta["setting"]
    return [f"Data: {meta['data']} (validation taken from the rest of the training set). "
            f"Space: `{meta['schema']}` ({meta['space_genes']} genes). Every network trains "
            f"at most {s['epochs']} epochs (`TrainConfig(patience=None)`), with the training "
            f"seed `candidate_seed(seed, canonical key)` in every arm. Every arm has the same "
            f"budget of {budget} cumulative training epochs and runs until it has spent it; "
            f"population {s['population']}. Fidelity: rungs from {s['min_epochs']} epoch, "
            f"eta {s['eta']} (`SuccessiveHalving` / `ASHA`; Optuna `HyperbandPruner("
            f"min_resource={s['min_epochs']}, max_resource={s['epochs']}, reduction_factor="
            f"{s['eta']})`; DEHB `min_fidelity={s['min_epochs']}, max_fidelity={s['epochs']}, "
            f"eta={s['eta']}`); a promoted network continues where it paused in every arm. "
            f"{len(seeds)} seeds ({', '.join(map(str, seeds))}), arms interleaved within "
            f"each seed, order rotated by seed; {s['threads']} torch thread.", "",
            "Incumbent: the network with the best validation accuracy among those trained the "
            f"full {s['epochs']} epochs; each new incumbent is scored once on the whole test "
            f"set (the searches see a {s['placeholder_test']}-image placeholder test part). "
            "Equal epochs: each seed's arms cut at the largest cumulative epoch count all arms "
            "of that seed reached. Differences: paired by seed, mean with a bootstrap 95% "
            "interval (10,000 resamples of the seeds), and seeds better / tied / worse."]


def _arm_table(summary: dict[str, Any], runs: dict[str, Any]) -> list[str]:
    lines = ["## Per arm", "", "Median [IQR] over seeds.", "",
             "| arm | test acc at equal epochs (mean) | final test acc | epochs | candidates "
             "| trainer calls | incumbents | wall s | test scoring share |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for arm in runs:
        a = summary["arms"][arm]
        c = a["counts"]
        wall = _q({"median": float(np.median([r["wall_seconds"] for r in runs[arm]])),
                   "iqr": list(np.percentile([r["wall_seconds"] for r in runs[arm]],
                                             [25, 75]))}, "{:.0f}")
        share = a["test_scoring_share_of_wall"]
        lines.append(f"| {ARM_LABELS[arm]} | {_q(a['equal_epochs_test_accuracy'])} "
                     f"({number(a['mean_equal_epochs_test_accuracy']):.4f}) | "
                     f"{_q(a['final_test_accuracy'])} | {_q(c['epochs'], '{:.0f}')} | "
                     f"{_q(c['candidates'], '{:.0f}')} | {_q(c['trainings'], '{:.0f}')} | "
                     f"{_q(c['incumbents'], '{:.0f}')} | {wall} | "
                     + ("-" if share is None else f"{share:.1%}") + " |")
    return lines


def _pair_line(v: dict[str, Any]) -> str:
    name = f"{ARM_LABELS[v['ours']]} − {ARM_LABELS[v['other']]}"
    if v["mean"] is None:
        return f"| {name} | - | - | - | {v['note']} |"
    bold = "**" if v["separated"] else ""
    t = v.get("t95") or [math.nan, math.nan]
    return (f"| {name} | {bold}{100 * v['mean']:+.2f} [{100 * v['ci95'][0]:+.2f}, "
            f"{100 * v['ci95'][1]:+.2f}]{bold} | [{100 * t[0]:+.2f}, {100 * t[1]:+.2f}] | "
            f"{v['wins']} / {v['ties']} / {v['losses']} | "
            + ("both intervals exclude 0" if v["separated"] else "spans 0") + " |")


def _pairs(verdict: dict[str, Any]) -> list[str]:
    lines = ["", "## Paired differences at equal epochs", "",
             "Test accuracy points (x100): the mean paired difference with its percentile "
             "bootstrap 95% interval, and Student's t 95% interval (the bootstrap's covers "
             "about 90% at 8 seeds); bold where both exclude 0. With this many pairs, one or "
             "two may exclude 0 by chance when nothing differs.", "",
             "| difference | mean [bootstrap 95%] | t 95% | seeds better / tied / worse | "
             "reading |", "| --- | --- | --- | --- | --- |"]
    return lines + [_pair_line(v) for v in verdict["pairs"].values()]


def _reach(summary: dict[str, Any], arms: list[str]) -> list[str]:
    target = summary.get("target_accuracy")
    if target is None:
        return []
    lines = ["", "## Epochs to the full GA's final median", "",
             f"Epochs until the incumbent's test accuracy first reached {target:.4f} (the full "
             "GA's final median), as a fraction of that seed's full-GA epochs; never reached "
             "counts as infinitely slow.", "",
             "| arm | fraction of GA epochs | seeds reached |", "| --- | --- | --- |"]
    for arm in arms:
        r = summary["arms"][arm]["reach_target"]
        lines.append(f"| {ARM_LABELS[arm]} | {_q(r['fraction_of_ga_epochs'], '{:.3f}')} | "
                     f"{r['seeds_reached']} of {r['seeds']} |")
    return lines


def _along(summary: dict[str, Any], arms: list[str], out: Path, note: str | None) -> list[str]:
    budget = summary["budget_epochs"]
    fr = summary["arms"][arms[0]]["at_fraction_of_budget"]
    lines = ["", "## Along the budget", "",
             "| arm | " + " | ".join(f"{p['epochs']:.0f} epochs" for p in fr) + " |",
             "| --- " * (len(fr) + 1) + "|"]
    for arm in arms:
        lines.append(f"| {ARM_LABELS[arm]} | " + " | ".join(
            _q(p["test_accuracy"]) for p in summary["arms"][arm]["at_fraction_of_budget"])
            + " |")
    lines += ["", f"No plot: {note}." if note else
              f"![incumbent's test accuracy vs epochs ({budget})]({out.with_suffix('.png').name})",
              "", "## Per seed, at equal epochs", "",
              "| seed | epochs | " + " | ".join(ARM_LABELS[a] for a in arms) + " |",
              "| --- " * (len(arms) + 2) + "|"]
    for c in summary["equal_epochs"]:
        lines.append(f"| {c['seed']} | {c['epochs']} | " + " | ".join(
            "-" if c[a] is None else f"{number(c[a]):.4f}" for a in arms) + " |")
    return lines


def _targets(verdict: dict[str, Any]) -> list[str]:
    lines = ["", "## Targets", ""]
    for t in verdict["targets"].values():
        met = {True: "**met**", False: "**not met**", None: "**not evaluated**"}[t["met"]]
        extra = f" ({ARM_LABELS[t['arm']]}: median fraction {t['median_fraction']})" \
            if "arm" in t else ""
        if "pair" in t:
            extra = " (" + _pair_line(verdict["pairs"][t["pair"]]).strip("| ") + ")"
        lines.append(f"- {t['target']}: {met}{extra}.")
    return lines if verdict["targets"] else []


def report(meta: dict[str, Any], summary: dict[str, Any], runs: dict[str, Any],
           verdict: dict[str, Any], out: Path) -> str:
    """The Markdown page of a run (also of a saved one: ``--from-json``)."""
    arms = list(runs)
    seeds = [r["seed"] for r in runs[arms[0]]]
    s = meta["setting"]
    lines = [f"# Search efficiency: {s['dataset']}, space {s['space']} ({meta['date']})", "",
             *provenance_lines(meta), "", *_setting(meta, seeds, summary["budget_epochs"]),
             "", *_arm_table(summary, runs), *_pairs(verdict), *_reach(summary, arms),
             *_along(summary, arms, out, meta.get("plot_note")), *_targets(verdict)]
    if meta.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in meta["notes"]]
    if meta.get("reading"):
        lines += ["", "## Reading", "", meta["reading"].strip()]
    return "\n".join(lines) + "\n"


def write_outputs(meta: dict[str, Any], runs: dict[str, Any], out: Path) -> str:
    """Analyse ``runs``, plot, and write ``out``.json, .md and .png; returns the Markdown."""
    summary = analyse(runs, meta["setting"]["budget"])
    verdict = verdicts(summary, meta["setting"]["space"])
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {**meta, "plot_note": plot(runs, out.with_suffix(".png"), summary["budget_epochs"])}
    write_result(out.with_suffix(".json"),  # first: a failing report cannot lose it
                 {**meta, "summary": summary, "verdicts": verdict, "runs": runs})
    text = report(meta, summary, runs, verdict, out)
    out.with_suffix(".md").write_text(text)
    return text
