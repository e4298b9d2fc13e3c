"""The analysis, table and plot of ``multi_objective.py``'s runs (kept apart from the arms so
a saved run can be re-rendered: ``multi_objective.py --from-json FILE``)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import (
    fmt_quartiles,
    paired_differences,
    provenance_lines,
    quartiles,
    write_result,
)
from pytorch_devol.evolution.pareto import hypervolume

DIRECTIONS = ("max", "min")
ARM_LABELS = {"ours": "ours (NSGA-II)", "random": "random search",
              "optuna": "Optuna NSGAIISampler"}
REFERENCE_FACTOR = 1.1

_q = fmt_quartiles

# -- analysis ------------------------------------------------------------------------------------

def hv_of(cands: list[dict[str, Any]], reference: tuple[float, float], log: bool = False
          ) -> float:
    """Hypervolume of the ok candidates, normalised by the reference box (0..1); ``log``:
    on log10(params) instead (reference box from params 1)."""
    pts = [(c["val_accuracy"], c["params"]) for c in cands
           if c["status"] == "ok" and c["val_accuracy"] is not None]
    if not pts:
        return 0.0
    arr = np.array(pts, dtype=np.float64)
    ref = np.array(reference, dtype=np.float64)
    if log:
        arr[:, 1], ref[1] = np.log10(arr[:, 1]), math.log10(ref[1])
    return float(hypervolume(arr, ref, directions=DIRECTIONS) / ((1.0 - ref[0]) * ref[1]))


def curve(cands: list[dict[str, Any]], population: int, reference: tuple[float, float],
          log: bool = False) -> list[dict[str, float]]:
    """Hypervolume, cumulative epochs and seconds at every generation boundary."""
    out = []
    for end in range(population, len(cands) + 1, population):
        prefix = cands[:end]
        out.append({"candidates": end, "epochs": sum(c["epochs"] for c in prefix),
                    "seconds": sum(c["train_seconds"] for c in prefix),
                    "hv": hv_of(prefix, reference, log)})
    return out


def hv_at_epochs(cands: list[dict[str, Any]], budget: int, reference: tuple[float, float],
                 log: bool = False) -> float:
    """Hypervolume of the candidates finished within ``budget`` cumulative training epochs."""
    spent, kept = 0, []
    for c in cands:
        spent += c["epochs"]
        if spent > budget:
            break
        kept.append(c)
    return hv_of(kept, reference, log)


def analyse(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace) -> dict[str, Any]:
    all_params = [c["params"] for rs in runs.values() for r in rs for c in r["candidates"]
                  if c["params"] is not None]
    reference = (0.0, REFERENCE_FACTOR * float(max(all_params)))
    out: dict[str, Any] = {"reference": {"val_accuracy": reference[0], "params": reference[1]}}
    for scale, log in (("linear", False), ("log10_params", True)):
        per_arm: dict[str, Any] = {}
        for arm, rs in runs.items():
            curves = [curve(r["candidates"], args.population, reference, log) for r in rs]
            boundaries = []
            for g in range(min(len(c) for c in curves)):
                boundaries.append({"generation": g + 1,
                                   "candidates": curves[0][g]["candidates"],
                                   **{k: quartiles([c[g][k] for c in curves])
                                      for k in ("epochs", "seconds", "hv")}})
            per_arm[arm] = {"boundaries": boundaries, "curves": curves}
        # Equal budget, paired by seed: the largest epoch count every arm of that seed reached.
        paired = []
        for i in range(len(runs["ours"])):
            seed = runs["ours"][i]["seed"]
            budget = min(sum(c["epochs"] for c in runs[arm][i]["candidates"]) for arm in runs)
            paired.append({"seed": seed, "epochs": budget, **{
                arm: hv_at_epochs(runs[arm][i]["candidates"], budget, reference, log)
                for arm in runs}})
        out[scale] = {"arms": per_arm, "equal_epochs": paired}
    return out


def verdict(paired: list[dict[str, Any]], other: str) -> dict[str, Any]:
    """Ours against ``other`` on the per-seed hypervolumes at equal epochs."""
    return {"other": other, **paired_differences([p["ours"] - p[other] for p in paired])}


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, x_key, x_label in ((axes[0], "epochs", "cumulative training epochs"),
                               (axes[1], "seconds", "cumulative training seconds")):
        for arm, s in summary["linear"]["arms"].items():
            b = s["boundaries"]
            x = [p[x_key]["median"] for p in b]
            y = [p["hv"]["median"] for p in b]
            err = [[p["hv"]["median"] - p["hv"]["iqr"][0] for p in b],
                   [p["hv"]["iqr"][1] - p["hv"]["median"] for p in b]]
            ax.errorbar(x, y, yerr=err, marker="o", capsize=3, label=ARM_LABELS[arm])
        ax.set_xlabel(x_label + " (median over seeds)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("hypervolume (normalised; median, IQR bars)")
    axes[0].legend(loc="lower right")
    fig.suptitle("Pareto front (val accuracy max, params min) vs training budget")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- report --------------------------------------------------------------------------------------

def _first_generation_note(runs: dict[str, Any], population: int) -> str:
    same = sum(
        [c["genome"] for c in a["candidates"][:population]]
        == [c["genome"] for c in b["candidates"][:population]]
        for a, b in zip(runs["ours"], runs["random"], strict=True))
    return (f"Ours and random search drew the same first generation in {same} of "
            f"{len(runs['ours'])} seeds (both sample it uniformly from numpy's "
            "default_rng(seed)): from the second generation on, the difference between them "
            "is what NSGA-II's selection and variation add. Optuna's first generation comes "
            "from its own random sampler.")


def _setting(meta: dict[str, Any], summary: dict[str, Any], runs: dict[str, Any],
             args: argparse.Namespace) -> list[str]:
    """What was run (data, space, budget, objectives, seeds) and how hypervolume is measured."""
    ref = summary["reference"]
    space = meta["setting"]["space"]
    return [f"{meta['data']}. Space: `GenomeSchema.devol(max_conv_layers="
            f"{space['max_conv_layers']}, max_dense_layers={space['max_dense_layers']}, "
            f"max_filters={space['max_filters']}, max_dense_nodes={space['max_dense_nodes']})`"
            f" ({meta['space_genes']} genes). Every arm: {args.generations} generations x "
            f"{args.population} = {args.generations * args.population} candidates, "
            f"{args.epochs} epochs each, `TrainConfig(patience=None)` (batch 128), the "
            f"training seed of a genome = `candidate_seed(seed, canonical key)` in every arm; a "
            f"genome already trained is a cached copy (no epochs, no seconds). Objectives: "
            f"validation accuracy (max), parameter count (min). {len(runs['ours'])} seeds "
            f"({', '.join(str(r['seed']) for r in runs['ours'])}), arms interleaved within "
            f"each seed, order rotated by seed.", "",
            f"Hypervolume: `pytorch_devol.evolution.pareto.hypervolume(points, reference, "
            f"directions=(\"max\", \"min\"))` over all ok candidates so far, one reference point "
            f"for every arm and seed: accuracy {ref['val_accuracy']:g}, params "
            f"{ref['params']:,.0f} (= {REFERENCE_FACTOR} x the largest parameter count of any "
            f"candidate in any arm), divided by the reference box (1 x {ref['params']:,.0f}) so "
            f"that 1.0 would be 100% accuracy at 0 parameters. Seconds are the candidates' "
            f"`train_seconds` (training only; this machine is shared, so seconds are noisy).",
            "", _first_generation_note(runs, args.population),
            "", "NSGA-II with successive halving (a multi-objective fidelity scheduler) is not "
            "available yet in pytorch_devol, so it is not an arm here."]


def _tables(summary: dict[str, Any], runs: dict[str, Any], args: argparse.Namespace,
            out: Path) -> list[str]:
    """Final hypervolume, hypervolume per generation boundary, the plot, per seed."""
    lin, lg = summary["linear"], summary["log10_params"]
    lines = ["## Final hypervolume", "",
             "Median [IQR] over seeds, after all candidates; equal-epochs column: each seed's arms "
             "cut at the largest cumulative epoch count all three reached (paired).", "",
             "| arm | final HV | epochs trained | train seconds | cached copies | HV at equal "
             "epochs | HV on log10(params) |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for arm in runs:
        last = lin["arms"][arm]["boundaries"][-1]
        cached = quartiles([sum(c["cached"] for c in r["candidates"]) for r in runs[arm]])
        eq = quartiles([p[arm] for p in lin["equal_epochs"]])
        lgf = lg["arms"][arm]["boundaries"][-1]["hv"]
        lines.append(f"| {ARM_LABELS[arm]} | {_q(last['hv'])} | {_q(last['epochs'], '{:.0f}')}"
                     f" | {_q(last['seconds'], '{:.0f}')} | {_q(cached, '{:.0f}')} | {_q(eq)} | "
                     f"{_q(lgf)} |")
    lines += ["", "## Hypervolume at each generation boundary", "",
              "Median [IQR] over seeds of cumulative epochs, cumulative training seconds and "
              "hypervolume after each generation (every "
              f"{args.population} candidates).", "",
              "| arm | generation | candidates | epochs | seconds | HV |",
              "| --- | --- | --- | --- | --- | --- |"]
    for arm in runs:
        for b in lin["arms"][arm]["boundaries"]:
            lines.append(f"| {ARM_LABELS[arm]} | {b['generation']} | {b['candidates']} | "
                         f"{_q(b['epochs'], '{:.0f}')} | {_q(b['seconds'], '{:.0f}')} | "
                         f"{_q(b['hv'])} |")
    lines += ["", f"![median hypervolume vs budget]({out.with_suffix('.png').name})", "",
              "## Per seed, at equal epochs", "",
              "| seed | epoch budget | " + " | ".join(ARM_LABELS[a] for a in runs) +
              " | ours - Optuna | ours - random |", "| --- " * (len(runs) + 4) + "|"]
    for p in lin["equal_epochs"]:
        lines.append(f"| {p['seed']} | {p['epochs']} | " + " | ".join(
            f"{p[a]:.4f}" for a in runs) + f" | {p['ours'] - p['optuna']:+.4f} | "
            f"{p['ours'] - p['random']:+.4f} |")
    return lines


def _target(verdicts: dict[str, Any]) -> list[str]:
    """The target's verdict (ours vs Optuna), against random search, on log10(params)."""
    v = verdicts["linear"]["optuna"]
    vr = verdicts["linear"]["random"]
    vl = verdicts["log10_params"]["optuna"]
    return ["", "## Target", "",
            f"- Ours at least as good as Optuna's NSGA-II at equal budget: "
            f"**{'met' if v['met'] else 'not met'}** on the median paired difference "
            f"(ours - Optuna at equal epochs: median {v['median_diff']:+.4f}; ours >= Optuna "
            f"in {v['ours_at_least_as_good_in']} of {v['seeds']} seeds; differences "
            + ", ".join(f"{d:+.4f}" for d in v["diffs"]) + "). "
            + ("Every seed lies on the same side of 0." if v["consistent"] else
               "The seeds lie on both sides of 0 (or at 0): no measurable difference at this "
               "number of seeds."),
            f"- Against random search: median {vr['median_diff']:+.4f}, ours >= random in "
            f"{vr['ours_at_least_as_good_in']} of {vr['seeds']} seeds.",
            f"- On log10(params) instead (a check that the verdict is not an artefact of the "
            f"linear parameter axis): ours - Optuna median {vl['median_diff']:+.4f}, ours >= "
            f"Optuna in {vl['ours_at_least_as_good_in']} of {vl['seeds']} seeds.", ""]


