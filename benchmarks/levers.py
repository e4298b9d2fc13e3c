"""The levers of the search's own arms, for the ablation: ``ga_sh_inherit+tournament`` is
GA + SH + heredity with tournament selection, ``ga_sh_inherit+tournament+slices`` adds the
"slices" slot rule, and so on. Each lever changes one setting of ``Search`` (its strategy's
options, the heredity slot rule, the rungs, the population); pure data, so the report can
label arms without importing torch.
"""

from __future__ import annotations

from typing import Any

__all__ = ["LEVERS", "lever_settings", "split_arm"]

#: name -> (label, settings); settings: "strategy_options" (merged), "heredity", "eta",
#: "min_epochs", "population".
LEVERS: dict[str, tuple[str, dict[str, Any]]] = {
    "tournament": ("tournament (k=2)",
                   {"strategy_options": {"selection": {"type": "Tournament", "k": 2}}}),
    "nocrossover": ("no crossover",
                    {"strategy_options": {"crossover": {"type": "Uniform", "p": 1.0}}}),
    "point1": ("one change per child",
               {"strategy_options": {"mutation": {"type": "PointMutation", "count": 1}}}),
    "mutation5": ("1-4 changes per child",
                  {"strategy_options": {"mutation": {"type": "DevolMutation", "base": 5}}}),
    "shapes": ('slot rule "shapes"', {"heredity": "shapes"}),
    "slices": ('slot rule "slices"', {"heredity": "slices"}),
    "eta2": ("eta 2", {"eta": 2}),
    "min2": ("first rung 2 epochs", {"min_epochs": 2}),
    "pop16": ("population 16", {"population": 16}),
}


def split_arm(arm: str) -> tuple[str, tuple[str, ...]]:
    """``"ga_sh_inherit+tournament+slices"`` -> ``("ga_sh_inherit", ("tournament", "slices"))``."""
    base, *levers = arm.split("+")
    return base, tuple(levers)


def lever_settings(levers: tuple[str, ...]) -> dict[str, Any]:
    """The settings the ``levers`` make, later ones winning (strategy options merged)."""
    out: dict[str, Any] = {"strategy_options": {}}
    for name in levers:
        for key, value in LEVERS[name][1].items():
            if key == "strategy_options":
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    return out
