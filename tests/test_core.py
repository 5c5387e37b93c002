"""The statistics core against direct scipy/numpy computations, and its error control by
simulation (vectorised over the batch axis).

Tolerance for simulation noise, as in tests/test_sequential.py: an error rate passes when its
count over N simulations is at most the 99th percentile of Binomial(N, alpha).
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import optimize, special, stats

from nnsweep.report import wording
from nnsweep.stats import analysis, core
from nnsweep.stats.decision import Decision


def within(count: int, n: int, rate: float) -> bool:
    return count <= stats.binom.ppf(0.99, n, rate)


# --------------------------------------------------------------------------------------
# Holm
# --------------------------------------------------------------------------------------


def test_holm_and_its_levels_match_the_procedure_written_out() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        m = int(rng.integers(1, 12))
        p = rng.uniform(size=m) ** 4
        order = np.argsort(p)
        # Step down: reject while p_(k) < alpha / (m - k + 1).
        rejected = np.zeros(m, bool)
        for k, index in enumerate(order):
            if p[index] >= 0.05 / (m - k):
                break
            rejected[index] = True
        adjusted = core.holm(p)
        np.testing.assert_array_equal(adjusted < 0.05, rejected)
        expected = np.minimum(1, np.maximum.accumulate((m - np.arange(m)) * p[order]))
        np.testing.assert_allclose(adjusted[order], expected)
        # The local level: p below it exactly when Holm rejects.
        np.testing.assert_array_equal(p < core.holm_levels(p, 0.05), rejected)
    # NaN (a test that does not apply) is no member of the family.
    with_gap = core.holm(np.array([0.01, np.nan, 0.02]))
    np.testing.assert_allclose(with_gap, [0.02, np.nan, 0.02])


# --------------------------------------------------------------------------------------
# Rank test: one statistic for the p-value, the TOST and the interval
# --------------------------------------------------------------------------------------


def test_rank_effect_is_scipys_brunner_munzel() -> None:
    rng = np.random.default_rng(1)
    a = np.round(rng.normal(size=(4, 25)), 1)
    b = np.round(rng.normal(0.5, 2.0, size=(4, 33)), 1)
    a[:, :2] = np.inf  # diverged seeds rank worst
    effect = core.rank_effect(a, b)
    for row in range(4):
        reference = stats.brunnermunzel(a[row], b[row])
        assert (effect.estimate[row] - 0.5) / effect.se[row] == pytest.approx(reference.statistic)
        assert 2 * stats.t.sf(abs(reference.statistic), effect.df[row]) == pytest.approx(
            reference.pvalue
        )


@pytest.mark.parametrize("n", [8, 40])  # permutation and t reference distributions
def test_the_interval_is_the_set_the_test_keeps(n: int) -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(3, n)), rng.normal(0.6, 1.0, size=(3, n))
    test = core.rank_test(a, b)
    assert test.method == ("permutation" if n < core.SMALL_SAMPLE else "t")
    level = np.array([0.05, 0.01, 0.2])
    low, high = test.interval(level)
    # p of "P(A<B) = an interval end" is the level (t: exactly; permutation: up to the
    # Monte Carlo step 1 / (permutations + 1)).
    step = 0 if test.null is None else 3 / (core.PERMUTATIONS + 1)
    for end in (low, high):
        p_end = test.tail((test.centre - special.logit(end)) / test.se_logit)
        assert np.all(np.abs(p_end - level) <= step + 1e-9)
    # The interval excludes 0.5 exactly when the test rejects at the level.
    np.testing.assert_array_equal(test.p_value() < level, (low > 0.5) | (high < 0.5))


def test_equivalence_p_below_a_level_is_a_1_minus_2_level_interval_inside_the_margin() -> None:
    rng = np.random.default_rng(3)
    shifts = rng.uniform(-0.3, 0.3, size=(400, 1))
    a, b = rng.normal(size=(400, 300)), rng.normal(shifts, 1.0, size=(400, 300))
    test = core.rank_test(a, b)
    margin = (0.44, 0.56)
    p_eq = test.p_equivalence(margin)
    low, high = test.interval(np.full(400, 0.1))
    inside = (margin[0] < low) & (high < margin[1])
    np.testing.assert_array_equal(p_eq < 0.05, inside)
    assert 0 < inside.sum() < 400  # both outcomes occur


def test_the_permutation_p_is_the_share_of_relabellings_as_extreme() -> None:
    """5 against 5: every one of the 252 relabellings enumerated by hand."""
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=5), rng.normal(1.0, 1.0, size=5)
    pooled = np.concatenate([a, b])

    def statistic(x: np.ndarray, y: np.ndarray) -> float:
        test = core.rank_test(x, y, small_sample=0)  # t reference: just the statistic
        return abs(test.centre[0] / test.se_logit[0])

    observed = statistic(a, b)
    extreme = [
        statistic(pooled[list(chosen)], pooled[[i for i in range(10) if i not in chosen]])
        >= observed - 1e-12
        for chosen in itertools.combinations(range(10), 5)
    ]
    exact = np.mean(extreme)
    monte_carlo = core.rank_test(a, b).p_value()[0]
    assert monte_carlo == pytest.approx(exact, abs=3 * math.sqrt(exact * (1 - exact) / 2000))


def _coverage(n: int, p_below: float, sims: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    shift = math.sqrt(2) * stats.norm.ppf(p_below)
    a, b = rng.normal(size=(sims, n)), rng.normal(shift, 1.0, size=(sims, n))
    low, high = core.rank_test(a, b).interval(np.full(sims, 0.05))
    return float(np.mean((low <= p_below) & (p_below <= high)))


@pytest.mark.parametrize("p_below", [0.5, 0.7, 0.9])
@pytest.mark.parametrize("n", [30, 100])
def test_the_95_interval_covers_at_least_93_percent(n: int, p_below: float) -> None:
    assert _coverage(n, p_below, 2000, seed=n) >= 0.93


@pytest.mark.slow
@pytest.mark.parametrize("p_below", [0.5, 0.7, 0.9])
@pytest.mark.parametrize("n", [5, 10])
def test_the_95_interval_covers_at_least_93_percent_with_few_seeds(n: int, p_below: float) -> None:
    """Permutation reference below core.SMALL_SAMPLE seeds; 600 simulated pairs each."""
    assert _coverage(n, p_below, 600, seed=n) >= 0.93


# --------------------------------------------------------------------------------------
# Rates: Miettinen-Nurminen
# --------------------------------------------------------------------------------------


def _restricted_by_optimiser(k_a: int, n_a: int, k_b: int, n_b: int, delta: float) -> float:
    def minus_loglik(p_b: float) -> float:
        p_a = p_b + delta
        return -(
            stats.binom.logpmf(k_a, n_a, min(max(p_a, 0), 1))
            + stats.binom.logpmf(k_b, n_b, min(max(p_b, 0), 1))
        )

    bounds = (max(0.0, -delta) + 1e-12, min(1.0, 1.0 - delta) - 1e-12)
    return optimize.minimize_scalar(
        minus_loglik, bounds=bounds, method="bounded", options={"xatol": 1e-12}
    ).x


RATE_CASES = [(30, 100, 45, 100), (9, 12, 3, 15), (70, 80, 71, 90), (0, 40, 5, 40)]


@pytest.mark.parametrize(("k_a", "n_a", "k_b", "n_b"), RATE_CASES)
def test_rate_score_uses_the_restricted_maximum_likelihood(
    k_a: int, n_a: int, k_b: int, n_b: int
) -> None:
    for delta in (-0.2, -0.06, 0.0, 0.06, 0.3):
        p_b = _restricted_by_optimiser(k_a, n_a, k_b, n_b, delta)
        p_a = p_b + delta
        n = n_a + n_b
        variance = (p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b) * n / (n - 1)
        direct = (k_a / n_a - k_b / n_b - delta) / math.sqrt(variance)
        assert core.rate_score(k_a, n_a, k_b, n_b, delta) == pytest.approx(direct, rel=1e-5)
    test = core.rate_test(k_a, n_a, k_b, n_b)
    # The interval ends are where the score test's p equals the level; TOST p is the
    # larger one-sided p at +-margin.
    low, high = test.interval(0.05)
    assert test.p_value(low[0])[0] == pytest.approx(0.05, abs=1e-6)
    assert test.p_value(high[0])[0] == pytest.approx(0.05, abs=1e-6)
    tost = max(
        stats.norm.sf(core.rate_score(k_a, n_a, k_b, n_b, -0.06)),
        stats.norm.cdf(core.rate_score(k_a, n_a, k_b, n_b, 0.06)),
    )
    assert test.p_equivalence(0.06)[0] == pytest.approx(tost)


def test_the_rate_interval_and_test_never_disagree() -> None:
    """The review's case: Newcombe's interval excluded 0 while Fisher's p was 0.055."""
    rng = np.random.default_rng(5)
    k_a, k_b = rng.integers(0, 101, 3000), rng.integers(0, 101, 3000)
    test = core.rate_test(k_a, 100, k_b, 100)
    low, high = test.interval(np.full(3000, 0.05))
    excludes = (low > 0) | (high < 0)
    differs = test.p_value() < 0.05
    np.testing.assert_array_equal(excludes, differs)


