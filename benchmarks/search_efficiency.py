"""Which search finds a better network for the same compute?

Every arm gets the same data (a Fashion-MNIST subset), the same search space (a small
``GenomeSchema.devol``), the same trainer (``TrainConfig(patience=None)``, the same full budget
of E epochs per network, a genome's training seed ``candidate_seed(seed, canonical key)`` in
every arm) and the same budget of cumulative training epochs B (by default the cost of the
full-fidelity GA's G generations x P candidates x E epochs). Each arm runs until it has spent B
epochs (the record that reaches B is the last one counted) or its candidate cap:

* ``ga``: DEvol's generational GA at full fidelity, ``Search(strategy="ga")``;
* ``ga_sh``: the same GA with ``fidelity=SuccessiveHalving(min_epochs=1, eta)``;
* ``re``: regularized (aging) evolution at full fidelity, ``strategy="regularized"`` with
  ``Search``'s default ``sample_size`` (P // 4, at least 2);
* ``re_asha``: regularized evolution with ``fidelity=ASHA(min_epochs=1, eta)``;
* ``random``: random search at full fidelity (an ask/tell strategy that asks uniformly random
  genomes, as in ``multi_objective.py``);
* ``ga_inherit``, ``ga_sh_inherit``: ``ga`` and ``ga_sh`` with ``inherit_weights=True``: each
  new candidate starts from the trained weights of the pool member it shares the most
  parameters with (heredity, ``pytorch_devol.search.donors``);
* ``optuna``: Optuna's ``TPESampler(seed=s)`` with ``HyperbandPruner(min_resource=1,
  max_resource=E, reduction_factor=eta)`` through Optuna's own API, one categorical parameter per
  genome position; each trial trains its genome epoch by epoch (``Trainer.evaluate(...,
  epochs=e, resume=state, keep_state=True)``), reports the validation accuracy after each epoch
  and stops when the pruner says so.

Why E = 3 and eta = 3 (rungs of 1 and 3 epochs): on this shared 2-core CPU about a hundred
epochs per search is what 6 arms x 5 seeds allow in half an hour, and E = 3 still gives the
full-fidelity GA 36 networks (4 generations of 9). Two rungs are the fewest that make
successive halving mean anything; eta = 3 is the common default (Hyperband, ASHA, Optuna's
reduction_factor) and with P = 9 successive halving promotes exactly a third of a generation
(``max(1, P // eta)`` = 3): a generation costs 9 x 1 + 3 x 2 = 15 epochs instead of 27, so
GA + SH sees about 1.8x as many candidates. With min_resource 1 and max_resource 3, Optuna's
Hyperband pruner has the same rungs (one bracket 1 -> 3, one that never prunes). E = 4 with
eta = 2 (rungs 1, 2, 4) would save at most 2x per generation against 1.8x here, at a third more
cost per full network and fewer networks in the budget.

A re-proposed genome costs nothing but counts as a candidate (``Search``'s cache; the Optuna
objective keeps its own: the per-epoch results of every genome it trained). An Optuna trial
that re-proposes a genome pruned earlier replays the cached epochs and, when it must go
further, trains that genome again from scratch (a trial keeps its network's state only while
it runs), paying those epochs again.

Reported per arm: the held-out test accuracy of the incumbent (the candidate with the best
validation accuracy among those trained at the full budget E; Optuna: among completed trials)
against cumulative training epochs and cumulative training seconds, median and IQR over seeds;
the fraction of the full GA's epochs each arm needed to first reach the GA's final median test
accuracy; the incumbent's test accuracy at equal compute (the largest epoch count every arm of
a seed reached, paired by seed); candidates, trainings, epochs, seconds and saved training
state. Arms are interleaved within each seed, in an order rotated by seed.

Defaults: 1,500 Fashion-MNIST training images (1,200 train, 300 validation), 1,000 test
images, P = 9, E = 3, eta = 3, a budget of 4 x 9 x 3 = 108 epochs per arm, 5 seeds.

    python benchmarks/search_efficiency.py        # the recorded run: ~20-30 min on a 2-core CPU
    python benchmarks/search_efficiency.py --seeds 1 --limit 300 --test 200 --epochs 2 --eta 2 \
        --population 4 --budget-epochs 12 --arms ga,ga_sh,optuna --out /tmp/se   # smoke, ~20 s
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    CANDIDATE_CAP,
    RESULTS,
    Budget,
    BudgetSpent,
    Provenance,
    default_data_root,
    loadavg,
    run_until_spent,
    settings_of,
)
from benchmarks.efficiency_report import ARM_LABELS, arm_counts, write_outputs  # noqa: E402
from benchmarks.random_search import RandomStrategy  # noqa: E402
from pytorch_devol import ASHA, GenomeSchema, Search, SuccessiveHalving, load_dataset  # noqa: E402
from pytorch_devol.search.loop import candidate_seed  # noqa: E402
from pytorch_devol.training import TrainConfig, Trainer  # noqa: E402

SPACE = dict(max_conv_layers=2, max_dense_layers=2, max_filters=32, max_dense_nodes=128)
ARMS = ("ga", "ga_sh", "re", "re_asha", "random", "optuna", "ga_inherit", "ga_sh_inherit")
FIDELITY_ARMS = ("ga_sh", "re_asha")

# -- the arms ------------------------------------------------------------------------------------

def _event(record: dict[str, Any]) -> dict[str, Any]:
    """One log record as the fields the analysis needs, the same for every arm.

    ``epochs`` / ``seconds``: training this record cost (0 for a cached copy); ``final``:
    trained at the full budget (only those can be the incumbent). Records written before the
    fidelity fields existed have one rung, are final, and cost their network's epochs."""
    m = record["metrics"]
    cached = bool(record["cached"])
    ok = m.get("status") == "ok"
    if "rung_epochs" in record:
        epochs, seconds = int(record["rung_epochs"]), float(record.get("rung_seconds") or 0.0)
        final, rung = bool(record.get("final", True)), int(record.get("rung") or 0)
    else:
        epochs = 0 if cached else int(m.get("epochs") or 0)
        seconds = 0.0 if cached else float(m.get("train_seconds") or 0.0)
        final, rung = True, 0
    return {"index": int(record["index"]), "rung": rung, "cached": cached, "epochs": epochs,
            "seconds": round(seconds, 4), "final": final, "status": m.get("status"),
            "network_epochs": int(m.get("epochs") or 0),
            "val_accuracy": m.get("val_accuracy") if ok else None,
            "test_accuracy": m.get("test_accuracy") if ok else None}


