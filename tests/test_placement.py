"""The placement statistics, checked against direct scipy/numpy computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import cell_settings
from scipy import stats

from nnsweep.stats import placement
from nnsweep.train import shapes

FAMILY = shapes.budget_shapes(shapes.parse_budget("budget(total=32, depth=3, step=4)"))


def synthetic(effect: float, n_seeds: int = 30, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs and curves of the 21-shape family: log error = effect * front-loading + noise.

    The curves hold the final error at 100% and, before that, errors whose trend with
    front-loading is reversed (so the trend over training changes sign).
    """
    rng = np.random.default_rng(seed)
    runs, curves = [], []
    for job, shape in enumerate(FAMILY):
        columns = shapes.shape_columns(shape, 4, 2)
        for s in range(1, n_seeds + 1):
            final = float(
                np.exp(np.log(0.002) + effect * columns["front_loading"] + rng.normal(0, 0.4))
            )
            early = float(
                np.exp(np.log(0.05) - effect * columns["front_loading"] + rng.normal(0, 0.4))
            )
            runs.append(
                {
                    **cell_settings(dataset="synthetic", layers=shapes.layers_text(shape)),
                    **columns,
                    "job": job,
                    "seed": s,
                    "status": "ok",
                    "final_error": final,
                    "solved": bool(rng.random() < 0.8),
                    "diverged": False,
                    "first_below_threshold": 100,
                }
            )
            for iteration in range(0, 1000, 100):
                error = early if iteration < 500 else final
                curves.append({"job": job, "seed": s, "iteration": iteration, "error": error})
            curves.append({"job": job, "seed": s, "iteration": 999, "error": final})
    return pd.DataFrame(runs), pd.DataFrame(curves)


def test_rho_is_scipys_spearman_of_the_cell_medians() -> None:
    runs, _ = synthetic(effect=1.5)
    trends = placement.placement_trends(runs)
    assert len(trends) == 1
    row = trends.iloc[0]
    by_cell = runs.groupby("layers")
    medians = by_cell["final_error"].median()
    front = by_cell["front_loading"].first()
    direct = stats.spearmanr(medians, front.loc[medians.index])
    assert row["rho"] == pytest.approx(direct.statistic, abs=1e-12)
    assert row["rho_p"] == pytest.approx(direct.pvalue, rel=1e-9)
    assert row["rho_ci_low"] <= row["rho"] <= row["rho_ci_high"]
    assert row["effect"] == "hurts"  # error grows with front-loading
    assert row["n_shapes"] == 21 and row["n_seeds"] == 21 * 30


def test_bootstrap_rows_agree_with_scipy() -> None:
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(50, 9))
    front = rng.normal(size=9)
    ours = placement._spearman_rows(draws, front)
    direct = [stats.spearmanr(row, front).statistic for row in draws]
    np.testing.assert_allclose(ours, direct, rtol=1e-12)


def test_regression_is_least_squares_on_log_error() -> None:
    runs, _ = synthetic(effect=1.5)
    row = placement.placement_trends(runs).iloc[0]
    y = np.log(runs["final_error"])
    # Without the covariate: scipy's simple regression.
    assert row["slope_unadjusted"] == pytest.approx(
        stats.linregress(runs["front_loading"], y).slope, rel=1e-9
    )
    # With log(weights) as covariate: numpy's least squares on the same design.
    design = np.column_stack(
        [np.ones(len(y)), runs["front_loading"], np.log(runs["weights_no_bias"])]
    )
    assert row["slope"] == pytest.approx(np.linalg.lstsq(design, y, rcond=None)[0][1], rel=1e-9)
    assert row["slope_ci_low"] < 1.5 < row["slope_ci_high"]
    assert row["front_range"] == pytest.approx(0.8125 - 0.1875)


def test_no_effect_is_no_detectable_difference_and_accuracy_reads_the_other_way() -> None:
    runs, _ = synthetic(effect=0.0, seed=5)
    row = placement.placement_trends(runs).iloc[0]
    assert row["rho_ci_low"] < 0 < row["rho_ci_high"]
    assert row["effect"] == "makes no detectable difference"
    accuracy = placement.METRICS["accuracy"]
    assert placement.direction(0.2, 0.6, accuracy) == "helps"
    assert placement.direction(0.2, 0.6, placement.METRICS["final_error"]) == "hurts"
    assert placement.direction(-0.6, -0.2, accuracy) == "hurts"


def test_trend_over_training_is_scipys_spearman_at_each_point() -> None:
    runs, curves = synthetic(effect=1.5)
    over = placement.trend_over_training(runs, curves)
    assert over["iteration"].tolist() == [100, 200, 500, 999]
    labelled = curves.merge(runs[["job", "seed", "layers", "front_loading"]], on=["job", "seed"])
    for row in over.itertuples():
        at = labelled[labelled["iteration"] == row.iteration].groupby("layers")
        direct = stats.spearmanr(at["error"].median(), at["front_loading"].first())
        assert row.rho == pytest.approx(direct.statistic, abs=1e-12)
    assert over["effect"].tolist() == ["helps", "helps", "hurts", "hurts"]
    assert placement.holds_from(over) == ("hurts", 500)
    sentence = placement.budget_sentence(placement.placement_trends(runs).iloc[0], over)
    assert sentence.startswith(
        "At a fixed budget of 32 neurons in 3 layers on synthetic, front-loading hurts the "
        "median final error"
    )
    assert "from iteration 500 on" in sentence
    assert "21 shapes x 30 seeds" in sentence


def test_verdict_names_each_budget_and_where_it_depends() -> None:
    hurt, curves = synthetic(effect=1.5)
    flat, _ = synthetic(effect=0.0, seed=5)
    flat = flat.assign(dataset="other", job=flat["job"] + 100)
    runs = pd.concat([hurt, flat], ignore_index=True)
    paragraphs, trends, _ = placement.placement_verdict(runs, curves)
    assert len(trends) == 2
    assert paragraphs[0].startswith("It depends on the task and the budget")
    assert "hurts on synthetic at 32 neurons" in paragraphs[0]
    assert "makes no detectable difference on other at 32 neurons" in paragraphs[0]
    assert placement.placement_verdict(runs.drop(columns="front_loading"), curves)[0] == []


def test_the_summary_names_a_reliability_effect_the_median_does_not_show() -> None:
    trends = pd.DataFrame(
        {
            "dataset": ["tutorial_ex2", "tutorial_ex2"],
            "total_neurons": [32, 24],
            "metric": ["final_error", "final_error"],
            "effect": ["hurts", "makes no detectable difference"],
            "solve_ci_low": [-0.2, 0.44],
            "solve_ci_high": [0.3, 0.85],
        }
    )
    sentence = placement.summary_sentence(trends)
    assert "makes no detectable difference on tutorial_ex2 at 24 neurons" in sentence
    assert sentence.endswith(
        "On how often seeds solve the task, front-loading helps on tutorial_ex2 at 24 neurons."
    )
