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
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import torch
import torch.nn.functional as F
from torch import nn

from pytorch_devol.schema.errors import InvalidGenomeError
from pytorch_devol.training.augment import augment_batch
from pytorch_devol.training.config import TrainConfig
from pytorch_devol.training.failures import NonFiniteLossError, describe_failure
from pytorch_devol.training.fast_ops import swap_cpu_dropout
from pytorch_devol.training.result import EvalResult
from pytorch_devol.training.schedules import make_schedule
from pytorch_devol.training.splits import DataSplits
from pytorch_devol.training.state import BestSoFar, TrainState, copy_state, overlay
from pytorch_devol.training.validate import as_splits, check_compatible

__all__ = ["Trainer", "train_and_evaluate"]


@attrs.define
class _Progress:
    """What is known about a candidate so far, kept outside the frames a failure unwinds."""

    params: int = 0
    epochs: int = 0
    history: dict[str, list[float]] = attrs.Factory(dict)


@attrs.define
class _Fit:
    """One candidate's training run: its settings, network, optimizer and random stream."""

    config: TrainConfig
    model: nn.Module
    optimizer: Any
    scheduler: Any
    generator: torch.Generator
    batch: int
    n_used: int  # examples per epoch (one dropped where it would be a batch of its own)
    augment: bool
    smoothing: float
    metric_name: str


