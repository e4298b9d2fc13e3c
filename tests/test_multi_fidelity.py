"""Several objectives with multi-fidelity: rungs promote by Pareto order, the strategy is told
rung-major objectives, only final records make the front, and constraints on the network's
size are checked before training (the kill -9 test is in test_multi_objective.py)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.evolution import crowding_distance, non_dominated_sort, pareto_order
from pytorch_devol.search import ASHA, SuccessiveHalving
from pytorch_devol.search.front import dominates
from pytorch_devol.search.rungs import ParetoRanking
from pytorch_devol.training import TrainConfig

FP32 = TrainConfig(precision="fp32")
values = st.floats(0, 100, allow_nan=False).map(lambda v: round(v, 1))  # ties happen


@st.composite
def objective_rows(draw, max_rows=14):
    n, k = draw(st.integers(1, max_rows)), draw(st.integers(1, 3))
    rows = draw(st.lists(st.lists(values, min_size=k, max_size=k), min_size=n, max_size=n))
    violation = draw(st.lists(st.sampled_from([0.0, 0.0, 0.5, 2.0]), min_size=n, max_size=n))
    return np.array(rows), np.array(violation)


@settings(max_examples=150, deadline=None)
@given(objective_rows(), st.sampled_from(["crowding", "epsilon"]))
def test_pareto_order_is_fronts_first_then_spread(data, within):
    points, violation = data
    order = pareto_order(points, None, violation, within)
    assert sorted(order.tolist()) == list(range(len(points)))  # a permutation
    ranks = non_dominated_sort(points, None, violation)
    assert (np.diff(ranks[order]) >= 0).all()  # a better front always comes first
    if within == "crowding":
        crowd = crowding_distance(points, ranks)
        for a, b in itertools.pairwise(order.tolist()):
            if ranks[a] == ranks[b] and violation[a] == 0:
                assert crowd[a] >= crowd[b]
    else:
        first = order[0]
        front = np.flatnonzero(ranks == ranks[first])
        assert points[first, 0] == points[front, 0].min()  # the seed: best on objective 0


def test_epsilon_order_takes_the_far_end_second():
    front = np.array([[0.0, 10.0], [1.0, 9.0], [5.0, 5.0], [10.0, 0.0]])
    assert pareto_order(front, None, None, "epsilon").tolist() == [0, 3, 2, 1]
    assert pareto_order(front, None, None, "crowding")[:2].tolist() == [0, 3]  # both ends inf


def test_an_infeasible_row_ranks_by_its_violation_even_with_unknown_objectives():
    points = np.array([[np.nan, 100.0], [0.5, 10.0], [np.nan, 50.0], [np.nan, np.nan]])
    violation = np.array([0.2, 0.0, 1.0, np.nan])
    assert non_dominated_sort(points, ["max", "min"], violation).tolist() == [1, 0, 2, 3]
    assert pareto_order(points, ["max", "min"], violation).tolist() == [1, 0, 2, 3]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), *(st.floats(lo, hi).map(lambda v: round(v, 4))
                                                for lo, hi in ((0, 1), (0, 5), (1, 1e7),
                                                               (-50, 50)))),
                min_size=2, max_size=2))  # values distinct at float resolution
def test_a_lower_rung_never_dominates_a_higher_one(pair):
    names = ["val_accuracy", "val_loss", "params", "mine"]
    maximize = [True, False, False, True]
    ranking = ParetoRanking(names, maximize)
    (r1, *v1), (r2, *v2) = sorted(pair, key=lambda p: p[0])
    low, high = (ranking.told(np.array(v, dtype=float), r, 2) for v, r in ((v1, r1), (v2, r2)))
    if r1 < r2:
        assert not dominates(low, 0.0, high, 0.0, maximize)
    else:  # at one rung the told values order exactly as the raw ones
        raw = dominates(np.array(v1), 0.0, np.array(v2), 0.0, maximize)
        assert raw == dominates(low, 0.0, high, 0.0, maximize)
    assert low[2] == v1[2]  # params is the same at every rung: told as it is


def tiny_schema() -> GenomeSchema:
    return GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                              max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)


def brute_force_front(records, names, maximize):
    """Indices of final, trained records no other such record dominates (the first of equal
    points)."""
    final = [r for r in records if r["final"] and not r["cached"]
             and r["metrics"]["status"] == "ok"]
    points = {r["index"]: np.array([r["objectives"][n] for n in names]) for r in final}
    out = []
    for i, p in points.items():
        if any(dominates(q, 0, p, 0, maximize) or (np.array_equal(q, p) and j < i)
               for j, q in points.items() if j != i):
            continue
        out.append(i)
    return sorted(out)


@pytest.mark.parametrize("pareto", ["crowding", "epsilon"])
def test_successive_halving_with_objectives_and_a_size_constraint(digits, tmp_path, pareto):
    bound = 3000
    result = Search(tiny_schema(), digits, generations=2, population_size=6, seed=1, epochs=3,
                    run_dir=tmp_path / "run", train_config=FP32, verbose=False,
                    objectives=["val_accuracy", "params"], constraints=[f"params<={bound}"],
                    fidelity=SuccessiveHalving(pareto=pareto)).run()
    history = result.history
    infeasible = [r for r in history if r["metrics"]["status"] == "infeasible"]
    trained = [r for r in history if r["metrics"]["status"] == "ok"]
    assert infeasible and trained
    assert all(r["metrics"]["epochs"] == 0 and r["rung_epochs"] == 0 and r["rung"] == 0
               and r["objectives"]["params"] > bound
               and r["violation"] == pytest.approx(r["objectives"]["params"] / bound - 1)
               and r["objectives"]["val_accuracy"] is None for r in infeasible)
    assert all(r["metrics"]["params"] <= bound for r in trained)  # none was ever trained
    assert {r["rung"] for r in trained} == {0, 1}
    assert result.counts()["infeasible"] == len({r["index"] for r in infeasible})
    front = [r["index"] for r in result.pareto_front]
    assert front == brute_force_front(history, ["val_accuracy", "params"], [True, False])
    assert all(r["final"] for r in result.pareto_front)
    # per generation, rung 1 holds the first third of rung 0 (6 entrants // 3 = 2 places)
    for g in (0, 1):
        assert len([r for r in trained if r["generation"] == g and r["rung"] == 1]) == 2


class SteadyRandom:
    """A steady-state multi-objective strategy of one's own: random genomes, one at a time."""

    steady_state = True

    def __init__(self, cardinalities, seed=0):
        self.cardinalities = np.asarray(cardinalities)
        self.maximize = (True, False)
        self.rng = np.random.default_rng(seed)
        self.told, self.updates = [], []

    def ask(self, n=None):
        return self.rng.integers(0, self.cardinalities, size=(n or 1, self.cardinalities.size))

    def tell(self, genomes, fitness, violation=None):
        self.told.extend(np.asarray(fitness).tolist())

    def update(self, genomes, fitness):
        self.updates.extend(np.asarray(fitness).tolist())

    def state_dict(self):
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        self.rng.bit_generator.state = state["rng"]


def test_asha_with_objectives_and_a_steady_state_strategy(digits, tmp_path):
    schema = tiny_schema()
    strategy = SteadyRandom(schema.cardinalities)
    result = Search(schema, digits, generations=3, population_size=5, seed=2, epochs=3,
                    run_dir=tmp_path / "run", train_config=FP32, verbose=False,
                    strategy=strategy, objectives=["val_accuracy", "params"],
                    fidelity=ASHA()).run()
    finals = [r for r in result.history if r["final"] and not r["cached"]]
    assert finals, "ASHA promotes at least the best of rung 0 to the top"
    assert [r["index"] for r in result.pareto_front] == brute_force_front(
        result.history, ["val_accuracy", "params"], [True, False])
    # told at rung 0: accuracy in [0, 1); a promotion's update is rung-major, above 1
    assert all(math.isnan(f[0]) or f[0] < 1 for f in strategy.told)
    assert strategy.updates and all(f[0] >= 1 for f in strategy.updates)
