"""The verdict's pairwise decisions over stored tables (no words).

Reads the ``runs`` and ``curves`` DataFrames that ``store`` wrote; never trains.

Definitions, stated once (the report repeats the ones a reader needs; success, diverged
seeds and the seed streams are defined in ``nnsweep.stats.per_cell``):

* Every pair of cells gets up to three parts, all computed by ``nnsweep.stats.core``:
  - reliability: success rates, their difference with the Miettinen-Nurminen score test,
    its TOST against +-``rate_margin`` and its interval (one statistic inverted);
  - quality: among the seeds that succeeded, P(A<B) + 0.5 P(A=B) with Lee (2009) trimming
    bounds: whether a seed succeeds depends on the shape, so "seeds that succeeded" are
    different sub-populations in the two cells. Under monotonicity the more reliable
    cell's successes contain the seeds that succeed in both; trimming its best or worst
    successes to that share bounds P(A<B) among them. A difference is called only when
    both bounds' tests agree (an intersection-union test: the larger p), and needs at least
    ``MIN_SUCCESSES`` successes per cell after trimming. The solved-only estimate is shown
    with the bounds; the ratio of medians with a percentile bootstrap interval;
  - pooled: P(A<B) over all seeds, diverged ones worst: no selection at all (seeds are
    randomised), so the headline of a pair.
  The rank tests are Brunner-Munzel on the logit scale, with permutations below
  ``core.SMALL_SAMPLE`` values per cell. A part that does not apply is left out with a
  reason code.
* One Holm family per call of ``pair_decisions``: every difference test and every
  equivalence test (TOST) of every applicable part of every pair. The report puts all
  tests its verdict sentences rely on (training and held-out) into one family.
* Decision per part, at family-wise ``alpha`` (``core.decide``): "equivalent" when its
  Holm-adjusted TOST p is below alpha; else "a_better" / "b_better" when its Holm-adjusted
  difference p is; else "undecided", with the seeds per cell that would decide it as an a
  priori range (``seeds_needed``). Intervals are at each test's Holm level (1 - 2 level
  for an equivalence), so an interval never contradicts the decision beside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from nnsweep.stats import core
from nnsweep.stats.decision import Decision
from nnsweep.stats.per_cell import CONFIDENCE, ranked_error, seeded_runs

ALPHA = core.ALPHA  # family-wise error rate of the verdict's tests (after Holm)
MARGIN = core.MARGIN  # P(A<B) inside this is "practically equivalent"
MIN_SUCCESSES = 5  # quality compares cells only with at least this many successes (trimmed)
SMALLEST_EFFECT = 0.64  # P(A<B) worth detecting (Vargha-Delaney "medium"): seeds-needed's target
BOOTSTRAP_RESAMPLES = 9999  # resamples per ratio-of-medians interval
BOOTSTRAP_SEED = 20261128  # fixed, so a report regenerated from the same tables is identical

PARTS = ("reliability", "quality", "pooled")


# --------------------------------------------------------------------------------------
# The parts of a pairwise comparison, on plain arrays
# --------------------------------------------------------------------------------------


def _not_applicable(part: str, n_a: int, n_b: int, reason: str) -> dict[str, object]:
    return {
        "part": part,
        "n_a": n_a,
        "n_b": n_b,
        "estimate": np.nan,
        "p_value": np.nan,
        "p_equivalence": np.nan,
        "test": "",
        "reason": reason,
    }


def _reliability(
    success_a: np.ndarray, success_b: np.ndarray, rate_margin: float
) -> dict[str, object]:
    n_a, n_b = len(success_a), len(success_b)
    k_a, k_b = int(success_a.sum()), int(success_b.sum())
    if k_a == n_a and k_b == n_b:
        return _not_applicable("reliability", n_a, n_b, "no_failure")
    if k_a == 0 and k_b == 0:
        return _not_applicable("reliability", n_a, n_b, "no_success")
    test = core.rate_test(k_a, n_a, k_b, n_b)
    return {
        "part": "reliability",
        "n_a": n_a,
        "n_b": n_b,
        "estimate": k_a / n_a - k_b / n_b,
        "p_value": float(test.p_value()[0]),
        "p_equivalence": float(test.p_equivalence(rate_margin)[0]),
        "test": "rate_score",
        "reason": "",
        "rate_a": k_a / n_a,
        "rate_b": k_b / n_b,
        "_tests": (test,),
    }


def _rank_row(part: str, tests: tuple, n_a: int, n_b: int, margin) -> dict[str, object]:
    """A rank part from one test, or from two trimming-bound tests (intersection-union)."""
    estimates = [float(t.estimate[0]) for t in tests]
    p_values = [float(t.p_value()[0]) for t in tests]
    same_side = len({np.sign(e - 0.5) for e in estimates}) == 1
    return {
        "part": part,
        "n_a": n_a,
        "n_b": n_b,
        "p_value": max(p_values) if same_side else 1.0,
        "p_equivalence": max(float(t.p_equivalence(margin)[0]) for t in tests),
        "test": "rank_" + tests[0].method,
        "reason": "",
        "bound_low": min(estimates),
        "bound_high": max(estimates),
        "_tests": tests,
    }


def lee_trim(
    errors_a: np.ndarray, success_a: np.ndarray, errors_b: np.ndarray, success_b: np.ndarray
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Lee (2009) trimming of the cell that succeeds more often, both ways.

    Under monotonicity (a seed that succeeds in the less reliable cell would succeed in the
    more reliable one too), the more reliable cell's successes hold a share
    rate_low / rate_high of seeds that succeed in both: the population "quality" can
    compare without selection. Which of them they are is unknown, so keeping its best or
    its worst ``round(n_high * rate_low)`` successes bounds P(A<B) among them.

    Returns ((a, b) favouring A, (a, b) favouring B): sorted successful errors per cell.
    """
    x, y = np.sort(errors_a[success_a]), np.sort(errors_b[success_b])
    rate_a, rate_b = success_a.mean(), success_b.mean()
    if rate_a > rate_b:
        keep = round(len(success_a) * rate_b)
        return (x[:keep], y), (x[len(x) - keep :], y)
    if rate_b > rate_a:
        keep = round(len(success_b) * rate_a)
        return (x, y[len(y) - keep :]), (x, y[:keep])
    return (x, y), (x, y)


