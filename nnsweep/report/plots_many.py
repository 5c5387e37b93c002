"""Figures that stay readable with many cells (20 and more), and the placement figures.

Each function returns a new matplotlib Figure drawn from stored tables; saving is the
report's job. Companion of ``plots`` (which owns colours and the per-cell figures):

* ``ranked_dots``: one row per cell, best at the top, the median with its CI and the
  compact letters at the right: the many-cell replacement for overlaid boxes or lines;
* ``pairwise_matrix``: P(row < column) for every pair, ordered by median, with numbers in
  the squares only while they fit (12 cells or fewer) and a dot on the pairs told apart;
* ``placement_panels``: per budget, each shape's statistic against its front-loading, labels
  on the points, colour by weight count;
* ``descriptor_bars``: per budget and part, the share of the between-shape variation each
  shape descriptor explains alone;
* ``trend_over_training``: the rank correlation with its CI at each checked iteration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from nnsweep import schema
from nnsweep.report.render import new_figure, plain_text
from nnsweep.stats.grouping import letter_ranges

MAX_TEXT_CELLS = 12  # above this many cells the matrix shows colour only, no numbers
NEUTRAL = "#0072B2"  # Okabe-Ito blue, for figures where cells are rows, not colours


def _log_if_positive(ax: Axes, values: np.ndarray, axis: str = "x") -> None:
    """A log axis with plain tick labels (0.002, 0.01) when the values span over 3x."""
    finite = values[np.isfinite(values)]
    if not (len(finite) and finite.min() > 0 and finite.max() / finite.min() > 3):
        return
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_major_locator(ticker.LogLocator(base=10, subs=(1, 2, 5)))
    target.set_major_formatter(ticker.FuncFormatter(lambda value, _: f"{value:g}"))
    target.set_minor_formatter(ticker.NullFormatter())


@plain_text
def ranked_dots(
    cells: pd.DataFrame,
    letters: Mapping[str, str] | None = None,
    what: str = "final error margin",
    colours: Mapping[str, str] | None = None,
) -> Figure:
    """Median (dot), its 95% CI (thick bar) and IQR (thin bar) per cell, best at the top.

    ``cells`` is ``per_cell.cell_statistics``'s table (cell, median, ci_low, ci_high, q1,
    q3), best first. Letters, if given, are printed right of each row.
    """
    n_cells = len(cells)
    figure, ax = new_figure(figsize=(8.5, 1.2 + 0.28 * n_cells), layout="constrained")
    rows = np.arange(n_cells)[::-1]  # best at the top
    for row, cell in zip(rows, cells.itertuples(), strict=True):
        colour = (colours or {}).get(cell.cell, NEUTRAL)
        ax.plot([cell.q1, cell.q3], [row, row], color="#b0b0b0", lw=1.2, zorder=1)
        ax.plot([cell.ci_low, cell.ci_high], [row, row], color=colour, lw=3.2, zorder=2)
        ax.plot(cell.median, row, "o", color=colour, ms=5.5, zorder=3)
    values = cells[["q1", "q3", "ci_low", "ci_high", "median"]].to_numpy(dtype=float)
    _log_if_positive(ax, values.ravel())
    ax.set_yticks(rows)
    ax.set_yticklabels(cells["cell"], fontsize=8 if n_cells > 20 else 9)
    ax.set_ylim(-0.7, n_cells - 0.3)
    ax.set_xlabel(f"{what}: median (dot), 95% CI (thick), interquartile range (grey)")
    ax.set_title(f"Cells ranked by median {what}, best at the top")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    if letters:
        for row, cell in zip(rows, cells["cell"], strict=True):
            ax.annotate(
                letter_ranges(letters.get(cell, "")),
                xy=(1.0, row),
                xycoords=("axes fraction", "data"),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=8,
                family="monospace",
            )
        ax.annotate(
            "group",
            xy=(1.0, 1.0),
            xycoords="axes fraction",
            xytext=(6, 2),
            textcoords="offset points",
            fontsize=8,
            va="bottom",
        )
    return figure


def matrix_values(pairs: pd.DataFrame, order: Sequence[str]) -> np.ndarray:
    """P(row cell < column cell) as a square array in ``order`` (NaN on the diagonal).

    Reads the verdict's long table: its rows with part "pooled", column ``estimate``.
    """
    pairs = pairs[pairs["part"] == "pooled"]
    index = {cell: i for i, cell in enumerate(order)}
    matrix = np.full((len(order), len(order)), np.nan)
    for row in pairs.itertuples():
        i, j = index[row.a], index[row.b]
        value = row.estimate
        matrix[i, j], matrix[j, i] = value, 1.0 - value
    return matrix


@plain_text
def pairwise_matrix(
    pairs: pd.DataFrame, order: Sequence[str], separated: set[frozenset[str]]
) -> Figure:
    """The pairwise effect sizes as a matrix, ordered by median (best first).

    Up to ``MAX_TEXT_CELLS`` cells each square carries its number and a * when the pair is
    told apart; beyond, numbers would not fit, so a small dot marks told-apart pairs.
    """
    size = len(order)
    matrix = matrix_values(pairs, order)
    side = min(11.0, max(5.0, 0.42 * size + 3.0))
    figure, ax = new_figure(figsize=(side + 1.2, side), layout="constrained")
    image = ax.imshow(matrix, cmap="RdBu", vmin=0, vmax=1)
    with_text = size <= MAX_TEXT_CELLS
    for i in range(size):
        for j in range(size):
            if i == j or not np.isfinite(matrix[i, j]):
                continue
            apart = frozenset((order[i], order[j])) in separated
            dark = abs(matrix[i, j] - 0.5) > 0.3  # deep red or blue: white reads
            colour = "white" if dark else "black"
            if with_text:
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}{'*' if apart else ''}",
                    ha="center",
                    va="center",
                    fontsize=8,
                    color=colour,
                )
            elif apart:
                ax.plot(j, i, ".", color=colour, ms=3)
    labels_size = 8 if size <= 16 else 7
    ax.set_xticks(range(size))
    ax.set_yticks(range(size))
    ax.set_xticklabels(order, rotation=90, fontsize=labels_size)
    ax.set_yticklabels(order, fontsize=labels_size)
    ax.set_xlabel("cell B (ordered by median, best first)")
    ax.set_ylabel("cell A")
    mark = "*" if with_text else "a dot"
    ax.set_title(f"P(seed of A ends below seed of B); {mark} = told apart")
    figure.colorbar(image, ax=ax, label="P(A < B)", shrink=0.8)
    return figure


def _shape_statistics(runs: pd.DataFrame, column: str, higher_is_better: bool) -> pd.DataFrame:
    values = schema.worst_when_diverged(runs[column], runs["status"] == "ok", higher_is_better)
    grouped = values.groupby(runs["layers"], sort=False)
    table = pd.DataFrame(
        {
            "statistic": grouped.mean() if higher_is_better else grouped.median(),
            "low": grouped.quantile(0.25),
            "high": grouped.quantile(0.75),
        }
    )
    first = runs.groupby("layers", sort=False)[["front_loading", "n_weights"]].first()
    return table.join(first).reset_index()


@plain_text
def placement_panels(
    budgets: Sequence[tuple[str, pd.DataFrame]],
    column: str,
    label: str,
    higher_is_better: bool,
) -> Figure:
    """One panel per budget: each shape's statistic against its front-loading.

    ``budgets`` holds (title, runs of that budget). The
    statistic is the median (or, for accuracy, the mean) with the seeds' interquartile range
    as a bar; each point is labelled with its shape and coloured by its weight count.
    """
    count = len(budgets)
    columns = min(count, 2)
    rows = -(-count // columns)
    figure, axes = new_figure(
        rows, columns, figsize=(6.4 * columns, 4.6 * rows), layout="constrained", squeeze=False
    )
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    weights = pd.concat([b[1]["n_weights"] for b in budgets])
    norm = Normalize(weights.min(), weights.max())
    scatter = None
    for ax, (title, runs) in zip(flat, budgets, strict=False):
        table = _shape_statistics(runs, column, higher_is_better)
        ax.vlines(table["front_loading"], table["low"], table["high"], color="#c8c8c8", lw=1)
        scatter = ax.scatter(
            table["front_loading"],
            table["statistic"],
            c=table["n_weights"],
            cmap="viridis",
            norm=norm,
            s=36,
            zorder=3,
            edgecolors="black",
            linewidths=0.4,
        )
        for row in table.itertuples():
            ax.annotate(
                row.layers,
                (row.front_loading, row.statistic),
                xytext=(4, 2),
                textcoords="offset points",
                fontsize=6.5,
                color="#333333",
            )
        if not higher_is_better:
            _log_if_positive(ax, table[["statistic", "low", "high"]].to_numpy().ravel(), "y")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("front-loading (0 = all neurons last, 1 = all first)")
        statistic = "mean" if higher_is_better else "median"
        ax.set_ylabel(f"{statistic} {label} (bar: seeds' IQR)")
        ax.grid(True, alpha=0.3)
    if scatter is not None:
        figure.colorbar(scatter, ax=flat[:count], label="weights (incl. biases if any)", shrink=0.7)
    return figure


DESCRIPTOR_LABELS = {
    "front_loading": "front-loading",
    "log_narrowest": "narrowest width",
    "log_weights": "weight count",
}


@plain_text
def descriptor_bars(table: pd.DataFrame) -> Figure:
    """One panel per budget: for each part, a bar per descriptor with the share of the
    between-shape variation it explains alone (``placement.descriptors_table``); the best
    descriptor's bar is outlined."""
    keys = table[["dataset", "total_neurons"]].drop_duplicates()
    count = len(keys)
    columns = min(count, 2)
    rows = -(-count // columns)
    figure, axes = new_figure(
        rows, columns, figsize=(6.4 * columns, 3.4 * rows), layout="constrained", squeeze=False
    )
    flat = list(axes.ravel())
    for ax in flat[count:]:
        ax.set_visible(False)
    colours = {"solve": "#0072B2", "quality": "#E69F00", "metric": "#009E73"}
    names = {"solve": "solve rate", "quality": "error of the solved", "metric": "metric"}
    for ax, key in zip(flat, keys.itertuples(index=False), strict=False):
        mine = table[
            (table["dataset"] == key.dataset) & (table["total_neurons"] == key.total_neurons)
        ]
        descriptors = list(dict.fromkeys(mine["descriptor"]))
        parts = list(dict.fromkeys(mine["part"]))
        width = 0.8 / len(parts)
        for k, part in enumerate(parts):
            rows_ = mine[mine["part"] == part].set_index("descriptor").reindex(descriptors)
            x = np.arange(len(descriptors)) + (k - (len(parts) - 1) / 2) * width
            ax.bar(
                x,
                rows_["explained"].clip(lower=0),
                width,
                color=colours.get(part, NEUTRAL),
                edgecolor=["black" if b else "none" for b in rows_["best"].fillna(False)],
                linewidth=1.5,
                label=names.get(part, part),
            )
        ax.set_xticks(np.arange(len(descriptors)))
        ax.set_xticklabels(
            [DESCRIPTOR_LABELS.get(d, d.replace("log_w", "width ")) for d in descriptors],
            rotation=30,
            ha="right",
            fontsize=8,
        )
        ax.set_ylim(0, 1)
        ax.set_ylabel("share explained alone")
        ax.set_title(f"{key.dataset}, {key.total_neurons} neurons", fontsize=9)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize="small")
    return figure


