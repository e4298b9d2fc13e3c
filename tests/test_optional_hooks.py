"""The optional hooks a strategy or scheduler may have are declared protocols, checked with
``isinstance`` (or `takes_violation`), and a search that needs one it lacks says so before
anything trains."""

from __future__ import annotations

import numpy as np
import pytest

from pytorch_devol import Search, SuccessiveHalving
from pytorch_devol.evolution import (
    NSGA2,
    CompactState,
    GeneticAlgorithm,
    RegularizedEvolution,
    Strategy,
    Updatable,
    WarmStartable,
    takes_violation,
)
from pytorch_devol.search.fidelity import ParetoOrdered, pareto_order_of

from .parallel_helpers import Scripted, tiny_schema

CARDS = [3, 4, 2]


def test_the_built_in_strategies_declare_the_hooks_they_have():
    ga = GeneticAlgorithm(CARDS, 4, seed=0)
    re = RegularizedEvolution(CARDS, 4, seed=0, sample_size=2)
    nsga = NSGA2(CARDS, 4, ("max", "min"), seed=0)
    for s in (ga, re, nsga):
        assert isinstance(s, Strategy) and isinstance(s, CompactState)
        assert isinstance(s, WarmStartable)
    assert isinstance(re, Updatable) and not isinstance(ga, Updatable)
    assert takes_violation(nsga) and not takes_violation(ga) and not takes_violation(re)


def test_a_strategy_of_ones_own_has_none_until_it_defines_them():
    plain = Scripted(CARDS, [np.zeros((2, 3), dtype=np.int64)])
    assert isinstance(plain, Strategy)
    assert not any(isinstance(plain, hook) for hook in (Updatable, WarmStartable, CompactState))
    assert not takes_violation(plain) and not takes_violation(object())


def test_a_search_refuses_a_strategy_without_the_hook_it_needs(digits, tmp_path):
    schema = tiny_schema()
    plain = Scripted(schema.cardinalities, [np.zeros((2, len(schema)), dtype=np.int64)])
    plain.maximize = (True, False)  # as the objectives need: only violation= is missing
    with pytest.raises(TypeError, match="violation="):
        Search(schema, digits, strategy=plain, objectives=["val_accuracy", "params"],
               constraints=["params<=1e6"], run_dir=tmp_path / "a")
    plain.maximize = True
    with pytest.raises(TypeError, match="WarmStartable"):
        Search(schema, digits, strategy=plain, warm_start=[plain.ask()[0]],
               run_dir=tmp_path / "b")
    assert not any(tmp_path.iterdir())  # refused before anything was written


class _Ordered(SuccessiveHalving):
    """A scheduler of one's own whose Pareto order is not one of PARETO_ORDERS."""


def test_the_scheduler_pareto_order_is_declared_and_checked(digits, tmp_path):
    assert isinstance(SuccessiveHalving(pareto="crowding"), ParetoOrdered)
    assert pareto_order_of(SuccessiveHalving(pareto="crowding")) == "crowding"
    assert pareto_order_of(None) == "epsilon"
    assert pareto_order_of(object()) == "epsilon"  # type: ignore[arg-type]
    odd = _Ordered()
    object.__setattr__(odd, "pareto", "hypervolume")
    with pytest.raises(ValueError, match="pareto must be one of"):
        Search(tiny_schema(), digits, fidelity=odd, epochs=3,
               objectives=["val_accuracy", "params"], run_dir=tmp_path / "c")
