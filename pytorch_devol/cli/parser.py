"""The command line of ``pytorch-devol``: every subcommand, flag, help text and default.

Each flag's help says what it does and ends with its default; ``tests/test_cli_help.py`` fails
when one does not.
"""

from __future__ import annotations

import argparse

__all__ = ["QUICK", "build_parser"]

# DEvol's own MNIST experiment used 6/4/256/1024, 20 generations x 50 and 10 epochs (see
# benchmarks/devol_mnist.py).
QUICK = {
    "digits": dict(max_conv_layers=3, max_dense_layers=3, max_filters=64, max_dense_nodes=256,
                   generations=10, population=16, epochs=9),
    "other": dict(max_conv_layers=3, max_dense_layers=2, max_filters=64, max_dense_nodes=256,
                  generations=5, population=10, epochs=3),
}
"""The sizes of a quick search when no flag sets them: on digits, and on everything else (MNIST,
Fashion-MNIST, ``--data``)."""
_SHAPE = {"max_conv_layers": "most convolutional layers",
          "max_dense_layers": "most dense layers, the output layer included (as DEvol)",
          "max_filters": "most filters per conv layer",
          "max_dense_nodes": "most units per dense layer", "generations": "generations",
          "population": "candidates per generation", "epochs": "most epochs per candidate"}


# schema.heredity.HEREDITY_RULES, without importing torch for --help (a test keeps them equal)
_HEREDITY_RULES = ("genes", "shapes", "slices")
_DEFAULT_HEREDITY = "genes"  # search.donors.DEFAULT_HEREDITY (the same test)

def _quick_default(name: str) -> str:
    digits, other = QUICK["digits"][name], QUICK["other"][name]
    return f"{digits}" if digits == other else f"{digits} on digits, else {other}"


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


def _image_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        sizes = [int(p) for p in parts]
    except ValueError:
        sizes = []
    if len(sizes) not in (1, 2) or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected N or HxW (positive integers), got {text!r}")
    return (sizes[0], sizes[-1])


def _add_import(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--import", dest="gene_modules", action="append", default=[],
                        metavar="MODULE", help="a module you trust to define gene types the run "
                        "directory names (repeatable); nothing else is ever imported "
                        "(default: none)")


def _add_data(s: argparse.ArgumentParser) -> None:
    s.add_argument("--dataset", choices=["digits", "mnist", "fashion-mnist"],
                   help="a built-in dataset; digits works offline everywhere (default: digits)")
    s.add_argument("--data", metavar="PATH",
                   help="your own data instead: a .npz with x_train, y_train, x_test, y_test "
                        "(optional x_val, y_val; NCHW or channels-last, integer or one-hot "
                        "labels), or a folder of images with one subfolder per class "
                        "(or train/ and test/ folders of those); with --resume: where the "
                        "data file is now, if it moved (default: --dataset)")
    s.add_argument("--task", choices=["classification", "regression"],
                   help="--data FILE.npz: what y holds (default: classification for integer "
                        "or one-hot labels, regression for float targets)")
    s.add_argument("--image-size", type=_image_size, metavar="N|HxW",
                   help="--data DIR: resize every image to N x N or H x W (default: keep the "
                        "images' size, which must then be the same for all)")
    s.add_argument("--grayscale", action="store_true", default=None,
                   help="--data DIR: read the images as one grey channel (default: grey only "
                        "when every image is)")
    s.add_argument("--data-root", metavar="DIR",
                   help="folder holding MNIST/raw and FashionMNIST/raw; with --resume: where "
                        "a moved dataset now is (default: $PYTORCH_DEVOL_DATA, else ./data)")
    s.add_argument("--limit", type=int, metavar="N",
                   help="train on a seeded, stratified subset of N training examples "
                        "(default: all)")


def _add_space(s: argparse.ArgumentParser) -> None:
    s.add_argument("--space", choices=["devol", "devol+training", "modern"],
                   default="devol+training",
                   help="devol+training: DEvol's layers plus learning-rate, weight-decay, "
                        "batch-size and schedule genes (measured better on Fashion-MNIST, "
                        "level on MNIST: docs/guide/search-spaces.md); devol: DEvol's exact "
                        "search space and CSV; "
                        "modern: GenomeSchema.modern (blocks, residuals, pooling head, "
                        "training genes) (default: devol+training)")
    s.add_argument("--max-blocks", type=int, metavar="N",
                   help="--space modern: block slots (default: 4)")
    s.add_argument("--augment", action="store_true",
                   help="--space modern: also search on-device augmentation (default: off)")
    for name in ("max_conv_layers", "max_dense_layers", "max_filters", "max_dense_nodes",
                 "generations", "population", "epochs"):
        s.add_argument("--" + name.replace("_", "-"), type=int, metavar="N",
                       help=f"{_SHAPE[name]} (default: {_quick_default(name)})")


