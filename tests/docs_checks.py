"""Checks of the documentation's pages on what each page's examples left in their namespace:
for the extension-point pages (docs/extending/*.md), that the search really used the object the
page wrote, that what the page says is checked is checked, and that a run using it resumes.

These are not tests of their own: ``tests/test_docs_examples.py`` runs each page once and then
calls its check (its ``CHECKS`` table), so no page trains twice. Each takes the page's
namespace and the folder it ran in.
"""

from __future__ import annotations

import json

import numpy as np
import pytest


class _Stop(Exception):
    """Raised by a callback or an evaluator to stop a search halfway."""


def _records(run_dir):
    lines = (run_dir / "results.jsonl").read_text().splitlines()
    return sorted((json.loads(line) for line in lines), key=lambda r: r["index"])


def check_training_gene(ns, tmp_path):
    """docs/extending/training-gene.md"""
    from pytorch_devol import Search
    from pytorch_devol.schema import OptimizerChoice, OptimizerSettings, TrainingOverrides

    schema, result, gene = ns["schema"], ns["result"], ns["gene"]
    assert isinstance(ns["SGDGene"](), OptimizerChoice)
    assert isinstance(ns["EpochsGene"](), TrainingOverrides)
    assert not isinstance(ns["EpochsGene"](), OptimizerSettings)
    # every candidate trained for the epochs its own gene chose
    trained = [r for r in result.history if not r["cached"]]
    assert len(trained) >= 4
    assert all(r["metrics"]["epochs"] == schema.training_overrides(r["genome"])["epochs"]
               for r in trained)
    # the gene's optimizer, with LearningRateGene's lr_scale passed in
    vector = np.zeros(len(schema), np.int64)
    vector[schema.column_names.index("sgd.momentum")] = 1            # 0.9
    vector[schema.column_names.index("lr.lr_scale")] = 3             # 3.0
    optimizer = schema.make_optimizer(vector, schema.build_model(vector).parameters())
    assert optimizer.defaults["momentum"] == 0.9
    assert optimizer.defaults["lr"] == pytest.approx(0.15)
    # the run directory names the gene types; they are known here, so the run resumes
    config = json.loads((tmp_path / "runs" / "sgd" / "config.json").read_text())
    assert [g["type"].split(":")[1] for g in config["schema"]["training"]] == [
        "SGDGene", "LearningRateGene", "EpochsGene"]
    assert Search.resume(tmp_path / "runs" / "sgd", verbose=False).run().counts() == \
        result.counts()
    # checked when the class is declared: overrides() may set only TRAINING_FIELDS
    with pytest.raises(TypeError, match=r"overrides\(\) sets \['lr'\]"):
        @gene
        class LrGene:
            lr: float = ns["allele"]([0.1, 0.01])

            def overrides(self):
                return {"lr": self.lr}


