"""The summary and the Markdown page of ``train_throughput.py``'s measurements: per-round
totals, ratios with their verdicts, paired accuracy differences."""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any

from benchmarks.common import (
    fmt_spread,
    provenance_lines,
    ratio_spread,
    spread,
    write_result,
)


def summarise(records: list[dict[str, Any]], ways: list[str], n_images: int, rounds_done: int,
              flops: bool) -> dict[str, Any]:
    """Per-round totals over the genomes that trained in every way of every counted round."""
    if rounds_done >= 1:
        rounds, partial = list(range(rounds_done)), False
    else:  # the budget ran out inside round 0: use the genomes it finished
        rounds, partial = [0], True

    def run_of(rec: dict[str, Any], way: str, r: int) -> dict[str, Any] | None:
        return next((x for x in rec["runs"][way] if x["round"] == r), None)

    usable = [rec for rec in records
              if all((x := run_of(rec, w, r)) is not None and x["status"] == "ok"
                     for w in ways for r in rounds)]
    out: dict[str, Any] = {
        "rounds_counted": len(rounds), "partial_round": partial,
        "genomes_counted": len(usable), "genomes_drawn": len(records),
        "images_per_genome": n_images, "ways": {}, "ratios": {},
    }
    per_round = {w: [sum(run_of(rec, w, r)["seconds"] for rec in usable) for r in rounds]
                 if usable else [] for w in ways}  # no genome: no timing (not 0 s)
    total_flops = sum(rec.get("flops", 0.0) for rec in usable)
    for w in ways:
        secs = per_round[w]
        entry: dict[str, Any] = {
            "seconds_per_round": spread(secs),
            "images_per_s": spread(n_images * len(usable) / s for s in secs if s > 0),
        }
        if flops and usable:
            entry["tflops_per_s"] = spread(total_flops / s / 1e12 for s in secs if s > 0)
        runs = [x for rec in records for x in rec["runs"][w] if x["round"] in rounds]
        accs = [x["test_accuracy"] for x in runs if x["status"] == "ok"]
        entry["mean_test_accuracy"] = statistics.fmean(accs) if accs else math.nan
        entry["failed"] = sum(x["status"] != "ok" for x in runs)
        out["ways"][w] = entry
    pairs = [(a, b) for a, b in (("tuned", "ours"), ("tutorial", "ours"), ("tutorial", "tuned"))
             if a in ways and b in ways]
    for a, b in pairs:
        ratios = ratio_spread((sa / sb for sa, sb in zip(per_round[a], per_round[b],
                                                        strict=True) if sb > 0), "faster")
        per_genome = []
        for rec in usable:
            per_genome.append(statistics.median(
                run_of(rec, a, r)["seconds"] / run_of(rec, b, r)["seconds"] for r in rounds))
        ratios["per_genome_median_min_max"] = (
            [statistics.median(per_genome), min(per_genome), max(per_genome)]
            if per_genome else None)
        # Accuracy: the same (genome, seed) trained both ways.
        diffs = [run_of(rec, b, r)["test_accuracy"] - run_of(rec, a, r)["test_accuracy"]
                 for rec in usable for r in rounds]
        ratios["test_accuracy_diff"] = {
            "what": f"{b} minus {a}, paired by (genome, seed)", "pairs": len(diffs),
            "mean": statistics.fmean(diffs) if diffs else math.nan,
            "sd": statistics.stdev(diffs) if len(diffs) > 1 else math.nan,
            "stderr": (statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1
                       else math.nan),
            "min": min(diffs) if diffs else math.nan, "max": max(diffs) if diffs else math.nan}
        out["ratios"][f"{b}_vs_{a}"] = ratios
    return out


