"""Heredity: which of a trained network's tensors a new genome can start from.

A child usually differs from its donor in a gene or two, so most of its layers are the donor's
layers. Matching is slot by slot, never by module name: a slot of the child takes the donor's
states (weights and BatchNorm statistics) when the donor has the same slot with the same gene
values built for the same input shape. An ``nn.Sequential``'s module indices shift when a slot
switches on or off, so a name match would put tensors on the wrong layer; a slot match cannot.
A gene type written by a user inherits with no code of its own.

`layout` builds the network on the meta device (no memory, no initialisation), so planning
costs microseconds per slot; `plan_inheritance` pairs two layouts; `inherited_state` takes the
planned tensors from the donor's state dict.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

__all__ = ["InheritancePlan", "SlotTensors", "inherited_state", "layout", "plan_inheritance"]


@attrs.frozen
class SlotTensors:
    """One slot of a built network: what must be equal to inherit it (its gene values and
    input shape), and its state-dict entries as (name, shape, is a parameter)."""

    slot: str
    values: tuple[int, ...]
    input_shape: tuple[int, ...]
    tensors: tuple[tuple[str, tuple[int, ...], bool], ...]

    def matches(self, other: SlotTensors) -> bool:
        return (self.slot, self.values, self.input_shape) == \
            (other.slot, other.values, other.input_shape) and \
            [(s, p) for _, s, p in self.tensors] == [(s, p) for _, s, p in other.tensors]


@attrs.frozen
class InheritancePlan:
    """What a child takes from a donor: child state-dict name -> (donor name, shape), and how
    many parameters (not buffers) that is."""

    names: dict[str, tuple[str, tuple[int, ...]]]
    params: int

    def __bool__(self) -> bool:
        return bool(self.names)


def layout(schema: Any, vector: Any) -> tuple[SlotTensors, ...] | None:
    """``vector``'s network slot by slot, with its state-dict names and shapes; None when it
    cannot be built (the candidate will fail on its own)."""
    try:
        with torch.device("meta"):
            parts = schema.build_parts(vector)
    except Exception:  # noqa: BLE001 - a gene that cannot build on meta: build it for real
        try:
            parts = schema.build_parts(vector)
        except Exception:  # noqa: BLE001 - an invalid genome inherits nothing
            return None
    out, offset = [], 0
    for part in parts:
        tensors = []
        for i, module in enumerate(part.modules):
            params = {name for name, _ in module.named_parameters()}
            tensors.extend((f"{offset + i}.{name}", tuple(value.shape), name in params)
                           for name, value in module.state_dict().items())
        out.append(SlotTensors(part.slot, part.values, part.input_shape, tuple(tensors)))
        offset += len(part.modules)
    return tuple(out)


def plan_inheritance(child: tuple[SlotTensors, ...] | None,
                     donor: tuple[SlotTensors, ...] | None) -> InheritancePlan:
    """The tensors ``child`` (a `layout`) can take from ``donor``: every slot both have with
    equal gene values, input shape and tensor shapes."""
    names: dict[str, tuple[str, tuple[int, ...]]] = {}
    params = 0
    donor_slots = {s.slot: s for s in donor or ()}
    for slot in child or ():
        theirs = donor_slots.get(slot.slot)
        if theirs is None or not slot.matches(theirs):
            continue
        for (name, shape, is_param), (their_name, _, _) in zip(slot.tensors, theirs.tensors,
                                                               strict=True):
            names[name] = (their_name, shape)
            if is_param:
                params += int(torch.Size(shape).numel())
    return InheritancePlan(names, params)


def inherited_state(plan: InheritancePlan,
                    donor_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The child's partial state dict: the planned donor tensors under the child's names.
    Raises ValueError when the donor's weights lack a planned tensor or differ in shape (the
    weights do not belong to the donor's genome)."""
    out = {}
    for name, (their_name, shape) in plan.names.items():
        tensor = donor_state.get(their_name)
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"the donor's weights lack {their_name!r}")
        if tuple(tensor.shape) != shape:
            raise ValueError(f"the donor's {their_name!r} has shape {tuple(tensor.shape)}, "
                             f"its genome builds {shape}")
        out[name] = tensor
    return out