def check_strategy(ns, tmp_path):
    """docs/extending/strategy.md"""
    from pytorch_devol import Search
    from pytorch_devol.evolution import CompactState, Strategy, WarmStartable, takes_violation

    schema, data, climber, result = ns["schema"], ns["data"], ns["climber"], ns["result"]
    climb = ns["HillClimber"]
    assert isinstance(climber, Strategy)
    assert climber.best["genome"] == result.best_genome.tolist()
    assert not isinstance(climber, WarmStartable | CompactState) and not takes_violation(climber)
    run = tmp_path / "runs" / "climb"
    assert json.loads((run / "config.json").read_text())["search"]["strategy"] == "custom"
    assert json.loads((run / "checkpoint.json").read_text())["strategy"] == \
        json.loads(json.dumps(climber.state_dict()))
    # the search trained what the climber asked: after the first generation, every genome
    # is the best genome told before it with one allele changed, building another network
    records = _records(run)
    assert [r["generation"] for r in records] == [0] * 4 + [1] * 4 + [2] * 4
    for generation in (1, 2):
        best = None
        for r in records:
            if r["generation"] < generation and r["fitness"] is not None and (
                    best is None or r["fitness"] > best["fitness"]):
                best = r
        for r in records:
            if r["generation"] == generation:
                assert np.count_nonzero(np.subtract(r["genome"], best["genome"])) == 1
                assert schema.key(r["genome"]) != schema.key(best["genome"])
    # a run stopped halfway resumes with a new climber and asks what the first run asked
    def stop(record):
        if record["index"] == 5:
            raise _Stop

    halves = tmp_path / "runs" / "halves"
    with pytest.raises(_Stop):
        Search(schema, data, generations=3, population_size=4, epochs=1,
               strategy=climb(schema.cardinalities, schema.key), run_dir=halves,
               verbose=False, on_record=stop).run()
    with pytest.raises(ValueError, match="pass it again"):
        Search.resume(halves, verbose=False)
    again = climb(schema.cardinalities, schema.key)
    Search.resume(halves, strategy=again, verbose=False).run()
    assert [r["genome"] for r in _records(halves)] == [r["genome"] for r in records]
    assert again.best == climber.best
    # checked before anything trains
    with pytest.raises(ValueError, match="cardinalities differ"):
        Search(schema, data, strategy=climb(schema.cardinalities[:-1], schema.key),
               run_dir=tmp_path / "runs" / "bad", verbose=False)


def check_operator(ns, tmp_path):
    """docs/extending/operator.md"""
    from pytorch_devol import Search
    from pytorch_devol.evolution import GeneticAlgorithm, Mutation

    schema, data, ga, creep = ns["schema"], ns["data"], ns["ga"], ns["CreepMutation"]
    assert isinstance(ga.mutation, creep) and isinstance(creep(), Mutation)
    assert ga.n_told == 8 and len(ns["result"].history) == 8
    saved = json.loads((tmp_path / "runs" / "creep" / "checkpoint.json").read_text())
    assert saved["strategy"]["operators"]["mutation"] == {"type": "docs_operator.CreepMutation",
                                                          "step": 1}
    # the Mutation contract: copies in bounds, the input untouched, zero rows accepted;
    # `1 + extra` steps of at most `step`, one position each
    cards = schema.cardinalities
    rng = np.random.default_rng(0)
    genomes = schema.random(1, size=50)
    before = genomes.copy()
    assert creep()(rng, genomes[:0], cards).shape == (0, len(cards))
    for extra in (0, 2):
        out = creep(step=2)(rng, genomes, cards, extra=extra)
        assert out.shape == genomes.shape and (genomes == before).all()
        assert ((out >= 0) & (out < cards)).all()
        changed = np.count_nonzero(out != genomes, axis=1)
        assert changed.max() <= 1 + extra and np.abs(out - genomes).max() <= 2 * (1 + extra)
        assert changed.sum() > 0
    # a state saved with one step does not load into a GA with another
    other = GeneticAlgorithm(cards, population_size=4, seed=0, key=schema.key,
                             mutation=creep(step=2))
    with pytest.raises(ValueError, match="mutation"):
        other.load_state_dict(ga.state_dict())
    # a run directory cannot save an operator of one's own in strategy_options
    with pytest.raises(ValueError, match="operator of your own"):
        Search(schema, data, strategy_options={"mutation": creep()},
               run_dir=tmp_path / "runs" / "refused", verbose=False)


