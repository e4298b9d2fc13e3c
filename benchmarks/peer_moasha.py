"""Syne Tune's MOASHA (multi-objective asynchronous successive halving) as a peer arm of
``multi_objective.py``, through its scheduler API in-process, one worker.

One integer parameter per genome position (the allele index); the metrics are error
(1 - validation accuracy) and parameter count, both minimised, with ``max_t`` the full epochs,
``grace_period=1`` and ``reduction_factor=eta``. A trial trains one epoch at a time
(``mo_trainings.Trainings``: a paused network continues) while the scheduler says CONTINUE.
MOASHA samples from numpy's global RNG: it is seeded with ``np.random.seed(seed)`` for this
arm only, and the global state restored after it.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any

import numpy as np

from benchmarks.common import CANDIDATE_CAP, run_until_spent
from benchmarks.mo_trainings import Trainings

__all__ = ["run_moasha"]


def run_moasha(schema: Any, trainer: Any, seed: int, epochs: int, eta: int,
               budget: int) -> dict[str, Any]:
    """Syne Tune's MOASHA in-process, one worker, asynchronous; numpy's global RNG seeded."""
    from syne_tune.backend.trial_status import Trial
    from syne_tune.config_space import randint
    from syne_tune.optimizer.scheduler import SchedulerDecision
    from syne_tune.optimizer.schedulers.multiobjective.moasha import MOASHA

    names = list(schema.column_names)
    space = {n: randint(0, int(c) - 1) for n, c in zip(names, schema.cardinalities, strict=True)}
    saved = np.random.get_state()
    np.random.seed(seed)
    scheduler = MOASHA(space, metrics=["error", "params"], do_minimize=True, time_attr="epoch",
                       max_t=epochs, grace_period=1, reduction_factor=eta)
    log = Trainings(schema, trainer, seed, epochs, budget)
    decisions = {"continue": 0, "stop": 0, "completed": 0, "failed": 0}

    def trials() -> None:
        for trial_id in range(CANDIDATE_CAP * budget):
            config = scheduler.suggest().config
            trial = Trial(trial_id, config, _dt.datetime.now())
            scheduler.on_trial_add(trial)
            _moasha_trial(scheduler, trial, [int(config[n]) for n in names], log, decisions,
                          SchedulerDecision.CONTINUE)

    try:
        stop = run_until_spent(trials)
    finally:
        np.random.set_state(saved)
    return {"events": log.events, "stop": stop, "strategy": "syne_tune MOASHA",
            "decisions": decisions, "retrained_from_scratch": log.retrained}


def _moasha_trial(scheduler: Any, trial: Any, genome: list[int], log: Trainings,
                  decisions: dict[str, int], go_on: str) -> None:
    """One trial, epoch by epoch, while the scheduler says CONTINUE."""
    live = None
    for e in range(1, log.top + 1):
        step, live = log.train(trial.trial_id, genome, e, live)
        if step["status"] != "ok":
            decisions["failed"] += 1
            scheduler.on_trial_remove(trial)
            return
        result = {"epoch": e, "error": 1.0 - step["val"], "params": step["params"]}
        decision = scheduler.on_trial_result(trial, result)  # STOP at max_t: it is done
        if e == log.top:
            decisions["completed"] += 1
            scheduler.on_trial_complete(trial, result)
            return
        if decision != go_on:
            decisions["stop"] += 1
            scheduler.on_trial_remove(trial)
            return
        decisions["continue"] += 1
