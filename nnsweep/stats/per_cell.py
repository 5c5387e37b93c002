"""Per-cell statistics over stored tables: labels, success, medians and rates (no words).

Reads the ``runs`` DataFrame that ``store`` wrote; never trains.

Definitions, stated once (the report repeats the ones a reader needs):

* Success. On a truth table (integer inputs and targets, no input row with two different
  targets: a network can fit every row) a seed succeeds when it *solves* the task, i.e.
  every training output rounds to its target. On noisy data (moons, circles, most CSVs) no
  network should fit every row, so "solved" does not apply: success there means that
  training did not diverge, and the report gives accuracies instead.
* Diverged seeds never succeed. Wherever all seeds of a cell enter a statistic (medians,
  quantiles, the pooled rank test, summary.csv) a diverged seed's error counts as +inf: it
  ranks worst. A failed cell (code error) has no seeds and is left out.
* Seeds and cells. With ``seed_stream=shared`` (the default, the tutorial's) seed s of every
  cell starts from ``np.random.seed(s)``, and the first
  draw is the first layer's weights, so cells with the same input and first hidden width
  share their first-layer weights seed by seed (8-8 and 8-16 with seed 7 start alike in
  their first layer); ``seed_stream=per_cell`` gives each shape's seed s its own stream
  (``nnsweep.train.model.SEED_STREAMS``), so shapes start from independent draws. Under
  the shared stream errors may correlate, seed by seed; the comparisons (``analysis``) treat
  cells as independent samples anyway. For a positive correlation that only makes them
  conservative (an unpaired test ignores a covariance that would shrink the variance of
  the difference); the pairing is not exploited, because most pairs of shapes share
  nothing and one rule for all pairs is easier to trust.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from nnsweep import schema
from nnsweep.schema import CELL_COLUMNS

CONFIDENCE = 0.95  # level of the per-cell intervals (medians, solve rates)
UNSTABLE_WARNING = 0.10  # warn when more than this fraction of a cell's seeds is unstable


def varying_columns(runs: pd.DataFrame) -> list[str]:
    """Settings that differ between cells: the sweep's axes."""
    return [c for c in CELL_COLUMNS if c in runs and runs[c].nunique(dropna=False) > 1]


def _format_setting(column: str, value: object) -> str:
    # Words name themselves ("8-16-8", "tanh"); numbers need their key ("lr=0.1").
    return str(value) if isinstance(value, str) else f"{column}={value}"


def cell_labels(runs: pd.DataFrame) -> pd.Series:
    """A short label per row naming its cell by the swept settings (layers if none vary)."""
    axes = varying_columns(runs) or ["layers"]
    labels = runs[axes].apply(
        lambda row: " ".join(_format_setting(c, row[c]) for c in axes), axis=1
    )
    return labels.astype(str)


# The error columns a report can compare cells on.
METRICS = {
    "final_error": "final training error margin",
    "holdout_error": "held-out error margin",
}


def solvable(runs: pd.DataFrame) -> pd.Series:
    """Per row: whether its dataset is a truth table that a network can fit exactly.

    Tables written before the ``solvable`` column existed fall back on the dataset's label:
    generated noisy data names its noise.
    """
    if "solvable" in runs:
        return runs["solvable"].fillna(False).astype(bool)
    return ~runs["dataset"].astype(str).str.contains("noise=", regex=False)