def _add_training(s: argparse.ArgumentParser) -> None:
    s.add_argument("--batch-size", type=int, metavar="N",
                   help="training batch size (default: 128)")
    s.add_argument("--patience", type=int, metavar="N",
                   help="stop a candidate after N epochs without a lower validation loss "
                        "(default: 1, as DEvol)")
    s.add_argument("--seed", type=int, default=None,
                   help="seed of the whole search: same seed, same search (default: 0)")
    s.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="where candidates train (default: auto, CUDA when present)")
    s.add_argument("--precision", choices=["auto", "fp32", "bf16"], default=None,
                   help="training precision (default: auto, bf16 where it is fast)")


def _add_strategy(s: argparse.ArgumentParser) -> None:
    s.add_argument("--strategy", choices=["ga", "regularized", "nsga2"], default=None,
                   help="ga: DEvol's generational GA; regularized: aging evolution; nsga2: "
                        "several objectives (default: ga, nsga2 with --objectives)")
    s.add_argument("--objectives", metavar="A,B",
                   help="search several objectives with NSGA-II, e.g. accuracy,params "
                        "(built in: val_accuracy, val_loss, val_mae, params, flops, latency_ms) "
                        "(default: the --metric alone)")
    s.add_argument("--constraint", action="append", default=[], metavar="EXPR",
                   help="e.g. 'params<=1e6' (repeatable; a candidate breaking it ranks last, "
                        "and one whose params, flops or latency_ms break it is never trained) "
                        "(default: none)")
    s.add_argument("--metric", choices=["accuracy", "loss"], default=None,
                   help="validation metric the search optimises (default: accuracy, loss "
                        "for regression)")
    s.add_argument("--fidelity", choices=["none", "sh", "asha", "hyperband"], default=None,
                   help="multi-fidelity: train everyone --min-epochs first and continue only "
                        "the best 1/--eta, rung by rung; hyperband: the same in brackets that "
                        "start candidates at each rung (show prints them); none: every "
                        "candidate trains in full, as in DEvol (default: sh with the GA, asha "
                        "with --strategy regularized, none with --objectives or --constraint)")
    s.add_argument("--min-epochs", type=int, metavar="N",
                   help="--fidelity: the first rung's epochs (default: 1)")
    s.add_argument("--eta", type=int, metavar="K",
                   help="--fidelity: keep the best 1/K at each rung (default: 3)")
    s.add_argument("--inherit-weights", nargs="?", const=True, default=None,
                   choices=(*_HEREDITY_RULES, "none"), metavar="RULE",
                   help="each new candidate starts from the trained weights of the best "
                        "network it shares the most layers with; RULE says how alike a layer "
                        "must be: genes (the same layer), shapes (the same tensor shapes) or "
                        "slices (the overlapping part where widths differ); none: every "
                        f"candidate starts from random weights (default: {_DEFAULT_HEREDITY})")
    s.add_argument("--devol-algorithm", action="store_true",
                   help="DEvol's algorithm, as the compat API (DEvol, GenomeHandler) runs it: "
                        "the GA with fitness-proportional selection, every candidate trained "
                        "in full, no heredity; with --space devol, DEvol's whole search "
                        "(default: off: the measured defaults, docs/guide/defaults.md)")
    s.add_argument("--warm-start", metavar="RUN_DIR",
                   help="begin the first generation with the best distinct genomes of an "
                        "earlier run of the same search space (half the population); with "
                        "--inherit-weights and the same data, from their trained weights too "
                        "(default: none)")


