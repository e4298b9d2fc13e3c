"""Evolution engine: ask/tell strategies and operators over integer genomes (numpy only).

A genome is a 1-D ``int64`` array; the search space is the vector of cardinalities (position
``i`` takes values ``0 .. cardinalities[i] - 1``). Nothing here knows about networks, and this
package imports neither torch nor any other part of pytorch_devol (but its private leaf
module ``_checks``: argument checks and ``make_rng``).

Strategies (see :class:`Strategy`): :class:`GeneticAlgorithm` (DEvol's generational GA, its
defects fixed, DEvol's settings via :meth:`GeneticAlgorithm.devol_exact`) and
:class:`RegularizedEvolution` (aging evolution, Real et al. 2019).
"""

from ._common import MAX_CARDINALITY, as_cardinalities, check_fitness, check_genomes, space_size
from .genetic import GeneticAlgorithm, SelectionFunc
from .keys import KeyFunc, KeyMemory
from .operators import (
    mutate,
    mutation_counts,
    random_genomes,
    single_point_crossover,
    uniform_crossover,
)
from .regularized import RegularizedEvolution
from .selection import (
    FitnessTransform,
    best_first,
    elite_indices,
    fitness_proportional,
    fitness_proportional_weights,
    scale_fitness,
    tournament,
    truncation,
)
from .strategy import STATE_VERSION, BaseStrategy, Strategy

__all__ = [
    "MAX_CARDINALITY",
    "STATE_VERSION",
    "BaseStrategy",
    "FitnessTransform",
    "GeneticAlgorithm",
    "KeyFunc",
    "KeyMemory",
    "RegularizedEvolution",
    "SelectionFunc",
    "Strategy",
    "as_cardinalities",
    "best_first",
    "check_fitness",
    "check_genomes",
    "elite_indices",
    "fitness_proportional",
    "fitness_proportional_weights",
    "mutate",
    "mutation_counts",
    "random_genomes",
    "scale_fitness",
    "single_point_crossover",
    "space_size",
    "tournament",
    "truncation",
    "uniform_crossover",
]
