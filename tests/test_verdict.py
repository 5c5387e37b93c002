"""The verdict: every number recomputed from runs.parquet with scipy, and the decision rule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import cell_settings, run_cli
from scipy import stats

from nnsweep import schema, store
from nnsweep.stats import analysis

SETTINGS = {
    key: value
    for key, value in cell_settings(dataset="tutorial_ex2", log_every=250).items()
    if key != "layers"
}


def _runs(cells: dict[str, tuple[np.ndarray, np.ndarray]], **extra: object) -> pd.DataFrame:
    """A runs table: per cell, final errors (NaN = diverged) and solved flags."""
    rows = []
    for job, (layers, (errors, solved)) in enumerate(cells.items()):
        for seed, (error, ok) in enumerate(zip(errors, solved, strict=True), start=1):
            diverged = not np.isfinite(error)
            rows.append(
                {
                    **SETTINGS,
                    **extra,
                    "layers": layers,
                    "job": job,
                    "seed": seed,
                    "status": "diverged" if diverged else "ok",
                    "reason": "",
                    "final_error": error,
                    "diverged": diverged,
                    "solved": bool(ok) and not diverged,
                    "max_abs_error": 0.5,
                    "iterations_reached": 1000,
                    "first_below_threshold": 10 * seed,
                    "wall_seconds": 0.0,
                    "n_weights": 100 + job,
                    "end_change": 0.0,
                    "unstable": False,
                }
            )
    return pd.DataFrame(rows)


def _two_part_cells(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Three cells whose seeds either solve (small error) or get stuck near 1/16."""
    cells = {}
    for layers, solve_rate, scale, n in (("8-16-8", 0.9, 1.3, 60), ("8-8-8", 0.7, 1.0, 50),
                                         ("16-8-8", 0.85, 0.9, 55)):  # fmt: skip
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
                {"job": row.job, "seed": row.seed, "iteration": iteration,
                 "error": row.final_error * factor}
            )  # fmt: skip
    return pd.DataFrame(rows)


def _write(sweep_dir: Path, runs: pd.DataFrame) -> None:
    sweep_dir.mkdir(parents=True)
    store.write_parquet(sweep_dir / schema.RUNS, runs)
    store.write_parquet(sweep_dir / schema.CURVES, _curves(runs))
    summary = store.summarise(runs)
    store.atomic_write(sweep_dir / schema.SUMMARY, lambda p: summary.to_csv(p, index=False))


def _newcombe(k_a: int, n_a: int, k_b: int, n_b: int) -> tuple[float, float]:
    """Newcombe (1998) method 10, written out from the two Wilson intervals."""
    z = stats.norm.ppf(0.975)

    def wilson(k: int, n: int) -> tuple[float, float]:
        p = k / n
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return centre - half, centre + half

    (l1, u1), (l2, u2) = wilson(k_a, n_a), wilson(k_b, n_b)
    p1, p2 = k_a / n_a, k_b / n_b
    return (
        p1 - p2 - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2),
        p1 - p2 + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2),
    )


