"""Built-in gene types: DEvol's convolution, dense and optimizer genes.

Each layer gene builds its modules from an input shape and returns the output shape; the
schema chains them. Defaults and order of operations follow DEvol (conv -> batch norm ->
activation -> dropout -> max pool).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch
from torch import nn

from .._checks import DEVOL_ACTIVATIONS, DEVOL_OPTIMIZERS
from .alleles import allele, gene
from .errors import InvalidGenomeError
from .registry import ACTIVATIONS, OPTIMIZERS, make_activation, make_optimizer

__all__ = ["Conv2dGene", "DenseGene", "OptimizerGene", "flat_size"]

DEVOL_DROPOUTS = tuple(i / 20 for i in range(11))


def flat_size(shape: tuple[int, ...]) -> int:
    """Number of features once a tensor of this (per-sample) shape is flattened."""
    return math.prod(shape)


def _post(modules: list[nn.Module], batch_norm: nn.Module | None, activation: str, p: float):
    if batch_norm is not None:
        modules.append(batch_norm)
    modules.append(make_activation(activation))
    if p > 0:
        modules.append(nn.Dropout(p))


@gene
class Conv2dGene:
    """A 3x3 "same" convolution, optional batch norm, activation, dropout and 2x2 max pool.

    As in DEvol, pooling is applied only while the smaller spatial side is at least
    ``min_pool_size`` (5), so deep stacks never pool a map away; odd sides round up.
    """

    active: bool = allele([False, True], default=True, label="active")
    filters: int = allele([8, 16, 32, 64, 128, 256], label="num filters")
    batch_norm: bool = allele([False, True], label="batch normalization")
    activation: str = allele(list(DEVOL_ACTIVATIONS), label="activation", registry=ACTIVATIONS)
    dropout: float = allele(DEVOL_DROPOUTS, label="dropout")
    max_pool: bool = allele([False, True], label="max pooling")

    kernel_size = 3
    min_pool_size = 5

    def build(self, in_shape: tuple[int, ...]) -> tuple[list[nn.Module], tuple[int, ...]]:
        if len(in_shape) != 3:
            raise InvalidGenomeError(f"a 2-D convolution needs a (C, H, W) input, "
                                     f"got {in_shape}")
        c, h, w = in_shape
        modules: list[nn.Module] = [
            nn.Conv2d(c, self.filters, self.kernel_size, padding=self.kernel_size // 2)
        ]
        _post(modules, nn.BatchNorm2d(self.filters) if self.batch_norm else None,
              self.activation, self.dropout)
        if self.max_pool and min(h, w) >= self.min_pool_size:
            modules.append(nn.MaxPool2d(2, ceil_mode=True))
            h, w = math.ceil(h / 2), math.ceil(w / 2)
        return modules, (self.filters, h, w)


@gene
class DenseGene:
    """A fully connected layer (flattening its input first), batch norm, activation, dropout."""

    active: bool = allele([False, True], default=True, label="active")
    units: int = allele([16, 32, 64, 128, 256, 512, 1024], label="num nodes")
    batch_norm: bool = allele([False, True], label="batch normalization")
    activation: str = allele(list(DEVOL_ACTIVATIONS), label="activation", registry=ACTIVATIONS)
    dropout: float = allele(DEVOL_DROPOUTS, label="dropout")

    def build(self, in_shape: tuple[int, ...]) -> tuple[list[nn.Module], tuple[int, ...]]:
        modules: list[nn.Module] = [nn.Flatten()] if len(in_shape) > 1 else []
        modules.append(nn.Linear(flat_size(in_shape), self.units))
        _post(modules, nn.BatchNorm1d(self.units) if self.batch_norm else None,
              self.activation, self.dropout)
        return modules, (self.units,)


@gene
class OptimizerGene:
    """The optimizer, by registered name (see ``pytorch_devol.schema.OPTIMIZERS``)."""

    optimizer: str = allele(list(DEVOL_OPTIMIZERS), label="optimizer", registry=OPTIMIZERS)

    slot_name = "optimizer"

    def make_optimizer(
        self, params: Iterable[torch.Tensor], device: torch.device | str | None = None,
        **hparams: Any,
    ) -> torch.optim.Optimizer:
        """The chosen optimizer, with other training genes' ``hparams`` (lr_scale, ...)."""
        return make_optimizer(self.optimizer, params, device, **hparams)
