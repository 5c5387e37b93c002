"""The verdict: every number recomputed from runs.parquet with scipy, and the decision rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cell_settings, make_runs, run_cli_here
from scipy import stats

from nnsweep import schema, store
from nnsweep.report import wording
from nnsweep.stats import analysis, per_cell, robust

SETTINGS = {
    key: value
    for key, value in cell_settings(dataset="tutorial_ex2", log_every=250).items()
    if key != "layers"
}


def _runs(cells: dict[str, tuple[np.ndarray, np.ndarray]], **extra: object) -> pd.DataFrame:
    """A runs table: per cell, final errors (NaN = diverged) and solved flags."""
    return make_runs(
        [
            {
                **SETTINGS,
                **extra,
                "layers": layers,
                "job": job,
                "seed": seed,
                "final_error": error,
                "solved": bool(ok) and bool(np.isfinite(error)),
                "max_abs_error": 0.5,
                "first_below_threshold": 10 * seed,
                "n_weights": 100 + job,
            }
            for job, (layers, (errors, solved)) in enumerate(cells.items())
            for seed, (error, ok) in enumerate(zip(errors, solved, strict=True), start=1)
        ]
    )


def _two_part_cells(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Three cells whose seeds either solve (small error) or get stuck near 1/16."""
    cells = {}
    for layers, solve_rate, scale, n in (
        ("8-16-8", 0.9, 1.3, 60),
        ("8-8-8", 0.7, 1.0, 50),
        ("16-8-8", 0.85, 0.9, 55),
    ):
        solved = rng.random(n) < solve_rate
        errors = np.where(
            solved, rng.lognormal(np.log(0.001 * scale), 0.2, n), rng.normal(0.0635, 0.001, n)
        )
        if layers == "8-8-8":
            errors[-1] = np.nan  # one diverged seed
        cells[layers] = (errors, solved)
    return cells


