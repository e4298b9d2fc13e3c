"""Shared pytest fixtures: real datasets (skipping with a reason when absent), threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """Where the real datasets are: $PYTORCH_DEVOL_DATA, else <repo>/../shared/datasets."""
    env = os.environ.get("PYTORCH_DEVOL_DATA")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def _root_with(folder: str) -> Path:
    root = data_root()
    raw = root / folder / "raw"
    if not any(raw.glob("train-images-idx3-ubyte*")):
        pytest.skip(f"{folder} raw files not found in {raw} (set PYTORCH_DEVOL_DATA to a folder "
                    f"with torchvision's layout <root>/{folder}/raw)")
    return root


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """Root holding MNIST/raw/*.gz; skips the test when absent."""
    return _root_with("MNIST")


@pytest.fixture(scope="session")
def fashion_mnist_root() -> Path:
    """Root holding FashionMNIST/raw/*.gz; skips the test when absent."""
    return _root_with("FashionMNIST")


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits as DataSplits (seed 0), loaded once per session. Read-only."""
    pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn")
    from pytorch_devol.training import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def digits_splits(digits):
    """The same DataSplits as ``digits`` (a name that modules defining their own ``digits``
    fixture can still reach)."""
    return digits


@pytest.fixture
def one_thread():
    """Bit-identical CPU results need the same thread count per candidate in both runs."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
