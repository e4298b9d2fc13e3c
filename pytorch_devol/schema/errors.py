"""The schema's error type."""

from __future__ import annotations

__all__ = ["InvalidGenomeError"]


class InvalidGenomeError(ValueError):
    """A genome vector (or a decoded gene) that the schema cannot accept.

    The message names the position (column name), the value and the allowed range, or the gene,
    slot and input shape that could not be built.
    """
