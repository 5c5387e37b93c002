"""A report column's number format follows its source column, not its display heading."""

from __future__ import annotations

import numpy as np
import pandas as pd

from nnsweep.report.render import Section, render_markdown, shown

TABLE = pd.DataFrame(
    {
        "solve_rate": [0.84],
        "p_equivalence_holm": [0.5],
        "median_iterations_to_threshold": [np.inf],
        "median": [0.00123456],
    }
)


def _row(headings: dict[str, str]) -> str:
    lines = render_markdown("t", [Section("s", table=shown(TABLE, headings))]).splitlines()
    return lines[1 + next(i for i, line in enumerate(lines) if line.startswith("|---"))]


def test_renaming_a_heading_keeps_its_numbers_format() -> None:
    usual = {
        "solve_rate": "solved",
        "p_equivalence_holm": "p equivalence (Holm)",
        "median_iterations_to_threshold": "median iterations to threshold",
        "median": "median final error",
    }
    renamed = {source: f"column {i}" for i, source in enumerate(usual)}
    rows = {_row(usual), _row(renamed)}
    assert rows == {"| 84% | 0.5000 | never | 0.00123 |"}, rows
