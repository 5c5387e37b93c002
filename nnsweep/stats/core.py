"""The statistics core: every test, interval and decision rule nnsweep uses, on arrays.

Pure functions on numpy arrays with a leading batch axis (rliable's style): no DataFrames, no
column names, no words. The verdict (``stats.analysis``), the auto rounds
(``stats.sequential``), placement and the many-cell figures all call these, so a simulation
of thousands of sweeps runs through the very code a real sweep runs with a batch of one.

What is here, stated once:

* **Holm** (``holm``, ``holm_levels``): step-down adjusted p-values and, per hypothesis, the
  local level at which Holm judged it. An interval at that level is compatible with the
  decision beside it: it excludes the null exactly when Holm rejects.
* **Rank effect** (``rank_test``): P(A<B) + 0.5 P(A=B) with the Brunner-Munzel variance,
  tested and bounded on the logit scale (range preserving: an interval never leaves [0, 1]).
  An estimate of 0 or 1 (separated samples) is moved one observation inside before the
  logit, and the variance is floored at ``2 P(1-P) / (n_a n_b)``, so such samples get a
  finite interval that still contains the estimate. Reference distribution: Student's t
  with Welch-Satterthwaite degrees of freedom; where a cell has fewer than ``SMALL_SAMPLE``
  values, the studentized permutation distribution of the same statistic (Neubert and
  Brunner 2007; Pauly et al. 2016), which holds its level at 5 seeds where t does not.
  One statistic gives the p-value against 0.5, the two one-sided tests (TOST) against the
  margin and every interval, so they never disagree.
* **Rates** (``rate_test``): the difference of two proportions with the Miettinen-Nurminen
  score statistic; its p-value against 0, its TOST against +-margin and its interval (the
  set of differences the score test does not reject) invert that one statistic.
* **Decision** (``decide``): equivalent when the TOST p (Holm-adjusted, in the same family
  as the difference tests) is below alpha; else better when the difference p is; else
  undecided. Returns ``Decision`` values (data, not words).
* **Seeds needed** (``rank_seeds_needed``, ``rate_seeds_needed``): a priori, at a declared
  smallest effect of interest, capped at ``SEEDS_CAP``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from nnsweep.config import EQUIVALENCE_MARGIN
from nnsweep.stats.decision import Decision

ALPHA = 0.05  # family-wise error rate of a verdict (and of all rounds of an auto sweep)
MARGIN = (
    EQUIVALENCE_MARGIN  # P(A<B) inside this is "practically equivalent" (the setting's default)
)
RATE_MARGIN = 0.06  # a solve-rate difference within +-this is "practically equivalent"
POWER = 0.8  # power assumed by the seeds-needed estimates
SMALL_SAMPLE = 20  # below this many values in a cell the rank test uses permutations
PERMUTATIONS = 2000  # permutations of the studentized rank statistic
PERMUTATION_SEED = 20261202  # fixed, so a report regenerated from the same tables is identical
SEEDS_CAP = 100_000  # seeds-needed estimates above this are reported as "more than"


# --------------------------------------------------------------------------------------
# Holm
# --------------------------------------------------------------------------------------


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values along the last axis (step-down, monotone, capped at 1).

    NaN entries (a test that does not apply) are no member of the family and stay NaN.
    """
    p_values = np.asarray(p_values, dtype=float)
    missing = np.isnan(p_values)
    count = (~missing).sum(axis=-1, keepdims=True)
    filled = np.where(missing, np.inf, p_values)
    order = np.argsort(filled, axis=-1, kind="stable")
    # Missing values sort last; they multiply nothing (1.0 here, NaN again below).
    ordered = np.take_along_axis(np.where(missing, 1.0, p_values), order, axis=-1)
    factor = np.maximum(count - np.arange(p_values.shape[-1]), 1)
    adjusted = np.maximum.accumulate(np.minimum(1.0, factor * ordered), axis=-1)
    result = np.empty_like(adjusted)
    np.put_along_axis(result, order, adjusted, axis=-1)
    return np.where(missing, np.nan, result)


