"""The ``pytorch-devol`` command: search, show, plot, export.

With no arguments, ``pytorch-devol search`` runs a real, small search on scikit-learn's bundled
digits (offline, a couple of minutes on a laptop CPU) and prints where the results are.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main"]

# Defaults of a quick search on each dataset (DEvol's own MNIST experiment used 6/4/256/1024,
# 20 generations x 50 and 10 epochs: see benchmarks/devol_mnist.py).
QUICK = {
    "digits": dict(max_conv_layers=3, max_dense_layers=3, max_filters=64, max_dense_nodes=256,
                   generations=10, population=16, epochs=9),
    "mnist": dict(max_conv_layers=3, max_dense_layers=2, max_filters=64, max_dense_nodes=256,
                  generations=5, population=10, epochs=3),
}
QUICK["fashion-mnist"] = QUICK["mnist"]


class UserError(Exception):
    """A mistake on the command line: printed as one line, exit status 2."""


def _workers(text: str) -> int | str:
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an integer >= 0 or 'auto', got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0 or 'auto', got {value}")
    return value


def _add_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import", dest="gene_modules", action="append", default=[],
                        metavar="MODULE", help="a module you trust to define gene types the run "
                        "directory names (repeatable); nothing else is ever imported")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pytorch-devol", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    s = sub.add_parser("search", help="run (or --resume) a search")
    s.add_argument("--dataset", choices=["digits", "mnist", "fashion-mnist"], default="digits")
    s.add_argument("--data-root", metavar="DIR", help="folder with MNIST/raw, FashionMNIST/raw")
    s.add_argument("--limit", type=int, metavar="N", help="train on a seeded subset of N images")
    s.add_argument("--space", choices=["devol", "modern"], default="devol",
                   help="DEvol's search space (default) or GenomeSchema.modern (blocks, "
                        "residuals, pooling head, training genes)")
    s.add_argument("--max-blocks", type=int, metavar="N", help="--space modern: block slots")
    s.add_argument("--augment", action="store_true",
                   help="--space modern: also search on-device augmentation")
    for flag, kind in [("--max-conv-layers", int), ("--max-dense-layers", int),
                       ("--max-filters", int), ("--max-dense-nodes", int),
                       ("--generations", int), ("--population", int), ("--epochs", int),
                       ("--batch-size", int), ("--patience", int)]:
        s.add_argument(flag, type=kind, metavar="N")
    s.add_argument("--seed", type=int, default=None)
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    s.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None)
    s.add_argument("--strategy", choices=["ga", "regularized", "nsga2"], default=None)
    s.add_argument("--objectives", metavar="A,B",
                   help="search several objectives with NSGA-II, e.g. accuracy,params "
                        "(built in: val_accuracy, val_loss, val_mae, params, flops, latency_ms)")
    s.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                   help="e.g. 'params<=1e6' (repeatable; a candidate breaking it ranks last, "
                        "and one whose params, flops or latency_ms break it is never trained)")
    s.add_argument("--metric", choices=["accuracy", "loss"], default=None)
    s.add_argument("--fidelity", choices=["none", "sh", "asha"], default=None,
                   help="multi-fidelity: train everyone --min-epochs first and continue only "
                        "the best 1/--eta, rung by rung (default: sh with the GA, asha with "
                        "--strategy regularized, none with --objectives; none: every "
                        "candidate trains in full, as in DEvol)")
    s.add_argument("--min-epochs", type=int, metavar="N", help="--fidelity: first rung's epochs")
    s.add_argument("--eta", type=int, metavar="K", help="--fidelity: keep 1/K per rung (3)")
    s.add_argument("--inherit-weights", action="store_true", default=None,
                   help="start each new candidate from the trained weights of the best "
                        "network it shares the most layers with (heredity)")
    s.add_argument("--run-dir", metavar="DIR")
    s.add_argument("--resume", metavar="RUN_DIR", help="continue a run with its saved settings")
    s.add_argument("--workers", type=_workers, metavar="N",
                   help="local worker processes (0: in-process; auto: one per GPU or core)")
    s.add_argument("--workers-per-gpu", type=int, metavar="K", default=None)
    s.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="evaluate on Ray (a local instance, or the cluster at ADDRESS)")
    s.add_argument("--quiet", action="store_true", help="print nothing but errors")
    _add_import(s)

    show = sub.add_parser("show", help="summarise a run directory")
    show.add_argument("run_dir")
    show.add_argument("--top", type=int, default=10, metavar="K")
    _add_import(show)

    plot = sub.add_parser("plot", help="PNG of the search's progress")
    plot.add_argument("run_dir")
    plot.add_argument("--out", metavar="FILE")
    _add_import(plot)

    export = sub.add_parser("export", help="export the best model")
    export.add_argument("run_dir")
    export.add_argument("--format", choices=["state_dict", "torchscript", "onnx"],
                        default="state_dict")
    export.add_argument("--out", metavar="FILE")
    export.add_argument("--candidate", type=int, metavar="N",
                        help="export candidate N (a Pareto-front member) instead of the best")
    _add_import(export)
    return parser


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name, None)
        if value is not None and value < (0 if name == "max_conv_layers" else 1):
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be {'>= 0' if name == 'max_conv_layers' else '>= 1'}, "
                            f"got {value}")


def _evaluator(args: argparse.Namespace) -> Any:
    from .search import make_evaluator

    return make_evaluator(args.workers, args.workers_per_gpu or 1, args.ray)


def _fidelity(args: argparse.Namespace) -> Any:
    """--fidelity, defaulting to successive halving with the GA and ASHA with regularized
    evolution (search_efficiency.py: better than full training at equal compute), and to
    none with several objectives."""
    from .search.fidelity import make_fidelity

    kind = args.fidelity
    if kind is None:
        kind = "none" if args.objectives or args.constraint else \
            "asha" if args.strategy == "regularized" else "sh"
    if kind == "none":
        if args.min_epochs is not None or args.eta is not None:
            raise UserError("--min-epochs and --eta need --fidelity sh or asha")
        return None
    return make_fidelity(kind, args.min_epochs or 1, args.eta or 3)


def _search(args: argparse.Namespace) -> int:
    from .schema import GenomeSchema
    from .search import RunStore, Search
    from .training import TrainConfig, load_dataset

    _positive(args, "max_conv_layers", "max_dense_layers", "max_filters", "max_dense_nodes",
              "generations", "population", "epochs", "batch_size", "patience",
              "workers_per_gpu", "limit", "min_epochs")
    if args.eta is not None and args.eta < 2:
        raise UserError(f"--eta must be >= 2, got {args.eta}")
    evaluator = _evaluator(args)
    if args.resume:
        ignored = [f"--{k.replace('_', '-')}" for k in (
            "max_conv_layers", "max_dense_layers", "max_filters", "max_dense_nodes",
            "generations", "population", "epochs", "batch_size", "patience", "seed",
            "strategy", "metric", "run_dir", "limit", "precision", "objectives", "fidelity",
            "min_epochs", "eta", "inherit_weights")
            if getattr(args, k) is not None]
        if ignored and not args.quiet:
            print(f"note: resuming with the settings saved in {args.resume}; ignoring "
                  f"{', '.join(ignored)}", file=sys.stderr)
        search = Search.resume(args.resume, evaluator=evaluator, verbose=not args.quiet,
                               device=args.device, gene_modules=args.gene_modules,
                               data_root=args.data_root)
    else:
        quick = QUICK[args.dataset]
        pick = {k: v if (v := getattr(args, k, None)) is not None else quick.get(k)
                for k in ("max_conv_layers", "max_dense_layers", "max_filters",
                          "max_dense_nodes", "generations", "population", "epochs")}
        data = load_dataset(args.dataset, root=args.data_root, seed=args.seed or 0,
                            limit=(args.limit, None) if args.limit else None)
        if args.space == "modern":
            schema = GenomeSchema.modern(
                input_shape=data.input_shape, n_classes=data.n_outputs,
                max_blocks=4 if args.max_blocks is None else args.max_blocks,
                augment=args.augment)
        else:
            if args.max_blocks is not None or args.augment:
                raise UserError("--max-blocks and --augment need --space modern")
            schema = GenomeSchema.devol(
                max_conv_layers=pick["max_conv_layers"],
                max_dense_layers=pick["max_dense_layers"], max_filters=pick["max_filters"],
                max_dense_nodes=pick["max_dense_nodes"], input_shape=data.input_shape,
                n_classes=data.n_outputs)
        train = {k: v for k, v in (("batch_size", args.batch_size), ("patience", args.patience),
                                   ("precision", args.precision)) if v is not None}
        search = Search(schema, data, generations=pick["generations"],
                        population_size=pick["population"], epochs=pick["epochs"],
                        seed=args.seed or 0, run_dir=args.run_dir, device=args.device,
                        strategy=args.strategy, metric=args.metric, evaluator=evaluator,
                        train_config=TrainConfig(**train), verbose=not args.quiet,
                        objectives=args.objectives, constraints=args.constraint or None,
                        fidelity=_fidelity(args), inherit_weights=bool(args.inherit_weights))
        RunStore(search.run_dir).check_new()
        if not args.quiet:
            print(f"Searching {schema} on {data.summary()}")
            print(f"{pick['generations']} generations x {pick['population']} candidates, "
                  f"up to {pick['epochs']} epochs each; run directory: {search.run_dir}")
    try:
        search.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: pytorch-devol search --resume {search.run_dir}",
              file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"See: pytorch-devol show {search.run_dir}")
    return 0


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _show(args: argparse.Namespace) -> int:
    from .search import RunStore, load_result

    config = RunStore(args.run_dir).config()
    result = load_result(args.run_dir, args.gene_modules)
    s = config["search"]
    print(f"Run {args.run_dir}")
    print(f"  data: {config['data']['summary']}")
    print(f"  search: {s['strategy']}, {s['generations']} generations x {s['population_size']}, "
          f"seed {s['seed']}, metric {s['metric']}; epochs <= {config['train']['epochs']}")
    _show_rungs(s.get("fidelity"), config["train"]["epochs"], result)
    counts = result.counts()
    counts["infeasible (skipped, never trained)"] = counts.pop("infeasible")
    print("  candidates: " + ", ".join(f"{v} {k}" for k, v in counts.items()))
    if result.best_record is None:
        print("No candidate has trained successfully yet.")
        return 0
    m = result.best_metrics
    print(f"Best (candidate {result.best_record['index']}): val {s['metric']} "
          f"{_fmt(result.best_fitness)}, val loss {_fmt(m.get('val_loss'))}, "
          f"test accuracy {_fmt(m.get('test_accuracy'))}, {m.get('params')} parameters")
    for line in result.describe():
        print(f"  {line}")
    _show_lineage(result)
    top = result.top(args.top)
    print(f"Top {len(top)}:")
    header = f"{'index':>6} {'gen':>4} {'rung':>4} {'val_acc':>8} {'val_loss':>8} " \
             f"{'test_acc':>8} {'params':>9} {'epochs':>6} {'seconds':>8}"
    print(header)
    for r in top:
        m = r["metrics"]
        print(f"{r['index']:>6} {r['generation']:>4} {r.get('rung', 0):>4} "
              f"{_fmt(m.get('val_accuracy')):>8} "
              f"{_fmt(m.get('val_loss')):>8} {_fmt(m.get('test_accuracy')):>8} "
              f"{m.get('params', 0):>9} {m.get('epochs', 0):>6} "
              f"{_fmt(m.get('train_seconds'), 1):>8}")
    _show_front(result)
    return 0


def _show_lineage(result: Any) -> None:
    """Where the best network's weights came from, when they came down a lineage."""
    chain = result.lineage(result.best_record["index"])
    best = chain[0]
    if best["parent"] is None:
        return
    path = " <- ".join(str(r["index"]) for r in chain)
    print(f"  weights: inherited from candidate {best['parent']} ({best['inherited_params']} "
          f"parameters copied; lineage {path}; {best['lineage_epochs']} epochs of training "
          "before its own)")


