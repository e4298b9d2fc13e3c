"""Shared pieces of the parallel-evaluator tests: tiny schemas, a gene that kills its worker
process on demand (across spawn and Ray: it reads an environment variable and token files),
and a check that a process is really gone."""

from __future__ import annotations

import os
from pathlib import Path

from pytorch_devol.schema import DenseGene, GenomeSchema, OptimizerGene, allele, gene

KILL_DIR_ENV = "PYTORCH_DEVOL_TEST_KILL_DIR"


def tiny_schema() -> GenomeSchema:
    """DEvol's space, shrunk to digits' 8x8 images: trains in a fraction of a second."""
    return GenomeSchema.devol(max_conv_layers=1, max_dense_layers=2, max_filters=16,
                              max_dense_nodes=32, input_shape=(1, 8, 8), n_classes=10)


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
        if self.armed and _consume_token():
            os._exit(17)
        return [], in_shape


def kill_schema() -> GenomeSchema:
    """A small flat schema with a kill switch: genome = [armed, units index, optimizer]."""
    return GenomeSchema(layers=[KillSwitchGene, DenseGene.with_choices(units=[16, 32])],
                        training=OptimizerGene, input_shape=(1, 8, 8), n_outputs=10)


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
