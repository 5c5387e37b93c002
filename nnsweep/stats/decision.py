"""What a comparison decided, as data: one ``Decision`` type for the verdict and the rounds.

The values are the strings stored in pairwise.csv and auto.json since the first reports, so
old tables read as ``Decision(value)``. A ``StrEnum``: a value compares equal to its string.
Words for a decision live in ``nnsweep.report.wording``; no code reads a sentence back.
"""

from __future__ import annotations

from enum import StrEnum


class Decision(StrEnum):
    """The outcome of one part of one pair of cells (A listed before B)."""

    A_BETTER = "a_better"  # A ends lower / succeeds more often, at the family's alpha
    B_BETTER = "b_better"  # B does
    EQUIVALENT = "equivalent"  # the difference is inside the margin, at the family's alpha
    UNDECIDED = "undecided"  # neither shown yet
    NOT_APPLICABLE = "not_applicable"  # nothing to compare (a failed cell, too few seeds)

    @property
    def separates(self) -> bool:
        """Whether one cell was found better than the other."""
        return self in (Decision.A_BETTER, Decision.B_BETTER)

    @property
    def decided(self) -> bool:
        """Whether the pair needs no more seeds (better or equivalent)."""
        return self in (Decision.A_BETTER, Decision.B_BETTER, Decision.EQUIVALENT)

    def swapped(self) -> Decision:
        """The same decision with A and B exchanged."""
        return {Decision.A_BETTER: Decision.B_BETTER, Decision.B_BETTER: Decision.A_BETTER}.get(
            self, self
        )


SEPARATING = (Decision.A_BETTER, Decision.B_BETTER)
