"""How a search schedules its candidates: a generation at a time, with successive halving
rung by rung (and bracket by bracket) inside it (generational strategies), or one candidate
as each worker frees up, promotions first (steady-state strategies, ASHA).

A policy only asks, dispatches and tells through the loop's `Steps`; the counters and the
checkpoint commit belong to the run state (``run_state.RunState``).
"""

from __future__ import annotations

from typing import Any, Protocol

from .evaluators import Task
from .run_state import RunState
from .rungs import RungBook

__all__ = ["Steps", "run_async", "run_generations"]


class Steps(Protocol):
    """What a scheduling policy may do with the search loop (``loop.SearchLoop``)."""

    state: RunState
    rungs: RungBook
    settings: Any
    evaluator: Any
    reporter: Any
    store: Any

    def ask(self, n: int | None) -> list[Task]: ...

    def promote(self, index: int, rung: int) -> Task: ...

    def dispatch(self, task: Task) -> None: ...

    def next_record(self) -> dict[str, Any]: ...

    def collect(self, tasks: list[Task]) -> None: ...

    def tell(self, tasks: list[Task], records: list[dict[str, Any]]) -> None: ...

    def end_generation(self, generation: int, records: list[dict[str, Any]]) -> None: ...


def run_generations(loop: Steps, budget: int) -> None:
    """Ask a generation, train it (rung by rung with a fidelity scheduler, each candidate
    from its entry rung), tell it, until ``budget`` candidates have been told."""
    state = loop.state
    while state.told < budget:
        tasks = [t for t in state.pending if t.rung == t.entry] or loop.ask(budget - state.told)
        if not tasks:
            raise RuntimeError("the generational strategy asked for no genome")
        loop.reporter.start_generation(state.generation, len(tasks))
        loop.collect(tasks)
        indices = [t.index for t in tasks]
        for rung in range(loop.rungs.top):  # successive halving, rung by rung
            loop.collect([loop.promote(i, rung + 1)
                          for i in loop.rungs.halving(indices, rung)])
        ordered = [loop.rungs.latest[i] for i in indices]
        loop.tell(tasks, ordered)
        state.generation_told(len(tasks))
        for record in ordered:  # no later generation continues these (a copy would
            loop.store.drop_states(tuple(record["key"]))  # retrain to the same result)
        loop.end_generation(state.generation - 1, ordered)


def run_async(loop: Steps, budget: int) -> None:
    """Keep every worker busy (a due promotion first, else a new candidate) and tell each
    result as it arrives, until ``budget`` candidates have been told."""
    state, population = loop.state, loop.settings.population_size
    in_flight = list(state.pending)
    for t in in_flight:
        loop.dispatch(t)
    loop.reporter.start_generation(state.told // population, budget - state.told)
    window: list[dict[str, Any]] = []
    while True:
        while len(in_flight) < max(1, loop.evaluator.capacity):
            found = loop.rungs.next_promotion(  # ASHA: a promotion before a newcomer
                drain=not in_flight and state.next_index >= budget)
            if found is not None:
                new = [loop.promote(found[0], found[1] + 1)]
            elif state.next_index < budget:
                new = loop.ask(1)
            else:
                break
            if not new:
                break
            in_flight.extend(new)
            for t in new:
                loop.dispatch(t)
        if not in_flight:
            if state.told < budget:
                raise RuntimeError("the strategy asked for nothing while results were due")
            break
        record = loop.next_record()
        task = next(t for t in in_flight if t.index == record["index"])
        in_flight.remove(task)
        loop.tell([task], [record])
        state.candidate_told(task, population)
        if task.rung == task.entry:
            window.append(record)
            if state.told % population == 0:
                loop.end_generation(state.generation - 1, window)
                window = []
