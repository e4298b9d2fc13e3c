"""Warm start: the strategies' ``warm_start`` (properties over random spaces: the first asks
are the given genomes, the rest the strategy's own, states round-trip), and real searches on
digits: the first generation begins with the earlier run's best distinct genomes (GA, regularized
evolution, NSGA-II), their trained weights with ``inherit_weights`` (lineage fields, the
network's starting tensors, ``lineage`` across runs), another schema refused, other data warned
and genomes only, a list of genomes validated, ``show``, the run directory read as data, the
CLI end to end, and kill -9 + resume giving the uninterrupted records."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytorch_devol import GenomeSchema, InvalidGenomeError, Search, load_dataset, load_result
from pytorch_devol.evolution import NSGA2, GeneticAlgorithm, RegularizedEvolution
from pytorch_devol.search import SerialEvaluator
from pytorch_devol.search.layout import WARM
from pytorch_devol.search.warm import warm_count
from pytorch_devol.training import TrainConfig
from tests.cli_helpers import kill_when_logged, main, search_in_process
from tests.evolution_helpers import seeds, toy_fitness
from tests.parallel_helpers import tiny_schema

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
CONFIG = TrainConfig(epochs=2, batch_size=64, patience=None, device="cpu", precision="fp32")


# -- the strategies ---------------------------------------------------------------------------
def _strategy(kind: str, cards: list[int], size: int, seed: int):
    key = tuple  # duplicate avoidance on: the warm genomes count as asked
    if kind == "ga":
        return GeneticAlgorithm(cards, size, seed=seed, key=key)
    if kind == "regularized":
        return RegularizedEvolution(cards, size, max(1, size // 2), seed=seed, key=key)
    return NSGA2(cards, size, ("max", "min"), seed=seed, key=key)


def _tell(strategy, genomes):
    fitness = toy_fitness(genomes, nan_every=0)
    if isinstance(strategy, NSGA2):
        fitness = np.stack([fitness, -fitness], axis=1)
    strategy.tell(genomes, fitness)


@FAST
@given(st.sampled_from(["ga", "regularized", "nsga2"]),
       st.lists(st.integers(2, 6), min_size=2, max_size=8), st.integers(1, 8), seeds,
       st.data())
def test_the_first_asks_are_the_warm_genomes_then_the_strategys_own(kind, cards, size, seed,
                                                                    data):
    rng = np.random.default_rng(seed)
    n = data.draw(st.integers(1, size))
    warm = np.unique(rng.integers(0, cards, size=(n, len(cards))), axis=0)
    rng.shuffle(warm)
    strategy = _strategy(kind, cards, size, seed)
    strategy.warm_start(warm)
    asked = []
    for _ in range(size):  # one at a time: a steady-state strategy's first asks, or a
        asked.append(strategy.ask(1))  # generation handed out row by row
        if kind != "regularized" and len(asked) == 1:  # its state, mid-way, round-trips
            again = _strategy(kind, cards, size, seed)
            again.load_state_dict(json.loads(json.dumps(strategy.state_dict())))
            strategy = again
    first = np.concatenate(asked)
    np.testing.assert_array_equal(first[:len(warm)], warm)
    rest = {tuple(r) for r in first[len(warm):].tolist()}
    space = int(np.prod(cards))
    if space >= 8 * size:  # room for distinct genomes: the strategy's own are new ones
        assert not rest & {tuple(r) for r in warm.tolist()}
    # the same seed and warm genomes give the same sequence
    twin = _strategy(kind, cards, size, seed)
    twin.warm_start(warm)
    np.testing.assert_array_equal(np.concatenate([twin.ask(1) for _ in range(size)]), first)
    _tell(strategy, first)
    assert strategy.ask(size).shape[1] == len(cards)  # and it goes on breeding


def test_regularized_state_keeps_the_warm_genomes_not_yet_asked():
    strategy = RegularizedEvolution([5] * 4, 6, 2, seed=0, key=tuple)
    warm = np.array([[1, 2, 3, 4], [4, 3, 2, 1], [0, 0, 0, 1]])
    strategy.warm_start(warm)
    np.testing.assert_array_equal(strategy.ask(1), warm[:1])
    state = json.loads(json.dumps(strategy.state_dict(include_seen=False)))
    assert state["warm"] == warm[1:].tolist()
    again = RegularizedEvolution([5] * 4, 6, 2, seed=0, key=tuple)
    again.load_state_dict(state)
    np.testing.assert_array_equal(again.ask(2), warm[1:])
    np.testing.assert_array_equal(again.ask(3), strategy.ask(5)[2:])


def test_warm_start_is_checked():
    ga = GeneticAlgorithm([3, 3], 4, seed=0)
    with pytest.raises(ValueError, match="out of bounds"):
        ga.warm_start([[0, 3]])
    with pytest.raises(ValueError, match="at most population_size"):
        ga.warm_start(np.zeros((5, 2), dtype=np.int64))
    ga.ask()
    with pytest.raises(ValueError, match="before the first ask"):
        ga.warm_start([[0, 1]])
    assert warm_count(1) == 1 and warm_count(4) == 2 and warm_count(5) == 3


# -- searches ---------------------------------------------------------------------------------
def _search(digits, run_dir, **options):
    options = {"generations": 2, "population_size": 4, "seed": 2, "fidelity": None,
               "inherit_weights": False, **options}  # each test names what it turns on
    return Search(tiny_schema(), digits, run_dir=run_dir, train_config=CONFIG, verbose=False,
                  **options)


@pytest.fixture(scope="module")
def source(digits, tmp_path_factory):
    """A finished search with heredity: its final donor pool stays in ``donors/``."""
    run = tmp_path_factory.mktemp("warm") / "source"
    _search(digits, run, seed=1, inherit_weights=True).run()
    return run


def _best_distinct(run, count):
    """The earlier run's best distinct genomes, worked out from its result."""
    chosen, keys = [], set()
    for r in load_result(run).top(1000):
        if r["metrics"]["status"] == "ok" and tuple(r["key"]) not in keys and \
                len(chosen) < count:
            keys.add(tuple(r["key"]))
            chosen.append(r)
    return chosen


