"""Failures told apart: a candidate's fault, the machine's fault, or a bug in the user's code.

- a bug in one allele value of a gene is refused before anything trains (the dry run);
- a gene that fails only while training trips the circuit breaker with the original error;
- a failure that was the machine's (a lost worker) is not cached: a later copy of the genome,
  or a resume, trains it again, a bounded number of times per session (here with an evaluator
  that reports lost workers; with real worker processes that die, in
  test_parallel_pool.py::test_killed_workers_are_replaced_retried_then_failed_and_a_later_copy_retrains);
- a strategy object runs the kind of search it declares, for the whole budget.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.evolution import GeneticAlgorithm, RegularizedEvolution
from pytorch_devol.schema import DenseGene, GeneError, InvalidGenomeError, OptimizerGene, dry_run
from pytorch_devol.search import SerialEvaluator
from pytorch_devol.search.loop import MAX_RETRIES
from pytorch_devol.training import EvalResult, TrainConfig
from pytorch_devol.training.failures import classify_failure

from .genes_for_tests import BuggyGene, ExplodingGene, TrainTimeBugGene
from .parallel_helpers import Scripted

FP32 = TrainConfig(precision="fp32", batch_size=64)
SMALL_DENSE = DenseGene.with_choices(units=[16, 32], dropout=[0.0])


def small_schema(*layers) -> GenomeSchema:
    return GenomeSchema([*layers, (SMALL_DENSE, 1)], OptimizerGene, (1, 8, 8), 10)


# -- before training --------------------------------------------------------------------------
def test_a_bug_in_one_allele_value_is_refused_before_training(tmp_path, digits):
    schema = small_schema((BuggyGene, 1))
    with pytest.raises(GeneError, match=r"BuggyGene\.units=2\.5 .*TypeError") as info:
        Search(schema, digits, generations=1, population_size=2, run_dir=tmp_path / "run",
               verbose=False)
    assert isinstance(info.value.__cause__, TypeError)
    assert not (tmp_path / "run").exists()


def test_a_gene_that_refuses_a_shape_is_a_candidate_fault_not_a_bug():
    schema = small_schema((ExplodingGene, 1))
    dry_run(schema)  # InvalidGenomeError from build: accepted
    assert classify_failure(InvalidGenomeError("no")) == "candidate"
    assert classify_failure(TypeError("no")) == "unexpected"
    assert classify_failure(torch.OutOfMemoryError("oom")) == "candidate"
    assert classify_failure(torch.OutOfMemoryError("oom"), shared_device=True) == \
        "infrastructure"
    assert classify_failure(RuntimeError("CUDA error: an illegal memory access")) == \
        "infrastructure"


@pytest.mark.slow
def test_a_bug_that_shows_only_in_training_trips_the_circuit_breaker(tmp_path, digits):
    schema = small_schema((TrainTimeBugGene, 1))
    search = Search(schema, digits, generations=3, population_size=3, epochs=1,
                    run_dir=tmp_path / "run", train_config=FP32, verbose=False)
    with pytest.raises(TypeError, match="unsupported operand") as info:
        search.run()
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "stopped the search" in notes and "genes_for_tests.py" in notes
    records = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").open()]
    trained = [r for r in records if not r["cached"]]
    assert len(trained) == 3  # one population, not the whole budget of 9
    assert all(r["metrics"]["failure"] == "unexpected" for r in trained)


# -- the machine's fault ----------------------------------------------------------------------
class LosesWorker(SerialEvaluator):
    """Reports the machine's failure (as a lost worker would) for the first ``times`` attempts
    at ``genome``; optionally 'dies' (KeyboardInterrupt) after ``stop_after`` results."""

    def __init__(self, genome, times=1, stop_after=None):
        super().__init__()
        self.genome, self.times, self.stop_after, self.attempts = tuple(genome), times, \
            stop_after, 0

    def next_result(self):
        if self.stop_after is not None:
            if self.stop_after == 0:
                raise KeyboardInterrupt
            self.stop_after -= 1
        task = self._queue[0]
        if task.genome == self.genome and self.attempts < self.times:
            self.attempts += 1
            self._queue.popleft()
            return task, EvalResult.failed("WorkerDied: worker 0 was killed by SIGKILL",
                                           "infrastructure")
        return super().next_result()


def _genomes(schema, n, seed=0):
    rng = np.random.default_rng(seed)
    out = []
    while len(out) < n:
        g = schema.random(rng)
        if all(schema.key(g) != schema.key(o) for o in out):
            out.append(g)
    return out


@pytest.mark.slow
def test_a_lost_worker_is_not_cached_a_later_copy_trains_again(tmp_path, digits):
    schema = small_schema()
    g, a, b = _genomes(schema, 3)
    strategy = Scripted(schema.cardinalities, [[g, a], [g, b]])
    result = Search(schema, digits, generations=2, population_size=2, epochs=1,
                    run_dir=tmp_path / "run", strategy=strategy, evaluator=LosesWorker(g),
                    train_config=FP32, verbose=False).run()
    first, later = result.history[0], result.history[2]
    assert first["metrics"]["failure"] == "infrastructure" and not first["cached"]
    assert later["genome"] == first["genome"]
    assert later["metrics"]["status"] == "ok" and not later["cached"]


@pytest.mark.slow
def test_a_lost_worker_is_trained_again_after_a_resume(tmp_path, digits):
    schema = small_schema()
    g, a, b = _genomes(schema, 3, seed=1)
    script = [[g, a], [g, b]]
    run = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        Search(schema, digits, generations=2, population_size=2, epochs=1, run_dir=run,
               strategy=Scripted(schema.cardinalities, script),
               evaluator=LosesWorker(g, stop_after=2), train_config=FP32, verbose=False).run()
    result = Search.resume(run, strategy=Scripted(schema.cardinalities, script),
                           verbose=False).run()
    copies = [r for r in result.history if r["genome"] == g.tolist()]
    assert [r["metrics"]["status"] for r in copies] == ["failed", "ok"]
    assert not copies[1]["cached"]


@pytest.mark.slow
def test_retries_of_a_genome_are_bounded_per_session(tmp_path, digits):
    schema = small_schema()
    (g,) = _genomes(schema, 1, seed=2)
    result = Search(schema, digits, generations=MAX_RETRIES + 2, population_size=1, epochs=1,
                    run_dir=tmp_path / "run", strategy=Scripted(schema.cardinalities, [[g]]),
                    evaluator=LosesWorker(g, times=100), train_config=FP32,
                    verbose=False).run()
    assert [r["cached"] for r in result.history] == [False] * (MAX_RETRIES + 1) + [True]
    assert all(r["metrics"]["failure"] == "infrastructure" for r in result.history)


# -- strategy objects -------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("make", [
    lambda cards, key: RegularizedEvolution(cards, 3, sample_size=2, seed=0, key=key),
    lambda cards, key: GeneticAlgorithm(cards, 2, seed=0, key=key),
])
def test_a_strategy_object_evaluates_the_whole_budget(tmp_path, digits, make):
    schema = small_schema()
    strategy = make(schema.cardinalities, schema.key)
    result = Search(schema, digits, generations=2, population_size=3, epochs=1,
                    run_dir=tmp_path / "run", strategy=strategy, train_config=FP32,
                    verbose=False).run()
    assert len(result.history) == 6


def test_a_strategy_must_say_whether_it_is_steady_state(digits):
    schema = small_schema()
    strategy = Scripted(schema.cardinalities, [[schema.random(0)]])
    del Scripted.steady_state
    try:
        with pytest.raises(TypeError, match="steady_state"):
            Search(schema, digits, strategy=strategy, verbose=False)
    finally:
        Scripted.steady_state = False


# -- the checkpoint stays small ---------------------------------------------------------------
def test_the_checkpoint_leaves_out_the_memory_of_asked_genomes_and_restores_it():
    cards = np.array([3, 4, 5, 2])
    original = GeneticAlgorithm(cards, 6, seed=3, key=lambda g: tuple(g))
    log = []  # every genome handed out, as the run log holds them
    for _ in range(3):
        genomes = original.ask()
        log.extend(genomes)
        original.tell(genomes, np.arange(len(genomes), dtype=float))
    log.extend(original.ask(2))  # mid-generation: the rest of it is bred, not handed out
    compact = original.state_dict(include_seen=False)
    assert compact["seen"] is None
    restored = GeneticAlgorithm(cards, 6, seed=99, key=lambda g: tuple(g))
    restored.load_state_dict(json.loads(json.dumps(compact)))
    restored.remember(np.asarray(log))
    assert sorted(map(tuple, restored.state_dict()["seen"])) == \
        sorted(map(tuple, original.state_dict()["seen"]))
    assert np.array_equal(restored.ask(), original.ask())
    restored_all, original_all = restored.ask(), original.ask()
    assert np.array_equal(restored_all, original_all)
