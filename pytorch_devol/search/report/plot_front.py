"""The Pareto front figure of a multi-objective run (``pareto.png``).

Left: every trained candidate in the plane of the first two objectives, the final front
highlighted, and the front attained after each generation (light to dark). Right: the
hypervolume of the attained front per generation, all objectives, each turned into a
minimisation and measured from a reference point 10% beyond the worst value seen (the nadir),
so it only grows as the search finds better trade-offs.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from ...evolution.pareto import hypervolume
from ..durable import atomic_write
from ..front import ParetoFront, violation_of
from ..result import SearchResult

__all__ = ["front_series", "plot_front"]
LOG_AXES = ("params", "flops")  # sizes spread over orders of magnitude


def _points(result: SearchResult) -> tuple[list[dict[str, Any]], np.ndarray]:
    names = [o["name"] for o in result.objectives]
    rows = [r for r in result.history if not r["cached"] and r.get("objectives")
            and r.get("final", True) and all(r["objectives"].get(n) is not None for n in names)]
    return rows, np.array([[r["objectives"][n] for n in names] for r in rows], dtype=float)


def front_series(result: SearchResult) -> dict[str, Any]:
    """Per generation: the attained front's indices and its hypervolume (see the module)."""
    names = [o["name"] for o in result.objectives]
    up = [o["direction"] == "max" for o in result.objectives]
    rows, points = _points(result)
    if not rows:
        return {"generations": [], "fronts": [], "hypervolume": [], "reference": None}
    as_min = points * np.where(up, -1.0, 1.0)
    span = np.ptp(as_min, axis=0)
    reference = as_min.max(axis=0) + 0.1 * np.where(span > 0, span, 1.0)
    front = ParetoFront(names, up)
    generations, fronts, volumes = [], [], []
    by_gen: dict[int, list[int]] = {}
    for k, r in enumerate(rows):
        by_gen.setdefault(r["generation"], []).append(k)
    for gen in sorted(by_gen):
        for k in by_gen[gen]:
            front.add(rows[k]["index"], points[k], violation_of(rows[k]), rows[k])
        members = [k for k, r in enumerate(rows) if r["index"] in front.members
                   and not front.members[r["index"]][1]]
        generations.append(gen)
        fronts.append([rows[k]["index"] for k in members])
        volumes.append(float(hypervolume(as_min[members], reference)) if members else 0.0)
    return {"generations": generations, "fronts": fronts, "hypervolume": volumes,
            "reference": reference.tolist()}


def plot_front(result: SearchResult, out: Path, figure: Any, canvas: Any,
               dpi: int = 120) -> Path:
    """Draw ``pareto.png`` of a multi-objective ``result`` to ``out``."""
    from matplotlib.ticker import MaxNLocator

    names = [o["name"] for o in result.objectives]
    rows, points = _points(result)
    if not rows:
        raise ValueError(f"{result.run_dir}: no candidate trained yet, no front to draw")
    series = front_series(result)
    by_index = {r["index"]: k for k, r in enumerate(rows)}
    fig = figure(figsize=(11, 4.8), layout="constrained")
    canvas(fig)
    left, right = fig.subplots(1, 2)
    x_name, y_name = (names[1], names[0]) if len(names) > 1 else (names[0], names[0])
    x, y = points[:, names.index(x_name)], points[:, names.index(y_name)]
    left.scatter(x, y, s=14, color="0.7", label="trained candidates")
    colours = _viridis(len(series["fronts"]))
    for gen, members, colour in zip(series["generations"], series["fronts"], colours):
        order = sorted((x[by_index[i]], y[by_index[i]]) for i in members)
        left.step(*zip(*order), where="post", color=colour, alpha=0.8, linewidth=1,
                  label=f"front after generation {gen}" if gen == series["generations"][-1]
                  else None)
    final = [by_index[i] for i in series["fronts"][-1]]
    left.scatter(x[final], y[final], s=40, color="crimson", zorder=3, label="Pareto front")
    for k in final:
        left.annotate(str(rows[k]["index"]), (x[k], y[k]), fontsize=7,
                      xytext=(3, 3), textcoords="offset points")
    for name, values, scale in ((x_name, x, left.set_xscale), (y_name, y, left.set_yscale)):
        if name in LOG_AXES and values.min() > 0:
            scale("log")
    left.set_xlabel(f"{x_name} ({_direction(result, x_name)})")
    left.set_ylabel(f"{y_name} ({_direction(result, y_name)})")
    left.legend(fontsize=8)
    left.set_title("candidates and attained fronts (labels: candidate index)")
    right.plot(series["generations"], series["hypervolume"], marker="o")
    right.xaxis.set_major_locator(MaxNLocator(integer=True))
    right.set_xlabel("generation")
    right.set_ylabel("hypervolume of the attained front")
    right.set_title(f"hypervolume ({', '.join(names)})")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    atomic_write(out, buf.getvalue())
    return out


def _direction(result: SearchResult, name: str) -> str:
    d = next(o["direction"] for o in result.objectives if o["name"] == name)
    return "higher is better" if d == "max" else "lower is better"


def _viridis(n: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(0.15 + 0.7 * i / max(1, n - 1)) for i in range(n)]