def _quality(
    errors_a: np.ndarray,
    success_a: np.ndarray,
    errors_b: np.ndarray,
    success_b: np.ndarray,
    margin: tuple[float, float],
    min_successes: int,
) -> dict[str, object]:
    """Quality: solved-only P(A<B) and its Lee bounds; a call only where both bounds agree."""
    n_a, n_b = int(success_a.sum()), int(success_b.sum())
    favour_a, favour_b = lee_trim(errors_a, success_a, errors_b, success_b)
    smallest = min(len(v) for v in (*favour_a, *favour_b))
    if smallest < max(2, min_successes):
        return _not_applicable("quality", n_a, n_b, "few_successes")
    solved = core.rank_test(errors_a[success_a], errors_b[success_b])
    trimmed = (len(favour_a[0]), len(favour_a[1])) != (n_a, n_b)
    tests = (core.rank_test(*favour_b), core.rank_test(*favour_a)) if trimmed else (solved,)
    row = _rank_row("quality", tests, n_a, n_b, margin)
    row["estimate"] = float(solved.estimate[0])
    row["n_trimmed"] = smallest
    return row


def _pooled(errors_a: np.ndarray, errors_b: np.ndarray, margin) -> dict[str, object]:
    if min(len(errors_a), len(errors_b)) < 2:
        return _not_applicable("pooled", len(errors_a), len(errors_b), "few_seeds")
    test = core.rank_test(errors_a, errors_b)
    row = _rank_row("pooled", (test,), len(errors_a), len(errors_b), margin)
    row["estimate"] = float(test.estimate[0])
    return row


