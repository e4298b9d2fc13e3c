"""Would a cache key that ignores *which* slots hold the layers save trainings?

``schema.key`` already maps genomes that differ only inside inactive slots to one key. Two
genomes can still build the same network with the same layers in other slots of a run (conv
layers in slots 0 and 2 rather than 0 and 1). This counts, among the genomes a search really
trained (distinct ``schema.key``), those whose network an earlier training already built: the
trainings a slot-compacting key would have saved.

* ``--run-dir DIR`` (repeatable): count it in real runs' logs;
* and always DEvol's README setting as a simulation (its full space, 6 conv and 4 dense slots,
  GA and regularized evolution, 20 x 50, 5 seeds), with a stand-in fitness that depends only
  on the network (no training), so only how the engines breed genomes is measured.

    python benchmarks/position_duplicates.py
    python benchmarks/position_duplicates.py --run-dir runs/x --run-dir runs/y
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import code_state, cpu_name, now  # noqa: E402
from pytorch_devol import GenomeSchema  # noqa: E402
from pytorch_devol.evolution import GeneticAlgorithm, RegularizedEvolution  # noqa: E402
from pytorch_devol.search import load_result  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def network_key(schema: GenomeSchema, genome: Any) -> tuple[int, ...]:
    """``schema.key`` with each run of adjacent same-type optional slots compacted: active
    layers first, in order (a gene builds from its input shape alone, so this is the same
    network)."""
    arr = np.asarray(schema.key(genome), dtype=np.int64)
    run: list[Any] = []
    runs = []
    for s in schema.slots:
        if s.training or not s.optional:
            continue
        if run and run[-1].gene_type is s.gene_type and run[-1].stop == s.start:
            run.append(s)
        else:
            run = [s]
            runs.append(run)
    for r in runs:
        parts = [(arr[s.start:s.stop].copy(), schema.is_active(s, arr)) for s in r]
        ordered = [p for p, on in parts if on] + [p for p, on in parts if not on]
        for s, part in zip(r, ordered):
            arr[s.start:s.stop] = part
    return tuple(int(v) for v in arr)


def count(schema: GenomeSchema, genomes: list[Any]) -> dict[str, int]:
    """Distinct keys trained, and how many of them repeat an earlier network."""
    keys, networks, repeats = set(), set(), 0
    for g in genomes:
        key = schema.key(g)
        if key in keys:
            continue
        keys.add(key)
        net = network_key(schema, g)
        repeats += net in networks
        networks.add(net)
    return {"trainings": len(keys), "position_duplicates": repeats}


def simulate(kind: str, seed: int, schema: GenomeSchema) -> dict[str, int]:
    def fitness(g: Any) -> float:
        digest = hashlib.sha256(repr(network_key(schema, g)).encode()).digest()
        return 0.9 + 0.1 * int.from_bytes(digest[:4], "little") / 2**32

    cards = schema.cardinalities
    strategy = GeneticAlgorithm(cards, 50, seed=seed, key=schema.key) if kind == "ga" else \
        RegularizedEvolution(cards, 50, sample_size=12, seed=seed, key=schema.key)
    asked = []
    for _ in range(20):
        genomes = strategy.ask(50)
        asked.extend(genomes)
        strategy.tell(genomes, np.array([fitness(g) for g in genomes]))
    return count(schema, asked)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", action="append", default=[], metavar="DIR")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "position_duplicates.json")
    args = parser.parse_args()
    rows = []
    for run in args.run_dir:
        result = load_result(run)
        trained = [r["genome"] for r in result.history if not r["cached"]]
        rows.append({"source": f"run {run}", **count(result.schema, trained)})
    schema = GenomeSchema.devol()
    for kind in ("ga", "regularized"):
        for seed in range(args.seeds):
            rows.append({"source": f"simulated {kind} 20x50, seed {seed}",
                         **simulate(kind, seed, schema)})
    total = sum(r["trainings"] for r in rows)
    dup = sum(r["position_duplicates"] for r in rows)
    summary = {"date": now(), "code": code_state(), "cpu": cpu_name(),
               "versions": {"python": platform.python_version(), "numpy": np.__version__},
               "command": "python " + " ".join(["benchmarks/position_duplicates.py",
                                                *sys.argv[1:]]),
               "rows": rows, "trainings": total,
               "position_duplicates": dup, "share": dup / total if total else None}
    for r in rows:
        print(f"{r['source']}: {r['position_duplicates']} of {r['trainings']} trainings")
    print(f"in all: {dup} of {total} ({100 * dup / max(total, 1):.2f}%)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2) + "\n")


if __name__ == "__main__":
    main()
