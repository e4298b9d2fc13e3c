"""Multi-fidelity search: the schedulers' rules (Hypothesis), training that pauses and continues
exactly, and searches with successive halving and ASHA, in-process and resumed after a kill."""

from __future__ import annotations

import json
import math

import attrs
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytorch_devol import ASHA, GenomeSchema, Search, SuccessiveHalving
from pytorch_devol.evolution import GeneticAlgorithm
from pytorch_devol.schema import DenseGene, allele, gene
from pytorch_devol.search.fidelity import make_fidelity, rung_budgets, rung_major
from pytorch_devol.search.store import RunStore
from pytorch_devol.training import TrainConfig, Trainer
from pytorch_devol.training.state import TrainState
from tests.parallel_helpers import tiny_schema

from .cli_helpers import kill_when_logged, main, search_in_process

CONFIG = TrainConfig(precision="fp32", epochs=4, patience=None)


@gene
class EpochsGene:
    """A training gene that sets the epochs (which a fidelity scheduler must own)."""

    epochs: int = allele([2, 4])

    def overrides(self) -> dict[str, int]:
        return {"epochs": self.epochs}
values = st.floats(0, 1, allow_nan=False)


# -- the schedulers' rules ------------------------------------------------------------------
@given(st.integers(1, 20), st.integers(1, 200), st.integers(2, 5))
def test_rung_budgets_are_bounded_and_grow_by_eta(low, high, eta):
    if low > high:
        with pytest.raises(ValueError, match="min_epochs"):
            rung_budgets(low, high, eta)
        return
    budgets = rung_budgets(low, high, eta)
    assert budgets[0] == low and budgets[-1] == high
    assert all(a < b for a, b in zip(budgets, budgets[1:]))
    assert all(b == a * eta for a, b in zip(budgets[:-2], budgets[1:-1]))
    assert len(budgets) == 1 or budgets[-1] <= budgets[-2] * eta


@pytest.mark.parametrize(("values", "eta", "higher", "maximize", "expected"), [
    ([0.5, 0.9, 0.1, 0.7, 0.3, 0.8], 3, set(), True, [1, 5]),          # 6 // 3 = 2 places
    ([0.5, 0.9, 0.1, 0.7, 0.3, 0.8], 3, set(), False, [2, 4]),         # lower is better
    ([0.5, 0.9, 0.1, 0.7, 0.3, 0.8], 2, set(), True, [1, 5, 3]),       # 6 // 2 = 3 places
    ([0.5, 0.9], 3, set(), True, [1]),                                 # at least one place
    ([0.5, 0.9, 0.1, 0.7, 0.3, 0.8], 3, {1}, True, [5]),               # 1 place taken
    ([0.5, 0.9, 0.1, 0.7, 0.3, 0.8], 3, {1, 5}, True, []),             # both taken
    ([math.nan, 0.2, math.nan], 2, set(), True, [1]),                  # failures never go on
    ([math.nan, math.nan], 2, set(), True, []),
    ([0.4, 0.4, 0.4, 0.4], 2, set(), True, [0, 1]),                    # ties: lower id
])
def test_successive_halving_promotes_the_best_entrants(values, eta, higher, maximize,
                                                       expected):
    results = list(enumerate(values))
    assert SuccessiveHalving(eta=eta).promote(0, results, higher, maximize) == expected


@given(st.lists(st.one_of(values, st.just(math.nan)), min_size=1, max_size=40),
       st.integers(2, 4), st.integers(0, 3), st.booleans())
