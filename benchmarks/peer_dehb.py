"""DEHB (differential evolution + Hyperband, Awad et al. 2021) as a peer arm, through the
``dehb`` package's own ask/tell API and its own brackets.

Each genome position is one ConfigSpace parameter: ordinal where its alleles are numbers
(filters, units, dropout, learning rate...), categorical where they are names or switches
(activation, optimizer, batch norm on/off), constant where there is one allele. DEHB minimises,
so it is told ``1 - validation accuracy`` (a failed network: 1) and the epochs a call cost. The
fidelities it asks for (``min_epochs`` to the top, spaced by ``eta``) are trained with the
project's `Trainer` through ``incumbents.EpochTrainer``: a promoted network continues where it
paused, as in the project's successive halving.

``dehb`` pins numpy < 2, which the test extras cannot take; install it for benchmarks with
``pip install --no-deps dehb==0.1.2 loguru dask distributed`` (it runs on numpy 2).
"""

from __future__ import annotations

import tempfile
from typing import Any

from benchmarks.common import CANDIDATE_CAP, run_until_spent
from benchmarks.incumbents import EpochTrainer

__all__ = ["config_space", "run_dehb"]


def config_space(schema: Any, seed: int) -> Any:
    """A ConfigSpace with one parameter per genome position, named by its column."""
    from ConfigSpace import (
        CategoricalHyperparameter,
        ConfigurationSpace,
        Constant,
        OrdinalHyperparameter,
    )

    cs = ConfigurationSpace(seed=seed)
    names = list(schema.column_names)
    for slot in schema.slots:
        for j, choices in enumerate(slot.choices):
            name, card = names[slot.start + j], len(choices)
            numeric = all(isinstance(c, (int, float)) and not isinstance(c, bool)
                          for c in choices)
            if card == 1:
                cs.add(Constant(name, 0))
            elif numeric:
                cs.add(OrdinalHyperparameter(name, list(range(card))))
            else:
                cs.add(CategoricalHyperparameter(name, list(range(card))))
    return cs


def run_dehb(schema: Any, epochs: EpochTrainer, seed: int, min_epochs: int,
             eta: int) -> dict[str, Any]:
    """DEHB with ``min_fidelity=min_epochs, max_fidelity=top, eta`` (its defaults otherwise:
    mutation factor 0.5, crossover 0.5, rand1_bin) until ``epochs`` has spent its budget."""
    import dehb
    from dehb import DEHB

    names = list(schema.column_names)
    counts = {"jobs": 0, "by_fidelity": {}}
    with tempfile.TemporaryDirectory() as tmp:
        opt = DEHB(cs=config_space(schema, seed), dimensions=len(names),
                   min_fidelity=min_epochs, max_fidelity=epochs.top, eta=eta, n_workers=1,
                   seed=seed, output_path=tmp, save_freq="end", log_level="WARNING")

        def loop() -> None:
            for _ in range(CANDIDATE_CAP * epochs.budget):
                job = opt.ask()
                e = int(round(float(job["fidelity"])))
                genome = [int(job["config"][n]) for n in names]
                counts["jobs"] += 1
                counts["by_fidelity"][e] = counts["by_fidelity"].get(e, 0) + 1
                step = epochs.reach(genome, e, int(job["config_id"]))
                fitness = 1.0 if step["status"] != "ok" else 1.0 - float(step["val"])
                opt.tell(job, {"fitness": fitness, "cost": float(e)})

        stop = run_until_spent(loop)
    return {"events": epochs.events, "stop": stop, "strategy": "DEHB (dehb package)",
            "dehb": getattr(dehb, "__version__", None), "jobs": counts["jobs"],
            "jobs_by_fidelity": {str(k): v for k, v in sorted(counts["by_fidelity"].items())},
            "state_bytes": {"where": "in memory, paused networks below the top rung",
                            "peak": epochs.peak_state_bytes}}
