"""Which configuration should ``Search`` and the CLI default to? The ablation of issue 30, read.

Reads ``search_efficiency.py`` results (each a file or several merged, ``+``-joined):

* ``--ablation``: the training-gene space on Fashion-MNIST, seeds 0-7: the base (GA + SH +
  heredity), each lever alone (``base+lever``), their combination, and the peers;
* ``--confirm``: the same data, fresh seeds 8-15: the picked default, the base and the peers;
* ``--second``: the second data set (MNIST), seeds 0-7: the picked default and the peers.

The pick was fixed before any result was read: each lever's paired mean difference against
the base on seeds 0-7; the levers above 0 are combined (the better of two heredity rules); the
combination is kept only if its mean beats the best single lever, else the best lever. As the
pick used seeds 0-7, the targets are judged on the fresh seeds (8-15), with all 16 pooled
reported beside them.

    python benchmarks/default_verdict.py --default ga_sh_inherit+point1 \
        --ablation A.json+B.json+C.json --confirm D.json+E.json --second F.json+G.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, merge_saved, now, write_result  # noqa: E402
from benchmarks.efficiency_analysis import ARM_LABELS, analyse, paired  # noqa: E402
from benchmarks.levers import split_arm  # noqa: E402

BASE = "ga_sh_inherit"


def load(files: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(meta, summary) of the ``+``-joined result files, merged."""
    meta, runs = merge_saved(files.split("+"))
    return meta, analyse(runs, meta["setting"]["budget"])


def pair(summary: dict[str, Any], ours: str, other: str) -> dict[str, Any] | None:
    if ours not in summary["arms"] or other not in summary["arms"]:
        return None
    return paired(summary["equal_epochs"], ours, other)


def _points(v: dict[str, Any] | None) -> str:
    if v is None or v["mean"] is None:
        return "-"
    lo, hi = v["ci95"]
    tlo, thi = v["t95"]
    return (f"{100 * v['mean']:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}] t [{100 * tlo:+.2f}, "
            f"{100 * thi:+.2f}], {v['wins']}/{v['seeds']}")


def _mean(summary: dict[str, Any], arm: str) -> float:
    return float(summary["arms"][arm]["mean_equal_epochs_test_accuracy"])


def ablation_table(summary: dict[str, Any], default: str) -> list[str]:
    lines = ["| arm | mean test accuracy | minus GA + SH + heredity | minus Optuna TPE + HB |",
             "| --- | --- | --- | --- |"]
    arms = sorted(summary["arms"], key=lambda a: (len(split_arm(a)[1]) > 1,
                                                   split_arm(a)[0] != BASE, a))
    for arm in arms:
        name = f"**{ARM_LABELS[arm]}** (the default)" if arm == default else ARM_LABELS[arm]
        lines.append(f"| {name} | {_mean(summary, arm):.4f} | "
                     f"{_points(pair(summary, arm, BASE)) if arm != BASE else '-'} | "
                     f"{_points(pair(summary, arm, 'optuna')) if arm != 'optuna' else '-'} |")
    return lines


def targets(default: str, confirm: dict[str, Any], pooled: dict[str, Any],
            second: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's three targets, each met or not."""
    fm, mn = pair(confirm, default, "optuna"), pair(second, default, "optuna")
    out = [{"target": "Fashion-MNIST (fresh seeds 8-15): default minus Optuna TPE+HB >= +1.0 "
                      "point mean, 95% interval above 0 (bootstrap and t)",
            "pair": fm, "pooled_16_seeds": pair(pooled, default, "optuna"),
            "met": bool(fm and fm["mean"] >= 0.01 and min(fm["ci95"][0], fm["t95"][0]) > 0)},
           {"target": "MNIST: default minus Optuna TPE+HB, lower bound of the 95% interval "
                      "above -0.5 points (bootstrap and t)",
            "pair": mn, "met": bool(mn and min(mn["ci95"][0], mn["t95"][0]) > -0.005)}]
    for name, summary in (("Fashion-MNIST (fresh seeds 8-15)", confirm), ("MNIST", second)):
        ours, theirs = _mean(summary, default), _mean(summary, "dehb")
        out.append({"target": f"{name}: default mean >= DEHB's mean", "default": ours,
                    "dehb": theirs, "met": ours >= theirs})
    return out


def report(default: str, ablation: dict[str, Any], confirm: dict[str, Any],
           pooled: dict[str, Any], second: dict[str, Any], found: list[dict[str, Any]],
           files: dict[str, str]) -> str:
    lines = [f"# The defaults (issue 30), {now()}", "",
             "Test accuracy of each arm's incumbent at equal epochs (96), mean over seeds; "
             "paired differences in points, percentile bootstrap 95% [Student's t 95%], seeds "
             "ahead / seeds. Settings: `search_efficiency.py --space devol+training` (2,000 "
             "training, 2,000 validation, 10,000 test images; networks of 3 epochs, rungs 1 "
             "and 3, population 8). Inputs: " + "; ".join(f"{k}: `{v}`" for k, v in
                                                          files.items()), "",
             "## Each lever alone, then the combination (Fashion-MNIST, seeds 0-7)", "",
             *ablation_table(ablation, default), "",
             "## Fresh seeds (Fashion-MNIST, seeds 8-15), and all 16 pooled", "",
             *ablation_table(confirm, default), "",
             f"Pooled, 16 seeds: default minus Optuna {_points(pair(pooled, default, 'optuna'))}"
             f"; minus DEHB {_points(pair(pooled, default, 'dehb'))}; minus GA + SH + heredity"
             f" {_points(pair(pooled, default, BASE))}.", "",
             "## The second data set (MNIST, seeds 0-7)", "",
             *ablation_table(second, default), "", "## Targets", ""]
    for t in found:
        detail = _points(t["pair"]) if "pair" in t else \
            f"default {t['default']:.4f}, DEHB {t['dehb']:.4f}"
        lines.append(f"- {t['target']}: {detail}: **{'met' if t['met'] else 'not met'}**")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--default", required=True, help="the picked arm, e.g. ga_sh_inherit+point1")
    for name in ("ablation", "confirm", "second"):
        p.add_argument(f"--{name}", required=True, metavar="FILE[+FILE...]")
    p.add_argument("--out", default=str(RESULTS / "defaults_verdict"))
    p.add_argument("--reading", default=None, help="file with the reading, put in the report")
    args = p.parse_args(argv)
    files = {"ablation": args.ablation, "confirm": args.confirm, "second": args.second}
    (_, ablation), (_, confirm), (_, second) = (load(f) for f in files.values())
    _, pooled = load(args.ablation + "+" + args.confirm)
    found = targets(args.default, confirm, pooled, second)
    text = report(args.default, ablation, confirm, pooled, second, found,
                  {k: " + ".join(Path(f).name for f in v.split("+")) for k, v in files.items()})
    if args.reading:
        text += "\n## Reading\n\n" + Path(args.reading).read_text()
    write_result(Path(args.out).with_suffix(".json"),
                 {"date": now(), "default": args.default, "inputs": files, "targets": found},
                 text)
    print(text)


if __name__ == "__main__":
    main()
