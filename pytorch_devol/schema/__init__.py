"""The search space: gene types declared as attrs classes, compiled to ``nn.Sequential``.

See ``GenomeSchema`` for the flat integer layout the evolution engine works on, and
docs/extending/gene.md for a worked example of a user gene.
"""

from .alleles import allele, gene, gene_choices, is_gene, with_choices
from .blocks import ConvBlockGene, GlobalPoolGene, ResidualBlockGene
from .contracts import (
    TRAINING_FIELDS,
    LayerGene,
    OptimizerChoice,
    OptimizerSettings,
    TrainingGene,
    TrainingOverrides,
)
from .devol import DEVOL_TRAINING_GENES, devol_columns, from_devol, to_devol
from .dryrun import dry_run
from .errors import GeneError, InvalidGenomeError
from .genes import Conv2dGene, DenseGene, OptimizerGene, flat_size
from .genome import GenomeSchema, Slot
from .registry import (
    ACTIVATIONS,
    OPTIMIZERS,
    make_activation,
    make_optimizer,
    register_activation,
    register_optimizer,
)
from .training_genes import (
    AugmentGene,
    BatchSizeGene,
    LabelSmoothingGene,
    LearningRateGene,
    ScheduleGene,
    WeightDecayGene,
)

__all__ = [
    "ACTIVATIONS",
    "AugmentGene",
    "BatchSizeGene",
    "Conv2dGene",
    "ConvBlockGene",
    "DEVOL_TRAINING_GENES",
    "DenseGene",
    "GeneError",
    "GenomeSchema",
    "GlobalPoolGene",
    "InvalidGenomeError",
    "LabelSmoothingGene",
    "LayerGene",
    "LearningRateGene",
    "OPTIMIZERS",
    "OptimizerChoice",
    "OptimizerGene",
    "OptimizerSettings",
    "ResidualBlockGene",
    "ScheduleGene",
    "Slot",
    "TRAINING_FIELDS",
    "TrainingGene",
    "TrainingOverrides",
    "WeightDecayGene",
    "allele",
    "devol_columns",
    "dry_run",
    "flat_size",
    "from_devol",
    "gene",
    "gene_choices",
    "is_gene",
    "make_activation",
    "make_optimizer",
    "register_activation",
    "register_optimizer",
    "to_devol",
    "with_choices",
]
