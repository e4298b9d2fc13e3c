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
import inspect
import json
import math
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.machine import (  # noqa: E402
    Budget,
    code_state,
    cpu_name,
    default_data_root,
    loadavg,
    now,
)
from pytorch_devol import GenomeSchema, Search, load_dataset  # noqa: E402
from pytorch_devol.search.loop import candidate_seed  # noqa: E402
from pytorch_devol.training import TrainConfig, Trainer  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SPACE = dict(max_conv_layers=2, max_dense_layers=2, max_filters=32, max_dense_nodes=128)
ARMS = ("ga", "ga_sh", "re", "re_asha", "random", "optuna")
ARM_LABELS = {"ga": "GA (full fidelity)", "ga_sh": "GA + successive halving",
              "re": "regularized evolution", "re_asha": "regularized evolution + ASHA",
              "random": "random search", "optuna": "Optuna TPE + Hyperband"}
FIDELITY_ARMS = ("ga_sh", "re_asha")
# Incumbent test accuracy is reported at these fractions of the full GA's epoch budget.
FRACTIONS = (1 / 9, 1 / 6, 1 / 3, 1 / 2, 2 / 3, 1.0)
# Further paired comparisons at equal epochs (reported, no target attached).
EXTRA_PAIRS = (("ga_sh", "ga"), ("re_asha", "re"), ("ga_sh", "random"), ("re_asha", "optuna"),
               ("ga", "random"))
CANDIDATE_CAP = 3  # at most CANDIDATE_CAP x B candidates per arm (cached copies cost nothing)


class BudgetSpent(Exception):
    """Raised from a record callback once an arm has spent its epoch budget: stops the arm."""


class RandomStrategy:
    """Random search as an ask/tell strategy: every genome uniformly random, index by index.

    Generational (asks a whole population, ignores what it is told), no duplicate avoidance
    (a repeated network is a cached copy in the search: no training, but it uses a candidate
    slot, as it would for a user)."""

    steady_state = False
    maximize = True  # validation accuracy; unused by random search

    def __init__(self, cardinalities: Any, population_size: int, seed: int) -> None:
        self.cardinalities = np.asarray(cardinalities, dtype=np.int64)
        self.population_size = population_size
        self.rng = np.random.default_rng(seed)
        self.n_told = 0

    def ask(self, n: int | None = None) -> np.ndarray:
        n = self.population_size if n is None else min(n, self.population_size)
        return self.rng.integers(0, self.cardinalities, size=(n, self.cardinalities.size),
                                 dtype=np.int64)

    def tell(self, genomes: Any, fitness: Any, violation: Any = None) -> None:
        self.n_told += len(np.asarray(genomes))

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "RandomStrategy", "rng": self.rng.bit_generator.state,
                "n_told": self.n_told}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("kind") != "RandomStrategy":
            raise ValueError(f"state is for {state.get('kind')!r}, not 'RandomStrategy'")
        self.rng.bit_generator.state = state["rng"]
        self.n_told = int(state["n_told"])


# -- what is available ---------------------------------------------------------------------------

def fidelity_api() -> tuple[Any, Any] | None:
    """(SuccessiveHalving, ASHA) when this checkout's Search takes ``fidelity=``, else None."""
    try:
        from pytorch_devol.search import ASHA, SuccessiveHalving
    except ImportError:
        return None
    if "fidelity" not in inspect.signature(Search.__init__).parameters:
        return None
    return SuccessiveHalving, ASHA


def continuation_api() -> bool:
    """Whether ``Trainer.evaluate`` can pause and continue a network (epochs/resume/keep_state)."""
    params = inspect.signature(Trainer.evaluate).parameters
    return {"epochs", "resume", "keep_state"} <= set(params)


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
    strategy: Any = {"ga": "ga", "ga_sh": "ga", "re": "regularized",
                     "re_asha": "regularized"}.get(arm)
    if arm == "random":
        strategy = RandomStrategy(schema.cardinalities, args.population, seed)
    extra: dict[str, Any] = {}
    if arm in FIDELITY_ARMS:
        sh, asha = fidelity_api()  # checked before anything ran
        kind = sh if arm == "ga_sh" else asha
        extra["fidelity"] = kind(min_epochs=args.min_epochs, eta=args.eta)
    cap = CANDIDATE_CAP * budget
    events: list[dict[str, Any]] = []
    state = {"spent": 0, "peak_bytes": 0, "peak_files": 0}
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        states = run_dir / "states"

        def on_record(record: dict[str, Any]) -> None:
            events.append(_event(record))
            state["spent"] += events[-1]["epochs"]
            if arm in FIDELITY_ARMS:
                size, files = _dir_bytes(states)
                state["peak_bytes"] = max(state["peak_bytes"], size)
                state["peak_files"] = max(state["peak_files"], files)
            if state["spent"] >= budget:
                raise BudgetSpent

        search = Search(schema, data, generations=math.ceil(cap / args.population),
                        population_size=args.population, epochs=args.epochs, seed=seed,
                        strategy=strategy, train_config=TrainConfig(patience=None),
                        verbose=False, progress_bar=False, run_dir=run_dir,
                        on_record=on_record, **extra)
        try:
            search.run()
            stop = "candidate cap"
        except BudgetSpent:
            stop = "budget"
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
            if arm in FIDELITY_ARMS else None}