def _brunner_munzel_by_hand(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """P(X<Y) + P(X=Y)/2 by counting pairs, and its t interval from placement variances."""
    n_x, n_y = len(x), len(y)
    below = np.array([[(a < b) + 0.5 * (a == b) for b in y] for a in x])
    estimate = below.mean()
    # Placements: how much of y lies above each x, and how much of x lies below each y.
    place_x, place_y = below.mean(axis=1), below.mean(axis=0)
    var_x, var_y = place_x.var(ddof=1), place_y.var(ddof=1)
    se = math.sqrt(var_x / n_x + var_y / n_y)
    df = (var_x / n_x + var_y / n_y) ** 2 / (
        (var_x / n_x) ** 2 / (n_x - 1) + (var_y / n_y) ** 2 / (n_y - 1)
    )
    half = stats.t.ppf(0.975, df) * se
    return estimate, max(0.0, estimate - half), min(1.0, estimate + half)


def test_every_number_of_the_verdict_tables_recomputes_from_runs_parquet(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    _write(sweep_dir, _runs(_two_part_cells(np.random.default_rng(3))))
    done = run_cli(["report", str(sweep_dir)])
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
    for row in pairs.itertuples():
        a, b = row.a, row.b
        if row.part == "reliability":
            k_a, k_b = int(solved[a].sum()), int(solved[b].sum())
            n_a, n_b = len(solved[a]), len(solved[b])
            assert row.estimate == pytest.approx(k_a / n_a - k_b / n_b, rel=1e-12)
            low, high = _newcombe(k_a, n_a, k_b, n_b)
            assert (row.ci_low, row.ci_high) == (pytest.approx(low), pytest.approx(high))
            fisher = stats.fisher_exact([[k_a, n_a - k_a], [k_b, n_b - k_b]])
            assert row.p_value == pytest.approx(fisher.pvalue, rel=1e-12)
            continue
        x = errors[a][solved[a]] if row.part == "quality" else errors[a]
        y = errors[b][solved[b]] if row.part == "quality" else errors[b]
        assert (row.n_a, row.n_b) == (len(x), len(y))
        estimate, low, high = _brunner_munzel_by_hand(x, y)
        assert row.estimate == pytest.approx(estimate, rel=1e-12)
        assert row.ci_low == pytest.approx(low, rel=1e-9)
        assert row.ci_high == pytest.approx(high, rel=1e-9)
        assert row.p_value == pytest.approx(stats.brunnermunzel(x, y).pvalue, rel=1e-12)
        if np.isfinite(np.median(x)) and np.isfinite(np.median(y)):
            assert row.median_ratio == pytest.approx(np.median(x) / np.median(y), rel=1e-12)
            assert row.ratio_ci_low <= row.median_ratio <= row.ratio_ci_high

    # One Holm family over every test: sort, multiply by (m - rank), running maximum, cap.
    raw = pairs["p_value"].to_numpy()
    order = np.argsort(raw)
    expected = np.minimum(1, np.maximum.accumulate((len(raw) - np.arange(len(raw))) * raw[order]))
    np.testing.assert_allclose(pairs["p_holm"].to_numpy()[order], expected, rtol=1e-12)
    assert (pairs["family_size"] == len(raw)).all()

    # The decision rule, and the seeds-needed estimate within its stated method.
    z = stats.norm.ppf(1 - 0.05 / len(raw) / 2) + stats.norm.ppf(0.8)
    for row in pairs.itertuples():
        centre, half = (0.0, 0.06) if row.part == "reliability" else (0.5, 0.06)
        if centre - half < row.ci_low and row.ci_high < centre + half:
            expected_decision = "equivalent"
        elif row.p_holm < 0.05:
            expected_decision = "a_better" if row.estimate > centre else "b_better"
        else:
            expected_decision = "undecided"
        assert row.decision == expected_decision, row
        if expected_decision != "undecided":
            assert np.isnan(row.seeds_needed)
            continue
        rate_a, rate_b = solved[row.a].mean(), solved[row.b].mean()
        if row.part == "reliability":
            distance = abs(row.estimate)
            distance = half - distance if distance < half else distance
            n = z**2 * (rate_a * (1 - rate_a) + rate_b * (1 - rate_b)) / distance**2
        else:
            distance = abs(row.estimate - 0.5)
            distance = half - distance if distance < half else distance
            n = z**2 / (6 * distance**2)  # Noether, equal cells
            if row.part == "quality":
                n /= min(rate_a, rate_b)
        assert row.seeds_needed == math.ceil(n)

    markdown = (sweep_dir / "report.md").read_text()
    assert "Reliability (solve rate)" in markdown and "One Holm family" in markdown
    assert "Noether" in markdown and "Brunner-Munzel" in markdown


def test_identical_large_cells_are_practically_equivalent() -> None:
    rng = np.random.default_rng(11)
    errors = rng.lognormal(np.log(0.001), 0.3, 2000)
    solved = rng.random(2000) < 0.9
    errors[~solved] = 0.0635
    runs = _runs({"8-16-8": (errors, solved), "16-8-8": (errors.copy(), solved.copy())})
    cells = analysis.cell_statistics(runs)
    pairs = analysis.compare_pairs(runs, cells)
    assert set(pairs["part"]) == {"reliability", "quality", "pooled"}
    assert (pairs["decision"] == "equivalent").all(), pairs[["part", "ci_low", "ci_high"]]
    assert "practically equivalent" in " ".join(pairs["sentence"])
    # The same rule can tell a real difference: shift one cell's errors down by a third.
    better = _runs({"8-16-8": (errors * 0.67, solved), "16-8-8": (errors, solved)})
    decided = analysis.compare_pairs(better, analysis.cell_statistics(better))
    assert decided.set_index("part").loc["quality", "decision"] == "a_better"


def test_small_identical_cells_are_undecided_with_a_seeds_estimate() -> None:
    rng = np.random.default_rng(5)
    errors = rng.lognormal(np.log(0.001), 0.3, 12)
    runs = _runs({"8-16-8": (errors, np.ones(12, bool)), "16-8-8": (errors, np.ones(12, bool))})
    pairs = analysis.compare_pairs(runs, analysis.cell_statistics(runs))
    quality = pairs.set_index("part").loc["quality"]
    assert quality["decision"] == "undecided"
    assert quality["seeds_needed"] > 12
    assert "undecided" in quality["sentence"] and "seeds per cell" in quality["sentence"]
    # Nobody failed: reliability and pooled are left out, each with its reason.
    left_out = pairs[pairs["decision"] == "not_applicable"].set_index("part")["reason"]
    assert left_out.to_dict() == {
        "reliability": "no seed failed in either cell",
        "pooled": "every seed succeeded: pooled = quality",
    }


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
    assert (table["family_size"] == 3).all()  # 3 pairs, quality only (pooled = quality)


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
    done = run_cli(["report", str(sweep_dir)])
    assert done.returncode == 0, done.stderr
    pairs = pd.read_csv(sweep_dir / "pairwise.csv").set_index("part")
    assert pairs.loc["reliability", "decision"] == "not_applicable"
    assert pairs.loc["quality", "decision"] == "a_better"  # "8" ends lower than "4"
    assert pd.read_csv(sweep_dir / "cell_stats.csv")["solved_fraction"].isna().all()
    holdout = pd.read_csv(sweep_dir / "pairwise_holdout.csv")
    assert "reliability" not in set(holdout["part"])
    # Training and held-out tests are one Holm family.
    assert pairs["family_size"].iloc[0] == holdout["family_size"].iloc[0] == 2
    markdown = (sweep_dir / "report.md").read_text()
    assert "The data is noisy" in markdown and "median held-out accuracy" in markdown
    assert "solved CI low" not in markdown  # the cells table has no solve rate here


def test_median_interval_does_not_collapse_when_the_iqr_is_wide() -> None:
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(0.07, 0.002, 12), rng.normal(0.178, 0.0002, 18)])
    low, high = analysis.median_ci(values)
    q1, q3 = np.quantile(values, [0.25, 0.75])
    assert low < np.median(values) < high or low <= np.median(values) <= high
    assert high - low > 0
    # A cluster holding more than half the seeds pins the median: the note says so.
    pinned = np.concatenate([rng.normal(0.07, 0.002, 9), np.full(21, 0.17799)])
    low, high = analysis.median_ci(pinned)
    q1, q3 = np.quantile(pinned, [0.25, 0.75])
    assert "pinned" in analysis._ci_note(pinned, low, high, q1, q3)


