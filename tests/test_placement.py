"""The placement statistics: a synthetic two-part table whose descriptor effects are known,
the fits against direct scipy/numpy computations, and cell identity from the settings."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from conftest import cell_settings
from scipy import optimize, special, stats

from nnsweep import config, schema
from nnsweep.report import placement_words
from nnsweep.stats import core, placement
from nnsweep.stats.placement import Direction
from nnsweep.train import shapes

FAMILY = shapes.budget_shapes(shapes.parse_budget("budget(total=32, depth=3, step=4)"))

SOLVE_SLOPE = 1.5  # log odds of solving per unit log(middle width)
QUALITY_SLOPE = -0.5  # log error of the solved per unit log(last width)


def two_part(
    n_seeds: int = 60,
    seed: int = 3,
    solve_slope: float = SOLVE_SLOPE,
    quality_slope: float = QUALITY_SLOPE,
    dataset: str = "synthetic",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs and curves of the 21-shape family with known parts: a seed solves with
    logit(p) = 0.8 + solve_slope * (log w2 - mean); a solved seed's log error is
    log(0.002) + quality_slope * (log w3 - mean) + N(0, 0.3); a stuck seed ends near 0.1.
    Front-loading has no effect of its own. The curves hold the final error at the end and,
    earlier, an error whose trend with front-loading is reversed."""
    rng = np.random.default_rng(seed)
    widths = np.log(np.array(FAMILY, dtype=float))
    mean_w2, mean_w3 = widths[:, 1].mean(), widths[:, 2].mean()
    runs, curves = [], []
    for job, shape in enumerate(FAMILY):
        columns = shapes.shape_columns(shape, 4, 2)
        log_w2, log_w3 = np.log(shape[1]), np.log(shape[2])
        p_solve = special.expit(0.8 + solve_slope * (log_w2 - mean_w2))
        for s in range(1, n_seeds + 1):
            solved = bool(rng.random() < p_solve)
            if solved:
                log_error = np.log(0.002) + quality_slope * (log_w3 - mean_w3)
                final = float(np.exp(log_error + rng.normal(0, 0.3)))
            else:
                final = float(np.exp(np.log(0.1) + rng.normal(0, 0.1)))
            early = float(np.exp(np.log(0.05) - 1.5 * columns["front_loading"]))
            runs.append(
                {
                    **cell_settings(dataset=dataset, layers=shapes.layers_text(shape)),
                    **columns,
                    "job": job,
                    "seed": s,
                    "status": "ok",
                    "final_error": final,
                    "solved": solved,
                    "diverged": False,
                    "first_below_threshold": 100 if solved else -1,
                }
            )
            for iteration in range(0, 1000, 100):
                error = early if iteration < 500 else final
                curves.append({"job": job, "seed": s, "iteration": iteration, "error": error})
            curves.append({"job": job, "seed": s, "iteration": 999, "error": final})
    return pd.DataFrame(runs), pd.DataFrame(curves)


