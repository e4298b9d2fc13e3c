"""The CPU dropout stand-in: same maths as nn.Dropout, swapped in without touching weights."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pytorch_devol.training.fast_ops import MaskDropout, swap_cpu_dropout


def test_mask_dropout_drops_at_rate_p_and_rescales():
    torch.manual_seed(0)
    layer = MaskDropout(0.3)
    x = torch.ones(200_000)
    y = layer(x)
    kept = y != 0
    assert float(kept.float().mean()) == pytest.approx(0.7, abs=0.01)
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    assert float(y.mean()) == pytest.approx(1.0, abs=0.01)  # unbiased, like nn.Dropout
    layer.eval()
    assert layer(x) is x
    assert torch.equal(MaskDropout(1.0)(x), torch.zeros_like(x))
    bf16 = MaskDropout(0.5)(torch.ones(10, dtype=torch.bfloat16))
    assert bf16.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="dropout probability"):
        MaskDropout(1.5)


def test_swap_replaces_plain_dropout_only_and_keeps_weights():
    model = nn.Sequential(nn.Linear(4, 4), nn.Dropout(0.2), nn.Sequential(nn.Dropout(0.4)),
                          nn.Dropout2d(0.1), nn.Dropout(0.5, inplace=True))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert swap_cpu_dropout(model) == 2
    assert isinstance(model[1], MaskDropout) and model[1].p == 0.2
    assert isinstance(model[2][0], MaskDropout) and model[2][0].p == 0.4
    assert type(model[3]) is nn.Dropout2d and type(model[4]) is nn.Dropout
    assert model.state_dict().keys() == before.keys()
    assert all(torch.equal(model.state_dict()[k], v) for k, v in before.items())
    grad_x = torch.ones(3, 4, requires_grad=True)
    model[1](grad_x).sum().backward()  # differentiable
    assert grad_x.grad is not None
