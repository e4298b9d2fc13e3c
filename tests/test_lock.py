"""One writer per run directory: a second search on it is refused in one line while the first
runs, and after a kill -9 of the first, --resume takes over."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from pytorch_devol import GenomeSchema, Search
from pytorch_devol.search.layout import LOCK_FILE
from pytorch_devol.search.lock import RunLock, RunLockedError

from .cli_helpers import ENV, main, search_in_process

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock is POSIX")

# Long enough (32 candidates) to be still running when the second writer tries.
TINY = ["--max-conv-layers", "1", "--max-dense-layers", "1", "--max-filters", "8",
        "--max-dense-nodes", "16", "--generations", "4", "--population", "8", "--epochs", "3",
        "--seed", "3", "--precision", "fp32", "--fidelity", "none"]


def test_a_held_lock_refuses_a_second_holder_and_is_released(tmp_path):
    with RunLock(tmp_path):
        info = json.loads((tmp_path / LOCK_FILE).read_text())
        assert info["pid"] == os.getpid() and info["host"] == socket.gethostname()
        with pytest.raises(RunLockedError, match=f"pid {os.getpid()} on"):
            RunLock(tmp_path).acquire()  # flock is per open file: refused in-process too
    with RunLock(tmp_path):  # released at exit
        pass
    assert (tmp_path / LOCK_FILE).read_text() == ""


def test_resume_of_a_locked_run_touches_nothing(tmp_path, digits):
    schema = GenomeSchema.devol(max_conv_layers=1, max_dense_layers=1, max_filters=8,
                                max_dense_nodes=16, input_shape=(1, 8, 8), n_classes=10)
    run = tmp_path / "run"
    Search(schema, digits, generations=1, population_size=2, epochs=1, run_dir=run,
           verbose=False).run()
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with RunLock(run), pytest.raises(RunLockedError, match="one search per run directory"):
        Search.resume(run, verbose=False).run()
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


@pytest.mark.slow
def test_a_second_writer_is_refused_and_resume_takes_over_after_kill_9(tmp_path):
    run = tmp_path / "run"
    log = run / "results.jsonl"
    first = subprocess.Popen([sys.executable, "-m", "pytorch_devol.cli", "search", *TINY,
                              "--run-dir", str(run), "--quiet"], env=ENV,
                             stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (log.exists() and log.read_text().count("\n") >= 1):
            assert first.poll() is None and time.monotonic() < deadline, "no record logged"
            time.sleep(0.02)
        code, out, err = main("search", "--resume", str(run), "--quiet")
        logged = log.read_text()
        assert first.poll() is None, "the first search ended before the check"
        assert code == 2 and err.count("\n") == 1, err
        assert f"pid {first.pid} on {socket.gethostname()}" in err and "started" in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert log.read_text().startswith(logged)  # the refused writer wrote nothing
    search_in_process("--resume", str(run), "--quiet")  # the kernel dropped the dead's lock
    indices = [json.loads(line)["index"] for line in log.read_text().splitlines()]
    assert sorted(indices) == list(range(32))


def test_a_file_system_without_flock_warns_and_goes_on(tmp_path, monkeypatch):
    import errno

    from pytorch_devol.search import lock

    def no_flock(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(lock.fcntl, "flock", no_flock)
    with pytest.warns(UserWarning, match="has no flock .*nothing stops a second search"):
        with RunLock(tmp_path):
            pass
