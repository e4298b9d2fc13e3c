"""The search: ask -> build -> evaluate -> tell, the run directory, resuming, evaluators."""

from .breaker import SearchAborted
from .evaluator import Evaluator, Task
from .factory import make_evaluator
from .fidelity import ASHA, Fidelity, SuccessiveHalving
from .loop import candidate_seed
from .objectives import Constraint, Objective
from .pool import ProcessPoolEvaluator, WorkerStartupError
from .ray_evaluator import RayEvaluator
from .result import SearchResult, load_result
from .runner import STRATEGIES, Search
from .serial import SerialEvaluator
from .store import RunStore

__all__ = [
    "ASHA",
    "STRATEGIES",
    "Constraint",
    "Evaluator",
    "Fidelity",
    "Objective",
    "ProcessPoolEvaluator",
    "RayEvaluator",
    "RunStore",
    "Search",
    "SearchAborted",
    "SearchResult",
    "SerialEvaluator",
    "SuccessiveHalving",
    "Task",
    "WorkerStartupError",
    "candidate_seed",
    "load_result",
    "make_evaluator",
]
