"""Which search finds a better network for the same compute? Measured with enough power to tell.

Every arm gets the same data, the same search space, the same trainer (``TrainConfig(patience=
None)``, networks of E epochs, a genome's training seed ``candidate_seed(seed, canonical key)``
in every arm) and the same budget of cumulative training epochs B; it runs until it has spent
B (the record that reaches B is the last one counted). The arms: this project's ``Search``
(``search_arms.py``: full GA, GA + successive halving, each with heredity, regularized
evolution + ASHA with and without heredity, random search) and the peers through their own
APIs: Optuna TPE + HyperbandPruner (``peer_optuna.py``) and DEHB (``peer_dehb.py``).

Power: validation is its own 2,000 images taken from the rest of the training set (they do
not add to the training count); each arm's incumbent (best validation accuracy among networks
trained the full E epochs) is scored on the whole test set (10,000 images) each time it
changes (``incumbents.TestScorer``; the share of time that costs is reported). The searches
themselves see a 200-image placeholder test part, so no candidate pays for 10,000 test images.
At least 8 seeds; each comparison is the paired mean difference over seeds with a bootstrap
95% interval and the count of seeds each way. Arms are interleaved within each seed, in an
order rotated by seed. The data split is the same for every seed (data seed 0).

Spaces: ``devol`` is ``GenomeSchema.devol(2, 2, 32, 128)``; ``devol+training`` the same
layers plus learning-rate, weight-decay, batch-size and schedule genes
(``GenomeSchema.devol(..., training_genes=True)``).

    python benchmarks/search_efficiency.py --space devol            # ~60-90 min, 2-core CPU
    python benchmarks/search_efficiency.py --space devol+training   # (run both side by side)
    python benchmarks/search_efficiency.py --seeds 1 --train 300 --val 200 --test 500 \
        --population 4 --budget-epochs 12 --epochs 2 --eta 2 --arms ga_sh,optuna,dehb \
        --out /tmp/se                                                 # smoke, ~30 s
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import attrs
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.common import (  # noqa: E402
    RESULTS,
    Budget,
    Provenance,
    default_data_root,
    loadavg,
    merge_saved,
    settings_of,
)
from benchmarks.efficiency_report import ARM_LABELS, arm_counts, write_outputs  # noqa: E402
from benchmarks.incumbents import EpochTrainer, TestScorer  # noqa: E402
from benchmarks.levers import LEVERS, split_arm  # noqa: E402
from benchmarks.search_arms import SEARCH_ARMS, run_search  # noqa: E402
from pytorch_devol import GenomeSchema, load_dataset  # noqa: E402
from pytorch_devol.training import TrainConfig, Trainer  # noqa: E402

SPACE = dict(max_conv_layers=2, max_dense_layers=2, max_filters=32, max_dense_nodes=128)
SPACES = ("devol", "devol+training")
PEERS = ("optuna", "dehb")
ARMS = (*SEARCH_ARMS, *PEERS)
DEFAULT_ARMS = ("ga", "ga_sh", "ga_sh_inherit", "re_asha", "re_asha_inherit", "random",
                "optuna", "dehb")
PLACEHOLDER_TEST = 200


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--space", choices=SPACES, default="devol")
    p.add_argument("--train", type=int, default=2000, help="training images")
    p.add_argument("--val", type=int, default=2000,
                   help="validation images, taken from the rest of the training set")
    p.add_argument("--test", type=int, default=None,
                   help="test images scored for the incumbents (default: the whole test set)")
    p.add_argument("--seeds", type=int, default=8)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--population", type=int, default=8)
    p.add_argument("--generations", type=int, default=4,
                   help="the full GA's generations: the budget is G x P x E epochs")
    p.add_argument("--epochs", type=int, default=3, help="full budget of one network")
    p.add_argument("--min-epochs", type=int, default=1, help="lowest rung")
    p.add_argument("--eta", type=int, default=3, help="reduction factor of SH/ASHA/Hyperband")
    p.add_argument("--budget-epochs", type=int, default=None,
                   help="cumulative training epochs per arm (default G x P x E)")
    p.add_argument("--arms", default=",".join(DEFAULT_ARMS),
                   help=f"comma-separated subset of {','.join(ARMS)}")
    p.add_argument("--threads", type=int, default=1, help="torch threads")
    p.add_argument("--max-minutes", type=float, default=None,
                   help="start no new seed after this many minutes (default: no limit)")
    p.add_argument("--out", default=None, help="output path without suffix (default: "
                   "benchmarks/results/search_efficiency_<dataset>_<space>)")
    p.add_argument("--reading", default=None,
                   help="file with a paragraph reading the result, put in the report")
    p.add_argument("--from-json", default=None, nargs="+", metavar="FILE",
                   help="re-render the report and plot of saved runs (trains nothing); "
                        "several files (other seeds, same settings) are merged, keeping the "
                        "arms all of them ran")
    args = p.parse_args(argv)
    if args.out is None:
        args.out = str(RESULTS / f"search_efficiency_{args.dataset}_{args.space}".replace(
            "+", "_"))
    if args.from_json:
        return args
    args.arm_list = tuple(a.strip() for a in args.arms.split(",") if a.strip())
    unknown = sorted(a for a in args.arm_list if not _known(a))
    if unknown or not args.arm_list or len(set(args.arm_list)) != len(args.arm_list):
        p.error(f"--arms: choose distinct arms from {', '.join(ARMS)}, each of ours with any "
                f"levers +{', +'.join(LEVERS)} (got {args.arms!r})")
    if args.min_epochs < 1 or args.eta < 2 or args.epochs < args.min_epochs:
        p.error("need 1 <= --min-epochs <= --epochs and --eta >= 2")
    return args


def _known(arm: str) -> bool:
    base, levers = split_arm(arm)
    return arm in ARMS or (base in SEARCH_ARMS and all(name in LEVERS for name in levers))


def load(args: argparse.Namespace) -> tuple[Any, Any, GenomeSchema]:
    """(the data the arms search on, with a placeholder test part; the whole data; schema)."""
    limit = (args.train + args.val, args.test)
    full = load_dataset(args.dataset, root=default_data_root(), limit=limit,
                        val_fraction=args.val / (args.train + args.val), seed=0)
    searched = attrs.evolve(full, x_test=full.x_test[:PLACEHOLDER_TEST],
                            y_test=full.y_test[:PLACEHOLDER_TEST], spec=None)
    schema = GenomeSchema.devol(input_shape=full.input_shape, n_classes=10,
                                training_genes=args.space == "devol+training", **SPACE)
    return searched, full, schema


def run_arm(arm: str, schema: GenomeSchema, data: Any, trainer: Trainer, scorer: TestScorer,
            seed: int, args: argparse.Namespace, budget: int) -> dict[str, Any]:
    """One arm of one seed."""
    if split_arm(arm)[0] in SEARCH_ARMS:
        return run_search(arm, schema, data, scorer, seed, args.population, args.epochs,
                          args.min_epochs, args.eta, budget)
    epochs = EpochTrainer(schema, trainer, scorer, seed, args.epochs, budget)
    if arm == "optuna":
        from benchmarks.peer_optuna import run_optuna_tpe
        return run_optuna_tpe(schema, epochs, seed, args.min_epochs, args.eta)
    from benchmarks.peer_dehb import run_dehb
    return run_dehb(schema, epochs, seed, args.min_epochs, args.eta)


def run_seeds(schema: GenomeSchema, data: Any, full: Any, args: argparse.Namespace,
              budget: int, wall: Budget) -> tuple[dict[str, list[dict[str, Any]]], list[int]]:
    """Every arm once per seed, interleaved in an order rotated by seed; a seed not started
    before the time budget is spent is skipped (and returned as such)."""
    arms = args.arm_list
    trainer = Trainer(data, TrainConfig(patience=None, epochs=args.epochs))
    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    skipped = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        if wall.spent():
            skipped.append(seed)
            continue
        order = arms[seed % len(arms):] + arms[:seed % len(arms)]
        for arm in order:
            scorer = TestScorer(schema, full.x_test, full.y_test)
            start = time.perf_counter()
            run = run_arm(arm, schema, data, trainer, scorer, seed, args, budget)
            runs[arm].append({"seed": seed, "order": list(order),
                              "wall_seconds": time.perf_counter() - start,
                              **scorer.usage(), "loadavg_after": loadavg(), **run})
            c = arm_counts(run)
            print(f"seed {seed} {arm}: {c['candidates']} candidates, {c['trainings']} "
                  f"trainings, {c['epochs']} epochs, {c['seconds']:.0f} s training, "
                  f"{runs[arm][-1]['wall_seconds']:.0f} s wall", flush=True)
    return runs, skipped


def _versions(arms: tuple[str, ...]) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if "optuna" in arms:
        import optuna
        out["optuna"] = optuna.__version__
    if "dehb" in arms:
        from importlib.metadata import version
        out["dehb"] = version("dehb")
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    reading = Path(args.reading).read_text() if args.reading else None
    if args.from_json:
        meta, runs = merge_saved(args.from_json)
        if reading is not None:
            meta["reading"] = reading
        print(write_outputs(meta, runs, Path(args.out)))
        return
    torch.set_num_threads(args.threads)
    budget = args.budget_epochs or args.generations * args.population * args.epochs
    versions = _versions(args.arm_list)
    wall = Budget(args.max_minutes)
    provenance = Provenance("search_efficiency.py", argv)  # the code imported is measured
    data, full, schema = load(args)
    runs, skipped = run_seeds(schema, data, full, args, budget, wall)
    if not runs[args.arm_list[0]]:
        raise SystemExit("no seed ran (--max-minutes too small?)")
    notes = [f"Seeds {skipped} were skipped: the run passed --max-minutes {args.max_minutes} "
             "before they started."] if skipped else []
    meta = {**provenance.header(torch.device("cpu"), "2 cores: seconds are noisy when other "
                                "jobs run", **versions),
            "data": full.summary(), "space_genes": len(schema), "schema": repr(schema),
            "setting": {**settings_of(args, "reading", "from_json", "arm_list"),
                        "arms": list(args.arm_list), "budget": budget, "space_args": SPACE,
                        "placeholder_test": PLACEHOLDER_TEST,
                        "arm_labels": {a: ARM_LABELS[a] for a in args.arm_list},
                        "skipped_seeds_by_time": skipped},
            "notes": notes}
    if reading is not None:
        meta["reading"] = reading
    print(write_outputs(meta, runs, Path(args.out)))


if __name__ == "__main__":
    main()