def _last(values: list[float]) -> float:
    return values[-1] if values else math.nan


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
                 keep_state: bool = False,
                 initial: dict[str, torch.Tensor] | None = None) -> EvalResult:
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

        Heredity: ``initial`` is a partial state dict (a donor's tensors, see
        ``schema.heredity``) copied over the fresh network before training (a smaller tensor
        fills the leading block, see ``state.overlay``); the optimizer starts fresh. Ignored
        with ``resume``.
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
                                   epochs, resume, keep_state, initial)
        except Exception as exc:  # noqa: BLE001 - every candidate failure becomes a result
            failure = describe_failure(exc, self.shared_device)
            self.broken = self.broken or failure.sticky
        # Out of the except block: the traceback and the frames holding the model and
        # optimizer are released, so the memory can really be freed now.
        self._cleanup()
        return EvalResult.failed(
            failure.reason, failure.kind, origin=failure.origin, error=failure.error,
            task=self.data.task,
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
               resume: TrainState | None, keep_state: bool,
               initial: dict[str, torch.Tensor] | None) -> EvalResult:
        fit = self._prepare(schema, genome, seed, progress, None if resume else initial)
        config = fit.config
        best, spent = self._restore(fit, resume, progress)
        target = config.epochs if epochs is None else min(epochs, config.epochs)
        stop_reason = "max_epochs" if target == config.epochs else "paused"
        if resume is not None and resume.stop_reason != "paused":  # it had finished already
            stop_reason, target = resume.stop_reason, progress.epochs
        deadline = None if config.max_seconds is None else start + config.max_seconds - spent
        train_start, first = time.perf_counter(), progress.epochs + 1
        for epoch in range(first, target + 1):
            train_loss, out_of_time = self._train_epoch(fit, deadline, check_shape=epoch == first)
            progress.epochs = epoch
            self._validate(fit, epoch, train_loss, best, progress.history)
            if out_of_time:
                stop_reason = "max_seconds"
                break
            if config.patience is not None and best.waited >= config.patience:
                stop_reason = "early_stopping"
                break
        train_seconds = spent + time.perf_counter() - train_start
        state = None
        if keep_state and stop_reason != "max_epochs":  # the last epoch's weights, before
            state = TrainState.capture(                # the best are restored in _result
                fit.model, fit.optimizer, fit.scheduler, fit.generator, self.device,
                progress.history, stop_reason=stop_reason, epoch=progress.epochs,
                best_model=best.state, best_loss=best.loss, best_metric=best.metric,
                best_epoch=best.epoch, waited=best.waited, seconds=train_seconds)
        return self._result(fit, best, progress, stop_reason, train_seconds,
                            time.perf_counter() - start, state, keep_weights)

    def _prepare(self, schema: Any, genome: Any, seed: int, progress: _Progress,
                 initial: dict[str, torch.Tensor] | None) -> _Fit:
        """The candidate's network (from ``initial`` where given), optimizer, schedule and
        random stream (its training genes override the config), and its empty history."""
        config = self.config.with_overrides(dict(schema.training_overrides(genome)))
        model = schema.build_model(genome)  # initialised first: the same random stream after
        if initial:
            overlay(model, initial)
        progress.params = sum(p.numel() for p in model.parameters())
        if self.device.type == "cpu":
            swap_cpu_dropout(model)  # same maths, ~3x faster masks (see fast_ops)
        if self.channels_last:
            model = model.to(self.device, memory_format=torch.channels_last)
        else:
            model = model.to(self.device)
        optimizer = schema.make_optimizer(genome, model.parameters(), device=self.device)
        x = self.data.x_train
        n = int(x.shape[0])
        batch = min(config.batch_size, n)
        # A last batch of one example breaks BatchNorm in training mode: drop that one example
        # (a different random one each epoch).
        n_used = n - 1 if n % batch == 1 and n > 1 else n
        generator = torch.Generator(device=self.device)
        generator.manual_seed(seed)
        scheduler = make_schedule(optimizer, config.schedule,
                                  config.epochs * math.ceil(n_used / batch))
        classification = self.data.task == "classification"
        metric_name = "val_accuracy" if classification else "val_mae"
        for key in ("train_loss", "val_loss", metric_name):
            progress.history[key] = []
        return _Fit(config, model, optimizer, scheduler, generator, batch, n_used,
                    augment=(config.augment_shift > 0 or config.augment_flip) and x.dim() == 4,
                    smoothing=config.label_smoothing if classification else 0.0,
                    metric_name=metric_name)

    def _restore(self, fit: _Fit, resume: TrainState | None,
                 progress: _Progress) -> tuple[BestSoFar, float]:
        """Put a paused run (``resume``) back: weights, optimizer, schedule, random stream and
        history; returns its best-so-far and the seconds it had trained (a fresh start: none)."""
        if resume is None:
            return BestSoFar(), 0.0
        resume.restore(fit.model, fit.optimizer, fit.scheduler, fit.generator, self.device)
        for key, values in resume.history.items():
            progress.history[key] = list(values)
        progress.epochs = resume.epoch
        best = BestSoFar(resume.best_loss, resume.best_metric, resume.best_epoch, resume.waited)
        if resume.best_model is not None:
            best.state = {k: v.to(self.device) for k, v in resume.best_model.items()}
        elif fit.config.restore_best and best.epoch == resume.epoch:  # the last was the best
            best.state = copy_state(fit.model)
        return best, resume.seconds

    def _train_epoch(self, fit: _Fit, deadline: float | None,
                     check_shape: bool) -> tuple[float, bool]:
        """One pass over the training data in random batches: (mean training loss, whether the
        time limit cut it short). The loss is read once, at the end (the epoch's host sync)."""
        x, y = self.data.x_train, self.data.y_train
        fit.model.train()
        perm = torch.randperm(int(x.shape[0]), generator=fit.generator, device=self.device)
        total = torch.zeros((), device=self.device)
        seen = 0
        for lo in range(0, fit.n_used, fit.batch):
            idx = perm[lo:min(lo + fit.batch, fit.n_used)]
            xb = x[idx]
            if fit.augment:
                xb = augment_batch(xb, fit.config.augment_shift, fit.config.augment_flip,
                                   fit.generator)
            with self._autocast():
                out = fit.model(xb)
            if check_shape and tuple(out.shape[1:]) != (self.data.n_outputs,):
                raise InvalidGenomeError(
                    f"model outputs shape {tuple(out.shape)} for a batch of "
                    f"{idx.numel()}, the data needs (batch, {self.data.n_outputs})")
            check_shape = False  # the first batch only (no sync)
            loss = self._loss(out, y[idx], label_smoothing=fit.smoothing)
            fit.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            fit.optimizer.step()
            if fit.scheduler is not None:
                fit.scheduler.step()
            total += loss.detach() * idx.numel()
            seen += idx.numel()
            if deadline is not None and time.perf_counter() > deadline:
                return float(total) / seen, True
        return float(total) / seen, False

    def _validate(self, fit: _Fit, epoch: int, train_loss: float, best: BestSoFar,
                  history: dict[str, list[float]]) -> None:
        """Log the epoch, score it on the validation split and update the best-so-far; a NaN
        or infinite loss ends the candidate."""
        history["train_loss"].append(train_loss)
        if not math.isfinite(train_loss):
            raise NonFiniteLossError(f"training loss is {train_loss} in epoch {epoch}")
        loss, metric = self._score(fit.model, "val")
        history["val_loss"].append(loss)
        history[fit.metric_name].append(metric)
        if not math.isfinite(loss):
            raise NonFiniteLossError(f"validation loss is {loss} after epoch {epoch}")
        # the final epoch needs no copy: its weights are the model's at the end
        best.update(epoch, loss, metric, fit.model,
                    keep_copy=fit.config.restore_best and epoch < fit.config.epochs)

    def _result(self, fit: _Fit, best: BestSoFar, progress: _Progress, stop_reason: str,
                train_seconds: float, seconds: float, state: TrainState | None,
                keep_weights: Any) -> EvalResult:
        """Score the best epoch's weights (the last epoch's, without ``restore_best``) on the
        test split, and keep the weights if asked."""
        history, model = progress.history, fit.model
        if fit.config.restore_best:
            loss, metric, best_epoch = best.loss, best.metric, best.epoch
            if best.state is not None and best.epoch != progress.epochs:
                model.load_state_dict(best.state)
        else:  # keep (and report) the last epoch, as DEvol did
            loss, metric = _last(history["val_loss"]), _last(history[fit.metric_name])
            best_epoch = progress.epochs
        best.state = fit.optimizer = fit.scheduler = None  # freed before scoring
        test_loss, test_metric = self._score(model, "test")
        classification = self.data.task == "classification"
        result = EvalResult(
            status="ok", task=self.data.task, val_loss=loss, test_loss=test_loss,
            val_accuracy=metric if classification else math.nan,
            test_accuracy=test_metric if classification else math.nan,
            val_mae=math.nan if classification else metric,
            test_mae=math.nan if classification else test_metric,
            epochs=progress.epochs, best_epoch=best_epoch, stop_reason=stop_reason,
            train_seconds=train_seconds, total_seconds=seconds,
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