def _add_running(s: argparse.ArgumentParser) -> None:
    s.add_argument("--run-dir", metavar="DIR",
                   help="where the run's log, best model and state go (default: "
                        "runs/<date-time>)")
    s.add_argument("--resume", metavar="RUN_DIR",
                   help="continue an interrupted run with its saved settings (default: a "
                        "new run)")
    s.add_argument("--workers", type=_workers, metavar="N",
                   help="local worker processes; 0: train in this process; auto: one per GPU "
                        "or core (default: 0)")
    s.add_argument("--workers-per-gpu", type=int, metavar="K", default=None,
                   help="candidates sharing each GPU at once (default: 1)")
    s.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="evaluate on Ray: a local instance, or the cluster at ADDRESS "
                        "(default: no Ray)")
    s.add_argument("--tensorboard", metavar="DIR",
                   help="write TensorBoard event files to DIR (default: none)")
    s.add_argument("--mlflow", nargs="?", const="", metavar="URI",
                   help="record the search as an MLflow run, at URI or MLflow's own default "
                        "tracking URI (default: none)")
    s.add_argument("--quiet", action="store_true",
                   help="print nothing but errors (default: off)")


def _add_retrain(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("retrain", help="retrain a candidate from scratch with several seeds and "
                       "report its held-out test metrics as mean ± sd")
    r.add_argument("run_dir", help="the run directory")
    r.add_argument("--candidate", type=int, metavar="N",
                   help="the candidate to retrain (default: the best)")
    r.add_argument("--epochs", type=int, metavar="E",
                   help="epochs per seed (default: the search's --epochs)")
    r.add_argument("--patience", type=int, metavar="N",
                   help="stop a seed after N epochs without a lower validation loss; 0: train "
                        "every epoch (default: the search's, 1 unless set)")
    r.add_argument("--seeds", type=int, default=3, metavar="K",
                   help="how many seeds (0..K-1) to train (default: 3)")
    r.add_argument("--train-on", choices=["train", "train+val"], default="train",
                   help="train+val also trains on the validation part, with no early stopping "
                        "(default: train)")
    r.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None,
                   help="where to train (default: the search's device)")
    r.add_argument("--data", metavar="PATH",
                   help="where the search's data file is now, if it moved (default: the saved "
                        "path)")
    r.add_argument("--data-root", metavar="DIR",
                   help="where a built-in dataset now is, if it moved (default: the saved "
                        "folder)")
    r.add_argument("--overwrite", action="store_true",
                   help="replace an earlier retrain of this candidate with other settings "
                        "(default: off: refused)")
    r.add_argument("--quiet", action="store_true",
                   help="print nothing but the summary and errors (default: off)")
    _add_import(r)


def _add_reading(sub: argparse._SubParsersAction) -> None:
    show = sub.add_parser("show", help="summarise a run directory")
    show.add_argument("run_dir", help="the run directory")
    show.add_argument("--top", type=int, default=10, metavar="K",
                      help="how many of the best candidates to list (default: 10)")
    _add_import(show)

    plot = sub.add_parser("plot", help="PNG of the search's progress")
    plot.add_argument("run_dir", help="the run directory")
    plot.add_argument("--out", metavar="FILE",
                      help="the PNG to write (default: RUN_DIR/progress.png)")
    _add_import(plot)

    export = sub.add_parser("export", help="export the best model (or another)")
    export.add_argument("run_dir", help="the run directory")
    export.add_argument("--format", choices=["state_dict", "torchscript", "onnx"],
                        default="state_dict", help="file format (default: state_dict: "
                        "weights, genome and schema, loaded without pickle)")
    export.add_argument("--out", metavar="FILE",
                        help="the file to write (default: in RUN_DIR, named for the format)")
    export.add_argument("--candidate", type=int, metavar="N",
                        help="export candidate N, a Pareto-front member or a retrained one "
                             "(default: the best)")
    export.add_argument("--retrained", type=int, nargs="?", const=0, metavar="SEED",
                        help="export the weights `retrain` gave the candidate with SEED "
                             "(0 when no SEED is given) (default: the search's weights)")
    _add_import(export)


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``pytorch-devol`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="pytorch-devol",
        description="Genetic neural-architecture search in PyTorch (a port of DEvol). With no "
                    "options, `pytorch-devol search` runs a real, small search on "
                    "scikit-learn's bundled digits, offline.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    s = sub.add_parser("search", help="run (or --resume) a search")
    for add in (_add_data, _add_space, _add_training, _add_strategy, _add_running):
        add(s)
    _add_import(s)
    _add_retrain(sub)
    _add_reading(sub)
    return parser
