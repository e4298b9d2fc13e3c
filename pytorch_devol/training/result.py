"""`EvalResult`: what training and scoring one candidate produced (or why it failed).

JSON-friendly through ``to_dict`` / ``from_dict`` (NaN <-> null); the trained weights ride along
in ``state_dict`` but are never serialised with the metrics.
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import torch

__all__ = ["EvalResult", "FAILURE_KINDS", "METRICS", "RETRIED_FAILURES", "STATUSES"]

METRICS = ("accuracy", "loss", "mae")
"""The metrics a candidate can be selected on (``TrainConfig.metric``)."""
# "infeasible": never trained, because its untrained network broke a constraint on its size
# or speed (a multi-objective search checks those before the first epoch).
STATUSES = ("ok", "failed", "infeasible")
FAILURE_KINDS = ("candidate", "unexpected", "infrastructure", "timeout")
"""Why a candidate failed: ``candidate`` (its own fault: ``InvalidGenomeError``, NaN/inf loss,
out of memory alone on its device; final and cached), ``unexpected`` (any other exception from
its code; final and cached, watched by the search's circuit breaker, since the same error again
and again is usually a bug), ``infrastructure`` (a worker lost, a broken CUDA context, out of
memory on a shared device) and ``timeout`` (never cached: trained again by a later copy or a
resume)."""
RETRIED_FAILURES = ("infrastructure", "timeout")
"""The failure kinds that are the machine's fault: never cached, so the genome trains again."""
_NAN = float("nan")
_IN_MEMORY = ("state_dict", "error", "train_state")  # never serialised with the metrics
_FLOAT_FIELDS = ("val_loss", "val_accuracy", "val_mae", "test_loss", "test_accuracy", "test_mae",
                 "train_seconds", "total_seconds")


def _nan_to_none(value: Any) -> Any:
    """NaN and +-inf become None (JSON has neither; ok results never hold them)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _to_float(value: Any) -> float:
    return _NAN if value is None else float(value)


def _float_field() -> Any:
    # Compare through _nan_to_none so that NaN == NaN (round trips and failed results compare).
    return attrs.field(default=_NAN, converter=float, eq=_nan_to_none)


@attrs.frozen
class EvalResult:
    """Metrics of one trained candidate.

    ``status`` is "ok", "infeasible" (never trained: ``reason`` names the constraint its
    untrained network broke, the metrics are NaN, ``epochs`` 0) or "failed" (then ``reason``
    says "<ExceptionType>: message", every
    metric is NaN, ``failure`` is one of `FAILURE_KINDS` and ``origin`` names the innermost
    line of the user's code that raised, where known). Loss is cross-entropy (classification)
    or MSE (regression), on the validation part (used for fitness) and the test part (reported
    only). ``val_accuracy`` / ``test_accuracy`` are NaN for regression, ``val_mae`` /
    ``test_mae`` NaN for classification.
    ``epochs`` counts epochs run, ``best_epoch`` the one whose weights were kept (1-based).
    ``history`` holds per-epoch "train_loss", "val_loss" and "val_accuracy" or "val_mae".
    """

    status: str = attrs.field(validator=attrs.validators.in_(STATUSES))
    reason: str | None = None
    failure: str | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.in_(FAILURE_KINDS)))
    origin: str | None = None
    task: str = "classification"
    val_loss: float = _float_field()
    val_accuracy: float = _float_field()
    val_mae: float = _float_field()
    test_loss: float = _float_field()
    test_accuracy: float = _float_field()
    test_mae: float = _float_field()
    epochs: int = 0
    best_epoch: int = 0
    stop_reason: str | None = None
    train_seconds: float = _float_field()
    total_seconds: float = _float_field()
    params: int = 0
    history: dict[str, list[float]] = attrs.field(factory=dict, eq=False)
    state_dict: dict[str, torch.Tensor] | None = attrs.field(default=None, eq=False, repr=False)
    # The exception itself, in memory only (never logged): the circuit breaker re-raises it.
    error: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    # A paused candidate's `TrainState` (multi-fidelity), in memory only: the search saves it.
    train_state: Any = attrs.field(default=None, eq=False, repr=False)

    @property
    def ok(self) -> bool:
        """True when the candidate trained and was scored."""
        return self.status == "ok"

    @property
    def retriable(self) -> bool:
        """A failure that was the machine's fault (not cached; the genome is tried again)."""
        return self.failure in RETRIED_FAILURES

    @classmethod
    def failed(cls, reason: str, failure: str = "candidate", **fields: Any) -> EvalResult:
        """A failed result: NaN metrics, the reason and its kind, and whatever else is known."""
        return cls(status="failed", reason=reason, failure=failure, **fields)

    @classmethod
    def infeasible(cls, reason: str, **fields: Any) -> EvalResult:
        """A candidate skipped before training: NaN metrics and the constraint it broke."""
        return cls(status="infeasible", reason=reason, **fields)

    def fitness(self, metric: str = "accuracy") -> float:
        """Validation score used by the search: "accuracy" (higher is better), "loss" or "mae"
        (lower is better). NaN for a failed candidate (strategies rank NaN worst)."""
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if metric == "accuracy" and self.task == "regression":
            raise ValueError("metric 'accuracy' is undefined for regression; use 'loss' or 'mae'")
        if metric == "mae" and self.task == "classification":
            raise ValueError("metric 'mae' is for regression; use 'accuracy' or 'loss'")
        if not self.ok:
            return _NAN
        return float({"accuracy": self.val_accuracy, "loss": self.val_loss,
                      "mae": self.val_mae}[metric])

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly dict of everything but the weights, the error and the training
        state; NaN -> None."""
        out = attrs.asdict(self, filter=lambda a, v: a.name not in _IN_MEMORY,
                           recurse=False)
        for key in _FLOAT_FIELDS:
            out[key] = _nan_to_none(out[key])
        out["history"] = {k: [_nan_to_none(float(v)) for v in vals]
                          for k, vals in self.history.items()}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        """Inverse of ``to_dict`` (unknown keys are ignored, so newer logs still load)."""
        known = {a.name for a in attrs.fields(cls)} - set(_IN_MEMORY)
        kwargs = {k: v for k, v in data.items() if k in known}
        if kwargs.get("status") == "failed" and kwargs.get("failure") is None:
            kwargs["failure"] = "candidate"  # logs written before failure kinds existed
        for key in _FLOAT_FIELDS:
            if key in kwargs:
                kwargs[key] = _to_float(kwargs[key])
        if "history" in kwargs:
            kwargs["history"] = {k: [_to_float(v) for v in vals]
                                 for k, vals in (kwargs["history"] or {}).items()}
        for key in ("epochs", "best_epoch", "params"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        return cls(**kwargs)
