"""The command line explains itself: every flag of every subcommand has a help line that ends
with its default, and ``show`` words its rungs as a reader would."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from pytorch_devol.cli import build_parser
from pytorch_devol.cli.show import _show_rungs


def _subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_subcommand_is_there():
    assert set(_subcommands()) == {"search", "retrain", "show", "plot", "export"}


@pytest.mark.parametrize("name", sorted(_subcommands()))
def test_every_flag_has_help_that_shows_its_default(name):
    parser = _subcommands()[name]
    missing, no_default = [], []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        flag = "/".join(action.option_strings) or action.dest
        help_text = action.help or ""
        if len(help_text.split()) < 3:
            missing.append(flag)
        elif action.option_strings and "(default: " not in help_text:
            no_default.append(flag)
    assert not missing, f"pytorch-devol {name}: no help text for {missing}"
    assert not no_default, f"pytorch-devol {name}: help without its default for {no_default}"
    assert "(default: " in parser.format_help()


def test_search_help_names_the_quick_defaults():
    text = " ".join(_subcommands()["search"].format_help().split())
    assert "generations (default: 10 on digits, else 5)" in text
    assert "--data PATH" in text and "--tensorboard DIR" in text and "--mlflow [URI]" in text


class _Fake:
    def __init__(self, rungs: list[int]):
        self.history = [{"index": i, "rung": r, "rung_epochs": 1, "cached": False}
                        for i, top in enumerate(rungs) for r in range(top + 1)]


def test_show_words_rungs_with_singular_and_plural():
    fidelity = {"kind": "sh", "eta": 3, "budgets": [1, 3, 9], "type": "SuccessiveHalving"}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _show_rungs(fidelity, 9, _Fake([0] * 5 + [1, 1] + [2]))
    line = out.getvalue()
    assert "rungs: 1 epoch: 8 candidates, 3 epochs: 3 candidates, 9 epochs: 1 candidate;" in line
    assert "fidelity: sh (eta 3)" in line