def seeded_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows that are seeds (failed cells dropped), with their flags back to bool
    (a failed cell's row leaves them NaN, which turns the columns to object), the cell
    label, and ``success`` (solved on a truth table; did not diverge on noisy data)."""
    seeded = runs[runs["status"] != "failed"].copy()
    for column in ("solved", "diverged", "unstable"):
        if column in seeded:
            seeded[column] = seeded[column].fillna(False).astype(bool)
    seeded["cell"] = cell_labels(seeded) if len(seeded) else pd.Series(dtype=str)
    seeded["solvable"] = solvable(seeded)
    ok = seeded["status"] == "ok"
    seeded["success"] = np.where(seeded["solvable"], seeded["solved"] & ok, ok)
    return seeded


def ranked_error(runs: pd.DataFrame, metric: str = "final_error") -> pd.Series:
    """An error column with diverged seeds at +inf, so they rank worst."""
    return schema.worst_when_diverged(runs[metric], runs["status"] == "ok")


def available_metrics(runs: pd.DataFrame) -> list[str]:
    """The metrics with values: the training error always, the held-out one when recorded."""
    return [m for m in METRICS if m in runs and runs.loc[runs["status"] == "ok", m].notna().any()]


# --------------------------------------------------------------------------------------
# Per-cell statistics
# --------------------------------------------------------------------------------------


def median_ci(values: np.ndarray, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Distribution-free interval of the median from order statistics (binomial; exact).

    ``scipy.stats.quantile_test``'s interval: it does not shrink to a point when the IQR
    is wide; it is narrow only when many seeds end at (nearly) the median's value. NaN when
    the cell has too few seeds for the level.
    """
    if len(values) == 0:
        return np.nan, np.nan
    interval = stats.quantile_test(values, q=float(np.median(values)), p=0.5)
    bounds = interval.confidence_interval(confidence)
    return float(bounds.low), float(bounds.high)


def _ci_note(values: np.ndarray, low: float, high: float, q1: float, q3: float) -> str:
    """Why a median interval has (nearly) zero width although the IQR is wide, when it has."""
    if not (np.isfinite(low) and np.isfinite(high)) or q3 - q1 <= 0:
        return ""
    if high - low > 1e-3 * (q3 - q1):
        return ""
    inside = int(((values >= low) & (values <= high)).sum())
    return (
        f"{inside} of {len(values)} seeds end within [{low:.6g}, {high:.6g}] and the median "
        "falls among them, so the median is pinned to that value and its interval is that "
        "narrow although the IQR is wide"
    )


def wilson_ci(successes: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion (``scipy.stats.binomtest``)."""
    if n == 0:
        return np.nan, np.nan
    bounds = stats.binomtest(successes, n).proportion_ci(confidence, method="wilson")
    return float(bounds.low), float(bounds.high)


def _median_iterations(first_below: pd.Series) -> float:
    """Median first iteration below the threshold; never-reached seeds count as +inf."""
    iterations = first_below.where(first_below >= 0, np.inf).to_numpy(dtype=float)
    return float(np.median(iterations))


def _column_median(group: pd.DataFrame, column: str) -> float:
    if column not in group:
        return np.nan
    values = group.loc[group["status"] == "ok", column].dropna()
    return float(values.median()) if len(values) else np.nan


def cell_statistics(runs: pd.DataFrame, metric: str = "final_error") -> pd.DataFrame:
    """One row per cell, ordered by median (best first).

    Columns: cell, the settings, n_seeds, n_diverged, n_weights, median, ci_low, ci_high
    (exact order-statistic interval of the median), ci_note, q1, q3, iqr, solvable,
    solve_rate, solve_ci_low, solve_ci_high (Wilson; the success rate: solved on a truth
    table, did not diverge on noisy data), solved_fraction (NaN on noisy data),
    unstable_fraction, median_end_change, accuracy, holdout_accuracy (medians over the
    seeds that did not diverge), median_iterations_to_threshold, error_threshold,
    seed1_error, seed1_rank (1 = best of the cell's seeds).
    """
    seeded = seeded_runs(runs)
    seeded["ranked_error"] = ranked_error(seeded, metric)
    rows = []
    for cell, group in seeded.groupby("cell", sort=False):
        errors = group["ranked_error"].to_numpy(dtype=float)
        low, high = median_ci(errors)
        q1, median, q3 = np.quantile(errors, [0.25, 0.5, 0.75])
        seed1 = group[group["seed"] == 1]
        seed1_error = float(seed1["ranked_error"].iloc[0]) if len(seed1) else np.nan
        successes = int(group["success"].sum())
        solve_low, solve_high = wilson_ci(successes, len(group))
        is_solvable = bool(group["solvable"].iloc[0])
        unstable = group["unstable"] if "unstable" in group else pd.Series(False, group.index)
        rows.append(
            {
                "cell": cell,
                **{c: group[c].iloc[0] for c in CELL_COLUMNS},
                "n_seeds": len(group),
                "n_diverged": int((group["status"] == "diverged").sum()),
                "n_weights": int(group["n_weights"].iloc[0]) if "n_weights" in group else np.nan,
                "median": float(median),
                "ci_low": low,
                "ci_high": high,
                "ci_note": _ci_note(errors, low, high, q1, q3),
                "q1": float(q1),
                "q3": float(q3),
                "iqr": float(q3 - q1),
                "solvable": is_solvable,
                "solve_rate": successes / len(group),
                "solve_ci_low": solve_low,
                "solve_ci_high": solve_high,
                "solved_fraction": float(group["solved"].mean()) if is_solvable else np.nan,
                "unstable_fraction": float(unstable.mean()),
                "median_end_change": _column_median(group, "end_change"),
                "accuracy": _column_median(group, "accuracy"),
                "holdout_accuracy": _column_median(group, "holdout_accuracy"),
                "median_iterations_to_threshold": _median_iterations(
                    group["first_below_threshold"]
                ),
                "seed1_error": seed1_error,
                "seed1_rank": int((errors < seed1_error).sum() + 1) if len(seed1) else np.nan,
            }
        )
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return table.sort_values("median", kind="stable").reset_index(drop=True)


def failure_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell of a truth table: how many seeds did not solve it, and where they ended."""
    seeded = seeded_runs(runs)
    rows = []
    for cell, group in seeded.groupby("cell", sort=False):
        if not group["solvable"].iloc[0]:
            continue
        stuck = group[~group["solved"]]
        solved_errors = group[group["solved"]]["final_error"]
        rows.append(
            {
                "cell": cell,
                "n_seeds": len(group),
                "n_unsolved": len(stuck),
                "failure_rate": len(stuck) / len(group),
                "unsolved_median_final_error": float(ranked_error(stuck).median())
                if len(stuck)
                else np.nan,
                "unsolved_median_max_abs_error": float(stuck["max_abs_error"].median())
                if len(stuck)
                else np.nan,
                "solved_median_final_error": float(solved_errors.median())
                if len(solved_errors)
                else np.nan,
            }
        )
    return pd.DataFrame(rows)
