"""ProcessPoolEvaluator: real searches on digits through CPU worker processes.

Same GA, successive-halving and regularized-evolution results as in-process (two workers,
started once for the module and lent to each search), also from a script without the
``__main__`` guard and from a stdin script; killed workers replaced and their candidates
retried, then failed as "infrastructure" and trained again by a later copy; a hung candidate
failed as "timeout", a broken CUDA context replaced quietly, errors that do not pickle; the
data copied to workers when no temporary file can be written; real start-up errors, gene types
from ``__main__`` refused, and no process left behind after close(), Ctrl-C, SIGTERM or
SIGKILL of the parent.

Each fresh worker costs seconds on a slow machine (importing torch, and what `Trainer` warms
up), so the tests start only the workers that what they prove needs, and start
the subprocess-driven cases all at once. No outcome depends on the machine's speed: the one
short limit (the hang's ``candidate_timeout``) is many times what the other candidates of that
pool take, since their start-up is not part of it; every other limit only bounds a
hang, far above what it waits for.
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
from pytorch_devol.search.evaluators import pool as pool_module
from pytorch_devol.search.evaluators.pool import (
    ProcessPoolEvaluator,
    WorkerStartupError,
    plan_devices,
    shared_devices,
)
from pytorch_devol.search.evaluators.pool_worker import evaluate_task, result_message
from pytorch_devol.training import EvalResult, TrainConfig
from tests.parallel_helpers import (
    KILL_DIR_ENV,
    Lent,
    NeedsArgsError,
    Scripted,
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
# Every search and pool of this module trains with it (patience=None: successive halving takes
# promoted candidates on to the full 3 epochs).
CONFIG = TrainConfig(precision="fp32", epochs=3, patience=None)
TIMINGS = {"train_seconds", "total_seconds"}
ARMED = (1, 1, 0, 0, 0, 0, 0)   # kill_schema genomes: [armed, dense..., optimizer]
SAFE = (0, 1, 1, 0, 0, 0, 0)
SAFE2 = (0, 1, 0, 0, 0, 0, 1)

pytestmark = pytest.mark.slow


def _search(data, run_dir, evaluator, schema=None, strategy=None, seed=0, population_size=4,
            generations=2, **options):
    options = {"fidelity": None, "inherit_weights": False, **options}  # what a test turns on
    return Search(schema or tiny_schema(), data, generations=generations,
                  population_size=population_size,
                  seed=seed, run_dir=run_dir, evaluator=evaluator, strategy=strategy,
                  train_config=CONFIG, verbose=False, **options).run()


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
    with pytest.raises(TypeError, match="start_method"):
        ProcessPoolEvaluator(2, start_method="spawn")  # workers are always fresh processes
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


# -- real searches, on two workers started once ---------------------------------------------
@pytest.fixture(scope="module")
def pool(digits):
    """Two CPU workers (one torch thread each, as `one_thread` gives the in-process runs) set
    up once with tiny_schema, digits and CONFIG, and lent to each search below (`Lent`: the
    searches' open and close leave them running; each search is checked to train what the
    workers were set up with, so all use seed 0, which a search writes into its config)."""
    with ProcessPoolEvaluator(workers=2, threads_per_worker=1) as shared:
        shared.open(tiny_schema(), digits, CONFIG)
        yield shared


def _lent(pool, digits):
    return Lent(pool, tiny_schema(), digits, CONFIG)


def test_ga_search_matches_in_process(pool, digits, tmp_path, one_thread):
    serial = _search(digits, tmp_path / "serial", SerialEvaluator())
    lent = _lent(pool, digits)
    parallel = _search(digits, tmp_path / "pool", lent)

    assert lent.opened == 1
    assert np.array_equal(parallel.best_genome, serial.best_genome)
    assert _metrics(parallel) == _metrics(serial)
    assert parallel.best_fitness == serial.best_fitness
    assert pool.data_transfer == "mmap-file"
    # Both workers trained candidates; each kept its one process (and Trainer: data loaded
    # once) for all of them: its count of candidates served runs on without a gap.
    served = {}
    for info in lent.assignments.values():
        served.setdefault(info["pid"], []).append(info["served"])
    assert len(served) == 2 and set(served) == set(pool.worker_pids)
    for counts in served.values():
        assert sorted(counts) == list(range(min(counts), min(counts) + len(counts)))
    with pytest.raises(RuntimeError, match="no task"):
        pool.next_result()   # open, with nothing in flight


@pytest.mark.parametrize("fidelity", ["sh", "hyperband"])
def test_successive_halving_through_the_pool_matches_in_process(pool, digits, tmp_path,
                                                                 one_thread, fidelity):
    """Promoted candidates continue in whichever worker gets them, from the state saved in
    the run directory: the same records as in-process (Hyperband: some enter higher up)."""
    def run(name, evaluator):
        return _search(digits, tmp_path / name, evaluator, population_size=6,
                       fidelity=fidelity)

    serial = run("serial", SerialEvaluator())
    parallel = run("pool", _lent(pool, digits))
    key = [(r["index"], r["rung"], r["rung_epochs"]) for r in serial.history]
    assert sorted(key) == sorted((r["index"], r["rung"], r["rung_epochs"])
                                 for r in parallel.history)
    assert any(r["rung"] > 0 and r["rung_epochs"] > 0 for r in parallel.history)
    assert {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in parallel.history} == \
        {(r["index"], r["rung"]): r["metrics"]["val_loss"] for r in serial.history}
    assert parallel.best_fitness == serial.best_fitness


def test_inherited_weights_through_the_pool_match_in_process(pool, digits, tmp_path,
                                                             one_thread):
    """Donor weights travel with the task to whichever worker trains it: the same records
    (and lineage) as in-process."""
    def run(name, evaluator):
        return _search(digits, tmp_path / name, evaluator, generations=3, population_size=5,
                       inherit_weights=True)

    serial = run("serial", SerialEvaluator())
    parallel = run("pool", _lent(pool, digits))
    assert _metrics(parallel) == _metrics(serial)
    lineage = [(r["index"], r["parent"], r["inherited_params"]) for r in serial.history]
    assert any(parent is not None for _, parent, _ in lineage)
    assert sorted(lineage) == sorted((r["index"], r["parent"], r["inherited_params"])
                                     for r in parallel.history)


def test_regularized_evolution_runs_asynchronously_through_the_pool(pool, digits, tmp_path):
    lent = _lent(pool, digits)
    result = _search(digits, tmp_path / "run", lent, strategy="regularized")
    assert sorted(r["index"] for r in result.history) == list(range(8))
    assert result.best_genome is not None
    trained = [r for r in result.history if not r["cached"]]
    assert {lent.assignments[r["index"]]["worker"] for r in trained} == {0, 1}


# -- workers that die -----------------------------------------------------------------------
class _Watched(ProcessPoolEvaluator):
    """Remembers every worker pid it had at open and after each result."""

    def open(self, *args):
        self.seen = set()
        super().open(*args)
        self.seen.update(self.worker_pids)

    def next_result(self):
        found = super().next_result()
        self.seen.update(self.worker_pids)
        return found


def test_killed_workers_are_replaced_retried_then_failed_and_a_later_copy_retrains(
        digits, tmp_path, monkeypatch):
    """One search of two generations, [ARMED, SAFE] then [ARMED, SAFE2], with three kill
    tokens (each kills the next worker that builds ARMED) and ``max_retries=1``:

    - generation 1: ARMED's worker dies, a fresh worker replaces it and the candidate is
      retried; the retry's worker dies too, so ARMED is recorded as failed, "infrastructure",
      with the exit code and both attempts, and is not cached;
    - generation 2: so the later copy of ARMED trains again; its worker dies, and the retry on
      a fresh worker succeeds (attempt 2): the search loses no candidate;
    - the SAFE candidates train at their first attempt; three deaths in all; the search
      closes the pool, and no worker process it had is left;
    - no temporary file can be written here, so the data is copied to every worker, the
      replacements included.
    """
    tokens = arm(tmp_path / "kill", 3)
    monkeypatch.setenv(KILL_DIR_ENV, str(tokens))   # inherited by the workers
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    schema = kill_schema()
    pool = _Watched(workers=2, threads_per_worker=1, max_retries=1)
    result = _search(digits, tmp_path / "run", pool, schema=schema, population_size=2,
                     strategy=Scripted(schema.cardinalities, [[ARMED, SAFE], [ARMED, SAFE2]]))

    assert pool.data_transfer == "copy"
    assert tokens_left(tokens) == 0 and pool.deaths == 3
    records = sorted(result.history, key=lambda r: r["index"])
    assert [(r["index"], tuple(r["genome"])) for r in records] == \
        [(0, ARMED), (1, SAFE), (2, ARMED), (3, SAFE2)]
    failed, again = records[0], records[2]
    reason = failed["metrics"]["reason"]
    assert failed["metrics"]["status"] == "failed" and not failed["cached"]
    assert failed["metrics"]["failure"] == "infrastructure"
    assert reason.startswith("WorkerDied:") and "SIG" not in reason
    assert "exited with code 17" in reason and "2 attempts" in reason
    assert pool.assignments[0]["attempt"] == 2
    assert again["metrics"]["status"] == "ok" and not again["cached"]
    assert pool.assignments[2]["attempt"] == 2            # retried on a fresh worker
    for safe in (records[1], records[3]):
        assert safe["metrics"]["status"] == "ok"
        assert pool.assignments[safe["index"]]["attempt"] == 1
    assert pool.worker_pids == []  # closed by the search
    assert len(pool.seen) >= 3 and all(process_gone(pid) for pid in pool.seen)


# -- start-up errors ------------------------------------------------------------------------
def test_worker_that_cannot_start_stops_the_search(digits):
    # startup_timeout only bounds a hang here: the worker fails in seconds.
    pool = ProcessPoolEvaluator(devices=["cuda:7"] if not torch.cuda.is_available()
                                else ["cuda:999"], startup_timeout=120)
    with pytest.raises(WorkerStartupError, match="failed to start") as failure:
        pool.open(tiny_schema(), digits, CONFIG)
    # The worker's own traceback, down to the call that failed on that device.
    assert "Traceback (most recent call last)" in str(failure.value)
    assert "in build_trainer" in str(failure.value)
    assert pool.worker_pids == []
    # A worker that never gets ready is restarted, then the pool gives up (no hang). No
    # machine starts a Python process that imports torch in 0.05 s.
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


# -- candidates that hang or fail awkwardly -------------------------------------------------
TIMEOUT = 3  # s; every other candidate of this pool takes about 0.1 s on a slow 2-core machine


def test_hang_timeout_broken_context_unpicklable_errors_and_registrations(digits, monkeypatch):
    """Five candidates on two workers: a hang is killed after ``candidate_timeout`` (failed as
    "timeout", not retried: one death); a (simulated) sticky CUDA error comes back as a result,
    then its worker exits and is replaced quietly (no death); errors that do not survive
    pickling still come back as results; a healthy candidate trains with an activation
    registered at run time in this process only.

    Workers pay torch's first-optimizer import while they start (in `Trainer`), not in their
    first candidate, so every candidate but the hang ends in about 0.1 s here, far inside
    TIMEOUT.
    """
    # An activation registered at run time, here only (as a script would): workers get it too.
    monkeypatch.setitem(ACTIVATIONS._entries, "pool_test_mish", torch.nn.Mish)
    modes = ["cuda-error", "needs-args", "unpicklable", "none", "hang"]  # the hang last
    with ProcessPoolEvaluator(workers=2, threads_per_worker=1,
                              candidate_timeout=TIMEOUT) as pool:
        pool.open(trouble_schema(("relu", "pool_test_mish")), digits, CONFIG)
        for i, mode in enumerate(modes):
            pool.submit(Task(i, trouble_genome(mode, activation=1), seed=i))
        results = {modes[task.index]: r for task, r in (pool.next_result() for _ in modes)}
        hang, cuda, ok = results["hang"], results["cuda-error"], results["none"]

        assert hang.failure == "timeout" and hang.reason.startswith("CandidateTimeout:")
        assert f"candidate_timeout={TIMEOUT}s" in hang.reason
        assert pool.assignments[modes.index("hang")]["attempt"] == 1
        # A broken CUDA context: the result comes back, then the worker is replaced quietly.
        assert cuda.failure == "infrastructure" and "CUDA error" in cuda.reason
        assert isinstance(cuda.error, RuntimeError)
        broken = pool.assignments[modes.index("cuda-error")]
        assert broken["broken"]
        # Its exit is seen while the pool waits for results: keep it busy until then
        # (normally already done during the hang).
        extra, deadline = len(modes), time.monotonic() + 300
        while broken["pid"] in pool.worker_pids and time.monotonic() < deadline:
            pool.submit(Task(extra, trouble_genome("none", activation=1), seed=extra))
            assert pool.next_result()[1].ok
            extra += 1
        assert broken["pid"] not in pool.worker_pids and len(pool.worker_pids) == 2
        assert pool.deaths == 1  # the timed-out worker only
        # Errors that do not survive pickling: the result still arrives, without them.
        for mode, name in (("needs-args", "NeedsArgsError"), ("unpicklable", "UnpicklableError")):
            result = results[mode]
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
    import pickle
    from pathlib import Path

    from pytorch_devol import GenomeSchema, Search
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
        # digits (300 training examples), pickled next to this module by the test
        data = pickle.loads(Path(__file__).with_name("digits.pkl").read_bytes())
        result = Search(schema, data, generations=2, population_size=4, seed=0,
                        run_dir=run_dir, evaluator=evaluator,
                        train_config=TrainConfig(precision="fp32", epochs=1),
                        inherit_weights=False, verbose=False).run()
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
    summary = run_search(ProcessPoolEvaluator(workers=1, threads_per_worker=1), sys.argv[1])
    print("RESULT " + json.dumps(summary), flush=True)
    print("RAY-IMPORTED", "ray" in sys.modules, flush=True)
""")


