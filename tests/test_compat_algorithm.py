"""``compat.DEvol`` runs DEvol's algorithm whatever ``Search``'s defaults are: its GA with
fitness-proportional selection and DEvol's mutation schedule, every candidate trained in full,
no heredity (the defaults changed under it: successive halving, heredity, one-change mutation).
"""

from __future__ import annotations

import json

import pytest

from pytorch_devol.compat import DEvol
from pytorch_devol.evolution.operators import DevolMutation, FitnessProportional
from pytorch_devol.evolution.specs import operator_from_spec
from pytorch_devol.search.strategies import DEVOL_GA_OPTIONS

from .test_compat import devol_digits, small_handler

pytestmark = pytest.mark.slow


def test_devol_runs_devols_algorithm_not_the_search_defaults(tmp_path):
    data = devol_digits(pytest.importorskip("sklearn.datasets", reason="digits need sklearn"))
    devol = DEvol(small_handler(), str(tmp_path / "log.csv"), seed=0, verbose=False)
    devol.run(data, num_generations=2, pop_size=4, epochs=2)
    saved = json.loads((devol.run_dir / "config.json").read_text())["search"]
    assert (saved["strategy"], saved["fidelity"], saved["inherit_weights"]) == ("ga", None, False)
    assert saved["strategy_options"] == DEVOL_GA_OPTIONS
    history = devol.result.history
    assert len(history) == 8 and all(r["rung"] == 0 and r["final"] for r in history)
    assert all(r["parent"] is None for r in history)
    assert operator_from_spec(DEVOL_GA_OPTIONS["mutation"], "mutation") == DevolMutation()
    assert operator_from_spec(DEVOL_GA_OPTIONS["selection"], "selection") == FitnessProportional()