# --------------------------------------------------------------------------------------
# Decisions and seeds needed
# --------------------------------------------------------------------------------------


def test_decide_puts_equivalence_first_and_keeps_the_stored_strings() -> None:
    decided = core.decide(
        np.array([0.6, 0.4, 0.5, np.nan, 0.52]),
        0.5,
        np.array([0.01, 0.01, 0.5, np.nan, 0.01]),
        np.array([0.5, 0.5, 0.5, np.nan, 0.01]),
        0.05,
    )
    assert decided.tolist() == ["a_better", "b_better", "undecided", "not_applicable", "equivalent"]
    assert all(isinstance(d, Decision) for d in decided)
    assert Decision("b_better").swapped() == Decision.A_BETTER  # old tables read


def test_seeds_needed_is_noethers_formula_capped() -> None:
    z = stats.norm.isf(0.05 / 2) + stats.norm.ppf(0.8)
    assert core.rank_seeds_needed(0.1, 0.05) == math.ceil(z**2 / (6 * 0.01))
    capped = core.cap_seeds(np.array([5.0, 300.0, 2e5]), 100)
    assert capped.tolist()[:2] == [101.0, 300.0] and np.isinf(capped[2])


# --------------------------------------------------------------------------------------
# Error control of the verdict, by simulation
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_verdict_false_claims_stay_within_alpha() -> None:
    """One family per simulated sweep: a pair of identical cells (any 'better' is false) and
    a pair exactly at the margin's edge in P(A<B) and in solve rate (any 'equivalent' is
    false). The share of sweeps with any false claim stays within alpha."""
    rng = np.random.default_rng(6)
    sims, n = 300, 60
    edge = math.sqrt(2) * stats.norm.ppf(0.56)
    false_claims = 0
    for _ in range(sims):
        errors = {
            "A": rng.normal(size=n),
            "B": rng.normal(size=n),
            "C": rng.normal(0.0, 1.0, size=n),
            "D": rng.normal(edge, 1.0, size=n),
        }
        success = {
            "A": rng.random(n) < 0.8,
            "B": rng.random(n) < 0.8,
            "C": np.ones(n, bool),
            "D": np.ones(n, bool),
        }
        # D's solve rate sits exactly at the rate margin from C's: succeed in all but
        # 6% of seeds, so "equivalent in reliability" would be false too.
        success["D"][: round(0.06 * n)] = False
        samples = {cell: (errors[cell], success[cell]) for cell in errors}
        table = analysis.pair_decisions(samples, pairs=[("A", "B"), ("C", "D")])
        same = table[table["a"] == "A"]["decision"]
        edge_pair = table[table["a"] == "C"]
        wrong = same.isin([Decision.A_BETTER, Decision.B_BETTER]).any()
        wrong |= (
            (edge_pair["part"] != "quality")
            .to_numpy()[(edge_pair["decision"] == Decision.EQUIVALENT).to_numpy()]
            .any()
        )
        wrong |= (edge_pair["decision"] == Decision.A_BETTER).any()  # D is worse, never better
        false_claims += bool(wrong)
    assert within(false_claims, sims, 0.05), f"{false_claims} of {sims} sweeps claimed falsely"