def _curves(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row in runs.itertuples():
        for iteration, factor in ((0, 40.0), (250, 3.0), (500, 1.5), (750, 1.1), (1000, 1.0)):
            rows.append(
                {
                    "job": row.job,
                    "seed": row.seed,
                    "iteration": iteration,
                    "error": row.final_error * factor,
                }
            )
    return pd.DataFrame(rows)


def _write(sweep_dir: Path, runs: pd.DataFrame) -> None:
    sweep_dir.mkdir(parents=True)
    store.write_parquet(sweep_dir / schema.RUNS, runs)
    store.write_parquet(sweep_dir / schema.CURVES, _curves(runs))
    summary = store.summarise(runs)
    store.atomic_write(sweep_dir / schema.SUMMARY, lambda p: summary.to_csv(p, index=False))


def _rate_interval_by_root_finding(
    k_a: int, n_a: int, k_b: int, n_b: int, confidence: float
) -> tuple[float, float, float, float]:
    """Miettinen-Nurminen written out: restricted MLE by numerical maximisation, the score
    statistic, its p at 0, and the interval ends by root finding (scipy.optimize)."""
    from scipy import optimize

    def score(delta: float) -> float:
        def minus_loglik(p_b: float) -> float:
            p_a = p_b + delta
            eps = 1e-300
            return -(
                k_a * math.log(max(p_a, eps))
                + (n_a - k_a) * math.log(max(1 - p_a, eps))
                + k_b * math.log(max(p_b, eps))
                + (n_b - k_b) * math.log(max(1 - p_b, eps))
            )

        low, high = max(0.0, -delta), min(1.0, 1.0 - delta)
        p_b = optimize.minimize_scalar(
            minus_loglik, bounds=(low, high), method="bounded", options={"xatol": 1e-13}
        ).x
        p_a = p_b + delta
        n = n_a + n_b
        variance = (p_a * (1 - p_a) / n_a + p_b * (1 - p_b) / n_b) * n / (n - 1)
        return (k_a / n_a - k_b / n_b - delta) / math.sqrt(variance)

    z = stats.norm.isf((1 - confidence) / 2)
    estimate = k_a / n_a - k_b / n_b
    lower = optimize.brentq(lambda d: score(d) - z, -0.999999, estimate)
    upper = optimize.brentq(lambda d: score(d) + z, estimate, 0.999999)
    return estimate, 2 * stats.norm.sf(abs(score(0.0))), lower, upper


def _p_below(x: np.ndarray, y: np.ndarray) -> float:
    """P(X<Y) + P(X=Y)/2 by counting pairs."""
    return float(np.mean((x[:, None] < y[None, :]) + 0.5 * (x[:, None] == y[None, :])))


def _logit_interval_by_hand(
    x: np.ndarray, y: np.ndarray, confidence: float
) -> tuple[float, float, float, float]:
    """Brunner-Munzel on the logit scale, from pair counts: (estimate, p vs 0.5, low, high)."""
    n_x, n_y = len(x), len(y)
    below = (x[:, None] < y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    estimate = below.mean()
    place_x, place_y = below.mean(axis=1), below.mean(axis=0)
    var_x, var_y = place_x.var(ddof=1) / n_x, place_y.var(ddof=1) / n_y
    df = (var_x + var_y) ** 2 / (var_x**2 / (n_x - 1) + var_y**2 / (n_y - 1))
    # scipy's Brunner-Munzel statistic is (estimate - 0.5) over the same standard error.
    bm = stats.brunnermunzel(x, y)
    assert (estimate - 0.5) / math.sqrt(var_x + var_y) == pytest.approx(bm.statistic, rel=1e-9)
    edge = 1 / (min(n_x, n_y) + 1)  # separated samples: one observation from the edge
    shrunk = min(max(estimate, edge), 1 - edge)
    se = math.sqrt(max(var_x + var_y, 2 * shrunk * (1 - shrunk) / (n_x * n_y)))
    se_logit = se / (shrunk * (1 - shrunk))
    centre = math.log(shrunk / (1 - shrunk))
    p_value = 2 * stats.t.sf(abs(centre) / se_logit, df)
    half = stats.t.isf((1 - confidence) / 2, df) * se_logit
    expit = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    low, high = expit(centre - half), expit(centre + half)
    return estimate, p_value, min(low, estimate), max(high, estimate)


def test_every_number_of_the_verdict_tables_recomputes_from_runs_parquet(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    _write(sweep_dir, _runs(_two_part_cells(np.random.default_rng(3))))
    done = run_cli_here(["report", str(sweep_dir)])
    assert done.returncode == 0, done.stderr
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    cells = pd.read_csv(sweep_dir / "cell_stats.csv").set_index("cell")
    pairs = pd.read_csv(sweep_dir / "pairwise.csv")
    summary = pd.read_csv(sweep_dir / "summary.csv").set_index("layers")

    errors, solved = {}, {}
    for layers, group in runs.groupby("layers"):
        errors[layers] = group["final_error"].where(group["status"] == "ok", np.inf).to_numpy()
        solved[layers] = (group["solved"] & (group["status"] == "ok")).to_numpy()
        k, n = int(solved[layers].sum()), len(group)
        wilson = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
        row = cells.loc[layers]
        assert row["solve_rate"] == pytest.approx(k / n, rel=1e-12)
        assert row["solve_ci_low"] == pytest.approx(wilson.low, rel=1e-12)
        assert row["solve_ci_high"] == pytest.approx(wilson.high, rel=1e-12)
        assert row["median"] == pytest.approx(np.median(errors[layers]), rel=1e-12)
        # One definition of the median: summary.csv agrees with cell_stats.csv.
        assert summary.loc[layers, "median_final_error"] == pytest.approx(row["median"], rel=1e-12)
        order = np.sort(errors[layers])
        interval = stats.quantile_test(errors[layers], q=0).confidence_interval(0.95)
        assert (row["ci_low"], row["ci_high"]) == (interval.low, interval.high)
        assert row["ci_low"] in order and row["ci_high"] in order
        assert row["n_weights"] == group["n_weights"].iloc[0]

    assert set(pairs["part"]) == {"reliability", "quality", "pooled"}
    margin, rate_margin = (0.44, 0.56), 0.06
    for row in pairs.itertuples():
        a, b = row.a, row.b
        if row.part == "reliability":
            k_a, k_b = int(solved[a].sum()), int(solved[b].sum())
            n_a, n_b = len(solved[a]), len(solved[b])
            estimate, p_value, low, high = _rate_interval_by_root_finding(
                k_a, n_a, k_b, n_b, row.ci_level
            )
            assert row.estimate == pytest.approx(estimate, rel=1e-12)
            assert row.p_value == pytest.approx(p_value, rel=1e-6)
            assert (row.ci_low, row.ci_high) == (
                pytest.approx(low, abs=1e-6),
                pytest.approx(high, abs=1e-6),
            )
            continue
        x, y = errors[a], errors[b]
        if row.part == "quality":
            x, y = np.sort(x[solved[a]]), np.sort(y[solved[b]])
        assert (row.n_a, row.n_b) == (len(x), len(y))
        assert row.estimate == pytest.approx(_p_below(x, y), rel=1e-12)
        if row.part == "quality":
            # Lee trimming of the more reliable cell, to the other cell's solve rate.
            rate_a, rate_b = solved[a].mean(), solved[b].mean()
            if rate_a > rate_b:
                keep = round(len(solved[a]) * rate_b)
                versions = [(x[len(x) - keep :], y), (x[:keep], y)]
            else:
                keep = round(len(solved[b]) * rate_a)
                versions = [(x, y[:keep]), (x, y[len(y) - keep :])]
        else:
            versions = [(x, y)]
        by_hand = [_logit_interval_by_hand(u, v, row.ci_level) for u, v in versions]
        if row.part == "quality":
            assert row.bound_low == pytest.approx(min(e for e, *_ in by_hand), rel=1e-12)
            assert row.bound_high == pytest.approx(max(e for e, *_ in by_hand), rel=1e-12)
        same_side = len({np.sign(e - 0.5) for e, *_ in by_hand}) == 1
        p_value = max(p for _, p, _, _ in by_hand) if same_side else 1.0
        assert row.p_value == pytest.approx(p_value, rel=1e-9)
        assert row.ci_low == pytest.approx(min(low for *_, low, _ in by_hand), rel=1e-9)
        assert row.ci_high == pytest.approx(max(high for *_, high in by_hand), rel=1e-9)
        if np.isfinite(np.median(x)) and np.isfinite(np.median(y)):
            assert row.median_ratio == pytest.approx(np.median(x) / np.median(y), rel=1e-12)
            assert row.ratio_ci_low <= row.median_ratio <= row.ratio_ci_high

    # One Holm family over every difference and equivalence test: sort, multiply by
    # (m - rank), running maximum, cap.
    raw = np.concatenate([pairs["p_value"].to_numpy(), pairs["p_equivalence"].to_numpy()])
    order = np.argsort(raw)
    expected = np.minimum(1, np.maximum.accumulate((len(raw) - np.arange(len(raw))) * raw[order]))
    adjusted = np.concatenate([pairs["p_holm"], pairs["p_equivalence_holm"]])
    np.testing.assert_allclose(adjusted[order], expected, rtol=1e-12)
    assert (pairs["family_size"] == len(raw)).all()

    # The decision rule, each interval agreeing with it, and the a priori seeds range.
    level = 0.05 / len(raw)
    z = stats.norm.isf(level / 2) + stats.norm.ppf(0.8)
    for row in pairs.itertuples():
        centre = 0.0 if row.part == "reliability" else 0.5
        low_edge, high_edge = (-rate_margin, rate_margin) if centre == 0 else margin
        if row.p_equivalence_holm < 0.05:
            expected_decision = "equivalent"
            assert low_edge < row.ci_low and row.ci_high < high_edge
        elif row.p_holm < 0.05:
            expected_decision = "a_better" if row.estimate > centre else "b_better"
            assert not row.ci_low <= centre <= row.ci_high
        else:
            expected_decision = "undecided"
            assert row.ci_low <= centre <= row.ci_high
        assert row.decision == expected_decision, row
        if expected_decision != "undecided":
            assert np.isnan(row.seeds_needed)
            continue
        rate_a, rate_b = solved[row.a].mean(), solved[row.b].mean()
        if row.part == "reliability":
            base = (rate_a + rate_b) / 2
            ends = []
            for effect in (rate_margin, 2 * rate_margin):
                p1, p2 = base + effect / 2, base - effect / 2
                ends.append(math.ceil(z**2 * (p1 * (1 - p1) + p2 * (1 - p2)) / effect**2))
            n_now = max(len(solved[row.a]), len(solved[row.b]))
        else:
            ends = [math.ceil(z**2 / (6 * d**2)) for d in (0.06, 0.14)]  # Noether
            n_now = max(len(solved[row.a]), len(solved[row.b]))
            if row.part == "quality":
                ends = [math.ceil(e / min(rate_a, rate_b)) for e in ends]
        ends = [max(e, n_now + 1) for e in ends]
        assert (row.seeds_needed, row.seeds_needed_high) == (min(ends), max(ends))

    markdown = (sweep_dir / "report.md").read_text()
    assert "Reliability (solve rate)" in markdown and "One Holm family" in markdown
    assert "Noether" in markdown and "Brunner-Munzel" in markdown
    assert "Miettinen-Nurminen" in markdown and "Lee (2009)" in markdown


def test_identical_large_cells_are_practically_equivalent() -> None:
    rng = np.random.default_rng(11)
    errors = rng.lognormal(np.log(0.001), 0.3, 2000)
    solved = rng.random(2000) < 0.9
    errors[~solved] = 0.0635
    runs = _runs({"8-16-8": (errors, solved), "16-8-8": (errors.copy(), solved.copy())})
    cells = per_cell.cell_statistics(runs)
    pairs = wording.with_sentences(analysis.compare_pairs(runs, cells))
    assert set(pairs["part"]) == {"reliability", "quality", "pooled"}
    assert (pairs["decision"] == "equivalent").all(), pairs[["part", "ci_low", "ci_high"]]
    assert "practically equivalent" in " ".join(pairs["sentence"])
    # The same rule can tell a real difference: shift one cell's errors down by a third.
    better = _runs({"8-16-8": (errors * 0.67, solved), "16-8-8": (errors, solved)})
    decided = analysis.compare_pairs(better, per_cell.cell_statistics(better))
    assert decided.set_index("part").loc["quality", "decision"] == "a_better"


def test_small_identical_cells_are_undecided_with_a_seeds_estimate() -> None:
    rng = np.random.default_rng(5)
    errors = rng.lognormal(np.log(0.001), 0.3, 12)
    runs = _runs({"8-16-8": (errors, np.ones(12, bool)), "16-8-8": (errors, np.ones(12, bool))})
    pairs = wording.with_sentences(analysis.compare_pairs(runs, per_cell.cell_statistics(runs)))
    quality = pairs.set_index("part").loc["quality"]
    assert quality["decision"] == "undecided"
    assert quality["seeds_needed"] > 12
    assert "undecided" in quality["sentence"] and "seeds per cell" in quality["sentence"]
    # Nobody failed: reliability and pooled are left out, each with its reason.
    left_out = pairs[pairs["decision"] == "not_applicable"].set_index("part")["reason"]
    assert left_out.to_dict() == {"reliability": "no_failure", "pooled": "all_succeeded"}
    words = {r.part: r.sentence for r in pairs.itertuples() if r.decision == "not_applicable"}
    assert "no seed failed in either cell" in words["reliability"]
    assert "every seed succeeded: pooled = quality" in words["pooled"]


def test_decide_pair_takes_alpha_as_a_parameter() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 0.1, 40), rng.normal(1.1, 0.1, 40)
    flags = np.ones(40, bool)
    usual = analysis.decide_pair(a, flags, b, flags, alpha=0.05).set_index("part")
    strict = analysis.decide_pair(a, flags, b, flags, alpha=1e-12).set_index("part")
    assert usual.loc["quality", "decision"] == "a_better"
    assert strict.loc["quality", "decision"] == "undecided"
    samples = {"a": (a, flags), "b": (b, flags), "c": (b + 1, flags)}
    table = analysis.pair_decisions(samples, 0.05, (0.4, 0.6), reliability=False)
    # 3 pairs, quality only (pooled = quality), a difference and an equivalence test each.
    assert (table["family_size"] == 6).all()


def test_noisy_data_has_no_solved_and_compares_seeds_that_did_not_diverge(
    tmp_path: Path,
) -> None:
    rng = np.random.default_rng(9)
    cells = {
        "4": (rng.normal(0.15, 0.01, 30), np.zeros(30, bool)),
        "8": (rng.normal(0.12, 0.01, 30), np.zeros(30, bool)),
    }
    runs = _runs(cells, dataset="moons(n=200, noise=0.2, seed=0) holdout=0.25", solvable=False)
    runs["accuracy"] = 0.9
    runs["holdout_accuracy"] = 0.85
    runs["holdout_error"] = runs["final_error"] * 1.1
    sweep_dir = tmp_path / "moons"
    _write(sweep_dir, runs)
    done = run_cli_here(["report", str(sweep_dir)])
    assert done.returncode == 0, done.stderr
    pairs = pd.read_csv(sweep_dir / "pairwise.csv").set_index("part")
    assert pairs.loc["reliability", "decision"] == "not_applicable"
    assert pairs.loc["quality", "decision"] == "a_better"  # "8" ends lower than "4"
    assert pd.read_csv(sweep_dir / "cell_stats.csv")["solved_fraction"].isna().all()
    holdout = pd.read_csv(sweep_dir / "pairwise_holdout.csv")
    assert "reliability" not in set(holdout["part"])
    # Training and held-out tests are one Holm family (difference and equivalence each).
    assert pairs["family_size"].iloc[0] == holdout["family_size"].iloc[0] == 4
    markdown = (sweep_dir / "report.md").read_text()
    assert "The data is noisy" in markdown and "median held-out accuracy" in markdown
    assert "solved CI low" not in markdown  # the cells table has no solve rate here


def test_median_interval_does_not_collapse_when_the_iqr_is_wide() -> None:
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(0.07, 0.002, 12), rng.normal(0.178, 0.0002, 18)])
    low, high = per_cell.median_ci(values)
    q1, q3 = np.quantile(values, [0.25, 0.75])
    assert low < np.median(values) < high or low <= np.median(values) <= high
    assert high - low > 0
    # A cluster holding more than half the seeds pins the median: the note says so.
    pinned = np.concatenate([rng.normal(0.07, 0.002, 9), np.full(21, 0.17799)])
    low, high = per_cell.median_ci(pinned)
    q1, q3 = np.quantile(pinned, [0.25, 0.75])
    assert "pinned" in per_cell._ci_note(pinned, low, high, q1, q3)