@pytest.fixture(scope="module")
def script_dir(tmp_path_factory):
    """A folder holding a guard-less script, its gene module and its data, plus the
    in-process result of the same search (one thread, as in the worker)."""
    pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn")
    from pytorch_devol.training import load_dataset

    folder = tmp_path_factory.mktemp("user")
    (folder / "pool_sidecar_genes.py").write_text(_SIDECAR)
    (folder / "search.py").write_text(_SCRIPT)
    # The script reads pickled data, so that it does not import scikit-learn (seconds).
    (folder / "digits.pkl").write_bytes(pickle.dumps(load_dataset("digits", limit=(300, 100))))
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


def _wait_all(processes, timeout):
    """Wait for every process (the limit only bounds a hang); kill those still running."""
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def script_runs(script_dir, tmp_path_factory):
    """The script run both ways at once (each run is a parent and its worker importing torch,
    seconds each): how -> (exit code, stdout, stderr). From a file, from elsewhere: the
    script's folder is on its sys.path, not the cwd. From stdin (python - < search.py): ""
    (the cwd) is on its sys.path."""
    folder, _ = script_dir
    base = tmp_path_factory.mktemp("script-runs")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    launch = {"file": ([sys.executable, str(folder / "search.py")], None),
              "stdin": ([sys.executable, "-"], folder / "search.py")}
    processes = {}
    for how, (command, stdin_file) in launch.items():
        out = base / how
        out.mkdir()
        with (out / "stdout.txt").open("w") as stdout, (out / "stderr.txt").open("w") as stderr, \
                (stdin_file or Path(os.devnull)).open() as stdin:
            processes[how] = subprocess.Popen(
                [*command, str(out / "run")], stdin=stdin, stdout=stdout, stderr=stderr,
                env=env, cwd=folder if stdin_file else out)
    _wait_all(processes.values(), timeout=600)
    return {how: (process.returncode, (base / how / "stdout.txt").read_text(),
                  (base / how / "stderr.txt").read_text())
            for how, process in processes.items()}


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_script_without_main_guard_searches_once_like_in_process(script_dir, script_runs, how):
    _, serial = script_dir
    code, out, err = script_runs[how]
    assert code == 0, err[-3000:]
    assert out.count("SEARCH-STARTED") == 1   # the worker never ran the script
    summary = json.loads(out.split("RESULT ", 1)[1].splitlines()[0])
    assert len(summary["history"]) == 8
    assert summary == serial


