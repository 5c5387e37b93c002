"""Where should the neurons go? What about a shape explains how well it trains, at a fixed budget.

Reads stored tables (``runs`` with the shape columns of ``nnsweep.train.shapes``, and
``curves``); never trains; makes no sentences (``nnsweep.report.placement_report`` words the
results). A *budget* is one (dataset, total neurons, depth) with every setting that changes a
seed's numbers equal except the shape: its cells differ only in where the neurons sit.

Choices, stated once:

* **Identity.** A cell is named by every setting that changes a seed's numbers
  (``schema.CELL_COLUMNS``, derived from the settings' declarations, plus the arithmetic and
  the dataset's hash), so a new setting splits cells without being listed here; a budget is
  the same minus the shape's own columns. Nothing groups by ``layers`` alone.
* **Descriptors.** The front-loading index (``shapes.front_loading``) ignores the middle
  layer (for three layers it is 0.5 + (w1 - w3) / (2T): 4-24-4 and 8-8-8 both score 0.5).
  Shapes are therefore also described by each layer's width (log scale: going from 4 to 8
  neurons is a bigger change than from 20 to 24), the narrowest layer's width and the weight
  count. Each descriptor is fitted alone; the one explaining the largest share of the
  between-shape variation "is what matters", and front-loading is then refitted beside it
  to ask whether it still has an effect.
* **Two parts (a hurdle model), the shape as the unit.** Part 1, how often seeds solve the
  task: a binomial logistic regression of the shapes' solve counts on the descriptor. Part 2,
  the error of the seeds that solved: least squares of log(final error) on the descriptor
  (weighted by the seeds that solved, i.e. the per-seed fit with shape-level regressors).
  Part 2 conditions on an outcome the shape itself changes (a shape that rescues hard
  initialisations adds late, high-error solvers), so it describes the runs that worked and
  is not a causal effect on quality. So it is checked against an estimand selection cannot
  fake: the same descriptor on each shape's tau-quantile of *every* seed's error, with tau
  half the lowest solve rate of the budget (seeds are randomised, so a contrast over all of
  them is causal; below every shape's solve rate the quantile sits among seeds that worked).
  Tasks that are never "solved" (noisy data) have one part: the metric (held-out accuracy)
  of every seed.
* **Uncertainty at the shape level.** Every interval resamples shapes with replacement and
  then seeds within each drawn shape (a two-stage bootstrap, ``RESAMPLES`` draws, fixed
  seed), and is a BCa interval (bias from the draws, acceleration from the jackknife that
  leaves out one shape at a time). The shapes here are a grid, not a random sample, but
  resampling them keeps shape-level misfit of a descriptor in the interval instead of
  treating it as known.
* **Effects** are quoted over a descriptor's range in the budget: the solve part as the
  odds ratio from its smallest to its largest value, the error part as the ratio of errors,
  the accuracy as the difference. A descriptor *helps* or *hurts* when the interval
  excludes "no change"; such a call is *fragile* when the interval's end nearest "no change"
  lies within ``FRAGILE_SHARE`` of the interval's width from it, or when the trend's sign
  changes over training.
* **Trend of the typical seed**: Spearman's rho between front-loading and each shape's
  median (or mean accuracy) over all seeds, with the same shape-level BCa interval. It
  mixes the two parts, so where the parts disagree it is not read as "no difference".
* **Over training**: the same rho from the stored curves (the training error margin) at
  10%, 25%, 50% and 100% of the iterations.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from scipy import special, stats

from nnsweep import schema
from nnsweep.stats import core

CONFIDENCE = 0.95  # level of every interval here
RESAMPLES = 2000  # two-stage bootstrap draws (shapes, then seeds within shapes)
BOOTSTRAP_SEED = 20261129  # fixed: a report regenerated from the same tables is identical
FRACTIONS = (0.1, 0.25, 0.5, 1.0)  # points of training at which the trend is re-measured
FRAGILE_SHARE = 0.25  # a call whose near interval end is this close to "no change" is fragile
SELECTION_FREE_SHARE = 0.5  # the selection-free quantile: this share of the lowest solve rate
MIN_SHAPES = 3  # a budget needs this many shapes for any trend

# Columns that name a cell besides its settings: other arithmetic or other data, other numbers.
_IDENTITY_EXTRA = ("arithmetic_version", "dataset_sha256")
# Columns that describe the shape, so they differ between the cells of one budget.
_SHAPE_SETTINGS = ("layers", *schema.SHAPE_COLUMNS)
_BUDGET_EXTRA = ("total_neurons", "depth")


class Direction(enum.Enum):
    """Which way a descriptor moves a part, decided from its interval."""

    HELPS = "helps"  # a larger descriptor makes the part better (more solved, lower error)
    HURTS = "hurts"  # a larger descriptor makes the part worse
    UNDECIDED = "undecided"  # the interval holds "no change"
    NOT_APPLICABLE = "not applicable"  # the part cannot vary (e.g. no seed ever solves)


@dataclass(frozen=True)
class Metric:
    """A per-seed column and how to read it."""

    column: str  # column of runs.parquet
    label: str  # words for it
    higher_is_better: bool  # accuracy: True; an error margin: False


METRICS = {
    "final_error": Metric("final_error", "final error", False),
    "holdout_error": Metric("holdout_error", "held-out error", False),
    "accuracy": Metric("accuracy", "training accuracy", True),
    "holdout_accuracy": Metric("holdout_accuracy", "held-out accuracy", True),
}


# --------------------------------------------------------------------------------------
# Identity: which rows are one cell, which cells are one budget
# --------------------------------------------------------------------------------------


def cell_columns(runs: pd.DataFrame) -> list[str]:
    """The columns that name a cell: every number-changing setting (from ``config``)."""
    return [c for c in (*schema.CELL_COLUMNS, *_IDENTITY_EXTRA) if c in runs]


def budget_columns(runs: pd.DataFrame) -> list[str]:
    """The columns that name a budget: a cell's, minus the shape's, plus total and depth."""
    kept = [c for c in cell_columns(runs) if c not in _SHAPE_SETTINGS]
    return kept + [c for c in _BUDGET_EXTRA if c in runs]


def budgets(runs: pd.DataFrame) -> list[tuple[dict[str, object], pd.DataFrame]]:
    """The seeded runs split by budget, as (shared settings, rows) pairs."""
    seeded = runs[runs["status"] != "failed"]
    keys = budget_columns(seeded)
    out = []
    for values, rows in seeded.groupby(keys, sort=False, dropna=False):
        out.append(
            (dict(zip(keys, values if isinstance(values, tuple) else (values,), strict=True)), rows)
        )
    return out


def cells(rows: pd.DataFrame) -> list[pd.DataFrame]:
    """The rows of one budget split into cells by every identity column (not ``layers``)."""
    return [g for _, g in rows.groupby(cell_columns(rows), sort=False, dropna=False)]


# --------------------------------------------------------------------------------------
# Descriptors
# --------------------------------------------------------------------------------------


def layer_names(depth: int) -> list[str]:
    """Descriptor keys for each layer's width: log_w1 ... log_wD."""
    return [f"log_w{k + 1}" for k in range(depth)]


