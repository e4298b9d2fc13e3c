"""One writer per run directory: an exclusive advisory lock held while a search runs.

Two searches writing one run directory (a job scheduler restarting a job whose old copy is
still alive, a second ``--resume``) would log candidates twice. ``search`` and ``--resume``
take ``fcntl.flock`` on ``<run>/writer.lock`` before they touch anything, and keep it until
they end; the kernel drops it when the process dies, so a kill -9 leaves no stale lock and the
next ``--resume`` takes over. A second writer is refused at once, naming the holder. Readers
(``show``, ``plot``, ``export``) take no lock: every file they read is written atomically, or
(``results.jsonl``) read up to its last complete line. On a file system without flock (some
network file systems) the search says so and goes on unguarded.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import socket
import warnings
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # not on Windows
    fcntl = None  # type: ignore[assignment]

from .layout import LOCK_FILE

__all__ = ["RunLock", "RunLockedError"]
_NO_FLOCK = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)


class RunLockedError(OSError):
    """Another live process is writing this run directory."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
        return (f"pid {info['pid']} on {info['host']}, started {info['started']}")
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (its details are unreadable)"


class RunLock:
    """``with RunLock(run_dir):`` holds the run directory's writer lock (the directory must
    exist). Raises `RunLockedError` when another process holds it."""

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> None:
        if fcntl is None:
            warnings.warn("no fcntl here: nothing stops a second search writing "
                          f"{self.path.parent}", stacklevel=3)
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RunLockedError(
                f"{self.path.parent} is being written by {_holder(self.path)}: one search per "
                "run directory (wait for it, or stop it and --resume)") from None
        except OSError as err:
            os.close(fd)
            if err.errno not in _NO_FLOCK:
                raise
            warnings.warn(f"the file system of {self.path.parent} has no flock ({err.strerror})"
                          ": nothing stops a second search writing it", stacklevel=3)
            return
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(info).encode(), 0)
        except OSError:  # a full disk: the lock holds without its note of who holds it
            pass
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # the file stays: unlinking it would race a new writer
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