# -- interruption: nothing left behind ------------------------------------------------------
_PARENT = textwrap.dedent("""
    import json, pickle, signal, sys
    from pathlib import Path

    # A shell's background job starts with SIGINT ignored, which Python then keeps: restore
    # Ctrl-C's KeyboardInterrupt, as an interactive user has it.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    from pytorch_devol import Search
    from pytorch_devol.search.evaluators.pool import ProcessPoolEvaluator
    from pytorch_devol.training import TrainConfig
    from tests.parallel_helpers import tiny_schema


    class Recording(ProcessPoolEvaluator):
        \"\"\"Writes its workers' pids once each of them has been sent a candidate.\"\"\"

        sent = 0

        def submit(self, task):
            super().submit(task)
            self.sent += 1
            if self.sent == self.capacity:  # all were idle after open: one each
                tmp = Path(sys.argv[1] + ".tmp")
                tmp.write_text(json.dumps(self.worker_pids))
                tmp.rename(sys.argv[1])


    if __name__ == "__main__":
        data = pickle.loads(Path(sys.argv[3]).read_bytes())  # no scikit-learn import
        Search(tiny_schema(), data, generations=100, population_size=8, run_dir=sys.argv[2],
               evaluator=Recording(workers=int(sys.argv[4]), threads_per_worker=1),
               train_config=TrainConfig(precision="fp32", epochs=100_000, patience=None),
               fidelity=None, inherit_weights=False, verbose=False).run()
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


# signal -> workers of its parent: Ctrl-C is handled by the parent itself (KeyboardInterrupt,
# then close() stops its busy workers: two, so that it stops them all); SIGTERM and SIGKILL
# leave the parent no clean-up, so each worker ends itself (one is enough to show it).
_INTERRUPTIONS = {"SIGINT": (signal.SIGINT, 2), "SIGTERM": (signal.SIGTERM, 1),
                  "SIGKILL": (signal.SIGKILL, 1)}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc (Linux)")
def test_interrupted_parent_leaves_no_process(digits, tmp_path):
    """Three parents searching through a pool, started at once (each costs seconds of imports),
    interrupted by SIGINT, SIGTERM and SIGKILL once every worker has a candidate (of 100,000
    epochs): each parent ends, and none of its workers outlives it."""
    script, data = tmp_path / "parent.py", tmp_path / "digits.pkl"
    script.write_text(_PARENT)
    data.write_bytes(pickle.dumps(digits))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    parents = {}
    try:
        for name, (_, workers) in _INTERRUPTIONS.items():
            folder = tmp_path / name
            folder.mkdir()
            with (folder / "stderr.txt").open("w") as stderr:
                parents[name] = subprocess.Popen(
                    [sys.executable, str(script), str(folder / "pids.json"), str(folder / "r"),
                     str(data), str(workers)], env=env, cwd=folder,
                    stdout=subprocess.DEVNULL, stderr=stderr)
        children = {}
        deadline = time.monotonic() + 600  # bounds a hang only: they start in seconds
        for name, parent in parents.items():
            pids_file = tmp_path / name / "pids.json"
            while not pids_file.exists():
                assert parent.poll() is None, (tmp_path / name / "stderr.txt").read_text()
                assert time.monotonic() < deadline, f"{name}: workers did not start"
                time.sleep(0.1)
            workers = set(json.loads(pids_file.read_text()))
            children[name] = _children(parent.pid)
            assert len(workers) == _INTERRUPTIONS[name][1] and workers <= children[name]
        for name, parent in parents.items():
            parent.send_signal(_INTERRUPTIONS[name][0])
        _wait_all(parents.values(), timeout=300)
    finally:
        for parent in parents.values():
            if parent.poll() is None:
                parent.kill()
                parent.wait()
    assert all(parent.returncode != 0 for parent in parents.values())
    assert "KeyboardInterrupt" in (tmp_path / "SIGINT" / "stderr.txt").read_text()
    # Far sooner than the candidates they were training would end (100,000 epochs each); the
    # limit only bounds a failure (they are gone within a second here).
    everyone = set().union(*children.values())
    deadline = time.monotonic() + 60
    while not all(process_gone(p) for p in everyone) and time.monotonic() < deadline:
        time.sleep(0.1)
    leftover = {name: sorted(p for p in pids if not process_gone(p))
                for name, pids in children.items()}
    for pid in everyone:  # do not leave them running when the test fails
        if not process_gone(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    assert leftover == {name: [] for name in _INTERRUPTIONS}


# -- Ray stays optional ---------------------------------------------------------------------
def test_search_package_never_imports_ray(script_runs):
    """Checked in the two script runs above (fresh interpreters): importing
    pytorch_devol.search (with its pool and factory modules) and a whole search through the
    pool leave Ray unimported."""
    for how, (code, out, err) in script_runs.items():
        assert code == 0, err[-3000:]
        assert "RAY-IMPORTED False" in out, how


def test_ray_evaluator_without_ray_says_how_to_install(monkeypatch):
    from pytorch_devol.search.evaluators import RayEvaluator

    monkeypatch.setitem(sys.modules, "ray", None)   # makes `import ray` fail
    with pytest.raises(ImportError, match=r"pip install 'pytorch-devol\[ray\]'"):
        RayEvaluator()
