"""RayEvaluator on a local Ray instance (2 CPUs and 2 logical GPUs, shared by these tests).

Same GA and successive-halving results as in-process and ASHA on Ray (one evaluator with one
logical GPU per candidate, opened once and lent to each search), GPU assignment per candidate
(whole and fractional, checked with Ray's logical GPUs, so no GPU is needed), a worker killed
mid-candidate retried by Ray and then recorded as failed, and only an instance the evaluator
started is shut down by it.

Each Ray actor is a process that imports torch (seconds on a slow machine), so the tests start
as few actors as what they prove needs.
"""

from __future__ import annotations

import os
from collections import Counter

import numpy as np
import pytest

ray = pytest.importorskip("ray", reason="Ray is an optional extra: "
                                        "pip install 'pytorch-devol[ray]'")

from pytorch_devol import Search  # noqa: E402
from pytorch_devol.search import (  # noqa: E402
    SerialEvaluator,
    Task,
    make_evaluator,  # noqa: E402
)
from pytorch_devol.search.evaluators import RayEvaluator  # noqa: E402
from pytorch_devol.training import TrainConfig  # noqa: E402
from tests.parallel_helpers import (  # noqa: E402
    KILL_DIR_ENV,
    Lent,
    arm,
    kill_schema,
    tiny_schema,
    tokens_left,
)

# Every search and evaluator of this module trains with it (patience=None: successive halving
# and ASHA take promoted candidates on to the full 3 epochs).
CONFIG = TrainConfig(precision="fp32", epochs=3, patience=None)
TIMINGS = {"train_seconds", "total_seconds"}
SAFE = (0, 1, 1, 0, 0, 0, 0)      # kill_schema genomes: [armed, dense..., optimizer]
ARMED = (1, 1, 0, 0, 0, 0, 0)

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def kill_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("kill")


# Ray starts its worker processes at niceness 15: on a machine busy with anything else (other
# tests at once, say) the actors then barely run (an actor took 80 s to start here, not 3 s).
# The test instances run them at normal priority, like the pool's workers.
RAY_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_worker_niceness": "0"}


@pytest.fixture(scope="module")
def local_ray(kill_dir):
    """One local Ray instance for the module. Its workers inherit this environment, so the
    kill-switch folder is set before it starts."""
    saved = {k: os.environ.get(k) for k in (*RAY_ENV, KILL_DIR_ENV)}
    os.environ.update(RAY_ENV)
    os.environ[KILL_DIR_ENV] = str(kill_dir)
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _search(data, run_dir, evaluator, seed=0, generations=2, **options):
    options = {"fidelity": None, "inherit_weights": False, **options}  # what a test turns on
    return Search(tiny_schema(), data, generations=generations, population_size=4, seed=seed,
                  run_dir=run_dir, evaluator=evaluator, train_config=CONFIG, verbose=False,
                  **options).run()


def _metrics(result):
    return {r["index"]: (r["genome"], r["cached"], {k: v for k, v in r["metrics"].items()
                                                     if k not in TIMINGS})
            for r in result.history}


def _run_tasks(evaluator, genomes, start=0):
    for i, genome in enumerate(genomes, start):
        evaluator.submit(Task(i, tuple(genome), seed=i))
    return dict((task.index, result) for task, result in
                (evaluator.next_result() for _ in genomes))


# -- no instance needed ---------------------------------------------------------------------
def test_bad_arguments():
    with pytest.raises(ValueError, match="existing cluster"):
        RayEvaluator(address="auto", num_cpus=2)
    with pytest.raises(ValueError, match="gpus_per_candidate"):
        RayEvaluator(gpus_per_candidate=-0.5)
    with pytest.raises(ValueError, match="actors"):
        RayEvaluator(actors=0)
    with pytest.raises(RuntimeError, match="open"):
        RayEvaluator().submit(Task(0, (0,), 0))


def test_make_evaluator_ray_flags():
    local = make_evaluator(ray_address="local", workers=3, workers_per_gpu=4)
    assert isinstance(local, RayEvaluator)
    assert local.address is None and local.capacity == 3 and local.gpus_per_candidate == 0.25
    assert make_evaluator(ray_address="auto").address == "auto"


# Runs before the shared instance exists (tests run in file order). The only test with its
# own instance; its actor starts (and reports where it runs) but trains nothing: actors
# training on an instance the evaluator did not start are the same actors.
def test_starts_and_shuts_down_its_own_instance(digits, monkeypatch):
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    for key, value in RAY_ENV.items():
        monkeypatch.setenv(key, value)
    evaluator = RayEvaluator(num_cpus=1)
    evaluator.open(kill_schema(), digits, CONFIG)
    try:
        assert evaluator.owns_ray and ray.is_initialized() and evaluator.capacity == 1
        assert [info["pid"] != os.getpid() for info in evaluator.actor_info] == [True]
    finally:
        evaluator.close()
    assert not ray.is_initialized()


# -- on the shared local instance -----------------------------------------------------------
@pytest.fixture(scope="class")
def whole_gpus(local_ray, digits):
    """The default RayEvaluator on the shared instance (one logical GPU per candidate: two
    actors, which hold all its CPUs and GPUs until the class is done), opened once with
    tiny_schema, digits and CONFIG and lent to each search of the class (`Lent`; each search is
    checked to train what the actors were set up with, so all use seed 0, which a search
    writes into its config)."""
    with RayEvaluator() as evaluator:
        evaluator.open(tiny_schema(), digits, CONFIG)
        yield evaluator


