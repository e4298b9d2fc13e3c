"""Every Python example in README.md and the documentation site runs as printed, and prints
what the page shows (see ``tests/docs_examples.py`` for the two marks a page may use)."""

from __future__ import annotations

import pytest

from tests.docs_examples import PAGES, ROOT, bad_marks, blocks, run_page
from tests.test_docs_extending import (
    check_evaluator,
    check_objective,
    check_operator,
    check_strategy,
    check_training_gene,
)
from tests.test_fidelity_protocol import check_scheduler_page

RUN = [p for p in PAGES if any(not b.skip for b in blocks(p))]


def test_every_block_is_run_or_says_why_not():
    assert [m for page in PAGES for m in bad_marks(page)] == []
    shown = [b.where for page in PAGES for b in blocks(page) if b.skip and not b.skip.strip()]
    assert shown == []
    # the harness finds the pages' examples: a page that loses its blocks fails here
    assert len(RUN) >= 15 and ROOT / "README.md" in RUN


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN, ids=[str(p.relative_to(ROOT)) for p in RUN])
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = run_page(page)
    check = CHECKS.get(str(page.relative_to(ROOT)))
    if check is not None:
        check(namespace, tmp_path)


def _readme(ns, tmp_path):
    assert (tmp_path / "runs" / "readme" / "best.pt").exists()
    assert sorted({r["index"] for r in ns["resumed"].history}) == list(range(8))
    assert 0.0 < ns["result"].best_metrics["val_accuracy"] <= 1.0


def _gene(ns, tmp_path):
    import torch

    assert ns["model"](torch.rand(2, 1, 8, 8)).shape == (2, 10)
    residual = ns["ResidualGene"](active=True, kernel=5, activation="gelu")
    modules, shape = residual.build((4, 6, 6))
    assert shape == (4, 6, 6) and modules[0](torch.rand(1, 4, 6, 6)).shape == (1, 4, 6, 6)


def _multi_fidelity(ns, tmp_path):
    assert ns["asha"].best_record["final"] and ns["sh"].best_record["rung"] == 2


def _trackers(ns, tmp_path):
    assert any((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert (tmp_path / "mlflow.db").exists()


def _warm_start(ns, tmp_path):
    assert any((tmp_path / "runs" / "old" / "donors").glob("*.pt"))  # the final pool stays
    assert not (tmp_path / "runs" / "new" / "warm").exists()  # the copies go at the end


CHECKS = {
    "README.md": _readme,
    "docs/index.md": _readme,
    "docs/extending/gene.md": _gene,
    "docs/extending/fidelity.md": check_scheduler_page,
    "docs/extending/training-gene.md": check_training_gene,
    "docs/extending/strategy.md": check_strategy,
    "docs/extending/operator.md": check_operator,
    "docs/extending/evaluator.md": check_evaluator,
    "docs/extending/objective.md": check_objective,
    "docs/guide/multi-fidelity.md": _multi_fidelity,
    "docs/guide/trackers.md": _trackers,
    "docs/guide/warm-start.md": _warm_start,
}