def test_seed1_swapping_an_undecided_pair_is_not_called_a_different_order() -> None:
    rng = np.random.default_rng(8)
    same = rng.lognormal(np.log(0.001), 0.3, 20)
    a_errors, b_errors = same * 0.9, same.copy()  # A ends a little lower
    a_errors[0], b_errors[0] = same.max(), same.min()  # but seed 1 puts B first
    flags = np.ones(20, bool)
    runs = _runs({"8-16-8": (a_errors, flags), "16-8-8": (b_errors, flags)})
    cells = per_cell.cell_statistics(runs)
    pairs = analysis.compare_pairs(runs, cells)
    note = wording.seed1_note(cells, pairs)
    assert list(cells["cell"]) == ["8-16-8", "16-8-8"]
    assert pairs.set_index("part").loc["quality", "decision"] == "undecided"
    assert "no different answer" in note and "contradict" not in note


def test_robustness_says_from_which_iteration_the_verdict_holds() -> None:
    rng = np.random.default_rng(6)
    flags = np.ones(40, bool)
    runs = _runs({"8": (rng.normal(1.0, 0.05, 40), flags), "4": (rng.normal(1.5, 0.05, 40), flags)})
    curves = _curves(runs)
    table, stability = robust.robustness(runs, curves)
    sentence = wording.robustness_sentence(stability)
    assert "stable from iteration 250 on" in sentence
    assert set(table["fraction"]) == {0.25, 0.5, 0.75, 1.0}
    # Reverse the order at 75% of the iterations: the verdict now holds only at the end.
    flipped = curves.copy()
    late = flipped["iteration"] == 750
    flipped.loc[late, "error"] = np.where(flipped.loc[late, "job"] == 0, 9.0, 1.0)
    sentence = wording.robustness_sentence(robust.robustness(runs, flipped)[1])
    assert "changes between 75% of the iterations and the end" in sentence


def test_truth_tables_are_solvable_and_noisy_data_is_not() -> None:
    from types import SimpleNamespace

    from nnsweep.sweep.job import solvable
    from nnsweep.train.data import two_moons

    table = SimpleNamespace(inputs=np.array([[0.0, 1.0], [1.0, 0.0]]), targets=np.eye(2))
    clash = SimpleNamespace(inputs=np.array([[0.0, 1.0], [0.0, 1.0]]), targets=np.eye(2))
    inputs, targets = two_moons(40, 0.2, 0)
    assert solvable(table)
    assert not solvable(clash)  # one input row, two targets: no network fits both
    assert not solvable(SimpleNamespace(inputs=inputs, targets=targets))


@pytest.mark.parametrize(
    ("fraction", "printed"),
    [(0.0042, "+0.4"), (-0.0042, "-0.4"), (0.0, "+0"), (0.17, "+17"), (-0.3349, "-33")],
)
def test_a_rate_bound_just_off_zero_is_not_printed_as_zero(fraction: float, printed: str) -> None:
    # The shipped verdict read "+17 points [+0, +33]" for a decided difference whose bound is
    # +0.42 points: a reader takes "+0" for an interval that touches zero.
    assert wording._points(fraction) == printed