def pair_parts(
    errors_a: np.ndarray,
    success_a: np.ndarray,
    errors_b: np.ndarray,
    success_b: np.ndarray,
    *,
    reliability: bool = True,
    margin: tuple[float, float] = MARGIN,
    rate_margin: float = core.RATE_MARGIN,
    min_successes: int = MIN_SUCCESSES,
) -> list[dict[str, object]]:
    """The statistics of every part of one pair, before any decision.

    ``errors_*`` are per-seed errors with diverged seeds at +inf; ``success_*`` per-seed
    booleans. ``reliability=False`` leaves the reliability part out (as for a held-out
    metric, whose success rates are the training verdict's). Rows keep their tests under
    ``_tests`` until ``decide`` has made their intervals at the Holm levels.
    """
    errors_a, errors_b = np.asarray(errors_a, float), np.asarray(errors_b, float)
    success_a, success_b = np.asarray(success_a, bool), np.asarray(success_b, bool)
    rows = []
    if reliability:
        rows.append(_reliability(success_a, success_b, rate_margin))
    rows.append(_quality(errors_a, success_a, errors_b, success_b, margin, min_successes))
    if success_a.all() and success_b.all():
        rows.append(_not_applicable("pooled", len(errors_a), len(errors_b), "all_succeeded"))
    else:
        rows.append(_pooled(errors_a, errors_b, margin))
    return rows


def pair_decisions(
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
    *,
    reliability: bool = True,
    pairs: Sequence[tuple[str, str]] | None = None,
    rate_margin: float = core.RATE_MARGIN,
    smallest_effect: float = SMALLEST_EFFECT,
) -> pd.DataFrame:
    """Decide every pair of cells: one row per (pair, part), one Holm family over all.

    Parameters
    ----------
    samples : mapping of cell -> (errors, success)
        ``errors`` ndarray (n_seeds,), diverged seeds at +inf; ``success`` bool (n_seeds,).
    alpha : float
        Family-wise level of the Holm family (difference and equivalence tests together).
    margin : (low, high)
        P(A<B) inside it is "practically equivalent".
    rate_margin : float
        A success-rate difference within +-this is "practically equivalent".
    pairs : sequence of (a, b), optional
        Which pairs, in order; every combination in ``samples``' order by default.

    Returns columns a, b, part, n_a, n_b, estimate, ci_low, ci_high, ci_level, p_value,
    p_equivalence, test, reason, p_holm, p_equivalence_holm, family_size, decision,
    seeds_needed, seeds_needed_high (and rate_a, rate_b, bound_low, bound_high, n_trimmed
    where they apply).
    """
    pairs = list(combinations(samples, 2)) if pairs is None else list(pairs)
    rows = []
    for a, b in pairs:
        parts = pair_parts(
            *samples[a],
            *samples[b],
            reliability=reliability,
            margin=margin,
            rate_margin=rate_margin,
        )
        rows.extend({"a": a, "b": b, **row} for row in parts)
    table = pd.DataFrame(rows)
    if table.empty:
        return table
    return decide(
        table,
        samples,
        alpha,
        margin=margin,
        rate_margin=rate_margin,
        smallest_effect=smallest_effect,
    )