def holm_levels(p_values: np.ndarray, alpha: float) -> np.ndarray:
    """Per hypothesis, the local level at which Holm judged it (last axis is the family).

    A hypothesis rejected at step k of m is judged at alpha / (m - k + 1); every hypothesis
    not rejected at alpha / (m - R), R the number rejected (the step where Holm stopped).
    So ``p < level`` exactly when the Holm-adjusted p is below alpha, and an interval at
    confidence 1 - level excludes the null exactly when Holm rejects it. NaN stays NaN.
    """
    p_values = np.asarray(p_values, dtype=float)
    missing = np.isnan(p_values)
    count = (~missing).sum(axis=-1, keepdims=True)
    rejected = holm(p_values) < alpha
    n_rejected = rejected.sum(axis=-1, keepdims=True)
    filled = np.where(missing, np.inf, p_values)
    rank = np.argsort(np.argsort(filled, axis=-1, kind="stable"), axis=-1, kind="stable")
    with np.errstate(divide="ignore"):
        at_step = alpha / (count - rank)
        stopped = alpha / np.maximum(count - n_rejected, 1)
    return np.where(missing, np.nan, np.where(rejected, at_step, stopped))


# --------------------------------------------------------------------------------------
# The rank effect P(A<B) + 0.5 P(A=B)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RankEffect:
    """P(A<B) + 0.5 P(A=B) per batch row, with its Brunner-Munzel standard error."""

    estimate: np.ndarray  # (batch,)
    se: np.ndarray  # (batch,) standard error (zero when the samples separate or all tie)
    df: np.ndarray  # (batch,) Welch-Satterthwaite degrees of freedom


def rank_effect(a: np.ndarray, b: np.ndarray) -> RankEffect:
    """The relative effect of ``b`` over ``a``: P(A<B) + 0.5 P(A=B), per batch row.

    Parameters
    ----------
    a, b : ndarray of shape (..., n_a) and (..., n_b)
        Errors of two cells (+inf for diverged seeds); leading axes are batch axes.

    Placements (Brunner & Munzel 2000; DeLong et al. 1988): each value of B is placed by the
    share of A below it, each value of A by the share of B above it; the estimate is their
    mean and its variance the sum of their variances over their counts, which is
    ``scipy.stats.brunnermunzel``'s.
    """
    n_a, n_b = a.shape[-1], b.shape[-1]
    combined = stats.rankdata(np.concatenate([a, b], axis=-1), axis=-1)
    below_a = (combined[..., :n_a] - stats.rankdata(a, axis=-1)) / n_b  # share of B below A_i
    placement_b = (combined[..., n_a:] - stats.rankdata(b, axis=-1)) / n_a  # share of A below
    estimate = placement_b.mean(axis=-1)
    var_a = below_a.var(axis=-1, ddof=1) / n_a
    var_b = placement_b.var(axis=-1, ddof=1) / n_b
    variance = var_a + var_b
    with np.errstate(divide="ignore", invalid="ignore"):
        df = variance**2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    df = np.where(np.isfinite(df) & (df > 0), df, n_a + n_b - 2.0)
    return RankEffect(estimate=estimate, se=np.sqrt(variance), df=df)


def _logit_scale(effect: RankEffect, n_a: int, n_b: int) -> tuple[np.ndarray, np.ndarray]:
    """The estimate on the logit scale and its delta-method standard error there.

    An estimate within one observation of 0 or 1 (n the smaller cell; separated samples)
    is moved to 1 / (n + 1) from the edge, so its logit is finite, and the variance is at
    least 2 P(1-P) / (n_a n_b), so a zero placement variance (separated or tied values)
    never yields a zero-width interval. (With P at the edge that floor is about
    2 / (n n_a n_b); the logit standard error then shrinks as 1 / sqrt(n): 20 against 20
    separated seeds give p ~ 5e-11, the exact permutation p being 1.4e-11.)
    """
    edge = 1.0 / (min(n_a, n_b) + 1.0)
    clipped = np.clip(effect.estimate, edge, 1.0 - edge)
    spread = clipped * (1.0 - clipped)
    se = np.sqrt(np.maximum(effect.se**2, 2.0 * spread / (n_a * n_b)))
    return special.logit(clipped), se / spread