def run_optuna(schema: GenomeSchema, trainer: Trainer, seed: int, args: argparse.Namespace,
               budget: int) -> dict[str, Any]:
    """Optuna TPE + Hyperband, each trial trained epoch by epoch with continuation."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    names, cards = list(schema.column_names), [int(c) for c in schema.cardinalities]
    top = args.epochs
    # key -> per-epoch results so far: [{"val", "test", "status"}, ...] (epoch e at e - 1)
    cache: dict[tuple[int, ...], list[dict[str, Any]]] = {}
    events: list[dict[str, Any]] = []
    spent = {"epochs": 0, "peak_state_bytes": 0, "retrained": 0}

    def log(trial, e: int, step: dict[str, Any], epochs: int, seconds: float,
            cached: bool) -> None:
        ok = step["status"] == "ok"
        events.append({"index": trial.number, "rung": e - 1, "cached": cached,
                       "epochs": epochs, "seconds": round(seconds, 4),
                       "final": e == top and ok, "status": step["status"],
                       "network_epochs": e,
                       "val_accuracy": step["val"] if ok else None,
                       "test_accuracy": step["test"] if ok else None})
        spent["epochs"] += epochs
        if spent["epochs"] >= budget:
            raise BudgetSpent

    def objective(trial):
        genome = [trial.suggest_categorical(name, list(range(card)))
                  for name, card in zip(names, cards, strict=True)]
        key = schema.key(genome)
        steps = cache.setdefault(key, [])
        train_seed = candidate_seed(seed, key)
        live, done_seconds = None, 0.0   # this trial's paused network, its seconds so far
        for e in range(1, top + 1):
            if len(steps) >= e:          # trained before (this genome, this many epochs)
                step, cost, seconds, cached = steps[e - 1], 0, 0.0, True
                live = None
            else:
                if live is None and e > 1:   # pruned earlier: from scratch up to epoch e
                    spent["retrained"] += 1
                    cost, done_seconds = e, 0.0
                else:
                    cost = 1
                result = trainer.evaluate(schema, genome, seed=train_seed, epochs=e,
                                          resume=live, keep_state=True)
                seconds = float(result.train_seconds) - done_seconds  # cumulative in result
                if not math.isfinite(seconds):
                    seconds = 0.0
                done_seconds = float(result.train_seconds) if result.ok else 0.0
                live = result.train_state
                if live is not None:
                    spent["peak_state_bytes"] = max(spent["peak_state_bytes"], live.nbytes())
                step = {"val": result.val_accuracy if result.ok else None,
                        "test": result.test_accuracy if result.ok else None,
                        "status": result.status}
                steps.append(step)
                cached = False
                if result.ok and result.stop_reason not in (None, "paused", "max_epochs"):
                    raise RuntimeError(f"unexpected stop {result.stop_reason!r} with "
                                       "patience=None")
            log(trial, e, step, cost, seconds, cached)
            if step["status"] != "ok":
                return float("nan")      # Optuna marks the trial failed
            trial.report(step["val"], e)
            if e < top and trial.should_prune():
                raise optuna.TrialPruned()
        return steps[top - 1]["val"]

    sampler = optuna.samplers.TPESampler(seed=seed)
    pruner = optuna.pruners.HyperbandPruner(min_resource=args.min_epochs, max_resource=top,
                                            reduction_factor=args.eta)
    # A fixed study name: Hyperband assigns brackets by hashing it with the trial number.
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner,
                                study_name=f"search_efficiency_{seed}")
    try:
        study.optimize(objective, n_trials=CANDIDATE_CAP * budget, catch=(),
                       gc_after_trial=False, show_progress_bar=False)
        stop = "candidate cap"
    except BudgetSpent:
        stop = "budget"
    # the trial the budget stopped shows as failed in Optuna: name it for what it is
    states = [t.state.name for t in study.trials[:-1 if stop == "budget" else None]]
    if stop == "budget":
        states.append("STOPPED_BY_BUDGET")
    return {"events": events, "stop": stop, "strategy": "optuna TPE + Hyperband",
            "trial_states": {s: states.count(s) for s in sorted(set(states))},
            "retrained_from_scratch": spent["retrained"],
            "state_bytes": {"where": "in memory, one trial's paused network at a time",
                            "peak": spent["peak_state_bytes"]}}


# -- analysis ------------------------------------------------------------------------------------

def trace(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """After each record: cumulative epochs and seconds, and the incumbent's accuracies."""
    out, epochs, seconds = [], 0, 0.0
    best_val, inc_test, inc_index = -math.inf, None, None
    for ev in events:
        epochs += ev["epochs"]
        seconds += ev["seconds"]
        if ev["final"] and ev["val_accuracy"] is not None and ev["val_accuracy"] > best_val:
            best_val, inc_test, inc_index = ev["val_accuracy"], ev["test_accuracy"], ev["index"]
        out.append({"epochs": epochs, "seconds": seconds, "test": inc_test,
                    "val": None if inc_index is None else best_val, "incumbent": inc_index})
    return out


