"""The search: ask -> build -> evaluate -> tell, the run directory, resuming, evaluators."""

from .evaluator import Evaluator, Task
from .factory import make_evaluator
from .loop import candidate_seed
from .pool import ProcessPoolEvaluator, WorkerStartupError
from .ray_evaluator import RayEvaluator
from .result import SearchResult, load_result
from .runner import STRATEGIES, Search
from .serial import SerialEvaluator
from .store import RunStore

__all__ = [
    "STRATEGIES",
    "Evaluator",
    "ProcessPoolEvaluator",
    "RayEvaluator",
    "RunStore",
    "Search",
    "SearchResult",
    "SerialEvaluator",
    "Task",
    "WorkerStartupError",
    "candidate_seed",
    "load_result",
    "make_evaluator",
]
