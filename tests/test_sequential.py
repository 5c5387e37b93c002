"""The auto sweep's sequential rule, proved by simulation (no network is trained).

Each simulated auto sweep draws its seeds' final errors, with replacement, from a fixed
population: the 100 seeds per shape of the shipped results/neurons_early/runs.parquet, or a
normal distribution with a known P(A<B). It runs through ``sequential.simulate``, which calls
the same ``advance`` and ``classify`` the real auto sweep calls.

Tolerance for simulation noise, stated once: an error rate passes when the count of bad
outcomes over N simulated sweeps is at most the 99th percentile of Binomial(N, alpha), the
count a rule with an error rate of exactly alpha would exceed 1% of the time. With N = 1000
and alpha = 0.05 that is 67 (6.7%). Draws use fixed seeds, so the tests are deterministic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_ROOT
from scipy import stats

from nnsweep.stats import analysis, core
from nnsweep.stats.core import rank_test
from nnsweep.stats.sequential import (
    ALPHA,
    SPENDING,
    Decisions,
    Plan,
    active_cells,
    advance,
    classify_pairs,
    rank_effect,
    seeds_needed,
    simulate,
)

N_SIMS = 1000
WRONG_CLAIMS = ("a_better", "b_better")


def within_alpha(count: int, n_sims: int = N_SIMS, alpha: float = ALPHA) -> bool:
    """At most alpha, up to simulation noise (see the module docstring)."""
    return count <= stats.binom.ppf(0.99, n_sims, alpha)


@pytest.fixture(scope="module")
def shipped() -> dict[str, np.ndarray]:
    """Final errors of the shipped neurons_early sweep per shape (diverged seeds = +inf)."""
    runs = pd.read_parquet(PROJECT_ROOT / "results" / "neurons_early" / "runs.parquet")
    errors = runs["final_error"].where(runs["status"] == "ok", np.inf)
    return {layers: errors[runs["layers"] == layers].to_numpy() for layers in runs["layers"]}


def normal_pair(p_a_below_b: float, size: int = 20000) -> dict[str, np.ndarray]:
    """Two normal populations with a given P(A<B) (a shift of sqrt(2) z)."""
    rng = np.random.default_rng(7)
    shift = np.sqrt(2.0) * stats.norm.ppf(p_a_below_b)
    return {"A": rng.normal(size=size), "B": rng.normal(loc=shift, size=size)}


# --------------------------------------------------------------------------------------
# The building blocks against scipy
# --------------------------------------------------------------------------------------


def test_rank_effect_matches_scipy_brunner_munzel() -> None:
    rng = np.random.default_rng(0)
    # Ties and +inf (diverged seeds) included, as real errors have them.
    a = np.round(rng.normal(size=(5, 30)), 1)
    b = np.round(rng.normal(0.4, 1.0, size=(5, 45)), 1)
    a[:, :3] = np.inf
    effect = rank_effect(a, b)
    for row in range(5):
        u = stats.mannwhitneyu(a[row], b[row]).statistic
        assert effect.estimate[row] == pytest.approx(1.0 - u / (30 * 45))
        reference = stats.brunnermunzel(a[row], b[row])
        t_value = (effect.estimate[row] - 0.5) / effect.se[row]
        assert t_value == pytest.approx(reference.statistic)
        p_value = 2 * stats.t.sf(abs(t_value), effect.df[row])
        assert p_value == pytest.approx(reference.pvalue)


def test_rank_intervals_never_collapse_to_zero_width() -> None:
    separated = rank_test(np.arange(30.0)[None], np.arange(30.0, 60.0)[None])
    assert separated.estimate[0] == 1.0
    low, high = separated.interval(np.array([0.05]))
    assert 0.5 < low[0] < 0.99 and high[0] == 1.0  # the estimate stays inside
    assert separated.p_value()[0] < 1e-4
    tied = rank_test(np.ones((1, 30)), np.ones((1, 30)))
    low, high = tied.interval(np.array([0.05]))
    assert tied.estimate[0] == 0.5 and low[0] < 0.5 < high[0]


def test_holm_on_a_batch_matches_holm_row_by_row() -> None:
    p_values = np.random.default_rng(1).uniform(size=(6, 7)) ** 3
    expected = np.stack([core.holm(row) for row in p_values])
    np.testing.assert_allclose(core.holm(p_values), expected)


@pytest.mark.parametrize("spending", list(SPENDING))
@pytest.mark.parametrize(("max_seeds", "seed_block"), [(1000, 100), (2000, 50), (130, 20)])
def test_the_looks_spend_exactly_alpha(spending: str, max_seeds: int, seed_block: int) -> None:
    plan = Plan(max_seeds=max_seeds, seed_block=seed_block, spending=spending)
    shares = [plan.look_alpha(look) for look in range(1, plan.n_looks + 1)]
    assert all(share >= 0 for share in shares)
    assert sum(shares) == pytest.approx(ALPHA)
    assert plan.seeds_at(plan.n_looks) == max_seeds


def test_classification_is_the_verdicts_reading_of_the_interval() -> None:
    rng = np.random.default_rng(2)
    samples = {
        "same_1": rng.normal(size=(1, 3000)),
        "same_2": rng.normal(size=(1, 3000)),
        "worse": rng.normal(1.0, 1.0, size=(1, 40)),
        "few": rng.normal(0.1, 1.0, size=(1, 12)),
    }
    pairs = [("same_1", "same_2"), ("same_1", "worse"), ("worse", "same_1"), ("same_1", "few")]
    result = classify_pairs(samples, pairs, alpha=0.01)
    assert result.decision[0].tolist() == ["equivalent", "a_better", "b_better", "undecided"]
    # "equivalent": the interval lies inside the margin; "better": it excludes 0.5.
    assert 0.44 < result.ci_low[0, 0] < result.ci_high[0, 0] < 0.56
    assert result.ci_low[0, 1] > 0.5 and result.ci_high[0, 2] < 0.5


def test_a_decision_is_final_and_frees_its_cells() -> None:
    plan = Plan(max_seeds=100, seed_block=20, spending="bonferroni")
    rng = np.random.default_rng(3)
    samples = {"a": rng.normal(size=(1, 20)), "b": rng.normal(5, 1, size=(1, 20))}
    samples["c"] = samples["a"] + 1e-9
    pairs = [("a", "b"), ("a", "c"), ("b", "c")]
    decisions = Decisions.start(1, 3)
    advance(plan, 1, samples, pairs, decisions)
    assert decisions.decision[0].tolist() == ["a_better", "undecided", "b_better"]
    assert decisions.look[0].tolist() == [1, 0, 1]
    assert active_cells(["a", "b", "c"], pairs, decisions)[0].tolist() == [True, False, True]
    # A later look where a vs b would read differently does not change it.
    advance(plan, 2, {**samples, "b": samples["a"] - 5}, pairs, decisions)
    assert decisions.decision[0, 0] == "a_better" and decisions.look[0, 0] == 1


def test_seeds_needed_is_an_a_priori_range_never_below_the_seeds_trained() -> None:
    # Noether: (z_{1-level/2} + z_0.8)^2 / (6 d^2), d = 0.06 (equivalence at P = 0.5) and
    # d = 0.14 (a difference at the smallest effect of interest, 0.64).
    z = stats.norm.isf(0.005 / 2) + stats.norm.ppf(0.8)
    low, high = seeds_needed(0.005, np.array([10, 500, 2000]))
    assert low[0] == np.ceil(z**2 / (6 * 0.14**2))
    assert high[0] == np.ceil(z**2 / (6 * 0.06**2))
    assert low[1] == 501  # never fewer than one more than trained
    assert low[2] == high[2] == 2001
    # Beyond the cap: "more than 100,000" (inf).
    assert np.isinf(seeds_needed(1e-12, np.array([10]), margin=(0.499, 0.501))[1][0])


# --------------------------------------------------------------------------------------
# Error control, by simulation
# --------------------------------------------------------------------------------------

# 20 looks: enough for naive repeated testing to show its inflation.
MANY_LOOKS = Plan(max_seeds=500, seed_block=25)


def test_identical_cells_are_rarely_called_different(shipped) -> None:
    """A/A: two cells drawn from the same distribution (8-8-8's 100 seeds)."""
    population = shipped["8-8-8"]
    result = simulate(MANY_LOOKS, {"A": population, "B": population}, N_SIMS, seed=1)
    false_claims = int(np.isin(result.decision[:, 0], WRONG_CLAIMS).sum())
    assert within_alpha(false_claims), f"{false_claims} of {N_SIMS} A/A sweeps claimed a winner"


def test_naive_repeated_testing_fails_the_same_check(shipped) -> None:
    """The check above can fail: testing at the full alpha after every round does."""
    population = shipped["8-8-8"]
    naive = Plan(max_seeds=MANY_LOOKS.max_seeds, seed_block=MANY_LOOKS.seed_block, spending="naive")
    result = simulate(naive, {"A": population, "B": population}, N_SIMS, seed=1)
    false_claims = int(np.isin(result.decision[:, 0], WRONG_CLAIMS).sum())
    assert not within_alpha(false_claims)
    assert false_claims > 2 * ALPHA * N_SIMS  # 116 of 1000 (12%) here


def test_three_identical_cells_keep_the_family_wise_error(shipped) -> None:
    """A/A/A: Holm across the three pairs at every look keeps any false claim under alpha."""
    population = shipped["16-8-8"]
    cells = {"A": population, "B": population, "C": population}
    plan = Plan(max_seeds=400, seed_block=50)
    result = simulate(plan, cells, N_SIMS, seed=2)
    any_false = int(np.isin(result.decision, WRONG_CLAIMS).any(axis=1).sum())
    assert within_alpha(any_false), f"{any_false} of {N_SIMS} A/A/A sweeps claimed a winner"


def test_a_real_effect_is_rarely_called_equivalent() -> None:
    """A/B with P(A<B) = 0.565, just outside the margin [0.44, 0.56]: the hardest real effect
    to tell from equivalence."""
    plan = Plan(max_seeds=1000, seed_block=100)
    result = simulate(plan, normal_pair(0.565), N_SIMS, seed=3)
    equivalent = int((result.decision[:, 0] == "equivalent").sum())
    assert within_alpha(equivalent), f"{equivalent} of {N_SIMS} called a real effect equivalent"
    assert (result.decision[:, 0] == "b_better").sum() == 0  # never the wrong direction


def test_the_shipped_real_effect_is_rarely_called_equivalent(shipped) -> None:
    """A/B with the shipped 16-8-8 against 8-8-8 (P(A<B) = 0.62 in the 100 seeds)."""
    cells = {"A": shipped["16-8-8"], "B": shipped["8-8-8"]}
    result = simulate(MANY_LOOKS, cells, N_SIMS, seed=4)
    equivalent = int((result.decision[:, 0] == "equivalent").sum())
    assert within_alpha(equivalent)
    assert (result.decision[:, 0] == "a_better").mean() > 0.9


def test_a_large_effect_is_decided_early(shipped) -> None:
    """A/B with the shipped 16-8-8 against 8-16-8 (P(A<B) = 0.68): decided before max_seeds
    in almost every sweep, with a median of 125 seeds per cell (of 500)."""
    cells = {"A": shipped["16-8-8"], "B": shipped["8-16-8"]}
    result = simulate(MANY_LOOKS, cells, N_SIMS, seed=5)
    decided = result.look[:, 0] > 0
    assert decided.mean() >= 0.99
    assert (result.seeds[:, 0] < MANY_LOOKS.max_seeds).mean() >= 0.99
    assert (result.decision[:, 0] == "a_better").mean() >= 0.99
    assert np.median(result.seeds[:, 0]) == 125


def test_rank_effect_is_the_verdicts_estimate_and_interval() -> None:
    """The same P(A<B) and tests as the report's verdict (one core)."""
    rng = np.random.default_rng(8)
    a, b = rng.normal(size=(1, 40)), rng.normal(0.3, 1.0, size=(1, 55))
    a[0, :4] = np.inf  # diverged seeds
    look = classify_pairs({"a": a, "b": b}, [("a", "b")], alpha=0.05)
    flags = np.ones(40, bool), np.ones(55, bool)
    flags[0][:4] = False  # diverged seeds fail, so the verdict's pooled part is all seeds
    verdict = analysis.decide_pair(a[0], flags[0], b[0], flags[1], reliability=False)
    pooled = verdict.set_index("part").loc["pooled"]
    assert look.estimate[0, 0] == pytest.approx(pooled["estimate"])
    assert look.p_value[0, 0] == pytest.approx(pooled["p_value"])
    assert look.p_equivalence[0, 0] == pytest.approx(pooled["p_equivalence"])


def test_rounds_false_better_and_false_equivalent_share_one_budget() -> None:
    """One family per sweep: A and B identical (any 'better' is false), C exactly at the
    margin's edge from A and B (P(A<C) = 0.56: any 'equivalent' is false, and so is C
    'better'). The share of sweeps with any false claim stays within alpha."""
    rng = np.random.default_rng(11)
    shift = np.sqrt(2.0) * stats.norm.ppf(0.56)
    cells = {
        "A": rng.normal(size=20000),
        "B": rng.normal(size=20000),
        "C": rng.normal(loc=shift, size=20000),
    }
    plan = Plan(max_seeds=600, seed_block=100)
    result = simulate(plan, cells, N_SIMS, seed=4)
    # Pairs in order: (A, B), (A, C), (B, C).
    wrong = np.isin(result.decision[:, 0], WRONG_CLAIMS)
    wrong |= np.isin(result.decision[:, 1:], ["equivalent", "b_better"]).any(axis=1)
    assert within_alpha(int(wrong.sum())), f"{int(wrong.sum())} of {N_SIMS} sweeps claimed falsely"
