"""Evolution engine: ask/tell strategies and operators over integer genomes (numpy only).

A genome is a 1-D ``int64`` array; the search space is the vector of cardinalities (position
``i`` takes values ``0 .. cardinalities[i] - 1``). Nothing here knows about networks, and this
package imports neither torch nor any other part of pytorch_devol (but its private leaf
module ``_checks``: argument checks and ``make_rng``).

Strategies (see :class:`Strategy`): :class:`GeneticAlgorithm` (DEvol's generational GA, its
defects fixed, DEvol's settings via :meth:`GeneticAlgorithm.devol_exact`),
:class:`RegularizedEvolution` (aging evolution, Real et al. 2019) and :class:`NSGA2`
(multi-objective, Deb et al. 2002).

Operators (:mod:`.operators`) are small frozen objects every strategy takes (``selection=``,
``crossover=``, ``mutation=``): :class:`FitnessProportional`, :class:`Tournament`,
:class:`Truncation`; :class:`SinglePoint`, :class:`Uniform`; :class:`DevolMutation`,
:class:`PointMutation`, :class:`RateMutation`. Yours is one class following :class:`Selection`,
:class:`Crossover` or :class:`Mutation`; a spec such as ``{"type": "Tournament", "k": 2}`` names
a built-in one as data. A generational strategy of your own can start from
:class:`GenerationalStrategy`. Pareto utilities (non-dominated sort, crowding, hypervolume)
are in :mod:`.pareto`.
"""

from ._common import MAX_CARDINALITY, as_cardinalities, check_fitness, check_genomes, space_size
from ._variation import random_genomes
from .generational import GenerationalStrategy
from .genetic import DEVOL_OPERATORS, GeneticAlgorithm
from .keys import KeyFunc, KeyMemory
from .nsga2 import NSGA2
from .operators import (
    Crossover,
    DevolMutation,
    FitnessProportional,
    FitnessTransform,
    Mutation,
    PointMutation,
    RateMutation,
    Selection,
    SinglePoint,
    Tournament,
    Truncation,
    Uniform,
)
from .pareto import (
    as_costs,
    as_directions,
    crowded_order_fitness,
    crowding_distance,
    hypervolume,
    non_dominated_sort,
    pareto_front,
    pareto_order,
)
from .regularized import RegularizedEvolution
from .specs import OPERATORS, operator_from_spec, operator_spec
from .strategy import (
    STATE_VERSION,
    BaseStrategy,
    CompactState,
    StateMismatchError,
    Strategy,
    Updatable,
    WarmStartable,
    takes_violation,
)

__all__ = [
    "DEVOL_OPERATORS",
    "MAX_CARDINALITY",
    "NSGA2",
    "OPERATORS",
    "STATE_VERSION",
    "BaseStrategy",
    "CompactState",
    "Crossover",
    "DevolMutation",
    "FitnessProportional",
    "FitnessTransform",
    "GenerationalStrategy",
    "GeneticAlgorithm",
    "KeyFunc",
    "KeyMemory",
    "Mutation",
    "PointMutation",
    "RateMutation",
    "RegularizedEvolution",
    "Selection",
    "SinglePoint",
    "StateMismatchError",
    "Strategy",
    "Tournament",
    "Truncation",
    "Uniform",
    "Updatable",
    "WarmStartable",
    "as_cardinalities",
    "as_costs",
    "as_directions",
    "check_fitness",
    "check_genomes",
    "crowded_order_fitness",
    "crowding_distance",
    "hypervolume",
    "non_dominated_sort",
    "operator_from_spec",
    "operator_spec",
    "pareto_front",
    "pareto_order",
    "random_genomes",
    "space_size",
    "takes_violation",
]