def _first(result, count):
    """The records of candidates 0 .. count - 1 (at the first rung), in order."""
    return sorted((r for r in result.history if r["index"] < count and r["rung"] == 0),
                  key=lambda r: r["index"])


def test_a_finished_search_keeps_its_final_donor_pool(source):
    pool = {r["index"] for r in load_result(source).top(4)}
    assert {int(p.stem) for p in (source / "donors").glob("*.pt")} == pool
    for index in pool:
        state = torch.load(source / "donors" / f"{index}.pt", weights_only=True)["tensors"]
        load_result(source).schema.build_model(
            next(r["genome"] for r in load_result(source).history if r["index"] == index)
        ).load_state_dict(state)


@pytest.mark.parametrize("strategy, options", [
    ("ga", {}), ("ga", {"fidelity": "sh", "epochs": 3}),
    ("regularized", {"fidelity": "asha", "epochs": 3, "inherit_weights": True}),
    ("nsga2", {"objectives": ["val_accuracy", "params"]})], ids=["ga", "sh", "asha", "nsga2"])
def test_the_first_generation_begins_with_the_earlier_best_distinct_genomes(
        digits, source, tmp_path, strategy, options):
    result = _search(digits, tmp_path / "new", strategy=strategy, warm_start=source,
                     **options).run()
    expected = _best_distinct(source, warm_count(4))
    first = _first(result, 4)
    assert [r["genome"] for r in first[:2]] == [r["genome"] for r in expected]
    assert all(r["generation"] == 0 for r in first)
    own = {tuple(r["key"]) for r in first[2:]}  # the strategy's own fill the rest
    assert len(own) == 2 and not own & {tuple(r["key"]) for r in expected}
    saved = json.loads((tmp_path / "new" / "config.json").read_text())["warm_start"]
    assert saved["run"] == str(source.resolve())
    assert [g["genome"] for g in saved["genomes"]] == [r["genome"] for r in expected]
    assert [g["index"] for g in saved["genomes"]] == [r["index"] for r in expected]
    weights = options.get("inherit_weights", False)
    assert all((g["weights"] is not None) == weights for g in saved["genomes"])
    for r in result.history:  # a promotion keeps the lineage it started with
        assert (r["parent_run"] is not None) == (weights and r["index"] < 2)
    assert Search.resume(tmp_path / "new", verbose=False).run().history == result.history


class _Spy(SerialEvaluator):
    """Keeps every task it is sent."""

    def __init__(self):
        super().__init__()
        self.sent = []

    def submit(self, task):
        self.sent.append(task)
        super().submit(task)


