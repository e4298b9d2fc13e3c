"""CPU stand-ins for modules whose stock kernels are slow there (same maths, faster kernels).

The trainer swaps them into the model it trains, on CPU only; the weights (state_dict) are
unchanged, so nothing outside the trainer sees a difference.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MaskDropout", "swap_cpu_dropout"]


class MaskDropout(nn.Module):
    """Inverted dropout (zero with probability p, scale the rest by 1/(1-p)) with the mask
    drawn by ``torch.rand_like(...) >= p``.

    Why: on CPU, ``nn.Dropout``'s ``bernoulli_`` draws about 3x slower than ``rand_like``
    (measured 85 ms vs 30 ms for a 128x64x28x28 tensor on one core), and dropout then dominates
    a small CNN's training step. Same distribution; a different random stream than nn.Dropout.
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * 0.0
        keep = torch.rand_like(x, dtype=torch.float32) >= self.p
        return x * keep.to(x.dtype) * (1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


def swap_cpu_dropout(model: nn.Module) -> int:
    """Replace every plain ``nn.Dropout`` (exact type, not in-place) in ``model`` by
    `MaskDropout`; returns how many were replaced."""
    replaced = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout and not child.inplace:
                setattr(parent, name, MaskDropout(child.p))
                replaced += 1
    return replaced
