"""The schema's error types: a genome the schema cannot take, and a gene with a bug."""

from __future__ import annotations

__all__ = ["GeneError", "InvalidGenomeError"]


class InvalidGenomeError(ValueError):
    """A genome vector (or a decoded gene) that the schema cannot accept.

    The message names the position (column name), the value and the allowed range, or the gene,
    slot and input shape that could not be built.

    This is also the exception a gene's ``build`` raises to say "I cannot take this input
    shape": the candidate's fault, recorded as a failed candidate. Any other exception from a
    gene is treated as a bug in the gene.
    """


class GeneError(Exception):
    """A gene type's own code raised something other than `InvalidGenomeError` while the
    schema was dry-run (before any training): a bug in the gene. The message names the gene,
    field and value; the original exception is chained as ``__cause__``."""
