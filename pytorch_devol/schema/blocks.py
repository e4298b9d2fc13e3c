"""Modern layer genes: convolution blocks with a kernel and downsampling choice, residual
blocks, and the head's pooling choice. DEvol's genes (``genes.py``) stay as they were.

Every block is conv -> batch norm -> activation (BN after each convolution, as in ResNets), so
deeper stacks train at the learning rates the training genes choose.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import nn

from .alleles import allele, gene
from .errors import InvalidGenomeError
from .registry import ACTIVATIONS, make_activation

__all__ = ["ConvBlockGene", "DOWNSAMPLING", "GlobalPoolGene", "Residual", "ResidualBlockGene"]

DOWNSAMPLING = ("none", "max", "avg", "stride")
MODERN_ACTIVATIONS = ("relu", "gelu", "silu")


def _image(gene_name: str, in_shape: tuple[int, ...]) -> tuple[int, int, int]:
    if len(in_shape) != 3:
        raise InvalidGenomeError(f"{gene_name} needs a (C, H, W) input, got {in_shape}")
    c, h, w = in_shape
    return c, h, w


def _halved(size: int) -> int:
    return math.ceil(size / 2)


@gene
class ConvBlockGene:
    """A k x k convolution (optionally depthwise-separable), batch norm, activation, then
    optional downsampling by 2: max or average pooling, or a stride-2 convolution. Like
    DEvol's pooling, downsampling is skipped once the smaller side is below ``min_size``."""

    active: bool = allele([False, True], default=True)
    filters: int = allele([16, 32, 64, 128])
    kernel: int = allele([3, 5])
    downsample: str = allele(DOWNSAMPLING)
    separable: bool = allele([False, True])
    activation: str = allele(MODERN_ACTIVATIONS, registry=ACTIVATIONS)

    slot_name: ClassVar[str] = "conv"
    min_size: ClassVar[int] = 4

    def build(self, in_shape: tuple[int, ...]) -> tuple[list[nn.Module], tuple[int, ...]]:
        c, h, w = _image("ConvBlockGene", in_shape)
        down = self.downsample != "none" and min(h, w) >= self.min_size
        stride = 2 if down and self.downsample == "stride" else 1
        pad = self.kernel // 2
        if self.separable:
            convs: list[nn.Module] = [
                nn.Conv2d(c, c, self.kernel, stride, pad, groups=c, bias=False),
                nn.Conv2d(c, self.filters, 1, bias=False)]
        else:
            convs = [nn.Conv2d(c, self.filters, self.kernel, stride, pad, bias=False)]
        modules = [*convs, nn.BatchNorm2d(self.filters), make_activation(self.activation)]
        if down and self.downsample != "stride":
            pool = nn.MaxPool2d if self.downsample == "max" else nn.AvgPool2d
            modules.append(pool(2, ceil_mode=True))
        if down:
            h, w = _halved(h), _halved(w)
        return modules, (self.filters, h, w)


class Residual(nn.Module):
    """``activation(body(x) + skip(x))``: the skip is the identity or a 1x1 projection."""

    def __init__(self, body: nn.Module, skip: nn.Module, activation: nn.Module) -> None:
        super().__init__()
        self.body, self.skip, self.activation = body, skip, activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.skip(x))


@gene
class ResidualBlockGene:
    """A residual block (He et al. 2016): two 3x3 convolutions with batch norm, added to an
    identity skip, or to a 1x1 projection when the width or the resolution changes."""

    active: bool = allele([False, True], default=True)
    filters: int = allele([16, 32, 64, 128])
    downsample: bool = allele([False, True])
    activation: str = allele(MODERN_ACTIVATIONS, registry=ACTIVATIONS)

    slot_name: ClassVar[str] = "residual"
    min_size: ClassVar[int] = 4

    def build(self, in_shape: tuple[int, ...]) -> tuple[list[nn.Module], tuple[int, ...]]:
        c, h, w = _image("ResidualBlockGene", in_shape)
        f = self.filters
        stride = 2 if self.downsample and min(h, w) >= self.min_size else 1
        body = nn.Sequential(
            nn.Conv2d(c, f, 3, stride, 1, bias=False), nn.BatchNorm2d(f),
            make_activation(self.activation),
            nn.Conv2d(f, f, 3, 1, 1, bias=False), nn.BatchNorm2d(f))
        skip: nn.Module = nn.Identity() if c == f and stride == 1 else nn.Sequential(
            nn.Conv2d(c, f, 1, stride, bias=False), nn.BatchNorm2d(f))
        if stride == 2:
            h, w = _halved(h), _halved(w)
        return [Residual(body, skip, make_activation(self.activation))], (f, h, w)


@gene
class GlobalPoolGene:
    """How the feature maps reach the dense head: flattened (DEvol's way) or global average
    pooling (one value per channel: far fewer head weights, any input size). Flat inputs pass
    through unchanged."""

    pool: str = allele(["flatten", "average"])

    slot_name: ClassVar[str] = "head"

    def build(self, in_shape: tuple[int, ...]) -> tuple[list[nn.Module], tuple[int, ...]]:
        if len(in_shape) != 3:
            return [], tuple(in_shape)
        if self.pool == "average":
            return [nn.AdaptiveAvgPool2d(1), nn.Flatten()], (in_shape[0],)
        return [nn.Flatten()], (math.prod(in_shape),)
