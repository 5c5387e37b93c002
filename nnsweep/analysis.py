"""Statistics over stored tables: per-cell summaries, pairwise tests, verdicts in words.

Reads the ``runs`` and ``curves`` DataFrames that ``store`` wrote; never trains.

Choices, stated once:
* A diverged seed ranks worst: its final error counts as +inf in medians and rank tests.
  A failed cell (code error) has no seeds and is left out of the statistics.
* Seeds of different cells are independent samples (their weights are drawn from
  different shapes), so pairs are compared with the unpaired Mann-Whitney U test, two-sided,
  with Holm's correction over all pairs, at ALPHA = 0.05.
* The effect size is P(A < B) + 0.5 P(A = B): the chance that a random seed of A ends
  below a random seed of B (0.5 = no tendency).
* How often seeds solve the task (every output rounds to its target) is compared per pair
  with Fisher's exact test, Holm-corrected separately: a lower median error and a higher
  solve rate are different claims.
* "Converged" means the error margin first fell below the run's ``error_threshold``
  (default 0.01); a seed that never did counts as +inf iterations.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from nnsweep.store import CELL_COLUMNS

ALPHA = 0.05  # family-wise error rate of the pairwise tests (after Holm)
CONFIDENCE = 0.95  # bootstrap confidence level of each cell's median
BOOTSTRAP_RESAMPLES = 9999  # resamples per cell
BOOTSTRAP_SEED = 20261128  # fixed, so a report regenerated from the same tables is identical


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


def seeded_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """The rows that are seeds (failed cells dropped), with their flags back to bool
    (a failed cell's row leaves them NaN, which turns the columns to object)."""
    seeded = runs[runs["status"] != "failed"].copy()
    for column in ("solved", "diverged"):
        if column in seeded:
            seeded[column] = seeded[column].astype(bool)
    seeded["cell"] = cell_labels(seeded) if len(seeded) else pd.Series(dtype=str)
    return seeded


def ranked_error(runs: pd.DataFrame, metric: str = "final_error") -> pd.Series:
    """An error column with diverged seeds at +inf, so they rank worst."""
    return runs[metric].where(runs["status"] == "ok", np.inf)


def available_metrics(runs: pd.DataFrame) -> list[str]:
    """The metrics with values: the training error always, the held-out one when recorded."""
    return [m for m in METRICS if m in runs and runs.loc[runs["status"] == "ok", m].notna().any()]


def _median_ci(values: np.ndarray) -> tuple[float, float]:
    if len(values) < 2 or np.all(values == values[0]):
        return float(np.median(values)), float(np.median(values))
    result = stats.bootstrap(
        (values,),
        lambda sample, axis: np.median(sample, axis=axis),
        vectorized=True,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def _median_iterations(first_below: pd.Series) -> float:
    """Median first iteration below the threshold; never-reached seeds count as +inf."""
    iterations = first_below.where(first_below >= 0, np.inf).to_numpy(dtype=float)
    return float(np.median(iterations))


def cell_statistics(runs: pd.DataFrame, metric: str = "final_error") -> pd.DataFrame:
    """One row per cell, ordered by median final error (best first).

    Columns: cell, the settings, n_seeds, n_diverged, median, q1, q3, iqr, mean, ci_low,
    ci_high, solved_fraction, median_iterations_to_threshold, error_threshold, seed1_error,
    seed1_rank (1 = best of the cell's seeds).
    """
    seeded = seeded_runs(runs)
    seeded["ranked_error"] = ranked_error(seeded, metric)
    rows = []
    for cell, group in seeded.groupby("cell", sort=False):
        errors = group["ranked_error"].to_numpy(dtype=float)
        low, high = _median_ci(errors)
        q1, median, q3 = np.quantile(errors, [0.25, 0.5, 0.75])
        seed1 = group[group["seed"] == 1]
        seed1_error = float(seed1["ranked_error"].iloc[0]) if len(seed1) else np.nan
        rows.append(
            {
                "cell": cell,
                **{c: group[c].iloc[0] for c in CELL_COLUMNS},
                "n_seeds": len(group),
                "n_diverged": int((group["status"] == "diverged").sum()),
                "median": float(median),
                "q1": float(q1),
                "q3": float(q3),
                "iqr": float(q3 - q1),
                "mean": float(np.mean(errors)),
                "ci_low": low,
                "ci_high": high,
                "solved_fraction": float(group["solved"].mean()),
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


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1)."""
    p_values = np.asarray(p_values, dtype=float)
    order = np.argsort(p_values, kind="stable")
    count = len(p_values)
    adjusted_sorted = np.minimum(1.0, (count - np.arange(count)) * p_values[order])
    adjusted_sorted = np.maximum.accumulate(adjusted_sorted)
    adjusted = np.empty(count)
    adjusted[order] = adjusted_sorted
    return adjusted


def pairwise_tests(
    runs: pd.DataFrame, cells: pd.DataFrame, metric: str = "final_error"
) -> pd.DataFrame:
    """Every pair of cells: Mann-Whitney U, Holm-adjusted p, P(A<B), and a verdict.

    Pairs are listed with ``a`` the cell of lower median (as ordered in ``cells``).
    """
    seeded = seeded_runs(runs)
    seeded["ranked_error"] = ranked_error(seeded, metric)
    samples = {cell: g["ranked_error"].to_numpy(dtype=float) for cell, g in seeded.groupby("cell")}
    solved = {cell: g["solved"].to_numpy(dtype=bool) for cell, g in seeded.groupby("cell")}
    rows = []
    for a, b in combinations(cells["cell"], 2):
        x, y = samples[a], samples[b]
        result = stats.mannwhitneyu(x, y, alternative="two-sided")
        solved_a, solved_b = int(solved[a].sum()), int(solved[b].sum())
        table = [[solved_a, len(x) - solved_a], [solved_b, len(y) - solved_b]]
        # scipy's U counts pairs where x > y (ties half): so P(x < y) + ties/2 = 1 - U / (n m).
        p_a_below_b = 1.0 - float(result.statistic) / (len(x) * len(y))
        rows.append(
            {
                "a": a,
                "b": b,
                "n_a": len(x),
                "n_b": len(y),
                "u_statistic": float(result.statistic),
                "p_value": float(result.pvalue),
                "p_a_below_b": p_a_below_b,
                "solved_a": solved_a / len(x),
                "solved_b": solved_b / len(y),
                "p_solved": float(stats.fisher_exact(table).pvalue),
            }
        )
    pairs = pd.DataFrame(rows)
    if pairs.empty:
        return pairs
    pairs["p_holm"] = holm(pairs["p_value"].to_numpy())
    pairs["significant"] = pairs["p_holm"] < ALPHA
    pairs["verdict"] = pairs.apply(pair_verdict, axis=1)
    pairs["p_solved_holm"] = holm(pairs["p_solved"].to_numpy())
    pairs["solved_verdict"] = pairs.apply(solved_verdict, axis=1)
    return pairs


def _p(value: float) -> str:
    return "< 0.0001" if value < 1e-4 else f"= {value:.4f}" if value < 0.01 else f"= {value:.3f}"


def pair_verdict(row: pd.Series) -> str:
    """One sentence for one pair."""
    if not row["significant"]:
        if row["n_a"] == row["n_b"]:
            return f"{row['a']} and {row['b']} cannot be told apart with {row['n_a']} seeds each"
        return (
            f"{row['a']} and {row['b']} cannot be told apart with {row['n_a']} and "
            f"{row['n_b']} seeds"
        )
    lower, higher, prob = row["a"], row["b"], row["p_a_below_b"]
    if prob < 0.5:
        lower, higher, prob = higher, lower, 1.0 - prob
    evidence = f"p_holm {_p(row['p_holm'])}, P({lower}<{higher}) = {prob:.2f}"
    return f"{lower} ends lower than {higher} ({evidence})"


def solved_verdict(row: pd.Series) -> str:
    """One sentence on how often each cell of a pair solves the task."""
    p_text = f"p_holm {_p(row['p_solved_holm'])}"
    if row["p_solved_holm"] >= ALPHA:
        return (
            f"{row['a']} and {row['b']} cannot be told apart in how often they solve the task "
            f"({row['solved_a']:.0%} vs {row['solved_b']:.0%}, {p_text})"
        )
    (more, more_rate), (fewer, fewer_rate) = sorted(
        [(row["a"], row["solved_a"]), (row["b"], row["solved_b"])], key=lambda item: -item[1]
    )
    return (
        f"{more} solves the task more often than {fewer} "
        f"({more_rate:.0%} vs {fewer_rate:.0%}, {p_text})"
    )


def overall_solved_verdict(pairs: pd.DataFrame) -> str | None:
    """One sentence on solve rates across all pairs."""
    if pairs.empty:
        return None
    different = pairs[pairs["p_solved_holm"] < ALPHA]
    if different.empty:
        return "No two cells differ in how often their seeds solve the task."
    return (
        "On solving the task (every output rounds to its target): "
        + "; ".join(different.apply(solved_verdict, axis=1))
        + "; no other pair differs."
    )


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def overall_verdict(cells: pd.DataFrame, pairs: pd.DataFrame, what: str = "final error") -> str:
    """Rank the cells only as far as the tests support.

    Cells are listed by median (best first); the sentence then names the pairs the tests
    cannot separate, and any pair where the rank test disagrees with the medians' order.
    """
    if len(cells) < 2:
        return "Only one cell: nothing to compare."
    if not pairs["significant"].any():
        return (
            f"No cell can be told apart from any other at alpha = {ALPHA} (Holm-corrected): "
            "the sweep does not support any ranking."
        )
    order = cells["cell"].tolist()
    sentences = [f"From lowest to highest median {what}: {_join(order)}"]
    untold = pairs[~pairs["significant"]]
    # pairs lists a before b in median order; a significant P(a<b) < 0.5 contradicts it.
    against = pairs[pairs["significant"] & (pairs["p_a_below_b"] < 0.5)]
    if untold.empty and against.empty:
        sentences.append(
            "each ends lower than every cell after it (Mann-Whitney U, Holm-corrected)"
        )
    else:
        sentences.append(
            "each ends lower than every cell after it (Mann-Whitney U, Holm-corrected) except"
        )
        if len(untold):
            sentences[-1] += " these pairs, which cannot be told apart: " + "; ".join(
                f"{r.a} vs {r.b}" for r in untold.itertuples()
            )
        if len(against):
            sentences[-1] += (
                " and" if len(untold) else ""
            ) + " where the test reverses the medians: "
            sentences[-1] += "; ".join(f"{r.b} ends lower than {r.a}" for r in against.itertuples())
    return ". ".join(sentences[:1]) + "; " + sentences[1] + "."


def seed1_note(cells: pd.DataFrame) -> str | None:
    """How the single-seed comparison (the tutorial's method) reads against all seeds."""
    if cells["seed1_error"].isna().any() or len(cells) < 2:
        return None
    by_seed1 = cells.sort_values("seed1_error")["cell"].tolist()
    by_median = cells["cell"].tolist()
    ranks = ", ".join(
        f"{r.cell}: seed 1 is #{int(r.seed1_rank)} of {r.n_seeds}" for r in cells.itertuples()
    )
    agreement = "the same order as" if by_seed1 == by_median else "a different order from"
    return (
        f"Seed 1 alone (the tutorial's method) orders the cells {' < '.join(by_seed1)}; "
        f"that is {agreement} the medians over all seeds ({' < '.join(by_median)}). "
        f"Where seed 1 falls within its own cell: {ranks}."
    )


def failure_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell: how many seeds did not solve the task, and where those seeds ended."""
    seeded = seeded_runs(runs)
    rows = []
    for cell, group in seeded.groupby("cell", sort=False):
        stuck = group[~group["solved"]]
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
                "solved_median_final_error": float(group[group["solved"]]["final_error"].median())
                if group["solved"].any()
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def curve_bands(curves: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    """Median and quartiles of the error margin per (cell, iteration), diverged seeds as inf."""
    labelled = curves.merge(
        runs[["job", "seed", *varying_columns(runs)]].assign(cell=cell_labels(runs)),
        on=["job", "seed"],
        how="inner",
        suffixes=("", "_run"),
    )
    errors = labelled["error"].where(np.isfinite(labelled["error"]), np.inf)
    labelled = labelled.assign(error=errors.fillna(np.inf))
    grouped = labelled.groupby(["cell", "iteration"], sort=False)["error"]
    bands = grouped.quantile([0.25, 0.5, 0.75]).unstack()
    bands.columns = ["q1", "median", "q3"]
    return bands.reset_index()
