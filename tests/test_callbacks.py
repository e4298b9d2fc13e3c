"""Callbacks: a search tells each callback its start, every record, every generation and its
end, in order; the on_record shorthand still works; a callback's error reaches the user."""

from __future__ import annotations

import json
import math

import pytest

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.search import Callback, GenerationSummary, RunInfo
from pytorch_devol.search.callbacks import summarize


def _schema(data):
    return GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                              max_dense_nodes=32, input_shape=data.input_shape, n_classes=10)


def _search(data, run, **kw):
    options = dict(generations=2, population_size=3, epochs=1, seed=3, run_dir=run,
                   verbose=False, device="cpu")
    return Search(_schema(data), data, **{**options, **kw})


class Recorder(Callback):
    def __init__(self):
        self.events: list[tuple[str, object]] = []

    def on_start(self, run):
        self.events.append(("start", run))

    def on_record(self, record):
        self.events.append(("record", record))

    def on_generation(self, summary):
        self.events.append(("generation", summary))

    def on_end(self, result):
        self.events.append(("end", result))


def test_a_search_tells_its_callbacks_everything_in_order(digits, tmp_path):
    recorder, seen = Recorder(), []
    result = _search(digits, tmp_path / "run", callbacks=[recorder],
                     on_record=seen.append).run()
    kinds = [k for k, _ in recorder.events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    start: RunInfo = recorder.events[0][1]
    assert start.run_dir == tmp_path / "run" and not start.resumed
    assert start.config["search"]["population_size"] == 3
    logged = [json.loads(x) for x in (tmp_path / "run" / "results.jsonl").read_text().split("\n")
              if x]
    records = [v for k, v in recorder.events if k == "record"]
    assert [r["index"] for r in records] == [r["index"] for r in logged]
    assert [r["index"] for r in seen] == [r["index"] for r in logged]  # the shorthand
    summaries: list[GenerationSummary] = [v for k, v in recorder.events if k == "generation"]
    assert [s.generation for s in summaries] == [0, 1]
    for s in summaries:
        scores = [r["fitness"] for r in s.records if r["fitness"] is not None]
        assert s.candidates == 3 and s.best_fitness == max(scores)
        assert math.isclose(s.mean_fitness, sum(scores) / len(scores))
    assert summaries[-1].best_so_far["index"] == result.best_record["index"]
    assert recorder.events[-1][1].best_fitness == result.best_fitness
    # each generation's summary comes after its records
    positions = [i for i, (k, _) in enumerate(recorder.events) if k == "generation"]
    assert sum(1 for k, _ in recorder.events[:positions[0]] if k == "record") >= 3


def test_a_resumed_search_says_so_and_reports_only_what_follows(digits, tmp_path):
    class Stop(Exception):
        pass

    class StopAfter(Callback):
        def __init__(self, n):
            self.n = n

        def on_record(self, record):
            self.n -= 1
            if self.n == 0:
                raise Stop

    with pytest.raises(Stop):  # an error in a callback stops the search and reaches the user
        _search(digits, tmp_path / "run", callbacks=[StopAfter(2)]).run()
    recorder = Recorder()
    Search.resume(tmp_path / "run", verbose=False, callbacks=[recorder]).run()
    assert recorder.events[0][0] == "start" and recorder.events[0][1].resumed
    records = [v for k, v in recorder.events if k == "record"]
    logged = (tmp_path / "run" / "results.jsonl").read_text().splitlines()
    assert len(records) == len(logged) - 2


def test_any_object_with_one_event_method_is_a_callback(digits, tmp_path):
    class OnlyGenerations:
        def __init__(self):
            self.generations = []

        def on_generation(self, summary):
            self.generations.append(summary.generation)

    cb = OnlyGenerations()
    _search(digits, tmp_path / "run", callbacks=[cb], generations=1).run()
    assert cb.generations == [0]


def test_an_object_without_event_methods_is_refused_before_training(digits, tmp_path):
    with pytest.raises(TypeError, match="none of the methods on_start, on_record"):
        _search(digits, tmp_path / "run", callbacks=[object()])
    assert not (tmp_path / "run").exists()


def test_summarize_counts_failures_and_infeasible_apart():
    ok = {"fitness": 0.5, "cached": False, "metrics": {"status": "ok"}}
    bad = {"fitness": None, "cached": False, "metrics": {"status": "failed"}}
    skip = {"fitness": None, "cached": False, "metrics": {"status": "infeasible"}}
    s = summarize(4, [ok, {**ok, "fitness": 0.7, "cached": True}, bad, skip], None, "loss",
                  False)
    assert (s.candidates, s.cached, s.failed, s.infeasible) == (4, 1, 1, 1)
    assert s.best_fitness == 0.5 and math.isclose(s.mean_fitness, 0.6)
    empty = summarize(0, [bad], None, "accuracy", True)
    assert math.isnan(empty.best_fitness) and empty.failed == 1
