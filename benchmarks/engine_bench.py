"""Evolution-engine overhead: ask+tell, ours against DEvol's operators, in one run.

One generation of a generational GA = tell the fitness of the current generation, then ask for
the next one (selection, crossover, mutation, elitism). The genome layout is DEvol's MNIST
space (``GenomeSchema.devol()``: 6 conv / 4 dense slots, 52 positions). Timed in the same run,
interleaved round by round, reported as medians over rounds with their range:

  ours_ga_key:   pytorch_devol.evolution.GeneticAlgorithm with ``key=schema.key`` (duplicate
                 avoidance on the canonical genome): exactly what ``Search`` runs;
  ours_ga:       the same without a key (the engine alone, validation in ``tell`` included);
  ours_re_*:     RegularizedEvolution with ``key=schema.key`` (a whole population asked and
                 told as one batch; one genome at a time, the asynchronous-worker pattern);
  devol:         DEvol's own operators re-written here on Python lists exactly as devol.py and
                 genome_handler.py run them (``_Population`` min-max scaling, roulette
                 ``select()`` scanning the members, ``randint`` crossover, per-genome
                 ``mutate`` with ``np.random.choice``), minus the layer-specific rules;
  devol_bisect:  the same per-genome Python with ``select()`` as a binary search on
                 cumulative scores: what per-genome Python can do at best.

Two settings:
  devol_setting: DEvol's own, population 50, a whole search of 20 generations (all its asks
                 and tells; the training it drives is not timed here);
  large:         population 10,000 (default), one generation per round, where DEvol's O(P^2)
                 roulette dominates.

    python benchmarks/engine_bench.py                       # about a minute on 2 cores
    python benchmarks/engine_bench.py --population 1000 --rounds 9

Writes benchmarks/results/engine.json and engine.md (use --out-dir; the page is
``engine_report.py``'s).
"""

from __future__ import annotations

import argparse
import bisect
import json
import platform
import random
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.common import (  # noqa: E402
    code_state,
    cpu_name,
    loadavg,
    now,
    ratio_verdict,
    spread,
)
from benchmarks.engine_report import write_markdown  # noqa: E402
from pytorch_devol.evolution import GeneticAlgorithm, RegularizedEvolution  # noqa: E402
from pytorch_devol.schema import GenomeSchema  # noqa: E402
from pytorch_devol.search.strategies import ga_options  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--population", type=int, default=10_000, help="the large setting")
    p.add_argument("--rounds", type=int, default=5,
                   help="interleaved rounds of the large setting (each runs DEvol's O(P^2) "
                        "generation once: ~8 s at 10,000)")
    p.add_argument("--devol-population", type=int, default=50)
    p.add_argument("--devol-generations", type=int, default=20)
    p.add_argument("--devol-rounds", type=int, default=21,
                   help="interleaved whole searches in DEvol's setting")
    p.add_argument("--single-steps", type=int, default=500,
                   help="one-genome ask+tell steps of RegularizedEvolution per round")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    return p.parse_args(argv)


# --- DEvol's operators, per genome, on Python lists (the baseline) ---------------------------


class DevolPopulation:
    """devol.py's ``_Population``: min-max scaled scores, unsorted ``get_best``, linear
    ``select``."""

    def __init__(self, members: list[list[int]], fitnesses: np.ndarray, rng: random.Random,
                 fast_select: bool = False) -> None:
        self.members = members
        self.rand = rng
        scores = fitnesses - fitnesses.min()
        if scores.max() > 0:
            scores /= scores.max()
        self.scores = scores
        self.s_fit = sum(self.scores)
        self.fast_select = fast_select
        if fast_select:
            self.cum = list(np.cumsum(self.scores))

    def __len__(self) -> int:
        return len(self.members)

    def get_best(self, n: int) -> list[list[int]]:
        combined = [(self.members[i], self.scores[i]) for i in range(len(self.members))]
        sorted(combined, key=(lambda x: x[1]), reverse=True)  # DEvol drops the result
        return [x[0] for x in combined[:n]]

    def select(self) -> list[int]:
        dart = self.rand.uniform(0, self.s_fit)
        if self.fast_select:
            return self.members[min(bisect.bisect_left(self.cum, dart), len(self.members) - 1)]
        sum_fits = 0
        for i in range(len(self.members)):
            sum_fits += self.scores[i]
            if sum_fits >= dart:
                return self.members[i]
        return self.members[-1]