def _show_rungs(fidelity: dict[str, Any] | None, epochs: int, result: Any) -> None:
    """How many candidates reached each rung of a multi-fidelity run, and what it cost."""
    spent = sum(r["rung_epochs"] for r in result.history if not r["cached"])
    if not fidelity:
        print(f"  training: every candidate up to {epochs} epochs; {spent} epochs spent")
        return
    budgets = fidelity["budgets"]
    reached = [len({r["index"] for r in result.history if r["rung"] == k})
               for k in range(len(budgets))]
    kind = fidelity["type"] if fidelity["kind"] == "custom" else \
        f"{fidelity['kind']} (eta {fidelity['eta']})"
    print(f"  fidelity: {kind}; rungs: "
          + ", ".join(f"{b} epochs: {n} candidates" for b, n in zip(budgets, reached))
          + f"; {spent} epochs spent")


def _show_front(result: Any) -> None:
    """The Pareto front of a multi-objective run, as a table best first by the first
    objective (export with --candidate N)."""
    front = result.pareto_front
    if not result.objectives:
        return
    names = [o["name"] for o in result.objectives]
    print(f"Pareto front ({len(front)} candidates; "
          + ", ".join(f"{o['name']} {o['direction']}" for o in result.objectives)
          + "); export one with: pytorch-devol export RUN_DIR --candidate N")
    print(f"{'index':>6} " + " ".join(f"{n:>14}" for n in names) + f" {'violation':>10}")
    first, sign = names[0], -1.0 if result.objectives[0]["direction"] == "max" else 1.0
    for r in sorted(front, key=lambda r: (sign * r["objectives"][first], r["index"])):
        values = [_fmt(r["objectives"].get(n), 0 if n in ("params", "flops") else 4)
                  for n in names]
        print(f"{r['index']:>6} " + " ".join(f"{v:>14}" for v in values)
              + f" {_fmt(r.get('violation'), 3):>10}")


def _plot(args: argparse.Namespace) -> int:
    from .search.report import plot_run

    print(plot_run(args.run_dir, out=args.out, gene_modules=args.gene_modules))
    return 0


def _export(args: argparse.Namespace) -> int:
    from .search.report import export_model

    path = export_model(args.run_dir, format=args.format, out=args.out,
                        gene_modules=args.gene_modules, candidate=args.candidate)
    print(f"{path} (outputs checked against the original model)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pytorch-devol``; returns the exit status."""
    args = build_parser().parse_args(argv)
    handlers = {"search": _search, "show": _show, "plot": _plot, "export": _export}
    try:
        return handlers[args.command](args)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0
    except (UserError, ValueError, OSError, ImportError) as err:
        print(f"pytorch-devol {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
