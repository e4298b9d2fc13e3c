"""Running ``pytorch-devol`` from tests: in a subprocess (a real command, a real kill) or in
this process (the same code without a Python start-up of seconds, for checks that only read a
run or reject arguments)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pytorch_devol import cli as cli_module

# One torch thread: a killed-and-resumed run and its reference compute bit-identically.
ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def cli(*args: str, check: bool = True, **kw) -> subprocess.CompletedProcess:
    """``pytorch-devol ARGS`` in a subprocess; asserts exit status 0 unless ``check=False``."""
    proc = subprocess.run([sys.executable, "-m", "pytorch_devol.cli", *args], capture_output=True,
                          text=True, env=ENV, timeout=600, **kw)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def main(*args: str) -> tuple[int, str, str]:
    """``pytorch-devol ARGS`` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli_module.main(list(args))
        except SystemExit as exit_:  # argparse's own errors
            code = exit_.code
    return code, out.getvalue(), err.getvalue()


def search_in_process(*args: str) -> str:
    """``pytorch-devol search ARGS`` in this process on one torch thread, as the subprocesses
    run (so its records equal theirs bit for bit), without their seconds of start-up; asserts
    exit status 0 and returns stdout."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        code, out, err = main("search", *args)
    finally:
        torch.set_num_threads(threads)
    assert code == 0, err
    return out


def kill_when_logged(args: list[str], log: Path, count: int) -> None:
    """Start ``pytorch-devol ARGS`` and kill -9 it once ``log`` holds ``count`` more lines than
    when it started (or once it ends by itself: callers assert that it did not)."""
    start = log.read_text().count("\n") if log.exists() else 0
    proc = subprocess.Popen([sys.executable, "-m", "pytorch_devol.cli", *args], env=ENV,
                            stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and log.read_text().count("\n") >= start + count:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
