"""Hyperband: Li et al.'s bracket table, candidates dealt to brackets by index, halving within
each bracket, with the GA, regularized evolution, objectives and heredity; the entry rung of
a scheduler of your own. (Kill -9 and resume: test_fidelity.py; pool and Ray:
test_parallel_*.py.)"""

from __future__ import annotations

import collections
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol import GenomeSchema, Hyperband, Search
from pytorch_devol.search.fidelity import (
    FIDELITIES,
    EntryRung,
    SuccessiveHalving,
    entry_rung_of,
    fidelity_config,
    make_fidelity,
    saved_fidelity,
)
from pytorch_devol.search.rungs import RungBook
from pytorch_devol.training import TrainConfig

from .scoring import ScoreEvaluator

SCHEMA = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                            max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)


def test_the_bracket_table_is_li_et_al_table_1():
    """R = 81, eta = 3 (Li et al. 2018, Table 1): bracket s enters at rung 4 - s."""
    table = Hyperband(min_epochs=1, eta=3).brackets(81)
    assert [b.entry for b in table] == [0, 1, 2, 3, 4]
    assert [b.candidates for b in table] == [81, 34, 15, 8, 5]
    assert [b.rungs for b in table] == [
        ((1, 81), (3, 27), (9, 9), (27, 3), (81, 1)),
        ((3, 34), (9, 11), (27, 3), (81, 1)),
        ((9, 15), (27, 5), (81, 1)),
        ((27, 8), (81, 2)),
        ((81, 5),)]


@settings(deadline=None)  # counts, not clocks: no per-example time limit
@given(st.integers(1, 3), st.integers(2, 4), st.integers(1, 4), st.integers(0, 500))
def test_entry_rungs_deal_each_round_by_the_table(min_epochs, eta, steps, start):
    hyperband = Hyperband(min_epochs=min_epochs, eta=eta)
    epochs = min_epochs * eta ** steps
    table = hyperband.brackets(epochs)
    top = len(table) - 1
    size = sum(b.candidates for b in table)
    dealt = collections.Counter(hyperband.entry_rung(i, top) for i in range(start, start + size))
    assert dealt == {b.entry: b.candidates for b in table}  # any whole round, wherever it starts
    assert all(hyperband.entry_rung(i, top) == hyperband.entry_rung(i + size, top)
               for i in range(start, start + size))
    assert isinstance(hyperband, EntryRung) and not isinstance(SuccessiveHalving(), EntryRung)


def _run(tmp_path, data, name="run", **kw):
    options = dict(generations=1, population_size=17, epochs=9, seed=1, fidelity="hyperband",
                   run_dir=tmp_path / name, evaluator=ScoreEvaluator(kw.pop("capacity", 1)),
                   verbose=False)
    return Search(SCHEMA, data, **{**options, **kw}).run()


def _reached(history, top=2):
    """(entry rung, rung) -> candidates."""
    entry = Hyperband()
    return collections.Counter((entry.entry_rung(r["index"], top), r["rung"]) for r in history)


@pytest.mark.parametrize("inherit", [False, "genes"])
def test_one_ga_generation_of_a_round_is_the_bracket_table(digits, tmp_path, inherit):
    result = _run(tmp_path, digits, inherit_weights=inherit)
    assert _reached(result.history) == {(0, 0): 9, (0, 1): 3, (0, 2): 1,  # 9 at 1 -> 3 -> 1
                                        (1, 1): 5, (1, 2): 1,  # 5 at 3 -> 1
                                        (2, 2): 3}             # 3 trained in full
    first = {}
    for r in result.history:
        first.setdefault(r["index"], r)
    entries = {i: Hyperband().entry_rung(i, 2) for i in first}
    assert all(first[i]["rung"] == entries[i] for i in first)  # each starts at its bracket
    if inherit:  # a candidate entering higher up also starts from a donor (none yet here)
        assert all(r["parent"] is None for r in result.history)


def test_later_generations_inherit_at_their_entry_rung(digits, tmp_path):
    result = _run(tmp_path, digits, generations=3)
    entered_high = [r for r in result.history
                    if r["rung"] == Hyperband().entry_rung(r["index"], 2) > 0 and not r["cached"]]
    assert any(r["parent"] is not None for r in entered_high)
    assert result.best_record["final"]


