"""What the process pool and its workers share: how a worker is launched, how the schema, data
and config reach it, how its stderr is kept, and the check that it can import the gene types.

Launch. A worker is a fresh interpreter (``python -c "...pool_worker import main; main()"``),
not a multiprocessing child: multiprocessing's "spawn" re-imports the user's ``__main__`` in
every worker, which re-runs a script that lacks the ``if __name__ == "__main__":`` guard and
fails outright for ``python - < script`` (there is no file to import). A fresh interpreter runs
only our module. It talks to the pool over one end of a ``socket.socketpair()`` (inherited by
descriptor number through ``pass_fds``, so POSIX only; no address, nothing to authenticate)
with length-prefixed pickles (`multiprocessing.connection.Connection`). It gets the parent's
``sys.path`` (PYTHONPATH for its own import, then the exact list before the schema is
unpickled), so gene types in modules next to the user's script import; gene types defined in
``__main__`` cannot, and the pool refuses them up front (`main_module_names`). Activations and
optimizers registered at run time (by the script, say) are registered again in each worker
before the schema is unpickled (`pack_registrations`; factories pickled by reference). Its
stdin is /dev/null; its stdout is the parent's; its stderr is read by a thread that echoes it
and keeps the last lines for error messages (`StderrTail`).

Data. The schema, data and config are pickled by the parent (trusted, as with any pickle it
makes itself), except the tensors: those are written once per ``open`` with ``torch.save`` to
an already-unlinked temporary file whose descriptor every worker inherits, and each worker
loads them with ``torch.load(mmap=True, weights_only=True)``. Measured here for MNIST-sized
data (60,000 x 1 x 28 x 28 float32, 189 MB): writing the file once takes 0.8 s, and a worker
maps it in 0.02 s; CPU workers then share the page cache (one copy in memory, as shared memory
did). A pickled copy per worker (the fallback when the file cannot be written) costs 0.6 s per
worker and a private copy each. torch's shared memory (``Tensor.share_memory_``) is not used:
its handles travel through multiprocessing's own descriptor passing, which a plain interpreter
lacks, and named segments would outlive a killed parent. Because the file is unlinked at
once, nothing is left on disk even if the parent is killed.
"""

from __future__ import annotations

import io
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from multiprocessing.connection import Connection
from typing import IO, Any

import attrs
import torch

from ...schema.alleles import base_gene_type, gene_choices
from ...schema.registry import ACTIVATIONS, OPTIMIZERS

__all__ = ["Payload", "StderrTail", "describe_exit", "main_module_names", "pack",
           "pack_registrations", "parent_sys_path", "reap", "register_missing", "send_quietly",
           "shared_devices", "unpack", "worker_command", "worker_env"]

PROTOCOL = pickle.HIGHEST_PROTOCOL
WORKER_CODE = "from pytorch_devol.search.evaluators.pool_worker import main; main()"
_TAIL_LINES = 20


# -- launching ------------------------------------------------------------------------------
def parent_sys_path() -> list[str]:
    """This process's ``sys.path`` with "" (the current directory) made absolute."""
    return [os.path.abspath(p) if p == "" else p for p in sys.path if isinstance(p, str)]


def worker_command(socket_fd: int, parent_pid: int) -> list[str]:
    """The command line of a worker: our entry point only, never the user's ``__main__``
    (``-P``: the current directory does not shadow the parent's ``sys.path``)."""
    safe_path = ["-P"] if sys.version_info >= (3, 11) else []
    return [sys.executable, *safe_path, "-c", WORKER_CODE, str(socket_fd), str(parent_pid)]


