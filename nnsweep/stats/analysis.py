"""Statistics over stored tables: per-cell summaries, the two-part verdict, and its words.

Reads the ``runs`` and ``curves`` DataFrames that ``store`` wrote; never trains.

Definitions, stated once (the report repeats the ones a reader needs):

* Success. On a truth table (integer inputs and targets, no input row with two different
  targets: a network can fit every row) a seed succeeds when it *solves* the task, i.e.
  every training output rounds to its target. On noisy data (moons, circles, most CSVs) no
  network should fit every row, so "solved" does not apply: success there means that
  training did not diverge, and the report gives accuracies instead.
* Diverged seeds never succeed. Wherever all seeds of a cell enter a statistic (medians,
  quantiles, the pooled rank test, summary.csv) a diverged seed's error counts as +inf: it
  ranks worst. A failed cell (code error) has no seeds and is left out.
* Seeds of different cells are independent samples, so pairs are compared unpaired.
* Every pair of cells gets up to three parts:
  - reliability: success rate per cell with a Wilson score interval; the difference of the
    rates with Newcombe's hybrid score interval (built from the two Wilson intervals) and
    Fisher's exact test;
  - quality: among the seeds that succeeded, P(A<B) + 0.5 P(A=B) (the chance that a
    random seed of A ends below a random seed of B) with the Brunner-Munzel t interval and
    test (scipy.stats.brunnermunzel), and the ratio of the medians with a percentile
    bootstrap interval;
  - pooled: the same over all seeds.
  A part that does not apply (nobody failed, nobody succeeded, fewer than 2 seeds) is left
  out with the reason.
* One Holm family per call of ``pair_decisions``: every test of every applicable part of
  every pair. The report puts all tests its verdict sentences rely on (training and
  held-out) into one family.
* Decision per part, at family-wise ``alpha``:
  - "equivalent" when the 95% CI lies inside the margin (P(A<B) in ``margin``, default
    [0.44, 0.56]; a solve-rate difference within the same half-width, +-6 points);
  - else "a_better" / "b_better" when the Holm-adjusted p is below ``alpha``;
  - else "undecided", with the seeds per cell that would decide it at the observed effect:
    Noether's formula for the rank test, the normal approximation for two proportions,
    both at 80% power and at the Bonferroni level alpha / family size (which guarantees
    Holm's); against the nearer margin when the estimate lies inside the margin.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from nnsweep.schema import CELL_COLUMNS

ALPHA = 0.05  # family-wise error rate of the verdict's tests (after Holm)
CONFIDENCE = 0.95  # level of every interval
MARGIN = (0.44, 0.56)  # P(A<B) inside this is "practically equivalent"
POWER = 0.8  # power assumed by the seeds-needed estimates
UNSTABLE_WARNING = 0.10  # warn when more than this fraction of a cell's seeds is unstable
CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)  # fractions of the iterations the verdict is re-checked at
BOOTSTRAP_RESAMPLES = 9999  # resamples per ratio-of-medians interval
BOOTSTRAP_SEED = 20261128  # fixed, so a report regenerated from the same tables is identical

PARTS = ("reliability", "quality", "pooled")


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
    return runs[metric].where(runs["status"] == "ok", np.inf)


def available_metrics(runs: pd.DataFrame) -> list[str]:
    """The metrics with values: the training error always, the held-out one when recorded."""
    return [m for m in METRICS if m in runs and runs.loc[runs["status"] == "ok", m].notna().any()]


def success_words(solvable_cells: bool) -> tuple[str, str]:
    """How the report names success: (noun phrase, verb phrase)."""
    if solvable_cells:
        return "solve rate", "solves the task"
    return "rate of seeds that did not diverge", "diverges less often"


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


# --------------------------------------------------------------------------------------
# The parts of a pairwise comparison, on plain arrays
# --------------------------------------------------------------------------------------


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


def newcombe_ci(
    successes_a: int, n_a: int, successes_b: int, n_b: int, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Newcombe's hybrid score interval (his method 10) for ``rate_a - rate_b``."""
    rate_a, rate_b = successes_a / n_a, successes_b / n_b
    low_a, high_a = wilson_ci(successes_a, n_a, confidence)
    low_b, high_b = wilson_ci(successes_b, n_b, confidence)
    difference = rate_a - rate_b
    low = difference - math.sqrt((rate_a - low_a) ** 2 + (high_b - rate_b) ** 2)
    high = difference + math.sqrt((high_a - rate_a) ** 2 + (rate_b - low_b) ** 2)
    return low, high