def test_inherit_weights_starts_warm_genomes_from_their_trained_weights(digits, source,
                                                                        tmp_path):
    spy, run = _Spy(), tmp_path / "new"
    result = _search(digits, run, seed=3, inherit_weights=True, warm_start=source,
                     evaluator=spy).run()
    earlier = str(source.resolve())
    for position, donor in enumerate(_best_distinct(source, 2)):
        record = _first(result, 2)[position]
        assert (record["parent"], record["parent_run"]) == (donor["index"], earlier)
        assert record["inherited_params"] == donor["metrics"]["params"] > 0
        assert record["lineage_epochs"] == donor["lineage_epochs"] + donor["metrics"]["epochs"]
        weights = torch.load(source / "donors" / f"{donor['index']}.pt",
                             weights_only=True)["tensors"]
        initial = next(t for t in spy.sent if t.index == position).initial
        assert initial.keys() == weights.keys()
        assert all(torch.equal(initial[k], weights[k]) for k in weights)
        chain = result.lineage(position)  # on into the earlier run's records
        assert chain[0] is record and chain[1]["index"] == donor["index"]
        assert chain[1]["metrics"] == donor["metrics"]
    assert not (run / WARM).exists() and (run / "donors").is_dir()  # copies gone, pool kept
    with open(run / "results.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [row["parent_run"] for row in rows[:2]] == [earlier, earlier]
    code, shown, _ = main("show", str(run))
    assert code == 0
    assert f"warm start: 2 genomes from {earlier}, 2 with their trained weights" in shown
    best = result.best_record
    if best["parent_run"] is not None:
        assert f"inherited from candidate {best['parent']} of {earlier}" in shown


def test_only_kept_weights_are_taken(digits, tmp_path):
    """A run without heredity keeps only its best network's weights (best.pt)."""
    plain = _search(digits, tmp_path / "plain", seed=4, generations=1).run()
    assert not (tmp_path / "plain" / "donors").exists()
    new = _search(digits, tmp_path / "new", generations=1, inherit_weights=True,
                  warm_start=tmp_path / "plain")
    assert new.warm_start.with_weights == 1
    result = new.run()
    best = plain.best_record
    assert _first(result, 1)[0]["parent"] == best["index"]
    assert _first(result, 2)[1]["parent"] is None


def test_another_schema_is_refused_naming_both_runs(digits, source, tmp_path):
    other = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=32,
                               max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
    with pytest.raises(ValueError, match="another schema") as err:
        Search(other, digits, generations=1, population_size=4, run_dir=tmp_path / "new",
               warm_start=source, verbose=False)
    assert str(tmp_path / "new") in str(err.value) and str(source) in str(err.value)
    assert "\n" not in str(err.value) and not (tmp_path / "new").exists()
    with pytest.raises(FileNotFoundError, match="not a pytorch-devol run directory"):
        _search(digits, tmp_path / "x", warm_start=tmp_path / "nowhere")


def test_other_data_takes_the_genomes_only_with_a_warning(source, tmp_path):
    other = load_dataset("digits", seed=5)  # another split: another fingerprint
    with pytest.warns(UserWarning, match="other data") as caught:
        search = _search(other, tmp_path / "new", inherit_weights=True, warm_start=source)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)
    assert search.warm_start.with_weights == 0
    result = search.run()
    expected = _best_distinct(source, 2)
    assert [r["genome"] for r in _first(result, 2)] == [r["genome"] for r in expected]
    assert all(r["parent"] is None for r in _first(result, 4))  # generation 0: no donors yet


def test_a_list_of_genomes_is_validated_and_taken(digits, tmp_path):
    schema = tiny_schema()
    good = [schema.random(1), schema.random(2)]
    bad = schema.random(3)
    bad[2] = schema.cardinalities[2]
    with pytest.raises(InvalidGenomeError, match=r"warm_start\[1\]: position 2"):
        _search(digits, tmp_path / "a", warm_start=[good[0], bad])
    with pytest.raises(InvalidGenomeError, match=r"warm_start\[0\]: genome has length 3"):
        _search(digits, tmp_path / "a", warm_start=[[0, 1, 2]])
    with pytest.raises(ValueError, match="at most population_size"):
        _search(digits, tmp_path / "a", warm_start=[schema.random(s) for s in range(40)])
    with pytest.raises(ValueError, match="empty list"):
        _search(digits, tmp_path / "a", warm_start=[])
    assert not (tmp_path / "a").exists()
    search = _search(digits, tmp_path / "new", warm_start=[good[0], good[1], good[0]],
                     inherit_weights=True)
    result = search.run()
    assert [r["genome"] for r in _first(result, 2)] == [g.tolist() for g in good]
    assert all(r["parent"] is None for r in _first(result, 4))
    code, shown, _ = main("show", str(tmp_path / "new"))
    assert code == 0 and "warm start: 2 genomes given as a list" in shown


