"""Where should the neurons go? Trend of a metric with front-loading at a fixed budget.

Reads stored tables (``runs`` with the shape columns of ``nnsweep.train.shapes``, and ``curves``);
never trains. A *budget* is one (dataset, total neurons, depth) with every other setting
equal: within it, shapes differ only in where their neurons sit.

Choices, stated once:

* The per-cell statistic is the median of an error (diverged seeds count as +inf, as in
  ``analysis``) or the mean of an accuracy (a fraction of rows: its median is too coarse).
* **Trend over cells**: Spearman's rho between the per-cell statistic and the front-loading
  index (``shapes.front_loading``). Its 95% CI comes from resampling seeds within cells
  (a percentile bootstrap, ``RESAMPLES`` draws, fixed seed): the shapes are the whole family,
  not a sample of it, so only the seeds are resampled.
* **Per-seed regression**: least squares of log(error) (or the accuracy itself) on
  front-loading and log(weight count), with an intercept. The weight count is a covariate
  because at a fixed number of neurons the shapes still differ in weights (176 to 312 for
  the 21 shapes of 32 neurons on Example 2), and a larger network might simply train
  differently. The front-loading slope is reported as the factor by which the error changes
  from the least to the most front-loaded shape of the budget, with the same bootstrap CI.
  Diverged seeds are left out of the regression (their count is reported).
* **Words**: front-loading "hurts" or "helps" when rho's CI excludes 0, and otherwise
  "makes no detectable difference". "Hurts" means the metric gets worse as neurons move
  towards the input.
* **Over training**: the same rho, from the stored curves (the training error margin), at
  10%, 25%, 50% and 100% of the iterations; "holds from iteration X" names the earliest of
  those points from which the word stays the one at the end.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from nnsweep.schema import SHAPE_COLUMNS

CONFIDENCE = 0.95  # level of every CI here
RESAMPLES = 2000  # bootstrap draws (seeds resampled within cells)
BOOTSTRAP_SEED = 20261129  # fixed: a report regenerated from the same tables is identical
FRACTIONS = (0.1, 0.25, 0.5, 1.0)  # points of training at which the trend is re-measured

# Settings that may differ inside a budget without making it another budget: the shape.
_SHAPE_SETTINGS = ("layers", *SHAPE_COLUMNS)
# The settings that together name a cell (kept here so old tables without them still work).
_SETTINGS = (
    "dataset",
    "activation",
    "output_activation",
    "init",
    "bias",
    "lr",
    "iterations",
    "log_every",
    "error_threshold",
)


@dataclass(frozen=True)
class Metric:
    """A per-seed column and how to read it."""

    column: str  # column of runs.parquet
    label: str  # words for it in sentences
    higher_is_better: bool  # accuracy: True; an error margin: False


METRICS = {
    "final_error": Metric("final_error", "final error", False),
    "holdout_error": Metric("holdout_error", "held-out error", False),
    "accuracy": Metric("accuracy", "training accuracy", True),
    "holdout_accuracy": Metric("holdout_accuracy", "held-out accuracy", True),
}


def budgets(runs: pd.DataFrame) -> list[tuple[tuple[str, ...], pd.DataFrame]]:
    """The runs split by budget: every setting equal except the shape's.

    Returns (key, rows) pairs, where key names the dataset, the total and the depth, and
    the rows are the seeds of every shape of that budget (failed cells left out).
    """
    seeded = runs[runs["status"] != "failed"]
    keys = [c for c in (*_SETTINGS, "total_neurons", "depth") if c in seeded]
    groups = []
    for values, rows in seeded.groupby(keys, sort=False, dropna=False):
        groups.append((tuple(str(v) for v in values), rows))
    return groups


def _values(rows: pd.DataFrame, metric: Metric) -> pd.Series:
    """The metric per seed; a diverged seed's error is +inf and its accuracy 0."""
    worst = 0.0 if metric.higher_is_better else np.inf
    return rows[metric.column].where(rows["status"] == "ok", worst).fillna(worst)