def test_a_quality_difference_made_only_by_selection_is_not_called_better() -> None:
    """Every initialisation has a difficulty u; both shapes end at the same error for the
    same u (lower u, lower error), but A solves only u < 0.5 and B u < 0.9. Among the seeds
    that solved, A looks far better; the seeds that solve in both are identical."""
    rng = np.random.default_rng(7)
    n = 400
    u_a, u_b = rng.random(n), rng.random(n)

    def cell(u: np.ndarray, solves_below: float) -> tuple[np.ndarray, np.ndarray]:
        error = 0.001 * np.exp(3 * u) * rng.lognormal(0, 0.05, len(u))
        solved = u < solves_below
        return np.where(solved, error, 0.06), solved

    samples = {"A": cell(u_a, 0.5), "B": cell(u_b, 0.9)}
    errors_a, solved_a = samples["A"]
    errors_b, solved_b = samples["B"]
    naive = core.rank_test(errors_a[solved_a], errors_b[solved_b])
    assert naive.estimate[0] > 0.7 and naive.p_value()[0] < 1e-10  # selection fakes it
    table = analysis.pair_decisions(samples).set_index("part")
    quality = table.loc["quality"]
    assert quality["decision"] != Decision.A_BETTER
    assert quality["bound_low"] < 0.5 < quality["bound_high"] or quality["bound_low"] <= 0.56
    assert quality["estimate"] == pytest.approx(naive.estimate[0])
    # And the words say both bounds, and that none is "better".
    sentence = wording.pair_sentence({**quality.to_dict(), "part": "quality", "a": "A", "b": "B"})
    assert "trimming bounds" in sentence and "ends with lower" not in sentence
    # A real quality difference among the same always-solvers is still found.
    better = {"A": (errors_a * np.where(solved_a, 0.5, 1.0), solved_a), "B": samples["B"]}
    found = analysis.pair_decisions(better).set_index("part").loc["quality", "decision"]
    assert found == Decision.A_BETTER


