"""The search runner end to end on real data: run directory, cache, resume, failures."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.schema import DenseGene, OptimizerGene, devol_columns
from pytorch_devol.search import RunStore, SerialEvaluator, load_result
from pytorch_devol.training import TrainConfig

from .genes_for_tests import BadBatchGene, BatchSizeGene, ExplodingGene

pytestmark = pytest.mark.slow

FP32 = TrainConfig(precision="fp32", batch_size=64)


def tiny_schema(**kw) -> GenomeSchema:
    args = dict(max_conv_layers=1, max_dense_layers=2, max_filters=16, max_dense_nodes=32,
                input_shape=(1, 8, 8), n_classes=10)
    return GenomeSchema.devol(**{**args, **kw})


def rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


class StopAfter(SerialEvaluator):
    """Simulates a crash: the process 'dies' after ``n`` finished candidates."""

    def __init__(self, n: int):
        super().__init__()
        self.left = n

    def next_result(self):
        if self.left == 0:
            raise KeyboardInterrupt
        self.left -= 1
        return super().next_result()


def comparable(records):
    return sorted((r["index"], r["rung"], tuple(r["genome"]), r["cached"], r["fitness"],
                   r["metrics"]["val_loss"], r["metrics"]["test_accuracy"]) for r in records)


def test_search_on_digits_writes_a_complete_run_directory(tmp_path, digits):
    """With the defaults: the GA, successive halving and heredity (docs/guide/defaults.md)."""
    schema = tiny_schema()
    result = Search(schema, digits, generations=3, population_size=5, epochs=4, seed=1,
                    run_dir=tmp_path / "run", train_config=FP32, verbose=False).run()
    run = tmp_path / "run"
    for name in ("config.json", "results.jsonl", "results.csv", "checkpoint.json", "best.pt",
                 "best_genome.json"):
        assert (run / name).stat().st_size > 0, name
    saved = json.loads((run / "config.json").read_text())["search"]
    assert (saved["strategy"], saved["fidelity"]["kind"], saved["inherit_weights"]) == \
        ("ga", "sh", "genes")
    assert sorted({r["index"] for r in result.history}) == list(range(15))
    assert any(r["rung"] > 0 and r["final"] for r in result.history)
    assert any(r["parent"] is not None for r in result.history)
    assert result.best_fitness > 0.8
    table = rows(run / "results.csv")
    assert table[0][: len(schema)] == devol_columns(schema)
    assert table[0][len(schema): len(schema) + 2] == ["Val Loss", "Val Accuracy"]
    assert len(table) == len(result.history) + 1
    # the CSV's "Val Accuracy" is the validation accuracy, the fitness
    by_index = {int(r[table[0].index("index")]): r for r in table[1:]}
    best = result.best_record
    assert float(by_index[best["index"]][len(schema) + 1]) == pytest.approx(best["fitness"])
    # the best model reloads and scores like the logged validation accuracy
    model = result.best_model
    x, y = digits.x_val, digits.y_val
    accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy == pytest.approx(result.best_metrics["val_accuracy"], abs=1e-6)
    info = json.loads((run / "best_genome.json").read_text())
    assert info["genome"] == list(result.best_genome)
    assert np.array_equal(load_result(run).best_genome, result.best_genome)


def test_identical_canonical_genomes_train_once(tmp_path, digits):
    # A space of 2 x 2 dense choices: most asks repeat a genome already trained.
    schema = GenomeSchema(layers=[(DenseGene.with_choices(units=[16, 32], batch_norm=[False],
                                                          activation=["relu"], dropout=[0.0]),
                                   1)],
                          training=OptimizerGene.with_choices(optimizer=["adam", "rmsprop"]),
                          input_shape=(1, 8, 8), n_outputs=10)
    result = Search(schema, digits, generations=3, population_size=6, epochs=1,
                    run_dir=tmp_path / "run", train_config=FP32, verbose=False).run()
    trained = [r for r in result.history if not r["cached"]]
    cached = [r for r in result.history if r["cached"]]
    assert len(result.history) == 18 and cached
    keys = [tuple(r["key"]) for r in trained]
    assert len(keys) == len(set(keys)) <= 6     # (2 widths + inactive) x 2 optimizers
    source = {r["index"]: r for r in trained}
    for r in cached:
        assert r["metrics"] == source[r["source_index"]]["metrics"]


@pytest.mark.parametrize("strategy", ["ga", "regularized"])
def test_interrupted_search_resumes_to_the_same_result(tmp_path, digits, strategy):
    settings = dict(generations=3, population_size=4, epochs=2, seed=3, train_config=FP32,
                    strategy=strategy, verbose=False)
    full = Search(tiny_schema(), digits, run_dir=tmp_path / "full", **settings).run()

    partial = Search(tiny_schema(), digits, run_dir=tmp_path / "cut", evaluator=StopAfter(5),
                     **settings)
    with pytest.raises(KeyboardInterrupt):
        partial.run()
    logged = RunStore(tmp_path / "cut").records()
    assert 0 < len(logged) < len(full.history)
    with open(tmp_path / "cut" / "results.jsonl", "a") as f:
        f.write('{"index": 99, "genome": [1, 2')      # a torn last line (crash mid-write)
    resumed = Search.resume(tmp_path / "cut", verbose=False).run()

    assert comparable(resumed.history) == comparable(full.history)
    entries = [(r["index"], r["rung"]) for r in resumed.history]
    assert len(entries) == len(set(entries))
    assert sorted({r["index"] for r in resumed.history}) == list(range(12))
    assert np.array_equal(resumed.best_genome, full.best_genome)
    assert len(rows(tmp_path / "cut" / "results.csv")) == len(full.history) + 1
    # the first logged results were kept, not retrained
    again = {(r["index"], r["rung"]): r["finished_at"] for r in resumed.history}
    assert all(again[r["index"], r["rung"]] == r["finished_at"] for r in logged)


def test_failing_candidates_never_stop_the_search(tmp_path, digits):
    schema = GenomeSchema(layers=[(ExplodingGene, 1), (DenseGene.with_choices(units=[16]), 1)],
                          training=OptimizerGene, input_shape=(1, 8, 8), n_outputs=10)
    result = Search(schema, digits, generations=2, population_size=6, epochs=1,
                    run_dir=tmp_path / "run", train_config=FP32, verbose=False).run()
    failed = [r for r in result.history if r["metrics"]["status"] == "failed"]
    assert failed and all("boom" in r["metrics"]["reason"] for r in failed)
    assert all(r["fitness"] is None for r in failed)
    assert result.best_record["metrics"]["status"] == "ok"
    assert result.schema.decode(result.best_genome)[0].explode is False


def test_bad_input_is_refused_before_training(tmp_path, digits):
    x, y = digits.x_train.numpy(), digits.y_train.numpy()
    bad = y.copy()
    bad[3] = 10
    with pytest.raises(ValueError, match=r"y_train\[3\] = 10 is outside"):
        Search(tiny_schema(), ((x, bad), (x, y)), run_dir=tmp_path / "a")
    with pytest.raises(ValueError, match="shape|input"):
        Search(tiny_schema(input_shape=(1, 28, 28)), digits, run_dir=tmp_path / "b")
    with pytest.raises(ValueError, match="metric"):
        Search(tiny_schema(), digits, metric="mae")
    with pytest.raises(ValueError, match="strategy"):
        Search(tiny_schema(), digits, strategy="annealing")
    with pytest.raises(ValueError, match="generations"):
        Search(tiny_schema(), digits, generations=0)
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "x").write_text("old")
    with pytest.raises(FileExistsError, match="resume"):
        Search(tiny_schema(), digits, run_dir=tmp_path / "used", verbose=False).run()
    assert (tmp_path / "used" / "x").read_text() == "old"
    assert not list((tmp_path).glob("a/*")) and not (tmp_path / "b").exists()


def test_user_arrays_in_devol_form_search_and_resume_needs_them(tmp_path, digits):
    x = digits.x_train.numpy().transpose(0, 2, 3, 1)          # NHWC, as Keras had it
    onehot = np.eye(10)[digits.y_train.numpy()]
    xt = digits.x_test.numpy().transpose(0, 2, 3, 1)
    data = ((x, onehot), (xt, np.eye(10)[digits.y_test.numpy()]))
    Search(tiny_schema(), data, generations=1, population_size=2, epochs=1,
           run_dir=tmp_path / "run", train_config=FP32, verbose=False).run()
    with pytest.raises(ValueError, match="pass the same data"):
        Search.resume(tmp_path / "run")
    with pytest.raises(ValueError, match="differs"):
        Search.resume(tmp_path / "run", data=((x[:500], onehot[:500]), data[1]))
    finished = Search.resume(tmp_path / "run", data=data, verbose=False).run()
    assert len(finished.history) == 2


def test_only_candidates_that_may_be_best_send_weights_back():
    from pytorch_devol.search.evaluators import BetterThan
    from pytorch_devol.training import EvalResult

    ok = EvalResult(status="ok", val_accuracy=0.8, val_loss=0.5)
    assert BetterThan("accuracy", True, None)(ok)
    assert BetterThan("accuracy", True, 0.8)(ok)          # a tie may win on index
    assert not BetterThan("accuracy", True, 0.9)(ok)
    assert BetterThan("loss", False, 0.6)(ok) and not BetterThan("loss", False, 0.4)(ok)
    assert not BetterThan("accuracy", True, None)(EvalResult.failed("boom"))


def test_resume_needs_what_a_run_directory_cannot_hold(tmp_path, digits):
    from pytorch_devol.evolution import DevolMutation, GeneticAlgorithm

    schema = tiny_schema()
    Search(schema, digits, generations=1, population_size=2, epochs=1, run_dir=tmp_path / "f",
           fitness=lambda scores: scores**2, train_config=FP32, verbose=False).run()
    with pytest.raises(ValueError, match="fitness"):
        Search.resume(tmp_path / "f")
    own = GeneticAlgorithm(schema.cardinalities, 2, seed=0, selection="Tournament")
    Search(schema, digits, generations=1, population_size=2, epochs=1, run_dir=tmp_path / "s",
           strategy=own, train_config=FP32, verbose=False).run()
    with pytest.raises(ValueError, match="pass it again"):
        Search.resume(tmp_path / "s")
    other = GeneticAlgorithm(schema.cardinalities, 2, seed=0, selection="Truncation")
    with pytest.raises(ValueError, match="state was saved with selection") as refused:
        Search.resume(tmp_path / "s", strategy=other, verbose=False).run()  # a sound file
    assert "damaged" not in str(refused.value) and "built as the run's" in str(refused.value)
    again = GeneticAlgorithm(schema.cardinalities, 2, seed=0, selection="Tournament")
    assert len(Search.resume(tmp_path / "s", strategy=again, verbose=False).run().history) == 2
    with pytest.raises(ValueError, match="may not set"):
        Search(schema, digits, strategy_options={"seed": 3})
    mutation = DevolMutation(mutable=range(1, len(schema)))
    search = Search(schema, digits, generations=1, population_size=2, epochs=1,
                    run_dir=tmp_path / "o", strategy_options={"mutation": mutation},
                    train_config=FP32, verbose=False)
    search.run()
    saved = json.loads((tmp_path / "o" / "config.json").read_text())
    assert saved["search"]["strategy_options"]["mutation"] == {
        "type": "DevolMutation", "base": 3, "divisor": 4, "minimum": 1, "force_change": True,
        "distinct": True, "mutable": list(range(1, len(schema)))}
    assert Search.resume(tmp_path / "o", verbose=False).strategy.mutation == mutation
    with pytest.raises(ValueError, match="operator of your own"):
        Search(schema, digits, strategy_options={"mutation": lambda *a, **k: a[1]})


def test_training_gene_overrides_are_checked_before_training(tmp_path, digits):
    dense = DenseGene.with_choices(units=[16])
    with pytest.raises(ValueError, match="batch_size"):
        Search(GenomeSchema(layers=[(dense, 1)], training=BadBatchGene, input_shape=(1, 8, 8),
                            n_outputs=10), digits, run_dir=tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    schema = GenomeSchema(layers=[(dense, 1)], training=BatchSizeGene, input_shape=(1, 8, 8),
                          n_outputs=10)
    result = Search(schema, digits, generations=1, population_size=3, epochs=1,
                    run_dir=tmp_path / "ok", train_config=FP32, verbose=False).run()
    assert all(r["metrics"]["status"] == "ok" for r in result.history)


def test_the_ga_gets_the_measured_operators_and_a_saved_run_keeps_its_own(tmp_path, digits):
    from pytorch_devol.evolution.operators import DevolMutation, PointMutation
    from pytorch_devol.search.strategies import DEVOL_GA_OPTIONS, SEARCH_GA_OPTIONS

    new = Search(tiny_schema(), digits, run_dir=tmp_path / "new", train_config=FP32)
    assert new.strategy.mutation == PointMutation(count=1)
    assert new.strategy_options == {**DEVOL_GA_OPTIONS, **SEARCH_GA_OPTIONS}
    mine = Search(tiny_schema(), digits, run_dir=tmp_path / "mine", train_config=FP32,
                  strategy_options={"mutation": {"type": "RateMutation", "rate": 0.2}})
    assert mine.strategy.mutation.rate == 0.2
    # a run saved before the GA had search defaults named no operators, and used DEvol's
    run = tmp_path / "old"
    with pytest.raises(KeyboardInterrupt):
        Search(tiny_schema(), digits, generations=2, population_size=4, epochs=1, run_dir=run,
               train_config=FP32, verbose=False, strategy_options=DEVOL_GA_OPTIONS,
               evaluator=StopAfter(5)).run()
    config = json.loads((run / "config.json").read_text())
    config["search"]["strategy_options"] = {}
    (run / "config.json").write_text(json.dumps(config))
    resumed = Search.resume(run, verbose=False)
    assert resumed.strategy.mutation == DevolMutation()
    assert len(resumed.run().history) == 8
