"""The two plain PyTorch loops ``train_throughput.py`` measures our Trainer against (see its
docstring for what each does), and the FLOP counts and dense matmul rates it compares all
three with."""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import spread


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# -- the two plain loops ---------------------------------------------------------------------
def tutorial_train(schema: Any, genome: np.ndarray, data: Any, epochs: int, batch_size: int,
                   device: torch.device, seed: int) -> dict[str, Any]:
    """What a PyTorch tutorial does: DataLoader, fp32, .item() per batch."""
    torch.manual_seed(seed)
    model = schema.build_model(genome).to(device)
    optimizer = schema.make_optimizer(genome, model.parameters())  # torch's default variant
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=batch_size,
                       shuffle=True)
    val = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=batch_size)
    test = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=batch_size)

    def score(loader: DataLoader) -> tuple[float, float]:
        model.eval()
        loss_sum, correct, n = 0.0, 0, 0
        with torch.no_grad():
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                out = model(xb)
                loss_sum += F.cross_entropy(out, yb, reduction="sum").item()
                correct += (out.argmax(1) == yb).sum().item()
                n += len(yb)
        return loss_sum / n, correct / n

    val_acc, finite = math.nan, True
    for _ in range(epochs):
        model.train()
        running = 0.0
        for xb, yb in train:
            xb, yb = xb.to(device), yb.to(device)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item()
        if not math.isfinite(running):
            finite = False
            break
        _, val_acc = score(val)
    _, test_acc = score(test)
    sync(device)
    return {"status": "ok" if finite else "nan", "val_accuracy": val_acc,
            "test_accuracy": test_acc}


def tuned_train(schema: Any, genome: np.ndarray, data: Any, epochs: int, batch_size: int,
                device: torch.device, seed: int, bf16: bool, channels_last: bool,
                eval_batch: int) -> dict[str, Any]:
    """The tutorial loop plus the one-line speed-ups a good engineer adds."""
    torch.manual_seed(seed)
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = schema.build_model(genome).to(device, memory_format=fmt)
    optimizer = schema.make_optimizer(genome, model.parameters(), device=device)
    train = DataLoader(TensorDataset(data.x_train, data.y_train), batch_size=batch_size,
                       shuffle=True, pin_memory=cuda)
    val = DataLoader(TensorDataset(data.x_val, data.y_val), batch_size=eval_batch,
                     pin_memory=cuda)
    test = DataLoader(TensorDataset(data.x_test, data.y_test), batch_size=eval_batch,
                      pin_memory=cuda)

    def autocast() -> Any:
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=bf16)

    def batch(xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xb = xb.to(device, non_blocking=True)
        if channels_last:
            xb = xb.contiguous(memory_format=torch.channels_last)
        return xb, yb.to(device, non_blocking=True)

    def score(loader: DataLoader) -> float:
        model.eval()
        correct = torch.zeros((), device=device, dtype=torch.int64)
        n = 0
        with torch.inference_mode(), autocast():
            for xb, yb in loader:
                xb, yb = batch(xb, yb)
                correct += (model(xb).argmax(1) == yb).sum()
                n += len(yb)
        return int(correct) / n

    val_acc, finite = math.nan, True
    for _ in range(epochs):
        model.train()
        running = torch.zeros((), device=device)
        for xb, yb in train:
            xb, yb = batch(xb, yb)
            optimizer.zero_grad(set_to_none=True)
            with autocast():
                out = model(xb)
            loss = F.cross_entropy(out.float(), yb)
            loss.backward()
            optimizer.step()
            running += loss.detach()
        if not math.isfinite(float(running)):  # one sync per epoch
            finite = False
            break
        val_acc = score(val)
    test_acc = score(test)
    sync(device)
    return {"status": "ok" if finite else "nan", "val_accuracy": val_acc,
            "test_accuracy": test_acc}


# -- FLOPs and matmul rates ------------------------------------------------------------------
def count_flops(schema: Any, genome: np.ndarray, shape: tuple[int, ...], device: torch.device,
                batch: int = 16) -> tuple[float, float]:
    """(training FLOPs per image: forward + backward, inference FLOPs per image)."""
    model = schema.build_model(genome).to(device)
    x = torch.rand((batch, *shape), device=device)
    y = torch.zeros(batch, dtype=torch.long, device=device)
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    train = counter.get_total_flops() / batch
    model.eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(x)
    return train, counter.get_total_flops() / batch


def matmul_rate(device: torch.device, dtype: torch.dtype, seconds: float, n: int) -> float:
    """Measured dense matmul FLOP/s of n x n matrices on ``device`` in ``dtype`` (the practical
    peak)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(10 if device.type == "cuda" else 1):
            a @ b
            reps += 1
        sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - start)


def matmul_rates(device: torch.device, seconds: float | None = None,
                 repeats: int = 3, n: int | None = None) -> dict[str, Any]:
    """bf16 and fp32 rates, interleaved, median and range over ``repeats`` measurements."""
    if seconds is None:
        seconds = 1.0 if device.type == "cuda" else 0.7
    n = n or (8192 if device.type == "cuda" else 1024)
    rates: dict[str, list[float]] = {"bf16": [], "fp32": []}
    for _ in range(repeats):
        rates["bf16"].append(matmul_rate(device, torch.bfloat16, seconds, n) / 1e12)
        rates["fp32"].append(matmul_rate(device, torch.float32, seconds, n) / 1e12)
    return {**{k: spread(v) for k, v in rates.items()}, "size": n}
