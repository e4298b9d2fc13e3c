"""The fidelity protocol is open: schedulers written here, not derived from the built-ins,
run real searches (an asynchronous one here; the documentation's example, as printed, in
tests/docs_checks.py), resume when passed again, and a scheduler's mistakes are caught and
named."""

from __future__ import annotations

import math
import statistics

import pytest

from pytorch_devol import Search
from tests.parallel_helpers import tiny_schema


class MedianStopping:
    """Asynchronous: a candidate goes on once its result is at least its rung's median."""

    asynchronous = True

    def budgets(self, epochs):
        return (1, 2, epochs)

    def promote(self, rung, results, promoted, maximize):
        ok = [v for _, v in results if not math.isnan(v)]
        if len(ok) < 3:
            return []
        median = statistics.median(ok)
        return [i for i, v in results if i not in promoted and not math.isnan(v)
                and (v >= median if maximize else v <= median)]


def test_an_asynchronous_scheduler_of_your_own_and_resume(digits, tmp_path):
    run = tmp_path / "median"
    result = Search(tiny_schema(), digits, generations=2, population_size=5, seed=1, epochs=4,
                    strategy="regularized", fidelity=MedianStopping(), run_dir=run,
                    verbose=False).run()
    records = result.history
    assert {r["index"] for r in records} == set(range(10))
    assert {r["rung"] for r in records} == {0, 1, 2}
    assert sum(r["rung"] == 1 for r in records) < 10   # the median cut someone
    assert result.best_record["final"]
    with pytest.raises(ValueError, match="pass it again"):
        Search.resume(run)
    resumed = Search.resume(run, fidelity=MedianStopping(), verbose=False)
    assert len(resumed.run().history) == len(records)  # finished: nothing more to train


class _Bad:
    asynchronous = False

    def __init__(self, budgets=(1, 4), promote=None):
        self._budgets, self._promote = budgets, promote

    def budgets(self, epochs):
        return self._budgets

    def promote(self, rung, results, promoted, maximize):
        return self._promote(results) if self._promote else []


def test_a_schedulers_mistakes_are_named(digits, tmp_path):
    schema = tiny_schema()
    for budgets in ((4, 1), (1, 3), (), (0, 4), ("1", 4)):
        with pytest.raises(ValueError, match=r"_Bad.budgets\(4\) must be increasing"):
            Search(schema, digits, epochs=4, fidelity=_Bad(budgets), run_dir=tmp_path / "b")
    with pytest.raises(ValueError, match="steady-state"):
        Search(schema, digits, epochs=4, fidelity=MedianStopping(), run_dir=tmp_path / "c")
    assert not any(tmp_path.iterdir())  # refused before anything was written
    unknown = _Bad(promote=lambda results: [10_000])
    search = Search(schema, digits, generations=1, population_size=3, epochs=4,
                    fidelity=unknown, run_dir=tmp_path / "d", verbose=False)
    with pytest.raises(ValueError, match=r"_Bad.promote\(rung=0\) returned \[10000\]"):
        search.run()