def descriptors(
    widths: np.ndarray, front: np.ndarray, weights: np.ndarray
) -> dict[str, np.ndarray]:
    """Candidate descriptors per shape, those that vary over the shapes.

    Parameters
    ----------
    widths : (n_shapes, depth) hidden layer widths
    front : (n_shapes,) front-loading index
    weights : (n_shapes,) weight count
    """
    logs = np.log(widths.astype(float))
    table = {"front_loading": front.astype(float)}
    for k, name in enumerate(layer_names(widths.shape[1])):
        table[name] = logs[:, k]
    table["log_narrowest"] = logs.min(axis=1)
    table["log_weights"] = np.log(weights.astype(float))
    return {k: v for k, v in table.items() if np.ptp(v) > 0}


# --------------------------------------------------------------------------------------
# Fits, batched over bootstrap draws (arrays with a leading batch axis)
# --------------------------------------------------------------------------------------


def _design(columns: Sequence[np.ndarray]) -> np.ndarray:
    """(..., n_shapes, 1 + k): an intercept and the descriptors, each centred."""
    centred = [c - c.mean(axis=-1, keepdims=True) for c in columns]
    return np.stack([np.ones_like(centred[0]), *centred], axis=-1)


def logistic_fit(
    design: np.ndarray, successes: np.ndarray, trials: np.ndarray, steps: int = 100
) -> np.ndarray:
    """Binomial logistic regression with Firth's bias reduction, batched.

    Firth's penalty (Heinze and Schemper 2002) keeps the estimate finite where a descriptor
    separates the shapes that always solve from the others (parity-4: every shape whose
    narrowest layer has 8 neurons or more solved every seed), where plain maximum likelihood
    runs off to infinity.

    Parameters
    ----------
    design : (batch, n_shapes, p) regressors (first column the intercept)
    successes, trials : (batch, n_shapes) solved and trained seeds per shape

    Returns
    -------
    (batch, p) coefficients; NaN for a draw whose fit did not converge.
    """
    batch, _, p = design.shape
    rate = (successes.sum(axis=1) + 0.5) / (trials.sum(axis=1) + 1)
    beta = np.zeros((batch, p))
    beta[:, 0] = np.log(rate / (1 - rate))
    converged = np.zeros(batch, bool)
    for _ in range(steps):
        prob = special.expit(np.einsum("bsp,bp->bs", design, beta))
        weight = trials * prob * (1 - prob)
        information = np.einsum("bsp,bs,bsq->bpq", design, weight, design)
        with np.errstate(all="ignore"):
            inverse = np.linalg.pinv(information)
            leverage = weight * np.einsum("bsp,bpq,bsq->bs", design, inverse, design)
            score = np.einsum(
                "bsp,bs->bp", design, successes - trials * prob + leverage * (0.5 - prob)
            )
            step = np.einsum("bpq,bq->bp", inverse, score)
        step = np.clip(np.nan_to_num(step, nan=0.0), -5, 5)  # damped: no overshoot
        beta = beta + np.where(converged[:, None], 0.0, step)
        converged |= np.abs(step).max(axis=1) < 1e-9
        if converged.all():
            break
    beta[~converged | ~np.isfinite(beta).all(axis=1)] = np.nan
    return beta


