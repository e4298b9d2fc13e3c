"""The search: ask -> build -> evaluate -> tell, the run directory, resuming, evaluators."""

from .breaker import SearchAborted
from .callbacks import Callback, GenerationSummary, RunInfo
from .evaluators import (
    Evaluator,
    ProcessPoolEvaluator,
    RayEvaluator,
    SerialEvaluator,
    Task,
    WorkerStartupError,
    make_evaluator,
)
from .fidelity import ASHA, Fidelity, Hyperband, SuccessiveHalving
from .lock import RunLock, RunLockedError
from .loop import candidate_seed
from .objectives import Constraint, Objective
from .result import SearchResult, load_result, retrain
from .retrain import RetrainSummary
from .runner import STRATEGIES, Search
from .store import RunStore

__all__ = [
    "ASHA",
    "STRATEGIES",
    "Callback",
    "Constraint",
    "Evaluator",
    "Fidelity",
    "GenerationSummary",
    "Hyperband",
    "Objective",
    "ProcessPoolEvaluator",
    "RayEvaluator",
    "RetrainSummary",
    "RunInfo",
    "RunLock",
    "RunLockedError",
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
    "retrain",
]
