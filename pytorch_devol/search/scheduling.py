"""How a search schedules its candidates: a generation at a time, with successive halving
rung by rung inside it (generational strategies), or one candidate as each worker frees up,
promotions first (steady-state strategies, ASHA).

Both drive a `SearchLoop` through its steps: ``ask``, ``dispatch``/``collect``,
``next_record``, ``promote``, ``tell`` and ``checkpoint``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .loop import SearchLoop

__all__ = ["run_async", "run_generations"]


def run_generations(loop: SearchLoop, budget: int) -> None:
    """Ask a generation, train it (rung by rung with a fidelity scheduler), tell it, until
    ``budget`` candidates have been told."""
    while loop.told < budget:
        tasks = [t for t in loop.pending if t.rung == t.entry] or loop.ask(budget - loop.told)
        if not tasks:
            raise RuntimeError("the generational strategy asked for no genome")
        loop.reporter.start_generation(loop.generation, len(tasks))
        loop.collect(tasks)
        indices = [t.index for t in tasks]
        for rung in range(loop.rungs.top):  # successive halving, rung by rung
            loop.collect([loop.promote(i, rung + 1)
                          for i in loop.rungs.halving(indices, rung)])
        ordered = [loop.rungs.latest[i] for i in indices]
        loop.tell(tasks, ordered)
        loop.told += len(tasks)
        loop.pending = []
        loop.generation += 1
        loop.checkpoint()
        for record in ordered:  # no later generation continues these (a copy would
            loop.store.drop_states(tuple(record["key"]))  # retrain to the same result)
        loop.end_generation(loop.generation - 1, ordered)


def run_async(loop: SearchLoop, budget: int) -> None:
    """Keep every worker busy (a due promotion first, else a new candidate) and tell each
    result as it arrives, until ``budget`` candidates have been told."""
    in_flight = list(loop.pending)
    for t in in_flight:
        loop.dispatch(t)
    loop.reporter.start_generation(loop.told // loop.settings.population_size,
                                   budget - loop.told)
    window: list[dict[str, Any]] = []
    while True:
        while len(in_flight) < max(1, loop.evaluator.capacity):
            found = loop.rungs.next_promotion(  # ASHA: a promotion before a newcomer
                drain=not in_flight and loop.next_index >= budget)
            if found is not None:
                new = [loop.promote(found[0], found[1] + 1)]
            elif loop.next_index < budget:
                new = loop.ask(1)
            else:
                break
            if not new:
                break
            in_flight.extend(new)
            for t in new:
                loop.dispatch(t)
        if not in_flight:
            if loop.told < budget:
                raise RuntimeError("the strategy asked for nothing while results were due")
            break
        record = loop.next_record()
        task = next(t for t in in_flight if t.index == record["index"])
        in_flight.remove(task)
        loop.pending = [t for t in loop.pending if t.index != task.index]
        loop.tell([task], [record])
        new = task.rung == task.entry
        if new:  # the budget counts candidates, not promotions
            loop.told += 1
            window.append(record)
        loop.generation = loop.told // loop.settings.population_size
        loop.checkpoint()
        if new and loop.told % loop.settings.population_size == 0:
            loop.end_generation(loop.generation - 1, window)
            window = []
