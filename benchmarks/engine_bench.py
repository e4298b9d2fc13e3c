"""Evolution-engine overhead: ask+tell for a large population, ours vs DEvol's operators.

One generation of a generational GA = tell the fitness of the current generation, then ask for
the next one (selection, crossover, mutation, elitism). Timed on the same population, the same
machine and in the same run:

  ours:          pytorch_devol.evolution.GeneticAlgorithm (vectorised numpy, validation in
                 ``tell`` included), also with a ``key`` (duplicate avoidance) and
                 RegularizedEvolution (a whole population asked and told as one batch, and
                 one genome at a time, the asynchronous-worker pattern);
  devol:         DEvol's own operators re-written here on Python lists exactly as devol.py and
                 genome_handler.py run them (``_Population`` min-max scaling, roulette
                 ``select()`` scanning the members, ``randint`` crossover, per-genome
                 ``mutate`` with ``np.random.choice``), minus the layer-specific rules;
  devol_bisect:  the same per-genome Python, with ``select()`` replaced by a binary search on
                 precomputed cumulative scores: what per-genome Python can do at best.

    python benchmarks/engine_bench.py                     # population 10,000, L = 60
    python benchmarks/engine_bench.py --population 1000 --repeats 50

Writes benchmarks/results/engine.json and engine.md (use --out-dir).
"""

from __future__ import annotations

import argparse
import bisect
import datetime as _dt
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pytorch_devol.evolution import GeneticAlgorithm, RegularizedEvolution  # noqa: E402

# DEvol-like alleles per position (conv slot: active, filters, batch norm, activation,
# dropout, max pooling), repeated to the requested length.
DEVOL_SLOT = [2, 6, 2, 2, 11, 3]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--population", type=int, default=10_000)
    p.add_argument("--length", type=int, default=60)
    p.add_argument("--repeats", type=int, default=40, help="timed generations of ours")
    p.add_argument("--baseline-repeats", type=int, default=1,
                   help="timed generations of the faithful DEvol baseline (slow: O(P^2))")
    p.add_argument("--bisect-repeats", type=int, default=3)
    p.add_argument("--single-steps", type=int, default=2000,
                   help="one-genome ask+tell steps of RegularizedEvolution")
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


def summary(times: list[float]) -> dict[str, Any]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": len(times)}


def time_ga(make: Callable[[], GeneticAlgorithm], fitness: Callable[[np.ndarray], np.ndarray],
            repeats: int) -> dict[str, Any]:
    """Per generation: tell (validation + bookkeeping) then ask (breeding)."""
    ga = make()
    g = ga.ask()  # the random initial population, not timed
    asks, tells = [], []
    for _ in range(repeats):
        f = fitness(g)
        t0 = time.perf_counter()
        ga.tell(g, f)
        t1 = time.perf_counter()
        g = ga.ask()
        t2 = time.perf_counter()
        tells.append(t1 - t0)
        asks.append(t2 - t1)
    total = [a + b for a, b in zip(asks, tells, strict=True)]
    return {**summary(total), "ask_median_s": statistics.median(asks),
            "tell_median_s": statistics.median(tells), "generations_told": ga.generation}


def time_re_batch(cards: np.ndarray, pop: int, fitness: Callable[[np.ndarray], np.ndarray],
                  repeats: int, seed: int) -> dict[str, Any]:
    re = RegularizedEvolution(cards, pop, sample_size=25, seed=seed)
    g = re.ask(pop)
    re.tell(g, fitness(g))  # the initial population, not timed
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        g = re.ask(pop)
        re.tell(g, fitness(g))
        times.append(time.perf_counter() - t0)
    return summary(times)


def time_re_single(cards: np.ndarray, pop: int, fitness: Callable[[np.ndarray], np.ndarray],
                   steps: int, seed: int) -> dict[str, Any]:
    re = RegularizedEvolution(cards, pop, sample_size=25, seed=seed)
    g = re.ask(pop)
    re.tell(g, fitness(g))
    t0 = time.perf_counter()
    for _ in range(steps):
        g = re.ask()
        re.tell(g, fitness(g))
    per_step = (time.perf_counter() - t0) / steps
    return {"per_genome_s": per_step, "genomes_per_s": 1.0 / per_step, "steps": steps}


def time_devol(cards: list[int], pop: int, length: int, seed: int, repeats: int,
               fast_select: bool) -> dict[str, Any]:
    ops = DevolOperators(cards, seed)
    rng = np.random.default_rng(seed)
    members = [[int(rng.integers(c)) for c in cards] for _ in range(pop)]
    asks, tells = [], []
    for gen in range(1, repeats + 1):
        f = rng.random(pop)
        t0 = time.perf_counter()
        population = DevolPopulation(members, f, ops.rand, fast_select)
        t1 = time.perf_counter()
        members = ops.reproduce(population, gen)
        t2 = time.perf_counter()
        assert len(members) == pop and len(members[0]) == length
        tells.append(t1 - t0)
        asks.append(t2 - t1)
    total = [a + b for a, b in zip(asks, tells, strict=True)]
    return {**summary(total), "ask_median_s": statistics.median(asks),
            "tell_median_s": statistics.median(tells)}


