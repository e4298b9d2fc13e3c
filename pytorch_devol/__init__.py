"""pytorch-devol: genetic neural-architecture search in PyTorch (a port of DEvol).

The public names below are loaded lazily so that ``import pytorch_devol`` stays cheap and never
pulls an optional dependency.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

__all__ = [
    "ASHA",
    "Callback",
    "GenomeSchema",
    "Hyperband",
    "InvalidGenomeError",
    "MLflowCallback",
    "Search",
    "SearchResult",
    "SuccessiveHalving",
    "TensorBoardCallback",
    "load_data",
    "load_dataset",
    "load_result",
]

_LOCATIONS = {
    "ASHA": "pytorch_devol.search",
    "SuccessiveHalving": "pytorch_devol.search",
    "Hyperband": "pytorch_devol.search",
    "GenomeSchema": "pytorch_devol.schema",
    "InvalidGenomeError": "pytorch_devol.schema",
    "Search": "pytorch_devol.search",
    "SearchResult": "pytorch_devol.search",
    "load_dataset": "pytorch_devol.training",
    "load_data": "pytorch_devol.training",
    "load_result": "pytorch_devol.search",
    "Callback": "pytorch_devol.search",
    "MLflowCallback": "pytorch_devol.search.report",
    "TensorBoardCallback": "pytorch_devol.search.report",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'pytorch_devol' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