def test_regularized_evolution_with_asynchronous_brackets(digits, tmp_path):
    result = _run(tmp_path, digits, strategy="regularized", generations=3, capacity=3)
    config = json.loads((tmp_path / "run" / "config.json").read_text())["search"]["fidelity"]
    assert config["kind"] == "hyperband" and config["asynchronous"] is True
    reached = _reached(result.history)
    assert reached[(0, 0)] > reached[(0, 1)] > 0 and reached[(1, 1)] > reached[(1, 2)] > 0
    assert not any(entry > rung for entry, rung in reached)


def _book(asynchronous):
    """Rungs 1, 2, 4 epochs (eta 2): indices 0-3 enter at rung 0, 4-6 at rung 1, 7 at 2.
    At rung 1: bracket 0 holds 0 (0.5) and 1 (0.4), bracket 1 holds 4, 5, 6 (0.9, 0.8, 0.7)."""
    book = RungBook(Hyperband(eta=2, asynchronous=asynchronous), 4, maximize=True)
    def record(index, rung, value):
        return {"index": index, "rung": rung, "fitness": value, "metrics": {"status": "ok"}}
    for i, v in enumerate([0.5, 0.4, 0.3, 0.2]):
        book.observe(record(i, 0, v))
    for i, v in [(0, 0.5), (1, 0.4), (4, 0.9), (5, 0.8), (6, 0.7)]:
        book.observe(record(i, 1, v))
    return book


def test_promotions_compare_candidates_within_their_bracket_only():
    # one ladder would send 4 and 5 (the best 2 of 5); each bracket sends its best 1
    assert _book(asynchronous=False).halving(list(range(8)), 1) == [0, 4]
    assert _book(asynchronous=True).next_promotion() == (0, 1)


def test_several_objectives_with_hyperband(digits, tmp_path):
    result = _run(tmp_path, digits, objectives=["accuracy", "params"], generations=2)
    assert result.pareto_front and all(r["final"] for r in result.pareto_front)
    assert _reached(result.history)[(2, 2)] > 0


def test_hyperband_trains_for_real_and_resumes(digits, tmp_path):
    config = TrainConfig(epochs=3, precision="fp32", patience=None)
    result = Search(SCHEMA, digits, generations=2, population_size=5, seed=0,
                    run_dir=tmp_path / "real", train_config=config, fidelity="hyperband",
                    verbose=False).run()
    reached = _reached(result.history, top=1)  # rungs 1 and 3 epochs: 3 + 2 per round
    assert reached[(0, 0)] == 6 and reached[(1, 1)] == 4
    assert all(r["metrics"]["epochs"] == 3 for r in result.history
               if r["final"] and not r["cached"] and r["metrics"]["status"] == "ok")
    again = Search.resume(tmp_path / "real", verbose=False)
    assert again.fidelity == Hyperband(min_epochs=1, eta=3)


def test_hyperband_settings_round_trip_and_mistakes_are_named(digits, tmp_path):
    assert "hyperband" in FIDELITIES
    for hyperband in (Hyperband(eta=2, asynchronous=True), Hyperband(min_epochs=2)):
        assert saved_fidelity(fidelity_config(hyperband, 8), None, "x") == hyperband
    assert make_fidelity("hyperband", 1, 3, asynchronous=True).asynchronous
    with pytest.raises(ValueError, match="lacks a bool asynchronous"):
        saved_fidelity({"kind": "hyperband", "min_epochs": 1, "eta": 3}, None, "x")
    with pytest.raises(ValueError, match=r"Hyperband\(asynchronous=True\)"):
        Search(SCHEMA, digits, strategy="regularized", fidelity=Hyperband(), epochs=3,
               run_dir=tmp_path / "x", verbose=False)
    with pytest.raises(TypeError):
        Hyperband(asynchronous="yes")


class Staggered(SuccessiveHalving):
    """Odd candidates start at the top rung; a broken one says rung 7."""

    def __init__(self, broken=False):
        super().__init__()
        object.__setattr__(self, "broken", broken)

    def entry_rung(self, index, top):
        return 7 if self.broken else top * (index % 2)


def test_a_bad_entry_rung_is_refused_before_training(digits, tmp_path):
    assert entry_rung_of(Staggered(), 3, 2) == 2 and entry_rung_of(None, 3, 2) == 0
    with pytest.raises(ValueError, match=r"Staggered.entry_rung\(0, top=2\) must be an int "
                                         r"from 0 to 2, got 7"):
        Search(SCHEMA, digits, fidelity=Staggered(broken=True), epochs=9,
               run_dir=tmp_path / "x", verbose=False)
    assert not (tmp_path / "x").exists()
