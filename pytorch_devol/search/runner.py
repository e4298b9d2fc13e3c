"""``Search``: what a user runs. Validates everything, writes the run directory, drives the loop.

    result = Search(schema, load_dataset("digits"), generations=5, population_size=10).run()
    result = Search.resume("runs/x").run()
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import attrs
import numpy as np

from .._checks import check_int
from ..evolution import Strategy, WarmStartable, takes_violation
from ..schema import GenomeSchema, dry_run
from ..training import METRICS, DataSplits, TrainConfig, as_splits, check_compatible
from ..training.config import check_training_genes
from ..training.saved import check_same_data, load_saved_data
from .callbacks import CallbackList, RunInfo
from .donors import heredity_rule, saved_heredity
from .evaluators import Evaluator, SerialEvaluator
from .fidelity import (
    Fidelity,
    check_budgets,
    default_fidelity,
    entry_rung_of,
    fidelity_config,
    make_fidelity,
    pareto_order_of,
    saved_fidelity,
)
from .lock import RunLock
from .loop import SearchLoop
from .objectives import (
    STRUCTURAL,
    Constraint,
    Objective,
    ObjectiveMeter,
    objectives_and_constraints,
    objectives_config,
    objectives_from_config,
)
from .progress import Reporter
from .result import SearchResult
from .settings import Settings
from .store import RunStore
from .strategies import (
    STRATEGIES,
    StrategyContext,
    check_options,
    ga_options,
    make_strategy,
    saved_options,
)
from .warm import WarmStart
from .warm import warm_start as make_warm_start

__all__ = ["STRATEGIES", "Search"]

FORMAT_VERSION = 1


def _passed_again(settings: Settings, run_dir: Any, fitness: Any, strategy: Any) -> None:
    """Refuse a resume without the code the run named (a run directory never holds code)."""
    if settings.fitness and fitness is None:
        raise ValueError(f"{run_dir} used a fitness= transform: pass it again "
                         "(Search.resume(run_dir, fitness=...))")
    if strategy is None and settings.strategy not in STRATEGIES:
        raise ValueError(f"{run_dir} used a strategy object of your own: pass it again "
                         "(Search.resume(run_dir, strategy=...)); its saved state is "
                         "restored into it")


class Search:
    """A genetic architecture search over ``schema`` on ``data``.

    ``data``: what ``load_dataset`` returns, or DEvol's tuple ``((x_train, y_train), (x_test,
    y_test)[, (x_val, y_val)])`` (numpy or torch, NCHW or NHWC, integer or one-hot labels).
    ``strategy``: "ga" (DEvol's generational GA, the default), "regularized" (aging evolution,
    asynchronous) or any ask/tell ``Strategy`` object. ``evaluator``: in-process by default; see
    ``ProcessPoolEvaluator`` and ``RayEvaluator``. ``metric``: "accuracy" (maximised) or "loss"
    (minimised; "mae" for regression) on the validation part. ``fitness``: DEvol's optional
    transform of the scaled scores used by the GA's selection. ``epochs``, ``device`` and
    ``seed`` override the fields of ``train_config`` (batch size, patience, precision, ...).
    ``circuit_breaker``: stop the search when its first N trained candidates all fail with the
    same unexpected exception from the same place (a bug, not bad luck); default one
    population, 0 turns it off. Before anything trains, every allele value of every gene is
    built once (``pytorch_devol.schema.dry_run``), so a bug in a gene is raised here.
    ``callbacks``: objects told of the search's progress (``on_start``, ``on_record``,
    ``on_generation``, ``on_end``; see `Callback`, `TensorBoardCallback`, `MLflowCallback`);
    ``on_record=f`` is short for a callback whose ``on_record`` is ``f``. An exception raised in
    a callback stops the search.
    ``fidelity``: "auto" (the default, `default_fidelity`: "sh" with a generational strategy,
    "asha" with a steady-state one, None with objectives or constraints, with one epoch or a
    training gene that sets the epochs), None (every candidate trains for ``epochs``, as in
    DEvol), "sh" (`SuccessiveHalving`, with the GA), "asha" (`ASHA`, with regularized
    evolution), "hyperband" (`Hyperband`'s brackets, with either), or any `Fidelity`
    scheduler: candidates train a few epochs first and only the best continue, from where
    they paused, up to ``epochs`` (see ``pytorch_devol.search.fidelity``). With
    ``objectives`` too, each rung promotes by non-dominated rank (then MOASHA's epsilon-net
    order, or the scheduler's ``pareto="crowding"``), and only fully trained candidates make the
    Pareto front. A constraint on ``params``, ``flops`` or ``latency_ms`` is checked before
    training: a candidate that breaks it is logged "infeasible" and never trained.
    ``inherit_weights`` (default True; False: random weights, as in DEvol): each new candidate
    starts from the trained weights of a donor, the one of the population's best it can copy
    the most parameters from, slot by slot (see ``pytorch_devol.search.donors``); True uses
    the slot rule ``DEFAULT_HEREDITY``, or name one of ``HEREDITY_RULES`` ("genes", "shapes",
    "slices"; ``schema.heredity``); its record says which (``parent``), how many parameters
    (``inherited_params``) and how many epochs those weights had seen (``lineage_epochs``).
    ``warm_start``: an earlier run directory or a list of genomes; the first generation (a
    steady-state strategy's first asks) begins with them: a run's best distinct genomes, half
    the population rounded up (``search.warm``), which must come from the same schema; with
    ``inherit_weights`` and the same data they also start from their trained weights there
    (``parent``, ``parent_run``); other data gives the genomes only, with a warning.
    """

    def __init__(self, schema: GenomeSchema, data: Any, generations: int = 20,
                 population_size: int = 50, epochs: int | None = None, seed: int = 0,
                 run_dir: str | os.PathLike[str] | None = None, device: str | None = None,
                 strategy: str | Strategy | None = None, evaluator: Evaluator | None = None,
                 metric: str | None = None, fitness: Callable[..., Any] | None = None,
                 train_config: TrainConfig | None = None, strategy_options: dict | None = None,
                 verbose: bool = True, progress_bar: bool | None = None,
                 circuit_breaker: int | None = None,
                 on_record: Callable[[dict[str, Any]], None] | None = None,
                 callbacks: Sequence[Any] | None = None,
                 objectives: Sequence[str | Objective] | None = None,
                 constraints: Sequence[str | Constraint] | None = None,
                 latency_batch: int = 1, fidelity: str | Fidelity | None = "auto",
                 inherit_weights: bool | str = True,
                 warm_start: str | os.PathLike[str] | Sequence[Any] | None = None):
        if not isinstance(schema, GenomeSchema):
            raise TypeError(f"schema must be a GenomeSchema, got {type(schema).__name__}")
        self.schema = schema
        self.generations = check_int(generations, "generations")
        self.population_size = check_int(population_size, "population_size")
        self.seed = seed = check_int(seed, "seed", 0)
        self.metric = metric or ("accuracy" if schema.task == "classification" else "loss")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        if (self.metric == "accuracy") != (schema.task == "classification") and \
                self.metric != "loss":
            raise ValueError(f"metric {self.metric!r} does not apply to {schema.task}")
        self.maximize = self.metric == "accuracy"
        overrides = {"seed": seed}
        if epochs is not None:
            overrides["epochs"] = epochs
        if device is not None:
            overrides["device"] = device
        self.train_config = attrs.evolve(train_config or TrainConfig(), **overrides)
        self.train_config.resolve_device()  # CUDA asked for but absent: say so now
        self.data = self._check_data(data)
        dry_run(schema, self.train_config.with_overrides)
        check_training_genes(self.schema, self.train_config)
        self.circuit_breaker = check_int(circuit_breaker, "circuit_breaker", 0, allow_none=True)
        self.callbacks = CallbackList(callbacks, on_record)
        self.fitness = fitness
        self.strategy_options = check_options(strategy_options)
        self.objectives, self.constraints = objectives_and_constraints(
            objectives, constraints, self.metric, schema.task)
        self.latency_batch = check_int(latency_batch, "latency_batch")
        self.strategy_name, self.strategy = self._make_strategy(strategy)
        self.fidelity = self._check_fidelity(fidelity)
        self.heredity = heredity_rule(inherit_weights)
        self.inherit_weights = self.heredity is not None
        self.evaluator = self._check_evaluator(evaluator)
        self.run_dir = Path(run_dir) if run_dir is not None else Path(
            "runs", _dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
        self.verbose, self.progress_bar = verbose, progress_bar
        self._resuming = False
        self._moved: dict[str, Any] | None = None  # the data's new spec, found on resume
        self._unpassed: list[str] = []  # saved callbacks not passed to the resume
        self._use_warm_start(make_warm_start(warm_start, schema, self.data,
                                             self.population_size, self.run_dir,
                                             inherit_weights))

    # -- validation ---------------------------------------------------------------------------
    @staticmethod
    def _check_evaluator(evaluator: Evaluator | None) -> Evaluator:
        """The evaluator (in-process by default), checked for the protocol's members."""
        evaluator = evaluator if evaluator is not None else SerialEvaluator()
        for method in ("open", "submit", "next_result", "close"):
            if not callable(getattr(evaluator, method, None)):
                raise TypeError(f"evaluator lacks {method}(); see pytorch_devol.search.Evaluator")
        capacity = getattr(evaluator, "capacity", None)
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise TypeError("evaluator.capacity must be an int >= 1 (how many candidates it "
                            f"trains at once), got {capacity!r}; see "
                            "pytorch_devol.search.Evaluator")
        return evaluator

    def _check_data(self, data: Any) -> DataSplits:
        splits = as_splits(data, input_shape=self.schema.input_shape, task=self.schema.task,
                           n_outputs=self.schema.n_outputs, seed=self.seed)
        check_compatible(splits, self.schema)
        return splits

    def _check_fidelity(self, fidelity: Any) -> Fidelity | None:
        """The scheduler ("auto": `default_fidelity`), checked against the strategy and the
        epochs before any training."""
        steady = bool(self.strategy.steady_state)
        sets_epochs = "epochs" in dict(self.schema.training_overrides(
            np.zeros(len(self.schema), np.int64)))
        if isinstance(fidelity, str) and fidelity == "auto":
            fidelity = None if sets_epochs or self.train_config.epochs < 2 else \
                default_fidelity(steady, self.objectives is not None)
        fidelity = make_fidelity(fidelity, asynchronous=steady)
        if fidelity is None:
            return None
        if fidelity.asynchronous != steady:
            kind = "an asynchronous" if fidelity.asynchronous else "a synchronous"
            needs = "steady-state" if fidelity.asynchronous else "generational"
            raise ValueError(f"{type(fidelity).__name__} is {kind} scheduler, for {needs} "
                             f"strategies; {self.strategy_name!r} is not one: use "
                             f"fidelity={'asha' if steady else 'sh'!r}, or "
                             f"fidelity='hyperband' (Hyperband(asynchronous={steady}))")
        top = len(check_budgets(fidelity, self.train_config.epochs)) - 1
        pareto_order_of(fidelity)  # a scheduler's own Pareto order, checked now
        for index in range(self.population_size):  # and its entry rungs (`EntryRung`)
            entry_rung_of(fidelity, index, top)
        if sets_epochs:
            raise ValueError("a training gene of this schema sets epochs, which the fidelity "
                             "scheduler decides: use fidelity=None with it")
        return fidelity

    def _use_warm_start(self, warm: WarmStart | None) -> None:
        """Seed the strategy's first asks with the warm-start genomes (new run or resume)."""
        self.warm_start = warm
        if warm is None:
            return
        if not isinstance(self.strategy, WarmStartable):
            raise TypeError("warm_start= needs a strategy with warm_start(genomes) (every "
                            "BaseStrategy has it); see pytorch_devol.evolution.WarmStartable")
        self.strategy.warm_start(warm.vectors())

    def _make_strategy(self, strategy: Any) -> tuple[str, Any]:
        if strategy == "ga" or (strategy is None and self.objectives is None):
            self.strategy_options = check_options(ga_options(self.strategy_options))
        context = StrategyContext(self.schema.cardinalities, self.population_size, self.seed,
                                  self.maximize, self.schema.key, self.objectives, self.fitness)
        name, made = make_strategy(strategy, context, self.strategy_options)
        if self.constraints and not takes_violation(made):
            raise TypeError(f"constraints need a strategy whose tell takes violation= (see "
                            f"pytorch_devol.evolution.takes_violation); {name} "
                            f"{type(made).__name__}'s does not")
        return name, made

    # -- saving and resuming ------------------------------------------------------------------
    @property
    def settings(self) -> Settings:
        """This search's settings, as ``config.json`` saves them."""
        return Settings(
            **{name: getattr(self, name) for name in Settings.keywords()},
            maximize=self.maximize, strategy=self.strategy_name,
            strategy_options=self.strategy_options,
            fitness=getattr(self.fitness, "__qualname__", "custom") if self.fitness else None,
            **objectives_config(self.objectives, self.constraints, self.latency_batch),
            fidelity=fidelity_config(self.fidelity, self.train_config.epochs),
            inherit_weights=self.heredity or False,
            callbacks=self.callbacks.descriptions())

    def _config(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "schema": self.schema.to_spec(),
            "data": {"spec": self.data.spec, "fingerprint": self.data.fingerprint(),
                     "summary": self.data.summary()},
            "search": self.settings.to_dict(),
            "train": attrs.asdict(self.train_config),
            "warm_start": None if self.warm_start is None else self.warm_start.to_config(),
        }

    @classmethod
    def resume(cls, run_dir: str | os.PathLike[str], data: Any = None, *,
               strategy: Strategy | None = None, evaluator: Evaluator | None = None,
               fitness: Callable[..., Any] | None = None, verbose: bool = True,
               progress_bar: bool | None = None, device: str | None = None,
               gene_modules: Iterable[str] | None = None,
               data_root: str | os.PathLike[str] | None = None,
               on_record: Callable[[dict[str, Any]], None] | None = None,
               callbacks: Sequence[Any] | None = None,
               objectives: Sequence[str | Objective] | None = None,
               fidelity: Fidelity | None = None) -> Search:
        """Continue an interrupted search from its run directory, with its saved settings.

        The run directory is data, never code: its gene types must be built in or defined by
        modules this program has imported; ``gene_modules`` names modules you trust to define
        the others (imported first). Built-in datasets and data files (``load_data``) reload
        from the saved spec (checked against an allow-list); ``data_root``: where they are now,
        if they moved (a built-in dataset's root; a data file's new path, or the folder now
        holding it); pass ``data`` for your own arrays. Either way the data must be the same:
        its fingerprint is checked. A custom strategy, fitness function, objective or fidelity
        scheduler must be passed again, as must ``callbacks``; the evaluator may differ (e.g.
        more workers).
        """
        config = RunStore(run_dir).config()
        if not isinstance(config, dict) or config.get("format") != FORMAT_VERSION:
            raise ValueError(f"{run_dir}: unsupported run format "
                             f"{config.get('format') if isinstance(config, dict) else None!r}")
        s, saved = Settings.from_dict(config["search"], run_dir), config["data"]
        schema = GenomeSchema.from_spec(config["schema"], gene_modules)
        if data is None:
            if saved["spec"] is None:
                raise ValueError(f"{run_dir} was run on user arrays: pass the same data "
                                 "to Search.resume(run_dir, data=...)")
            data = load_saved_data(saved["spec"], data_root)
        _passed_again(s, run_dir, fitness, strategy)
        saved_objectives, constraints, latency_batch = objectives_from_config(s.to_dict(),
                                                                              objectives)
        name = s.strategy
        train = {**config["train"], **({} if device is None else {"device": device})}
        search = cls(schema, data, **s.search_keywords(), run_dir=run_dir,
                     strategy=strategy or name, evaluator=evaluator, fitness=fitness,
                     train_config=TrainConfig(**train),
                     strategy_options=saved_options(name, s.strategy_options),
                     verbose=verbose, progress_bar=progress_bar, on_record=on_record,
                     callbacks=callbacks, objectives=saved_objectives, constraints=constraints,
                     latency_batch=latency_batch,
                     fidelity=saved_fidelity(s.fidelity, fidelity, run_dir),
                     inherit_weights=saved_heredity(s.inherit_weights))
        check_same_data(search.data, saved, run_dir)
        search._use_warm_start(WarmStart.from_config(config.get("warm_start"), schema))
        search._moved = search.data.spec if search.data.spec != saved["spec"] else None
        search._unpassed = search.callbacks.missing(s.callbacks)
        search._resuming = True
        return search

    # -- running ------------------------------------------------------------------------------
    def run(self) -> SearchResult:
        """Run (or continue) the search to the end and return its result. The run directory
        is locked while it runs (``search.lock``): a second writer is refused."""
        store = RunStore(self.run_dir)
        if not self._resuming:
            store.check_new()
            store.path.mkdir(parents=True, exist_ok=True)
        with RunLock(store.path):
            if not self._resuming:
                store.create(self._config())
            elif self._moved is not None:  # the data moved: later resumes and retrains find it
                store.set_data_spec(self._moved)
                self._moved = None
            return self._run(store)

    def _run(self, store: RunStore) -> SearchResult:
        reporter = Reporter(self.metric, self.verbose, progress_bar=self.progress_bar)
        meter = None if self.objectives is None else ObjectiveMeter(
            self.schema, self.objectives, self.constraints,
            str(self.train_config.resolve_device()), self.latency_batch)
        loop = SearchLoop(self.schema, self.strategy, self.evaluator, store, self.settings,
                          reporter, epochs=self.train_config.epochs, callbacks=self.callbacks,
                          meter=meter, fidelity=self.fidelity, warm=self.warm_start)
        loop.restore()
        if self._resuming:
            reporter.message(f"Resuming {self.run_dir}: {len(loop.records)} record(s) logged, "
                             f"{len(loop.state.pending)} in flight")
            for line in self._unpassed:
                reporter.message(f"note: this search was logged by {line} before; pass it "
                                 "again to go on logging there")
        elif self.warm_start is not None:
            reporter.message(f"Warm start: {self.warm_start.describe()}")
        self.callbacks.start(RunInfo(Path(self.run_dir), store.config(), self._resuming))
        try:
            self.evaluator.open(self.schema, self.data, self.train_config)
            loop.run()
        finally:
            self.evaluator.close()
            reporter.close()
        result = SearchResult(self.run_dir, self.schema, self.metric, self.maximize,
                              objectives_config(self.objectives, (), 1).get("objectives"))
        best = result.best_fitness
        reporter.message(f"Best {self.metric}: {best:.4f}" if not math.isnan(best) else
                         "No candidate trained successfully")
        skipped = result.counts()["infeasible"]
        if skipped:
            reporter.message(f"Skipped {skipped} infeasible candidates, never trained: their "
                             "untrained networks broke " + ", ".join(
                str(c) for c in self.constraints if c.quantity in STRUCTURAL))
        reporter.message(f"Results in {self.run_dir}/ (results.csv, best.pt, best_genome.json)")
        self._resuming = True  # a second run() continues rather than recreating
        self.callbacks.end(result)
        return result
