"""The statistics every benchmark reports with (re-exported by ``benchmarks.common``): medians
over interleaved repeats with their spread (never best-of), quartiles over seeds that keep "not
reached" (inf) and "not defined" (NaN) apart, ratio and paired verdicts that claim a difference
only when every repeat or seed lies on one side, and the JSON form of such numbers."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "spread", "ratio_spread", "ratio_verdict", "fmt_spread",
    "quartiles", "fmt_quartiles", "json_number", "json_numbers", "number", "paired_differences",
]


def spread(values: Iterable[float]) -> dict[str, Any]:
    """Median, min, max and count of the finite values (all values kept for the record): the
    summary of repeated timings."""
    vals = [float(v) for v in values]
    finite = [v for v in vals if math.isfinite(v)]
    if not finite:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": 0, "values": vals}
    return {"median": statistics.median(finite), "min": min(finite), "max": max(finite),
            "n": len(finite), "values": vals}


def ratio_verdict(ratios: dict[str, Any], above: str = "faster",
                  below: str = "slower") -> str:
    """How to state a ratio measured over repeats: a claim only when every repeat lies on the
    same side of 1 (the spread is smaller than the effect). ``above`` names a ratio > 1 (e.g.
    time of the baseline / time of ours = "faster"), ``below`` a ratio < 1 (stated as its
    inverse)."""
    lo, hi, med, n = ratios["min"], ratios["max"], ratios["median"], ratios["n"]
    if n == 0:
        return "not measured"
    if n > 1 and lo <= 1.0 <= hi:
        return (f"no measurable difference: the repeats range {lo:.2f}x-{hi:.2f}x, across 1 "
                f"(median {med:.2f}x)")
    if med >= 1.0:
        text = f"{med:.2f}x {above}"
        rng = f"range {lo:.2f}-{hi:.2f}x"
    else:
        text = f"{1 / med:.2f}x {below}"
        rng = f"range {1 / hi:.2f}-{1 / lo:.2f}x"
    if n == 1:
        return f"{text} (one repeat only: no spread measured)"
    return f"{text} (median of {n} repeats, {rng})"


def ratio_spread(ratios: Iterable[float], above: str = "faster",
                 below: str = "slower") -> dict[str, Any]:
    """``spread`` of per-repeat ratios with its ``verdict`` (see ``ratio_verdict``)."""
    out = spread(ratios)
    out["verdict"] = ratio_verdict(out, above, below)
    return out


def fmt_spread(s: dict[str, Any], digits: int = 1, scale: float = 1.0) -> str:
    """A ``spread`` as 'median (min-max)' for a table cell."""
    if s["n"] == 0:
        return "-"
    f = f"{{:.{digits}f}}"
    if s["n"] == 1:
        return f.format(s["median"] * scale)
    dash = " to " if s["min"] < 0 else "-"
    return (f"{f.format(s['median'] * scale)} ({f.format(s['min'] * scale)}{dash}"
            f"{f.format(s['max'] * scale)})")


def json_number(x: float) -> float | str:
    """A float for JSON: finite as is, inf as "inf", NaN as "nan" (JSON has neither)."""
    x = float(x)
    return x if math.isfinite(x) else ("inf" if x > 0 else "nan")


def json_numbers(vals: Iterable[float]) -> list[Any]:
    """Floats for JSON: finite as is, inf as "inf", NaN (not defined) as None."""
    return [None if math.isnan(v) else json_number(v) for v in map(float, vals)]


def number(x: Any) -> float:
    """Back from ``json_number``/``json_numbers``: "inf" is inf, None and "nan" are NaN."""
    return math.inf if x == "inf" else (math.nan if x is None or x == "nan" else float(x))


def quartiles(values: Iterable[float]) -> dict[str, Any]:
    """Median and IQR over seeds, in JSON form. inf among the values ("not reached", e.g. a
    seed that never hit a target) may make a quartile "inf", never NaN; a NaN anywhere (not
    defined for some seed) makes median and IQR None rather than a made-up figure."""
    vals = [float(v) for v in values]
    if not vals or any(math.isnan(v) for v in vals):
        return {"median": None, "iqr": [None, None], "values": json_numbers(vals)}
    # inf as a huge stand-in, so that a quartile between a finite value and a "not reached"
    # one is "not reached" too, never NaN
    big = 1e300
    q = np.percentile([min(v, big) for v in vals], [25, 50, 75])
    q1, med, q3 = (math.inf if x >= big / 4 else float(x) for x in q)
    return {"median": json_number(med), "iqr": [json_number(q1), json_number(q3)],
            "values": json_numbers(vals)}


def fmt_quartiles(s: dict[str, Any], fmt: str = "{:.4f}") -> str:
    """A ``quartiles`` as 'median [q1, q3]' for a table cell ("-": not defined)."""
    def one(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, str):
            return "not reached" if v == "inf" else v
        return fmt.format(v)
    if s.get("median") is None:
        return "-"
    return f"{one(s['median'])} [{one(s['iqr'][0])}, {one(s['iqr'][1])}]"


def paired_differences(diffs: Sequence[float]) -> dict[str, Any]:
    """The verdict on per-seed paired differences (ours - other, finite): met when the median
    is >= 0; a difference is claimed ("consistent") only when every seed lies on the same side
    of 0."""
    diffs = [float(d) for d in diffs]
    median = float(np.median(diffs))
    return {"diffs": diffs, "median_diff": median,
            "ours_at_least_as_good_in": sum(1 for d in diffs if d >= 0), "seeds": len(diffs),
            "met": bool(median >= 0),
            "consistent": len(diffs) > 1 and (min(diffs) > 0 or max(diffs) < 0)}