def worker_env() -> dict[str, str]:
    """The parent's environment, with PYTHONPATH set so the worker imports the same
    pytorch_devol (and everything else) the parent does."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join(parent_sys_path())}


def describe_exit(code: int | None) -> str:
    """How a worker ended, from its exit code (None: it closed its connection but lives on)."""
    if code is None:
        return "closed its connection"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def shared_devices(devices: list[str]) -> list[bool]:
    """For each worker: whether another worker of the pool trains on the same CUDA device
    (then an out-of-memory error may be the neighbour's fault)."""
    def key(device: str) -> int | None:
        dev = torch.device(device)
        return (dev.index or 0) if dev.type == "cuda" else None

    keys = [key(d) for d in devices]
    return [k is not None and keys.count(k) > 1 for k in keys]


def send_quietly(conn: Connection, data: bytes) -> None:
    """Send ``data`` to a worker; a worker that died meanwhile is noticed by its exit."""
    try:
        conn.send_bytes(data)
    except (OSError, ValueError):  # the worker died or the pool closed: its exit says so
        pass


def reap(process: subprocess.Popen[bytes], wait: float = 1.0) -> int | None:
    """The exit code of a worker whose connection closed; None (after killing it) when it
    does not exit within ``wait`` seconds."""
    try:
        return process.wait(wait)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return None


class StderrTail:
    """Reads a worker's stderr in a daemon thread: echoes every line to this process's stderr
    (the user still sees warnings and tracebacks) and keeps the last lines for error messages."""

    def __init__(self, stream: IO[bytes], name: str, lines: int = _TAIL_LINES) -> None:
        self._lines: deque[str] = deque(maxlen=lines)
        self._thread = threading.Thread(target=self._read, args=(stream,), name=name,
                                        daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        with stream:
            for raw in iter(stream.readline, b""):
                text = raw.decode(errors="replace")
                self._lines.append(text.rstrip("\n"))
                try:
                    sys.stderr.write(text)
                    sys.stderr.flush()
                except (OSError, ValueError):  # stderr closed or replaced: keep the tail only
                    pass

    def text(self, wait: float = 2.0) -> str:
        """The last lines (waits up to ``wait`` s for the worker's last writes to arrive)."""
        self._thread.join(wait)
        return "\n".join(self._lines)


# -- the schema, data and config ------------------------------------------------------------
@attrs.frozen
class Payload:
    """What every worker is sent: ``data`` (a pickle) and, when ``kind`` is "mmap-file", the
    descriptor ``fd`` of the unlinked file holding the tensors the pickle refers to."""

    kind: str
    data: bytes
    fd: int | None = None

    def close(self) -> None:
        """Close the parent's descriptor (the file vanishes once no worker maps it)."""
        if self.fd is not None:
            os.close(self.fd)


class _TensorsOut(pickle.Pickler):
    """Pickles everything but tensors, which it collects by key (to save with torch.save)."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file, protocol=PROTOCOL)
        self.tensors: dict[str, torch.Tensor] = {}

    def persistent_id(self, obj: Any) -> str | None:
        if not isinstance(obj, torch.Tensor):
            return None
        tensor = obj.detach()
        if tensor.untyped_storage().nbytes() != tensor.nbytes:  # a view: save only its part
            tensor = tensor.clone()
        key = str(len(self.tensors))
        self.tensors[key] = tensor
        return key


class _TensorsIn(pickle.Unpickler):
    def __init__(self, file: IO[bytes], tensors: dict[str, torch.Tensor]) -> None:
        super().__init__(file)
        self.tensors = tensors

    def persistent_load(self, pid: Any) -> torch.Tensor:
        return self.tensors[pid]


def _unlinked_file(tensors: dict[str, torch.Tensor]) -> int:
    """``torch.save`` ``tensors`` to a temporary file; a read-only descriptor of it, which is
    already unlinked (so it disappears with the last process holding it, even after SIGKILL)."""
    with tempfile.NamedTemporaryFile(prefix="pytorch-devol-data-", suffix=".pt") as f:
        torch.save(tensors, f)
        f.flush()
        return os.open(f.name, os.O_RDONLY)


def pack(obj: Any) -> Payload:
    """``obj`` (schema, CPU data, config) for the workers: tensors in an unlinked file, the
    rest pickled; a plain pickled copy where the file cannot be written."""
    buffer = io.BytesIO()
    pickler = _TensorsOut(buffer)
    pickler.dump(obj)
    if not pickler.tensors:
        return Payload("pickle", buffer.getvalue())
    try:
        fd = _unlinked_file(pickler.tensors)
    except OSError:
        return Payload("copy", pickle.dumps(obj, protocol=PROTOCOL))
    return Payload("mmap-file", buffer.getvalue(), fd)


def _fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}" if os.path.isdir("/proc/self/fd") else f"/dev/fd/{fd}"


def unpack(data: bytes, fd: int | None) -> Any:
    """Inverse of `pack`, in the worker (the tensors are memory-mapped, not copied)."""
    tensors: dict[str, torch.Tensor] = {}
    if fd is not None:
        tensors = torch.load(_fd_path(fd), mmap=True, weights_only=True)
        os.close(fd)  # the mapping stays valid
    return _TensorsIn(io.BytesIO(data), tensors).load()


# -- gene types and registered names --------------------------------------------------------
def _gene_types(schema: Any) -> list[type]:
    return [t for t, _ in getattr(schema, "layer_groups", ())] + \
        list(getattr(schema, "training", ()))


def _registrations(schema: Any) -> list[tuple[str, str, Any]]:
    """(registry kind, name, factory) of each activation or optimizer the schema's genes can
    choose (registry-backed alleles of the built-in registries)."""
    built_in = {r.kind: r for r in (ACTIVATIONS, OPTIMIZERS)}
    found = []
    for gene_type in _gene_types(schema):
        for field, registry in getattr(gene_type, "__allele_registries__", {}).items():
            if built_in.get(registry.kind) is registry:
                found += [(registry.kind, name, registry.get(name))
                          for name in gene_choices(gene_type)[field] if name in registry]
    return found


def main_module_names(schema: Any) -> list[str]:
    """What a fresh worker cannot import because the user's script (``__main__``) defines it:
    the schema's gene types (or the ``@gene`` base of a ``with_choices`` type), and factories
    of the activations and optimizers its genes name."""
    found: list[str] = []
    for gene_type in _gene_types(schema):
        base = base_gene_type(gene_type)[0]
        if "__main__" in (gene_type.__module__, base.__module__):
            found.append(f"gene type {base.__qualname__}")
    for kind, name, factory in _registrations(schema):
        if getattr(factory, "__module__", None) == "__main__":
            found.append(f"{kind} {name!r} ({getattr(factory, '__qualname__', factory)})")
    return list(dict.fromkeys(found))


def pack_registrations(schema: Any) -> list[tuple[str, str, bytes]]:
    """The activations and optimizers the schema names, each factory pickled by reference, so
    that a worker can register those registered at run time (e.g. by the user's script) that
    it lacks. Built-in entries that do not pickle (closures) are left out: workers have them."""
    packed = []
    for kind, name, factory in _registrations(schema):
        try:
            packed.append((kind, name, pickle.dumps(factory, protocol=PROTOCOL)))
        except Exception:  # noqa: BLE001 - not picklable: only built-ins, which workers have
            continue
    return packed


def register_missing(packed: list[tuple[str, str, bytes]]) -> None:
    """In a worker: register the names of `pack_registrations` that it does not know."""
    registries = {r.kind: r for r in (ACTIVATIONS, OPTIMIZERS)}
    for kind, name, factory in packed:
        if name not in registries[kind]:
            registries[kind].register(name, pickle.loads(factory))
