"""DEvol's progress figure for a run directory: the best score so far over the candidates, each
candidate's score, the spread of scores per generation, and (ours) the best score against the
training epochs spent, which shows what a search gives at any budget.

matplotlib is an optional extra: it is imported only when a plot is asked for, and drawn with
the Agg canvas on a private ``Figure`` (never pyplot's global state), so plotting works
headless and from threads.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..durable import atomic_write
from ..layout import PARETO_PLOT, PROGRESS_PLOT
from ..result import SearchResult, load_result

__all__ = ["plot_run", "progress_series"]


def _import_matplotlib() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError('plotting needs matplotlib: pip install "pytorch-devol[plot]"') from err
    return Figure, FigureCanvasAgg


def progress_series(result: SearchResult) -> dict[str, Any]:
    """The numbers the figure shows, in candidate index order (plain lists, no matplotlib).

    ``index``, ``score`` (None when failed), ``running_best`` (None until a candidate
    succeeds), ``cached``, ``failed`` and ``generations``: {generation: [scores of its
    successful candidates]}. With a fidelity scheduler a candidate's score is that of the
    highest rung it reached, and only candidates trained in full count as the best.
    """
    latest: dict[int, dict[str, Any]] = {}
    for r in result.history:
        if r["index"] not in latest or latest[r["index"]]["rung"] <= r["rung"]:
            latest[r["index"]] = r
    records = sorted(latest.values(), key=lambda r: r["index"])
    best: float | None = None
    series: dict[str, Any] = {"index": [], "score": [], "running_best": [], "cached": [],
                              "failed": [], "generations": {}}
    for r in records:
        score = r["fitness"]
        failed = score is None or (isinstance(score, float) and math.isnan(score))
        if not failed:
            score = float(score)
            if r["final"] and (
                    best is None or (score > best if result.maximize else score < best)):
                best = score
        series["index"].append(int(r["index"]))
        series["score"].append(None if failed else score)
        series["running_best"].append(best)
        series["cached"].append(bool(r["cached"]))
        series["failed"].append(failed)
        scores = series["generations"].setdefault(int(r["generation"]), [])
        if not failed:
            scores.append(score)
    return series


def _label(result: SearchResult) -> str:
    better = "higher" if result.maximize else "lower"
    return f"validation {result.metric} ({better} is better)"


def plot_run(run_dir: str | os.PathLike[str], out: str | os.PathLike[str] | None = None,
             dpi: int = 120, gene_modules: Iterable[str] | None = None) -> Path:
    """Draw the run's progress figure to a PNG (default ``<run_dir>/progress.png``).

    Top: the running best validation score (max for accuracy, min for loss) over evaluated
    candidates in index order, each candidate as a dot (hollow when its result was reused from
    an identical genome) and failed candidates as red x's along the bottom. Bottom: one box
    per generation of its successful candidates' scores (median line, mean triangle, best
    star). Third: the best fully trained candidate's score against the cumulative training
    epochs spent (anytime performance). Raises ValueError for a run with no
    evaluated candidate and ImportError (naming the extra) without matplotlib.
    ``gene_modules``: see ``load_result``. A multi-objective run also gets ``pareto.png`` in
    its run directory (``plot_front``).
    """
    Figure, FigureCanvasAgg = _import_matplotlib()
    result = load_result(run_dir, gene_modules)
    if not result.history:
        raise ValueError(f"{run_dir}: no candidate has been evaluated yet, nothing to plot "
                         "(results.jsonl is empty or missing)")
    s = progress_series(result)
    out_path = Path(out) if out is not None else Path(run_dir) / PROGRESS_PLOT

    fig = Figure(figsize=(9, 11), layout="constrained")
    FigureCanvasAgg(fig)
    top, middle, bottom = fig.subplots(3, 1)
    _draw_progress(top, s, result)
    _draw_generations(middle, s, result)
    _draw_anytime(bottom, result)
    counts = result.counts()
    fig.suptitle(f"{result.run_dir.name}: {counts['evaluated']} candidates evaluated "
                 f"({counts['trained']} trained, {counts['cached']} reused, "
                 f"{counts['failed']} failed"
                 + (f", {counts['infeasible']} infeasible" if counts["infeasible"] else "")
                 + ")")

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(out_path, buf.getvalue())
    if result.objectives:
        from .plot_front import plot_front

        plot_front(result, Path(run_dir) / PARETO_PLOT, Figure, FigureCanvasAgg, dpi)
    return out_path


def _draw_progress(ax: Any, s: dict[str, Any], result: SearchResult) -> None:
    idx, scores = s["index"], s["score"]
    fresh = [(i, v) for i, v, c in zip(idx, scores, s["cached"]) if v is not None and not c]
    reused = [(i, v) for i, v, c in zip(idx, scores, s["cached"]) if v is not None and c]
    failed = [i for i, f in zip(idx, s["failed"]) if f]
    if fresh:
        ax.scatter(*zip(*fresh), s=18, color="tab:blue", alpha=0.7, label="candidate")
    if reused:
        ax.scatter(*zip(*reused), s=18, facecolors="none", edgecolors="tab:blue", alpha=0.7,
                   label="reused (identical genome)")
    best = [(i, v) for i, v in zip(idx, s["running_best"]) if v is not None]
    if best:
        ax.step(*zip(*best), where="post", color="tab:orange", linewidth=2,
                label=f"best so far ({'max' if result.maximize else 'min'})")
    if failed:
        # x in data coordinates, y pinned to the bottom edge of the axes, whatever the metric
        ax.scatter(failed, [0.03] * len(failed), transform=ax.get_xaxis_transform(),
                   marker="x", color="tab:red", s=30, label="no score (failed or infeasible)",
                   clip_on=False)
    if not fresh and not reused:
        ax.text(0.5, 0.5, "no candidate trained successfully", transform=ax.transAxes,
                ha="center", va="center")
    ax.set_xlabel("candidate (evaluation order)")
    ax.set_ylabel(_label(result))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small")


def _draw_generations(ax: Any, s: dict[str, Any], result: SearchResult) -> None:
    gens = sorted(s["generations"])
    filled = [g for g in gens if s["generations"][g]]
    if filled:
        ax.boxplot([s["generations"][g] for g in filled], positions=filled, widths=0.6,
                   showmeans=True, manage_ticks=False,
                   medianprops={"color": "tab:blue"},
                   meanprops={"marker": "^", "markerfacecolor": "tab:green",
                              "markeredgecolor": "tab:green"})
        ax.plot(filled, [max(s["generations"][g]) if result.maximize else
                         min(s["generations"][g]) for g in filled],
                color="tab:orange", marker="*", markersize=11, linestyle="none",
                label="generation best")
        ax.legend(loc="best", fontsize="small")
    else:
        ax.text(0.5, 0.5, "no successful candidate in any generation", transform=ax.transAxes,
                ha="center", va="center")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole generations, not crowded
    ax.set_xlim(min(gens) - 0.6, max(gens) + 0.6)
    ax.set_xlabel("generation")
    ax.set_ylabel(_label(result))
    ax.grid(alpha=0.3)


def _draw_anytime(ax: Any, result: SearchResult) -> None:
    points = [(p["epochs"], p["fitness"]) for p in result.anytime()
              if not math.isnan(p["fitness"])]
    if points:
        ax.step(*zip(*points), where="post", color="tab:orange", linewidth=2)
    else:
        ax.text(0.5, 0.5, "no candidate trained in full yet", transform=ax.transAxes,
                ha="center", va="center")
    ax.set_xlim(left=0)
    ax.set_xlabel("training epochs spent (cumulative, all candidates)")
    ax.set_ylabel(f"best {result.metric} so far")
    ax.grid(alpha=0.3)
