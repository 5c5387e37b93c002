"""The robustness sentence judges trained networks only (issue 21, HIGH 6).

With ``log_every`` coarser than the checkpoints (the README's ``my_sweep``: 20,000
iterations logged every 10,000), 25% of the iterations has no logged point after iteration
0: reading "the last point at or before 25%" judged the untrained networks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from test_verdict import _runs

from nnsweep.report import wording
from nnsweep.stats import robust


def _logged_every(runs: pd.DataFrame, iterations: int, log_every: int) -> pd.DataFrame:
    """Curves logged at 0, log_every, ... and at the end; the untrained point is equal for
    every cell (so a verdict read there is "undecided"), the others are the final error."""
    rows = []
    for row in runs.itertuples():
        for iteration in sorted({*range(0, iterations, log_every), iterations}):
            error = 0.5 if iteration == 0 else row.final_error
            rows.append({"job": row.job, "seed": row.seed, "iteration": iteration, "error": error})
    return pd.DataFrame(rows)


def _robustness(runs: pd.DataFrame, curves: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    table, stability = robust.robustness(runs, curves)
    return table, str(wording.robustness_sentence(stability))


def _two_cells(iterations: int) -> pd.DataFrame:
    rng = np.random.default_rng(6)
    flags = np.ones(30, bool)
    cells = {"8": (rng.normal(1.0, 0.05, 30), flags), "4": (rng.normal(1.5, 0.05, 30), flags)}
    return _runs(cells, iterations=iterations)


def test_a_checkpoint_without_a_logged_point_is_skipped_and_said_so() -> None:
    runs = _two_cells(20_000)
    table, sentence = _robustness(runs, _logged_every(runs, 20_000, 10_000))
    assert set(table["fraction"]) == {0.5, 1.0}
    assert 0 not in set(table["iteration"])  # no verdict read off untrained networks
    assert "(not at 25% and 75%, where no point is logged)" in sentence
    assert "stable from iteration 10,000 on" in sentence
    assert "differs" not in sentence and "changes" not in sentence


def test_with_no_logged_checkpoint_before_the_end_robustness_is_not_checked() -> None:
    runs = _two_cells(20_000)
    table, sentence = _robustness(runs, _logged_every(runs, 20_000, 20_000))
    assert table.empty
    assert sentence.startswith("Robustness: not checked: no logged point falls at 25%")


def test_a_point_logged_inside_each_checkpoints_span_is_used() -> None:
    runs = _two_cells(30_000)  # 25% is iteration 7,500; the point at 7,000 is inside (0, 7,500]
    table, sentence = _robustness(runs, _logged_every(runs, 30_000, 1_000))
    assert set(table["fraction"]) == {0.25, 0.5, 0.75, 1.0}
    assert table.groupby("fraction")["iteration"].max().tolist() == [7_000, 15_000, 22_000, 30_000]
    assert "not at" not in sentence