def report(meta: dict[str, Any], summary: dict[str, Any], runs: dict[str, Any],
           verdicts: dict[str, Any], args: argparse.Namespace, out: Path) -> str:
    """The Markdown page of a run (also of a saved one: ``--from-json``)."""
    lines = [f"# Multi-objective search at equal budget (cpu, {meta['date']})", "",
             *provenance_lines(meta), "", *_setting(meta, summary, runs, args), "",
             *_tables(summary, runs, args, out), *_target(verdicts)]
    if meta["setting"].get("random_strategy_maximize_workaround"):
        lines += ["## Notes", "",
                  "- `Search` rejected the random-search strategy object's per-objective "
                  "`maximize = (True, False)` (`_make_strategy` compares a strategy's `maximize` "
                  "with the single metric's bool even when `objectives` are given). The "
                  "benchmark built the search with the attribute hidden and set it afterwards; "
                  "nothing else reads it.", ""]
    if meta.get("reading"):
        lines += ["## Reading", "", meta["reading"].strip(), ""]
    return "\n".join(lines) + "\n"


def write_outputs(meta: dict[str, Any], runs: dict[str, Any], args: argparse.Namespace,
                  out: Path) -> str:
    """Analyse ``runs``, plot, and write ``out``.json, .md and .png; returns the Markdown."""
    summary = analyse(runs, args)
    verdicts = {scale: {other: verdict(summary[scale]["equal_epochs"], other)
                        for other in ("optuna", "random")}
                for scale in ("linear", "log10_params")}
    out.parent.mkdir(parents=True, exist_ok=True)
    plot(summary, out.with_suffix(".png"))
    write_result(out.with_suffix(".json"),
                 {**meta, "summary": summary, "verdicts": verdicts, "runs": runs})
    text = report(meta, summary, runs, verdicts, args, out)
    out.with_suffix(".md").write_text(text)
    return text
