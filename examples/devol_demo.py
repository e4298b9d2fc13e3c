"""DEvol's demo (its ``example/demo.py``) on pytorch-devol: the DEvol code is unchanged but for
the imports (``from pytorch_devol.compat import DEvol, GenomeHandler``) and ``print(model)`` for
Keras's ``model.summary()``. Keras's ``mnist.load_data()`` and ``to_categorical`` are replaced by
the few lines below that read the same files into the same numpy arrays.

    python examples/devol_demo.py                   # DEvol's settings: 20 x 20, 5 epochs (GPU)
    python examples/devol_demo.py --quick           # a smaller space and search: minutes on a CPU
    python examples/devol_demo.py --digits --quick  # scikit-learn's 8x8 digits, offline
    python examples/devol_demo.py --quick --generations 2 --epochs 2   # any setting by flag

MNIST is read from torchvision's layout ``<root>/MNIST/raw/*.gz``: ``--data-root``, else
``$PYTORCH_DEVOL_DATA``, ``<repo>/datasets``, ``<repo>/../shared/datasets`` or ``./data``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from pytorch_devol.compat import DEvol, GenomeHandler

REPO = Path(__file__).resolve().parents[1]
DEVOL = dict(max_conv_layers=6, max_dense_layers=2, max_filters=256, max_dense_nodes=1024,
             generations=20, population=20, epochs=5, train_size=None, test_size=None)
QUICK = {
    "mnist": dict(max_conv_layers=3, max_dense_layers=2, max_filters=32, max_dense_nodes=128,
                  generations=3, population=6, epochs=1, train_size=3000, test_size=1000),
    "digits": dict(max_conv_layers=2, max_dense_layers=2, max_filters=32, max_dense_nodes=128,
                   generations=3, population=6, epochs=5, train_size=None, test_size=None),
}


# -- stand-ins for keras.datasets.mnist.load_data and keras.utils.to_categorical -------------------
def find_mnist(root: str | None) -> Path:
    """The first folder holding MNIST/raw/ (see the module docstring), or a clear error."""
    candidates = [Path(root)] if root else [
        Path(p) for p in (os.environ.get("PYTORCH_DEVOL_DATA"), REPO / "datasets",
                          REPO.parent / "shared" / "datasets", "data") if p]
    for c in candidates:
        if any((c / "MNIST" / "raw").glob("train-images-idx3-ubyte*")):
            return c
    raise SystemExit(f"MNIST not found in {', '.join(map(str, candidates))} (expected "
                     "<root>/MNIST/raw/*-ubyte.gz); pass --data-root DIR, or --digits")


def mnist_load_data(root: Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """((x_train, y_train), (x_test, y_test)) as uint8 images (N, 28, 28) and int labels."""
    from pytorch_devol.training import read_idx

    raw = root / "MNIST" / "raw"

    def part(stem: str) -> np.ndarray:
        return read_idx(next(raw.glob(f"{stem}-idx*-ubyte*")))

    return ((part("train-images"), part("train-labels")),
            (part("t10k-images"), part("t10k-labels")))


def digits_load_data() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """scikit-learn's 8x8 digits, 0..255 like MNIST, split 1400 / 397 (seeded)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    x, y = (bunch.images[order] * 16).clip(0, 255).astype(np.uint8), bunch.target[order]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


def to_categorical(y: np.ndarray) -> np.ndarray:
    return np.eye(int(y.max()) + 1, dtype="float32")[y]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--digits", action="store_true", help="scikit-learn's digits, not MNIST")
    p.add_argument("--data-root", help="folder holding MNIST/raw/")
    p.add_argument("--quick", action="store_true", help="a CPU-sized space and search")
    for name in ("max-conv-layers", "max-dense-layers", "max-filters", "max-dense-nodes",
                 "generations", "population", "epochs", "train-size", "test-size"):
        p.add_argument(f"--{name}", type=int, metavar="N")
    p.add_argument("--data-path", default="", help="DEvol's CSV (default: runs/devol-*.csv)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default=None, help="auto (default), cpu or cuda")
    args = p.parse_args(argv)
    settings = dict(QUICK["digits" if args.digits else "mnist"] if args.quick else DEVOL)
    for key in settings:
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    args.settings = settings
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    s = args.settings

    # **Prepare dataset**
    # This problem uses mnist, a handwritten digit classification problem used
    # for many introductory deep learning examples. Here, we load the data and
    # prepare it for use by the GPU. We also do a one-hot encoding of the labels.
    if args.digits:
        (x_train, y_train), (x_test, y_test) = digits_load_data()
    else:
        (x_train, y_train), (x_test, y_test) = mnist_load_data(find_mnist(args.data_root))
    x_train, y_train = x_train[:s["train_size"]], y_train[:s["train_size"]]
    x_test, y_test = x_test[:s["test_size"]], y_test[:s["test_size"]]
    side = x_train.shape[1]
    x_train = x_train.reshape(x_train.shape[0], side, side, 1).astype('float32') / 255
    x_test = x_test.reshape(x_test.shape[0], side, side, 1).astype('float32') / 255
    y_train = to_categorical(y_train)
    y_test = to_categorical(y_test)
    dataset = ((x_train, y_train), (x_test, y_test))

    # **Prepare the genome configuration**
    # The `GenomeHandler` class handles the constraints that are imposed upon
    # models in a particular genetic program. See `genome-handler.py`
    # for more information.
    genome_handler = GenomeHandler(max_conv_layers=s["max_conv_layers"],
                                   max_dense_layers=s["max_dense_layers"],  # includes final dense
                                   max_filters=s["max_filters"],
                                   max_dense_nodes=s["max_dense_nodes"],
                                   input_shape=x_train.shape[1:],
                                   n_classes=10)

    # **Create and run the genetic program**
    # The next, and final, step is create a `DEvol` and run it. Here we specify
    # a few settings pertaining to the genetic program. The program
    # will save each genome's encoding, as well as the model's loss and
    # accuracy, in a `.csv` file printed at the beginning of program.
    # The best model is returned decoded and with `epochs` training done.
    devol = DEvol(genome_handler, args.data_path, seed=args.seed, device=args.device)
    model = devol.run(dataset=dataset,
                      num_generations=s["generations"],
                      pop_size=s["population"],
                      epochs=s["epochs"])
    print(model)

    # Not in DEvol's demo: the returned model is an nn.Sequential taking NCHW tensors.
    with torch.no_grad():
        logits = model(torch.from_numpy(x_test).permute(0, 3, 1, 2))
    accuracy = float((logits.argmax(1).numpy() == y_test.argmax(1)).mean())
    print(f"test accuracy of the returned model: {accuracy:.4f} (selected on validation "
          f"accuracy {devol.result.best_metrics['val_accuracy']:.4f}; DEvol's CSV: "
          f"{devol.datafile})")


if __name__ == "__main__":
    main()
