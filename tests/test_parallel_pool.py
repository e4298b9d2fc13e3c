"""ProcessPoolEvaluator: real searches on digits through 2 CPU worker processes.

Same GA result as in-process (also from a script without the ``__main__`` guard and from a
stdin script), a killed worker replaced and its candidate retried (then failed as
"infrastructure"), a hung candidate failed as "timeout", a broken CUDA context replaced quietly,
errors that do not pickle, the asynchronous strategy through the pool, real start-up errors,
gene types from ``__main__`` refused, and no process left behind after close(), Ctrl-C,
SIGTERM or SIGKILL of the parent.
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.schema import DenseGene, allele, gene
from pytorch_devol.schema.registry import ACTIVATIONS
from pytorch_devol.search import SerialEvaluator, Task, make_evaluator
from pytorch_devol.search import pool as pool_module
from pytorch_devol.search.pool import (
    ProcessPoolEvaluator,
    WorkerStartupError,
    plan_devices,
    shared_devices,
)
from pytorch_devol.search.pool_worker import evaluate_task, result_message
from pytorch_devol.training import EvalResult, TrainConfig
from tests.parallel_helpers import (
    KILL_DIR_ENV,
    NeedsArgsError,
    UnpicklableError,
    arm,
    kill_schema,
    process_gone,
    tiny_schema,
    tokens_left,
    trouble_genome,
    trouble_schema,
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


def test_shared_devices_marks_workers_sharing_a_gpu():
    assert shared_devices(["cuda:0", "cuda:1", "cuda", "cpu", "cpu"]) == \
        [True, False, True, False, False]
    assert shared_devices(["cuda:0", "cuda:1"]) == [False, False]


def test_bad_arguments_and_misuse():
    with pytest.raises(ValueError, match="start_method"):
        ProcessPoolEvaluator(2, start_method="thread")
    with pytest.warns(DeprecationWarning, match="ignored"):
        ProcessPoolEvaluator(2, start_method="spawn")
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
    assert pool.data_transfer == "mmap-file"
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
        assert results[0].failure == "infrastructure" and results[0].retriable
        assert results[1].ok and results[2].ok and results[1].failure is None
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
    # Also the path where the data file cannot be written: the data is copied to each worker.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
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
    with pytest.raises(WorkerStartupError, match="failed to start") as failure:
        pool.open(tiny_schema(), digits, CONFIG)
    # The worker's own traceback, down to the call that failed on that device.
    assert "Traceback (most recent call last)" in str(failure.value)
    assert "in build_trainer" in str(failure.value)
    assert pool.worker_pids == []
    # A worker that never gets ready is restarted, then the pool gives up (no hang).
    slow = ProcessPoolEvaluator(workers=1, startup_timeout=0.05)
    with pytest.raises(WorkerStartupError, match="did not start within 0.05s during start-up 3"):
        slow.open(tiny_schema(), digits, CONFIG)
    assert slow.worker_pids == [] and slow.deaths == 3


def test_gene_module_the_worker_cannot_import_says_why(digits, monkeypatch):
    # A gene module that exists only in this process (as one created at run time would).
    ghost = types.ModuleType("ghost_genes")
    monkeypatch.setitem(sys.modules, "ghost_genes", ghost)

    @gene
    class GhostGene:
        __module__ = "ghost_genes"
        __qualname__ = "GhostGene"
        active: bool = allele([False, True])

        def build(self, in_shape):
            return [], in_shape

    ghost.GhostGene = GhostGene
    schema = GenomeSchema(layers=[GhostGene, DenseGene], input_shape=(1, 8, 8), n_outputs=10)
    pool = ProcessPoolEvaluator(workers=1)
    with pytest.raises(WorkerStartupError, match="failed to start") as failure:
        pool.open(schema, digits, CONFIG)
    assert "No module named 'ghost_genes'" in str(failure.value)
    assert "must be defined in an importable module" in str(failure.value)
    assert pool.worker_pids == []


def test_worker_that_dies_at_start_shows_its_stderr(digits, monkeypatch):
    # A worker that dies before it can report anything (a broken interpreter, a crash while
    # importing): the error shows the last lines it wrote to stderr.
    crash = "import sys; sys.stderr.write('fatal: the disk is on fire\\n'); sys.exit(3)"
    monkeypatch.setattr(pool_module, "worker_command",
                        lambda fd, pid: [sys.executable, "-c", crash])
    pool = ProcessPoolEvaluator(workers=1)
    with pytest.raises(WorkerStartupError, match="exited with code 3 during start-up 3 times") \
            as failure:
        pool.open(tiny_schema(), digits, CONFIG)
    assert "fatal: the disk is on fire" in str(failure.value)
    assert pool.worker_pids == [] and pool.deaths == 3


def test_hang_timeout_broken_context_unpicklable_errors_and_registrations(digits, monkeypatch):
    # An activation registered at run time, here only (as a script would): workers get it too.
    monkeypatch.setitem(ACTIVATIONS._entries, "pool_test_mish", torch.nn.Mish)
    with ProcessPoolEvaluator(workers=2, threads_per_worker=1, candidate_timeout=4) as pool:
        pool.open(trouble_schema(("relu", "pool_test_mish")), digits, CONFIG)
        modes = ["hang", "cuda-error", "needs-args", "unpicklable", "none"]
        for i, mode in enumerate(modes):
            pool.submit(Task(i, trouble_genome(mode, activation=1), seed=i))
        results = {task.index: r for task, r in (pool.next_result() for _ in modes)}
        hang, cuda, needs_args, unpicklable, ok = (results[i] for i in range(len(modes)))

        assert hang.failure == "timeout" and hang.reason.startswith("CandidateTimeout:")
        assert "candidate_timeout=4s" in hang.reason and pool.assignments[0]["attempt"] == 1
        # A broken CUDA context: the result comes back, then the worker is replaced quietly.
        assert cuda.failure == "infrastructure" and "CUDA error" in cuda.reason
        assert isinstance(cuda.error, RuntimeError)
        assert pool.assignments[1]["broken"] and pool.assignments[1]["pid"] not in \
            pool.worker_pids
        assert pool.deaths == 1  # the timed-out worker only
        # Errors that do not survive pickling: the result still arrives, without them.
        for result, name in ((needs_args, "NeedsArgsError"), (unpicklable, "UnpicklableError")):
            assert result.failure == "unexpected" and result.reason.startswith(name)
            assert result.error is None and result.origin is not None
        assert ok.ok and ok.failure is None  # trained with the registered activation


def test_worker_results_survive_awkward_errors():
    class Exploding:  # a Trainer whose evaluate raises: the worker's fallback
        data = type("Data", (), {"task": "classification"})()

        def evaluate(self, *args, **kwargs):
            raise KeyError("not a candidate's fault")

    result = evaluate_task(Exploding(), None, Task(0, (0,), 0))  # type: ignore[arg-type]
    assert result.failure == "unexpected" and result.reason.startswith("KeyError")
    assert result.origin is not None and "in evaluate" in result.origin
    for error, travels in ((NeedsArgsError("a", "b"), False), (UnpicklableError(), False),
                           (ValueError("fine"), True)):
        failed = EvalResult.failed(f"{type(error).__name__}: {error}", "unexpected", error=error)
        _, _, back, _ = pickle.loads(result_message(0, failed, {}))
        assert back == failed  # everything but the error (not compared) arrives
        assert (back.error is not None) == travels
        assert travels is False or (type(back.error), back.error.args) == (ValueError, ("fine",))


@gene
class ScriptGene:
    """What a gene type written in the user's script looks like: its module is __main__."""

    __module__ = "__main__"
    active: bool = allele([False, True])

    def build(self, in_shape):
        return [], in_shape


