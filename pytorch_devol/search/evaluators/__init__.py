"""Evaluators map genomes to results: in-process, a local process pool (POSIX), or Ray.

An evaluator follows the small `Evaluator` protocol in ``base.py``; the loop uses nothing else.
"""

from .base import BetterThan, Evaluator, Task, build_trainer, set_threads, train_task
from .factory import make_evaluator
from .pool import ProcessPoolEvaluator, WorkerStartupError
from .ray import RayEvaluator
from .serial import SerialEvaluator

__all__ = [
    "BetterThan",
    "Evaluator",
    "ProcessPoolEvaluator",
    "RayEvaluator",
    "SerialEvaluator",
    "Task",
    "WorkerStartupError",
    "build_trainer",
    "make_evaluator",
    "set_threads",
    "train_task",
]