def at(tr: list[dict[str, Any]], budget: float, key: str = "epochs") -> float:
    """Incumbent test accuracy among the records finished within ``budget`` (NaN: none yet)."""
    value = math.nan
    for p in tr:
        if p[key] > budget + 1e-9:
            break
        value = math.nan if p["test"] is None else p["test"]
    return value


def first_reach(tr: list[dict[str, Any]], target: float, key: str = "epochs") -> float:
    """Cumulative ``key`` when the incumbent's test accuracy first reached ``target`` (inf:
    never)."""
    for p in tr:
        if p["test"] is not None and p["test"] >= target - 1e-12:
            return float(p[key])
    return math.inf


def quartiles(values: list[float]) -> dict[str, Any]:
    """Median and IQR; with inf among the values (not reached) they may be inf; NaN: not
    defined for every seed."""
    vals = [float(v) for v in values]
    if not vals or any(math.isnan(v) for v in vals):
        return {"median": None, "iqr": [None, None], "values": _json_vals(vals)}
    # inf (not reached) as a huge stand-in, so that a quartile between a finite value and a
    # "not reached" one is "not reached" too, never NaN
    big = 1e300
    q = np.percentile([min(v, big) for v in vals], [25, 50, 75])
    q1, med, q3 = (math.inf if x >= big / 4 else float(x) for x in q)
    return {"median": _finite(med), "iqr": [_finite(q1), _finite(q3)],
            "values": _json_vals(vals)}


def _finite(x: float) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else ("inf" if x > 0 else "nan")


def _json_vals(vals: list[float]) -> list[Any]:
    return [_finite(v) if not math.isnan(v) else None for v in vals]


def _num(x: Any) -> float:
    return math.inf if x == "inf" else (math.nan if x is None or x == "nan" else float(x))


def grid_curve(traces: list[list[dict[str, Any]]], key: str, points: np.ndarray
               ) -> list[dict[str, Any]]:
    """Median and IQR over seeds of the incumbent's test accuracy at each budget in
    ``points`` (a seed whose run ended earlier keeps its last incumbent)."""
    out = []
    for x in points:
        vals = [at(tr, float(x), key) for tr in traces]
        have = [v for v in vals if not math.isnan(v)]
        row = {key: float(x), "seeds_with_incumbent": len(have)}
        if len(have) == len(vals):
            q1, med, q3 = np.percentile(have, [25, 50, 75])
            row.update(median=float(med), iqr=[float(q1), float(q3)])
        else:
            row.update(median=None, iqr=[None, None])
        out.append(row)
    return out


def arm_counts(run: dict[str, Any]) -> dict[str, Any]:
    ev = run["events"]
    return {"candidates": len({e["index"] for e in ev}),
            "trainings": sum(1 for e in ev if e["epochs"] > 0),
            "cached_records": sum(1 for e in ev if e["cached"]),
            "records": len(ev),
            "final_records": sum(1 for e in ev if e["final"]),
            "failed_records": sum(1 for e in ev if e["status"] != "ok"),
            "epochs": sum(e["epochs"] for e in ev),
            "seconds": sum(e["seconds"] for e in ev)}


