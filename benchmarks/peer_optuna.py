"""Optuna as a peer arm, through its own API: TPE with its Hyperband pruner
(``search_efficiency.py``), and NSGAIISampler (``multi_objective.py``).

One categorical parameter per genome position (the allele index). With TPE each trial trains its
genome epoch by epoch with the project's `Trainer` (``incumbents.EpochTrainer``: a paused network
continues, a genome seen before replays its cached epochs), reports the validation accuracy
after each epoch and stops when the pruner says so. With NSGAIISampler (two objectives:
validation accuracy max, parameter count min) every trial trains its genome in full
(``mo_trainings.Trainings``); it cannot prune.
"""

from __future__ import annotations

import math
from typing import Any

from benchmarks.common import CANDIDATE_CAP, run_until_spent
from benchmarks.incumbents import EpochTrainer
from benchmarks.mo_trainings import Trainings

__all__ = ["run_optuna_nsga2", "run_optuna_tpe"]


def _objective(schema: Any, epochs: EpochTrainer) -> Any:
    import optuna

    names = list(schema.column_names)
    cards = [int(c) for c in schema.cardinalities]

    def objective(trial: Any) -> float:
        genome = [trial.suggest_categorical(name, list(range(card)))
                  for name, card in zip(names, cards, strict=True)]
        for e in range(1, epochs.top + 1):
            step = epochs.reach(genome, e, trial.number)
            if step["status"] != "ok":
                return math.nan          # Optuna marks the trial failed
            trial.report(step["val"], e)
            if e < epochs.top and trial.should_prune():
                raise optuna.TrialPruned()
        return step["val"]

    return objective


def run_optuna_tpe(schema: Any, epochs: EpochTrainer, seed: int, min_epochs: int,
                   eta: int) -> dict[str, Any]:
    """Optuna's ``TPESampler(seed=seed)`` with ``HyperbandPruner(min_epochs, top, eta)``
    until ``epochs`` has spent its budget."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.HyperbandPruner(min_resource=min_epochs, max_resource=epochs.top,
                                            reduction_factor=eta)
    # A fixed study name: Hyperband assigns brackets by hashing it with the trial number.
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner,
                                study_name=f"search_efficiency_{seed}")
    stop = run_until_spent(lambda: study.optimize(
        _objective(schema, epochs), n_trials=CANDIDATE_CAP * epochs.budget, catch=(),
        gc_after_trial=False, show_progress_bar=False))
    # the trial the budget stopped shows as failed in Optuna: name it for what it is
    states = [t.state.name for t in study.trials[:-1 if stop == "budget" else None]]
    if stop == "budget":
        states.append("STOPPED_BY_BUDGET")
    return {"events": epochs.events, "stop": stop, "strategy": "optuna TPE + Hyperband",
            "optuna": optuna.__version__,
            "trial_states": {s: states.count(s) for s in sorted(set(states))},
            "state_bytes": {"where": "in memory, paused networks below the top rung",
                            "peak": epochs.peak_state_bytes}}


# -- NSGAIISampler, for multi_objective.py -------------------------------------------------------

def _nsga2_objective(schema: Any, log: Trainings, epochs: int) -> Any:
    names, cards = list(schema.column_names), [int(c) for c in schema.cardinalities]

    def objective(trial: Any) -> tuple[float, float]:
        genome = [trial.suggest_categorical(n, list(range(c)))
                  for n, c in zip(names, cards, strict=True)]
        step, _ = log.train(trial.number, genome, epochs)
        if step["status"] != "ok":
            return math.nan, math.nan   # Optuna marks the trial failed
        return step["val"], step["params"]

    return objective


def run_optuna_nsga2(schema: Any, trainer: Any, seed: int, epochs: int, population: int,
                     budget: int) -> dict[str, Any]:
    """Optuna's ``NSGAIISampler(population_size=population, seed=seed)`` on (validation
    accuracy max, params min); every trial trained ``epochs`` in full, until ``budget``
    epochs are spent."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    log = Trainings(schema, trainer, seed, epochs, budget)
    objective = _nsga2_objective(schema, log, epochs)
    sampler = optuna.samplers.NSGAIISampler(population_size=population, seed=seed)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=sampler)
    stop = run_until_spent(lambda: study.optimize(
        objective, n_trials=CANDIDATE_CAP * budget, catch=(), gc_after_trial=False,
        show_progress_bar=False))
    return {"events": log.events, "stop": stop, "strategy": "optuna NSGAIISampler",
            "trials": len(study.trials)}