def synthetic(effect: float, n_seeds: int = 30, seed: int = 3) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A table whose log error rises with front-loading by ``effect`` per unit (80% of seeds
    solve, whatever the shape); its curves hold the reversed trend before iteration 500."""
    rng = np.random.default_rng(seed)
    runs, curves = [], []
    for job, shape in enumerate(FAMILY):
        columns = shapes.shape_columns(shape, 4, 2)
        for s in range(1, n_seeds + 1):
            noise = rng.normal(0, 0.4)
            final = float(np.exp(np.log(0.002) + effect * columns["front_loading"] + noise))
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
            early = float(np.exp(np.log(0.05) - effect * columns["front_loading"] + noise))
            for iteration in range(0, 1000, 100):
                error = early if iteration < 500 else final
                curves.append({"job": job, "seed": s, "iteration": iteration, "error": error})
            curves.append({"job": job, "seed": s, "iteration": 999, "error": final})
    return pd.DataFrame(runs), pd.DataFrame(curves)


@pytest.fixture(scope="module")
def known() -> placement.BudgetResult:
    runs, curves = two_part(n_seeds=100)
    (result,) = placement.analyse(runs)
    return placement.over_training(result, runs, curves)


def test_the_model_recovers_known_descriptor_effects(known: placement.BudgetResult) -> None:
    solve, quality = known.parts
    assert (solve.part, quality.part) == ("solve", "quality")
    # What matters is found, and stably so.
    assert solve.best == "log_w2" and quality.best == "log_w3"
    assert quality.best_stability > 0.95
    # The known slopes lie inside the shape-level intervals, and the estimates near them.
    for part, slope in ((solve, SOLVE_SLOPE), (quality, QUALITY_SLOPE)):
        effect = part.best_effect
        assert effect.low < slope * effect.span < effect.high
        assert effect.estimate / effect.span == pytest.approx(slope, abs=0.35 * abs(slope))
    assert solve.best_effect.direction is Direction.HELPS  # wider middle: solves more
    assert quality.best_effect.direction is Direction.HELPS  # wider last: lower error
    # Front-loading alone stands in for the last width (front = 0.5 + (w1 - w3) / 64), so
    # it "hurts" the error; beside the last width its effect is undecided.
    assert quality.front_alone.direction is Direction.HURTS
    assert quality.front_adjusted.direction is Direction.UNDECIDED
    assert quality.front_adjusted.low < 0 < quality.front_adjusted.high


def test_shape_level_intervals_are_wider_than_seed_only_ones(known) -> None:
    quality = known.parts[1]
    effect = quality.front_alone
    assert effect.high - effect.low > effect.seed_high - effect.seed_low


def test_logistic_fit_is_the_maximum_of_firths_penalised_likelihood() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=12)
    trials = np.full(12, 40.0)
    successes = rng.binomial(40, special.expit(0.3 + 0.9 * x)).astype(float)
    design = placement._design([x[None, :]])
    ours = placement.logistic_fit(design, successes[None], trials[None])[0]

    def negative(beta: np.ndarray) -> float:
        eta = design[0] @ beta
        prob = special.expit(eta)
        loglik = np.sum(successes * eta - trials * np.log1p(np.exp(eta)))
        info = design[0].T @ (design[0] * (trials * prob * (1 - prob))[:, None])
        return -(loglik + 0.5 * np.linalg.slogdet(info)[1])

    direct = optimize.minimize(negative, np.zeros(2), method="BFGS", options={"gtol": 1e-10}).x
    np.testing.assert_allclose(ours, direct, atol=1e-5)


def test_logistic_fit_stays_finite_under_separation() -> None:
    x = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    successes = np.array([3.0, 5.0, 50.0, 50.0, 50.0])  # x = 1 always solves
    design = placement._design([x[None, :]])
    beta = placement.logistic_fit(design, successes[None], np.full((1, 5), 50.0))
    assert np.isfinite(beta).all() and beta[0, 1] > 2


def test_least_squares_on_shapes_is_the_per_seed_fit() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=6)
    counts = np.array([3, 5, 8, 2, 6, 4])
    y_seeds = [rng.normal(0.5 * xi, 1, size=c) for xi, c in zip(x, counts, strict=True)]
    design = placement._design([x[None, :]])
    means = np.array([y.mean() for y in y_seeds])
    ours = placement.least_squares_fit(design, means[None], counts[None].astype(float))[0]
    per_seed = np.column_stack([np.ones(counts.sum()), np.repeat(x - x.mean(), counts)])
    direct = np.linalg.lstsq(per_seed, np.concatenate(y_seeds), rcond=None)[0]
    np.testing.assert_allclose(ours, direct, rtol=1e-10)


def test_bca_matches_scipys_on_one_sample() -> None:
    rng = np.random.default_rng(4)
    sample = rng.lognormal(0, 1, size=40)
    draws = rng.choice(sample, size=(20000, 40)).mean(axis=1)
    jackknife = np.array([np.delete(sample, i).mean() for i in range(40)])
    ours = placement.bca_interval(sample.mean(), draws, jackknife)
    theirs = stats.bootstrap(
        (sample,), np.mean, n_resamples=20000, method="BCa", random_state=5
    ).confidence_interval
    assert ours == pytest.approx((theirs.low, theirs.high), rel=0.03)


def test_bootstrap_rows_agree_with_scipy() -> None:
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(50, 9))
    front = rng.normal(size=9)
    ours = placement._spearman_rows(draws, front)
    direct = [stats.spearmanr(row, front).statistic for row in draws]
    np.testing.assert_allclose(ours, direct, rtol=1e-12)


def test_rho_is_scipys_spearman_of_the_shape_medians(known) -> None:
    runs, _ = two_part(n_seeds=100)
    by_cell = runs.groupby("layers")
    medians = by_cell["final_error"].median()
    direct = stats.spearmanr(medians, by_cell["front_loading"].first().loc[medians.index])
    assert known.trend.rho == pytest.approx(direct.statistic, abs=1e-12)
    assert known.n_shapes == 21 and known.n_seeds == 2100


def test_trend_over_training_is_scipys_spearman_at_each_point(known) -> None:
    runs, curves = two_part(n_seeds=100)
    labelled = curves.merge(runs[["job", "seed", "layers", "front_loading"]], on=["job", "seed"])
    assert [i for i, _ in known.over_training] == [100, 200, 500, 999]
    for iteration, trend in known.over_training:
        at = labelled[labelled["iteration"] == iteration].groupby("layers")
        direct = stats.spearmanr(at["error"].median(), at["front_loading"].first())
        assert trend.rho == pytest.approx(direct.statistic, abs=1e-12)


def test_a_trend_whose_sign_flips_over_training_is_fragile() -> None:
    runs, curves = synthetic(effect=3.0)
    (result,) = placement.analyse(runs)
    result = placement.over_training(result, runs, curves)
    # Early the error falls with front-loading, at the end it rises with it.
    assert result.over_training[0][1].direction is Direction.HELPS
    assert result.over_training[-1][1].direction is Direction.HURTS
    assert result.trend.direction is Direction.HURTS and result.flips_over_training
    assert "fragile: its direction changes over training" in placement_words.trend_sentence(result)


def test_fragile_calls() -> None:
    assert placement.is_fragile(0.04, 0.25)  # parity-4's old rho interval
    assert not placement.is_fragile(0.52, 0.81)
    assert not placement.is_fragile(-0.1, 0.3)  # undecided is not "fragile"


def test_cancelling_parts_are_never_no_difference() -> None:
    # Wider middle layers solve more often, and front-loaded shapes (wide first layers, so
    # narrow last ones) end higher: the parts pull front-loading's median both ways.
    runs, _ = two_part(n_seeds=60, seed=8)
    (result,) = placement.analyse(runs)
    assert "no detectable difference" not in " ".join(placement_words.budget_paragraphs(result))
    # The undecided median with a solve part that helps and a quality part that hurts.
    solve = _effect(Direction.HELPS)
    quality = dataclasses.replace(solve, part="quality", direction=Direction.HURTS)
    parts = (
        dataclasses.replace(result.parts[0], front_alone=solve),
        dataclasses.replace(result.parts[1], front_alone=quality),
    )
    undecided = dataclasses.replace(result.trend, direction=Direction.UNDECIDED)
    cancelled = dataclasses.replace(result, parts=parts, trend=undecided)
    sentence = placement_words.trend_sentence(cancelled)
    assert "not 'no difference'" in sentence and "opposite directions" in sentence


def _effect(direction: Direction) -> placement.Effect:
    return placement.Effect(
        "solve", "front_loading", ("front_loading",), 0.6, 1.0, 0.5, 1.5, 0.6, 1.4, direction, False
    )


def test_a_number_changing_setting_never_merges_cells(monkeypatch) -> None:
    runs, _ = two_part(n_seeds=20)
    # Every declared setting that changes the numbers splits the budget (or, for layers,
    # the cells) when it takes two values.
    for f in config.NUMBER_SETTINGS:
        if f.name == "layers":
            continue
        other = runs.copy()
        other[f.name] = other[f.name].map(
            lambda v: v * 2 if not isinstance(v, str | bool) else f"{v}x"
        )
        both = pd.concat([runs, other], ignore_index=True)
        assert len(placement.budgets(both)) == 2, f.name
    # A setting declared tomorrow (here: momentum) is in the identity without being listed.
    monkeypatch.setattr(schema, "CELL_COLUMNS", [*schema.CELL_COLUMNS, "momentum"])
    mixed = pd.concat([runs.assign(momentum=0.0), runs.assign(momentum=0.9)], ignore_index=True)
    groups = placement.budgets(mixed)
    assert len(groups) == 2
    assert all(len(placement.cells(rows)) == 21 for _, rows in groups)
    assert all(len(cell) == 20 for _, rows in groups for cell in placement.cells(rows))


def selection_only(n_seeds: int = 80, seed: int = 11) -> pd.DataFrame:
    """Shapes that differ only in how often seeds solve (logit rises with log w2). A seed's
    error grows with a latent difficulty u ~ U(0, 1) and it solves when u is below its
    shape's rate: a shape that solves more often adds harder, higher-error solvers, so the
    solved seeds' error rises with w2 though no shape changes any seed's error."""
    rng = np.random.default_rng(seed)
    mean_w2 = np.log(np.array(FAMILY, dtype=float))[:, 1].mean()
    rows = []
    for job, shape in enumerate(FAMILY):
        rate = special.expit(0.5 + 1.5 * (np.log(shape[1]) - mean_w2))
        for s in range(1, n_seeds + 1):
            difficulty = rng.random()
            solved = bool(difficulty < rate)
            rows.append(
                {
                    **cell_settings(layers=shapes.layers_text(shape)),
                    **shapes.shape_columns(shape, 4, 2),
                    "job": job,
                    "seed": s,
                    "status": "ok",
                    "final_error": float(0.002 * np.exp(2.0 * difficulty)) if solved else 0.1,
                    "solved": solved,
                }
            )
    return pd.DataFrame(rows)


def test_a_quality_difference_made_only_by_selection_is_not_confirmed() -> None:
    runs = selection_only()
    (result,) = placement.analyse(runs)
    solve, quality = result.parts
    assert solve.best == "log_w2" and solve.best_effect.direction is Direction.HELPS
    # Among the seeds that solved, a wider middle layer "ends higher": selection alone.
    ((settings, rows),) = placement.budgets(runs)
    data = placement.budget_data(settings, rows, placement.METRICS["final_error"])
    rng = np.random.default_rng(placement.BOOTSTRAP_SEED)
    fits = (
        placement.observed(data),
        placement.two_stage(data, rng),
        placement.seeds_only(data, rng),
    )
    table = placement.descriptors(data.widths, data.front, data.weights)
    conditional = placement._effect("quality", ("log_w2",), 0, table, fits, data.metric)
    assert conditional.direction is Direction.HURTS
    # On the low quantile of every seed's error, the same descriptor has no effect, and
    # whatever the quality part names, its check is undecided and the words say so.
    free = placement._effect("floor", ("log_w2",), 0, table, fits, data.metric)
    assert free.direction is Direction.UNDECIDED
    assert quality.selection_free.direction is not quality.best_effect.direction
    assert "does not agree" in placement_words.part_sentence(quality, result)


def test_the_bca_p_value_is_where_the_interval_reaches_zero() -> None:
    rng = np.random.default_rng(6)
    sample = rng.normal(0.15, 1, size=40)
    draws = rng.choice(sample, size=(4000, 40)).mean(axis=1)
    jackknife = np.array([np.delete(sample, i).mean() for i in range(40)])
    p = placement.bca_p_value(sample.mean(), draws, jackknife)
    assert 0.001 < p < 0.5
    low, _ = placement.bca_interval(sample.mean(), draws, jackknife, 1 - p)
    assert abs(low) < 0.02  # the interval at 1 - p ends at no change
    assert placement.bca_interval(sample.mean(), draws, jackknife, 1 - p * 1.5)[0] > 0


def test_one_holm_family_per_budget_and_intervals_at_their_level(known) -> None:
    (adjusted,) = placement.adjust([known])
    calls = [adjusted.trend] + [
        getattr(p, name)
        for p in adjusted.parts
        for name in placement._CALLS
        if getattr(p, name) is not None
    ]
    assert adjusted.family_size == len(calls)
    p_values = np.array(
        [known.trend.boot_p]
        + [
            getattr(p, name).p_value
            for p in known.parts
            for name in placement._CALLS
            if getattr(p, name) is not None
        ]
    )
    rejected = core.holm(p_values) < core.ALPHA
    for call, reject in zip(calls, rejected, strict=True):
        assert call.confidence > 0.95
        assert (call.direction is not Direction.UNDECIDED) == reject
