"""User-style gene types, defined outside the package, as a researcher would."""

from __future__ import annotations

from torch import nn

from pytorch_devol.schema import InvalidGenomeError, allele, gene, make_activation, make_optimizer


@gene
class KernelConvGene:
    """A convolution whose kernel size is itself an allele ("valid" padding, so it can shrink
    the map: some genomes are invalid on small inputs, which the tests use)."""

    active: bool = allele([False, True], default=True)
    filters: int = allele([4, 8])
    kernel: int = allele([1, 3, 5])
    activation: str = allele(["relu", "tanh"])

    def build(self, in_shape):
        c, h, w = in_shape
        k = min(self.kernel, h, w)
        return ([nn.Conv2d(c, self.filters, k), make_activation(self.activation)],
                (self.filters, h - k + 1, w - k + 1))


@gene
class ExplodingGene:
    """A layer that raises while building when ``explode`` is chosen: a failing candidate."""

    explode: bool = allele([False, True])

    def build(self, in_shape):
        if self.explode:
            raise InvalidGenomeError("boom: this candidate cannot be built")
        return [nn.Identity()], in_shape


@gene
class BatchSizeGene:
    """A training gene that also chooses the batch size (a per-candidate override)."""

    optimizer: str = allele(["adam", "rmsprop"])
    batch_size: int = allele([32, 64])

    def make_optimizer(self, params, device=None):
        return make_optimizer(self.optimizer, params, device)

    def overrides(self):
        return {"batch_size": self.batch_size}


@gene
class BadBatchGene:
    """A training gene one of whose values gives an invalid TrainConfig: refused up front."""

    optimizer: str = allele(["adam"])
    batch_size: int = allele([32, 0])

    def make_optimizer(self, params, device=None, **hparams):
        return make_optimizer(self.optimizer, params, device, **hparams)

    def overrides(self):
        return {"batch_size": self.batch_size}


@gene
class BuggyGene:
    """A layer gene with a bug in one allele value: 2.5 units makes ``build`` raise TypeError."""

    active: bool = allele([False, True], default=True)
    units: int = allele([8, 16, 2.5])

    def build(self, in_shape):
        n = 1
        for d in in_shape:
            n *= d
        return [nn.Flatten(), nn.Linear(n, self.units)], (self.units,)


class _TrainOnlyBug(nn.Module):
    def forward(self, x):
        if self.training:
            return x + "a bug that only shows while training"  # TypeError
        return x


@gene
class TrainTimeBugGene:
    """Builds and runs in eval mode (so the dry run passes) but raises TypeError in training."""

    flavour: str = allele(["a", "b", "c"])

    def build(self, in_shape):
        return [_TrainOnlyBug()], in_shape
