"""The strategies ``Search(strategy=NAME)`` builds, and the checks a strategy object must pass.

Each built-in strategy is an entry of `STRATEGIES`: a name and a function building it for the
search's space, seed, direction and options (``strategy_options``, saved in the run directory).
Any other object following ``pytorch_devol.evolution.Strategy`` is used as it is, once
`check_strategy` has found nothing wrong with it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from ..evolution import NSGA2, GeneticAlgorithm, RegularizedEvolution, Strategy, operator_spec
from ..evolution.operators import DevolMutation, FitnessProportional, PointMutation, SinglePoint
from ..evolution.specs import BUILT_IN_OPERATORS
from .objectives import Objective

__all__ = ["DEVOL_GA_OPTIONS", "SEARCH_GA_OPTIONS", "STRATEGIES", "StrategyContext",
           "check_options", "check_strategy", "ga_options", "make_strategy", "saved_options"]

#: The operators of DEvol's GA as the compat API and ``--devol-algorithm`` run it (with
#: ``fidelity=None``, ``inherit_weights=False``): ``GeneticAlgorithm``'s own defaults, DEvol's
#: operators with its defects fixed. Also what a run saved before `SEARCH_GA_OPTIONS` used.
DEVOL_GA_OPTIONS: dict[str, Any] = {"selection": operator_spec(FitnessProportional()),
                                    "crossover": operator_spec(SinglePoint()),
                                    "mutation": operator_spec(DevolMutation())}

#: The operators ``Search(strategy="ga")`` gives the GA unless ``strategy_options`` names
#: others: the measured winners (docs/guide/defaults.md,
#: benchmarks/results/defaults_verdict.md): one gene per child changes, not DEvol's
#: 1 .. max(3, generation // 4) - 1.
SEARCH_GA_OPTIONS: dict[str, Any] = {"mutation": operator_spec(PointMutation(count=1))}


def check_options(options: dict | None) -> dict[str, Any]:
    """``Search``'s ``strategy_options``: extra keyword arguments of the built-in strategy,
    saved in config.json (a built-in operator as its spec)."""
    options = dict(options or {})
    fixed = sorted({"seed", "maximize", "key", "cardinalities", "population_size"}
                   & set(options))
    if fixed:
        raise ValueError(f"strategy_options may not set {fixed}: the search sets them")
    for name, value in options.items():
        if type(value) in BUILT_IN_OPERATORS:  # saved as its spec, rebuilt on resume
            options[name] = operator_spec(value)
        elif isinstance(value, (range, tuple)) or hasattr(value, "tolist"):
            options[name] = value.tolist() if hasattr(value, "tolist") else list(value)
        elif callable(value):
            raise ValueError(f"strategy_options[{name!r}] is a function or an operator of "
                             "your own, which a run directory cannot save; build the "
                             "strategy yourself and pass strategy=... (and again on "
                             "resume)")
    return options


def ga_options(options: dict[str, Any]) -> dict[str, Any]:
    """The GA's ``strategy_options`` of a new search, its default operators filled in
    (`SEARCH_GA_OPTIONS`, saved in the run directory with the rest)."""
    return {**DEVOL_GA_OPTIONS, **SEARCH_GA_OPTIONS, **options}


def saved_options(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """A run directory's saved ``strategy_options`` of strategy ``name``: a GA run saved
    before `SEARCH_GA_OPTIONS` named no operators and used `DEVOL_GA_OPTIONS`."""
    return {**DEVOL_GA_OPTIONS, **options} if name == "ga" else dict(options)


@attrs.frozen
class StrategyContext:
    """What a built-in strategy is built from: the search's space and settings."""

    cardinalities: np.ndarray = attrs.field(eq=False)
    population_size: int
    seed: int
    maximize: bool
    key: Callable[[np.ndarray], Any]
    objectives: tuple[Objective, ...] | None = None
    fitness: Callable[..., Any] | None = None


def _ga(c: StrategyContext, options: dict[str, Any]) -> Strategy:
    return GeneticAlgorithm(c.cardinalities, c.population_size, seed=c.seed,
                            maximize=c.maximize, key=c.key, fitness_transform=c.fitness,
                            **options)


def _regularized(c: StrategyContext, options: dict[str, Any]) -> Strategy:
    n = c.population_size
    options = {"sample_size": min(n, max(2, n // 4)), **options}
    return RegularizedEvolution(c.cardinalities, n, seed=c.seed, maximize=c.maximize,
                                key=c.key, **options)


def _nsga2(c: StrategyContext, options: dict[str, Any]) -> Strategy:
    assert c.objectives is not None
    return NSGA2(c.cardinalities, c.population_size, tuple(o.direction for o in c.objectives),
                 seed=c.seed, key=c.key, **options)


STRATEGIES: dict[str, Callable[[StrategyContext, dict[str, Any]], Strategy]] = {
    "ga": _ga, "regularized": _regularized, "nsga2": _nsga2}
"""The built-in strategies by the name ``Search(strategy=...)`` and ``--strategy`` take."""


def make_strategy(strategy: str | Strategy | None, context: StrategyContext,
                  options: dict[str, Any]) -> tuple[str, Strategy]:
    """``(name, strategy)``: a built-in one by name (None: "ga", or "nsga2" with objectives),
    or your own object checked against the search (its name is then "custom")."""
    multi = context.objectives is not None
    if context.fitness is not None and strategy not in (None, "ga"):
        raise ValueError("fitness= shapes the default GA's selection; configure your own "
                         "strategy directly instead")
    if strategy is None:
        strategy = "nsga2" if multi else "ga"
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; choose one of "
                             f"{tuple(STRATEGIES)} or pass a Strategy object")
        if multi and strategy != "nsga2":
            raise ValueError(f"strategy {strategy!r} optimises one number; several "
                             "objectives or constraints need strategy='nsga2'")
        if strategy == "nsga2" and not multi:
            raise ValueError("strategy='nsga2' needs objectives=[...] (e.g. ['val_accuracy', "
                             "'params'])")
        return strategy, STRATEGIES[strategy](context, options)
    want = context.maximize if not multi else tuple(o.maximize for o in context.objectives)
    check_strategy(strategy, context.cardinalities, want)
    return "custom", strategy


def check_strategy(strategy: Any, cardinalities: np.ndarray,
                   maximize: bool | Sequence[bool]) -> None:
    """TypeError or ValueError naming what ``strategy`` lacks for this search."""
    missing = [m for m in ("ask", "tell", "state_dict", "load_state_dict")
               if not callable(getattr(strategy, m, None))]
    if missing:
        raise TypeError(f"strategy lacks {', '.join(missing)}(); see "
                        "pytorch_devol.evolution.Strategy")
    if not isinstance(getattr(strategy, "steady_state", None), bool):
        raise TypeError("strategy lacks the bool attribute steady_state (True: it breeds "
                        "one genome at a time; False: whole generations); see "
                        "pytorch_devol.evolution.Strategy")
    cards = np.asarray(getattr(strategy, "cardinalities", cardinalities))
    if cards.shape != cardinalities.shape or (cards != cardinalities).any():
        raise ValueError("the strategy's cardinalities differ from the schema's")
    got = getattr(strategy, "maximize", maximize)
    if (tuple(got) if isinstance(got, list | tuple) else got) != maximize:
        raise ValueError(f"strategy.maximize={got!r}, but this search's metric or "
                         f"objectives need maximize={maximize!r}")
