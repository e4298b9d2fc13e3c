"""RayEvaluator on a local Ray instance (2 CPUs and 2 logical GPUs, shared by these tests).

Same GA result as in-process, GPU assignment per candidate (whole and fractional, checked with
Ray's logical GPUs, so no GPU is needed), a worker killed mid-candidate retried by Ray and then
recorded as failed, and only an instance the evaluator started is shut down by it.
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
from pytorch_devol.search.ray_evaluator import RayEvaluator  # noqa: E402
from pytorch_devol.training import TrainConfig  # noqa: E402
from tests.parallel_helpers import (  # noqa: E402
    KILL_DIR_ENV,
    arm,
    kill_schema,
    tiny_schema,
    tokens_left,
)

CONFIG = TrainConfig(precision="fp32", epochs=2)
TIMINGS = {"train_seconds", "total_seconds"}
SAFE = (0, 1, 1, 0, 0, 0, 0)      # kill_schema genomes: [armed, dense..., optimizer]
ARMED = (1, 1, 0, 0, 0, 0, 0)

pytestmark = [pytest.mark.slow, pytest.mark.ray]


@pytest.fixture(scope="module")
def kill_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("kill")


@pytest.fixture(scope="module")
def local_ray(kill_dir):
    """One local Ray instance for the module. Its workers inherit this environment, so the
    kill-switch folder is set before it starts."""
    saved = {k: os.environ.get(k) for k in ("RAY_AUTH_MODE", KILL_DIR_ENV)}
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ[KILL_DIR_ENV] = str(kill_dir)
    ray.init(num_cpus=2, num_gpus=2, include_dashboard=False, ignore_reinit_error=True)
    yield ray
    ray.shutdown()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _metrics(result):
    return {r["index"]: (r["genome"], r["cached"], {k: v for k, v in r["metrics"].items()
                                                     if k not in TIMINGS})
            for r in result.history}


def _run_tasks(evaluator, genomes):
    for i, genome in enumerate(genomes):
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


# Runs before the shared instance exists (tests run in file order).
def test_starts_and_shuts_down_its_own_instance(digits, monkeypatch):
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    evaluator = RayEvaluator(num_cpus=1)
    evaluator.open(kill_schema(), digits, CONFIG)
    try:
        assert evaluator.owns_ray and ray.is_initialized() and evaluator.capacity == 1
        assert _run_tasks(evaluator, [SAFE])[0].ok
    finally:
        evaluator.close()
    assert not ray.is_initialized()


# -- on the shared local instance -----------------------------------------------------------
def test_ga_search_matches_in_process(local_ray, digits, tmp_path, one_thread):
    serial = Search(tiny_schema(), digits, generations=2, population_size=4, seed=0,
                    run_dir=tmp_path / "serial", evaluator=SerialEvaluator(),
                    train_config=CONFIG, verbose=False).run()
    evaluator = RayEvaluator()     # one (logical) GPU per candidate: 2 actors
    parallel = Search(tiny_schema(), digits, generations=2, population_size=4, seed=0,
                      run_dir=tmp_path / "ray", evaluator=evaluator, train_config=CONFIG,
                      verbose=False).run()
    assert np.array_equal(parallel.best_genome, serial.best_genome)
    assert _metrics(parallel) == _metrics(serial)
    assert evaluator.capacity == 2
    assert len({info["pid"] for info in evaluator.assignments.values()}) == 2
    # The evaluator did not start this instance, so it left it running.
    assert not evaluator.owns_ray and ray.is_initialized()


def test_gpu_assignment_per_candidate(local_ray, digits):
    with RayEvaluator(gpus_per_candidate=1) as whole:
        whole.open(kill_schema(), digits, CONFIG)
        assert whole.capacity == 2
        results = _run_tasks(whole, [SAFE] * 4)
        assert all(r.ok for r in results.values())
        ids = [tuple(info["gpu_ids"]) for info in whole.assignments.values()]
        assert all(len(g) == 1 for g in ids) and set(ids) == {("0",), ("1",)}
        assert {info["device"] for info in whole.assignments.values()} == {"cpu"}  # logical

    with RayEvaluator(gpus_per_candidate=0.5, cpus_per_candidate=0.5) as shared:
        shared.open(kill_schema(), digits, CONFIG)
        assert shared.capacity == 4                   # two candidates per GPU
        _run_tasks(shared, [SAFE] * 4)
        per_gpu = Counter(info["gpu_ids"][0] for info in shared.assignments.values())
        assert sum(per_gpu.values()) == 4 and set(per_gpu) <= {"0", "1"}

    with pytest.raises(ValueError, match="the Ray cluster has 2 CPUs and 2 GPUs"):
        RayEvaluator(gpus_per_candidate=3).open(kill_schema(), digits, CONFIG)
    assert ray.is_initialized()


def test_dead_worker_is_retried_then_recorded_failed(local_ray, digits, kill_dir, tmp_path):
    arm(kill_dir, 1)
    evaluator = RayEvaluator(gpus_per_candidate=0, max_retries=1)
    result = Search(kill_schema(), digits, generations=2, population_size=4, seed=0,
                    run_dir=tmp_path / "run", evaluator=evaluator, train_config=CONFIG,
                    verbose=False).run()
    assert tokens_left(kill_dir) == 0                  # an actor died mid-candidate...
    assert len(result.history) == 8
    assert all(r["metrics"]["status"] == "ok" for r in result.history)   # ...and was retried
    started = {info["pid"] for info in evaluator.actor_info}
    served = {info["pid"] for info in evaluator.assignments.values()}
    assert len(started) == 2 and served - started    # a restarted actor served candidates

    arm(kill_dir, 2)                                   # the first try and the retry both die
    with RayEvaluator(gpus_per_candidate=0, max_retries=1) as again:
        again.open(kill_schema(), digits, CONFIG)
        results = _run_tasks(again, [ARMED, SAFE, SAFE])
        assert tokens_left(kill_dir) == 0
        assert results[0].status == "failed" and "WorkerDied" in results[0].reason
        assert results[0].failure == "infrastructure"
        assert results[1].ok and results[2].ok
        # The restarted actor still serves candidates.
        again.submit(Task(3, SAFE, seed=3))
        assert again.next_result()[1].ok


def test_asha_and_successive_halving_on_ray(local_ray, digits, tmp_path, one_thread):
    config = TrainConfig(precision="fp32", epochs=3, patience=None)
    serial = Search(tiny_schema(), digits, generations=2, population_size=4, seed=1,
                    run_dir=tmp_path / "serial", train_config=config, fidelity="sh",
                    verbose=False).run()
    on_ray = Search(tiny_schema(), digits, generations=2, population_size=4, seed=1,
                    run_dir=tmp_path / "ray", train_config=config, fidelity="sh",
                    evaluator=RayEvaluator(), verbose=False).run()
    assert {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in on_ray.history} == \
        {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in serial.history}
    asha = Search(tiny_schema(), digits, generations=2, population_size=4, seed=1,
                  run_dir=tmp_path / "asha", train_config=config, fidelity="asha",
                  strategy="regularized", evaluator=RayEvaluator(), verbose=False).run()
    promoted = [r for r in asha.history if r["rung"] > 0 and not r["cached"]]
    assert promoted and all(r["rung_epochs"] == 2 for r in promoted if
                            r["metrics"]["status"] == "ok")  # 1 -> 3 epochs: continued
    assert asha.best_record["final"]
