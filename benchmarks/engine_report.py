"""The Markdown page of ``engine_bench.py``'s result (``engine.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import fmt_spread

__all__ = ["write_markdown"]


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    c, m, d, big = report["config"], report["machine"], report["devol_setting"], report["large"]
    lines = [
        "# Evolution engine: ask+tell overhead", "",
        f"{m['date']} · {m['cpu']} · {m['cpu_count']} CPUs (shared with other jobs) · "
        f"Python {m['python']} · numpy {m['numpy']} · load average "
        f"{' '.join(m['loadavg_at_start'] or [])} at start, "
        f"{' '.join(m['loadavg_at_end'] or [])} at the end · {report['wall_s']} s in all · "
        f"code: git {m['code']['git_head']}"
        + (" + uncommitted changes in pytorch_devol/"
           if m["code"]["pytorch_devol_uncommitted_changes"] else "")
        + f" (pytorch_devol sha256 {m['code']['pytorch_devol_sha256']}).", "",
        f"Command: `{report['command']}`. Genome layout: {c['space']}, {c['length']} positions. "
        "Cells: median over interleaved rounds (min-max).", "",
        f"## DEvol's setting: population {c['devol_population']}, a whole search of "
        f"{c['devol_generations']} generations ({c['devol_rounds']} rounds)", "",
        "| implementation | all asks and tells of one search |", "| --- | --- |",
        f"| ours: GeneticAlgorithm + key=schema.key (as Search) | "
        f"{fmt_spread(d['ours_ga_key'], 2, 1000)} ms |",
        f"| ours: GeneticAlgorithm, no key | {fmt_spread(d['ours_ga'], 2, 1000)} ms |",
        f"| DEvol's operators (as DEvol) | {fmt_spread(d['devol'], 2, 1000)} ms |", "",
        f"Ours (as Search) against DEvol's operators: "
        f"{d['devol_vs_ours_ga_key']['verdict']}; the difference is "
        f"{fmt_spread(d['difference_ms_per_search'], 1)} ms per whole search, against the "
        f"minutes to hours of training its {c['devol_population'] * c['devol_generations']} "
        "candidates take: at DEvol's own scale the engine's speed does not matter.", "",
        f"## Large population: {c['population']:,} genomes, one generation per round "
        f"({c['rounds']} rounds)", "",
        "| implementation | per generation | ask | tell | vs ours as Search |",
        "| --- | --- | --- | --- | --- |",
    ]
    labels = [("ours_ga_key", "ours: GeneticAlgorithm + key=schema.key (as Search)"),
              ("ours_ga", "ours: GeneticAlgorithm, no key"),
              ("devol_bisect", "DEvol's operators, bisect select (per-genome Python at best)"),
              ("devol", "DEvol's operators, as DEvol (linear select)")]
    for name, label in labels:
        x = big[name]
        vs = "1x" if name == "ours_ga_key" else fmt_spread(big[f"{name}_vs_ours_ga_key"], 2) + "x"
        lines.append(f"| {label} | {fmt_spread(x['total'], 1, 1000)} ms | "
                     f"{fmt_spread(x['ask'], 1, 1000)} ms | {fmt_spread(x['tell'], 1, 1000)} ms "
                     f"| {vs} |")
    lines += [
        "",
        f"- DEvol (as DEvol) vs ours as Search: {big['devol_vs_ours_ga_key']['verdict']}.",
        f"- Per-genome Python with bisect selection vs ours as Search: "
        f"{big['devol_bisect_vs_ours_ga_key']['verdict']}.",
        f"- Without the key a generation takes {fmt_spread(big['ours_ga_vs_ours_ga_key'], 2)}x "
        "the time: at this size the key (the canonical genome, per-genome Python) is most of "
        "the cost of ours as Search.",
        f"- RegularizedEvolution with key=schema.key: a whole population asked and told as "
        f"one batch {fmt_spread(big['ours_re_batch']['total'], 1, 1000)} ms; one genome at a "
        f"time {fmt_spread(big['ours_re_single']['total'], 0, 1e6)} µs per ask+tell "
        f"(population {c['re_single_population']}, {c['single_steps']} steps per round).",
        "",
    ]
    path.write_text("\n".join(lines))
