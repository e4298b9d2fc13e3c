"""The ``pytorch-devol`` command: search, retrain, show, plot, export.

With no arguments, ``pytorch-devol search`` runs a real, small search on scikit-learn's bundled
digits (offline, a couple of minutes on a laptop CPU) and prints where the results are.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from .common import UserError
from .parser import QUICK, build_parser

__all__ = ["QUICK", "UserError", "build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``pytorch-devol``; returns the exit status."""
    from .retrain import run_retrain
    from .search import run_search
    from .show import run_export, run_plot, run_show

    args = build_parser().parse_args(argv)
    handlers = {"search": run_search, "retrain": run_retrain, "show": run_show,
                "plot": run_plot, "export": run_export}
    try:
        return handlers[args.command](args)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        sys.stderr.close()
        return 0
    except (UserError, ValueError, OSError, ImportError) as err:
        print(f"pytorch-devol {args.command}: error: {err}", file=sys.stderr)
        return 2
