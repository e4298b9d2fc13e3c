"""Evolution engine: ask/tell strategies and operators over integer genomes (numpy only).

A genome is a 1-D ``int64`` array; the search space is the vector of cardinalities (position
``i`` takes values ``0 .. cardinalities[i] - 1``). Nothing here knows about networks, and this
package imports neither torch nor any other part of pytorch_devol (but its private leaf
module ``_checks``: argument checks and ``make_rng``).

Strategies (see :class:`Strategy`): :class:`GeneticAlgorithm` (DEvol's generational GA, its
defects fixed, DEvol's settings via :meth:`GeneticAlgorithm.devol_exact`),
:class:`RegularizedEvolution` (aging evolution, Real et al. 2019) and :class:`NSGA2`
(multi-objective, Deb et al. 2002).

Operators are small frozen objects every strategy takes (``selection=``, ``crossover=``,
``mutation=``): :class:`FitnessProportional`, :class:`Tournament`, :class:`Truncation`;
:class:`SinglePoint`, :class:`Uniform`; :class:`DevolMutation`, :class:`PointMutation`,
:class:`RateMutation`. Yours is one class following :class:`Selection`, :class:`Crossover`
or :class:`Mutation`. Pareto utilities (non-dominated sort, crowding, hypervolume) are in
:mod:`.pareto`.
"""

from ._common import MAX_CARDINALITY, as_cardinalities, check_fitness, check_genomes, space_size
from .genetic import DEVOL_OPERATORS, GeneticAlgorithm, SelectionFunc
from .keys import KeyFunc, KeyMemory
from .nsga2 import NSGA2
from .operators import (
    mutate,
    mutation_counts,
    random_genomes,
    single_point_crossover,
    uniform_crossover,
)
from .pareto import (
    as_costs,
    as_directions,
    crowded_order_fitness,
    crowding_distance,
    hypervolume,
    non_dominated_sort,
    pareto_front,
)
from .regularized import RegularizedEvolution
from .selection import (
    FitnessProportional,
    FitnessTransform,
    Selection,
    Tournament,
    Truncation,
    best_first,
    elite_indices,
    fitness_proportional,
    fitness_proportional_weights,
    scale_fitness,
    tournament,
    truncation,
)
from .specs import OPERATORS, operator_from_spec, operator_spec
from .strategy import STATE_VERSION, BaseStrategy, Strategy
from .variation import (
    Crossover,
    DevolMutation,
    Mutation,
    PointMutation,
    RateMutation,
    SinglePoint,
    Uniform,
)

__all__ = [
    "DEVOL_OPERATORS",
    "MAX_CARDINALITY",
    "NSGA2",
    "OPERATORS",
    "STATE_VERSION",
    "BaseStrategy",
    "Crossover",
    "DevolMutation",
    "FitnessProportional",
    "FitnessTransform",
    "GeneticAlgorithm",
    "KeyFunc",
    "KeyMemory",
    "Mutation",
    "PointMutation",
    "RateMutation",
    "RegularizedEvolution",
    "Selection",
    "SelectionFunc",
    "SinglePoint",
    "Strategy",
    "Tournament",
    "Truncation",
    "Uniform",
    "as_cardinalities",
    "as_costs",
    "as_directions",
    "best_first",
    "check_fitness",
    "check_genomes",
    "crowded_order_fitness",
    "crowding_distance",
    "elite_indices",
    "fitness_proportional",
    "fitness_proportional_weights",
    "hypervolume",
    "mutate",
    "mutation_counts",
    "non_dominated_sort",
    "operator_from_spec",
    "operator_spec",
    "pareto_front",
    "random_genomes",
    "scale_fitness",
    "single_point_crossover",
    "space_size",
    "tournament",
    "truncation",
    "uniform_crossover",
]