def test_seed1_swapping_an_undecided_pair_is_not_called_a_different_order() -> None:
    rng = np.random.default_rng(8)
    same = rng.lognormal(np.log(0.001), 0.3, 20)
    a_errors, b_errors = same * 0.9, same.copy()  # A ends a little lower
    a_errors[0], b_errors[0] = same.max(), same.min()  # but seed 1 puts B first
    flags = np.ones(20, bool)
    runs = _runs({"8-16-8": (a_errors, flags), "16-8-8": (b_errors, flags)})
    cells = analysis.cell_statistics(runs)
    pairs = analysis.compare_pairs(runs, cells)
    note = analysis.seed1_note(cells, pairs)
    assert list(cells["cell"]) == ["8-16-8", "16-8-8"]
    assert pairs.set_index("part").loc["quality", "decision"] == "undecided"
    assert "no different answer" in note and "contradict" not in note


def test_robustness_says_from_which_iteration_the_verdict_holds() -> None:
    rng = np.random.default_rng(6)
    flags = np.ones(40, bool)
    runs = _runs({"8": (rng.normal(1.0, 0.05, 40), flags), "4": (rng.normal(1.5, 0.05, 40), flags)})
    curves = _curves(runs)
    table, sentence = analysis.robustness(runs, curves)
    assert "stable from iteration 250 on" in sentence
    assert set(table["fraction"]) == {0.25, 0.5, 0.75, 1.0}
    # Reverse the order at 75% of the iterations: the verdict now holds only at the end.
    flipped = curves.copy()
    late = flipped["iteration"] == 750
    flipped.loc[late, "error"] = np.where(flipped.loc[late, "job"] == 0, 9.0, 1.0)
    _, sentence = analysis.robustness(runs, flipped)
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