def loadavg() -> list[float] | None:
    """1, 5 and 15-minute load averages (the machine may be shared), None where unknown."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def machine_info() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def write_markdown(path: Path, report: dict[str, Any]) -> None:
    r, cfg, m = report["results"], report["config"], report["machine"]
    ms = 1000.0
    lines = [
        "# Evolution engine: ask+tell overhead",
        "",
        f"{report['date']} · {m['platform']} · {m['cpu_count']} CPUs · Python {m['python']} · "
        f"numpy {m['numpy']} · load average at start {m['loadavg_1_5_15_start']}",
        "",
        f"Population {cfg['population']}, genome length {cfg['length']}, one generation = "
        "tell the generation's fitness + ask the next one. Produced by "
        "`benchmarks/engine_bench.py`.",
        "",
        "| implementation | per generation (median) | ask | tell | vs ours |",
        "| --- | --- | --- | --- | --- |",
    ]
    ours = r["ours_ga"]["median_s"]
    for name, label in [("ours_ga", "ours: GeneticAlgorithm"),
                        ("ours_ga_key", "ours: GeneticAlgorithm + key"),
                        ("devol_bisect", "DEvol operators, Python lists, bisect select"),
                        ("devol", "DEvol operators, Python lists, as DEvol (linear select)")]:
        x = r[name]
        lines.append(f"| {label} | {x['median_s'] * ms:.1f} ms | {x['ask_median_s'] * ms:.1f} ms "
                     f"| {x['tell_median_s'] * ms:.1f} ms | {x['median_s'] / ours:.0f}x |")
    lines += [
        "",
        f"RegularizedEvolution: a whole population asked and told as one batch "
        f"{r['ours_re_batch']['median_s'] * ms:.1f} ms; one genome at a time "
        f"{r['ours_re_single']['per_genome_s'] * 1e6:.0f} µs per ask+tell "
        f"({r['ours_re_single']['genomes_per_s']:.0f} genomes/s).",
        "",
        f"Speed-up of ours over DEvol's operators: {report['ratio_vs_devol']:.0f}x "
        f"(over the per-genome Python baseline with bisect selection: "
        f"{report['ratio_vs_devol_bisect']:.0f}x).",
        "",
    ]
    path.write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    pop, length = args.population, args.length
    cards = np.array((DEVOL_SLOT * (length // len(DEVOL_SLOT) + 1))[:length], dtype=np.int64)
    fit_rng = np.random.default_rng(args.seed + 1)

    def fitness(g: np.ndarray) -> np.ndarray:
        return fit_rng.random(g.shape[0])

    started = time.perf_counter()
    load_start = loadavg()
    results: dict[str, Any] = {}
    print(f"population {pop}, L {length}", flush=True)
    results["ours_ga"] = time_ga(lambda: GeneticAlgorithm(cards, pop, seed=args.seed),
                                 fitness, args.repeats)
    print("ours GA", results["ours_ga"], flush=True)
    results["ours_ga_key"] = time_ga(
        lambda: GeneticAlgorithm(cards, pop, seed=args.seed, key=lambda g: g.tobytes()),
        fitness, max(3, args.repeats // 4))
    print("ours GA + key", results["ours_ga_key"], flush=True)
    results["ours_re_batch"] = time_re_batch(cards, pop, fitness, args.repeats, args.seed)
    print("ours RE batch", results["ours_re_batch"], flush=True)
    results["ours_re_single"] = time_re_single(cards, min(pop, 100), fitness,
                                               args.single_steps, args.seed)
    print("ours RE single", results["ours_re_single"], flush=True)
    card_list = cards.tolist()
    results["devol_bisect"] = time_devol(card_list, pop, length, args.seed,
                                         args.bisect_repeats, fast_select=True)
    print("devol (bisect)", results["devol_bisect"], flush=True)
    results["devol"] = time_devol(card_list, pop, length, args.seed, args.baseline_repeats,
                                  fast_select=False)
    print("devol", results["devol"], flush=True)
    report = {
        "benchmark": "engine",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {**machine_info(), "loadavg_1_5_15_start": load_start,
                    "loadavg_1_5_15_end": loadavg()},
        "config": {"population": pop, "length": length, "cardinalities": card_list,
                   "repeats": args.repeats, "baseline_repeats": args.baseline_repeats,
                   "bisect_repeats": args.bisect_repeats, "seed": args.seed,
                   "re_sample_size": 25, "re_single_population": min(pop, 100)},
        "results": results,
        "ratio_vs_devol": results["devol"]["median_s"] / results["ours_ga"]["median_s"],
        "ratio_vs_devol_bisect": (results["devol_bisect"]["median_s"]
                                  / results["ours_ga"]["median_s"]),
        "ratio_vs_devol_best_of_runs": results["devol"]["min_s"] / results["ours_ga"]["min_s"],
        "note": "medians on a shared 2-core machine; min_s is the least-disturbed run",
        "wall_s": time.perf_counter() - started,
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "engine.json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(args.out_dir / "engine.md", report)
    print(f"ratio vs DEvol {report['ratio_vs_devol']:.0f}x, vs bisect baseline "
          f"{report['ratio_vs_devol_bisect']:.0f}x; wrote {args.out_dir / 'engine.json'}")
    return report


if __name__ == "__main__":
    main()
