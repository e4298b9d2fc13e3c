"""`Trainer`: train and score one candidate network, fast and without ever raising.

Fast path: the data is moved to the device once; each epoch draws one on-device permutation
from a local seeded generator and slices batches from it (no DataLoader); the loss is summed on
the device and read once per epoch (no per-batch host sync), which is also where NaN/inf and
early stopping are checked. bf16 autocast and channels_last on CUDA (bf16 also on CPUs with
native bf16 kernels), cudnn benchmark, fused/foreach optimizers (chosen by the schema),
evaluation under inference_mode in large batches; on CPU, dropout masks from a faster kernel
(`fast_ops`). Per candidate, its training genes may set a learning-rate schedule (stepped
per batch), label smoothing and on-device augmentation of each batch (`augment`), all without
a host sync. The best-validation-epoch weights are restored at the end (DEvol kept the last
epoch's).
"""

from __future__ import annotations

import contextlib
import gc
import math
import os
import time
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from pytorch_devol.schema.errors import InvalidGenomeError
from pytorch_devol.training.augment import augment_batch
from pytorch_devol.training.config import TrainConfig
from pytorch_devol.training.fast_ops import swap_cpu_dropout
from pytorch_devol.training.result import EvalResult
from pytorch_devol.training.schedules import make_schedule
from pytorch_devol.training.splits import DataSplits
from pytorch_devol.training.state import TrainState
from pytorch_devol.training.validate import as_splits, check_compatible

__all__ = ["Trainer", "train_and_evaluate", "NonFiniteLossError", "classify_failure",
           "error_origin"]

_MAX_REASON = 2000
# Where torch and our own code live: an error's origin is the innermost frame outside them.
_LIBRARY_DIRS = (os.path.dirname(torch.__file__) + os.sep,
                 os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep)


class NonFiniteLossError(ArithmeticError):
    """The training or validation loss became NaN or infinite."""


def _is_sticky_cuda_error(exc: BaseException) -> bool:
    """A CUDA error after which this process's context is unusable (illegal access, assert)."""
    text = str(exc)
    return isinstance(exc, RuntimeError) and not isinstance(exc, torch.OutOfMemoryError) and (
        "CUDA error" in text or "cudaError" in text or "device-side assert" in text)


def classify_failure(exc: BaseException, shared_device: bool = False) -> str:
    """The failure kind (see ``FAILURE_KINDS``) of an exception raised by a candidate.

    A candidate's own fault: ``InvalidGenomeError`` (a gene that cannot take its input),
    ``NonFiniteLossError``, and out of memory on a device it has to itself. Out of memory on a
    device shared with other workers, and a broken CUDA context, are the machine's fault.
    Anything else is "unexpected": possibly a bug, which the search's circuit breaker watches.
    """
    if isinstance(exc, torch.OutOfMemoryError):
        return "infrastructure" if shared_device else "candidate"
    if _is_sticky_cuda_error(exc):
        return "infrastructure"
    if isinstance(exc, (InvalidGenomeError, NonFiniteLossError)):
        return "candidate"
    return "unexpected"


def _detach(exc: BaseException) -> BaseException:
    """Drop the tracebacks of ``exc`` and its chain, so it no longer holds the frames (and
    the model and optimizer in them) alive."""
    seen: set[int] = set()
    node: BaseException | None = exc
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        node.__traceback__ = None
        node = node.__cause__ or node.__context__
    return exc