@dataclass(frozen=True)
class RankTest:
    """The rank effect, its logit-scale statistic and reference distribution, per batch row.

    ``null`` holds the sorted |T*| of the permutations (batch, PERMUTATIONS) where the
    permutation distribution is the reference, else None (Student's t with ``df``).
    """

    estimate: np.ndarray  # (batch,) P(A<B) + 0.5 P(A=B)
    centre: np.ndarray  # (batch,) logit of the (shrunk) estimate
    se_logit: np.ndarray  # (batch,) its standard error on the logit scale
    df: np.ndarray  # (batch,) Welch-Satterthwaite degrees of freedom
    null: np.ndarray | None  # (batch, PERMUTATIONS) sorted |T*|, or None

    @property
    def method(self) -> str:
        return "permutation" if self.null is not None else "t"

    def tail(self, statistic: np.ndarray) -> np.ndarray:
        """P(|T| >= statistic) under the reference distribution (two-sided p)."""
        statistic = np.abs(statistic)
        if self.null is None:
            return 2.0 * stats.t.sf(statistic, self.df)
        count = self.null.shape[-1]
        exceed = count - _searchsorted_rows(self.null, statistic * (1 - 1e-12))
        return (1.0 + exceed) / (1.0 + count)

    def critical(self, level: np.ndarray) -> np.ndarray:
        """The c with P(|T| >= c) = level: the half-width of a 1 - level interval over se."""
        level = np.broadcast_to(np.asarray(level, dtype=float), self.estimate.shape)
        if self.null is None:
            return stats.t.isf(level / 2.0, self.df)
        count = self.null.shape[-1]
        # Smallest order statistic with at most level * (count + 1) - 1 values above it.
        index = np.ceil((1.0 - level) * (count + 1.0)) - 1.0
        index = np.clip(index, 0, count - 1).astype(int)
        value = np.take_along_axis(self.null, index[..., None], axis=-1)[..., 0]
        return np.where(level * (count + 1.0) < 1.0, np.inf, value)

    def p_value(self, null_effect: float = 0.5) -> np.ndarray:
        """Two-sided p of P(A<B) = ``null_effect``."""
        return self.tail((self.centre - special.logit(null_effect)) / self.se_logit)

    def p_equivalence(self, margin: tuple[float, float]) -> np.ndarray:
        """TOST: the larger p of "P <= low" and "P >= high" (one-sided, same statistic)."""
        low = (self.centre - special.logit(margin[0])) / self.se_logit
        high = (special.logit(margin[1]) - self.centre) / self.se_logit
        one_sided_low = np.where(low > 0, self.tail(low) / 2.0, 1.0 - self.tail(low) / 2.0)
        one_sided_high = np.where(high > 0, self.tail(high) / 2.0, 1.0 - self.tail(high) / 2.0)
        return np.maximum(one_sided_low, one_sided_high)

    def interval(self, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The 1 - ``level`` interval of P(A<B): every value the test does not reject."""
        half = self.critical(level) * self.se_logit
        low, high = special.expit(self.centre - half), special.expit(self.centre + half)
        # An estimate at 0 or 1 was moved inside before the logit; the interval keeps it.
        return np.minimum(low, self.estimate), np.maximum(high, self.estimate)


def _searchsorted_rows(sorted_rows: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``np.searchsorted`` row by row (left side), for a batch of sorted rows."""
    flat = sorted_rows.reshape(-1, sorted_rows.shape[-1])
    targets = np.broadcast_to(values, sorted_rows.shape[:-1]).reshape(-1)
    found = np.array([np.searchsorted(row, t) for row, t in zip(flat, targets, strict=True)])
    return found.reshape(sorted_rows.shape[:-1])


def _pairwise_effect(a: np.ndarray, b: np.ndarray) -> RankEffect:
    """``rank_effect`` by comparing every pair (faster for the small cells permuted)."""
    n_a, n_b = a.shape[-1], b.shape[-1]
    below = (a[..., :, None] < b[..., None, :]) + 0.5 * (a[..., :, None] == b[..., None, :])
    place_a, place_b = below.mean(axis=-1), below.mean(axis=-2)
    var_a = place_a.var(axis=-1, ddof=1) / n_a
    var_b = place_b.var(axis=-1, ddof=1) / n_b
    variance = var_a + var_b
    with np.errstate(divide="ignore", invalid="ignore"):
        df = variance**2 / (var_a**2 / (n_a - 1) + var_b**2 / (n_b - 1))
    df = np.where(np.isfinite(df) & (df > 0), df, n_a + n_b - 2.0)
    return RankEffect(estimate=place_b.mean(axis=-1), se=np.sqrt(variance), df=df)


def _permutation_null(a: np.ndarray, b: np.ndarray, permutations: int) -> np.ndarray:
    """Sorted |T*| of the studentized logit statistic over random relabellings, per row.

    The relabellings are the same for every row (a fixed seed), so a report is repeatable.
    """
    n_a, n_b = a.shape[-1], b.shape[-1]
    pooled = np.concatenate([a, b], axis=-1)
    rng = np.random.default_rng(PERMUTATION_SEED)
    order = np.argsort(rng.random((permutations, n_a + n_b)), axis=-1)
    shuffled = pooled[..., order]  # (..., permutations, n_a + n_b)
    effect = _pairwise_effect(shuffled[..., :n_a], shuffled[..., n_a:])
    centre, se_logit = _logit_scale(effect, n_a, n_b)
    return np.sort(np.abs(centre / se_logit), axis=-1)


def rank_test(
    a: np.ndarray,
    b: np.ndarray,
    *,
    small_sample: int = SMALL_SAMPLE,
    permutations: int = PERMUTATIONS,
) -> RankTest:
    """Test and bound P(A<B) + 0.5 P(A=B) for a batch of pairs of samples.

    Parameters
    ----------
    a, b : ndarray of shape (batch, n_a) and (batch, n_b)
        Values of two cells (+inf ranks worst). A 1-D pair is treated as a batch of one.
    small_sample : int
        Below this many values in either cell, the reference distribution is the
        studentized permutation one (0 turns permutations off).
    """
    a, b = np.atleast_2d(np.asarray(a, float)), np.atleast_2d(np.asarray(b, float))
    n_a, n_b = a.shape[-1], b.shape[-1]
    effect = rank_effect(a, b)
    centre, se_logit = _logit_scale(effect, n_a, n_b)
    null = None
    if min(n_a, n_b) < small_sample:
        null = _permutation_null(a, b, permutations)
    return RankTest(effect.estimate, centre, se_logit, effect.df, null)


# --------------------------------------------------------------------------------------
# Two rates: Miettinen-Nurminen score statistic
# --------------------------------------------------------------------------------------


def _restricted_rates(
    k_a: np.ndarray, n_a: np.ndarray, k_b: np.ndarray, n_b: np.ndarray, delta: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Maximum-likelihood rates under rate_a - rate_b = delta (Miettinen & Nurminen 1985).

    The closed-form root of their cubic (Farrington & Manning 1990's notation).
    """
    rate_a, rate_b = k_a / n_a, k_b / n_b
    theta = n_b / n_a
    a = 1.0 + theta
    b = -(1.0 + theta + rate_a + theta * rate_b + delta * (theta + 2.0))
    c = delta**2 + delta * (2.0 * rate_a + theta + 1.0) + rate_a + theta * rate_b
    d = -rate_a * delta * (1.0 + delta)
    v = b**3 / (3.0 * a) ** 3 - b * c / (6.0 * a**2) + d / (2.0 * a)
    u = np.sign(v) * np.sqrt(np.maximum(b**2 / (3.0 * a) ** 2 - c / (3.0 * a), 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(u == 0, 0.0, v / u**3)
    w = (math.pi + np.arccos(np.clip(ratio, -1.0, 1.0))) / 3.0
    restricted_a = np.clip(2.0 * u * np.cos(w) - b / (3.0 * a), 0.0, 1.0)
    restricted_b = np.clip(restricted_a - delta, 0.0, 1.0)
    return restricted_a, restricted_b


def rate_score(
    k_a: np.ndarray, n_a: np.ndarray, k_b: np.ndarray, n_b: np.ndarray, delta: np.ndarray
) -> np.ndarray:
    """Miettinen-Nurminen score statistic of H0: rate_a - rate_b = ``delta`` (broadcasts)."""
    k_a, n_a, k_b, n_b, delta = np.broadcast_arrays(
        *(np.asarray(x, dtype=float) for x in (k_a, n_a, k_b, n_b, delta))
    )
    restricted_a, restricted_b = _restricted_rates(k_a, n_a, k_b, n_b, delta)
    total = n_a + n_b
    variance = (
        restricted_a * (1 - restricted_a) / n_a + restricted_b * (1 - restricted_b) / n_b
    ) * (total / (total - 1.0))
    difference = k_a / n_a - k_b / n_b - delta
    # Zero variance under H0 happens only at a boundary the data sit on (score 0) or
    # contradict outright (score infinite). Both branches are evaluated everywhere, so the
    # one not taken may divide by zero or multiply 0 by inf: silence that, not the result.
    with np.errstate(divide="ignore", invalid="ignore"):
        score = difference / np.sqrt(variance)
        boundary = np.where(difference == 0, 0.0, np.sign(difference) * np.inf)
    return np.where(variance > 0, score, boundary)


@dataclass(frozen=True)
class RateTest:
    """Two success rates compared through one score statistic, per batch row."""

    k_a: np.ndarray  # successes of A
    n_a: np.ndarray  # seeds of A
    k_b: np.ndarray
    n_b: np.ndarray

    @property
    def estimate(self) -> np.ndarray:
        """rate_a - rate_b."""
        return self.k_a / self.n_a - self.k_b / self.n_b

    def p_value(self, delta: float = 0.0) -> np.ndarray:
        """Two-sided score-test p of rate_a - rate_b = ``delta``."""
        return 2.0 * stats.norm.sf(
            np.abs(rate_score(self.k_a, self.n_a, self.k_b, self.n_b, delta))
        )

    def p_equivalence(self, margin: float) -> np.ndarray:
        """TOST: the larger one-sided score p of "difference <= -margin" and ">= +margin"."""
        low = stats.norm.sf(rate_score(self.k_a, self.n_a, self.k_b, self.n_b, -margin))
        high = stats.norm.cdf(rate_score(self.k_a, self.n_a, self.k_b, self.n_b, margin))
        return np.maximum(low, high)

    def interval(self, level: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The Miettinen-Nurminen 1 - ``level`` interval: every delta the test keeps.

        The score is decreasing in delta, so each end is found by bisection (60 halvings,
        below 1e-17 of the range), vectorised over the batch.
        """
        level = np.broadcast_to(np.asarray(level, dtype=float), self.estimate.shape)
        z = stats.norm.isf(level / 2.0)
        ends = []
        for sign, start in ((1.0, -1.0), (-1.0, 1.0)):
            # Lower end: the smallest delta with score <= z; upper: the largest with >= -z.
            inside, outside = self.estimate.copy(), np.full_like(self.estimate, start)
            for _ in range(60):
                middle = (inside + outside) / 2.0
                score = rate_score(self.k_a, self.n_a, self.k_b, self.n_b, middle)
                kept = sign * score <= z
                inside = np.where(kept, middle, inside)
                outside = np.where(kept, outside, middle)
            ends.append(
                np.where(
                    sign * rate_score(self.k_a, self.n_a, self.k_b, self.n_b, outside) <= z,
                    outside,
                    inside,
                )
            )
        return ends[0], ends[1]


def rate_test(k_a: np.ndarray, n_a: np.ndarray, k_b: np.ndarray, n_b: np.ndarray) -> RateTest:
    """Successes and seeds of two cells (any broadcastable shapes) as one ``RateTest``."""
    k_a, n_a, k_b, n_b = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(x, dtype=float)) for x in (k_a, n_a, k_b, n_b))
    )
    return RateTest(k_a, n_a, k_b, n_b)