def analyse(runs: dict[str, list[dict[str, Any]]], budget: int) -> dict[str, Any]:
    arms = list(runs)
    n = len(runs[arms[0]])
    traces = {arm: [trace(r["events"]) for r in runs[arm]] for arm in arms}
    final = {arm: [tr[-1]["test"] if tr and tr[-1]["test"] is not None else math.nan
                   for tr in traces[arm]] for arm in arms}
    max_epochs = max(tr[-1]["epochs"] for trs in traces.values() for tr in trs if tr)
    max_seconds = max(tr[-1]["seconds"] for trs in traces.values() for tr in trs if tr)
    epoch_grid = np.arange(0, max_epochs + 1)
    second_grid = np.linspace(0.0, max_seconds, 61)
    out: dict[str, Any] = {"budget_epochs": budget, "arms": {}}
    reference = "ga" if "ga" in runs else None
    if reference is not None:
        target = float(np.median(final["ga"])) if not any(map(math.isnan, final["ga"])) \
            else math.nan
        ga_epochs = [tr[-1]["epochs"] for tr in traces["ga"]]
        ga_seconds = [tr[-1]["seconds"] for tr in traces["ga"]]
        out["target_accuracy"] = {"what": "median over seeds of the full GA's final "
                                          "incumbent test accuracy", "value": target}
    for arm in arms:
        counts = [arm_counts(r) for r in runs[arm]]
        entry: dict[str, Any] = {
            "final_test_accuracy": quartiles(final[arm]),
            "final_val_accuracy": quartiles([
                tr[-1]["val"] if tr and tr[-1]["val"] is not None else math.nan
                for tr in traces[arm]]),
            "counts": {k: quartiles([c[k] for c in counts]) for k in counts[0]},
            "at_fraction_of_budget": [
                {"fraction": f, "epochs": f * budget,
                 "test_accuracy": quartiles([at(tr, f * budget) for tr in traces[arm]])}
                for f in FRACTIONS],
            "curve_epochs": grid_curve(traces[arm], "epochs", epoch_grid),
            "curve_seconds": grid_curve(traces[arm], "seconds", second_grid)}
        if reference is not None and not math.isnan(target):
            reach_e = [first_reach(tr, target) for tr in traces[arm]]
            reach_s = [first_reach(tr, target, "seconds") for tr in traces[arm]]
            entry["reach_target"] = {
                "epochs": quartiles(reach_e),
                "fraction_of_ga_epochs": quartiles([r / g for r, g in
                                                    zip(reach_e, ga_epochs, strict=True)]),
                "fraction_of_ga_seconds": quartiles([r / g if g > 0 else math.inf for r, g in
                                                     zip(reach_s, ga_seconds, strict=True)]),
                "seeds_reached": sum(math.isfinite(r) for r in reach_e), "seeds": n}
        out["arms"][arm] = entry
    # Equal compute, paired by seed: the largest epoch count every arm of that seed reached.
    paired = []
    for i in range(n):
        cut = min(traces[arm][i][-1]["epochs"] if traces[arm][i] else 0 for arm in arms)
        paired.append({"seed": runs[arms[0]][i]["seed"], "epochs": cut,
                       **{arm: _finite(at(traces[arm][i], cut)) if not math.isnan(
                           at(traces[arm][i], cut)) else None for arm in arms}})
    out["equal_epochs"] = paired
    out["equal_epochs_summary"] = {arm: quartiles([_num(p[arm]) for p in paired])
                                   for arm in arms}
    return out


def paired_verdict(paired: list[dict[str, Any]], ours: str, other: str) -> dict[str, Any]:
    diffs = [_num(p[ours]) - _num(p[other]) for p in paired]
    if any(math.isnan(d) for d in diffs):
        return {"ours": ours, "other": other, "diffs": _json_vals(diffs), "met": None,
                "note": "an arm had no incumbent at the equal-compute cut in some seed"}
    wins = sum(1 for d in diffs if d >= 0)
    return {"ours": ours, "other": other, "diffs": diffs, "median_diff": float(np.median(diffs)),
            "ours_at_least_as_good_in": wins, "seeds": len(diffs),
            "met": bool(np.median(diffs) >= 0),
            # a claim of a difference only when every seed lies on the same side of 0
            "consistent": len(diffs) > 1 and (min(diffs) > 0 or max(diffs) < 0)}