def error_origin(exc: BaseException) -> str | None:
    """``file:line in function`` of the innermost frame outside torch and pytorch-devol (the
    user's code), else of the innermost frame; None without a traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return None
    ours = [f for f in frames if not f.filename.startswith(_LIBRARY_DIRS)]
    f = (ours or frames)[-1]
    return f"{f.filename}:{f.lineno} in {f.name}"


@attrs.define
class _Progress:
    """What is known about a candidate so far, kept outside the frames a failure unwinds."""

    params: int = 0
    epochs: int = 0
    history: dict[str, list[float]] = attrs.Factory(dict)


class Trainer:
    """Evaluates candidates (schema + genome) on one dataset with one `TrainConfig`.

    The data is validated and moved to the device once, here, and shared by every candidate
    (on CUDA this also turns on ``torch.backends.cudnn.benchmark``, a process-wide setting).
    ``evaluate`` never raises for a candidate's failure (build error, shape error, NaN/inf
    loss, out-of-memory, any other Exception): it returns ``status="failed"`` with the reason,
    its kind (`classify_failure`) and origin, and leaves the device clean. KeyboardInterrupt
    still propagates. ``shared_device``: other processes train on this device too, so an
    out-of-memory error may be theirs (retried, not final). After a CUDA error that breaks the
    context, ``broken`` is True and the process should be replaced.
    """

    def __init__(self, data: Any, config: TrainConfig | None = None, *,
                 shared_device: bool = False) -> None:
        # torch imports torch._dynamo when a process builds its first optimizer (seconds on a
        # slow CPU): pay it here, so a candidate's seconds and its timeout measure only itself.
        import torch._dynamo  # noqa: F401

        self.config = config if config is not None else TrainConfig()
        self.shared_device = shared_device
        self.broken = False
        self.device = self.config.resolve_device()
        splits = as_splits(data)
        self.bf16 = self.config.use_bf16(self.device)
        self.channels_last = self.config.use_channels_last(self.device) and \
            len(splits.input_shape) == 3
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        splits = splits.to(self.device)
        if self.channels_last:
            fmt = torch.channels_last
            splits = attrs.evolve(splits, **{f"x_{p}": splits.part(p)[0].contiguous(
                memory_format=fmt) for p in ("train", "val", "test")})
        self.data: DataSplits = splits

    def __repr__(self) -> str:
        return (f"Trainer({self.data.summary()}, device={self.device}, bf16={self.bf16}, "
                f"channels_last={self.channels_last}, {self.config})")

    # -- public -------------------------------------------------------------------------------
    def evaluate(self, schema: Any, genome: Any, seed: int | None = None,
                 keep_weights: bool | Callable[[EvalResult], bool] = False, *,
                 epochs: int | None = None, resume: TrainState | None = None,
                 keep_state: bool = False) -> EvalResult:
        """Train ``genome`` of ``schema`` and score it on the validation and test parts.

        ``seed`` (default ``config.seed``) fixes weight init, dropout and batch order without
        touching the global RNG state. ``keep_weights`` (True, or a predicate on the
        result) returns the kept (best-validation) weights as CPU tensors in
        ``result.state_dict``. Raises ValueError only when the data
        does not fit the schema at all (input shape, task, outputs), which no genome can fix,
        or for a bad ``epochs`` / ``resume``.

        Multi-fidelity: ``epochs`` stops training once the network has that many epochs in
        all (at most ``config.epochs``, which stays the full budget and sets the schedule's
        length); with ``keep_state`` a result paused there (``stop_reason == "paused"``), or
        stopped early, carries ``result.train_state``, and ``resume=`` that state continues it
        (a state that had stopped early trains no more: it is only scored again). Paused and
        continued gives exactly the network, metrics and history of never pausing (same
        device, same seed). ``epochs``, ``history`` and ``train_seconds`` count every epoch
        the network has had, before the pause too.
        """
        check_compatible(self.data, schema)  # a few tuple comparisons
        if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int)
                                   or epochs < 1):
            raise ValueError(f"epochs must be a positive int or None, got {epochs!r}")
        if resume is not None and not isinstance(resume, TrainState):
            raise TypeError(f"resume must be a TrainState, got {type(resume).__name__}")
        seed = self.config.seed if seed is None else int(seed)
        progress = _Progress()
        start = time.perf_counter()
        try:
            with self._seeded(seed):
                return self._train(schema, genome, seed, keep_weights, progress, start,
                                   epochs, resume, keep_state)
        except Exception as exc:  # noqa: BLE001 - every candidate failure becomes a result
            reason = f"{type(exc).__name__}: {exc}"
            if len(reason) > _MAX_REASON:
                reason = reason[:_MAX_REASON] + "..."
            failure, origin = classify_failure(exc, self.shared_device), error_origin(exc)
            self.broken = self.broken or _is_sticky_cuda_error(exc)
            error = _detach(exc)  # keep the exception, not the frames it holds
        # Out of the except block: the traceback and the frames holding the model and
        # optimizer are released, so the memory can really be freed now.
        self._cleanup()
        return EvalResult.failed(
            reason, failure, origin=origin, error=error, task=self.data.task,
            epochs=progress.epochs, params=progress.params, history=progress.history,
            total_seconds=time.perf_counter() - start,
        )

    # -- internals ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _seeded(self, seed: int) -> Iterator[None]:
        """Seed the CPU (and this CUDA device's) default generator, restoring them after."""
        cuda = self.device.type == "cuda"
        index = (self.device.index if self.device.index is not None
                 else torch.cuda.current_device()) if cuda else None
        with torch.random.fork_rng(devices=[index] if cuda else [], device_type="cuda"):
            torch.random.default_generator.manual_seed(seed)
            if cuda:
                with torch.cuda.device(index):
                    torch.cuda.manual_seed(seed)
            yield

    def _cleanup(self) -> None:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _autocast(self) -> contextlib.AbstractContextManager:
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16,
                              enabled=self.bf16)

    def _loss(self, out: torch.Tensor, y: torch.Tensor, reduction: str = "mean",
              label_smoothing: float = 0.0) -> torch.Tensor:
        if self.data.task == "classification":
            return F.cross_entropy(out.float(), y, reduction=reduction,
                                   label_smoothing=label_smoothing)
        return F.mse_loss(out.float(), y, reduction=reduction)

    def _train(self, schema: Any, genome: Any, seed: int, keep_weights: Any,
               progress: _Progress, start: float, epochs: int | None,
               resume: TrainState | None, keep_state: bool) -> EvalResult:
        config = self.config.with_overrides(dict(schema.training_overrides(genome)))
        target = config.epochs if epochs is None else min(epochs, config.epochs)
        model = schema.build_model(genome)
        progress.params = sum(p.numel() for p in model.parameters())
        if self.device.type == "cpu":
            swap_cpu_dropout(model)  # same maths, ~3x faster masks (see fast_ops)
        if self.channels_last:
            model = model.to(self.device, memory_format=torch.channels_last)
        else:
            model = model.to(self.device)
        optimizer = schema.make_optimizer(genome, model.parameters(), device=self.device)

        x, y = self.data.x_train, self.data.y_train
        n = int(x.shape[0])
        batch = min(config.batch_size, n)
        # A last batch of one example breaks BatchNorm in training mode: drop that one example
        # (a different random one each epoch).
        n_used = n - 1 if n % batch == 1 and n > 1 else n
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        scheduler = make_schedule(optimizer, config.schedule,
                                  config.epochs * math.ceil(n_used / batch))
        augment = (config.augment_shift > 0 or config.augment_flip) and x.dim() == 4
        smoothing = config.label_smoothing if self.data.task == "classification" else 0.0

        history: dict[str, list[float]] = progress.history
        metric_name = "val_accuracy" if self.data.task == "classification" else "val_mae"
        for key in ("train_loss", "val_loss", metric_name):
            history[key] = []
        best_loss, best_metric, best_epoch, waited = math.inf, math.nan, 0, 0
        best_state: dict[str, torch.Tensor] | None = None
        spent = 0.0
        if resume is not None:
            resume.restore(model, optimizer, scheduler, generator, self.device)
            for key, values in resume.history.items():
                history[key] = list(values)
            progress.epochs, spent = resume.epoch, resume.seconds
            best_loss, best_metric = resume.best_loss, resume.best_metric
            best_epoch, waited = resume.best_epoch, resume.waited
            if resume.best_model is not None:
                best_state = {k: v.to(self.device) for k, v in resume.best_model.items()}
            elif config.restore_best and best_epoch == resume.epoch:  # the last was the best
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        last_loss = history["val_loss"][-1] if history["val_loss"] else math.nan
        last_metric = history[metric_name][-1] if history[metric_name] else math.nan
        deadline = None if config.max_seconds is None else start + config.max_seconds - spent
        stop_reason = "max_epochs" if target == config.epochs else "paused"
        if resume is not None and resume.stop_reason != "paused":  # it had finished already
            stop_reason, target = resume.stop_reason, progress.epochs
        out_shape = (self.data.n_outputs,)
        train_start = time.perf_counter()
        for epoch in range(progress.epochs + 1, target + 1):
            model.train()
            perm = torch.randperm(n, generator=generator, device=self.device)
            total = torch.zeros((), device=self.device)
            seen = 0
            out_of_time = False
            for lo in range(0, n_used, batch):
                idx = perm[lo:min(lo + batch, n_used)]
                xb = x[idx]
                if augment:
                    xb = augment_batch(xb, config.augment_shift, config.augment_flip, generator)
                with self._autocast():
                    out = model(xb)
                if out_shape is not None:  # checked on the first batch only (no sync)
                    if tuple(out.shape[1:]) != out_shape:
                        raise InvalidGenomeError(
                            f"model outputs shape {tuple(out.shape)} for a batch of "
                            f"{idx.numel()}, the data needs (batch, {out_shape[0]})")
                    out_shape = None
                loss = self._loss(out, y[idx], label_smoothing=smoothing)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                total += loss.detach() * idx.numel()
                seen += idx.numel()
                if deadline is not None and time.perf_counter() > deadline:
                    out_of_time = True
                    break
            train_loss = float(total) / seen  # the epoch's one host sync
            progress.epochs = epoch
            history["train_loss"].append(train_loss)
            if not math.isfinite(train_loss):
                raise NonFiniteLossError(f"training loss is {train_loss} in epoch {epoch}")
            last_loss, last_metric = self._score(model, "val")
            history["val_loss"].append(last_loss)
            history[metric_name].append(last_metric)
            if not math.isfinite(last_loss):
                raise NonFiniteLossError(f"validation loss is {last_loss} after epoch {epoch}")
            if last_loss < best_loss:
                best_loss, best_metric, best_epoch, waited = last_loss, last_metric, epoch, 0
                best_state = None  # free the previous copy first
                if config.restore_best and epoch < config.epochs:
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            else:
                waited += 1
            if out_of_time:
                stop_reason = "max_seconds"
                break
            if config.patience is not None and waited >= config.patience:
                stop_reason = "early_stopping"
                break
        train_seconds = spent + time.perf_counter() - train_start
        state = None
        if keep_state and stop_reason != "max_epochs":  # the last epoch's weights, before
            state = TrainState.capture(                # the best are restored below
                model, optimizer, scheduler, generator, self.device, history,
                stop_reason=stop_reason, epoch=progress.epochs, best_model=best_state,
                best_loss=best_loss, best_metric=best_metric, best_epoch=best_epoch,
                waited=waited, seconds=train_seconds)

        if not config.restore_best:  # keep (and report) the last epoch, as DEvol did
            best_loss, best_metric, best_epoch = last_loss, last_metric, progress.epochs
        elif best_state is not None and best_epoch != progress.epochs:
            model.load_state_dict(best_state)
        del best_state, optimizer, scheduler
        test_loss, test_metric = self._score(model, "test")
        classification = self.data.task == "classification"
        result = EvalResult(
            status="ok", task=self.data.task,
            val_loss=best_loss, test_loss=test_loss,
            val_accuracy=best_metric if classification else math.nan,
            test_accuracy=test_metric if classification else math.nan,
            val_mae=math.nan if classification else best_metric,
            test_mae=math.nan if classification else test_metric,
            epochs=progress.epochs, best_epoch=best_epoch, stop_reason=stop_reason,
            train_seconds=train_seconds, total_seconds=time.perf_counter() - start,
            params=progress.params, history=history, train_state=state,
        )
        if keep_weights is True or (callable(keep_weights) and keep_weights(result)):
            weights = {k: v.detach().to("cpu", copy=True).contiguous()
                       for k, v in model.state_dict().items()}
            result = attrs.evolve(result, state_dict=weights)
        return result

    def _score(self, model: nn.Module, part: str) -> tuple[float, float]:
        """(mean loss, accuracy or MAE) on ``part``, in large batches, one host sync."""
        x, y = self.data.part(part)
        n = int(x.shape[0])
        step = self.config.resolved_eval_batch_size(self.device)
        loss_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        metric_sum = torch.zeros((), device=self.device, dtype=torch.float64)
        model.eval()
        with torch.inference_mode(), self._autocast():
            for lo in range(0, n, step):
                out = model(x[lo:lo + step]).float()
                yb = y[lo:lo + step]
                loss_sum += self._loss(out, yb, reduction="sum")
                if self.data.task == "classification":
                    metric_sum += (out.argmax(dim=1) == yb).sum()
                else:
                    metric_sum += (out - yb).abs().sum()
        denom = n if self.data.task == "classification" else n * self.data.n_outputs
        loss_total, metric_total = torch.stack([loss_sum, metric_sum]).tolist()
        return loss_total / denom, metric_total / n if self.data.task == "classification" \
            else metric_total / denom


def train_and_evaluate(schema: Any, genome: Any, data: Any, config: TrainConfig | None = None,
                       seed: int | None = None, keep_weights: bool = False) -> EvalResult:
    """Train and score one genome (convenience: builds a `Trainer` for this call only)."""
    return Trainer(data, config).evaluate(schema, genome, seed=seed, keep_weights=keep_weights)
