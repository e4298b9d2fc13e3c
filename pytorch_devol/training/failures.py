"""Why a candidate failed: the failure kind (its own fault, the machine's, or unexpected) and
where in the user's code it came from, so that a bug is shown to the user, not buried in a log.
"""

from __future__ import annotations

import os
import traceback

import attrs
import torch

from pytorch_devol.schema.errors import InvalidGenomeError

__all__ = ["NonFiniteLossError", "Failure", "classify_failure", "describe_failure", "error_origin"]

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


@attrs.frozen
class Failure:
    """A candidate's failure, as its result records it."""

    reason: str  # "ExceptionType: message", cut to a bounded length
    kind: str  # see ``classify_failure``
    origin: str | None  # see ``error_origin``
    error: BaseException  # without its tracebacks (they would hold the model alive)
    sticky: bool  # a CUDA error that leaves this process's context unusable


def describe_failure(exc: BaseException, shared_device: bool = False) -> Failure:
    """What a result records of ``exc``, raised by a candidate (see `Failure`)."""
    reason = f"{type(exc).__name__}: {exc}"
    if len(reason) > _MAX_REASON:
        reason = reason[:_MAX_REASON] + "..."
    return Failure(reason, classify_failure(exc, shared_device), error_origin(exc),
                   _detach(exc), _is_sticky_cuda_error(exc))