def test_successive_halving_never_leaves_a_better_one_behind(scores, eta, n_higher, maximize):
    results = list(enumerate(scores))
    higher = set(range(min(n_higher, len(scores))))
    chosen = SuccessiveHalving(eta=eta).promote(0, results, higher, maximize)
    assert len(chosen) == len(set(chosen)) <= max(1, len(scores) // eta)
    assert not set(chosen) & higher and all(not math.isnan(scores[i]) for i in chosen)
    rest = [scores[i] for i in range(len(scores))
            if i not in chosen and i not in higher and not math.isnan(scores[i])]
    for i in chosen:
        assert all((scores[i] >= v) if maximize else (scores[i] <= v) for v in rest)


def _next_job(asha, rungs, sent):
    """The search loop's rule: the highest rung with a promotion wins."""
    for k in range(len(rungs) - 2, -1, -1):
        chosen = asha.promote(k, list(rungs[k].items()), sent[k], True)
        if chosen:
            return chosen[0], k
    return None


@settings(max_examples=60)
@given(st.lists(values, min_size=1, max_size=60), st.integers(2, 4), st.integers(2, 4),
       st.integers(1, 4), st.randoms(use_true_random=False))
def test_asha_never_blocks_and_promotes_each_candidate_once_per_rung(
        arrivals, eta, n_rungs, workers, rnd):
    """Simulated asynchronous workers: a free worker always gets work at once (a promotion or
    a new candidate), nobody is promoted twice from a rung, and when the search drains, every
    rung's top 1/eta has gone on."""
    asha = ASHA(eta=eta)
    rungs: list[dict[int, float]] = [{} for _ in range(n_rungs)]
    sent: list[set[int]] = [set() for _ in range(n_rungs)]
    score = dict(enumerate(arrivals))
    new = iter(range(len(arrivals)))
    running: list[tuple[int, int]] = []
    while True:
        while len(running) < workers:
            job = _next_job(asha, rungs, sent)
            if job is not None:
                index, rung = job
                assert index not in sent[rung] and rung < n_rungs - 1
                sent[rung].add(index)
                running.append((index, rung + 1))
            else:
                index = next(new, None)
                if index is None:
                    break
                running.append((index, 0))
        if not running:
            break
        index, rung = running.pop(rnd.randrange(len(running)))
        rungs[rung][index] = score[index] + 0.1 * rung
    for k in range(n_rungs - 1):
        best = sorted(rungs[k], key=lambda i: (-rungs[k][i], i))[:len(rungs[k]) // eta]
        assert set(best) <= sent[k] and len(sent[k]) >= len(rungs[k]) // eta


def test_asha_promotes_from_the_top_fraction_only():
    asha = ASHA(eta=3)
    results = [(0, 0.2), (1, 0.9), (2, 0.5), (3, 0.7), (4, 0.1), (5, 0.8)]
    assert asha.promote(0, results, set(), True) == [1, 5]       # top 6 // 3
    assert asha.promote(0, results, {1}, True) == [5]
    assert asha.promote(0, results, {1, 5}, True) == []         # 3 (0.7) is not in the top 2
    assert asha.promote(0, results[:2], set(), True) == []      # 2 // 3 = 0 places yet


@given(st.integers(0, 5), st.integers(0, 5), st.integers(0, 10**6), st.integers(0, 10**6),
       st.booleans())
def test_rung_major_ranks_the_rung_before_the_metric(r1, r2, i1, i2, maximize):
    """Metrics at a resolution of 1e-6 (accuracy is a multiple of 1/n for n examples)."""
    top = 5
    scale = 1e-6 if maximize else 1e-3  # accuracy in [0, 1]; a loss in [0, 1000]
    v1, v2 = i1 * scale, i2 * scale
    a, b = rung_major(v1, r1, top, maximize), rung_major(v2, r2, top, maximize)
    better = (a > b) if maximize else (a < b)
    if r1 > r2:
        assert better
    elif r1 == r2 and v1 != v2:
        assert better == ((v1 > v2) if maximize else (v1 < v2))
    assert math.isnan(rung_major(math.nan, r1, top, maximize))


def test_scheduler_arguments_are_checked():
    with pytest.raises(ValueError, match="eta"):
        SuccessiveHalving(eta=1)
    with pytest.raises(ValueError, match="min_epochs"):
        ASHA(min_epochs=0)
    with pytest.raises(ValueError, match="fidelity must be one of"):
        make_fidelity("bohb")
    with pytest.raises(TypeError, match="fidelity must be one of"):
        make_fidelity(3)
    with pytest.raises(TypeError, match="lacks.*promote"):
        make_fidelity(attrs.make_class("OnlyBudgets", {"asynchronous": attrs.field(
            default=False)}, frozen=True)())
    with pytest.raises(ValueError, match="must equal the search's epochs"):
        SuccessiveHalving(max_epochs=9).budgets(10)
    assert make_fidelity("sh", 2, 4) == SuccessiveHalving(min_epochs=2, eta=4)
    assert make_fidelity("none") is None


# -- training that pauses and continues -----------------------------------------------------
@pytest.mark.parametrize("config", [
    CONFIG,
    TrainConfig(precision="fp32", epochs=4, patience=2, schedule="cosine",
                label_smoothing=0.1),
])
def test_paused_and_continued_training_equals_uninterrupted(digits, config, tmp_path,
                                                            one_thread):
    trainer, schema = Trainer(digits, config), tiny_schema()
    rng = np.random.default_rng(1)
    for genome in schema.random(rng, size=3):
        full = trainer.evaluate(schema, genome, seed=7, keep_weights=True)
        first = trainer.evaluate(schema, genome, seed=7, epochs=1, keep_state=True)
        assert first.stop_reason == "paused" and first.epochs == 1
        assert first.train_state.epoch == 1 and first.train_state.nbytes() > 0
        path = tmp_path / "state.pt"  # through the disk, as the search keeps it
        torch.save(first.train_state.to_dict(), path)
        state = TrainState.from_dict(torch.load(path, weights_only=True))
        second = trainer.evaluate(schema, genome, seed=7, epochs=3, resume=state,
                                  keep_state=True)
        # The loss where rung 2 starts is where rung 1 ended: the history just goes on.
        assert second.history["train_loss"][:1] == first.history["train_loss"]
        last = trainer.evaluate(schema, genome, seed=7, resume=second.train_state,
                                keep_weights=True)
        assert last.history == full.history and last.epochs == full.epochs
        assert last.val_accuracy == full.val_accuracy and last.test_loss == full.test_loss
        assert last.stop_reason == full.stop_reason and last.train_state is None
        for name, tensor in full.state_dict.items():
            assert torch.equal(tensor, last.state_dict[name]), name


def test_a_state_that_stopped_early_is_scored_not_trained(digits):
    import attrs

    trainer, schema = Trainer(digits, CONFIG), tiny_schema()
    genome = schema.random(2)
    paused = trainer.evaluate(schema, genome, seed=1, epochs=2, keep_state=True)
    done = attrs.evolve(paused.train_state, stop_reason="early_stopping")
    again = trainer.evaluate(schema, genome, seed=1, resume=done, keep_state=True)
    assert again.epochs == 2 and again.stop_reason == "early_stopping"
    assert again.history == paused.history and again.val_loss == paused.val_loss
    assert again.test_loss == paused.test_loss
    assert again.train_state.stop_reason == "early_stopping"  # kept for a later rung too


def test_resuming_never_changes_the_state_and_drops_a_duplicate_best_copy(digits):
    trainer, schema = Trainer(digits, CONFIG), tiny_schema()
    genome = schema.random(5)
    paused = trainer.evaluate(schema, genome, seed=3, epochs=1, keep_state=True)
    state = paused.train_state
    assert state.best_epoch == state.epoch == 1 and state.best_model is None  # no 2nd copy
    once = trainer.evaluate(schema, genome, seed=3, resume=state, keep_weights=True)
    twice = trainer.evaluate(schema, genome, seed=3, resume=state, keep_weights=True)
    assert once.history == twice.history and once.val_loss == twice.val_loss
    for name, tensor in once.state_dict.items():
        assert torch.equal(tensor, twice.state_dict[name]), name


def test_an_unreadable_state_is_a_warning_and_a_retrain(tmp_path, digits):
    store = RunStore(tmp_path)
    trainer, schema = Trainer(digits, CONFIG), tiny_schema()
    paused = trainer.evaluate(schema, schema.random(1), seed=3, epochs=1, keep_state=True)
    store.save_state((1, 2), 0, paused.train_state)
    assert store.load_state((1, 2), 0).epoch == 1
    path = next((tmp_path / "states").glob("*.pt"))
    path.write_bytes(b"not a torch file")
    with pytest.warns(RuntimeWarning, match="unreadable training state"):
        assert store.load_state((1, 2), 0) is None
    assert not path.exists()


def test_bad_resume_arguments_raise(digits):
    trainer, schema = Trainer(digits, CONFIG), tiny_schema()
    genome = schema.random(0)
    with pytest.raises(ValueError, match="epochs must be"):
        trainer.evaluate(schema, genome, epochs=0)
    with pytest.raises(TypeError, match="TrainState"):
        trainer.evaluate(schema, genome, resume={"epoch": 1})
    with pytest.raises(ValueError, match="not a saved training state"):
        TrainState.from_dict({"epoch": 1})


# -- searches ---------------------------------------------------------------------------------
class SpyGA(GeneticAlgorithm):
    """The default GA, keeping what it is told."""

    told: list[np.ndarray]

    def tell(self, genomes, fitness):
        self.told = [*getattr(self, "told", []), np.asarray(fitness, dtype=np.float64)]
        super().tell(genomes, fitness)


def _sh_search(data, run_dir, **kw):
    return Search(tiny_schema(), data, generations=3, population_size=6, seed=3,
                  run_dir=run_dir, train_config=CONFIG, verbose=False,
                  fidelity=SuccessiveHalving(min_epochs=1, eta=2), **kw)


def test_successive_halving_search(digits, tmp_path, one_thread):
    schema = tiny_schema()
    spy = SpyGA(schema.cardinalities, 6, seed=3, key=schema.key)
    result = _sh_search(digits, tmp_path / "sh", strategy=spy).run()
    records = result.history
    budgets = (1, 2, 4)
    by_index: dict[int, list[dict]] = {}
    for r in records:
        by_index.setdefault(r["index"], []).append(r)
    assert sorted(by_index) == list(range(18))
    for rs in by_index.values():
        rungs = [r["rung"] for r in rs]
        assert rungs == sorted(set(rungs))  # one record per rung reached, in order
        for r in rs:
            assert r["final"] == (r["rung"] == 2)
            trained = not r["cached"]
            if trained and r["metrics"]["status"] == "ok":
                assert r["metrics"]["epochs"] == budgets[r["rung"]]
                # continued, not restarted: only the new epochs were spent
                below = budgets[r["rung"] - 1] if r["rung"] else 0
                assert r["rung_epochs"] == budgets[r["rung"]] - below
    # Each generation: the best max(1, n // 2) of the n trained at a rung go on. An elite
    # carried over arrives at its rung as a cached copy and takes no place.
    for g in range(3):
        gen = [r for r in records if r["generation"] == g]
        for rung in (0, 1):
            entrants = {r["index"] for r in gen if r["rung"] == rung}
            above = [r for r in gen if r["rung"] == rung + 1]
            assert all(r["cached"] for r in above if r["index"] not in entrants)  # elites
            assert len({r["index"] for r in above} & entrants) == max(1, len(entrants) // 2)
        assert sum(r["rung"] == 0 for r in gen) >= 5
    # The strategy never sees a lower rung ranked above a higher one.
    for told, g in zip(spy.told, range(3)):
        latest = {}
        for r in records:
            if r["generation"] == g:
                latest[r["index"]] = r
        rung_of = sorted(latest.values(), key=lambda r: r["index"])
        for a, fa in zip(rung_of, told):
            for b, fb in zip(rung_of, told):
                if a["rung"] > b["rung"] and not math.isnan(fa) and not math.isnan(fb):
                    assert fa > fb
    best = result.best_record
    assert best["final"] and best["metrics"]["epochs"] == 4
    assert result.best_model is not None
    spent = sum(r["rung_epochs"] for r in records)
    assert spent < 18 * 4 / 2  # far less than training everyone in full
    assert result.anytime()[-1]["epochs"] == spent
    assert not list((tmp_path / "sh" / "states").glob("*.pt"))  # cleaned up


def test_asha_search_with_regularized_evolution(digits, tmp_path, one_thread):
    result = Search(tiny_schema(), digits, generations=3, population_size=6, seed=4,
                    run_dir=tmp_path / "asha", train_config=CONFIG, verbose=False,
                    strategy="regularized", fidelity="asha").run()
    records = result.history
    assert {r["index"] for r in records} == set(range(18))
    rungs = [sum(r["rung"] == k for r in records) for k in range(2)]
    assert rungs[0] >= rungs[1] >= 1   # budgets (1, 3, 4) with eta 3
    assert any(r["rung"] == 2 for r in records) and result.best_record["final"]
    assert not list((tmp_path / "asha" / "states").glob("*.pt"))


def test_asha_too_small_for_its_rule_still_trains_one_network_in_full(digits, tmp_path):
    """4 candidates, eta 3, rungs 1, 3, 9: the 1/eta rule alone would never reach 9 epochs."""
    result = Search(tiny_schema(), digits, generations=1, population_size=4, seed=0,
                    run_dir=tmp_path / "small", epochs=9, strategy="regularized",
                    train_config=CONFIG, fidelity="asha", verbose=False).run()
    assert result.best_record is not None and result.best_record["final"]
    assert result.best_record["metrics"]["epochs"] == 9
    assert (tmp_path / "small" / "best.pt").exists()


def test_fidelity_mistakes_are_caught_before_training(digits, tmp_path):
    schema = tiny_schema()
    with pytest.raises(ValueError, match="generational"):
        Search(schema, digits, strategy="regularized", fidelity="sh", run_dir=tmp_path / "a")
    with pytest.raises(ValueError, match="steady-state"):
        Search(schema, digits, fidelity="asha", run_dir=tmp_path / "b")
    with pytest.raises(ValueError, match="min_epochs"):
        Search(schema, digits, epochs=2, fidelity=SuccessiveHalving(min_epochs=3),
               run_dir=tmp_path / "c")
    with pytest.raises(ValueError, match="pareto"):
        SuccessiveHalving(pareto="hypervolume")
    with pytest.raises(ValueError, match="sets epochs"):
        Search(GenomeSchema([(DenseGene, 1)], training=EpochsGene, input_shape=(1, 8, 8)),
               digits, fidelity="sh", run_dir=tmp_path / "e")
    assert not any(tmp_path.iterdir())


def test_the_default_fidelity_follows_the_strategy_and_steps_aside_where_it_cannot_apply(
        digits, tmp_path):
    schema = tiny_schema()

    def chosen(**options):
        return type(Search(schema, digits, run_dir=tmp_path / "x", **options).fidelity)

    assert chosen() is SuccessiveHalving and chosen(strategy="regularized") is ASHA
    assert chosen(objectives=["val_accuracy", "params"]) is type(None)
    assert chosen(constraints=["params<=1e6"]) is type(None)
    assert chosen(epochs=1) is type(None)  # one epoch leaves nothing to halve
    assert chosen(fidelity=None) is type(None)
    epochs_gene = GenomeSchema([(DenseGene, 1)], training=EpochsGene, input_shape=(1, 8, 8))
    assert Search(epochs_gene, digits, run_dir=tmp_path / "y").fidelity is None
    assert not any(tmp_path.iterdir())


def test_run_directory_names_its_fidelity_and_states_load_as_data(digits, tmp_path):
    run = tmp_path / "r"
    _sh_search(digits, run).run()
    saved = json.loads((run / "config.json").read_text())["search"]["fidelity"]
    assert saved == {"kind": "sh", "min_epochs": 1, "eta": 2, "max_epochs": None,
                     "pareto": "epsilon",
                     "budgets": [1, 2, 4]}
    resumed = Search.resume(run, verbose=False)
    assert resumed.fidelity == SuccessiveHalving(min_epochs=1, eta=2)
    csv_header = (run / "results.csv").read_text().splitlines()[0].split(",")
    assert csv_header[-6:-4] == ["rung", "rung_epochs"]
    store = RunStore(run)
    assert store.load_state((0, 1), 0) is None  # a missing state: train again, not an error


# -- killed and resumed, through the command line --------------------------------------------
TINY = ["--max-conv-layers", "1", "--max-dense-layers", "2", "--max-filters", "16",
        "--max-dense-nodes", "32", "--generations", "2", "--population", "6", "--epochs", "4",
        "--patience", "4", "--seed", "5", "--precision", "fp32", "--min-epochs", "1",
        "--eta", "2"]
FIDELITIES = {"sh": ["--fidelity", "sh"],
              "asha": ["--fidelity", "asha", "--strategy", "regularized"],
              "hyperband": ["--fidelity", "hyperband", "--inherit-weights", "slices"],
              "hyperband-async": ["--fidelity", "hyperband", "--strategy", "regularized"]}


def _records(run) -> list[tuple]:
    lines = (run / "results.jsonl").read_text().splitlines()
    recs = [json.loads(line) for line in lines if line.strip()]
    return sorted((r["index"], r["rung"], r["cached"], r["fitness"], r["rung_epochs"],
                   r["metrics"]["val_loss"]) for r in recs)


@pytest.mark.slow
@pytest.mark.parametrize("fidelity", sorted(FIDELITIES))
def test_killed_multi_fidelity_search_resumes_to_the_same_result(tmp_path, fidelity):
    """Killed just after the first promotions, resumed and killed again inside a later rung,
    then resumed to the end: the same records and best as the run never interrupted."""
    args = [*TINY, *FIDELITIES[fidelity]]
    reference = tmp_path / "ref"
    search_in_process(*args, "--run-dir", str(reference), "--quiet")
    total = len(_records(reference))
    code, shown, _ = main("show", str(reference))
    kind = fidelity.split("-")[0]
    assert code == 0 and f"fidelity: {kind}" in shown and "rung" in shown
    assert ("bracket 2:" in shown) == (kind == "hyperband")
    run = tmp_path / "killed"
    log = run / "results.jsonl"
    kill_when_logged(["search", *args, "--run-dir", str(run), "--quiet"], log, 7)
    first = len(_records(run))
    assert first < total, "the search finished before it could be killed"
    kill_when_logged(["search", "--resume", str(run), "--quiet"], log, 3)
    assert first <= len(_records(run)) < total, "the resumed search finished before the kill"
    search_in_process("--resume", str(run), "--quiet")
    assert _records(run) == _records(reference)
    best = json.loads((run / "best_genome.json").read_text())
    assert best["index"] == json.loads((reference / "best_genome.json").read_text())["index"]


def test_devol_space_search_with_fidelity_builds_every_rung(digits, tmp_path):
    schema = GenomeSchema.devol(max_conv_layers=2, max_dense_layers=2, max_filters=16,
                                max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
    result = Search(schema, digits, generations=2, population_size=5, seed=1, epochs=3,
                    run_dir=tmp_path / "d", verbose=False, fidelity="sh").run()
    assert result.best_record is not None and result.best_record["metrics"]["epochs"] <= 3


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.one_of(values, st.just(math.nan))),
                min_size=1, max_size=80),
       st.integers(2, 4), st.booleans(), st.sets(st.integers(0, 30)))
def test_the_kept_asha_order_answers_as_asha_promote(arrivals, eta, maximize, sent):
    """``rungs.AshaOrder`` (the loop's fast path) gives ASHA's answer after any arrivals,
    a later result of the same candidate replacing its earlier one."""
    from pytorch_devol.search.rungs import AshaOrder

    order, results = AshaOrder(eta, maximize), {}
    for index, value in arrivals:
        order.add(0, 0, index, value)
        results[index] = value
        promoted = sent & set(results)
        want = ASHA(eta=eta).promote(0, list(results.items()), promoted, maximize)
        assert order.first(0, 0, promoted) == (want[0] if want else None)
