"""What every subcommand shares: the one-line user error and number formatting."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["UserError", "fmt"]


class UserError(Exception):
    """A mistake on the command line: printed as one line, exit status 2."""


def fmt(value: Any, digits: int = 4) -> str:
    """A metric for a table: ``-`` when missing or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)