def check_evaluator(ns, tmp_path):
    """docs/extending/evaluator.md"""
    from pytorch_devol import Search
    from pytorch_devol.search import Evaluator

    schema, data, evaluator, result = ns["schema"], ns["data"], ns["evaluator"], ns["result"]
    logging = ns["LoggingEvaluator"]
    assert isinstance(evaluator, Evaluator)
    assert evaluator.trainer is None and evaluator.queue == []      # closed
    # it trained every candidate that was not a cached copy, once, as its record says
    trained = {r["index"]: r for r in result.history if not r["cached"]}
    assert sorted(i for i, _, _ in evaluator.log) == sorted(trained)
    assert all(trained[i]["metrics"]["status"] == status and
               trained[i]["metrics"]["epochs"] == epochs for i, status, epochs in evaluator.log)
    # an exception from next_result stops the search; a resume, with another evaluator,
    # trains the tasks that were in flight and finishes the run
    class Breaks(logging):
        def next_result(self):
            if len(self.log) == 2:
                raise _Stop
            return super().next_result()

    run = tmp_path / "runs" / "broken"
    with pytest.raises(_Stop):
        Search(schema, data, generations=2, population_size=4, epochs=1, evaluator=Breaks(),
               run_dir=run, verbose=False).run()
    assert [r["index"] for r in _records(run)] == [0, 1]
    resumed = logging()
    Search.resume(run, evaluator=resumed, verbose=False).run()
    assert [r["index"] for r in _records(run)] == list(range(8))
    assert [i for i, _, _ in resumed.log] == [i for i in sorted(trained) if i > 1]
    # checked before anything trains
    class Incomplete:
        capacity = 1

        def submit(self, task):
            pass

    with pytest.raises(TypeError, match=r"evaluator lacks open\(\)"):
        Search(schema, data, evaluator=Incomplete(), run_dir=tmp_path / "runs" / "x",
               verbose=False)
    for capacity in (None, 0, 1.5, True):  # checked too, for every strategy
        unsized = logging()
        unsized.capacity = capacity
        with pytest.raises(TypeError, match="evaluator.capacity must be an int >= 1"):
            Search(schema, data, evaluator=unsized, strategy="regularized",
                   run_dir=tmp_path / "runs" / "x", verbose=False)


def check_objective(ns, tmp_path):
    """docs/extending/objective.md"""
    from pytorch_devol import Search
    from pytorch_devol.search import Objective

    schema, result, depth = ns["schema"], ns["result"], ns["depth"]
    assert [o["name"] for o in result.objectives] == ["val_accuracy", "depth"]
    ok = [r for r in result.history if r["metrics"]["status"] == "ok"]
    infeasible = [r for r in result.history if r["metrics"]["status"] == "infeasible"]
    assert ok
    for r in ok:  # the page's fn, on the untrained network; feasible within the bound
        assert r["objectives"]["depth"] == depth(None, schema.build_model(r["genome"]))
        layers = [line for line in schema.describe(r["genome"])
                  if line.startswith(("conv2d", "dense"))]
        assert r["objectives"]["depth"] == len(layers) + 1              # and the head
        assert r["objectives"]["params"] <= 20000 and r["violation"] == 0
    for r in infeasible:  # never trained: too many parameters
        assert r["objectives"]["params"] > 20000 and r["rung_epochs"] == 0
        assert r["objectives"]["depth"] is None and r["violation"] > 0
    # the front: feasible, and no trained candidate dominates a member of it
    front = result.pareto_front
    assert front and all(r["metrics"]["status"] == "ok" for r in front)

    def point(r):
        return r["objectives"]["val_accuracy"], -r["objectives"]["depth"]

    for member in front:
        assert not any(all(a >= b for a, b in zip(point(r), point(member))) and
                       point(r) != point(member) for r in ok)
    # a resume needs the objectives again: a built-in one by name or as an Objective
    run = tmp_path / "runs" / "depth"
    with pytest.raises(ValueError, match="objectives of your own"):
        Search.resume(run, verbose=False)
    for first in ("val_accuracy", Objective("val_accuracy", "max")):
        again = [first, ns["objectives"][1]]
        assert Search.resume(run, objectives=again, verbose=False).run().counts() == \
            result.counts()
    with pytest.raises(ValueError, match="differ from the run's"):
        Search.resume(run, objectives=["val_loss", ns["objectives"][1]], verbose=False)


