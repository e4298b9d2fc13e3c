"""`TrainState`: everything needed to continue a candidate's training exactly where it paused.

Multi-fidelity search trains a candidate for a few epochs, and continues only the promising
ones. Continuing must give the same network as never having paused, so the state holds more
than the weights: the optimizer's moments, the learning-rate schedule's position, both random
streams (batch order and dropout), early stopping's memory and the history so far.

``to_dict`` is plain tensors, numbers, strings and lists, so ``torch.load(weights_only=True)``
reads a saved state back without unpickling arbitrary objects.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch

__all__ = ["TrainState", "BestSoFar", "copy_state", "overlay"]

STATE_FORMAT = 1


def to_cpu(obj: Any) -> Any:
    """A deep copy of ``obj`` (nested dicts, lists, tuples) with every tensor copied to CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_cpu(v) for v in obj)
    return obj


@attrs.frozen
class TrainState:
    """A candidate's training, paused after ``epoch`` epochs (CPU tensors only).

    ``stop_reason`` is "paused" (continuing trains more epochs), or "early_stopping" /
    "max_seconds" (it had finished: continuing only scores it again).
    ``model`` holds the last epoch's weights (training continues from them); ``best_model``
    the best-validation epoch's, or None when that is the last epoch (or none is kept).
    ``seconds`` is the training time spent so far (a ``max_seconds`` cap covers all of it).
    """

    epoch: int
    stop_reason: str
    model: dict[str, torch.Tensor] = attrs.field(repr=False)
    optimizer: dict[str, Any] = attrs.field(repr=False)
    scheduler: dict[str, Any] | None = attrs.field(repr=False)
    generator: torch.Tensor = attrs.field(repr=False)
    rng: torch.Tensor = attrs.field(repr=False)
    cuda_rng: torch.Tensor | None = attrs.field(repr=False)
    best_model: dict[str, torch.Tensor] | None = attrs.field(repr=False)
    best_loss: float
    best_metric: float
    best_epoch: int
    waited: int
    seconds: float
    history: dict[str, list[float]] = attrs.field(repr=False)

    @classmethod
    def capture(cls, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: Any, generator: torch.Generator, device: torch.device,
                history: dict[str, list[float]], *,
                best_model: dict[str, torch.Tensor] | None, **fields: Any) -> TrainState:
        """The state of a training paused now (copied to CPU; ``fields``: the counters)."""
        return cls(model=to_cpu(model.state_dict()), optimizer=to_cpu(optimizer.state_dict()),
                   scheduler=None if scheduler is None else to_cpu(scheduler.state_dict()),
                   generator=generator.get_state(), rng=torch.random.get_rng_state(),
                   cuda_rng=torch.cuda.get_rng_state(device) if device.type == "cuda"
                   else None,
                   best_model=None if best_model is None or
                   fields["best_epoch"] == fields["epoch"] else to_cpu(best_model),
                   history={k: list(v) for k, v in history.items()}, **fields)

    def restore(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                scheduler: Any, generator: torch.Generator, device: torch.device) -> None:
        """Put the weights, optimizer, schedule and random streams back (the counters and
        history are the caller's to read)."""
        model.load_state_dict(self.model)
        optimizer.load_state_dict(to_cpu(self.optimizer))  # a copy: training must not change
        # the saved state (load_state_dict keeps CPU tensors as they are)
        if (scheduler is None) != (self.scheduler is None):
            raise ValueError("the saved training state's schedule does not match this "
                             "candidate's (a state from another genome or configuration?)")
        if scheduler is not None:
            scheduler.load_state_dict(self.scheduler)
        generator.set_state(self.generator)
        torch.random.set_rng_state(self.rng)
        if device.type == "cuda" and self.cuda_rng is not None:
            torch.cuda.set_rng_state(self.cuda_rng, device)

    def nbytes(self) -> int:
        """Bytes of tensor data held (what saving or sending the state costs, roughly)."""
        total = 0

        def walk(obj: Any) -> None:
            nonlocal total
            if isinstance(obj, torch.Tensor):
                total += obj.nbytes
            elif isinstance(obj, dict):
                for v in obj.values():
                    walk(v)
            elif isinstance(obj, list | tuple):
                for v in obj:
                    walk(v)

        walk([self.model, self.optimizer, self.best_model, self.generator, self.rng,
              self.cuda_rng])
        return total

    def to_dict(self) -> dict[str, Any]:
        """Plain containers for ``torch.save``; non-finite floats become None."""
        out = attrs.asdict(self, recurse=False)
        for key in ("best_loss", "best_metric"):
            out[key] = out[key] if math.isfinite(out[key]) else None
        out["format"] = STATE_FORMAT
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        """Inverse of ``to_dict``; ValueError names what is missing or of the wrong kind."""
        if not isinstance(data, dict) or data.get("format") != STATE_FORMAT:
            raise ValueError("not a saved training state of this version")
        names = [a.name for a in attrs.fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise ValueError(f"saved training state lacks {missing}")
        kwargs = {n: data[n] for n in names}
        for key in ("best_loss", "best_metric"):
            kwargs[key] = math.nan if kwargs[key] is None else float(kwargs[key])
        for key in ("generator", "rng"):
            if not isinstance(kwargs[key], torch.Tensor):
                raise ValueError(f"saved training state's {key} is not a tensor")
        for key in ("model", "optimizer", "history"):
            if not isinstance(kwargs[key], dict):
                raise ValueError(f"saved training state's {key} is not a dict")
        return cls(**kwargs)


@attrs.define
class BestSoFar:
    """The best validation epoch so far, while training runs: what early stopping and
    ``restore_best`` need (a `TrainState` keeps it across a pause)."""

    loss: float = math.inf
    metric: float = math.nan
    epoch: int = 0
    waited: int = 0  # epochs since it
    state: dict[str, torch.Tensor] | None = None  # its weights, when kept

    def update(self, epoch: int, loss: float, metric: float, model: torch.nn.Module,
               keep_copy: bool) -> None:
        if loss < self.loss:
            self.loss, self.metric, self.epoch, self.waited = loss, metric, epoch, 0
            self.state = None  # free the previous copy first
            if keep_copy:
                self.state = copy_state(model)
        else:
            self.waited += 1


def copy_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights and buffers, on its device."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def overlay(model: torch.nn.Module, initial: dict[str, torch.Tensor]) -> None:
    """Copy ``initial`` (a partial state dict, heredity's) over ``model``'s fresh tensors: a
    tensor smaller than the model's fills its leading block, the rest stays as initialised.
    Raises ValueError for a name the model lacks or a tensor that does not fit."""
    own = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for name, tensor in initial.items():
            target = own.get(name)
            if target is None:
                raise ValueError(f"the inherited weights name {name!r}, which the network lacks")
            if tensor.dim() != target.dim() or any(
                    a > b for a, b in zip(tensor.shape, target.shape)):
                raise ValueError(f"the inherited {name!r} has shape {tuple(tensor.shape)}, "
                                 f"which does not fit {tuple(target.shape)}")
            target[tuple(slice(0, n) for n in tensor.shape)].copy_(tensor)