def decide(
    table: pd.DataFrame,
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    alpha: float = ALPHA,
    *,
    margin: tuple[float, float] = MARGIN,
    rate_margin: float = core.RATE_MARGIN,
    smallest_effect: float = SMALLEST_EFFECT,
) -> pd.DataFrame:
    """Holm over every test of ``table`` (difference and equivalence: one family), then
    decide each row and give it the interval that matches its decision.

    The interval of an "equivalent" row is at confidence 1 - 2 level (level: its TOST's
    Holm level), which lies inside the margin exactly when the TOST rejects; every other
    row's at 1 - level of its difference test, which excludes "no difference" exactly when
    Holm rejects it. ``ci_level`` records the confidence used.
    """
    table = table.copy()
    size = len(table)
    p_all = np.concatenate(
        [table["p_value"].to_numpy(float), table["p_equivalence"].to_numpy(float)]
    )
    adjusted, levels = core.holm(p_all), core.holm_levels(p_all, alpha)
    table["p_holm"], table["p_equivalence_holm"] = adjusted[:size], adjusted[size:]
    table["family_size"] = int(np.isfinite(p_all).sum())
    centre = np.where(table["part"] == "reliability", 0.0, 0.5)
    table["decision"] = core.decide(
        table["estimate"].to_numpy(float),
        centre,
        table["p_holm"].to_numpy(float),
        table["p_equivalence_holm"].to_numpy(float),
        alpha,
    )
    equivalent = (table["decision"] == Decision.EQUIVALENT).to_numpy()
    level = np.where(equivalent, 2 * levels[size:], levels[:size])
    bounds = []
    for row, row_level in zip(table.to_dict("records"), level, strict=True):
        tests = row.get("_tests")
        if not isinstance(tests, tuple):
            bounds.append((np.nan, np.nan))
            continue
        ends = [t.interval(np.array([row_level])) for t in tests]
        bounds.append((min(float(e[0][0]) for e in ends), max(float(e[1][0]) for e in ends)))
    table[["ci_low", "ci_high"]] = bounds
    table["ci_level"] = np.where(np.isfinite(table["ci_low"]), 1 - level, np.nan)
    table = table.drop(columns="_tests", errors="ignore")
    # Bonferroni's alpha / m: the level at which Holm is sure to reject a new test.
    needed = [
        seeds_needed(
            row,
            samples,
            alpha / max(int(table["family_size"].iloc[0]), 1),
            margin,
            rate_margin,
            smallest_effect,
        )
        if row["decision"] == Decision.UNDECIDED
        else (np.nan, np.nan)
        for row in table.to_dict("records")
    ]
    table[["seeds_needed", "seeds_needed_high"]] = needed
    return table


def seeds_needed(
    row: Mapping[str, object],
    samples: Mapping[str, tuple[np.ndarray, np.ndarray]],
    level: float,
    margin: tuple[float, float] = MARGIN,
    rate_margin: float = core.RATE_MARGIN,
    smallest_effect: float = SMALLEST_EFFECT,
) -> tuple[float, float]:
    """Seeds per cell that would decide an undecided part, as a range, computed a priori.

    One end: the seeds to show equivalence if the cells are the same; the other: the seeds
    to show a difference if it is the smallest effect of interest (P(A<B) =
    ``smallest_effect``; twice the rate margin for rates). Both at the Bonferroni level
    alpha / family size, 80% power. No observed effect enters, so the range does not swing
    with the noise of the estimate. The quality part divides by the lower success rate;
    every number is at least one more than the seeds now, inf above ``core.SEEDS_CAP``.
    """
    rates = [float(np.mean(samples[row[c]][1])) for c in ("a", "b")]
    n_now = int(max(row["n_a"], row["n_b"]))
    if row["part"] == "reliability":
        base = float(np.mean(rates))
        ends = [
            core.rate_seeds_needed(base, rate_margin, level),
            core.rate_seeds_needed(base, 2 * rate_margin, level),
        ]
        n_now = int(max(len(samples[row["a"]][1]), len(samples[row["b"]][1])))
    else:
        ends = [
            core.rank_seeds_needed(min(0.5 - margin[0], margin[1] - 0.5), level),
            core.rank_seeds_needed(smallest_effect - 0.5, level),
        ]
        if row["part"] == "quality":
            lowest = min(rates)
            ends = [e / lowest if lowest > 0 else np.inf for e in ends]
            n_now = int(max(len(samples[row["a"]][1]), len(samples[row["b"]][1])))
    capped = core.cap_seeds(np.ceil(np.array(ends, dtype=float)), n_now)
    return float(capped.min()), float(capped.max())


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


