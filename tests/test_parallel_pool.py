"""ProcessPoolEvaluator: real searches on digits through 2 spawned CPU workers.

Same GA result as in-process, a killed worker replaced and its candidate retried (then failed),
the asynchronous strategy through the pool, and no process left behind after close(), Ctrl-C,
SIGTERM or SIGKILL of the parent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from pytorch_devol import Search
from pytorch_devol.search import pool as pool_module
from pytorch_devol.search.evaluator import SerialEvaluator, Task
from pytorch_devol.search.evaluators import make_evaluator
from pytorch_devol.search.pool import ProcessPoolEvaluator, WorkerStartupError, plan_devices
from pytorch_devol.training import TrainConfig
from tests.parallel_helpers import (
    KILL_DIR_ENV,
    arm,
    kill_schema,
    process_gone,
    tiny_schema,
    tokens_left,
)

REPO = Path(__file__).resolve().parents[1]
CONFIG = TrainConfig(precision="fp32", epochs=2)
TIMINGS = {"train_seconds", "total_seconds"}

pytestmark = pytest.mark.slow


def _search(data, run_dir, evaluator, schema=None, strategy=None, seed=0):
    return Search(schema or tiny_schema(), data, generations=2, population_size=4, seed=seed,
                  run_dir=run_dir, evaluator=evaluator, strategy=strategy,
                  train_config=CONFIG, verbose=False).run()


def _metrics(result):
    return {r["index"]: (r["genome"], r["cached"], {k: v for k, v in r["metrics"].items()
                                                     if k not in TIMINGS})
            for r in result.history}


# -- planning and argument checks (no processes) --------------------------------------------
def test_plan_devices_round_robin_over_gpus(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert plan_devices(None, 3) == ["cuda:0", "cuda:1"] * 3
    assert plan_devices(3, 1) == ["cuda:0", "cuda:1", "cuda:0"]
    assert plan_devices(None, 2, "cuda:1") == ["cuda:1", "cuda:1"]
    assert plan_devices(2, 1, "cpu") == ["cpu", "cpu"]


def test_plan_devices_on_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert plan_devices(3) == ["cpu"] * 3
    assert plan_devices(None)[0] == "cpu"
    with pytest.raises(ValueError, match="CUDA is not available"):
        plan_devices(2, 1, "cuda")
    with pytest.raises(ValueError, match="workers"):
        plan_devices(0)
    with pytest.raises(ValueError, match="workers_per_gpu"):
        plan_devices(None, 0)


def test_bad_arguments_and_misuse():
    with pytest.raises(ValueError, match="start_method"):
        ProcessPoolEvaluator(2, start_method="thread")
    with pytest.raises(ValueError, match="max_retries"):
        ProcessPoolEvaluator(2, max_retries=-1)
    pool = ProcessPoolEvaluator(2)
    assert pool.capacity == 2
    with pytest.raises(RuntimeError, match="open"):
        pool.submit(Task(0, (0,), 0))


def test_make_evaluator_maps_cli_flags():
    assert isinstance(make_evaluator(), SerialEvaluator)
    assert isinstance(make_evaluator(workers=0), SerialEvaluator)
    pool = make_evaluator(workers=3)
    assert isinstance(pool, ProcessPoolEvaluator) and pool.capacity == 3
    assert isinstance(make_evaluator(workers_per_gpu=2), ProcessPoolEvaluator)
    with pytest.raises(ValueError, match="workers"):
        make_evaluator(workers=-1)


# -- real searches --------------------------------------------------------------------------
def test_ga_search_matches_in_process(digits, tmp_path, one_thread):
    serial = _search(digits, tmp_path / "serial", SerialEvaluator())
    pool = ProcessPoolEvaluator(workers=2, threads_per_worker=1)
    parallel = _search(digits, tmp_path / "pool", pool)

    assert np.array_equal(parallel.best_genome, serial.best_genome)
    assert _metrics(parallel) == _metrics(serial)
    assert parallel.best_fitness == serial.best_fitness
    assert pool.data_transfer == "shared-memory"
    # Both workers trained candidates; each kept its one Trainer (data loaded once) for all.
    served = {}
    for info in pool.assignments.values():
        served.setdefault(info["pid"], []).append(info["served"])
    assert len(served) == 2
    for counts in served.values():
        assert sorted(counts) == list(range(1, len(counts) + 1))
    assert pool.worker_pids == []  # closed by the search
    assert all(process_gone(pid) for pid in served)


def test_killed_worker_is_replaced_and_candidate_retried(digits, tmp_path, monkeypatch):
    tokens = arm(tmp_path / "kill", 1)
    monkeypatch.setenv(KILL_DIR_ENV, str(tokens))   # inherited by the spawned workers
    pool = ProcessPoolEvaluator(workers=2, threads_per_worker=1)
    result = _search(digits, tmp_path / "run", pool, schema=kill_schema(), seed=0)

    assert tokens_left(tokens) == 0 and pool.deaths == 1    # one worker died mid-candidate
    assert len(result.history) == 8
    assert all(r["metrics"]["status"] == "ok" for r in result.history)  # retried, not lost
    retried = [i for i, a in pool.assignments.items() if a["attempt"] == 2]
    by_index = {r["index"]: r for r in result.history}
    assert len(retried) == 1 and by_index[retried[0]]["genome"][0] == 1  # the armed one
    assert [r["index"] for r in sorted(result.history, key=lambda r: r["index"])] == \
        list(range(8))


def test_candidate_failed_after_its_retries(digits, tmp_path, monkeypatch):
    tokens = arm(tmp_path / "kill", 2)                # kills the first try and the retry
    monkeypatch.setenv(KILL_DIR_ENV, str(tokens))
    schema = kill_schema()
    armed, safe = (1, 1, 0, 0, 0, 0, 0), (0, 1, 1, 0, 0, 0, 0)
    with ProcessPoolEvaluator(workers=2, threads_per_worker=1, max_retries=1) as pool:
        pool.open(schema, digits, CONFIG)
        first_pids = set(pool.worker_pids)
        for i, genome in enumerate([armed, safe, safe]):
            pool.submit(Task(i, genome, seed=i))
        results = dict((task.index, r) for task, r in (pool.next_result() for _ in range(3)))
        assert pool.deaths == 2 and tokens_left(tokens) == 0
        assert results[0].status == "failed"
        assert "WorkerDied" in results[0].reason and "SIG" not in results[0].reason
        assert "exited with code 17" in results[0].reason and "2 attempts" in results[0].reason
        assert results[1].ok and results[2].ok
        assert len(pool.worker_pids) == 2 and not first_pids <= set(pool.worker_pids)
        # The pool still works after the deaths.
        pool.submit(Task(3, safe, seed=3))
        task, result = pool.next_result()
        assert task.index == 3 and result.ok
        with pytest.raises(RuntimeError, match="no task"):
            pool.next_result()
    assert all(process_gone(pid) for pid in first_pids)


def test_regularized_evolution_runs_asynchronously_through_the_pool(digits, tmp_path,
                                                                   monkeypatch):
    # Also the path for a small /dev/shm (Docker's 64 MB): the data is copied to each worker.
    monkeypatch.setattr(pool_module, "_shm_free", lambda: 0)
    pool = ProcessPoolEvaluator(workers=2, threads_per_worker=1)
    result = _search(digits, tmp_path / "run", pool, strategy="regularized")
    assert pool.data_transfer == "copy"
    assert sorted(r["index"] for r in result.history) == list(range(8))
    assert result.best_genome is not None
    trained = [r for r in result.history if not r["cached"]]
    assert {pool.assignments[r["index"]]["worker"] for r in trained} == {0, 1}


def test_worker_that_cannot_start_stops_the_search(digits):
    pool = ProcessPoolEvaluator(devices=["cuda:7"] if not torch.cuda.is_available()
                                else ["cuda:999"], startup_timeout=120)
    with pytest.raises(WorkerStartupError, match="failed to start"):
        pool.open(tiny_schema(), digits, CONFIG)
    assert pool.worker_pids == []
    # A worker that never gets ready is restarted, then the pool gives up (no hang).
    slow = ProcessPoolEvaluator(workers=1, startup_timeout=0.05)
    with pytest.raises(WorkerStartupError, match="did not start within 0.05s during start-up 3"):
        slow.open(tiny_schema(), digits, CONFIG)
    assert slow.worker_pids == [] and slow.deaths == 3


# -- interruption: nothing left behind ------------------------------------------------------
_PARENT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path

    from pytorch_devol import Search, load_dataset
    from pytorch_devol.search.pool import ProcessPoolEvaluator
    from pytorch_devol.training import TrainConfig
    from tests.parallel_helpers import tiny_schema


    class Recording(ProcessPoolEvaluator):
        def open(self, *args):
            super().open(*args)
            tmp = Path(sys.argv[1] + ".tmp")
            tmp.write_text(json.dumps(self.worker_pids))
            tmp.rename(sys.argv[1])


    if __name__ == "__main__":
        Search(tiny_schema(), load_dataset("digits"), generations=100, population_size=8,
               run_dir=sys.argv[2], evaluator=Recording(workers=2, threads_per_worker=1),
               train_config=TrainConfig(precision="fp32", epochs=100_000, patience=None),
               verbose=False).run()
""")


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_parent_leaves_no_process(tmp_path, sig):
    script, pids_file = tmp_path / "parent.py", tmp_path / "pids.json"
    script.write_text(_PARENT)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    log = tmp_path / "stderr.txt"
    with log.open("w") as stderr:
        parent = subprocess.Popen([sys.executable, str(script), str(pids_file),
                                   str(tmp_path / "r")], env=env, cwd=tmp_path,
                                  stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 120
        while not pids_file.exists():
            assert parent.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "workers did not start"
            time.sleep(0.2)
        workers = set(json.loads(pids_file.read_text()))
        time.sleep(1.0)                      # let them get into a candidate
        children = _children(parent.pid)
        assert workers and workers <= children
        parent.send_signal(sig)
        parent.wait(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
    assert parent.returncode != 0
    if sig == signal.SIGINT:
        assert "KeyboardInterrupt" in log.read_text()
    # Far sooner than the candidates they were training would end (100,000 epochs each).
    deadline = time.monotonic() + 10
    while not all(process_gone(p) for p in children) and time.monotonic() < deadline:
        time.sleep(0.2)
    leftover = [p for p in children if not process_gone(p)]
    for pid in leftover:  # do not leave them running when the test fails
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert leftover == []


# -- Ray stays optional ---------------------------------------------------------------------
def test_search_package_never_imports_ray():
    code = ("import sys, pytorch_devol.search, pytorch_devol.search.pool, "
            "pytorch_devol.search.evaluators; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "False"


def test_ray_evaluator_without_ray_says_how_to_install(monkeypatch):
    from pytorch_devol.search.ray_evaluator import RayEvaluator

    monkeypatch.setitem(sys.modules, "ray", None)   # makes `import ray` fail
    with pytest.raises(ImportError, match=r"pip install 'pytorch-devol\[ray\]'"):
        RayEvaluator()
