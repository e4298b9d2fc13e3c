"""`Settings` is the ``search`` section of config.json: it round-trips, refuses what it does
not know before anything runs, reads older run directories, and a resume gets every saved
setting back (the circuit breaker's window included)."""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.search.settings import Settings

from .scoring import ScoreEvaluator

SCHEMA = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=1, max_filters=8,
                            max_dense_nodes=16, input_shape=(1, 8, 8), n_classes=10)
words = st.text("abcdefgh_", min_size=1, max_size=8)
plain = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | words,
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(words, inner, max_size=3), max_leaves=6)
settings_objects = st.builds(
    Settings, generations=st.integers(0, 99), population_size=st.integers(1, 99),
    seed=st.integers(0, 2**31), metric=st.sampled_from(["accuracy", "loss"]),
    maximize=st.booleans(), strategy=words,
    strategy_options=st.dictionaries(words, plain, max_size=3),
    fitness=st.none() | words, constraints=st.lists(words, max_size=2),
    latency_batch=st.integers(1, 8), fidelity=st.none() | st.dictionaries(words, plain),
    inherit_weights=st.sampled_from([False, "genes", "shapes", "slices"]),
    circuit_breaker=st.none() | st.integers(0, 9), callbacks=st.lists(words, max_size=2))


@settings(deadline=None)  # counts, not clocks: no per-example time limit
@given(settings_objects)
def test_settings_round_trip_through_json(settings):
    saved = json.loads(json.dumps(settings.to_dict()))
    assert Settings.from_dict(saved) == settings
    assert settings.heredity == (settings.inherit_weights or None)


def _saved(**changes):
    base = Settings(generations=2, population_size=4, seed=0, metric="accuracy",
                    maximize=True, strategy="ga").to_dict()
    return {**base, **changes}


@pytest.mark.parametrize(("data", "message"), [
    ([1, 2], "not a mapping"),
    (_saved(colour="red"), r"unknown search settings \['colour'\]"),
    ({k: v for k, v in _saved().items() if k != "seed"}, r"lack \['seed'\]"),
    (_saved(generations=-1), "generations must be an int >= 0"),
    (_saved(population_size=True), "population_size must be an int"),
    (_saved(maximize="yes"), "wrong kind"),
    (_saved(strategy_options={"x": object()}), r"\['strategy_options'\]"),
])
def test_bad_saved_settings_are_refused_in_one_line(data, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_dict(data, "runs/x/config.json")


def test_an_older_run_directory_takes_the_defaults():
    old = {k: v for k, v in _saved().items()
           if k in ("generations", "population_size", "seed", "metric", "maximize",
                    "strategy")}
    settings = Settings.from_dict({**old, "strategy_options": None, "inherit_weights": True})
    assert settings.fidelity is None and settings.circuit_breaker is None
    assert settings.inherit_weights is True and settings.strategy_options == {}


def test_config_holds_the_settings_and_a_resume_gets_them_all_back(digits, tmp_path):
    search = Search(SCHEMA, digits, generations=1, population_size=4, epochs=3, seed=7,
                    circuit_breaker=3, inherit_weights="slices", evaluator=ScoreEvaluator(),
                    run_dir=tmp_path / "run", verbose=False)
    search.run()
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["search"]
    assert saved == search.settings.to_dict()
    again = Search.resume(tmp_path / "run", evaluator=ScoreEvaluator(), verbose=False)
    assert again.settings == search.settings
    assert again.circuit_breaker == 3 and again.heredity == "slices"
    assert attrs.fields_dict(Settings).keys() == saved.keys()


def test_every_keyword_setting_is_a_search_keyword_and_attribute(digits, tmp_path):
    """What makes a new plain setting cost one field: saving and resuming follow from it."""
    import inspect

    search = Search(SCHEMA, digits, generations=1, population_size=2, epochs=1,
                    run_dir=tmp_path / "r", evaluator=ScoreEvaluator(), verbose=False)
    parameters = inspect.signature(Search).parameters
    assert Settings.keywords() == ("generations", "population_size", "seed", "metric",
                                   "circuit_breaker")
    for name in Settings.keywords():
        assert name in parameters and getattr(search, name) == getattr(search.settings, name)
