"""Heredity: which of a trained network's tensors a new genome can start from.

A child usually differs from its donor in a gene or two, so most of its layers are the donor's
layers. Matching is slot by slot, never by module name: a slot of the child takes the donor's
states (weights and BatchNorm statistics) when the donor has the same slot with the same gene
values built for the same input shape. An ``nn.Sequential``'s module indices shift when a slot
switches on or off, so a name match would put tensors on the wrong layer; a slot match cannot.
A gene type written by a user inherits with no code of its own.

Three slot rules (``HEREDITY_RULES``) say how alike two slots must be:

* ``"genes"``: the same gene values built for the same input shape (the slot is the same
  layer, only its training differs);
* ``"shapes"``: the same tensor shapes, whatever the gene values (an activation or dropout
  change keeps the weights);
* ``"slices"``: the same tensors by position and rank; where a width differs the overlapping
  leading block is copied (a conv of 32 filters gives its first 16 to one of 16) and the rest
  keeps its fresh initialisation.

`layout` builds the network on the meta device (no memory, no initialisation), so planning
costs microseconds per slot; `plan_inheritance` pairs two layouts; `inherited_state` takes the
planned tensors from the donor's state dict.
"""

from __future__ import annotations

from typing import Any

import attrs
import torch

__all__ = ["HEREDITY_RULES", "InheritancePlan", "SlotTensors", "inherited_state", "layout",
           "plan_inheritance"]

#: The slot rules, the most exact first (see the module docstring).
HEREDITY_RULES = ("genes", "shapes", "slices")


@attrs.frozen
class SlotTensors:
    """One slot of a built network: what must be equal to inherit it (its gene values and
    input shape), and its state-dict entries as (name, shape, is a parameter)."""

    slot: str
    values: tuple[int, ...]
    input_shape: tuple[int, ...]
    tensors: tuple[tuple[str, tuple[int, ...], bool], ...]

    def blocks(self, other: SlotTensors, rule: str) -> list[tuple[int, ...]] | None:
        """Per tensor, the leading block this slot takes from ``other`` (``other`` is the
        donor's) under ``rule``; None when the rule matches nothing."""
        if self.slot != other.slot or len(self.tensors) != len(other.tensors) or \
                [p for *_, p in self.tensors] != [p for *_, p in other.tensors]:
            return None
        mine = [shape for _, shape, _ in self.tensors]
        theirs = [shape for _, shape, _ in other.tensors]
        if rule == "genes" and (self.values, self.input_shape) != \
                (other.values, other.input_shape):
            return None
        if rule in ("genes", "shapes"):
            return mine if mine == theirs else None
        if any(len(a) != len(b) for a, b in zip(mine, theirs)):
            return None
        return [tuple(min(x, y) for x, y in zip(a, b)) for a, b in zip(mine, theirs)]


@attrs.frozen
class InheritancePlan:
    """What a child takes from a donor: child state-dict name -> (donor name, the donor
    tensor's shape, the leading block copied: the child's whole shape unless the rule is
    ``"slices"``), and how many parameters (not buffers) that is."""

    names: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]]
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
                     donor: tuple[SlotTensors, ...] | None,
                     rule: str = "genes") -> InheritancePlan:
    """The tensors ``child`` (a `layout`) can take from ``donor`` under the slot ``rule``
    (one of ``HEREDITY_RULES``)."""
    if rule not in HEREDITY_RULES:
        raise ValueError(f"heredity rule must be one of {HEREDITY_RULES}, got {rule!r}")
    names: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {}
    params = 0
    donor_slots = {s.slot: s for s in donor or ()}
    for slot in child or ():
        theirs = donor_slots.get(slot.slot)
        blocks = None if theirs is None else slot.blocks(theirs, rule)
        if blocks is None or theirs is None:
            continue
        for (name, _, is_param), (their_name, their_shape, _), block in zip(
                slot.tensors, theirs.tensors, blocks, strict=True):
            names[name] = (their_name, their_shape, block)
            params += int(torch.Size(block).numel()) if is_param else 0
    return InheritancePlan(names, params)


def inherited_state(plan: InheritancePlan,
                    donor_state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The child's partial state dict: the planned blocks of the donor's tensors under the
    child's names (a block smaller than the child's tensor fills its leading corner, see
    ``training.state.overlay``). Raises ValueError when the donor's weights lack a planned
    tensor or differ in shape (the weights do not belong to the donor's genome)."""
    out = {}
    for name, (their_name, shape, block) in plan.names.items():
        tensor = donor_state.get(their_name)
        if not isinstance(tensor, torch.Tensor):
            raise ValueError(f"the donor's weights lack {their_name!r}")
        if tuple(tensor.shape) != shape:
            raise ValueError(f"the donor's {their_name!r} has shape {tuple(tensor.shape)}, "
                             f"its genome builds {shape}")
        out[name] = tensor if block == shape else \
            tensor[tuple(slice(0, n) for n in block)].clone()
    return out