def test_a_strategy_without_warm_start_is_refused(digits, tmp_path):
    class Bare:
        steady_state, maximize = False, True
        cardinalities = tiny_schema().cardinalities

        def ask(self, n=None): ...
        def tell(self, genomes, fitness): ...
        def state_dict(self): return {}
        def load_state_dict(self, state): ...

    with pytest.raises(TypeError, match="warm_start"):
        _search(digits, tmp_path / "new", strategy=Bare(), warm_start=[tiny_schema().random(0)])


def test_the_earlier_run_is_read_as_data(digits, source, tmp_path):
    """A pickle where weights belong is refused by weights_only loading (a warning; the
    candidate trains from scratch), and a saved warm start naming a file outside the run
    directory is refused on resume."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in source.iterdir():
        if path.is_file():
            (copy / path.name).write_bytes(path.read_bytes())
    (copy / "donors").mkdir()
    first = _best_distinct(source, 1)[0]["index"]
    torch.save({"weights": _Spy()}, copy / "donors" / f"{first}.pt")  # an object, not tensors
    with pytest.warns(RuntimeWarning, match="cannot read"):
        result = _search(digits, tmp_path / "new", generations=1, inherit_weights=True,
                         warm_start=copy).run()
    assert _first(result, 1)[0]["parent"] is None
    config = json.loads((tmp_path / "new" / "config.json").read_text())
    config["warm_start"]["genomes"][0]["weights"] = "../../etc/passwd"
    (tmp_path / "new" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="unexpected weights file"):
        Search.resume(tmp_path / "new", verbose=False)


# -- the command line ---------------------------------------------------------------------------
TINY = ["--dataset", "digits", "--max-conv-layers", "1", "--max-dense-layers", "2",
        "--max-filters", "16", "--max-dense-nodes", "32", "--generations", "3",
        "--population", "6", "--epochs", "2", "--patience", "2", "--seed", "3",
        "--precision", "fp32", "--fidelity", "none", "--inherit-weights"]


def _records(run):
    recs = [json.loads(line) for line in (run / "results.jsonl").read_text().splitlines()
            if line.strip()]
    return sorted((r["index"], r["genome"], r["cached"], r["fitness"], r["parent"],
                   r["parent_run"], r["inherited_params"], r["lineage_epochs"],
                   r["metrics"]["val_loss"]) for r in recs)


@pytest.mark.slow
def test_cli_warm_start_and_kill_9_resume_give_the_uninterrupted_records(tmp_path,
                                                                          one_thread):
    earlier = tmp_path / "earlier"
    search_in_process(*TINY, "--generations", "2", "--run-dir", str(earlier), "--quiet")
    reference = tmp_path / "ref"
    out = search_in_process(*TINY, "--warm-start", str(earlier), "--run-dir", str(reference))
    assert f"Warm start: 3 genomes from {earlier.resolve()}, 3 with their trained" in out
    expected = _records(reference)
    assert [r[5] for r in expected[:3]] == [str(earlier.resolve())] * 3
    code, shown, _ = main("show", str(reference))
    assert code == 0 and "warm start: 3 genomes from" in shown
    run = tmp_path / "killed"
    kill_when_logged(["search", *TINY, "--warm-start", str(earlier), "--run-dir", str(run),
                      "--quiet"], run / "results.jsonl", 2)
    assert len(_records(run)) < len(expected), "the search finished before it was killed"
    code, _, err = main("search", "--resume", str(run), "--warm-start", str(reference))
    assert code == 0 and "ignoring --warm-start" in err  # the saved warm start continues
    assert _records(run) == expected
    code, _, err = main("search", *TINY, "--warm-start", str(tmp_path / "nowhere"),
                        "--run-dir", str(tmp_path / "x"))
    assert code == 2 and err.count("\n") == 1 and "not a pytorch-devol run directory" in err