def brunner_munzel_ci(
    x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float, float, float, str]:
    """P(X<Y) + 0.5 P(X=Y), its Brunner-Munzel t interval, and the test's p-value.

    The standard error is the one ``scipy.stats.brunnermunzel`` divides by (its statistic is
    (estimate - 0.5) / se, tested in tests/test_verdict.py), with its Welch-type degrees of
    freedom. When that variance is zero (the samples do not overlap, or every value is
    tied) Brunner-Munzel is undefined: the p-value is then Mann-Whitney U's, and the
    interval is the Wilson interval at n = min(n_x, n_y), which holds by Birnbaum and
    Klose's bound Var <= P(1-P) / min(n_x, n_y).

    Returns (estimate, ci_low, ci_high, p_value, name of the test).
    """
    n_x, n_y = len(x), len(y)
    combined = stats.rankdata(np.concatenate([x, y]))
    rank_x, rank_y = combined[:n_x], combined[n_x:]
    estimate = float((rank_y.mean() - (n_y + 1) / 2) / n_x)
    within_x, within_y = stats.rankdata(x), stats.rankdata(y)
    var_x = np.sum((rank_x - within_x - rank_x.mean() + within_x.mean()) ** 2) / (n_x - 1)
    var_y = np.sum((rank_y - within_y - rank_y.mean() + within_y.mean()) ** 2) / (n_y - 1)
    spread = n_x * var_x + n_y * var_y
    if spread > 0:
        se = math.sqrt(spread) / (n_x * n_y)
        df = spread**2 / ((n_x * var_x) ** 2 / (n_x - 1) + (n_y * var_y) ** 2 / (n_y - 1))
        half = stats.t.ppf(0.5 + confidence / 2, df) * se
        p_value = float(stats.brunnermunzel(x, y).pvalue)
        low, high = max(0.0, estimate - half), min(1.0, estimate + half)
        return estimate, low, high, p_value, "Brunner-Munzel"
    p_value = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    z = stats.norm.ppf(0.5 + confidence / 2)
    n = min(n_x, n_y)
    centre = (estimate + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z / (1 + z**2 / n) * math.sqrt(estimate * (1 - estimate) / n + z**2 / (4 * n**2))
    low, high = max(0.0, centre - half), min(1.0, centre + half)
    return estimate, low, high, p_value, "Mann-Whitney U (the samples do not overlap)"


def _z_sum(alpha: float, power: float = POWER) -> float:
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def noether_seeds(estimate: float, margin: tuple[float, float], alpha: float) -> float:
    """Seeds per cell for the rank test to decide at the observed P(A<B) (Noether, 1987).

    Outside the margin: n = (z_{1-alpha/2} + z_power)^2 / (6 (P - 0.5)^2) per cell (equal
    cells), to reject P = 0.5. Inside it: the same with the distance to the nearer margin,
    for the interval to fit inside. Infinite on the margin itself.
    """
    low, high = margin
    if low < estimate < high:
        distance = min(estimate - low, high - estimate)
    else:
        distance = abs(estimate - 0.5)
    return _z_sum(alpha) ** 2 / (6 * distance**2) if distance > 0 else math.inf


def proportion_seeds(rate_a: float, rate_b: float, half_width: float, alpha: float) -> float:
    """Seeds per cell for two success rates to decide at the observed difference.

    Normal approximation: n = (z_{1-alpha/2} + z_power)^2 (p_a q_a + p_b q_b) / d^2, with d
    the observed difference, or its distance to the nearer margin when it is inside +-
    ``half_width``.
    """
    difference = abs(rate_a - rate_b)
    distance = half_width - difference if difference < half_width else difference
    variance = rate_a * (1 - rate_a) + rate_b * (1 - rate_b)
    if distance <= 0:
        return math.inf
    return max(1.0, _z_sum(alpha) ** 2 * variance / distance**2)


def _not_applicable(part: str, n_a: int, n_b: int, reason: str) -> dict[str, object]:
    return {
        "part": part,
        "n_a": n_a,
        "n_b": n_b,
        "estimate": np.nan,
        "ci_low": np.nan,
        "ci_high": np.nan,
        "p_value": np.nan,
        "test": "",
        "reason": reason,
    }


def _reliability(success_a: np.ndarray, success_b: np.ndarray) -> dict[str, object]:
    n_a, n_b = len(success_a), len(success_b)
    k_a, k_b = int(success_a.sum()), int(success_b.sum())
    if k_a == n_a and k_b == n_b:
        return _not_applicable("reliability", n_a, n_b, "no seed failed in either cell")
    if k_a == 0 and k_b == 0:
        return _not_applicable("reliability", n_a, n_b, "no seed succeeded in either cell")
    low, high = newcombe_ci(k_a, n_a, k_b, n_b)
    table = [[k_a, n_a - k_a], [k_b, n_b - k_b]]
    return {
        "part": "reliability",
        "n_a": n_a,
        "n_b": n_b,
        "estimate": k_a / n_a - k_b / n_b,
        "ci_low": low,
        "ci_high": high,
        "p_value": float(stats.fisher_exact(table).pvalue),
        "test": "Fisher's exact test",
        "reason": "",
        "rate_a": k_a / n_a,
        "rate_b": k_b / n_b,
    }


def _rank_part(part: str, x: np.ndarray, y: np.ndarray) -> dict[str, object]:
    if min(len(x), len(y)) < 2:
        return _not_applicable(part, len(x), len(y), "fewer than 2 seeds in a cell")
    estimate, low, high, p_value, test = brunner_munzel_ci(x, y)
    return {
        "part": part,
        "n_a": len(x),
        "n_b": len(y),
        "estimate": estimate,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "test": test,
        "reason": "",
    }


def pair_parts(
    errors_a: np.ndarray,
    success_a: np.ndarray,
    errors_b: np.ndarray,
    success_b: np.ndarray,
    *,
    reliability: bool = True,
) -> list[dict[str, object]]:
    """The statistics of every part of one pair, before any decision.

    ``errors_*`` are per-seed errors with diverged seeds at +inf; ``success_*`` per-seed
    booleans. ``reliability=False`` leaves the reliability part out (as for a held-out
    metric, whose success rates are the training verdict's).
    """
    errors_a, errors_b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    success_a, success_b = np.asarray(success_a, bool), np.asarray(success_b, bool)
    rows = []
    if reliability:
        rows.append(_reliability(success_a, success_b))
    rows.append(_rank_part("quality", errors_a[success_a], errors_b[success_b]))
    if success_a.all() and success_b.all():
        rows.append(
            _not_applicable(
                "pooled", len(errors_a), len(errors_b), "every seed succeeded: pooled = quality"
            )
        )
    else:
        rows.append(_rank_part("pooled", errors_a, errors_b))
    for row in rows:
        if row["part"] == "quality" and row["reason"]:
            row["reason"] = "fewer than 2 seeds succeeded in a cell"
    return rows


def classify(
    part: str,
    estimate: float,
    ci_low: float,
    ci_high: float,
    p_adjusted: float,
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
) -> str:
    """The decision rule for one part: equivalent, a_better, b_better or undecided.

    Equivalence comes first: a difference whose whole interval lies inside the margin is
    too small to matter, even when a test detects it.
    """
    if not np.isfinite(estimate):
        return "not_applicable"
    centre = 0.0 if part == "reliability" else 0.5
    low, high = margin[0] - 0.5 + centre, margin[1] - 0.5 + centre
    if low < ci_low and ci_high < high:
        return "equivalent"
    if p_adjusted < alpha:
        return "a_better" if estimate > centre else "b_better"
    return "undecided"


def _seeds_needed(
    row: Mapping[str, object],
    rates: tuple[float, float],
    alpha: float,
    margin: tuple[float, float],
) -> float:
    """Seeds per cell that would decide an undecided part at the observed effect."""
    if row["part"] == "reliability":
        half_width = (margin[1] - margin[0]) / 2
        return float(math.ceil(proportion_seeds(*rates, half_width, alpha)))
    needed = noether_seeds(float(row["estimate"]), margin, alpha)
    if row["part"] == "quality":
        # Noether counts seeds that succeeded; a cell needs more seeds than that.
        lowest = min(rates)
        needed = needed / lowest if lowest > 0 else math.inf
    return float(math.ceil(needed)) if np.isfinite(needed) else math.inf


def pair_decisions(
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
    *,
    reliability: bool = True,
    pairs: Sequence[tuple[str, str]] | None = None,
) -> pd.DataFrame:
    """Decide every pair of cells: one row per (pair, part), one Holm family over all.

    Parameters
    ----------
    samples : mapping of cell -> (errors, success)
        ``errors`` ndarray (n_seeds,), diverged seeds at +inf; ``success`` bool (n_seeds,).
    alpha : float
        Family-wise level of the Holm family (the auto sweeper passes its per-look level).
    margin : (low, high)
        P(A<B) inside it is "practically equivalent"; solve-rate differences use the same
        half-width around 0.
    pairs : sequence of (a, b), optional
        Which pairs, in order; every combination in ``samples``' order by default.

    Returns columns a, b, part, n_a, n_b, estimate, ci_low, ci_high, p_value, test,
    reason, p_holm, family_size, decision, seeds_needed.
    """
    pairs = list(combinations(samples, 2)) if pairs is None else list(pairs)
    rows = []
    for a, b in pairs:
        for row in pair_parts(*samples[a], *samples[b], reliability=reliability):
            rows.append({"a": a, "b": b, **row})
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return decide(table, samples, alpha, margin)


def decide(
    table: pd.DataFrame,
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
) -> pd.DataFrame:
    """Holm over every tested row of ``table`` (one family), then decide each row."""
    table = table.copy()
    tested = table["p_value"].notna().to_numpy()
    family = int(tested.sum())
    table["p_holm"] = np.nan
    if family:
        table.loc[tested, "p_holm"] = holm(table.loc[tested, "p_value"].to_numpy())
    table["family_size"] = family
    table["decision"] = [
        classify(r.part, r.estimate, r.ci_low, r.ci_high, r.p_holm, alpha, margin)
        for r in table.itertuples()
    ]
    # Bonferroni's alpha / m: the level at which Holm is sure to reject the new test.
    level = alpha / max(family, 1)
    needed = []
    for row in table.to_dict("records"):
        if row["decision"] != "undecided":
            needed.append(np.nan)
            continue
        rates = tuple(float(np.mean(samples[row[c]][1])) for c in ("a", "b"))
        needed.append(_seeds_needed(row, rates, level, margin))
    table["seeds_needed"] = needed
    return table


def decide_pair(
    errors_a: np.ndarray,
    success_a: np.ndarray,
    errors_b: np.ndarray,
    success_b: np.ndarray,
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
    *,
    reliability: bool = True,
) -> pd.DataFrame:
    """``pair_decisions`` for one pair (its parts are the whole Holm family)."""
    samples = {"a": (errors_a, success_a), "b": (errors_b, success_b)}
    return pair_decisions(samples, alpha, margin, reliability=reliability)


# --------------------------------------------------------------------------------------
# Pairwise comparisons of a sweep's cells, with effect sizes and sentences
# --------------------------------------------------------------------------------------


def cell_samples(runs: pd.DataFrame, metric: str = "final_error") -> dict[str, tuple]:
    """cell -> (errors with diverged seeds at +inf, success flags), as arrays."""
    seeded = seeded_runs(runs)
    seeded["ranked_error"] = ranked_error(seeded, metric)
    return {
        cell: (g["ranked_error"].to_numpy(dtype=float), g["success"].to_numpy(dtype=bool))
        for cell, g in seeded.groupby("cell", sort=False)
    }


def median_ratio_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """median(x) / median(y) and its percentile bootstrap interval (``scipy.stats.bootstrap``)."""
    if min(len(x), len(y)) < 2 or not (np.isfinite(np.median(x)) and np.isfinite(np.median(y))):
        return np.nan, np.nan, np.nan
    if np.median(y) == 0:
        return np.nan, np.nan, np.nan
    ratio = float(np.median(x) / np.median(y))
    if np.all(x == x[0]) and np.all(y == y[0]):
        return ratio, ratio, ratio

    def statistic(first: np.ndarray, second: np.ndarray, axis: int) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.median(first, axis=axis) / np.median(second, axis=axis)

    result = stats.bootstrap(
        (x, y),
        statistic,
        vectorized=True,
        n_resamples=BOOTSTRAP_RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(BOOTSTRAP_SEED),
    )
    return ratio, float(result.confidence_interval.low), float(result.confidence_interval.high)


def _subset(sample: tuple[np.ndarray, np.ndarray], part: str) -> np.ndarray:
    errors, success = sample
    return errors[success] if part == "quality" else errors


def compare_pairs(
    runs: pd.DataFrame,
    cells: pd.DataFrame,
    metric: str = "final_error",
    *,
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
) -> pd.DataFrame:
    """Every pair of cells, one row per (pair, part), its own Holm family.

    Pairs list ``a`` before ``b`` in the order of ``cells`` (best median first). Columns are
    those of ``pair_decisions`` plus metric, median_ratio, ratio_ci_low, ratio_ci_high,
    warning and sentence. ``compare_metrics`` puts several metrics into one family.
    """
    return compare_metrics(runs, {metric: cells}, alpha=alpha, margin=margin)


def compare_metrics(
    runs: pd.DataFrame,
    cells_by_metric: Mapping[str, pd.DataFrame],
    *,
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
) -> pd.DataFrame:
    """``compare_pairs`` for several metrics at once, all their tests in one Holm family.

    The reliability part appears only with the training error (the success rates do not
    depend on the metric).
    """
    frames = []
    all_samples: dict[str, tuple] = {}
    for metric, cells in cells_by_metric.items():
        if len(cells) < 2:
            continue
        samples = cell_samples(runs, metric)
        order = [c for c in cells["cell"] if c in samples]
        rows = []
        for a, b in combinations(order, 2):
            for row in pair_parts(*samples[a], *samples[b], reliability=metric == "final_error"):
                rows.append({"metric": metric, "a": a, "b": b, **row})
        frames.append(pd.DataFrame(rows))
        for cell in order:
            all_samples[f"{metric}\n{cell}"] = samples[cell]
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    keyed = table.assign(
        a=table["metric"] + "\n" + table["a"], b=table["metric"] + "\n" + table["b"]
    )
    decided = decide(keyed, all_samples, alpha, margin)
    for column in ("p_holm", "family_size", "decision", "seeds_needed"):
        table[column] = decided[column].to_numpy()
    ratios = []
    for row in table.itertuples():
        if row.part == "reliability" or row.decision == "not_applicable":
            ratios.append((np.nan, np.nan, np.nan))
            continue
        x = _subset(all_samples[f"{row.metric}\n{row.a}"], row.part)
        y = _subset(all_samples[f"{row.metric}\n{row.b}"], row.part)
        ratios.append(median_ratio_ci(x, y))
    table[["median_ratio", "ratio_ci_low", "ratio_ci_high"]] = ratios
    unstable = {}
    for cells in cells_by_metric.values():
        if "unstable_fraction" in cells:
            unstable.update(zip(cells["cell"], cells["unstable_fraction"], strict=True))
    solvable_cells = {}
    for cells in cells_by_metric.values():
        solvable_cells.update(zip(cells["cell"], cells["solvable"], strict=True))
    table["warning"] = [_instability_warning(r.a, r.b, unstable) for r in table.itertuples()]
    table["sentence"] = [
        pair_sentence(row, all(solvable_cells.get(c, True) for c in (row["a"], row["b"])), margin)
        for row in table.to_dict("records")
    ]
    return table


def _instability_warning(a: str, b: str, unstable: Mapping[str, float]) -> str:
    shaky = [(c, unstable.get(c, 0.0)) for c in (a, b) if unstable.get(c, 0.0) > UNSTABLE_WARNING]
    if not shaky:
        return ""
    cells = " and ".join(f"{fraction:.0%} of {cell}'s" for cell, fraction in shaky)
    return f"{cells} seeds were still unstable at the end (an update moved their error by >1%)"


# --------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------


def _p(value: float) -> str:
    return "< 0.0001" if value < 1e-4 else f"= {value:.4f}" if value < 0.01 else f"= {value:.3f}"


def _points(value: float) -> str:
    return f"{value * 100:+.0f}"


def _seeds_text(needed: float, n_now: int, method: str, inside: bool) -> str:
    goal = "show practical equivalence" if inside else "show the difference"
    if not np.isfinite(needed):
        return f"No number of seeds would decide it at the observed effect ({method})."
    if needed <= n_now:
        return (
            f"The approximation ({method}) says {needed:,.0f} seeds per cell would {goal}; "
            f"with {n_now} now, a few more seeds per cell should decide it."
        )
    return (
        f"About {needed:,.0f} seeds per cell would decide it at the observed effect, to "
        f"{goal} ({method})."
    )


def pair_sentence(
    row: Mapping[str, object], solvable_pair: bool = True, margin: tuple[float, float] = MARGIN
) -> str:
    """One sentence for one part of one pair."""
    a, b, part, decision = row["a"], row["b"], row["part"], row["decision"]
    what = "held-out error" if row.get("metric") == "holdout_error" else "error"
    label = part.capitalize()
    if decision == "not_applicable":
        return f"{label}, {a} vs {b}: left out: {row['reason']}."
    low, high = float(row["ci_low"]), float(row["ci_high"])
    estimate = float(row["estimate"])
    evidence = f"{row['test']}, p_holm {_p(float(row['p_holm']))}"
    warning = f" Caution: {row['warning']}." if row.get("warning") else ""
    if part == "reliability":
        noun, verb = success_words(solvable_pair)
        half = (margin[1] - margin[0]) / 2
        rate_a, rate_b = float(row["rate_a"]), float(row["rate_b"])
        if decision == "b_better":
            a, b, rate_a, rate_b = b, a, rate_b, rate_a
            estimate, low, high = -estimate, -high, -low
        rates = (
            f"{rate_a:.0%} vs {rate_b:.0%}, difference {_points(estimate)} points "
            f"[{_points(low)}, {_points(high)}]"
        )
        if decision == "equivalent":
            return (
                f"{label}: {a} and {b} are practically equivalent in {noun} ({rates}, inside "
                f"+-{half * 100:.0f} points).{warning}"
            )
        if decision in ("a_better", "b_better"):
            return f"{label}: {a} {verb} more often than {b} ({rates}; {evidence}).{warning}"
        needed = _seeds_text(
            float(row["seeds_needed"]), int(max(row["n_a"], row["n_b"])),
            "normal approximation for two proportions, 80% power", abs(estimate) < half,
        )  # fmt: skip
        return f"{label}: undecided between {a} and {b} ({rates}; {evidence}). {needed}{warning}"
    who = "seeds that succeeded" if part == "quality" else "all seeds"
    scope = f"{label} ({who}: {row['n_a']} of {a}, {row['n_b']} of {b})"
    ratio = ""
    if np.isfinite(row.get("median_ratio", np.nan)):
        ratio = (
            f", median ratio {row['median_ratio']:.3g} "
            f"[{row['ratio_ci_low']:.3g}, {row['ratio_ci_high']:.3g}]"
        )
    effect = f"P({a}<{b}) = {estimate:.2f} [{low:.2f}, {high:.2f}]{ratio}"
    if decision == "b_better":
        # Say it from the winner's side: P(B<A) = 1 - P(A<B), and the inverse ratio.
        ratio = ""
        if np.isfinite(row.get("median_ratio", np.nan)) and row["ratio_ci_low"] > 0:
            ratio = (
                f", median ratio {1 / row['median_ratio']:.3g} "
                f"[{1 / row['ratio_ci_high']:.3g}, {1 / row['ratio_ci_low']:.3g}]"
            )
        effect = f"P({b}<{a}) = {1 - estimate:.2f} [{1 - high:.2f}, {1 - low:.2f}]{ratio}"
    if decision == "equivalent":
        return (
            f"{scope}: practically equivalent in {what} ({effect}, inside "
            f"[{margin[0]:.2f}, {margin[1]:.2f}]).{warning}"
        )
    if decision in ("a_better", "b_better"):
        lower, higher = (a, b) if decision == "a_better" else (b, a)
        return (
            f"{scope}: {lower} ends with lower {what} than {higher} ({effect}; {evidence})."
            f"{warning}"
        )
    needed = _seeds_text(
        float(row["seeds_needed"]), int(max(row["n_a"], row["n_b"])),
        "Noether's formula for the rank test, 80% power"
        + (", divided by the lower success rate" if part == "quality" else ""),
        margin[0] < estimate < margin[1],
    )  # fmt: skip
    return (
        f"{scope}: undecided: P({a}<{b}) is between {low:.2f} and {high:.2f} ({evidence}). "
        f"{needed}{warning}"
    )


def _join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


PART_WORDS = {
    "reliability": ("Reliability ({noun})", "{x} {verb} more often than {y}"),
    "quality": ("Quality ({what} of the seeds that succeeded)", "{x} ends lower than {y}"),
    "pooled": ("Pooled ({what} of all seeds)", "{x} ends lower than {y}"),
}


def part_summary(
    pairs: pd.DataFrame, part: str, metric: str = "final_error", solvable_cells: bool = True
) -> str | None:
    """One sentence on one part over every pair: what is decided, equivalent, undecided."""
    rows = pairs[pairs["part"] == part]
    if "metric" in rows:
        rows = rows[rows["metric"] == metric]
    if rows.empty:
        return None
    noun, verb = success_words(solvable_cells)
    what = METRICS.get(metric, metric).replace("final ", "")
    title, phrase = PART_WORDS[part]
    label = title.format(noun=noun, what=what)
    applicable = rows[rows["decision"] != "not_applicable"]
    if applicable.empty:
        reasons = sorted(set(rows["reason"]))
        return f"{label}: left out for every pair ({'; '.join(reasons)})."
    better = []
    for row in applicable.itertuples():
        if row.decision in ("a_better", "b_better"):
            first, second = (row.a, row.b) if row.decision == "a_better" else (row.b, row.a)
            better.append(phrase.format(x=first, y=second, verb=verb))
    equivalent = [f"{r.a} and {r.b}" for r in applicable.itertuples() if r.decision == "equivalent"]
    undecided = [f"{r.a} vs {r.b}" for r in applicable.itertuples() if r.decision == "undecided"]
    pieces = list(better)
    if equivalent:
        pieces.append("practically equivalent: " + ", ".join(equivalent))
    if undecided:
        pieces.append("undecided: " + ", ".join(undecided))
    left_out = rows[rows["decision"] == "not_applicable"]
    if len(left_out):
        why = "; ".join(sorted(set(left_out["reason"])))
        pieces.append(f"left out for {len(left_out)} pair(s) ({why})")
    return f"{label}: " + "; ".join(pieces) + "."


def family_sentence(pairs: pd.DataFrame, alpha: float = ALPHA) -> str | None:
    """States the Holm family the verdict's tests belong to."""
    if pairs.empty or not pairs["p_value"].notna().any():
        return None
    tested = pairs[pairs["p_value"].notna()]
    parts = _join([p for p in PARTS if (tested["part"] == p).any()])
    metrics = tested["metric"].unique() if "metric" in tested else ["final_error"]
    where = " and ".join(METRICS.get(m, m) for m in metrics)
    return (
        f"One Holm family holds every test these sentences rely on: {len(tested)} "
        f"test{'' if len(tested) == 1 else 's'} "
        f"({parts} parts of every pair, on the {where}), family-wise alpha = {alpha}. "
        f"Intervals are {CONFIDENCE:.0%} per comparison, not adjusted."
    )


def size_note(cells: pd.DataFrame) -> str | None:
    """Warns when the compared networks differ in size (a confound of any shape claim)."""
    if "n_weights" not in cells or cells["n_weights"].isna().any() or len(cells) < 2:
        return None
    sizes = cells["n_weights"].astype(int)
    if sizes.nunique() == 1:
        return f"Every cell has the same number of weights ({sizes.iloc[0]})."
    listed = ", ".join(f"{c} {n}" for c, n in zip(cells["cell"], sizes, strict=True))
    return (
        f"The cells differ in size (weights: {listed}). A difference between them may come "
        "from the number of weights as much as from how they are arranged."
    )


def instability_note(cells: pd.DataFrame) -> str | None:
    """Names the cells whose seeds were still unstable at the end of training."""
    if "unstable_fraction" not in cells:
        return None
    shaky = cells[cells["unstable_fraction"] > UNSTABLE_WARNING]
    if shaky.empty:
        return None
    listed = ", ".join(f"{r.cell} {r.unstable_fraction:.0%}" for r in shaky.itertuples())
    return (
        "Unstable ends: in some cells many seeds were still moving at the end, one of their "
        f"last two updates changing the training error by more than 1% ({listed}); "
        "comparisons involving them carry a caution."
    )


def headline_rows(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per pair (and metric): the comparison on all seeds, i.e. the pooled part, or
    the quality part where pooled is left out because every seed succeeded."""
    ranked = pairs[pairs["part"] != "reliability"]
    pooled_used = (ranked["part"] == "pooled") & (ranked["decision"] != "not_applicable")
    keys = [c for c in ("metric", "a", "b") if c in ranked]
    has_pooled = pooled_used.groupby([ranked[k] for k in keys]).transform("any")
    keep = pooled_used | ((ranked["part"] == "quality") & ~has_pooled)
    return ranked[keep].reset_index(drop=True)


def _headline(pairs: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Per pair, the decision on all seeds: pooled, or quality where pooled is left out."""
    train = pairs[pairs.get("metric", "final_error") == "final_error"]
    decisions = {}
    for (a, b), group in train.groupby(["a", "b"], sort=False):
        parts = group.set_index("part")["decision"]
        pooled = parts.get("pooled", "not_applicable")
        decisions[(a, b)] = pooled if pooled != "not_applicable" else parts.get("quality")
    return decisions


def seed1_note(cells: pd.DataFrame, pairs: pd.DataFrame | None = None) -> str | None:
    """How the single-seed comparison (the tutorial's method) reads against all seeds.

    A pair that seed 1 orders differently from the medians contradicts the sweep only when
    the sweep decided that pair; a swap within an undecided or equivalent pair does not.
    """
    if cells["seed1_error"].isna().any() or len(cells) < 2:
        return None
    by_seed1 = cells.sort_values("seed1_error", kind="stable")["cell"].tolist()
    by_median = cells["cell"].tolist()
    ranks = ", ".join(
        f"{r.cell}: seed 1 is #{int(r.seed1_rank)} of {r.n_seeds}" for r in cells.itertuples()
    )
    text = f"Seed 1 alone (the tutorial's method) orders the cells {' < '.join(by_seed1)}. "
    swapped = [
        (a, b) for a, b in combinations(by_median, 2) if by_seed1.index(a) > by_seed1.index(b)
    ]
    decisions = _headline(pairs) if pairs is not None and not pairs.empty else {}
    if not swapped:
        text += "That is the order of the medians over all seeds. "
    else:
        contradicted = [
            f"{b} below {a}"
            for a, b in swapped
            if decisions.get((a, b)) in ("a_better", "b_better")
        ]
        loose = [
            f"{a} vs {b}"
            for a, b in swapped
            if decisions.get((a, b)) not in ("a_better", "b_better")
        ]
        if loose:
            text += (
                f"It swaps {_join(loose)} against the medians, a pair the seeds do not order "
                "(undecided or equivalent), so that is no different answer. "
            )
        if contradicted:
            text += f"It puts {_join(contradicted)}, which the seeds contradict. "
    return text + f"Where seed 1 falls within its own cell: {ranks}."


def robustness(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
    checkpoints: Sequence[float] = CHECKPOINTS,
) -> tuple[pd.DataFrame, str | None]:
    """Re-decide every pair on all seeds' training error at fractions of the iterations.

    At each checkpoint the curves give each seed's error (the last logged iteration at or
    before that fraction of its cell's iterations; the last point is the final weights').
    The order of the medians and the decision of every pair (all seeds, as the pooled part,
    one Holm family per checkpoint) are compared with the end.

    Returns one row per (checkpoint, pair) and a one-line summary.
    """
    if curves.empty or len(runs) == 0:
        return pd.DataFrame(), None
    seeded = seeded_runs(runs)
    keyed = seeded[["job", "seed", "cell", "iterations"]]
    merged = curves[["job", "seed", "iteration", "error"]].merge(keyed, on=["job", "seed"])
    if merged.empty:
        return pd.DataFrame(), None
    rows, orders = [], {}
    for fraction in checkpoints:
        target = np.floor(merged["iterations"] * fraction)
        eligible = merged[merged["iteration"] <= target]
        at = eligible.loc[eligible.groupby(["job", "seed"])["iteration"].idxmax()]
        at = at.assign(error=at["error"].where(np.isfinite(at["error"]), np.inf).fillna(np.inf))
        samples = {
            cell: (g["error"].to_numpy(float), np.ones(len(g), bool))
            for cell, g in at.groupby("cell", sort=False)
        }
        if len(samples) < 2:
            return pd.DataFrame(), None
        orders[fraction] = sorted(samples, key=lambda c: np.median(samples[c][0]))
        decided = pair_decisions(samples, alpha, margin, reliability=False)
        decided = decided[decided["part"] == "quality"]
        iteration = int(at["iteration"].max())
        for row in decided.itertuples():
            a, b, decision = row.a, row.b, row.decision
            if orders[fraction].index(a) > orders[fraction].index(b):
                a, b = b, a
                decision = {"a_better": "b_better", "b_better": "a_better"}.get(decision, decision)
            rows.append(
                {"fraction": fraction, "iteration": iteration, "a": a, "b": b,
                 "estimate": row.estimate, "decision": decision}
            )  # fmt: skip
    table = pd.DataFrame(rows)
    end = checkpoints[-1]

    def state(fraction: float) -> tuple:
        # Decisions keyed by the unordered pair, so a swap of an undecided pair is no change.
        chosen = table[table["fraction"] == fraction]
        decided = {}
        for r in chosen.itertuples():
            key = tuple(sorted((r.a, r.b)))
            winner = {"a_better": r.a, "b_better": r.b}.get(r.decision, r.decision)
            decided[key] = winner
        return tuple(sorted(decided.items()))

    final_state = state(end)
    stable_from = end
    for fraction in reversed(checkpoints[:-1]):
        if state(fraction) != final_state:
            break
        stable_from = fraction
    iteration_at = table.groupby("fraction")["iteration"].max()
    shown = ", ".join(f"{f:.0%}" for f in checkpoints)
    if stable_from == checkpoints[0]:
        sentence = (
            f"Robustness: the decision of every pair on all seeds' training error is the same "
            f"at {shown} of the iterations: stable from iteration {iteration_at[stable_from]:,} on."
        )
    else:
        earlier = max(f for f in checkpoints if f < stable_from)
        before = dict(state(earlier))
        after = dict(final_state)
        changes = [
            f"{' vs '.join(key)} ({_decision_word(before.get(key))} at {earlier:.0%}, "
            f"{_decision_word(after.get(key))} later)"
            for key in after
            if before.get(key) != after.get(key)
        ]
        if stable_from == end:
            lead = "Robustness: the verdict on all seeds' training error changes between "
            lead += f"{earlier:.0%} of the iterations and the end"
        else:
            lead = (
                f"Robustness: the verdict on all seeds' training error is stable from iteration "
                f"{iteration_at[stable_from]:,} ({stable_from:.0%}) on; it differs at {earlier:.0%}"
            )
        sentence = lead + ": " + "; ".join(changes) + "."
    return table, sentence


def _decision_word(winner: str | None) -> str:
    if winner in (None, "undecided"):
        return "undecided"
    if winner == "equivalent":
        return "equivalent"
    return f"{winner} lower"


def verdict_paragraphs(
    cells: pd.DataFrame,
    pairs: pd.DataFrame,
    metric: str = "final_error",
    robustness_sentence: str | None = None,
) -> list[str]:
    """The verdict on one metric as paragraphs: parts in order, then cautions."""
    if len(cells) < 2:
        return ["Only one cell: nothing to compare."]
    what = METRICS.get(metric, metric).replace("final ", "")
    paragraphs = [f"From lowest to highest median {what}: {_join(cells['cell'].tolist())}."]
    if metric == "final_error" and "solvable" in cells and not cells["solvable"].all():
        paragraphs.append(
            "The data is noisy: no network should fit every row, so 'solved' does not apply. "
            "A seed counts as a success when its training did not diverge; reliability "
            "compares how often seeds diverge, and quality compares the seeds that did not."
        )
    chosen = pairs[pairs["metric"] == metric] if "metric" in pairs else pairs
    solvable_cells = bool(cells["solvable"].all()) if "solvable" in cells else True
    for part in PARTS:
        summary = part_summary(chosen, part, metric, solvable_cells)
        if summary:
            paragraphs.append(summary)
    for note in (instability_note(cells), size_note(cells) if metric == "final_error" else None,
                 robustness_sentence):  # fmt: skip
        if note:
            paragraphs.append(note)
    return paragraphs


def methods_text(margin: tuple[float, float] = MARGIN, alpha: float = ALPHA) -> str:
    """How the verdict was computed, in one paragraph for the report."""
    half = (margin[1] - margin[0]) / 2
    return (
        "Reliability: the success rate of each cell with a Wilson score interval; the "
        "difference of two rates with Newcombe's hybrid score interval and Fisher's exact "
        "test. Quality: among the seeds that succeeded, P(A<B) (the chance that a random seed "
        "of A ends below a random seed of B, ties counting half) with the Brunner-Munzel "
        "t interval and test (scipy.stats.brunnermunzel; Mann-Whitney U and a Wilson-type "
        "interval where the samples do not overlap), and the ratio of the medians with a "
        f"percentile bootstrap interval ({BOOTSTRAP_RESAMPLES} resamples, fixed seed). Pooled: "
        "the same over all seeds, a diverged seed counting as the worst error. "
        f"All p-values form one Holm family at alpha = {alpha}. A part is 'practically "
        f"equivalent' when its {CONFIDENCE:.0%} interval lies inside the margin (P(A<B) in "
        f"[{margin[0]:.2f}, {margin[1]:.2f}], a rate difference within +-{half * 100:.0f} "
        "points), 'better' when its Holm-adjusted p is below alpha, and 'undecided' "
        "otherwise. For undecided parts, the seeds per cell that would decide them at the "
        "observed effect come from Noether's formula for the rank test (divided by the lower "
        "success rate for the quality part) and from the normal approximation for two "
        "proportions, at 80% power and at alpha divided by the family size; against the "
        "nearer margin when the estimate lies inside it."
    )


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