@plain_text
def trend_over_training(over: pd.DataFrame) -> Figure:
    """Spearman's rho (front-loading vs the cells' median training error) with its 95% CI
    at each checked iteration, one line per budget."""
    figure, ax = new_figure(figsize=(7.5, 4.2), layout="constrained")
    styles = ("-", "--", ":", "-.")
    colours = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
    keys = over[["dataset", "total_neurons", "depth"]].drop_duplicates()
    for index, key in enumerate(keys.itertuples(index=False)):
        mine = over[
            (over["dataset"] == key.dataset)
            & (over["total_neurons"] == key.total_neurons)
            & (over["depth"] == key.depth)
        ].sort_values("fraction")
        colour = colours[index % len(colours)]
        ax.fill_between(
            mine["fraction"] * 100,
            mine["rho_ci_low"],
            mine["rho_ci_high"],
            color=colour,
            alpha=0.12,
            lw=0,
        )
        ax.plot(
            mine["fraction"] * 100,
            mine["rho"],
            marker="o",
            color=colour,
            ls=styles[(index // len(colours)) % len(styles)],
            label=f"{key.dataset}, {key.total_neurons} neurons",
        )
    ax.axhline(0, color="black", lw=0.8)
    ax.set_ylim(-1, 1)
    ax.set_xlabel("% of the training iterations")
    ax.set_ylabel("ρ(front-loading, median training error)")
    ax.set_title("Does the trend hold over training? (band: 95% CI; above 0 = front-loading hurts)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small", loc="best")
    return figure
