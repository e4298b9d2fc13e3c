"""Training: data (built in, or your own files) on the device, train and score one
candidate, failure handling.

Imports only ``pytorch_devol.schema``'s contract (duck-typed), never search or evolution.
"""

from __future__ import annotations

from pytorch_devol.training.config import PRECISIONS, TrainConfig, cpu_has_fast_bf16
from pytorch_devol.training.datasets import (
    DATA_ENV_VAR,
    DATASETS,
    default_data_root,
    load_dataset,
)
from pytorch_devol.training.failures import NonFiniteLossError
from pytorch_devol.training.files import load_data, load_npz
from pytorch_devol.training.idx import read_idx
from pytorch_devol.training.imagefolder import load_image_folder
from pytorch_devol.training.result import FAILURE_KINDS, METRICS, RETRIED_FAILURES, EvalResult
from pytorch_devol.training.splits import TASKS, DataSplits
from pytorch_devol.training.trainer import Trainer, train_and_evaluate
from pytorch_devol.training.validate import (
    as_splits,
    check_compatible,
    split_indices,
    validate_splits,
)

__all__ = [
    "DATASETS",
    "DATA_ENV_VAR",
    "METRICS",
    "PRECISIONS",
    "RETRIED_FAILURES",
    "TASKS",
    "DataSplits",
    "EvalResult",
    "FAILURE_KINDS",
    "NonFiniteLossError",
    "TrainConfig",
    "Trainer",
    "as_splits",
    "check_compatible",
    "cpu_has_fast_bf16",
    "default_data_root",
    "load_data",
    "load_dataset",
    "load_image_folder",
    "load_npz",
    "read_idx",
    "split_indices",
    "train_and_evaluate",
    "validate_splits",
]