def script_activation():
    return torch.nn.Mish()


script_activation.__module__ = "__main__"  # as if written in the user's script


@pytest.mark.parametrize("what", ["gene", "with_choices", "activation"])
def test_what_scripts_define_is_refused_before_any_worker_starts(digits, monkeypatch, what):
    monkeypatch.setitem(ACTIVATIONS._entries, "script_act", script_activation)
    layers = {"gene": [ScriptGene, DenseGene],
              "with_choices": [ScriptGene.with_choices(active=[True]), DenseGene],
              "activation": [DenseGene.with_choices(activation=["relu", "script_act"])]}[what]
    named = {"activation": "activation 'script_act' (script_activation)"}.get(
        what, "gene type ScriptGene")
    schema = GenomeSchema(layers=layers, input_shape=(1, 8, 8), n_outputs=10)
    pool = ProcessPoolEvaluator(workers=2)
    with pytest.raises(ValueError) as refused:
        pool.open(schema, digits, CONFIG)
    assert f"{named} defined in the script being run (__main__)" in str(refused.value)
    assert "into a module" in str(refused.value)
    assert pool.worker_pids == [] and pool.data_transfer == ""


# -- any script: no __main__ guard, stdin --------------------------------------------------
_SIDECAR = textwrap.dedent("""
    \"\"\"A user's gene module next to their script (importable by the pool's workers).\"\"\"
    from pytorch_devol import GenomeSchema, Search, load_dataset
    from pytorch_devol.schema import allele, gene
    from pytorch_devol.training import TrainConfig

    TIMINGS = {"train_seconds", "total_seconds"}


    @gene
    class NoteGene:
        note: int = allele([0, 1])

        def build(self, in_shape):
            return [], in_shape


    def run_search(evaluator, run_dir):
        devol = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                                   max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)
        schema = GenomeSchema(layers=[*devol.layer_groups, NoteGene], training=devol.training,
                              input_shape=(1, 8, 8), n_outputs=10)
        result = Search(schema, load_dataset("digits", limit=(300, 100)), generations=2,
                        population_size=4, seed=0, run_dir=run_dir, evaluator=evaluator,
                        train_config=TrainConfig(precision="fp32", epochs=1),
                        verbose=False).run()
        return {"best_fitness": result.best_fitness,
                "history": [[r["index"], r["genome"], r["cached"],
                             {k: v for k, v in r["metrics"].items() if k not in TIMINGS}]
                            for r in sorted(result.history, key=lambda r: r["index"])]}
""")