class DevolOperators:
    """devol.py's ``_reproduce``/``_crossover``/``_mutate`` and GenomeHandler.mutate (generic
    positions: a random allele of the position, no layer-activity rules)."""

    def __init__(self, cardinalities: list[int], seed: int) -> None:
        self.cards = cardinalities
        self.rand = random.Random(seed)
        self.np_random = np.random.RandomState(seed)

    def crossover(self, genome1: list[int], genome2: list[int]) -> list[int]:
        cross_ind = self.rand.randint(0, len(genome1))
        return genome1[:cross_ind] + genome2[cross_ind:]

    def mutate(self, genome: list[int], generation: int) -> list[int]:
        num_mutations = self.np_random.choice(max(3, generation // 4))
        for _ in range(num_mutations):
            index = self.np_random.choice(list(range(1, len(genome))))
            genome[index] = self.np_random.choice(list(range(self.cards[index])))
        return genome

    def reproduce(self, pop: DevolPopulation, gen: int) -> list[list[int]]:
        members = []
        for _ in range(int(len(pop) * 0.95)):
            members.append(self.crossover(pop.select(), pop.select()))
        members += pop.get_best(len(pop) - int(len(pop) * 0.95))
        for imem, mem in enumerate(members):
            members[imem] = self.mutate(mem, gen)
        return members


# --- timing ---------------------------------------------------------------------------------


class GAGenerations:
    """A GA whose generations are timed one at a time (tell the last, ask the next)."""

    def __init__(self, make: Callable[[], Any], fitness: Callable[[np.ndarray], np.ndarray]):
        self.ga, self.fitness = make(), fitness
        self.genomes = self.ga.ask()  # the random initial population, not timed

    def step(self) -> dict[str, float]:
        f = self.fitness(self.genomes)
        t0 = time.perf_counter()
        self.ga.tell(self.genomes, f)
        t1 = time.perf_counter()
        self.genomes = self.ga.ask()
        t2 = time.perf_counter()
        return {"total": t2 - t0, "tell": t1 - t0, "ask": t2 - t1}


class DevolGenerations:
    """DEvol's per-genome operators, one generation at a time."""

    def __init__(self, cards: list[int], pop: int, seed: int, fast_select: bool) -> None:
        self.ops, self.pop, self.fast = DevolOperators(cards, seed), pop, fast_select
        rng = np.random.default_rng(seed)
        self.members = [[int(rng.integers(c)) for c in cards] for _ in range(pop)]
        self.rng, self.gen = rng, 0

    def step(self) -> dict[str, float]:
        self.gen += 1
        f = self.rng.random(self.pop)
        t0 = time.perf_counter()
        population = DevolPopulation(self.members, f, self.ops.rand, self.fast)
        t1 = time.perf_counter()
        self.members = self.ops.reproduce(population, self.gen)
        t2 = time.perf_counter()
        assert len(self.members) == self.pop
        return {"total": t2 - t0, "tell": t1 - t0, "ask": t2 - t1}


class REBatch:
    def __init__(self, cards: np.ndarray, pop: int, key: Any, seed: int,
                 fitness: Callable[[np.ndarray], np.ndarray]) -> None:
        self.re = RegularizedEvolution(cards, pop, sample_size=25, seed=seed, key=key)
        self.pop, self.fitness = pop, fitness
        g = self.re.ask(pop)
        self.re.tell(g, fitness(g))  # the initial population, not timed

    def step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        g = self.re.ask(self.pop)
        t1 = time.perf_counter()
        self.re.tell(g, self.fitness(g))
        t2 = time.perf_counter()
        return {"total": t2 - t0, "ask": t1 - t0, "tell": t2 - t1}


class RESingle:
    def __init__(self, cards: np.ndarray, pop: int, key: Any, seed: int,
                 fitness: Callable[[np.ndarray], np.ndarray], steps: int) -> None:
        self.re = RegularizedEvolution(cards, pop, sample_size=25, seed=seed, key=key)
        self.fitness, self.steps = fitness, steps
        g = self.re.ask(pop)
        self.re.tell(g, fitness(g))

    def step(self) -> dict[str, float]:
        t0 = time.perf_counter()
        for _ in range(self.steps):
            g = self.re.ask()
            self.re.tell(g, self.fitness(g))
        return {"total": (time.perf_counter() - t0) / self.steps}


def whole_search_ga(cards: np.ndarray, pop: int, generations: int, key: Any, seed: int,
                    fitness: Callable[[np.ndarray], np.ndarray]) -> float:
    """Every ask and tell of a search: the first ask, then (tell, ask) per generation."""
    t0 = time.perf_counter()
    ga = GeneticAlgorithm(cards, pop, seed=seed, key=key, **ga_options({}))  # as Search's
    g = ga.ask()
    for gen in range(generations):
        ga.tell(g, fitness(g))
        if gen + 1 < generations:
            g = ga.ask()
    return time.perf_counter() - t0


def whole_search_devol(cards: list[int], pop: int, generations: int, seed: int) -> float:
    """DEvol's run(): a random first generation, then per generation _Population +
    _reproduce (mutate included); fitness is drawn, not trained."""
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    ops = DevolOperators(cards, seed)
    members = [[ops.np_random.randint(c) for c in cards] for _ in range(pop)]
    for gen in range(1, generations):
        population = DevolPopulation(members, rng.random(pop), ops.rand)
        members = ops.reproduce(population, gen)
    return time.perf_counter() - t0


def machine_info() -> dict[str, Any]:
    return {"date": now(), "platform": platform.platform(), "cpu": cpu_name(),
            "cpu_count": __import__("os").cpu_count(), "python": platform.python_version(),
            "numpy": np.__version__, "code": code_state()}


def time_devol_setting(args: argparse.Namespace, schema: GenomeSchema, cards: np.ndarray,
                       card_list: list[int], fitness: Callable[[np.ndarray], np.ndarray]
                       ) -> dict[str, Any]:
    """DEvol's setting: population 50, a whole 20-generation search, interleaved."""
    small: dict[str, list[float]] = {"ours_ga_key": [], "ours_ga": [], "devol": []}
    for r in range(args.devol_rounds):
        order = list(small)
        order = order[r % 3:] + order[:r % 3]
        for name in order:
            seed = args.seed + r
            if name == "devol":
                t = whole_search_devol(card_list, args.devol_population,
                                       args.devol_generations, seed)
            else:
                t = whole_search_ga(cards, args.devol_population, args.devol_generations,
                                    schema.key if name == "ours_ga_key" else None, seed, fitness)
            small[name].append(t)
    devol_setting = {name: spread(v) for name, v in small.items()}
    ratio = spread(d / o for d, o in zip(small["devol"], small["ours_ga_key"], strict=True))
    devol_setting["devol_vs_ours_ga_key"] = {**ratio, "verdict": ratio_verdict(ratio, "faster")}
    devol_setting["difference_ms_per_search"] = spread(
        1000 * (d - o) for d, o in zip(small["devol"], small["ours_ga_key"], strict=True))
    return devol_setting


def time_large(args: argparse.Namespace, schema: GenomeSchema, cards: np.ndarray,
               card_list: list[int], fitness: Callable[[np.ndarray], np.ndarray]
               ) -> dict[str, Any]:
    """The large population: one generation per round, interleaved."""
    pop = args.population
    makers: dict[str, Callable[[], Any]] = {
        "ours_ga_key": lambda: GAGenerations(
            lambda: GeneticAlgorithm(cards, pop, seed=args.seed, key=schema.key,
                                     **ga_options({})), fitness),
        "ours_ga": lambda: GAGenerations(
            lambda: GeneticAlgorithm(cards, pop, seed=args.seed, **ga_options({})), fitness),
        "ours_re_batch": lambda: REBatch(cards, pop, schema.key, args.seed, fitness),
        "ours_re_single": lambda: RESingle(cards, min(pop, 100), schema.key, args.seed, fitness,
                                           args.single_steps),
        "devol_bisect": lambda: DevolGenerations(card_list, pop, args.seed, True),
        "devol": lambda: DevolGenerations(card_list, pop, args.seed, False),
    }
    runners = {name: make() for name, make in makers.items()}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(args.rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].append(runners[name].step())
        print(f"large round {r}: " + ", ".join(
            f"{n} {samples[n][-1]['total'] * 1000:.1f} ms" for n in names), flush=True)
    large: dict[str, Any] = {}
    for name, rows in samples.items():
        large[name] = {part: spread(x[part] for x in rows) for part in rows[0]}
    for name in ("ours_ga", "devol_bisect", "devol"):
        ratio = spread(x["total"] / y["total"]
                       for x, y in zip(samples[name], samples["ours_ga_key"], strict=True))
        large[f"{name}_vs_ours_ga_key"] = {
            **ratio, "verdict": ratio_verdict(ratio, "slower", "faster")}
    return large


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    schema = GenomeSchema.devol()
    cards = np.asarray(schema.cardinalities, dtype=np.int64)
    card_list = [int(c) for c in cards]
    fit_rng = np.random.default_rng(args.seed + 1)

    def fitness(g: np.ndarray) -> np.ndarray:
        return fit_rng.random(g.shape[0])

    started = time.perf_counter()
    load_start = loadavg()
    pop = args.population
    devol_setting = time_devol_setting(args, schema, cards, card_list, fitness)
    print("DEvol setting", json.dumps({k: v.get("median") for k, v in devol_setting.items()}),
          flush=True)
    large = time_large(args, schema, cards, card_list, fitness)

    report = {
        "benchmark": "engine", "command": shlex.join(["python", "benchmarks/engine_bench.py",
                                                      *argv]),
        "machine": {**machine_info(), "loadavg_at_start": load_start,
                    "loadavg_at_end": loadavg()},
        "config": {"space": "GenomeSchema.devol() (6 conv / 4 dense, 256 filters, 1024 nodes)",
                   "length": len(card_list), "cardinalities": card_list,
                   "population": pop, "rounds": args.rounds,
                   "devol_population": args.devol_population,
                   "devol_generations": args.devol_generations,
                   "devol_rounds": args.devol_rounds, "single_steps": args.single_steps,
                   "re_sample_size": 25, "re_single_population": min(pop, 100),
                   "seed": args.seed},
        "devol_setting": devol_setting, "large": large,
        "wall_s": round(time.perf_counter() - started, 1),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "engine.json").write_text(json.dumps(report, indent=1) + "\n")
    write_markdown(args.out_dir / "engine.md", report)
    print(f"wrote {args.out_dir / 'engine.json'} and engine.md")
    return report


if __name__ == "__main__":
    main()
