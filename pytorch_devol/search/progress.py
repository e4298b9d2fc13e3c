"""What a running search prints: a DEvol-style line per generation and a progress bar.

The bar needs tqdm (an optional extra) and a terminal; without either, only the lines print.
``verbose=False`` silences everything.
"""

from __future__ import annotations

import sys
from typing import Any, TextIO

from .callbacks import GenerationSummary

__all__ = ["Reporter"]


class Reporter:
    """Prints search progress to ``stream`` (stdout by default)."""

    def __init__(self, metric: str, verbose: bool = True, stream: TextIO | None = None,
                 progress_bar: bool | None = None):
        self.metric, self.verbose = metric, verbose
        self.stream = stream if stream is not None else sys.stdout
        self.progress_bar = progress_bar
        self._bar: Any = None
        self._counted: set[int] = set()  # candidates the bar has counted

    def _print(self, text: str) -> None:
        if self.verbose:
            print(text, file=self.stream, flush=True)

    def message(self, text: str) -> None:
        self._print(text)

    def start_generation(self, generation: int, count: int) -> None:
        self._close_bar()
        if not self.verbose or self.progress_bar is False:
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return
        # disable=None turns the bar off when the stream is not a terminal.
        self._bar = tqdm(total=count, desc=f"generation {generation}", unit="model",
                         leave=False, file=sys.stderr,
                         disable=None if self.progress_bar is None else False)

    def candidate(self, record: dict[str, Any]) -> None:
        if self._bar is not None:
            if record["index"] in self._counted:  # a promotion of a candidate counted already
                return
            self._counted.add(record["index"])
            fitness = record["fitness"]
            self._bar.set_postfix_str(f"{self.metric} {fitness:.4f}" if fitness is not None
                                      else record["metrics"]["status"])
            self._bar.update(1)

    def end_generation(self, summary: GenerationSummary) -> None:
        self._close_bar()
        s = summary
        if s.candidates - s.failed - s.infeasible:
            line = (f"best {self.metric}: {s.best_fitness:.4f}  mean: {s.mean_fitness:.4f}  "
                    f"std: {s.std_fitness:.4f}")
        else:
            line = "every candidate failed"
        best = s.best_so_far
        overall = f"  (best so far {best['fitness']:.4f})" if best is not None else ""
        skipped = f", {s.infeasible} infeasible (not trained)" if s.infeasible else ""
        self._print(f"Generation {s.generation}: {line}  [{s.candidates} models, {s.cached} "
                    f"cached, {s.failed} failed{skipped}]{overall}")

    def _close_bar(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def close(self) -> None:
        self._close_bar()
