"""``pytorch-devol search``: a new search (built-in dataset or your own data file) or
``--resume``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .common import UserError
from .parser import QUICK

__all__ = ["run_search"]

# What --resume may change: where and how it runs, not what it searches.
_RESUMABLE = {"resume", "device", "workers", "workers_per_gpu", "ray", "quiet", "gene_modules",
              "data", "data_root", "tensorboard", "mlflow", "command"}


def _ignored_on_resume(args: argparse.Namespace) -> list[str]:
    """The flags given with --resume that the saved settings override."""
    from .parser import build_parser

    defaults = vars(build_parser().parse_args(["search"]))
    return [f"--{k.replace('_', '-')}" for k, v in vars(args).items()
            if k not in _RESUMABLE and v != defaults.get(k)]


def _positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name, None)
        low = 0 if name == "max_conv_layers" else 1
        if value is not None and value < low:
            raise UserError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")


def _evaluator(args: argparse.Namespace) -> Any:
    from ..search import make_evaluator

    return make_evaluator(args.workers, args.workers_per_gpu or 1, args.ray)


def _fidelity(args: argparse.Namespace) -> Any:
    """--fidelity; without it, ``Search``'s default (``default_fidelity``: successive halving
    with the GA, ASHA with regularized evolution, none with several objectives), with
    --min-epochs and --eta."""
    from ..search.fidelity import default_fidelity, make_fidelity

    kind = args.fidelity
    if kind is None and args.min_epochs is None and args.eta is None:
        return "auto"  # resolved by Search, as in Python
    if kind is None:
        kind = default_fidelity(args.strategy == "regularized",
                                bool(args.objectives or args.constraint)) or "none"
    if kind == "none":
        if args.min_epochs is not None or args.eta is not None:
            raise UserError("--min-epochs and --eta need --fidelity sh, asha or hyperband")
        return None
    return make_fidelity(kind, args.min_epochs or 1, args.eta or 3,
                         asynchronous=args.strategy == "regularized")


def _algorithm(args: argparse.Namespace) -> dict[str, Any]:
    """The strategy, fidelity and heredity keywords of ``Search``: the defaults, or with
    --devol-algorithm DEvol's (the compat API's): the GA, every candidate in full, no
    heredity."""
    if not args.devol_algorithm:
        heredity = args.inherit_weights
        return {"strategy": args.strategy, "fidelity": _fidelity(args),
                "inherit_weights": True if heredity is None else
                False if heredity == "none" else heredity}
    given = [flag for flag, value in (("--strategy", args.strategy), ("--objectives",
             args.objectives), ("--constraint", args.constraint), ("--fidelity", args.fidelity),
             ("--min-epochs", args.min_epochs), ("--eta", args.eta),
             ("--inherit-weights", args.inherit_weights)) if value]
    if given:
        raise UserError(f"--devol-algorithm is DEvol's GA with every candidate trained in full "
                        f"and no heredity: drop {', '.join(given)}")
    from ..search.strategies import DEVOL_GA_OPTIONS

    return {"strategy": "ga", "fidelity": None, "inherit_weights": False,
            "strategy_options": dict(DEVOL_GA_OPTIONS)}


def _callbacks(args: argparse.Namespace) -> list[Any]:
    from ..search.report.trackers import MLflowCallback, TensorBoardCallback

    found = []
    for flag, value, make in (
            ("--tensorboard", args.tensorboard, lambda: TensorBoardCallback(args.tensorboard)),
            ("--mlflow", args.mlflow, lambda: MLflowCallback(tracking_uri=args.mlflow or None))):
        if value is None:
            continue
        try:
            found.append(make())
        except ImportError as err:
            raise UserError(f"{flag} {value}: {err}") from None
        except Exception as err:  # whatever the tracker's library raises for a bad place
            first = str(err).strip().splitlines()[0] if str(err).strip() else ""
            raise UserError(f"{flag} {value}: {type(err).__name__}: {first}") from None
    return found


def _data(args: argparse.Namespace) -> Any:
    """The data to search on: --data (a file of yours) or --dataset."""
    from ..training import load_dataset
    from ..training.files import load_data

    if args.data is None:
        if args.task or args.image_size or args.grayscale:
            raise UserError("--task, --image-size and --grayscale need --data")
        return load_dataset(args.dataset or "digits", root=args.data_root, seed=args.seed or 0,
                            limit=(args.limit, None) if args.limit else None)
    folder = Path(args.data).is_dir()
    if folder and args.task == "regression":
        raise UserError(f"--task regression does not apply to an image folder ({args.data}): "
                        "its subfolders are classes")
    if not folder and (args.image_size or args.grayscale):
        raise UserError(f"--image-size and --grayscale apply to a folder of images, not to "
                        f"{args.data}")
    options: dict[str, Any] = {"seed": args.seed or 0, "limit": args.limit}
    for name in ("task", "image_size", "grayscale"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    return load_data(args.data, **options)


def _schema(args: argparse.Namespace, data: Any, pick: dict[str, Any]) -> Any:
    from ..schema import GenomeSchema

    if len(data.input_shape) == 1:  # flat features: dense layers only
        if args.space == "modern" or (args.max_conv_layers or 0) > 0:
            raise UserError(f"the data has flat features {data.input_shape}, not images: "
                            "convolutions do not apply (drop --space modern / "
                            "--max-conv-layers)")
        pick = {**pick, "max_conv_layers": 0}
    if args.space == "modern":
        return GenomeSchema.modern(input_shape=data.input_shape, n_classes=data.n_outputs,
                                   max_blocks=4 if args.max_blocks is None else args.max_blocks,
                                   augment=args.augment, task=data.task)
    if args.max_blocks is not None or args.augment:
        raise UserError("--max-blocks and --augment need --space modern")
    return GenomeSchema.devol(
        max_conv_layers=pick["max_conv_layers"], max_dense_layers=pick["max_dense_layers"],
        max_filters=pick["max_filters"], max_dense_nodes=pick["max_dense_nodes"],
        input_shape=data.input_shape, n_classes=data.n_outputs, task=data.task,
        training_genes=args.space == "devol+training")


def _new_search(args: argparse.Namespace, evaluator: Any, callbacks: list[Any]) -> Any:
    from ..search import RunStore, Search
    from ..training import TrainConfig

    quick = QUICK["digits" if args.data is None and args.dataset in (None, "digits")
                  else "other"]
    pick = {k: v if (v := getattr(args, k, None)) is not None else quick[k] for k in quick}
    if args.run_dir is not None:  # before the data: reading a folder of images takes a while
        RunStore(args.run_dir).check_new()
    data = _data(args)
    schema = _schema(args, data, pick)
    train = {k: v for k, v in (("batch_size", args.batch_size), ("patience", args.patience),
                               ("precision", args.precision)) if v is not None}
    metric = args.metric
    if metric is None and data.task == "regression":
        metric = "loss"
    search = Search(schema, data, generations=pick["generations"],
                    population_size=pick["population"], epochs=pick["epochs"],
                    seed=args.seed or 0, run_dir=args.run_dir, device=args.device,
                    metric=metric, evaluator=evaluator,
                    train_config=TrainConfig(**train), verbose=not args.quiet,
                    objectives=args.objectives, constraints=args.constraint or None,
                    callbacks=callbacks, warm_start=args.warm_start, **_algorithm(args))
    RunStore(search.run_dir).check_new()
    if not args.quiet:
        print(f"Searching {schema} on {data.summary()}")
        print(f"{pick['generations']} generations x {pick['population']} candidates, "
              f"up to {pick['epochs']} epoch{'s' if pick['epochs'] != 1 else ''} each; run "
              f"directory: {search.run_dir}")
    return search


def run_search(args: argparse.Namespace) -> int:
    """Handle ``pytorch-devol search``; returns the exit status."""
    from ..search import Search

    _positive(args, "max_conv_layers", "max_dense_layers", "max_filters", "max_dense_nodes",
              "generations", "population", "epochs", "batch_size", "patience",
              "workers_per_gpu", "limit", "min_epochs")
    if args.eta is not None and args.eta < 2:
        raise UserError(f"--eta must be >= 2, got {args.eta}")
    if args.data is not None and (args.data_root is not None or args.dataset is not None):
        raise UserError("--data with --data-root or --dataset: give one (--data for a file of "
                        "yours, --dataset and --data-root for a built-in dataset)")
    evaluator = _evaluator(args)
    callbacks = _callbacks(args)
    if args.resume:
        ignored = _ignored_on_resume(args)
        if ignored and not args.quiet:
            print(f"note: resuming with the settings saved in {args.resume}; ignoring "
                  f"{', '.join(ignored)}", file=sys.stderr)
        search = Search.resume(args.resume, evaluator=evaluator, verbose=not args.quiet,
                               device=args.device, gene_modules=args.gene_modules,
                               data_root=args.data or args.data_root, callbacks=callbacks)
    else:
        search = _new_search(args, evaluator, callbacks)
    try:
        search.run()
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: pytorch-devol search --resume {search.run_dir}",
              file=sys.stderr)
        return 130
    if not args.quiet:
        print(f"See: pytorch-devol show {search.run_dir}")
    return 0