# --------------------------------------------------------------------------------------
# Decisions and seeds needed
# --------------------------------------------------------------------------------------


def decide(
    estimate: np.ndarray,
    centre: float,
    p_difference_holm: np.ndarray,
    p_equivalence_holm: np.ndarray,
    alpha: float,
) -> np.ndarray:
    """Decision per element: equivalent, else a/b better, else undecided (object array).

    Equivalence comes first: a difference shown to lie inside the margin is too small to
    matter even when the difference test also detects it. NaN estimates (nothing to
    compare) are ``NOT_APPLICABLE``. A better cell is the one with the larger estimate
    (P(A<B) > 0.5: A ends lower; rate difference > 0: A succeeds more often).
    """
    estimate = np.asarray(estimate, dtype=float)
    with np.errstate(invalid="ignore"):
        equivalent = np.asarray(p_equivalence_holm) < alpha
        different = np.asarray(p_difference_holm) < alpha
    code = np.select(
        [np.isnan(estimate), equivalent, different & (estimate > centre), different],
        [4, 2, 0, 1],
        default=3,
    )
    return _DECISIONS[code]


# Decision codes of ``decide`` -> values (the enum's order).
_DECISIONS = np.array(list(Decision), dtype=object)


def _z_sum(level: np.ndarray, power: float = POWER) -> np.ndarray:
    return stats.norm.isf(np.asarray(level) / 2.0) + stats.norm.ppf(power)


