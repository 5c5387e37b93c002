"""The schema's shared rules: one definition, used everywhere."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from nnsweep.schema import worst_when_diverged

PACKAGE = Path(__file__).resolve().parents[1] / "nnsweep"

# A hand-written "diverged seed counts as worst": a status or finiteness mask that puts inf
# (or the worst value) in place of a value.
HAND_WRITTEN_WORST = re.compile(r"(\.where\(|np\.where\().*(\"ok\"|isfinite).*(np\.inf|worst)")


def test_a_diverged_or_missing_error_is_infinite_and_keeps_its_index() -> None:
    errors = pd.Series([0.1, np.nan, 0.3, np.inf, 0.5], index=[10, 11, 12, 13, 14])
    ok = pd.Series([True, True, False, True, True], index=errors.index)
    ranked = worst_when_diverged(errors, ok)
    assert list(ranked.index) == [10, 11, 12, 13, 14]
    assert ranked.tolist() == [0.1, np.inf, np.inf, np.inf, 0.5]
    assert worst_when_diverged(errors).tolist() == [0.1, np.inf, 0.3, np.inf, 0.5]


def test_a_diverged_accuracy_is_zero_and_arrays_stay_arrays() -> None:
    accuracy = np.array([0.9, np.nan, 0.7])
    ranked = worst_when_diverged(accuracy, np.array([True, True, False]), higher_is_better=True)
    assert isinstance(ranked, np.ndarray)
    assert ranked.tolist() == [0.9, 0.0, 0.0]


def test_the_rule_is_written_once() -> None:
    """Every module that ranks seeds calls ``worst_when_diverged`` instead of its own mask."""
    found = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "schema.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if HAND_WRITTEN_WORST.search(line)
    ]
    assert found == []
