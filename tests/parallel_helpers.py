"""Shared pieces of the parallel-evaluator tests: tiny schemas, a gene that kills its worker
process on demand (across pool workers and Ray: it reads an environment variable and token
files), a gene whose candidates hang or raise awkward errors, a check that a process is really
gone, an already-open evaluator lent to several searches (`Lent`), and a strategy that asks given
genomes (`Scripted`).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pytorch_devol.schema import DenseGene, GenomeSchema, OptimizerGene, allele, gene

KILL_DIR_ENV = "PYTORCH_DEVOL_TEST_KILL_DIR"


def tiny_schema() -> GenomeSchema:
    """DEvol's space, shrunk to digits' 8x8 images: trains in a fraction of a second."""
    return GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                              max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)


def _dry_run() -> bool:
    """True while `Search`'s dry run builds genes on the meta device (in the test process
    itself): the genes below misbehave only in real builds."""
    return torch.get_default_device().type == "meta"


def _consume_token() -> bool:
    """Remove one token file from $PYTORCH_DEVOL_TEST_KILL_DIR; True if this call got one
    (``os.remove`` is atomic, so two workers never both take the same token)."""
    folder = os.environ.get(KILL_DIR_ENV)
    if not folder or not os.path.isdir(folder):
        return False
    for name in sorted(os.listdir(folder)):
        try:
            os.remove(os.path.join(folder, name))
        except FileNotFoundError:
            continue
        return True
    return False


@gene
class KillSwitchGene:
    """Adds no layer. When ``armed`` and a kill token is available, the process building the
    model dies at once (``os._exit``), as a segfault or the OOM killer would end it."""

    armed: bool = allele([False, True])

    def build(self, in_shape):
        if self.armed and not _dry_run() and _consume_token():
            os._exit(17)
        return [], in_shape


def kill_schema() -> GenomeSchema:
    """A small flat schema with a kill switch: genome = [armed, units index, optimizer]."""
    return GenomeSchema(layers=[KillSwitchGene, DenseGene.with_choices(units=[16, 32])],
                        training=OptimizerGene, input_shape=(1, 8, 8), n_outputs=10)


class NeedsArgsError(Exception):
    """Pickles, but cannot be rebuilt from its ``args`` (its ``__init__`` takes two)."""

    def __init__(self, what: str, where: str) -> None:
        super().__init__(f"{what} at {where}")


class UnpicklableError(ValueError):
    """Does not pickle at all (it holds a lock)."""

    def __init__(self) -> None:
        super().__init__("an error holding a lock")
        self.lock = threading.Lock()


TROUBLES = ("none", "hang", "cuda-error", "needs-args", "unpicklable")


@gene
class TroubleGene:
    """Adds no layer; ``mode`` chooses what goes wrong while the model is built: nothing, a
    hang, a (simulated) sticky CUDA error, or an exception that cannot travel by pickle."""

    mode: str = allele(list(TROUBLES))

    def build(self, in_shape):
        if _dry_run():
            return [], in_shape
        if self.mode == "hang":
            time.sleep(3600)
        if self.mode == "cuda-error":
            raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")
        if self.mode == "needs-args":
            raise NeedsArgsError("bad", "here")
        if self.mode == "unpicklable":
            raise UnpicklableError()
        return [], in_shape


def trouble_schema(activations: tuple[str, ...] = ("relu", "sigmoid")) -> GenomeSchema:
    """Genome = [trouble mode, dense (active, units, batch_norm, activation, dropout),
    optimizer]; `trouble_genome` writes one."""
    dense = DenseGene.with_choices(units=[16, 32], activation=list(activations))
    return GenomeSchema(layers=[TroubleGene, dense], training=OptimizerGene,
                        input_shape=(1, 8, 8), n_outputs=10)


def trouble_genome(mode: str, activation: int = 0) -> tuple[int, ...]:
    return (TROUBLES.index(mode), 1, 0, 0, activation, 0, 0)


def arm(folder: Path, tokens: int) -> Path:
    """Put ``tokens`` kill tokens in ``folder`` (each kills one worker once)."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(tokens):
        (folder / f"token{i}").touch()
    return folder


def tokens_left(folder: Path) -> int:
    return len(list(folder.iterdir()))


def process_gone(pid: int) -> bool:
    """True when ``pid`` no longer runs (absent, or a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


class Lent:
    """An evaluator that is already open, lent to `Search` runs: their ``open`` and ``close``
    leave it open, so several searches share its started (and warmed-up) workers. ``open``
    checks that the search trains what the workers were set up with; ``assignments`` holds
    where each candidate of the latest search ran (the evaluator's own dict mixes searches)."""

    def __init__(self, evaluator: Any, schema: Any, data: Any, config: Any) -> None:
        self.evaluator, self.schema, self.data, self.config = evaluator, schema, data, config
        self.capacity = evaluator.capacity
        self.assignments: dict[int, dict[str, Any]] = {}
        self.opened = 0

    def open(self, schema: Any, data: Any, config: Any) -> None:
        assert schema == self.schema, "the lent workers were set up with another schema"
        assert config == self.config, "the lent workers were set up with another config"
        assert data.fingerprint() == self.data.fingerprint(), "... with other data"
        self.assignments, self.opened = {}, self.opened + 1

    def submit(self, task: Any) -> None:
        self.evaluator.submit(task)

    def next_result(self) -> Any:
        task, result = self.evaluator.next_result()
        self.assignments[task.index] = dict(self.evaluator.assignments[task.index])
        return task, result

    def close(self) -> None:
        pass


class Scripted:
    """A generational strategy that asks the genomes it is given, generation by generation."""

    steady_state = False
    maximize = True

    def __init__(self, cardinalities, generations):
        self.cardinalities = np.asarray(cardinalities)
        self.generations, self.at = [np.asarray(g, dtype=np.int64) for g in generations], 0

    def ask(self, n=None):
        rows = self.generations[self.at % len(self.generations)]
        self.at += 1
        return rows if n is None else rows[:n]

    def tell(self, genomes, fitness):
        pass

    def state_dict(self):
        return {"at": self.at}

    def load_state_dict(self, state):
        self.at = state["at"]