def _dir_bytes(path: Path) -> tuple[int, int]:
    """(bytes, files) of the regular files under ``path`` (0, 0 when it does not exist)."""
    if not path.is_dir():
        return 0, 0
    sizes = []
    for p in path.rglob("*"):
        try:
            if p.is_file():
                sizes.append(p.stat().st_size)
        except OSError:  # removed while we looked
            pass
    return sum(sizes), len(sizes)


def run_search(arm: str, schema: GenomeSchema, data, seed: int, args: argparse.Namespace,
               budget: int) -> dict[str, Any]:
    """One Search arm until it has spent ``budget`` training epochs (or its candidate cap)."""
    inherit = arm.endswith("_inherit")
    arm = arm.removesuffix("_inherit")
    strategy: Any = {"ga": "ga", "ga_sh": "ga", "re": "regularized",
                     "re_asha": "regularized"}.get(arm)
    if arm == "random":
        strategy = RandomStrategy(schema.cardinalities, args.population, seed)
    extra: dict[str, Any] = {}
    if arm in FIDELITY_ARMS:
        kind = SuccessiveHalving if arm == "ga_sh" else ASHA
        extra["fidelity"] = kind(min_epochs=args.min_epochs, eta=args.eta)
    cap = CANDIDATE_CAP * budget
    events: list[dict[str, Any]] = []
    state = {"spent": 0, "peak_bytes": 0, "peak_files": 0, "donor_bytes": 0, "donor_files": 0}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        states, donors = run_dir / "states", run_dir / "donors"

        def on_record(record: dict[str, Any]) -> None:
            events.append(_event(record))
            state["spent"] += events[-1]["epochs"]
            if arm in FIDELITY_ARMS:
                size, files = _dir_bytes(states)
                state["peak_bytes"] = max(state["peak_bytes"], size)
                state["peak_files"] = max(state["peak_files"], files)
            if inherit:
                size, files = _dir_bytes(donors)
                state["donor_bytes"] = max(state["donor_bytes"], size)
                state["donor_files"] = max(state["donor_files"], files)
            if state["spent"] >= budget:
                raise BudgetSpent

        search = Search(schema, data, generations=math.ceil(cap / args.population),
                        population_size=args.population, epochs=args.epochs, seed=seed,
                        strategy=strategy, train_config=TrainConfig(patience=None),
                        verbose=False, progress_bar=False, run_dir=run_dir,
                        on_record=on_record, inherit_weights=inherit, **extra)
        stop = run_until_spent(search.run)
        end_bytes, end_files = _dir_bytes(states)
    options = dict(search.strategy_options)
    if getattr(search.strategy, "sample_size", None) is not None:
        options["sample_size"] = int(search.strategy.sample_size)
    return {"events": events, "stop": stop, "strategy": search.strategy_name,
            "strategy_options": options,
            "fidelity": repr(extra.get("fidelity")) if extra else None,
            "state_bytes": {"where": "run_dir/states on disk",
                            "peak": state["peak_bytes"], "peak_files": state["peak_files"],
                            "at_end": end_bytes, "files_at_end": end_files}
            if arm in FIDELITY_ARMS else None,
            "donor_bytes": {"where": "run_dir/donors on disk", "peak": state["donor_bytes"],
                            "peak_files": state["donor_files"]} if inherit else None}


