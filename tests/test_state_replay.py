"""One state path: whatever follows the log (the log, the cache, the rungs, the incumbent, the
donor pool, the Pareto front, the circuit breaker) and the run state (counters, tasks in
flight, the strategy) are the same after a kill and a resume as in the run never
interrupted, at the same point. Searches with an evaluator that trains nothing
(`ScoreEvaluator`), cut at random points."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.search.loop import SearchLoop

from .scoring import ScoreEvaluator

SCHEMA = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                            max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
CONFIGS = {
    "ga": dict(strategy="ga", fidelity=None, inherit_weights=False),
    "ga+sh+heredity": dict(strategy="ga", fidelity="sh"),
    "ga+hyperband+slices": dict(strategy="ga", fidelity="hyperband", inherit_weights="slices"),
    "re+asha+heredity": dict(strategy="regularized", fidelity="asha"),
    "re+hyperband, 3 workers": dict(strategy="regularized", fidelity="hyperband", capacity=3),
    "nsga2+sh": dict(objectives=["accuracy", "params"], fidelity="sh"),
    "nsga2+constraint": dict(objectives=["accuracy", "params"],
                          constraints=["params<=3000"], fidelity=None),
}


class Cut(Exception):
    """The search 'dies' here, as under kill -9 (nothing after this runs)."""


class Probe(ScoreEvaluator):
    """Calls ``before(n)`` before its n-th result (0-based), then may raise `Cut`."""

    def __init__(self, capacity: int, before=None, cut_at: int | None = None) -> None:
        super().__init__(capacity)
        self.before, self.cut_at, self.calls = before, cut_at, 0

    def next_result(self):
        if self.before is not None:
            self.before(self.calls)
        if self.calls == self.cut_at:
            raise Cut
        self.calls += 1
        return super().next_result()


def _plain(value):
    return json.loads(json.dumps(value, default=lambda v: v.tolist() if hasattr(v, "tolist")
                                 else sorted(v) if isinstance(v, (set, frozenset)) else str(v)))


def snapshot(loop: SearchLoop) -> dict:
    """Everything the observers and the run state hold, as plain data."""
    rungs = loop.rungs
    return _plain({
        "log": [{k: v for k, v in r.items() if k not in ("finished_at", "rung_seconds")}
                for r in loop.log.records],
        "cache": sorted((list(k), r["index"], r["rung"]) for k, r in loop.cache.records.items()),
        "rungs": {"results": [sorted(d.items()) for d in rungs.results],
                  "latest": sorted((i, r["rung"]) for i, r in rungs.latest.items()),
                  "sent": [sorted(s) for s in rungs.sent],
                  "points": [sorted((i, v.tolist(), c) for i, (v, c) in d.items())
                             for d in rungs.points]},
        "incumbent": None if loop.best is None else loop.best["index"],
        "donors": None if loop.donors is None else [m["index"] for m in loop.donors.members],
        "front": None if loop.front is None else loop.front.indices,
        "breaker": [loop.breaker.seen, loop.breaker.armed, loop.breaker.signature],
        "state": [loop.state.next_index, loop.state.told, loop.state.generation,
                  [(t.index, t.rung, t.entry, list(t.genome), t.donor)
                   for t in loop.state.pending]],
        "strategy": _strategy_state(loop.strategy),
    })


def _strategy_state(strategy) -> dict:
    """Its state; the genomes it has seen as a set of canonical keys (a membership test)."""
    state = strategy.state_dict()
    if state.get("seen") is not None:
        state["seen"] = sorted(SCHEMA.key(g) for g in state["seen"])
    return state


def _search(run_dir: Path, config: dict, evaluator, data) -> Search:
    config = {k: v for k, v in config.items() if k != "capacity"}
    return Search(SCHEMA, data, generations=3, population_size=6, epochs=9, seed=2,
                  run_dir=run_dir, evaluator=evaluator, verbose=False, **config)


def _capturing():
    """Patch `SearchLoop.restore` to keep the loop each run builds."""
    loops, restore = [], SearchLoop.restore

    def keep(self):
        loops.append(self)
        restore(self)

    return loops, mock.patch.object(SearchLoop, "restore", keep)


@pytest.mark.slow
@settings(max_examples=14, deadline=None, suppress_health_check=list(HealthCheck))
@given(name=st.sampled_from(sorted(CONFIGS)), where=st.floats(0, 1))
def test_state_after_resume_equals_the_uninterrupted_run_at_the_same_point(digits, name,
                                                                         where):
    config = CONFIGS[name]
    capacity = config.get("capacity", 1)
    with tempfile.TemporaryDirectory() as tmp:
        states: dict[int, dict] = {}
        loops, patch = _capturing()
        with patch:
            whole = Probe(capacity, before=lambda n: states.__setitem__(n, snapshot(loops[0])))
            _search(Path(tmp) / "whole", config, whole, digits).run()
        cut = int(where * (whole.calls - 1))
        killed = Path(tmp) / "killed"
        with pytest.raises(Cut):
            _search(killed, config, Probe(capacity, cut_at=cut), digits).run()
        loops, patch = _capturing()
        with patch, mock.patch.object(SearchLoop, "run", lambda self: None):
            Search.resume(killed, evaluator=ScoreEvaluator(capacity), verbose=False).run()
        assert snapshot(loops[0]) == states[cut]


def test_the_snapshot_sees_a_difference(digits, tmp_path):
    """The comparison above could fail: two points of one run differ."""
    states: dict[int, dict] = {}
    loops, patch = _capturing()
    with patch:
        probe = Probe(1, before=lambda n: states.__setitem__(n, snapshot(loops[0])))
        _search(tmp_path / "r", CONFIGS["ga+sh+heredity"], probe, digits).run()
    assert states[0] != states[1] and np.all([states[i] != states[i + 1]
                                              for i in range(3)])