def verdicts(summary: dict[str, Any], runs: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    arms = summary["arms"]
    if "ga" in runs and "ga_sh" in runs and "reach_target" in arms["ga_sh"]:
        frac = _num(arms["ga_sh"]["reach_target"]["fraction_of_ga_epochs"]["median"])
        out["sh_speedup"] = {
            "target": "GA + SH reaches the full GA's final median test accuracy with at most "
                      "1/3 of the GA's epochs (median over seeds)",
            "median_fraction": _finite(frac) if not math.isnan(frac) else None,
            "met": bool(frac <= 1 / 3 + 1e-9)}
    else:
        out["sh_speedup"] = {"met": None, "note": "needs the ga and ga_sh arms"}
    if "ga_sh" in runs and "optuna" in runs:
        out["sh_vs_optuna"] = {
            "target": "at equal compute GA + SH is at least as good as Optuna TPE + Hyperband "
                      "(median paired difference >= 0)",
            **paired_verdict(summary["equal_epochs"], "ga_sh", "optuna")}
    else:
        out["sh_vs_optuna"] = {"met": None, "note": "needs the ga_sh and optuna arms"}
    for ours, other in EXTRA_PAIRS:
        if ours in runs and other in runs:
            out[f"{ours}_vs_{other}"] = paired_verdict(summary["equal_epochs"], ours, other)
    return out


def plot(summary: dict[str, Any], path: Path) -> str | None:
    """The incumbent's test accuracy against epochs and seconds; a note when matplotlib is
    missing (then no PNG)."""
    try:
        import matplotlib
    except ImportError:
        return "matplotlib is not installed: no plot"
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.6), sharey=True)
    for ax, key, label in ((axes[0], "epochs", "cumulative training epochs"),
                           (axes[1], "seconds", "cumulative training seconds")):
        for arm, s in summary["arms"].items():
            pts = [p for p in s[f"curve_{key}"] if p["median"] is not None]
            if not pts:
                continue
            x = [p[key] for p in pts]
            line, = ax.step(x, [p["median"] for p in pts], where="post",
                            label=ARM_LABELS[arm])
            ax.fill_between(x, [p["iqr"][0] for p in pts], [p["iqr"][1] for p in pts],
                            step="post", alpha=0.1, color=line.get_color())
        target = (summary.get("target_accuracy") or {}).get("value")
        if target is not None and math.isfinite(target):
            ax.axhline(target, color="grey", ls="--", lw=1,
                       label="full GA's final median" if key == "epochs" else None)
        if key == "epochs":
            ax.axvline(summary["budget_epochs"] / 3, color="grey", ls=":", lw=1,
                       label="1/3 of the budget")
        ax.set_xlabel(label + (" (median and IQR over seeds)"))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("incumbent's test accuracy")
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Best network found (chosen on validation, full budget) vs training compute")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return None


# -- report --------------------------------------------------------------------------------------

def _q(s: dict[str, Any], fmt: str = "{:.4f}") -> str:
    def one(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, str):
            return "not reached" if v == "inf" else v
        return fmt.format(v)
    if s.get("median") is None:
        return "-"
    return f"{one(s['median'])} [{one(s['iqr'][0])}, {one(s['iqr'][1])}]"


def _code_change(start: dict[str, Any], end: dict[str, Any]) -> str:
    if end == start:
        return ""
    if end["pytorch_devol_sha256"] == start["pytorch_devol_sha256"]:
        return (f"; HEAD moved to {end['git_head']} during the run, pytorch_devol/ itself "
                "unchanged")
    return (f"; pytorch_devol/ changed during the run (sha256 {end['pytorch_devol_sha256']} "
            "at the end); the modules measured were imported at the start")


def _met(v: dict[str, Any]) -> str:
    return {True: "**met**", False: "**not met**", None: "**not evaluated**"}[v.get("met")]


