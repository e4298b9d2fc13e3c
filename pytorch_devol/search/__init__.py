"""The search: ask -> build -> evaluate -> tell, the run directory, resuming, evaluators."""

from .evaluator import Evaluator, SerialEvaluator, Task
from .loop import candidate_seed
from .result import SearchResult, load_result
from .runner import STRATEGIES, Search
from .store import RunStore

__all__ = [
    "STRATEGIES",
    "Evaluator",
    "RunStore",
    "Search",
    "SearchResult",
    "SerialEvaluator",
    "Task",
    "candidate_seed",
    "load_result",
]
