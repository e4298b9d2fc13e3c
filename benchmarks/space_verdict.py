"""Should ``--space devol+training`` be the CLI default? Reads ``search_efficiency.py`` results
of the two spaces on each data set and compares, arm by arm, the final test accuracy of the
training-gene space against DEvol's, paired by seed (the same seeds, the same epoch budget).

The rule (issue 29): the training-gene space becomes the default if it wins on one data set
and loses on neither. A data set is a win when GA + SH + heredity's paired mean difference
has its 95% intervals (bootstrap and t) above 0, a loss when both are below, else a tie. The
accuracy compared is the incumbent's at the epoch budget.

    python benchmarks/space_verdict.py \
        fashion-mnist=benchmarks/results/search_efficiency_fashion-mnist_devol.json,\
benchmarks/results/search_efficiency_fashion-mnist_devol_training.json \
        mnist=benchmarks/results/search_efficiency_mnist_devol.json,\
benchmarks/results/search_efficiency_mnist_devol_training.json
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import RESULTS, now, write_result  # noqa: E402
from benchmarks.efficiency_analysis import (  # noqa: E402
    ARM_LABELS,
    at,
    bootstrap_mean,
    t_interval,
    trace,
)

DECIDING_ARM = "ga_sh_inherit"


def finals(path: str) -> dict[str, dict[int, float]]:
    """arm -> seed -> the incumbent's test accuracy at the epoch budget (the records finished
    within it), from a saved result."""
    saved = json.loads(Path(path).read_text())
    budget = saved["setting"]["budget"]
    return {arm: {int(run["seed"]): at(trace(run["events"]), budget) for run in runs}
            for arm, runs in saved["runs"].items()}


def compare(devol: str, training: str) -> dict[str, Any]:
    """Per arm in both files: training minus devol, paired by seed."""
    a, b = finals(devol), finals(training)
    rows = {}
    for arm in [arm for arm in a if arm in b]:
        seeds = sorted(s for s in set(a[arm]) & set(b[arm])
                       if math.isfinite(a[arm][s]) and math.isfinite(b[arm][s]))
        diffs = [b[arm][s] - a[arm][s] for s in seeds]
        if len(diffs) < 2:
            continue
        low, high = bootstrap_mean(diffs)
        rows[arm] = {"seeds": seeds, "diffs": diffs, "mean": sum(diffs) / len(diffs),
                     "ci95": [low, high], "t95": t_interval(diffs),
                     "wins": sum(d > 0 for d in diffs),
                     "losses": sum(d < 0 for d in diffs),
                     "devol_mean": sum(a[arm][s] for s in seeds) / len(seeds),
                     "training_mean": sum(b[arm][s] for s in seeds) / len(seeds)}
    deciding = rows.get(DECIDING_ARM)
    outcome = None if deciding is None else (
        "win" if min(deciding["ci95"][0], deciding["t95"][0]) > 0 else
        "loss" if max(deciding["ci95"][1], deciding["t95"][1]) < 0 else "tie")
    return {"devol": devol, "training": training, "arms": rows, "outcome": outcome}


def markdown(result: dict[str, Any]) -> str:
    lines = [f"# devol+training against devol, per data set ({result['date']})", "",
             "Test accuracy of each arm's incumbent at the epoch budget (whole test set), "
             "training-gene space minus DEvol's, paired by seed; points x100, bootstrap and t "
             "95% intervals.", "",
             "| data set | arm | devol | devol+training | difference [bootstrap] | t 95% | "
             "seeds better / worse |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in result["datasets"].items():
        for arm, row in r["arms"].items():
            lines.append(f"| {name} | {ARM_LABELS[arm]} | {row['devol_mean']:.4f} | "
                         f"{row['training_mean']:.4f} | {100 * row['mean']:+.2f} "
                         f"[{100 * row['ci95'][0]:+.2f}, {100 * row['ci95'][1]:+.2f}] | "
                         f"[{100 * row['t95'][0]:+.2f}, {100 * row['t95'][1]:+.2f}] | "
                         f"{row['wins']} / {row['losses']} |")
    lines += ["", f"Deciding arm: {ARM_LABELS[DECIDING_ARM]}. Outcomes: " + ", ".join(
        f"{n}: {r['outcome']}" for n, r in result["datasets"].items())
        + f". Verdict: devol+training {'becomes' if result['default'] else 'does not become'}"
        " the CLI default (it must win on one data set and lose on neither)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> None:
    datasets = {}
    for arg in argv:
        name, files = arg.split("=", 1)
        devol, training = files.split(",")
        datasets[name] = compare(devol, training)
    outcomes = [d["outcome"] for d in datasets.values()]
    result = {"date": now(), "command": " ".join(["python benchmarks/space_verdict.py", *argv]),
              "datasets": datasets,
              "default": "win" in outcomes and "loss" not in outcomes and None not in outcomes}
    text = markdown(result)
    write_result(RESULTS / "space_verdict.json", result, text)
    print(text)


if __name__ == "__main__":
    main(sys.argv[1:])