class TestOneGpuPerCandidate:
    """Searches lent the `whole_gpus` actors (released when the class is done)."""

    def test_ga_search_matches_in_process(self, whole_gpus, digits, tmp_path, one_thread):
        """Also the whole-GPU assignment: by default each candidate holds one of the two
        logical GPUs, so two actors, each on its own GPU (the device stays the CPU)."""
        serial = _search(digits, tmp_path / "serial", SerialEvaluator())
        lent = Lent(whole_gpus, tiny_schema(), digits, CONFIG)
        parallel = _search(digits, tmp_path / "ray", lent)
        assert lent.opened == 1
        assert np.array_equal(parallel.best_genome, serial.best_genome)
        assert _metrics(parallel) == _metrics(serial)
        assert whole_gpus.capacity == 2
        assert len({info["pid"] for info in lent.assignments.values()}) == 2
        ids = [tuple(info["gpu_ids"]) for info in lent.assignments.values()]
        assert all(len(g) == 1 for g in ids) and set(ids) == {("0",), ("1",)}
        assert {info["device"] for info in lent.assignments.values()} == {"cpu"}  # logical
        # The evaluator did not start this instance.
        assert not whole_gpus.owns_ray and ray.is_initialized()

    def test_inherited_weights_on_ray_match_in_process(self, whole_gpus, digits, tmp_path,
                                                        one_thread):
        serial = _search(digits, tmp_path / "serial", None, generations=3, inherit_weights=True)
        lent = Lent(whole_gpus, tiny_schema(), digits, CONFIG)
        on_ray = _search(digits, tmp_path / "ray", lent, generations=3, inherit_weights=True)
        assert _metrics(on_ray) == _metrics(serial)
        assert any(r["parent"] is not None for r in serial.history)
        assert sorted((r["index"], r["parent"]) for r in on_ray.history) == \
            sorted((r["index"], r["parent"]) for r in serial.history)

    def test_asha_and_successive_halving_on_ray(self, whole_gpus, digits, tmp_path, one_thread):
        serial = _search(digits, tmp_path / "serial", None, fidelity="sh")
        lent = Lent(whole_gpus, tiny_schema(), digits, CONFIG)
        on_ray = _search(digits, tmp_path / "ray", lent, fidelity="sh")
        assert {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in on_ray.history} == \
            {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in serial.history}
        asha = _search(digits, tmp_path / "asha", lent, fidelity="asha", strategy="regularized")
        assert lent.opened == 2
        promoted = [r for r in asha.history if r["rung"] > 0 and not r["cached"]]
        assert promoted and all(r["rung_epochs"] == 2 for r in promoted if
                                r["metrics"]["status"] == "ok")  # 1 -> 3 epochs: continued
        assert asha.best_record["final"]
        serial = _search(digits, tmp_path / "hb-serial", None, fidelity="hyperband")
        brackets = _search(digits, tmp_path / "hb-ray", lent, fidelity="hyperband")
        assert {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in brackets.history} \
            == {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in serial.history}


def test_fractional_gpus_per_candidate(local_ray, digits):
    """Half a GPU (and half a CPU) each: four actors, two on each logical GPU (read from what
    each actor reported when it started; none needs to train)."""
    with RayEvaluator(gpus_per_candidate=0.5, cpus_per_candidate=0.5) as shared:
        shared.open(kill_schema(), digits, CONFIG)
        assert shared.capacity == 4                   # two candidates per GPU
        assert all(len(info["gpu_ids"]) == 1 for info in shared.actor_info)
        assert Counter(info["gpu_ids"][0] for info in shared.actor_info) == {"0": 2, "1": 2}
        assert len({info["pid"] for info in shared.actor_info}) == 4
    # Closing an evaluator that did not start the instance leaves it running.
    assert not shared.owns_ray and ray.is_initialized()

    with pytest.raises(ValueError, match="the Ray cluster has 2 CPUs and 2 GPUs"):
        RayEvaluator(gpus_per_candidate=3).open(kill_schema(), digits, CONFIG)
    assert ray.is_initialized()


def test_dead_worker_is_retried_then_recorded_failed(local_ray, digits, kill_dir, tmp_path):
    """One evaluator (two CPU actors, ``max_retries=1``): first a search whose armed candidate
    kills its actor once (Ray restarts the actor and retries the candidate: nothing is lost),
    then a candidate that kills the first try and the retry (recorded as failed,
    "infrastructure"), after which the evaluator still serves candidates."""
    with RayEvaluator(gpus_per_candidate=0, max_retries=1) as evaluator:
        evaluator.open(kill_schema(), digits, CONFIG)
        arm(kill_dir, 1)
        lent = Lent(evaluator, kill_schema(), digits, CONFIG)
        result = Search(kill_schema(), digits, generations=2, population_size=4, seed=0,
                        run_dir=tmp_path / "run", evaluator=lent, train_config=CONFIG,
                        fidelity=None, inherit_weights=False, verbose=False).run()
        assert tokens_left(kill_dir) == 0                  # an actor died mid-candidate...
        assert len(result.history) == 8
        assert all(r["metrics"]["status"] == "ok" for r in result.history)  # ...was retried
        started = {info["pid"] for info in evaluator.actor_info}
        served = {info["pid"] for info in lent.assignments.values()}
        assert len(started) == 2 and served - started    # a restarted actor served candidates

        arm(kill_dir, 2)                                   # the first try and the retry die
        results = _run_tasks(evaluator, [ARMED, SAFE, SAFE], start=100)
        assert tokens_left(kill_dir) == 0
        assert results[100].status == "failed" and "WorkerDied" in results[100].reason
        assert results[100].failure == "infrastructure"
        assert results[101].ok and results[102].ok
        # The actor that had the failed candidate (restarted) still serves candidates: it is
        # the one the next candidate goes to.
        assert _run_tasks(evaluator, [SAFE], start=103)[103].ok
    assert ray.is_initialized()