def _statistic(values: np.ndarray, metric: Metric, axis: int = -1) -> np.ndarray:
    return np.mean(values, axis=axis) if metric.higher_is_better else np.median(values, axis=axis)


def _spearman_rows(statistics: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of ``statistics`` (draws x cells) with ``front``."""
    ranks = stats.rankdata(statistics, axis=1)
    ranks = ranks - ranks.mean(axis=1, keepdims=True)
    front_ranks = stats.rankdata(front)
    front_ranks = front_ranks - front_ranks.mean()
    spread = np.sqrt((ranks**2).sum(axis=1) * (front_ranks**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ranks @ front_ranks) / spread


def _draws(sizes: Sequence[int], rng: np.random.Generator) -> list[np.ndarray]:
    """Per cell, RESAMPLES x size indices into that cell's seeds."""
    return [rng.integers(0, size, size=(RESAMPLES, size)) for size in sizes]


def _interval(draws: np.ndarray) -> tuple[float, float]:
    finite = draws[np.isfinite(draws)]
    if not len(finite):
        return np.nan, np.nan
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class Trend:
    """Spearman's rho over cells with its bootstrap CI."""

    rho: float
    ci_low: float
    ci_high: float
    p_value: float  # scipy's test of rho = 0 over the cells' statistics (for reference)


def cell_trend(
    cell_values: Sequence[np.ndarray],
    front: np.ndarray,
    metric: Metric,
    rng: np.random.Generator,
) -> Trend:
    """rho between each cell's statistic and its front-loading, CI from seeds resampled."""
    observed = np.array([_statistic(v, metric) for v in cell_values])
    result = stats.spearmanr(observed, front)
    resampled = np.column_stack(
        [
            _statistic(values[indices], metric, axis=1)
            for values, indices in zip(
                cell_values, _draws([len(v) for v in cell_values], rng), strict=True
            )
        ]
    )
    low, high = _interval(_spearman_rows(resampled, front))
    return Trend(float(result.statistic), low, high, float(result.pvalue))


def _fit(y: np.ndarray, design: np.ndarray) -> np.ndarray:
    return np.linalg.lstsq(design, y, rcond=None)[0]


def seed_regression(
    rows: pd.DataFrame, metric: Metric, weights_column: str, rng: np.random.Generator
) -> dict[str, float]:
    """Least squares of log(error) (or accuracy) on front-loading and log(weights), per seed.

    Returns the front-loading slope with its bootstrap CI (seeds resampled within cells),
    the slope without the weight covariate, the front-loading range of the budget, and how
    many diverged seeds were left out.
    """
    ok = rows[rows["status"] == "ok"]
    values = ok[metric.column].to_numpy(dtype=float)
    keep = np.isfinite(values) & ((values > 0) | metric.higher_is_better)
    ok, values = ok[keep], values[keep]
    y = values if metric.higher_is_better else np.log(values)
    front = ok["front_loading"].to_numpy(dtype=float)
    log_weights = np.log(ok[weights_column].to_numpy(dtype=float))
    design = np.column_stack([np.ones(len(y)), front, log_weights - log_weights.mean()])
    if np.ptp(log_weights) == 0:
        design = design[:, :2]  # every shape has the same weight count: nothing to adjust
    slope = _fit(y, design)[1]
    unadjusted = _fit(y, design[:, :2])[1]
    cells = ok.groupby("layers", sort=False).indices
    positions = list(cells.values())
    draws = _draws([len(p) for p in positions], rng)
    boot = np.empty(RESAMPLES)
    for draw in range(RESAMPLES):
        chosen = np.concatenate([p[d[draw]] for p, d in zip(positions, draws, strict=True)])
        boot[draw] = _fit(y[chosen], design[chosen])[1]
    low, high = _interval(boot)
    return {
        "slope": float(slope),
        "slope_ci_low": low,
        "slope_ci_high": high,
        "slope_unadjusted": float(unadjusted),
        "front_range": float(np.ptp(front)) if len(front) else np.nan,
        "n_left_out": int(len(rows) - len(ok)),
        "weights_adjusted": design.shape[1] == 3,
    }


def direction(trend_low: float, trend_high: float, metric: Metric) -> str:
    """'hurts', 'helps' or 'makes no detectable difference', from rho's CI."""
    if not (np.isfinite(trend_low) and np.isfinite(trend_high)) or trend_low <= 0 <= trend_high:
        return "makes no detectable difference"
    rising = trend_low > 0  # the statistic grows with front-loading
    return "helps" if rising == metric.higher_is_better else "hurts"


def _cell_arrays(rows: pd.DataFrame, values: pd.Series) -> tuple[list[np.ndarray], np.ndarray]:
    groups = values.groupby(rows["layers"], sort=False)
    cell_values = [g.to_numpy(dtype=float) for _, g in groups]
    front = rows.groupby("layers", sort=False)["front_loading"].first().to_numpy(dtype=float)
    return cell_values, front


def placement_trends(runs: pd.DataFrame, metric_name: str = "final_error") -> pd.DataFrame:
    """One row per budget with at least three shapes: rho, its CI, the regression, words.

    Columns: dataset, total_neurons, depth, n_shapes, n_seeds, metric, rho, rho_ci_low,
    rho_ci_high, rho_p, effect (hurts/helps/...), solve_rho, solve_ci_low, solve_ci_high
    (the solve rate against front-loading; NaN when the rate does not vary), slope,
    slope_ci_low, slope_ci_high, slope_unadjusted, front_range, n_left_out,
    weights_adjusted, and the other settings of the budget.
    """
    metric = METRICS[metric_name]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    rows_out = []
    for _key, rows in budgets(runs):
        rows = rows[rows["front_loading"].notna()]
        if rows["layers"].nunique() < 3 or rows[metric.column].notna().sum() == 0:
            continue
        cell_values, front = _cell_arrays(rows, _values(rows, metric))
        trend = cell_trend(cell_values, front, metric, rng)
        solved, _ = _cell_arrays(rows, rows["solved"].astype(float))
        rates = np.array([s.mean() for s in solved])
        solve = (
            cell_trend(solved, front, METRICS["accuracy"], rng)
            if np.ptp(rates) > 0
            else Trend(np.nan, np.nan, np.nan, np.nan)
        )
        bias = bool(rows["bias"].iloc[0]) if "bias" in rows else False
        regression = seed_regression(
            rows, metric, "weights_with_bias" if bias else "weights_no_bias", rng
        )
        first = rows.iloc[0]
        rows_out.append(
            {
                **{c: first[c] for c in (*_SETTINGS, "total_neurons", "depth") if c in rows},
                "n_shapes": len(cell_values),
                "n_seeds": len(rows),
                "metric": metric.column,
                "rho": trend.rho,
                "rho_ci_low": trend.ci_low,
                "rho_ci_high": trend.ci_high,
                "rho_p": trend.p_value,
                "effect": direction(trend.ci_low, trend.ci_high, metric),
                "solve_rho": solve.rho,
                "solve_ci_low": solve.ci_low,
                "solve_ci_high": solve.ci_high,
                **regression,
            }
        )
    return pd.DataFrame(rows_out)


def trend_over_training(
    runs: pd.DataFrame, curves: pd.DataFrame, fractions: Sequence[float] = FRACTIONS
) -> pd.DataFrame:
    """rho of the per-cell median training error margin with front-loading, per budget, at
    each fraction of the iterations (the logged iteration nearest below it).

    Columns: dataset, total_neurons, depth, fraction, iteration, rho, rho_ci_low,
    rho_ci_high, effect.
    """
    metric = Metric("error", "training error margin", False)
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    labelled = curves[["job", "seed", "iteration", "error"]].merge(
        runs[["job", "seed", "layers", "status", "front_loading"]], on=["job", "seed"]
    )
    out = []
    for _key, rows in budgets(runs):
        rows = rows[rows["front_loading"].notna()]
        if rows["layers"].nunique() < 3:
            continue
        mine = labelled[labelled["job"].isin(rows["job"].unique())]
        if mine.empty:
            continue
        logged = np.sort(mine["iteration"].unique())
        iterations = int(rows["iterations"].iloc[0])
        first = rows.iloc[0]
        for fraction in fractions:
            target = fraction * iterations
            at = logged[logged <= target].max() if (logged <= target).any() else logged.min()
            point = mine[mine["iteration"] == at]
            errors = point["error"].where(np.isfinite(point["error"]), np.inf).fillna(np.inf)
            cell_values, front = _cell_arrays(
                point.reset_index(drop=True), errors.reset_index(drop=True)
            )
            trend = cell_trend(cell_values, front, metric, rng)
            out.append(
                {
                    **{c: first[c] for c in ("dataset", "total_neurons", "depth") if c in rows},
                    "fraction": fraction,
                    "iteration": int(at),
                    "rho": trend.rho,
                    "rho_ci_low": trend.ci_low,
                    "rho_ci_high": trend.ci_high,
                    "effect": direction(trend.ci_low, trend.ci_high, metric),
                }
            )
    return pd.DataFrame(out)


def holds_from(over_training: pd.DataFrame) -> tuple[str, int | None]:
    """The final word, and the earliest iteration from which every later point agrees."""
    ordered = over_training.sort_values("fraction")
    final = ordered["effect"].iloc[-1]
    since = None
    for row in reversed(list(ordered.itertuples())):
        if row.effect != final:
            break
        since = int(row.iteration)
    return final, since


def _ci(low: float, high: float) -> str:
    return f"[{low:.2f}, {high:.2f}]"


def _seeds(trend: pd.Series) -> str:
    shapes, seeds = int(trend["n_shapes"]), int(trend["n_seeds"])
    if seeds % shapes == 0:
        return f"{shapes} shapes x {seeds // shapes} seeds"
    return f"{shapes} shapes, {seeds} seeds in all"


def budget_sentence(trend: pd.Series, over_training: pd.DataFrame | None = None) -> str:
    """The answer for one budget, in words: the typical seed (rho of the per-cell statistic),
    how often seeds solve the task, all seeds at equal weight count, and over training.

    E.g. "At a fixed budget of 32 neurons in 3 layers on tutorial_ex2, front-loading hurts
    the median final error (rho = 0.78, 95% CI [0.52, 0.81], 21 shapes x 50 seeds) ..."."""
    metric = METRICS[trend["metric"]]
    statistic = "mean" if metric.higher_is_better else "median"
    text = (
        f"At a fixed budget of {int(trend['total_neurons'])} neurons in {int(trend['depth'])} "
        f"layers on {trend['dataset']}, front-loading {trend['effect']} "
        f"{'to' if trend['effect'].startswith('makes') else ''} the {statistic} {metric.label} "
        f"(ρ = {trend['rho']:.2f}, 95% CI {_ci(trend['rho_ci_low'], trend['rho_ci_high'])}, "  # noqa: RUF001
        f"{_seeds(trend)})"
    ).replace("  ", " ")
    solve_known = bool(np.isfinite(trend.get("solve_rho", np.nan)))
    if solve_known:
        solve_effect = direction(trend["solve_ci_low"], trend["solve_ci_high"], METRICS["accuracy"])
        joint = "and" if solve_effect == trend["effect"] else "but"
        text += (
            f" {joint} {solve_effect}{' to' if solve_effect.startswith('makes') else ''} how "
            f"often seeds solve the task (ρ = {trend['solve_rho']:.2f}, "  # noqa: RUF001
            f"CI {_ci(trend['solve_ci_low'], trend['solve_ci_high'])})"
        )
    adjusted = "at equal weight count" if trend["weights_adjusted"] else "(equal weight counts)"
    span = trend["front_range"]
    if metric.higher_is_better:
        shift = trend["slope"] * span
        change = f"a {metric.label} {abs(shift):.3f} {'higher' if shift >= 0 else 'lower'} than"
        bounds = [trend["slope_ci_low"] * span, trend["slope_ci_high"] * span]
        interval = f"{bounds[0]:+.3f} to {bounds[1]:+.3f}"
    else:
        change = f"{np.exp(trend['slope'] * span):.2f} times the {metric.label} of"
        bounds = np.exp([trend["slope_ci_low"] * span, trend["slope_ci_high"] * span])
        interval = f"{bounds[0]:.2f} to {bounds[1]:.2f}"
    text += (
        f". Over all seeds, {adjusted}, the most front-loaded shape ends with {change} "
        f"the least (95% CI {interval}{', stuck seeds included' if solve_known else ''})"
    )
    if over_training is not None and len(over_training):
        over_training = over_training[
            (over_training["dataset"] == trend["dataset"])
            & (over_training["total_neurons"] == trend["total_neurons"])
            & (over_training["depth"] == trend["depth"])
        ]
    if over_training is not None and len(over_training):
        final, since = holds_from(over_training)
        points = ", ".join(
            f"{row.iteration:,}: {row.rho:+.2f}" for row in over_training.itertuples()
        )
        if since == int(over_training["iteration"].min()):
            if final == "makes no detectable difference":
                text += ". On the training error no trend is detectable at any point checked"
            else:
                text += ". On the training error the trend holds at every point checked"
        else:
            text += f". On the training error front-loading {final} from iteration {since:,} on"
        text += f" (ρ at {points})"  # noqa: RUF001
    return text + "."


def summary_sentence(trends: pd.DataFrame) -> str | None:
    """Where the answer depends on the task or the budget, in one sentence."""
    if len(trends) < 2:
        return None
    words = trends["effect"].unique()
    if len(words) == 1:
        text = (
            f"The answer is the same on every task and budget checked: front-loading "
            f"{words[0]} ({len(trends)} budgets over {trends['dataset'].nunique()} task(s))."
        )
    else:
        parts = []
        for word in words:
            chosen = trends[trends["effect"] == word]
            where = [
                f"{r.dataset} at {int(r.total_neurons)} neurons ({METRICS[r.metric].label})"
                for r in chosen.itertuples()
            ]
            parts.append(f"{word} on {_listed(where)}")
        text = "It depends on the task and the budget: front-loading " + "; ".join(parts) + "."
    return text + _reliability_clause(trends)


def _listed(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _reliability_clause(trends: pd.DataFrame) -> str:
    """The solve-rate side of the answer, which the headline metric does not show: a budget
    whose median shows no trend may still fail less (or more) often when front-loaded."""
    if "solve_ci_low" not in trends:
        return ""
    known = trends.dropna(subset=["solve_ci_low", "solve_ci_high"])
    clauses = []
    for word, chosen in (
        ("helps", known[known["solve_ci_low"] > 0]),
        ("hurts", known[known["solve_ci_high"] < 0]),
    ):
        if len(chosen):
            where = [f"{r.dataset} at {int(r.total_neurons)} neurons" for r in chosen.itertuples()]
            clauses.append(f"{word} on {_listed(where)}")
    if not clauses:
        return ""
    return " On how often seeds solve the task, front-loading " + "; ".join(clauses) + "."


def placement_verdict(
    runs: pd.DataFrame, curves: pd.DataFrame | None, metric_name: str = "final_error"
) -> tuple[list[str], pd.DataFrame, pd.DataFrame]:
    """The placement paragraphs of a report, with the two tables they come from.

    Empty when no budget has three shapes or more (or the shape columns are missing).
    """
    if "front_loading" not in runs or runs["front_loading"].notna().sum() == 0:
        return [], pd.DataFrame(), pd.DataFrame()
    trends = placement_trends(runs, metric_name)
    if trends.empty:
        return [], trends, pd.DataFrame()
    over = (
        trend_over_training(runs, curves)
        if curves is not None and not curves.empty
        else pd.DataFrame()
    )
    paragraphs = [budget_sentence(row, over if len(over) else None) for _, row in trends.iterrows()]
    summary = summary_sentence(trends)
    return ([summary] if summary else []) + paragraphs, trends, over