def write(result: dict[str, Any], out_dir: Path, tag: str) -> None:
    s, st = result["summary"], result["settings"]
    flops = "matmul_tflops" in s
    rounds = (f"{s['rounds_counted']} interleaved round(s)" if not s["partial_round"] else
              "a PARTIAL first round (the time budget ran out)")
    if not s["genomes_counted"]:
        rounds = "NOTHING MEASURED: no genome trained in every way within the time budget"
    lines = [
        f"# Training throughput ({tag})", "",
        *provenance_lines(result), "",
        f"{s['genomes_counted']} of {s['genomes_drawn']} genomes (seed {st['seed']}) from "
        f"GenomeSchema.devol(max_conv_layers={st['max_conv_layers']}, max_dense_layers="
        f"{st['max_dense_layers']}, max_filters={st['max_filters']}, max_dense_nodes="
        f"{st['max_dense_nodes']}); {st['data']}; {st['epochs']} epoch(s), batch "
        f"{st['batch_size']}, no early stopping, last weights kept; every way includes build, "
        f"per-epoch validation and test. {rounds}; round r trains with seed {st['seed']} + r, "
        "the order of the ways rotating per genome and round. Cells: median over rounds "
        "(min-max).", "",
        "| way | seconds per round | images/s | mean test acc |" + (
            " TFLOP/s | % of bf16 matmul | % of fp32 matmul |" if flops else ""),
        "| --- | --- | --- | --- |" + (" --- | --- | --- |" if flops else ""),
    ]
    for way, w in s["ways"].items():
        row = (f"| {way} | {fmt_spread(w['seconds_per_round'], 1)} | "
               f"{fmt_spread(w['images_per_s'], 0)} | {w['mean_test_accuracy']:.4f} |")
        if flops and "tflops_per_s" in w:
            row += (f" {fmt_spread(w['tflops_per_s'], 4)} | "
                    f"{100 * w['fraction_of_bf16_matmul']:.1f} | "
                    f"{100 * w['fraction_of_fp32_matmul']:.1f} |")
        lines.append(row)
    lines.append("")
    for name, r in s["ratios"].items():
        b, a = name.split("_vs_")
        acc = r["test_accuracy_diff"]
        pg = r["per_genome_median_min_max"]
        lines.append(f"- **{b} vs {a}**: {r['verdict']}"
                     + (f"; per genome median {pg[0]:.2f}x (min {pg[1]:.2f}, max {pg[2]:.2f})"
                        if pg else "")
                     + (f". Test accuracy, {acc['what']} ({acc['pairs']} pairs): mean "
                        f"{acc['mean']:+.4f} (sd {acc['sd']:.4f}, standard error "
                        f"{acc['stderr']:.4f}, range {acc['min']:+.3f} to {acc['max']:+.3f})."
                        if acc["pairs"] else ": no pairs."))
    if flops:
        pk = s["matmul_tflops"]
        lines += ["", f"Measured dense matmul rate ({pk.get('size', '?')} x "
                  f"{pk.get('size', '?')}, same device and threads, median of "
                  f"{pk['bf16']['n']}): bf16 {fmt_spread(pk['bf16'], 3)} TFLOP/s, fp32 "
                  f"{fmt_spread(pk['fp32'], 3)} TFLOP/s."]
    lines += ["", f"Ours and tuned: bf16 autocast={st['bf16']}, channels_last="
              f"{st['channels_last']}, evaluation batch {st['eval_batch_size']}. Tutorial: fp32, "
              f"evaluation batch {st['batch_size']}. See the script's docstring for each way.",
              ""]
    failed = {way: w["failed"] for way, w in s["ways"].items() if w["failed"]}
    if failed:
        lines += [f"**Failed runs** (left out of every timing; see the JSON): {failed}.", ""]
    if s["stopped_by_time_budget"]:
        lines += [f"Stopped by --max-minutes {st['max_minutes']}: rounds not completed are "
                  "left out.", ""]
    if not s["genomes_counted"]:
        lines += [f"**{s['outcome']}**: no timing, ratio or matmul rate to report "
                  f"({s.get('matmul_tflops_skipped', 'see the JSON')}).", ""]
    if st.get("note"):
        lines += ["## Notes", ""] + [f"- {n}" for n in st["note"]] + [""]
    path = write_result(out_dir / f"train_throughput_{tag}.json", result, "\n".join(lines))
    print(f"wrote {path} and {path.with_suffix('.md')}")
