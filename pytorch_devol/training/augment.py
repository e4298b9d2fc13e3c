"""On-device batch augmentation: random translation and horizontal flip, batched.

Applied to each training batch in the trainer's fast path: no DataLoader, no per-sample Python,
no host sync. Randomness comes from the candidate's own generator, so a candidate augments
identically on any evaluator.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["augment_batch"]


def augment_batch(x: torch.Tensor, shift: int, flip: bool,
                  generator: torch.Generator) -> torch.Tensor:
    """``x`` (N, C, H, W) translated by up to ``shift`` pixels each way (zero padding, then a
    random crop per example) and, with ``flip``, mirrored left-right with probability 1/2."""
    n, _, h, w = x.shape
    if shift > 0:
        padded = F.pad(x, (shift, shift, shift, shift))
        offsets = torch.randint(0, 2 * shift + 1, (2, n), device=x.device, generator=generator)
        rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # (N, H)
        cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # (N, W)
        batch = torch.arange(n, device=x.device)[:, None, None]
        # Advanced indices around a slice: the result is (N, H, W, C); back to (N, C, H, W).
        x = padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
    if flip:
        mirror = torch.rand(n, device=x.device, generator=generator) < 0.5
        x = torch.where(mirror[:, None, None, None], x.flip(3), x)
    return x
