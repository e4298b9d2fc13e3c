"""The Python examples of README.md and the documentation site, read as a test runs them.

Every fenced ``python`` block is run, page by page, in one namespace per page and in order, so
a page's later blocks may use what its earlier ones defined. Two marks, on the line before a
block:

- ``<!-- not run: REASON -->``: the block is shown only (it needs a GPU, a cluster, data that
  is not here...); the reason is required.
- A ``text`` block right after a Python block (blank lines between are allowed) is what that
  block prints; ``...`` stands for any text, as in doctest's ELLIPSIS.
"""

from __future__ import annotations

import contextlib
import io
import linecache
import re
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])
_FENCE = re.compile(r"^(?P<mark><!-- not run: (?P<reason>[^\n]+?) -->\n)?```(?P<lang>\w*)\n"
                    r"(?P<code>.*?)^```$", re.M | re.S)
_NOT_RUN = re.compile(r"<!-- not run(?P<rest>[^>]*)-->")


@attrs.frozen
class Block:
    """One fenced Python block: its code, where it starts, and what the page says of it."""

    page: Path
    line: int
    code: str
    skip: str | None = None      # the reason it is not run
    output: str | None = None    # what it prints, when the page shows it

    @property
    def where(self) -> str:
        """``page:line``, as a traceback names it."""
        return f"{self.page.relative_to(ROOT)}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The Python blocks of ``page``, each with its skip reason and shown output."""
    text = page.read_text()
    fences = list(_FENCE.finditer(text))
    found = []
    for i, m in enumerate(fences):
        if m.group("lang") != "python":
            continue
        output = None
        nxt = fences[i + 1] if i + 1 < len(fences) else None
        if (nxt is not None and nxt.group("lang") == "text" and not nxt.group("mark")
                and not text[m.end():nxt.start()].strip()):
            output = nxt.group("code")
        line = text.count("\n", 0, m.start("code"))
        found.append(Block(page, line, m.group("code"), m.group("reason"), output))
    return found


def bad_marks(page: Path) -> list[str]:
    """Not-run marks without a reason, or not directly above a Python block."""
    text = page.read_text()
    marked = {m.start() for m in _FENCE.finditer(text) if m.group("mark")
              and m.group("lang") == "python"}
    return [f"{page.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}"
            for m in _NOT_RUN.finditer(text)
            if m.start() not in marked or not m.group("rest").startswith(": ")]


def matches(shown: str, printed: str) -> bool:
    """Whether ``printed`` is what the page shows, ``...`` matching any text."""
    def norm(s: str) -> str:
        return "\n".join(line.rstrip() for line in s.strip().splitlines())

    pattern = ".*?".join(re.escape(part) for part in norm(shown).split("..."))
    return re.fullmatch(pattern, norm(printed), flags=re.S) is not None


def run_page(page: Path, namespace: dict | None = None) -> dict:
    """Run every Python block of ``page`` not marked as not run, in order, in one namespace;
    an AssertionError names the block whose printed output differs from the page's."""
    namespace = {"__name__": f"docs_{page.stem}"} if namespace is None else namespace
    for b in blocks(page):
        if b.skip:
            continue
        printed = io.StringIO()
        # so that a traceback shows the page's lines
        linecache.cache[b.where] = (len(b.code), None, b.code.splitlines(True), b.where)
        with contextlib.redirect_stdout(printed):
            exec(compile(b.code, b.where, "exec"), namespace)
        if b.output is not None:
            assert matches(b.output, printed.getvalue()), (
                f"{b.where} printed\n{printed.getvalue()}\nbut the page shows\n{b.output}")
    return namespace


def block(marker: str) -> str:
    """The one Python block of all the pages that contains ``marker``."""
    (found,) = [b.code for page in PAGES for b in blocks(page) if marker in b.code]
    return found
