"""DEvol's API on pytorch-devol: ``GenomeHandler`` and ``DEvol`` with DEvol's signatures.

    from pytorch_devol.compat import DEvol, GenomeHandler   # was: from devol import ...

Both are thin layers over ``GenomeSchema.devol``, the evolution engine and ``Search``; see
docs/migrating-from-devol.md for what changed and which of DEvol's defects are fixed.
"""

from .csvlog import (
    ACCURACY_COLUMN,
    LOSS_COLUMN,
    DevolCsvLog,
    best_row,
    devol_penalty,
    write_devol_csv,
)
from .handler import DEVOL_ACTIVATIONS, DEVOL_OPTIMIZERS, KERAS_OPTIMIZERS, GenomeHandler
from .runner import KERAS_BATCH_SIZE, DEvol, default_paths

__all__ = [
    "ACCURACY_COLUMN",
    "DEVOL_ACTIVATIONS",
    "DEVOL_OPTIMIZERS",
    "KERAS_BATCH_SIZE",
    "KERAS_OPTIMIZERS",
    "LOSS_COLUMN",
    "DEvol",
    "DevolCsvLog",
    "GenomeHandler",
    "best_row",
    "default_paths",
    "devol_penalty",
    "write_devol_csv",
]