class OptunaObjective:
    """Optuna's objective: trains a trial's genome epoch by epoch with continuation, reports
    the validation accuracy after each epoch, prunes when Hyperband says so, and logs every
    epoch as a record (raising BudgetSpent once the epochs spent reach ``budget``)."""

    def __init__(self, schema: GenomeSchema, trainer: Trainer, seed: int, top: int,
                 budget: int) -> None:
        self.schema, self.trainer, self.seed, self.top, self.budget = \
            schema, trainer, seed, top, budget
        self.names = list(schema.column_names)
        self.cards = [int(c) for c in schema.cardinalities]
        # key -> per-epoch results so far: [{"val", "test", "status"}, ...] (epoch e at e - 1)
        self.cache: dict[tuple[int, ...], list[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.spent = {"epochs": 0, "peak_state_bytes": 0, "retrained": 0}

    def log(self, trial: Any, e: int, step: dict[str, Any], epochs: int, seconds: float,
            cached: bool) -> None:
        ok = step["status"] == "ok"
        self.events.append({"index": trial.number, "rung": e - 1, "cached": cached,
                            "epochs": epochs, "seconds": round(seconds, 4),
                            "final": e == self.top and ok, "status": step["status"],
                            "network_epochs": e,
                            "val_accuracy": step["val"] if ok else None,
                            "test_accuracy": step["test"] if ok else None})
        self.spent["epochs"] += epochs
        if self.spent["epochs"] >= self.budget:
            raise BudgetSpent

    def train_to(self, genome: list[int], e: int, train_seed: int, live: Any,
                 done_seconds: float) -> tuple[dict[str, Any], int, float, Any, float]:
        """Train ``genome`` on to epoch ``e`` (from ``live``, or from scratch when it is None
        and e > 1: a genome pruned earlier); returns (step, epochs paid, seconds paid, the
        paused network, its cumulative seconds)."""
        if live is None and e > 1:
            self.spent["retrained"] += 1
            cost, done_seconds = e, 0.0
        else:
            cost = 1
        result = self.trainer.evaluate(self.schema, genome, seed=train_seed, epochs=e,
                                       resume=live, keep_state=True)
        seconds = float(result.train_seconds) - done_seconds  # cumulative in result
        if not math.isfinite(seconds):
            seconds = 0.0
        done_seconds = float(result.train_seconds) if result.ok else 0.0
        live = result.train_state
        if live is not None:
            self.spent["peak_state_bytes"] = max(self.spent["peak_state_bytes"], live.nbytes())
        step = {"val": result.val_accuracy if result.ok else None,
                "test": result.test_accuracy if result.ok else None, "status": result.status}
        if result.ok and result.stop_reason not in (None, "paused", "max_epochs"):
            raise RuntimeError(f"unexpected stop {result.stop_reason!r} with patience=None")
        return step, cost, seconds, live, done_seconds

    def __call__(self, trial: Any) -> float:
        import optuna

        genome = [trial.suggest_categorical(name, list(range(card)))
                  for name, card in zip(self.names, self.cards, strict=True)]
        key = self.schema.key(genome)
        steps = self.cache.setdefault(key, [])
        train_seed = candidate_seed(self.seed, key)
        live, done_seconds = None, 0.0   # this trial's paused network, its seconds so far
        for e in range(1, self.top + 1):
            if len(steps) >= e:          # trained before (this genome, this many epochs)
                step, cost, seconds, cached = steps[e - 1], 0, 0.0, True
                live = None
            else:
                step, cost, seconds, live, done_seconds = self.train_to(
                    genome, e, train_seed, live, done_seconds)
                steps.append(step)
                cached = False
            self.log(trial, e, step, cost, seconds, cached)
            if step["status"] != "ok":
                return float("nan")      # Optuna marks the trial failed
            trial.report(step["val"], e)
            if e < self.top and trial.should_prune():
                raise optuna.TrialPruned()
        return steps[self.top - 1]["val"]


def run_optuna(schema: GenomeSchema, trainer: Trainer, seed: int, args: argparse.Namespace,
               budget: int) -> dict[str, Any]:
    """Optuna TPE + Hyperband, each trial trained epoch by epoch with continuation."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    objective = OptunaObjective(schema, trainer, seed, args.epochs, budget)
    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.HyperbandPruner(min_resource=args.min_epochs,
                                            max_resource=args.epochs,
                                            reduction_factor=args.eta)
    # A fixed study name: Hyperband assigns brackets by hashing it with the trial number.
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner,
                                study_name=f"search_efficiency_{seed}")
    stop = run_until_spent(lambda: study.optimize(
        objective, n_trials=CANDIDATE_CAP * budget, catch=(), gc_after_trial=False,
        show_progress_bar=False))
    # the trial the budget stopped shows as failed in Optuna: name it for what it is
    states = [t.state.name for t in study.trials[:-1 if stop == "budget" else None]]
    if stop == "budget":
        states.append("STOPPED_BY_BUDGET")
    return {"events": objective.events, "stop": stop, "strategy": "optuna TPE + Hyperband",
            "trial_states": {s: states.count(s) for s in sorted(set(states))},
            "retrained_from_scratch": objective.spent["retrained"],
            "state_bytes": {"where": "in memory, one trial's paused network at a time",
                            "peak": objective.spent["peak_state_bytes"]}}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="fashion-mnist")
    parser.add_argument("--limit", type=int, default=1500, help="training images (+ val)")
    parser.add_argument("--test", type=int, default=1000, help="held-out test images")
    parser.add_argument("--val-fraction", type=float, default=0.2,
                        help="share of the training images held out for validation")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--population", type=int, default=9)
    parser.add_argument("--generations", type=int, default=4,
                        help="the full GA's generations: the budget is G x P x E epochs")
    parser.add_argument("--epochs", type=int, default=3, help="full budget of one network")
    parser.add_argument("--min-epochs", type=int, default=1, help="lowest rung")
    parser.add_argument("--eta", type=int, default=3, help="reduction factor of SH/ASHA/Hyperband")
    parser.add_argument("--budget-epochs", type=int, default=None,
                        help="cumulative training epochs per arm (default G x P x E)")
    parser.add_argument("--arms", default=",".join(ARMS),
                        help=f"comma-separated subset of {','.join(ARMS)}")
    parser.add_argument("--max-minutes", type=float, default=40,
                        help="start no new seed after this many minutes")
    parser.add_argument("--out", default=str(RESULTS / "search_efficiency_cpu"),
                        help="output path without suffix (.json, .md, .png are written)")
    parser.add_argument("--reading", default=None,
                        help="file with a paragraph reading the result, put in the report")
    parser.add_argument("--from-json", default=None,
                        help="re-render the report and plot of a saved run (trains nothing)")
    args = parser.parse_args(argv)
    if args.from_json:
        return args
    args.arm_list = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    arms = args.arm_list
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms or len(set(arms)) != len(arms):
        parser.error(f"--arms: choose distinct arms from {', '.join(ARMS)} (got {args.arms!r})")
    if args.min_epochs < 1 or args.eta < 2 or args.epochs < args.min_epochs:
        parser.error("need 1 <= --min-epochs <= --epochs and --eta >= 2")
    return args


def rerender(path: str, out: Path, reading: str | None) -> None:
    """Re-render the report and plot of a saved run (trains nothing)."""
    saved = json.loads(Path(path).read_text())
    meta = {k: v for k, v in saved.items()
            if k not in ("summary", "verdicts", "runs", "plot_note")}
    if reading is not None:
        meta["reading"] = reading
    print(write_outputs(meta, saved["runs"], out))


def run_seeds(arms: tuple[str, ...], schema: GenomeSchema, data: Any, trainer: Trainer,
              args: argparse.Namespace, budget: int, wall: Budget
              ) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
    """Every arm once per seed, interleaved in an order rotated by seed; a seed not started
    before the budget of minutes is spent is skipped (and returned as such)."""
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    skipped = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if wall.spent():
            skipped.append(seed)
            continue
        order = arms[seed % len(arms):] + arms[:seed % len(arms)]
        for arm in order:
            start = time.perf_counter()
            run = run_optuna(schema, trainer, seed, args, budget) if arm == "optuna" else \
                run_search(arm, schema, data, seed, args, budget)
            runs[arm].append({"seed": seed, "order": list(order),
                              "wall_seconds": time.perf_counter() - start,
                              "loadavg_after": loadavg(), **run})
            c = arm_counts(run)
            print(f"seed {seed} {arm}: {c['candidates']} candidates, {c['trainings']} "
                  f"trainings, {c['epochs']} epochs, {c['seconds']:.0f} s training, "
                  f"{runs[arm][-1]['wall_seconds']:.0f} s wall", flush=True)
    return runs, skipped


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    reading = Path(args.reading).read_text() if args.reading else None
    if args.from_json:
        rerender(args.from_json, Path(args.out), reading)
        return
    arms = args.arm_list
    budget = args.budget_epochs or args.generations * args.population * args.epochs
    optuna_version = None
    if "optuna" in arms:
        import optuna
        optuna_version = optuna.__version__

    wall = Budget(args.max_minutes)
    provenance = Provenance("search_efficiency.py", argv)  # the code imported is measured
    data = load_dataset(args.dataset, root=default_data_root(), limit=(args.limit, args.test),
                        val_fraction=args.val_fraction)
    schema = GenomeSchema.devol(input_shape=data.input_shape, n_classes=10, **SPACE)
    trainer = Trainer(data, TrainConfig(patience=None, epochs=args.epochs))
    runs, skipped = run_seeds(arms, schema, data, trainer, args, budget, wall)
    if not runs[arms[0]]:
        raise SystemExit("no seed ran (--max-minutes too small?)")
    notes = []
    if skipped:
        notes.append(f"Seeds {skipped} were skipped: the run passed --max-minutes "
                     f"{args.max_minutes} before they started.")
    notes.append("Optuna trials that re-propose a genome pruned earlier replay its cached "
                 "epochs, then train it again from scratch to go further (a trial keeps its "
                 "network's paused state only while it runs); those epochs count.")
    meta = {**provenance.header(trainer.device, "2 cores shared with other jobs: seconds are "
                                "noisy", optuna=optuna_version),
            "data": data.summary() if hasattr(data, "summary") else str(data),
            "space_genes": len(schema),
            "setting": {**settings_of(args, "reading", "from_json", "arm_list"),
                        "arms": list(arms), "budget": budget, "space": SPACE,
                        "arm_labels": {a: ARM_LABELS[a] for a in arms},
                        "train_config": "TrainConfig(patience=None), batch 128",
                        "candidate_cap": f"{CANDIDATE_CAP} x budget",
                        "skipped_seeds_by_time": skipped},
            "notes": notes}
    if reading is not None:
        meta["reading"] = reading
    print(write_outputs(meta, runs, Path(args.out)))


if __name__ == "__main__":
    main()