def report(meta: dict[str, Any], summary: dict[str, Any], runs: dict[str, Any],
           verdict: dict[str, Any], out: Path) -> str:
    s = meta["setting"]
    arms = list(runs)
    seeds = [r["seed"] for r in runs[arms[0]]]
    budget = summary["budget_epochs"]
    lines = [f"# Search efficiency at equal compute (cpu, {meta['date']})", "",
             f"{meta['machine']['cpu']}; {meta['machine']['threads']} torch threads; torch "
             f"{meta['versions']['torch']}, optuna {meta['versions']['optuna']}, Python "
             f"{meta['versions']['python']}; load average {meta['machine']['loadavg_before']} "
             f"before, {meta['machine']['loadavg_after']} after; {meta['wall_seconds']:.0f} s "
             f"in all. Code: git {meta['code']['git_head']}"
             + (" + uncommitted changes in pytorch_devol/"
                if meta['code']['pytorch_devol_uncommitted_changes'] else "")
             + f" (pytorch_devol sha256 {meta['code']['pytorch_devol_sha256']}, at the start"
             + _code_change(meta["code"], meta.get("code_at_end", meta["code"])) + ").", "",
             f"Command: `{meta['command']}`", "",
             f"{meta['data']}. Space: `GenomeSchema.devol(max_conv_layers="
             f"{SPACE['max_conv_layers']}, max_dense_layers={SPACE['max_dense_layers']}, "
             f"max_filters={SPACE['max_filters']}, max_dense_nodes={SPACE['max_dense_nodes']})`"
             f" ({meta['space_genes']} genes). Every network trains at most {s['epochs']} epochs "
             f"(`TrainConfig(patience=None)`, batch 128, the same learning-rate schedule length "
             f"for a paused and continued network), with the training seed "
             f"`candidate_seed(seed, canonical key)` in every arm. Every arm has the same budget "
             f"of {budget} cumulative training epochs (the full GA's {s['generations']} "
             f"generations x {s['population']} x {s['epochs']} epochs"
             + ("" if budget == s['generations'] * s['population'] * s['epochs']
                else ", overridden by --budget-epochs")
             + f") and runs until it has spent it; population {s['population']}. Fidelity: "
             f"rungs of {s['min_epochs']} x {s['eta']}^k epochs up to {s['epochs']} "
             f"(`SuccessiveHalving` / `ASHA` with min_epochs={s['min_epochs']}, eta={s['eta']};"
             f" Optuna `HyperbandPruner(min_resource={s['min_epochs']}, max_resource="
             f"{s['epochs']}, reduction_factor={s['eta']})`). A genome already trained is a "
             f"cached copy (no epochs, no seconds). {len(seeds)} seeds "
             f"({', '.join(map(str, seeds))}), arms interleaved within each seed, order rotated "
             f"by seed.", "",
             "Incumbent: the candidate with the best validation accuracy among those trained at "
             f"the full {s['epochs']} epochs (Optuna: among completed, unpruned trials); its "
             "held-out test accuracy is what is reported. Epochs and seconds are training only "
             "(`rung_epochs` / `rung_seconds` of the search's records; the Optuna objective's "
             "own count), summed in log order; this machine is shared, so seconds are noisy.",
             "", "## Final and equal-compute accuracy", "",
             "Median [IQR] over seeds. Equal compute: each seed's arms cut at the largest "
             "cumulative epoch count all arms of that seed reached (paired). Trainer calls: "
             "trainings that cost epochs (one per rung reached for the fidelity arms, one per "
             "epoch for Optuna); cached copies: records that cost nothing. Wall seconds: the whole "
             "arm (training, scoring, building models, saving and loading paused states, the "
             "strategy). Training state: what the fidelity arms keep to continue paused "
             "networks.", "",
             "| arm | final test acc | test acc at equal epochs | epochs | train seconds | "
             "wall seconds | candidates | trainer calls | cached copies | training state bytes "
             "(peak) |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    eq = summary["equal_epochs_summary"]
    for arm in arms:
        a = summary["arms"][arm]
        c = a["counts"]
        peaks = [r["state_bytes"]["peak"] for r in runs[arm] if r.get("state_bytes")]
        state = f"{int(np.median(peaks)):,} ({runs[arm][0]['state_bytes']['where']})" \
            if peaks else "-"
        lines.append(f"| {ARM_LABELS[arm]} | {_q(a['final_test_accuracy'])} | {_q(eq[arm])} | "
                     f"{_q(c['epochs'], '{:.0f}')} | {_q(c['seconds'], '{:.0f}')} | "
                     f"{_q(quartiles([r['wall_seconds'] for r in runs[arm]]), '{:.0f}')} | "
                     f"{_q(c['candidates'], '{:.0f}')} | {_q(c['trainings'], '{:.0f}')} | "
                     f"{_q(c['cached_records'], '{:.0f}')} | {state} |")
    target = (summary.get("target_accuracy") or {}).get("value")
    if target is not None:
        lines += ["", "## Speed-up", "",
                  f"Compute each arm needed until its incumbent's test accuracy first reached "
                  f"{target:.4f}, the full GA's final median: as a fraction of that seed's full "
                  "GA epochs (and training seconds), median [IQR] over seeds; a seed that never "
                  "reached it counts as infinitely slow (\"not reached\").", "",
                  "| arm | fraction of GA epochs | fraction of GA seconds | epochs | seeds "
                  "reached |", "| --- | --- | --- | --- | --- |"]
        for arm in arms:
            rt = summary["arms"][arm].get("reach_target")
            if rt is None:
                continue
            lines.append(f"| {ARM_LABELS[arm]} | {_q(rt['fraction_of_ga_epochs'], '{:.3f}')} | "
                         f"{_q(rt['fraction_of_ga_seconds'], '{:.3f}')} | "
                         f"{_q(rt['epochs'], '{:.0f}')} | {rt['seeds_reached']} of "
                         f"{rt['seeds']} |")
    lines += ["", "## Incumbent's test accuracy along the budget", "",
              "Median [IQR] over seeds at these fractions of the budget of "
              f"{budget} epochs (\"-\": some seed had no incumbent yet).", "",
              "| arm | " + " | ".join(f"{f:.2g} ({f * budget:.0f} ep)" for f in FRACTIONS) + " |",
              "| --- " * (len(FRACTIONS) + 1) + "|"]
    for arm in arms:
        lines.append(f"| {ARM_LABELS[arm]} | " + " | ".join(
            _q(p["test_accuracy"]) for p in summary["arms"][arm]["at_fraction_of_budget"])
            + " |")
    lines += ["", f"![incumbent's test accuracy vs compute]({out.with_suffix('.png').name})"
              if not meta.get("plot_note") else f"No plot: {meta['plot_note']}.", "",
              "## Per seed, at equal epochs", "",
              "| seed | epoch budget | " + " | ".join(ARM_LABELS[a] for a in arms) + " |",
              "| --- " * (len(arms) + 2) + "|"]
    for p in summary["equal_epochs"]:
        lines.append(f"| {p['seed']} | {p['epochs']} | " + " | ".join(
            "-" if p[a] is None else f"{_num(p[a]):.4f}" for a in arms) + " |")
    lines += ["", "## Per arm", "",
              "| arm | what ran | stopped by (seeds) | records | final records | failed |",
              "| --- | --- | --- | --- | --- | --- |"]
    for arm in arms:
        r0 = runs[arm][0]
        what = r0.get("fidelity") or ("uniform random genomes" if arm == "random"
                                      else r0.get("strategy"))
        if r0.get("strategy_options"):
            what = f"{what} {r0['strategy_options']}"
        if arm == "optuna":
            totals: dict[str, int] = {}
            for r in runs[arm]:
                for k, v in r["trial_states"].items():
                    totals[k] = totals.get(k, 0) + v
            retrained = sum(r["retrained_from_scratch"] for r in runs[arm])
            what += " (trials, all seeds: " + ", ".join(
                f"{v} {k.lower().replace('_', ' ')}" for k, v in totals.items()) \
                + f"; genomes retrained from scratch: {retrained})"
        stops: dict[str, int] = {}
        for r in runs[arm]:
            stops[r["stop"]] = stops.get(r["stop"], 0) + 1
        c = summary["arms"][arm]["counts"]
        lines.append(f"| {ARM_LABELS[arm]} | {what} | "
                     + ", ".join(f"{k}: {v}" for k, v in stops.items())
                     + f" | {_q(c['records'], '{:.0f}')} | {_q(c['final_records'], '{:.0f}')} | "
                     f"{_q(c['failed_records'], '{:.0f}')} |")
    sp, vo = verdict["sh_speedup"], verdict["sh_vs_optuna"]
    lines += ["", "## Targets", ""]
    if sp.get("met") is None:
        lines.append(f"- GA + SH reaches the full GA's final median accuracy with at most 1/3 "
                     f"of its epochs: {_met(sp)} ({sp['note']}).")
    else:
        frac = sp["median_fraction"]
        lines.append(f"- GA + SH reaches the full GA's final median accuracy with at most 1/3 "
                     f"of its epochs: {_met(sp)} (median fraction "
                     + ("not reached" if frac == "inf" else f"{frac:.3f}") + ").")
    if vo.get("met") is None:
        lines.append(f"- At equal compute GA + SH at least as good as Optuna TPE + Hyperband: "
                     f"{_met(vo)} ({vo['note']}).")
    else:
        lines.append(
            f"- At equal compute GA + SH at least as good as Optuna TPE + Hyperband: {_met(vo)} "
            f"on the median paired difference (GA+SH - Optuna: median {vo['median_diff']:+.4f};"
            f" GA+SH >= Optuna in {vo['ours_at_least_as_good_in']} of {vo['seeds']} seeds; "
            "differences " + ", ".join(f"{d:+.4f}" for d in vo["diffs"]) + "). "
            + ("One seed only: no spread measured." if vo["seeds"] == 1 else
               "Every seed lies on the same side of 0." if vo["consistent"] else
               "The seeds lie on both sides of 0 (or at 0): no measurable difference at this "
               "number of seeds."))
    for name, v in verdict.items():
        if name in ("sh_speedup", "sh_vs_optuna") or v.get("met") is None:
            continue
        lines.append(f"- {ARM_LABELS[v['ours']]} - {ARM_LABELS[v['other']]} at equal epochs: "
                     f"median {v['median_diff']:+.4f}, >= in {v['ours_at_least_as_good_in']} of "
                     f"{v['seeds']} seeds.")
    notes = meta.get("notes") or []
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if meta.get("reading"):
        lines += ["", "## Reading", "", meta["reading"].strip()]
    return "\n".join(lines) + "\n"


def write_outputs(meta: dict[str, Any], runs: dict[str, Any], out: Path) -> str:
    summary = analyse(runs, meta["setting"]["budget"])
    verdict = verdicts(summary, runs)
    out.parent.mkdir(parents=True, exist_ok=True)
    note = plot(summary, out.with_suffix(".png"))
    meta = {**meta, "plot_note": note}
    out.with_suffix(".json").write_text(json.dumps(
        {**meta, "summary": summary, "verdicts": verdict, "runs": runs}, indent=1))
    text = report(meta, summary, runs, verdict, out)
    out.with_suffix(".md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> None:
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
    reading = Path(args.reading).read_text() if args.reading else None
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        meta = {k: v for k, v in saved.items()
                if k not in ("summary", "verdicts", "runs", "plot_note")}
        if reading is not None:
            meta["reading"] = reading
        print(write_outputs(meta, saved["runs"], Path(args.out)))
        return

    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    unknown = sorted(set(arms) - set(ARMS))
    if unknown or not arms or len(set(arms)) != len(arms):
        parser.error(f"--arms: choose distinct arms from {', '.join(ARMS)} (got {args.arms!r})")
    if args.min_epochs < 1 or args.eta < 2 or args.epochs < args.min_epochs:
        parser.error("need 1 <= --min-epochs <= --epochs and --eta >= 2")
    budget = args.budget_epochs or args.generations * args.population * args.epochs
    if set(arms) & set(FIDELITY_ARMS) and fidelity_api() is None:
        parser.error("this checkout's Search has no fidelity= (SuccessiveHalving / ASHA): "
                     "leave out the arms " + ", ".join(FIDELITY_ARMS))
    if "optuna" in arms:
        if not continuation_api():
            parser.error("this checkout's Trainer.evaluate cannot pause and continue a network "
                         "(epochs=, resume=, keep_state=): leave out the optuna arm")
        import optuna
        optuna_version = optuna.__version__
    else:
        optuna_version = None

    wall = Budget(args.max_minutes)
    load_before = loadavg()
    code_before = code_state()  # what was imported; others may edit the tree meanwhile
    data = load_dataset(args.dataset, root=default_data_root(), limit=(args.limit, args.test),
                        val_fraction=args.val_fraction)
    schema = GenomeSchema.devol(input_shape=data.input_shape, n_classes=10, **SPACE)
    trainer = Trainer(data, TrainConfig(patience=None, epochs=args.epochs))
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
    if not runs[arms[0]]:
        raise SystemExit("no seed ran (--max-minutes too small?)")
    setting = {k: v for k, v in vars(args).items() if k not in ("reading", "from_json")}
    notes = []
    if skipped:
        notes.append(f"Seeds {skipped} were skipped: the run passed --max-minutes "
                     f"{args.max_minutes} before they started.")
    notes.append("Optuna trials that re-propose a genome pruned earlier replay its cached "
                 "epochs, then train it again from scratch to go further (a trial keeps its "
                 "network's paused state only while it runs); those epochs count.")
    meta = {"date": now(),
            "command": "python " + " ".join(shlex.quote(a) for a in
                                            ["benchmarks/search_efficiency.py",
                                             *(sys.argv[1:] if argv is None else argv)]),
            "machine": {"cpu": cpu_name(), "threads": torch.get_num_threads(),
                        "platform": platform.platform(), "loadavg_before": load_before,
                        "loadavg_after": loadavg(),
                        "note": "2 cores shared with other jobs: seconds are noisy"},
            "versions": {"python": platform.python_version(), "torch": torch.__version__,
                         "optuna": optuna_version, "numpy": np.__version__},
            "code": code_before, "code_at_end": code_state(), "wall_seconds": wall.elapsed(),
            "data": data.summary() if hasattr(data, "summary") else str(data),
            "space_genes": len(schema),
            "setting": {**setting, "arms": list(arms), "budget": budget, "space": SPACE,
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