def check_scheduler_page(namespace, tmp_path):
    """docs/extending/fidelity.md: the schedulers, as printed, promote the better half."""
    from pytorch_devol.search import Fidelity
    from pytorch_devol.search.fidelity import EntryRung

    result = namespace["result"]
    assert isinstance(namespace["BetterHalf"](), Fidelity)
    records = result.history
    for g in range(2):
        gen = [r for r in records if r["generation"] == g]
        first = {r["index"]: r for r in gen if r["rung"] == 0}
        second = {r["index"] for r in gen if r["rung"] == 1 and not r["cached"]}
        trained = [i for i in first if not first[i]["cached"]]
        assert 1 <= len(second & set(first)) <= len(first) // 2
        # nobody who stayed at rung 0 beat anybody promoted from it
        stayed = [first[i]["fitness"] for i in trained if i not in second]
        for i in second & set(trained):
            assert all(first[i]["fitness"] >= v for v in stayed if v is not None)
    for r in records:  # rung 1 trains on to 4 epochs, or fewer if early stopping ends it
        if not r["cached"] and r["metrics"]["status"] == "ok":
            assert r["metrics"]["epochs"] == 1 if r["rung"] == 0 else \
                1 < r["metrics"]["epochs"] <= 4
    saved = json.loads((tmp_path / "runs" / "half" / "config.json").read_text())
    fidelity = saved["search"]["fidelity"]
    assert fidelity["kind"] == "custom" and fidelity["budgets"] == [1, 4]
    assert fidelity["type"].endswith("BetterHalf")
    assert result.best_record["final"] and result.best_record["metrics"]["epochs"] == 4
    # the hedge, as printed: every third candidate enters at the top rung, the rest halve
    hedged = namespace["hedged"].history
    assert isinstance(namespace["EveryThirdInFull"](), EntryRung)
    first = {}
    for r in hedged:
        first.setdefault(r["index"], r)
    assert {i: r["rung"] for i, r in first.items()} == {i: int(i % 3 == 2) for i in first}
    for g in range(2):  # the better half of the four that started at rung 0 went on
        started = [i for i in first if first[i]["generation"] == g and i % 3 != 2]
        promoted = {r["index"] for r in hedged if r["rung"] == 1 and r["index"] in started}
        assert len(started) == 4 and 1 <= len(promoted) <= 2


def check_readme(ns, tmp_path):
    assert (tmp_path / "runs" / "readme" / "best.pt").exists()
    assert sorted({r["index"] for r in ns["resumed"].history}) == list(range(8))
    assert 0.0 < ns["result"].best_metrics["val_accuracy"] <= 1.0


def check_gene(ns, tmp_path):
    import torch

    assert ns["model"](torch.rand(2, 1, 8, 8)).shape == (2, 10)
    residual = ns["ResidualGene"](active=True, kernel=5, activation="gelu")
    modules, shape = residual.build((4, 6, 6))
    assert shape == (4, 6, 6) and modules[0](torch.rand(1, 4, 6, 6)).shape == (1, 4, 6, 6)


def check_multi_fidelity(ns, tmp_path):
    assert ns["asha"].best_record["final"] and ns["sh"].best_record["rung"] == 2


def check_trackers(ns, tmp_path):
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert (tmp_path / "mlflow.db").exists()


def check_warm_start(ns, tmp_path):
    assert any((tmp_path / "runs" / "old" / "donors").glob("*.pt"))  # the final pool stays
    assert not (tmp_path / "runs" / "new" / "warm").exists()  # the copies go at the end


def check_search_spaces(ns, tmp_path):
    assert len(ns["modern"].training) == 6 and len(ns["tuned"].training) == 4


CHECKS = {
    "docs/guide/search-spaces.md": check_search_spaces,
    "README.md": check_readme,
    "docs/extending/gene.md": check_gene,
    "docs/extending/fidelity.md": check_scheduler_page,
    "docs/extending/training-gene.md": check_training_gene,
    "docs/extending/strategy.md": check_strategy,
    "docs/extending/operator.md": check_operator,
    "docs/extending/evaluator.md": check_evaluator,
    "docs/extending/objective.md": check_objective,
    "docs/guide/multi-fidelity.md": check_multi_fidelity,
    "docs/guide/trackers.md": check_trackers,
    "docs/guide/warm-start.md": check_warm_start,
}
