"""Every Python example in README.md and the documentation site runs as printed, and prints
what the page shows (see ``tests/docs_examples.py`` for the two marks a page may use)."""

from __future__ import annotations

import pytest

from tests.docs_checks import CHECKS
from tests.docs_examples import PAGES, ROOT, bad_marks, blocks, run_page

RUN = [p for p in PAGES if any(not b.skip for b in blocks(p))]


def test_every_block_is_run_or_says_why_not():
    assert [m for page in PAGES for m in bad_marks(page)] == []
    shown = [b.where for page in PAGES for b in blocks(page) if b.skip and not b.skip.strip()]
    assert shown == []
    # the harness finds the pages' examples: a page that loses its blocks fails here
    assert len(RUN) >= 15 and ROOT / "README.md" in RUN
    # the home page shows README's example without running it twice
    (home,) = [b for b in blocks(ROOT / "docs" / "index.md") if b.skip]
    assert home.code == blocks(ROOT / "README.md")[0].code


@pytest.mark.slow
@pytest.mark.parametrize("page", RUN, ids=[str(p.relative_to(ROOT)) for p in RUN])
def test_page_examples_run(page, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    namespace = run_page(page)
    check = CHECKS.get(str(page.relative_to(ROOT)))
    if check is not None:
        check(namespace, tmp_path)
