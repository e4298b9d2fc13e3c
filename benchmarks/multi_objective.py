"""At an equal budget of cumulative training epochs, how good is the Pareto front of
(validation accuracy max, parameter count min) that each method finds, and does successive
halving make NSGA-II cheaper?

Every arm gets the same data (a Fashion-MNIST subset), search space (a small
``GenomeSchema.devol``), trainer (``TrainConfig(patience=None)``, E epochs for a full network,
a genome's training seed ``candidate_seed(seed, canonical key)`` in every arm) and budget of
B = --budget-candidates x E cumulative training epochs (by default 60 x 9 = 540):

* ``nsga2``: ``Search(objectives=["val_accuracy", "params"])`` (NSGA-II), every candidate
  trained E epochs;
* ``nsga2_sh``: the same with ``fidelity=SuccessiveHalving(min_epochs=1, eta=3,
  pareto="crowding")``: each rung promotes by non-dominated rank, then crowding distance;
* ``nsga2_sh_eps``: the same with ``pareto="epsilon"`` (MOASHA's epsilon-net order);
* ``optuna``: Optuna's ``NSGAIISampler(population_size=P, seed=s)``, one categorical parameter
  per genome position, every trial trained E epochs by ``Trainer.evaluate`` (it cannot prune;
  ``peer_optuna.run_optuna_nsga2``);
* ``moasha``: Syne Tune's ``MOASHA`` (max_t=E, grace_period=1, reduction_factor=3, metrics
  error = 1 - val_accuracy and params, both minimised) through its scheduler API in-process,
  one worker: a trial trains one epoch at a time, continued (``Trainer.evaluate(resume=state,
  keep_state=True, epochs=e)``) while the scheduler says CONTINUE. MOASHA samples from numpy's
  global RNG: it is seeded with ``np.random.seed(seed)`` for this arm only (and restored;
  ``peer_moasha.run_moasha``);
* ``random``: ``Search`` with uniformly random genomes (``peer_random.RandomStrategy``);
* ``nsga2_sh_con`` (the constraint run): ``nsga2_sh`` with ``constraints=["params<=M"]``, M the
  median parameter count of 200 random genomes (numpy default_rng(12345), never trained): how
  many infeasible candidates it skips untrained, the epochs that saves, its feasible front.

A genome already trained (same canonical key) costs nothing again (``Search``'s cache; the
Optuna and MOASHA arms keep their own, per epoch count, in ``mo_trainings.Trainings``; a MOASHA
trial that re-proposes a genome stopped earlier replays its epochs, then trains it again from
scratch to go further).
An arm stops once it has spent B epochs; the analysis then keeps the records whose cumulative
epochs, up to and including them, are within B. Hypervolume counts only final candidates
(trained E epochs), ok, against one fixed reference point (accuracy 0, params 1.1 x the
largest network the space can build), normalised by the reference box. Arms are interleaved
within each seed, in an order rotated by seed. A missing optional dependency (optuna,
syne_tune) skips its arm with the reason recorded.

    python benchmarks/multi_objective.py      # the recorded run
    python benchmarks/multi_objective.py --seeds 1 --epochs 3 --budget-candidates 4 \
        --population 4 --limit 300 --test 100 --out /tmp/mo       # smoke, ~20 s
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    CANDIDATE_CAP,
    RESULTS,
    Budget,
    BudgetSpent,
    Provenance,
    default_data_root,
    loadavg,
    merge_saved,
    run_until_spent,
    settings_of,
)
from benchmarks.multi_objective_report import (  # noqa: E402
    ARM_LABELS,
    ARMS,
    DIRECTIONS,
    REFERENCE_FACTOR,
    write_outputs,
)
from benchmarks.peer_moasha import run_moasha  # noqa: E402
from benchmarks.peer_optuna import run_optuna_nsga2  # noqa: E402
from benchmarks.peer_random import RandomStrategy  # noqa: E402
from pytorch_devol import GenomeSchema, Search, SuccessiveHalving, load_dataset  # noqa: E402
from pytorch_devol.search.objectives import count_params  # noqa: E402
from pytorch_devol.training import TrainConfig, Trainer  # noqa: E402

SPACE = dict(max_conv_layers=2, max_dense_layers=2, max_filters=32, max_dense_nodes=128)
OBJECTIVES = ["val_accuracy", "params"]
SH_ARMS = {"nsga2_sh": "crowding", "nsga2_sh_eps": "epsilon", "nsga2_sh_con": "crowding"}
NEEDS = {"optuna": "optuna", "moasha": "syne_tune"}
CONSTRAINT_SAMPLE = (200, 12345)  # genomes, seed of the sample setting the params constraint


# -- the space -----------------------------------------------------------------------------------

def largest_params(schema: GenomeSchema) -> int:
    """Parameters of the largest network the space builds. Parameters grow with every width
    (filters, units) and with batch norm, and do not depend on activation, dropout or
    optimizer, so the largest is among the networks at the widest choices with every
    combination of the layer-on and max-pool genes (32 here, counted without training)."""
    free = [i for i, n in enumerate(schema.column_names) if n.endswith((".active", ".max_pool"))]
    widest = [int(c) - 1 for c in schema.cardinalities]
    best = 0
    for values in itertools.product(*(range(int(schema.cardinalities[i])) for i in free)):
        genome = list(widest)
        for i, v in zip(free, values, strict=True):
            genome[i] = v
        best = max(best, count_params(schema, genome))
    return best


def constraint_limit(schema: GenomeSchema) -> int:
    """The median parameter count of a fixed random sample of genomes (never trained)."""
    n, seed = CONSTRAINT_SAMPLE
    rng = np.random.default_rng(seed)
    return int(np.median([count_params(schema, rng.integers(0, schema.cardinalities))
                          for _ in range(n)]))


# -- the Search arms -----------------------------------------------------------------------------

def _event(record: dict[str, Any]) -> dict[str, Any]:
    """A Search log record as the fields the analysis needs, the same for every arm."""
    m, obj = record["metrics"], record.get("objectives") or {}
    ok = m.get("status") == "ok"
    return {"index": int(record["index"]), "rung": int(record["rung"]),
            "final": bool(record["final"]), "cached": bool(record["cached"]),
            "epochs": int(record["rung_epochs"]),
            "seconds": round(float(record.get("rung_seconds") or 0.0), 4),
            "network_epochs": int(m.get("epochs") or 0), "status": m.get("status"),
            "val_accuracy": obj.get("val_accuracy") if ok else None,
            "params": obj.get("params"), "test_accuracy": m.get("test_accuracy") if ok else None}


def run_search(arm: str, schema: GenomeSchema, data: Any, seed: int, args: argparse.Namespace,
               budget: int) -> dict[str, Any]:
    """One Search arm until it has spent ``budget`` epochs (or its candidate cap)."""
    extra: dict[str, Any] = {"inherit_weights": False}  # as measured, before it was a default
    if arm in SH_ARMS:
        extra["fidelity"] = SuccessiveHalving(min_epochs=1, eta=args.eta, pareto=SH_ARMS[arm])
    if arm == "nsga2_sh_con":
        extra["constraints"] = [f"params<={args.constraint_params}"]
    strategy = RandomStrategy(schema.cardinalities, args.population, seed,
                              maximize=(True, False)) if arm == "random" else None
    events: list[dict[str, Any]] = []

    def on_record(record: dict[str, Any]) -> None:
        events.append(_event(record))
        if sum(e["epochs"] for e in events) >= budget:
            raise BudgetSpent

    with tempfile.TemporaryDirectory() as tmp:
        search = Search(schema, data, generations=math.ceil(CANDIDATE_CAP * budget /
                                                            args.population),
                        population_size=args.population, epochs=args.epochs, seed=seed,
                        objectives=OBJECTIVES, strategy=strategy,
                        train_config=TrainConfig(patience=None), verbose=False,
                        progress_bar=False, run_dir=Path(tmp) / "run", on_record=on_record,
                        **extra)
        if arm != "random" and search.strategy_name != "nsga2":
            raise RuntimeError(f"expected NSGA-II, the search chose {search.strategy_name!r}")
        stop = run_until_spent(search.run)
    return {"events": events, "stop": stop, "strategy": search.strategy_name,
            "fidelity": repr(extra.get("fidelity")), "constraints": extra.get("constraints")}


# -- the run -------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--limit", type=int, default=1000, help="training images (+ val)")
    parser.add_argument("--test", type=int, default=500, help="held-out test images")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="share of the training images held out for validation")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--population", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=9, help="full training of one network")
    parser.add_argument("--eta", type=int, default=3, help="reduction factor of SH and MOASHA")
    parser.add_argument("--budget-candidates", type=int, default=60,
                        help="the epoch budget of every arm is this x --epochs")
    parser.add_argument("--arms", default=",".join(ARMS),
                        help=f"comma-separated subset of {','.join(ARMS)}")
    parser.add_argument("--max-minutes", type=float, default=None,
                        help="start no new seed after this many minutes")
    parser.add_argument("--out", default=str(RESULTS / "multi_objective_cpu"),
                        help="output path without suffix (.json, .md, .png are written)")
    parser.add_argument("--reading", default=None,
                        help="file with a paragraph reading the result, put in the report")
    parser.add_argument("--from-json", default=None, nargs="+", metavar="FILE",
                        help="re-render the report and plot of saved runs (trains nothing); "
                             "several files (other seeds, same settings) are merged")
    args = parser.parse_args(argv)
    if args.from_json:
        return args
    args.arm_list = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    unknown = sorted(set(args.arm_list) - set(ARMS))
    if unknown or not args.arm_list or len(set(args.arm_list)) != len(args.arm_list):
        parser.error(f"--arms: choose distinct arms from {', '.join(ARMS)} (got {args.arms!r})")
    if args.eta < 2 or args.epochs < 1 or args.budget_candidates < 1:
        parser.error("need --eta >= 2, --epochs >= 1, --budget-candidates >= 1")
    return args


def unavailable(arms: tuple[str, ...]) -> dict[str, str]:
    """Arms whose optional dependency does not import: arm -> the reason."""
    out = {}
    for arm in arms:
        if arm in NEEDS:
            try:
                __import__(NEEDS[arm])
                if arm == "moasha":
                    __import__("syne_tune.optimizer.schedulers.multiobjective.moasha")
            except Exception as exc:  # noqa: BLE001 - any import failure skips the arm
                out[arm] = f"{NEEDS[arm]} does not import: {type(exc).__name__}: {exc}"
    return out


def run_arm(arm: str, schema: GenomeSchema, data: Any, trainer: Trainer, seed: int,
            args: argparse.Namespace, budget: int) -> dict[str, Any]:
    if arm == "optuna":
        return run_optuna_nsga2(schema, trainer, seed, args.epochs, args.population, budget)
    if arm == "moasha":
        return run_moasha(schema, trainer, seed, args.epochs, args.eta, budget)
    return run_search(arm, schema, data, seed, args, budget)


def run_seeds(arms: tuple[str, ...], schema: GenomeSchema, data: Any, trainer: Trainer,
              args: argparse.Namespace, budget: int, wall: Budget
              ) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
    """Every arm once per seed, interleaved in an order rotated by seed; a seed not started
    before --max-minutes have passed is skipped (and returned as such)."""
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    skipped = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if wall.spent():
            skipped.append(seed)
            continue
        order = arms[seed % len(arms):] + arms[:seed % len(arms)]
        for arm in order:
            start = time.perf_counter()
            run = run_arm(arm, schema, data, trainer, seed, args, budget)
            runs[arm].append({"seed": seed, "order": list(order),
                              "wall_seconds": round(time.perf_counter() - start, 2),
                              "loadavg_after": loadavg(), **run})
            ev = run["events"]
            print(f"seed {seed} {arm}: {len(ev)} records, {sum(e['final'] for e in ev)} final, "
                  f"{sum(e['epochs'] for e in ev)} epochs, stop: {run['stop']}, "
                  f"{runs[arm][-1]['wall_seconds']:.0f} s wall", flush=True)
    return runs, skipped


def rerender(paths: list[str], out: Path, reading: str | None) -> None:
    """Re-render the report and plot of saved runs (trains nothing). Runs of other seeds with
    the same settings (processes run side by side) are merged, seeds in order."""
    meta, runs = merge_saved(paths)
    if reading is not None:
        meta["reading"] = reading
    print(write_outputs(meta, runs, out))


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    reading = Path(args.reading).read_text() if args.reading else None
    if args.from_json:
        rerender(args.from_json, Path(args.out), reading)
        return
    skipped_arms = unavailable(args.arm_list)
    for arm, why in skipped_arms.items():
        print(f"arm {arm} skipped: {why}", flush=True)
    arms = tuple(a for a in args.arm_list if a not in skipped_arms)
    budget = args.budget_candidates * args.epochs
    wall = Budget(args.max_minutes)
    provenance = Provenance("multi_objective.py", argv)  # the code imported is measured
    data = load_dataset(args.dataset, root=default_data_root(), limit=(args.limit, args.test),
                        val_fraction=args.val_fraction)
    schema = GenomeSchema.devol(input_shape=data.input_shape, n_classes=10, **SPACE)
    largest = largest_params(schema)
    args.constraint_params = constraint_limit(schema)
    trainer = Trainer(data, TrainConfig(patience=None, epochs=args.epochs))
    runs, skipped = run_seeds(arms, schema, data, trainer, args, budget, wall)
    extra = {m: getattr(sys.modules.get(m), "__version__", None) for m in NEEDS.values()}
    meta = {**provenance.header(trainer.device, "2 cores shared with other jobs: seconds are "
                                "noisy", **extra),
            "data": data.summary() if hasattr(data, "summary") else str(data),
            "space_genes": len(schema),
            "setting": {**settings_of(args, "reading", "from_json", "arm_list"),
                        "arms": list(arms), "budget": budget, "space": SPACE,
                        "objectives": OBJECTIVES, "directions": DIRECTIONS,
                        "arm_labels": {a: ARM_LABELS[a] for a in args.arm_list},
                        "skipped_arms": skipped_arms,
                        "train_config": "TrainConfig(patience=None), batch 128",
                        "candidate_cap": f"{CANDIDATE_CAP} x budget",
                        "largest_params": largest,
                        "reference": {"val_accuracy": 0.0,
                                      "params": REFERENCE_FACTOR * largest},
                        "constraint": f"params<={args.constraint_params}",
                        "constraint_sample": {"genomes": CONSTRAINT_SAMPLE[0],
                                              "seed": CONSTRAINT_SAMPLE[1]},
                        "moasha_seeding": "np.random.seed(seed) before the arm, the global "
                                          "state restored after it",
                        "skipped_seeds_by_time": skipped}}
    if reading is not None:
        meta["reading"] = reading
    print(write_outputs(meta, runs, Path(args.out)))


if __name__ == "__main__":
    main()