def median_ratio_ci(
    x: np.ndarray, y: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float, float]:
    """median(x) / median(y) and its percentile bootstrap interval (``scipy.stats.bootstrap``)
    at ``confidence`` (the verdict passes its row's Holm-adjusted level)."""
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
        confidence_level=confidence,
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
    rate_margin: float = core.RATE_MARGIN,
) -> pd.DataFrame:
    """Every pair of cells, one row per (pair, part), its own Holm family.

    Pairs list ``a`` before ``b`` in the order of ``cells`` (best median first). Columns are
    those of ``pair_decisions`` plus metric, median_ratio, ratio_ci_low, ratio_ci_high,
    unstable_a, unstable_b and solvable. ``compare_metrics`` puts several metrics into one
    family.
    """
    return compare_metrics(
        runs, {metric: cells}, alpha=alpha, margin=margin, rate_margin=rate_margin
    )


def compare_metrics(
    runs: pd.DataFrame,
    cells_by_metric: Mapping[str, pd.DataFrame],
    *,
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
    rate_margin: float = core.RATE_MARGIN,
    smallest_effect: float = SMALLEST_EFFECT,
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
            parts = pair_parts(
                *samples[a],
                *samples[b],
                reliability=metric == "final_error",
                margin=margin,
                rate_margin=rate_margin,
            )
            rows.extend({"metric": metric, "a": a, "b": b, **row} for row in parts)
        frames.append(pd.DataFrame(rows))
        for cell in order:
            all_samples[f"{metric}\n{cell}"] = samples[cell]
    if not frames:
        return pd.DataFrame()
    table = pd.concat(frames, ignore_index=True)
    keyed = table.assign(
        a=table["metric"] + "\n" + table["a"], b=table["metric"] + "\n" + table["b"]
    )
    table = decide(
        keyed,
        all_samples,
        alpha,
        margin=margin,
        rate_margin=rate_margin,
        smallest_effect=smallest_effect,
    ).assign(a=table["a"], b=table["b"])
    ratios = []
    for row in table.itertuples():
        if row.part == "reliability" or row.decision == Decision.NOT_APPLICABLE:
            ratios.append((np.nan, np.nan, np.nan))
            continue
        x = _subset(all_samples[f"{row.metric}\n{row.a}"], row.part)
        y = _subset(all_samples[f"{row.metric}\n{row.b}"], row.part)
        ratios.append(median_ratio_ci(x, y, float(row.ci_level)))
    table[["median_ratio", "ratio_ci_low", "ratio_ci_high"]] = ratios
    unstable, solvable_cells = {}, {}
    for cells in cells_by_metric.values():
        if "unstable_fraction" in cells:
            unstable.update(zip(cells["cell"], cells["unstable_fraction"], strict=True))
        solvable_cells.update(zip(cells["cell"], cells["solvable"], strict=True))
    table["unstable_a"] = [unstable.get(c, 0.0) for c in table["a"]]
    table["unstable_b"] = [unstable.get(c, 0.0) for c in table["b"]]
    table["solvable"] = [
        all(solvable_cells.get(c, True) for c in pair)
        for pair in zip(table["a"], table["b"], strict=True)
    ]
    return table


# --------------------------------------------------------------------------------------
# Words
# --------------------------------------------------------------------------------------


def headline_rows(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per pair (and metric): the comparison on all seeds, i.e. the pooled part, or
    the quality part where pooled is left out because every seed succeeded."""
    ranked = pairs[pairs["part"] != "reliability"]
    pooled_used = (ranked["part"] == "pooled") & (ranked["decision"] != "not_applicable")
    keys = [c for c in ("metric", "a", "b") if c in ranked]
    has_pooled = pooled_used.groupby([ranked[k] for k in keys]).transform("any")
    keep = pooled_used | ((ranked["part"] == "quality") & ~has_pooled)
    return ranked[keep].reset_index(drop=True)


def headline_decisions(pairs: pd.DataFrame) -> dict[tuple[str, str], str]:
    """Per pair, the decision on all seeds: pooled, or quality where pooled is left out."""
    train = pairs[pairs.get("metric", "final_error") == "final_error"]
    decisions = {}
    for (a, b), group in train.groupby(["a", "b"], sort=False):
        parts = group.set_index("part")["decision"]
        pooled = parts.get("pooled", "not_applicable")
        decisions[(a, b)] = pooled if pooled != "not_applicable" else parts.get("quality")
    return decisions