_SCRIPT = textwrap.dedent("""
    import json, sys

    from pytorch_devol.search import ProcessPoolEvaluator
    from pool_sidecar_genes import run_search

    print("SEARCH-STARTED", flush=True)
    summary = run_search(ProcessPoolEvaluator(workers=2, threads_per_worker=1), sys.argv[1])
    print("RESULT " + json.dumps(summary), flush=True)
""")


@pytest.fixture(scope="module")
def script_dir(tmp_path_factory):
    """A folder holding a guard-less script and its gene module, plus the in-process result
    of the same search (one thread, as in the workers)."""
    pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn")
    folder = tmp_path_factory.mktemp("user")
    (folder / "pool_sidecar_genes.py").write_text(_SIDECAR)
    (folder / "search.py").write_text(_SCRIPT)
    sys.path.insert(0, str(folder))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        import pool_sidecar_genes

        serial = pool_sidecar_genes.run_search(SerialEvaluator(), str(folder / "serial"))
    finally:
        torch.set_num_threads(threads)
        sys.path.remove(str(folder))
        sys.modules.pop("pool_sidecar_genes", None)
    return folder, json.loads(json.dumps(serial))


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_script_without_main_guard_searches_once_like_in_process(script_dir, tmp_path, how):
    folder, serial = script_dir
    run_dir = str(tmp_path / "run")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if how == "file":  # from elsewhere: the script's folder is on its sys.path, not the cwd
        out = subprocess.run([sys.executable, str(folder / "search.py"), run_dir], env=env,
                             cwd=tmp_path, capture_output=True, text=True, timeout=300)
    else:               # python - < search.py: "" (the cwd) is on its sys.path
        with (folder / "search.py").open() as script:
            out = subprocess.run([sys.executable, "-", run_dir], stdin=script, env=env,
                                 cwd=folder, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.count("SEARCH-STARTED") == 1   # the workers never ran the script
    summary = json.loads(out.stdout.split("RESULT ", 1)[1])
    assert len(summary["history"]) == 8
    assert summary == serial


# -- interruption: nothing left behind ------------------------------------------------------
_PARENT = textwrap.dedent("""
    import json, os, signal, sys
    from pathlib import Path

    # A shell's background job starts with SIGINT ignored, which Python then keeps: restore
    # Ctrl-C's KeyboardInterrupt, as an interactive user has it.
    signal.signal(signal.SIGINT, signal.default_int_handler)

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
            "pytorch_devol.search.factory; print('ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert out.stdout.strip() == "False"


def test_ray_evaluator_without_ray_says_how_to_install(monkeypatch):
    from pytorch_devol.search.ray_evaluator import RayEvaluator

    monkeypatch.setitem(sys.modules, "ray", None)   # makes `import ray` fail
    with pytest.raises(ImportError, match=r"pip install 'pytorch-devol\[ray\]'"):
        RayEvaluator()


def test_successive_halving_through_the_pool_matches_in_process(digits, tmp_path, one_thread):
    """Promoted candidates continue in whichever worker gets them, from the state saved in
    the run directory: the same records as in-process."""
    def run(name, evaluator):
        return Search(tiny_schema(), digits, generations=2, population_size=6, seed=2,
                      run_dir=tmp_path / name, evaluator=evaluator, fidelity="sh",
                      train_config=TrainConfig(precision="fp32", epochs=3, patience=None),
                      verbose=False).run()

    serial = run("serial", SerialEvaluator())
    parallel = run("pool", ProcessPoolEvaluator(workers=2, threads_per_worker=1))
    key = [(r["index"], r["rung"], r["rung_epochs"]) for r in serial.history]
    assert sorted(key) == sorted((r["index"], r["rung"], r["rung_epochs"])
                                 for r in parallel.history)
    assert any(r["rung"] > 0 and r["rung_epochs"] > 0 for r in parallel.history)
    assert {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in parallel.history} == \
        {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in serial.history}
    assert parallel.best_fitness == serial.best_fitness
