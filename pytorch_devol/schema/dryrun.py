"""`dry_run`: exercise every allele value of every gene type before anything trains.

A bug in a user's gene (a TypeError in ``build``, a misspelt optimizer argument) would
otherwise fail every candidate that uses the broken value, one training at a time. The dry run
builds each value at least once on the meta device (shapes only, no memory or compute: a
whole DEvol space takes well under a second) and raises `GeneError` naming the gene,
field and value. A gene that legitimately cannot take a shape raises `InvalidGenomeError`,
which is a candidate's fault, not a bug, and is accepted here.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from .errors import GeneError, InvalidGenomeError

__all__ = ["dry_run"]


def _base_genome(schema: Any, active: bool) -> np.ndarray:
    """Every allele at its first choice, optional slots all active or all inactive."""
    vector = np.zeros(len(schema), dtype=np.int64)
    for slot in schema.slots:
        if slot.optional:
            j = slot.fields.index("active")
            vector[slot.start + j] = next(
                k for k, v in enumerate(slot.choices[j]) if bool(v) == active)
    return vector


def _activate(schema: Any, vector: np.ndarray, slot: Any) -> np.ndarray:
    vector = vector.copy()
    if slot.optional:
        j = slot.fields.index("active")
        vector[slot.start + j] = next(k for k, v in enumerate(slot.choices[j]) if bool(v))
    return vector


def _where(err: BaseException) -> str:
    frames = traceback.extract_tb(err.__traceback__)
    return f" at {frames[-1].filename}:{frames[-1].lineno}" if frames else ""


def _bug(slot: Any, field: str, value: Any, err: BaseException) -> GeneError:
    return GeneError(
        f"gene {slot.gene_type.__name__}.{field}={value!r} (slot {slot.name}) raised "
        f"{type(err).__name__}: {err}{_where(err)}. This is a bug in the gene: a gene that "
        "cannot take its input shape should raise pytorch_devol.InvalidGenomeError")


def _try_layer(schema: Any, vector: np.ndarray, x: torch.Tensor) -> bool:
    """Build and run ``vector`` on ``x``; False when a gene refused its input shape."""
    try:
        with torch.device("meta"):
            model = schema.build_model(vector)
    except InvalidGenomeError:
        return False
    model.eval()
    try:
        with torch.no_grad():
            model(x)
    except RuntimeError:
        # torch's own shape errors (a kernel larger than its map) can be a candidate's
        # fault; a systematic one is caught by the search's circuit breaker instead.
        return False
    return True


def dry_run(schema: Any, check_overrides: Callable[[dict[str, Any]], Any] | None = None,
            batch: int = 2) -> None:
    """Build every allele value of every gene type of ``schema`` at least once.

    Layer genes: each value is tried in the first slot of its group that accepts it (alone,
    else with every other slot active; other alleles at their first choices), and the network
    runs forward on a meta batch of ``batch`` examples. Training genes: each value makes an
    optimizer and its ``overrides()``, which ``check_overrides`` (e.g.
    ``TrainConfig.with_overrides``) may check. Raises `GeneError` (chained to the original
    exception) for anything but `InvalidGenomeError` (and torch's RuntimeErrors in forward,
    see above).
    """
    alone, full = _base_genome(schema, active=False), _base_genome(schema, active=True)
    x = torch.empty((batch, *schema.input_shape), device="meta")
    done: set[tuple[type, str, int]] = set()
    for slot in (s for s in schema.slots if not s.training):
        for j, field in enumerate(slot.fields):
            for k, value in enumerate(slot.choices[j]):
                if (slot.gene_type, field, k) in done:
                    continue
                try:  # the slot alone first (cheap), then with every other slot active
                    for base in (_activate(schema, alone, slot), full):
                        vector = base.copy()
                        vector[slot.start + j] = k
                        if _try_layer(schema, vector, x):
                            done.add((slot.gene_type, field, k))
                            break
                except Exception as err:  # noqa: BLE001 - anything else is a bug in the gene
                    raise _bug(slot, field, value, err) from err
    try:
        with torch.device("meta"):
            params = list(schema.build_model(full).parameters())
    except InvalidGenomeError:
        params = [torch.nn.Parameter(torch.zeros(1))]
    for slot in (s for s in schema.slots if s.training):
        for j, field in enumerate(slot.fields):
            for k, value in enumerate(slot.choices[j]):
                vector = full.copy()
                vector[slot.start + j] = k
                try:
                    schema.make_optimizer(vector, params, device="cpu")  # never steps
                    overrides = schema.training_overrides(vector)
                except Exception as err:  # noqa: BLE001 - a bug in the training gene
                    raise _bug(slot, field, value, err) from err
                if check_overrides is not None:
                    check_overrides(overrides)
