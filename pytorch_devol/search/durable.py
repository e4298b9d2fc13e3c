"""Durable writes: every file the package writes in a run directory (and every export) goes
through `atomic_write` (a whole file: the old one or the new one survives a crash) or
`append_text` (one more line of a log, flushed and fsynced).

A full disk, an I/O error or a read-only file system surfaces as an `OSError` that keeps its
errno and names the file (``[Errno 28] No space left on device: 'runs/x/checkpoint.json'``),
which the command line prints in one line (exit status 2). Nothing half-written is left for a
resume to trust: `atomic_write` removes its temporary file, and a torn last line of a log is
dropped on resume (``store.read_jsonl``; the CSV is rebuilt from the JSON log).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["append_text", "atomic_write", "write_error"]


def write_error(path: Path | str, err: OSError) -> OSError:
    """``err`` as an OSError naming ``path`` (its errno kept, so callers can tell ENOSPC)."""
    if err.filename is not None and str(err.filename) == str(path):
        return err
    return OSError(err.errno, err.strerror or str(err), str(path))


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old or the new file."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as err:
        raise write_error(path, err) from None
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp makes 0600 files; keep the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(path, err) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def append_text(path: Path, text: str, newline: str | None = None) -> None:
    """Append ``text`` to ``path`` (created if missing), flushed and fsynced."""
    try:
        with open(path, "a", encoding="utf-8", newline=newline) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except OSError as err:
        raise write_error(path, err) from None