def test_quality_needs_enough_successes_after_trimming() -> None:
    rng = np.random.default_rng(8)
    errors = rng.normal(size=50)
    few, many = np.zeros(50, bool), np.ones(50, bool)
    few[:4] = True
    table = analysis.pair_decisions({"A": (errors, few), "B": (errors - 5, many)})
    quality = table.set_index("part").loc["quality"]
    assert quality["decision"] == Decision.NOT_APPLICABLE
    assert quality["reason"] == "few_successes"


@pytest.mark.parametrize("n", [2, 3])
def test_a_pair_with_nothing_to_test_is_left_out_not_an_error(n: int) -> None:
    """Two or three seeds per cell, all solved: every part is left out (no KeyError)."""
    errors = np.arange(n, dtype=float)
    table = analysis.pair_decisions(
        {"A": (errors, np.ones(n, bool)), "B": (errors + 1, np.ones(n, bool))}
    )
    assert (table["decision"] == Decision.NOT_APPLICABLE).all()
    assert set(table["reason"]) == {"no_failure", "few_successes", "all_succeeded"}
    mixed = analysis.pair_decisions(
        {"A": (errors, np.arange(n) > 0), "B": (errors + 1, np.ones(n, bool))}
    )
    assert mixed.set_index("part").loc["pooled", "decision"] in set(Decision)