def least_squares_fit(design: np.ndarray, y: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Weighted least squares, batched: (batch, n_shapes, p), (batch, n_shapes) x2 -> (batch, p).

    A shape with weight 0 (no seed solved) drops out; NaN where the fit is not determined.
    """
    y = np.where(weight > 0, y, 0.0)
    gram = np.einsum("bsp,bs,bsq->bpq", design, weight, design)
    moment = np.einsum("bsp,bs,bs->bp", design, weight, y)
    out = np.full(moment.shape, np.nan)
    p = design.shape[-1]
    ok = np.linalg.matrix_rank(gram) == p
    if ok.any():
        out[ok] = np.linalg.solve(gram[ok], moment[ok][..., None])[..., 0]
    return out


def binomial_deviance(successes: np.ndarray, trials: np.ndarray, prob: np.ndarray) -> np.ndarray:
    """Deviance of fitted rates against the shapes' observed rates, summed over shapes."""
    with np.errstate(divide="ignore", invalid="ignore"):
        observed = successes / trials
        terms = special.xlogy(successes, observed / prob) + special.xlogy(
            trials - successes, (1 - observed) / (1 - prob)
        )
    return 2 * np.nansum(terms, axis=-1)


# --------------------------------------------------------------------------------------
# BCa interval for a two-stage bootstrap
# --------------------------------------------------------------------------------------


def bca_interval(
    estimate: float, draws: np.ndarray, jackknife: np.ndarray, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """Bias-corrected and accelerated bootstrap interval (Efron 1987).

    ``draws`` are the bootstrap replicates (non-finite ones ignored); ``jackknife`` the
    leave-one-unit-out estimates (here: one shape out), which give the acceleration.
    """
    draws = draws[np.isfinite(draws)]
    jackknife = jackknife[np.isfinite(jackknife)]
    if len(draws) < 10 or not np.isfinite(estimate):
        return np.nan, np.nan
    bias, accel = _bias_and_acceleration(estimate, draws, jackknife)
    z = special.ndtri(np.array([(1 - confidence) / 2, (1 + confidence) / 2]))
    levels = special.ndtr(bias + (bias + z) / (1 - accel * (bias + z)))
    low, high = np.quantile(draws, levels)
    return float(low), float(high)


def _bias_and_acceleration(
    estimate: float, draws: np.ndarray, jackknife: np.ndarray
) -> tuple[float, float]:
    below = (np.sum(draws < estimate) + 0.5 * np.sum(draws == estimate)) / len(draws)
    below = np.clip(below, 1 / (len(draws) + 1), len(draws) / (len(draws) + 1))
    spread = jackknife.mean() - jackknife
    denominator = 6 * np.sum(spread**2) ** 1.5
    return float(special.ndtri(below)), float(
        np.sum(spread**3) / denominator
    ) if denominator > 0 else 0.0


def bca_p_value(estimate: float, draws: np.ndarray, jackknife: np.ndarray) -> float:
    """Two-sided p-value of "no change" (0): one minus the largest confidence at which the
    BCa interval still excludes 0 (so the interval at 1 - level excludes 0 exactly when
    p < level)."""
    draws = draws[np.isfinite(draws)]
    jackknife = jackknife[np.isfinite(jackknife)]
    if len(draws) < 10 or not np.isfinite(estimate):
        return np.nan
    bias, accel = _bias_and_acceleration(estimate, draws, jackknife)
    share = np.clip(
        np.mean(draws < 0) + 0.5 * np.mean(draws == 0), 0.5 / len(draws), 1 - 0.5 / len(draws)
    )
    # the BCa level alpha whose adjusted percentile is 0's place among the draws
    w = special.ndtri(share) - bias
    z = w / (1 + accel * w) - bias
    return float(min(1.0, 2 * min(special.ndtr(z), 1 - special.ndtr(z))))


# --------------------------------------------------------------------------------------
# One budget, as arrays
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetData:
    """The seeds of one budget, per shape, padded to the largest cell."""

    settings: dict[str, object]  # what the shapes share
    shapes: list[str]  # layers text per shape
    widths: np.ndarray  # (n_shapes, depth)
    front: np.ndarray  # (n_shapes,)
    weights: np.ndarray  # (n_shapes,)
    sizes: np.ndarray  # (n_shapes,) seeds per shape
    solved: np.ndarray  # (n_shapes, n_max) bool, False in padding
    log_error: np.ndarray  # (n_shapes, n_max) log(final error), NaN where not solved
    value: np.ndarray  # (n_shapes, n_max) the metric, diverged = worst, NaN in padding
    metric: Metric
    solvable: bool  # some seed solved and some did not: the solve part can vary
    tau: float  # level of the selection-free quantile (NaN when some shape never solves)


def budget_data(settings: dict[str, object], rows: pd.DataFrame, metric: Metric) -> BudgetData:
    """Arrays of one budget; the shape unit is a cell (every identity column)."""
    groups = cells(rows)
    n_max = max(len(g) for g in groups)
    pad = np.full((len(groups), n_max), np.nan)
    solved, log_error, value = np.zeros(pad.shape, bool), pad.copy(), pad.copy()
    bias = bool(rows["bias"].iloc[0]) if "bias" in rows else False
    weights_column = "weights_with_bias" if bias else "weights_no_bias"
    for i, g in enumerate(groups):
        ok = (g["status"] == "ok").to_numpy()
        won = g["solved"].fillna(False).astype(bool).to_numpy() & ok
        errors = g["final_error"].to_numpy(dtype=float)
        solved[i, : len(g)] = won
        with np.errstate(divide="ignore", invalid="ignore"):
            log_error[i, : len(g)] = np.where(won & (errors > 0), np.log(errors), np.nan)
        values = g[metric.column].to_numpy(dtype=float)
        value[i, : len(g)] = schema.worst_when_diverged(values, ok, metric.higher_is_better)
    widths = np.array([[int(w) for w in str(g["layers"].iloc[0]).split("-")] for g in groups])
    any_solved = solved.any()
    all_solved = all(solved[i, : len(g)].all() for i, g in enumerate(groups))
    lowest_rate = min(solved[i, : len(g)].mean() for i, g in enumerate(groups))
    return BudgetData(
        settings=settings,
        shapes=[str(g["layers"].iloc[0]) for g in groups],
        widths=widths,
        front=np.array([float(g["front_loading"].iloc[0]) for g in groups]),
        weights=np.array([float(g[weights_column].iloc[0]) for g in groups]),
        sizes=np.array([len(g) for g in groups]),
        solved=solved,
        log_error=log_error,
        value=value,
        metric=metric,
        solvable=bool(any_solved and not all_solved),
        tau=SELECTION_FREE_SHARE * lowest_rate if lowest_rate > 0 else np.nan,
    )


@dataclass(frozen=True)
class Draws:
    """Shape-level summaries of the observed data (row 0) and of every bootstrap draw."""

    shape_index: np.ndarray  # (batch, n_slots) which shape fills each slot
    trials: np.ndarray  # (batch, n_slots) seeds
    successes: np.ndarray  # (batch, n_slots) seeds that solved
    mean_log_error: np.ndarray  # (batch, n_slots) mean log error of the solved (NaN if none)
    statistic: np.ndarray  # (batch, n_slots) the typical seed: median (or mean accuracy)
    mean_value: np.ndarray  # (batch, n_slots) mean of the metric over all seeds
    low_quantile: np.ndarray  # (batch, n_slots) log of the tau-quantile of every seed's metric


def _summaries(data: BudgetData, shape_index: np.ndarray, seed_index: np.ndarray) -> Draws:
    """Per-slot summaries given which shape and which of its seeds each slot holds."""
    sizes = data.sizes[shape_index]
    inside = np.arange(seed_index.shape[-1]) < sizes[..., None]
    solved = data.solved[shape_index[..., None], seed_index] & inside
    log_error = np.where(solved, data.log_error[shape_index[..., None], seed_index], 0.0)
    value = np.where(inside, data.value[shape_index[..., None], seed_index], np.nan)
    successes = solved.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_log = np.where(successes > 0, log_error.sum(axis=-1) / successes, np.nan)
        # an error is averaged on the log scale (its spread is multiplicative); a diverged
        # seed (inf) has no log and is left out of the mean, as it is of ``quality``
        shown = (
            value if data.metric.higher_is_better else np.log(np.where(value > 0, value, np.nan))
        )
        mean_value = np.nanmean(np.where(np.isinf(shown), np.nan, shown), axis=-1)
    typical = np.nanmean(value, axis=-1) if data.metric.higher_is_better else _nanmedian(value)
    low = (
        _low_quantile(value, sizes, data.tau)
        if np.isfinite(data.tau)
        else np.full(sizes.shape, np.nan)
    )
    return Draws(shape_index, sizes, successes, mean_log, typical, mean_value, low)


def _low_quantile(values: np.ndarray, sizes: np.ndarray, tau: float) -> np.ndarray:
    """log of the tau-quantile (inverse CDF) over the last axis, NaN padding ignored."""
    ordered = np.sort(np.where(np.isnan(values), np.inf, values), axis=-1)
    index = np.clip(np.ceil(tau * sizes).astype(int) - 1, 0, None)
    picked = np.take_along_axis(ordered, index[..., None], axis=-1)[..., 0]
    with np.errstate(divide="ignore"):
        return np.log(picked)


def _nanmedian(values: np.ndarray) -> np.ndarray:
    """Median over the last axis ignoring NaN padding (inf, a diverged seed, counts)."""
    ordered = np.sort(np.where(np.isnan(values), np.inf, values), axis=-1)
    counts = (~np.isnan(values)).sum(axis=-1)
    low = np.take_along_axis(ordered, ((counts - 1) // 2)[..., None], axis=-1)[..., 0]
    high = np.take_along_axis(ordered, (counts // 2)[..., None], axis=-1)[..., 0]
    with np.errstate(invalid="ignore"):
        return np.where(low == high, low, (low + high) / 2)


def observed(data: BudgetData) -> Draws:
    """The data itself, as one 'draw' (every shape once, every seed once)."""
    n = len(data.sizes)
    seeds = np.broadcast_to(np.arange(data.solved.shape[1]), (1, n, data.solved.shape[1]))
    seeds = np.minimum(seeds, data.sizes[:, None] - 1)
    return _summaries(data, np.arange(n)[None, :], seeds)


def two_stage(data: BudgetData, rng: np.random.Generator, resamples: int = RESAMPLES) -> Draws:
    """Shapes resampled with replacement, then seeds within each drawn shape."""
    n = len(data.sizes)
    shape_index = rng.integers(0, n, size=(resamples, n))
    uniform = rng.random((resamples, n, data.solved.shape[1]))
    seed_index = (uniform * data.sizes[shape_index][..., None]).astype(int)
    return _summaries(data, shape_index, seed_index)


def seeds_only(data: BudgetData, rng: np.random.Generator, resamples: int = RESAMPLES) -> Draws:
    """Seeds resampled within shapes, the shapes held fixed (the old, narrower interval)."""
    n = len(data.sizes)
    shape_index = np.broadcast_to(np.arange(n), (resamples, n))
    uniform = rng.random((resamples, n, data.solved.shape[1]))
    seed_index = (uniform * data.sizes[shape_index][..., None]).astype(int)
    return _summaries(data, shape_index, seed_index)


def leave_one_shape_out(draws: Draws) -> Draws:
    """Row 0 of ``draws`` (the observed data) with one shape left out per row."""
    n = draws.trials.shape[1]
    keep = np.array([[j for j in range(n) if j != i] for i in range(n)])

    def cut(a: np.ndarray) -> np.ndarray:
        return a[0][keep]

    return Draws(*(cut(getattr(draws, f)) for f in Draws.__dataclass_fields__))


# --------------------------------------------------------------------------------------
# Parts
# --------------------------------------------------------------------------------------

PARTS = {
    "solve": "how often seeds solve the task",
    "quality": "the final error of the seeds that solved",
    "floor": "a low quantile of every seed's final error (selection-free)",
    "metric": "the metric of every seed",
}


def _part_fit(part: str, columns: list[np.ndarray], draws: Draws) -> tuple[np.ndarray, np.ndarray]:
    """Coefficients (batch, p) and explained share (batch,) of one part's model."""
    design = _design(columns)
    if part == "solve":
        coef = logistic_fit(design, draws.successes.astype(float), draws.trials.astype(float))
        prob = special.expit(np.einsum("bsp,bp->bs", design, coef))
        rate = draws.successes.sum(axis=1, keepdims=True) / draws.trials.sum(axis=1, keepdims=True)
        null = binomial_deviance(draws.successes, draws.trials, np.broadcast_to(rate, prob.shape))
        deviance = binomial_deviance(draws.successes, draws.trials, prob)
        with np.errstate(invalid="ignore", divide="ignore"):
            return coef, 1 - deviance / null
    if part == "quality":
        y, weight = draws.mean_log_error, draws.successes.astype(float)
    elif part == "floor":
        y, weight = draws.low_quantile, draws.trials.astype(float)
    else:
        y, weight = draws.mean_value, draws.trials.astype(float)
    coef = least_squares_fit(design, y, weight)
    y = np.where(weight > 0, y, 0.0)
    fitted = np.einsum("bsp,bp->bs", design, coef)
    centre = (weight * y).sum(axis=1, keepdims=True) / weight.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = 1 - (weight * (y - fitted) ** 2).sum(axis=1) / (weight * (y - centre) ** 2).sum(
            axis=1
        )
    return coef, share


@dataclass(frozen=True)
class Effect:
    """One descriptor's effect on one part, in a model, over the descriptor's range."""

    part: str  # key of PARTS
    descriptor: str  # key of ``descriptors``
    model: tuple[str, ...]  # every descriptor in the model
    span: float  # the descriptor's range over the budget's shapes
    estimate: float  # coefficient x span: log odds (solve), log error (quality), metric units
    low: float  # BCa interval, shapes and seeds resampled
    high: float
    seed_low: float  # the interval with only seeds resampled (shapes held fixed)
    seed_high: float
    direction: Direction
    fragile: bool
    p_value: float = np.nan  # two-sided, of "no change", from inverting the BCa interval
    confidence: float = CONFIDENCE  # level of the intervals (a Holm level once adjusted)
    draws: np.ndarray = field(default=None, repr=False, compare=False)  # shapes and seeds
    seed_draws: np.ndarray = field(default=None, repr=False, compare=False)  # seeds only
    jackknife: np.ndarray = field(default=None, repr=False, compare=False)  # one shape out


def _direction(part: str, low: float, high: float, metric: Metric) -> Direction:
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 <= high:
        return Direction.UNDECIDED
    rising = low > 0
    better_when_rising = part == "solve" or (part == "metric" and metric.higher_is_better)
    return Direction.HELPS if rising == better_when_rising else Direction.HURTS


def is_fragile(low: float, high: float) -> bool:
    """A decided interval whose end nearest 0 is within FRAGILE_SHARE of its width from 0."""
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0 <= high:
        return False
    near = min(abs(low), abs(high))
    return bool(near < FRAGILE_SHARE * (high - low))


@dataclass(frozen=True)
class Part:
    """One part of the two-part model for one budget."""

    part: str  # key of PARTS
    explained: dict[str, float]  # descriptor -> share of the between-shape variation, alone
    best: str  # the descriptor that explains most
    best_stability: float  # share of bootstrap draws in which ``best`` also explains most
    best_effect: Effect  # the best descriptor alone
    front_alone: Effect | None  # front-loading alone (None when every shape has the same)
    front_adjusted: Effect | None  # front-loading beside ``best`` (None when best is front)
    best_adjusted: Effect | None  # ``best`` beside front-loading
    all_widths_explained: float  # share explained by every layer's width together
    # quality only: the same descriptor and front-loading on the tau-quantile of every seed's
    # error, which selection cannot fake (seeds are randomised; tau is below every shape's
    # solve rate, so the quantile lies among seeds that worked in every shape)
    tau: float = np.nan
    selection_free: Effect | None = None
    selection_free_front: Effect | None = None


def _effect(
    part: str,
    model: tuple[str, ...],
    which: int,
    table: dict[str, np.ndarray],
    fits: tuple[Draws, Draws, Draws],
    metric: Metric,
) -> Effect:
    point, boot, seeds = fits
    columns = [table[d] for d in model]
    span = float(np.ptp(table[model[which]]))
    estimate = (
        _part_fit(part, [c[point.shape_index] for c in columns], point)[0][0, which + 1] * span
    )
    draws = _part_fit(part, [c[boot.shape_index] for c in columns], boot)[0][:, which + 1] * span
    jack = leave_one_shape_out(point)
    jackknife = _part_fit(part, [c[jack.shape_index] for c in columns], jack)[0][:, which + 1]
    low, high = bca_interval(estimate, draws, jackknife * span)
    seed_draws = _part_fit(part, [c[seeds.shape_index] for c in columns], seeds)[0][:, which + 1]
    seed_low, seed_high = bca_interval(estimate, seed_draws * span, jackknife * span)
    return Effect(
        part=part,
        descriptor=model[which],
        model=model,
        span=span,
        estimate=float(estimate),
        low=low,
        high=high,
        seed_low=seed_low,
        seed_high=seed_high,
        direction=_direction(part, low, high, metric),
        fragile=is_fragile(low, high),
        p_value=bca_p_value(float(estimate), draws, jackknife * span),
        draws=draws,
        seed_draws=seed_draws * span,
        jackknife=jackknife * span,
    )


def fit_part(part: str, data: BudgetData, fits: tuple[Draws, Draws, Draws]) -> Part:
    """Which descriptor explains the part, its effect, and front-loading's beside it."""
    table = descriptors(data.widths, data.front, data.weights)
    point, boot, _ = fits
    names = list(table)
    explained = {
        d: float(_part_fit(part, [table[d][point.shape_index]], point)[1][0]) for d in names
    }
    best = max(
        names, key=lambda d: (np.nan_to_num(explained[d], nan=-np.inf), d == "front_loading")
    )
    boot_shares = np.column_stack(
        [_part_fit(part, [table[d][boot.shape_index]], boot)[1] for d in names]
    )
    winners = np.argmax(np.nan_to_num(boot_shares, nan=-np.inf), axis=1)
    stability = float(np.mean(winners == names.index(best)))
    widths = [d for d in names if d.startswith("log_w")]
    together = (
        float(_part_fit(part, [table[d][point.shape_index] for d in widths], point)[1][0])
        if widths
        else np.nan
    )
    metric = data.metric
    front = "front_loading" in table
    both = (best, "front_loading")
    return Part(
        part=part,
        explained=explained,
        best=best,
        best_stability=stability,
        best_effect=_effect(part, (best,), 0, table, fits, metric),
        front_alone=_effect(part, ("front_loading",), 0, table, fits, metric) if front else None,
        front_adjusted=(
            _effect(part, both, 1, table, fits, metric)
            if front and best != "front_loading"
            else None
        ),
        best_adjusted=(
            _effect(part, both, 0, table, fits, metric)
            if front and best != "front_loading"
            else None
        ),
        all_widths_explained=together,
        **(_selection_free(best, table, fits, data) if part == "quality" else {}),
    )


def _selection_free(
    best: str, table: dict[str, np.ndarray], fits: tuple[Draws, Draws, Draws], data: BudgetData
) -> dict[str, object]:
    """The quality part's check on the tau-quantile of every seed's error."""
    if not np.isfinite(data.tau):
        return {}
    metric = data.metric
    front = "front_loading" in table
    return {
        "tau": float(data.tau),
        "selection_free": _effect("floor", (best,), 0, table, fits, metric),
        "selection_free_front": (
            _effect("floor", ("front_loading",), 0, table, fits, metric) if front else None
        ),
    }


# --------------------------------------------------------------------------------------
# The typical seed's trend with front-loading (Spearman), shape-level BCa
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trend:
    """Spearman's rho over shapes with its shape-level BCa interval."""

    rho: float
    low: float
    high: float
    seed_low: float  # the interval with only seeds resampled
    seed_high: float
    p_value: float  # scipy's test of rho = 0 over the shapes' statistics (for reference)
    direction: Direction
    fragile: bool
    boot_p: float = np.nan  # two-sided, of rho = 0, from inverting the BCa interval
    confidence: float = CONFIDENCE  # level of the intervals (a Holm level once adjusted)
    draws: np.ndarray = field(default=None, repr=False, compare=False)
    seed_draws: np.ndarray = field(default=None, repr=False, compare=False)
    jackknife: np.ndarray = field(default=None, repr=False, compare=False)


def _spearman_rows(statistics: np.ndarray, front: np.ndarray) -> np.ndarray:
    """Spearman's rho of each row of ``statistics`` with the matching row of ``front``."""
    front = np.broadcast_to(front, statistics.shape)
    ranks = stats.rankdata(statistics, axis=1)
    ranks = ranks - ranks.mean(axis=1, keepdims=True)
    front_ranks = stats.rankdata(front, axis=1)
    front_ranks = front_ranks - front_ranks.mean(axis=1, keepdims=True)
    spread = np.sqrt((ranks**2).sum(axis=1) * (front_ranks**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (ranks * front_ranks).sum(axis=1) / spread


def trend(front: np.ndarray, fits: tuple[Draws, Draws, Draws], metric: Metric) -> Trend:
    """rho between front-loading and the shapes' typical seed, with shape-level BCa."""
    point, boot, seeds = fits
    rho = float(_spearman_rows(point.statistic, front[point.shape_index])[0])
    jack = leave_one_shape_out(point)
    jackknife = _spearman_rows(jack.statistic, front[jack.shape_index])
    draws = _spearman_rows(boot.statistic, front[boot.shape_index])
    seed_draws = _spearman_rows(seeds.statistic, front[seeds.shape_index])
    low, high = bca_interval(rho, draws, jackknife)
    seed_low, seed_high = bca_interval(rho, seed_draws, jackknife)
    p_value = float(stats.spearmanr(point.statistic[0], front).pvalue)
    direction = _direction("metric", low, high, metric)
    return Trend(
        rho,
        low,
        high,
        seed_low,
        seed_high,
        p_value,
        direction,
        is_fragile(low, high),
        boot_p=bca_p_value(rho, draws, jackknife),
        draws=draws,
        seed_draws=seed_draws,
        jackknife=jackknife,
    )


# --------------------------------------------------------------------------------------
# Per budget, and over training
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BudgetResult:
    """Everything placement says about one budget (data, not words)."""

    settings: dict[str, object]
    n_shapes: int
    n_seeds: int
    metric: Metric
    trend: Trend  # the typical seed against front-loading
    parts: tuple[Part, ...]  # solve and quality, or the one metric part
    over_training: tuple[tuple[int, Trend], ...] = field(default=())  # (iteration, trend)
    family_size: int = 0  # calls in the Holm family once ``adjust`` ran (0: unadjusted, 95%)

    @property
    def flips_over_training(self) -> bool:
        """Whether the trend's decided direction changes between the checked iterations."""
        words = {t.direction for _, t in self.over_training} - {Direction.UNDECIDED}
        return len(words) > 1


def analyse_budget(settings: dict[str, object], rows: pd.DataFrame, metric: Metric) -> BudgetResult:
    """The two-part model and the trend for one budget (fixed bootstrap seed)."""
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    data = budget_data(settings, rows, metric)
    fits = (observed(data), two_stage(data, rng), seeds_only(data, rng))
    if data.metric.higher_is_better or not data.solvable:
        parts = (fit_part("metric", data, fits),)
    else:
        parts = (fit_part("solve", data, fits), fit_part("quality", data, fits))
    return BudgetResult(
        settings=settings,
        n_shapes=len(data.sizes),
        n_seeds=int(data.sizes.sum()),
        metric=metric,
        trend=trend(data.front, fits, metric),
        parts=parts,
    )


def analyse(runs: pd.DataFrame, metric_name: str = "final_error") -> list[BudgetResult]:
    """Every budget with at least MIN_SHAPES shapes of depth 2 or more."""
    if "front_loading" not in runs:
        return []
    metric = METRICS[metric_name]
    out = []
    for settings, rows in budgets(runs):
        rows = rows[rows["front_loading"].notna()]
        if rows.empty or len(cells(rows)) < MIN_SHAPES or rows[metric.column].notna().sum() == 0:
            continue
        out.append(analyse_budget(settings, rows, metric))
    return out


def over_training(
    result: BudgetResult,
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    fractions: Sequence[float] = FRACTIONS,
) -> BudgetResult:
    """``result`` with the trend of the median training error margin at each fraction."""
    margin = Metric("error", "training error margin", False)
    rows = runs[runs["status"] != "failed"]
    for column, value in result.settings.items():
        rows = rows[rows[column].astype(str) == str(value)]
    rows = rows[rows["front_loading"].notna()]
    mine = curves.loc[
        curves["job"].isin(rows["job"].unique()), ["job", "seed", "iteration", "error"]
    ]
    if mine.empty:
        return result
    logged = np.sort(mine["iteration"].unique())
    iterations = int(rows["iterations"].iloc[0]) if "iterations" in rows else int(logged.max())
    labelled = mine.merge(rows.drop(columns=["error"], errors="ignore"), on=["job", "seed"])
    points = []
    for fraction in fractions:
        target = fraction * iterations
        at = logged[logged <= target].max() if (logged <= target).any() else logged.min()
        point = labelled[labelled["iteration"] == at].copy()
        point["error"] = schema.worst_when_diverged(point["error"])
        data = budget_data(result.settings, point, margin)
        rng = np.random.default_rng(BOOTSTRAP_SEED)
        fits = (observed(data), two_stage(data, rng), seeds_only(data, rng))
        points.append((int(at), trend(data.front, fits, margin)))
    return BudgetResult(**{**result.__dict__, "over_training": tuple(points)})


# --------------------------------------------------------------------------------------
# One error budget: every call of a report in one Holm family (the core's)
# --------------------------------------------------------------------------------------


def _at_level(x, confidence: float, metric: Metric):
    """An Effect or Trend with its intervals, call and fragility at ``confidence``."""
    estimate = x.estimate if isinstance(x, Effect) else x.rho
    low, high = bca_interval(estimate, x.draws, x.jackknife, confidence)
    seed_low, seed_high = bca_interval(estimate, x.seed_draws, x.jackknife, confidence)
    part = x.part if isinstance(x, Effect) else "metric"
    return replace(
        x,
        low=low,
        high=high,
        seed_low=seed_low,
        seed_high=seed_high,
        confidence=confidence,
        direction=_direction(part, low, high, metric),
        fragile=is_fragile(low, high),
    )


_CALLS = ("best_effect", "front_alone", "front_adjusted", "selection_free", "selection_free_front")


def adjust(results: Sequence[BudgetResult], alpha: float = core.ALPHA) -> list[BudgetResult]:
    """Per budget, every call its answer makes (each part's best descriptor, front-loading
    alone and beside it, the selection-free checks, the typical seed's rho) in one Holm
    family at ``alpha`` (``core.holm_levels``), as a sweep's verdict is one family: each
    interval is recomputed at its Holm level, so it excludes no change exactly when the
    call is made."""
    members = []  # (budget index, part index or None, attribute)
    for i, r in enumerate(results):
        members.append((i, None, "trend"))
        for j, p in enumerate(r.parts):
            members += [(i, j, name) for name in _CALLS if getattr(p, name) is not None]

    def get(member):
        i, j, name = member
        return results[i].trend if j is None else getattr(results[i].parts[j], name)

    p_values = np.array(
        [get(m).p_value if j is not None else get(m).boot_p for m in members for j in (m[1],)]
    )
    budget = np.array([m[0] for m in members])
    levels = np.empty(len(members))
    for i in range(len(results)):
        levels[budget == i] = core.holm_levels(p_values[budget == i], alpha)
    out = [replace(r) for r in results]
    parts = [list(r.parts) for r in results]
    trends = [r.trend for r in results]
    for member, level in zip(members, levels, strict=True):
        i, j, name = member
        confidence = 1 - level if np.isfinite(level) else 1 - alpha
        adjusted = _at_level(get(member), confidence, results[i].metric)
        if j is None:
            trends[i] = adjusted
        else:
            parts[i][j] = replace(parts[i][j], **{name: adjusted})
    return [
        replace(r, parts=tuple(parts[i]), trend=trends[i], family_size=int(np.sum(budget == i)))
        for i, r in enumerate(out)
    ]


# --------------------------------------------------------------------------------------
# Tables (for CSV files and report tables)
# --------------------------------------------------------------------------------------


def _settings_columns(result: BudgetResult) -> dict[str, object]:
    return {
        k: result.settings[k] for k in ("dataset", "total_neurons", "depth") if k in result.settings
    }


def trends_table(results: Sequence[BudgetResult]) -> pd.DataFrame:
    """One row per budget: the typical seed's rho with both intervals, and each part's
    best descriptor with its effect and front-loading's effect beside it."""
    rows = []
    for r in results:
        row = {
            **_settings_columns(r),
            "n_shapes": r.n_shapes,
            "n_seeds": r.n_seeds,
            "metric": r.metric.column,
            "rho": r.trend.rho,
            "rho_ci_low": r.trend.low,
            "rho_ci_high": r.trend.high,
            "rho_seed_ci_low": r.trend.seed_low,
            "rho_seed_ci_high": r.trend.seed_high,
            "rho_direction": r.trend.direction.value,
            "rho_fragile": r.trend.fragile or r.flips_over_training,
        }
        for p in r.parts:
            row[f"{p.part}_best"] = p.best
            row[f"{p.part}_best_explained"] = p.explained[p.best]
            row[f"{p.part}_best_stability"] = p.best_stability
            row[f"{p.part}_front_explained"] = p.explained.get("front_loading", np.nan)
            row[f"{p.part}_widths_explained"] = p.all_widths_explained
            if p.selection_free is not None:
                row["selection_free_tau"] = p.tau
                row["selection_free_effect"] = p.selection_free.estimate
                row["selection_free_ci_low"] = p.selection_free.low
                row["selection_free_ci_high"] = p.selection_free.high
                row["selection_free_direction"] = p.selection_free.direction.value
            for name, effect in (
                ("best", p.best_effect),
                ("front", p.front_alone),
                ("front_adjusted", p.front_adjusted),
            ):
                if effect is None:
                    continue
                row[f"{p.part}_{name}_effect"] = effect.estimate
                row[f"{p.part}_{name}_ci_low"] = effect.low
                row[f"{p.part}_{name}_ci_high"] = effect.high
                row[f"{p.part}_{name}_direction"] = effect.direction.value
                row[f"{p.part}_{name}_fragile"] = effect.fragile
        rows.append(row)
    return pd.DataFrame(rows)


def descriptors_table(results: Sequence[BudgetResult]) -> pd.DataFrame:
    """One row per budget, part and descriptor: the share of the between-shape variation it
    explains alone (binomial deviance for the solve part, weighted R^2 otherwise)."""
    rows = []
    for r in results:
        for p in r.parts:
            for name, share in p.explained.items():
                rows.append(
                    {
                        **_settings_columns(r),
                        "part": p.part,
                        "descriptor": name,
                        "explained": share,
                        "best": name == p.best,
                    }
                )
    return pd.DataFrame(rows)


def over_training_table(results: Sequence[BudgetResult]) -> pd.DataFrame:
    """One row per budget and checked iteration: rho of the median training error."""
    rows = []
    for r in results:
        iterations = float(r.settings.get("iterations", np.nan))
        for iteration, t in r.over_training:
            rows.append(
                {
                    **_settings_columns(r),
                    "fraction": iteration / iterations if iterations else np.nan,
                    "iteration": iteration,
                    "rho": t.rho,
                    "rho_ci_low": t.low,
                    "rho_ci_high": t.high,
                    "direction": t.direction.value,
                }
            )
    return pd.DataFrame(rows)