def rank_seeds_needed(
    effect: np.ndarray | float, level: np.ndarray | float, power: float = POWER
) -> np.ndarray:
    """Seeds per cell for the rank test to reject P(A<B) = 0.5 when P(A<B) = 0.5 + effect.

    Noether (1987), equal cells: n = (z_{1-level/2} + z_power)^2 / (6 effect^2). The same
    formula with the distance from 0.5 to the margin gives the seeds for the equivalence
    test when the truth is 0.5 (the two one-sided tests then each need that distance).
    """
    effect = np.abs(np.asarray(effect, dtype=float))
    with np.errstate(divide="ignore"):
        return np.ceil(_z_sum(level, power) ** 2 / (6.0 * effect**2))


def rate_seeds_needed(
    rate: np.ndarray | float,
    effect: np.ndarray | float,
    level: np.ndarray | float,
    power: float = POWER,
) -> np.ndarray:
    """Seeds per cell for two rates around ``rate`` to differ detectably by ``effect``.

    Normal approximation: n = (z_{1-level/2} + z_power)^2 (p_a q_a + p_b q_b) / effect^2
    with p_a, p_b = rate +- effect / 2 (clipped to [0, 1]).
    """
    rate, effect = np.asarray(rate, float), np.abs(np.asarray(effect, float))
    p_a, p_b = np.clip(rate + effect / 2, 0, 1), np.clip(rate - effect / 2, 0, 1)
    variance = np.maximum(p_a * (1 - p_a) + p_b * (1 - p_b), 1e-12)
    with np.errstate(divide="ignore"):
        return np.ceil(_z_sum(level, power) ** 2 * variance / effect**2)


def cap_seeds(needed: np.ndarray, n_now: np.ndarray | int) -> np.ndarray:
    """Seeds-needed figures made printable: at least one more than trained, at most the cap.

    An undecided pair needs more seeds than it has, whatever an approximation says; beyond
    ``SEEDS_CAP`` the number is reported as "more than" (inf here).
    """
    needed = np.maximum(np.asarray(needed, dtype=float), np.asarray(n_now) + 1)
    return np.where(needed > SEEDS_CAP, np.inf, needed)
