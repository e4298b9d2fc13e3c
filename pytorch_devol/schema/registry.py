"""Name -> factory registries for activations and optimizers.

Genes name activations and optimizers by string; the strings are looked up here, never with
``getattr`` or ``eval``, and users add their own with ``register_activation`` /
``register_optimizer``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS",
    "OPTIMIZERS",
    "Registry",
    "make_activation",
    "make_optimizer",
    "register_activation",
    "register_optimizer",
]


class Registry:
    """A named table of factories with errors that list what is known."""

    def __init__(self, kind: str, entries: dict[str, Callable[..., Any]]):
        self.kind = kind
        self._entries = dict(entries)

    def register(self, name: str, factory: Callable[..., Any], *, replace: bool = False) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"{self.kind} name must be a non-empty string, got {name!r}")
        if not callable(factory):
            raise TypeError(f"{self.kind} {name!r}: factory must be callable")
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} {name!r} is already registered (pass replace=True)")
        self._entries[name] = factory

    def get(self, name: str) -> Callable[..., Any]:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise ValueError(
                f"unknown {self.kind} {name!r}; known: {', '.join(sorted(self._entries))}"
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def names(self) -> list[str]:
        return sorted(self._entries)


ACTIVATIONS = Registry(
    "activation",
    {
        "relu": nn.ReLU,
        "sigmoid": nn.Sigmoid,
        "tanh": nn.Tanh,
        "elu": nn.ELU,
        "selu": nn.SELU,
        "gelu": nn.GELU,
        "silu": nn.SiLU,
        "leaky_relu": nn.LeakyReLU,
        "softplus": nn.Softplus,
        "linear": nn.Identity,
    },
)
"""Activation factories by the name a gene's ``activation`` allele holds; add yours with
:func:`register_activation`."""


def _optimizer(cls: type[torch.optim.Optimizer], **defaults: Any) -> Callable[..., Any]:
    """A factory ``(params, device, **hparams) -> optimizer`` using the fastest variant the
    device has. ``hparams`` override the defaults (any keyword the optimizer takes, e.g.
    ``weight_decay``), and ``lr_scale`` multiplies the default learning rate, so one
    learning-rate gene suits every optimizer (Adadelta's lr 1.0 and Adam's 1e-3 alike)."""
    accepted = inspect.signature(cls).parameters

    def factory(params: Iterable[torch.Tensor], device: torch.device | str | None = None,
                **hparams: Any):
        kwargs = dict(defaults)
        scale = hparams.pop("lr_scale", None)
        unknown = sorted(set(hparams) - set(accepted) - {"params"})
        if unknown:
            raise ValueError(f"{cls.__name__} takes no hyperparameter {unknown}; it takes "
                             f"{sorted(set(accepted) - {'params'})} and lr_scale")
        kwargs.update(hparams)
        if scale is not None:
            kwargs["lr"] = float(kwargs.get("lr", accepted["lr"].default)) * float(scale)
        if device is not None and torch.device(device).type == "cuda":
            if "fused" in accepted:
                kwargs.setdefault("fused", True)
            elif "foreach" in accepted:
                kwargs.setdefault("foreach", True)
        return cls(params, **kwargs)

    factory.__doc__ = f"{cls.__name__}({', '.join(f'{k}={v}' for k, v in defaults.items())})"
    return factory


# Our defaults are PyTorch's, except RMSprop (PyTorch's lr 1e-2 diverges on many small CNNs; we
# use Keras's 1e-3). The "keras-*" entries pin the values DEvol really trained with.
OPTIMIZERS = Registry(
    "optimizer",
    {
        "adam": _optimizer(torch.optim.Adam, lr=1e-3),
        "adamw": _optimizer(torch.optim.AdamW, lr=1e-3),
        "rmsprop": _optimizer(torch.optim.RMSprop, lr=1e-3),
        "adagrad": _optimizer(torch.optim.Adagrad, lr=1e-2),
        "adadelta": _optimizer(torch.optim.Adadelta, lr=1.0),
        "sgd": _optimizer(torch.optim.SGD, lr=1e-2, momentum=0.9),
        "keras-adam": _optimizer(torch.optim.Adam, lr=1e-3, eps=1e-7),
        "keras-rmsprop": _optimizer(torch.optim.RMSprop, lr=1e-3, alpha=0.9, eps=1e-7),
        "keras-adagrad": _optimizer(torch.optim.Adagrad, lr=1e-3),
        "keras-adadelta": _optimizer(torch.optim.Adadelta, lr=1e-3, eps=1e-7),
    },
)
"""Optimizer factories by name (PyTorch's defaults, RMSprop at Keras's 1e-3; ``keras-*`` entries
pin DEvol's values); add yours with :func:`register_optimizer`."""


def make_activation(name: str) -> nn.Module:
    """A fresh activation module for a registered name."""
    return ACTIVATIONS.get(name)()


def make_optimizer(
    name: str, params: Iterable[torch.Tensor], device: torch.device | str | None = None,
    **hparams: Any,
) -> torch.optim.Optimizer:
    """An optimizer for a registered name, fused/foreach on CUDA where torch offers it.

    ``hparams`` (e.g. ``lr_scale=0.3, weight_decay=1e-4``) go to the factory; a factory
    registered without ``**hparams`` accepts none (ValueError if some are given)."""
    factory = OPTIMIZERS.get(name)
    if hparams and not any(p.kind is inspect.Parameter.VAR_KEYWORD
                           for p in inspect.signature(factory).parameters.values()):
        raise ValueError(f"optimizer {name!r} was registered without **hparams, so it cannot "
                         f"take {sorted(hparams)}")
    return factory(params, device, **hparams)


def register_activation(name: str, factory: Callable[[], nn.Module], *, replace=False) -> None:
    """Add an activation: ``factory()`` returns a new module."""
    ACTIVATIONS.register(name, factory, replace=replace)


def register_optimizer(
    name: str, factory: Callable[..., torch.optim.Optimizer], *, replace: bool = False
) -> None:
    """Add an optimizer: ``factory(params, device, **hparams)`` returns a new optimizer
    (``**hparams`` may be left out if no training gene sets optimizer hyperparameters)."""
    OPTIMIZERS.register(name, factory, replace=replace)
