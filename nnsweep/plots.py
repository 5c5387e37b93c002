"""Figures. Each function draws one DataFrame onto one Axes; saving is the report's job.

The Agg backend is selected before pyplot is imported: reports are made without a screen.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

# Enough distinct colours for the 12 cells a figure is designed to show.
PALETTE = plt.get_cmap("tab20").colors[::2] + plt.get_cmap("tab20").colors[1::2]


def colour(index: int) -> tuple[float, float, float]:
    return PALETTE[index % len(PALETTE)]


def _finite_positive(values: pd.Series | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array) & (array > 0)]


def learning_curves(bands: pd.DataFrame, order: list[str], ax: Axes) -> None:
    """Median error margin per cell against iteration, with the IQR as a band (log scale).

    ``bands`` has columns cell, iteration, q1, median, q3 (see ``analysis.curve_bands``).
    """
    for index, cell in enumerate(order):
        band = bands[bands["cell"] == cell].sort_values("iteration")
        if band.empty:
            continue
        style = ("-", "--", ":", "-.")[index % 4]  # overlapping medians stay distinguishable
        ax.plot(
            band["iteration"], band["median"], color=colour(index), label=cell, lw=1.6, ls=style
        )
        ax.fill_between(
            band["iteration"], band["q1"], band["q3"], color=colour(index), alpha=0.18, lw=0
        )
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel("error margin, mean |target - output|")
    ax.set_title("Learning curves: median over seeds, band = interquartile range")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(title="cell", fontsize="small", ncol=1 + len(order) // 7, loc="upper right")


def final_errors(
    runs: pd.DataFrame,
    order: list[str],
    ax: Axes,
    column: str = "final_error",
    what: str = "final error margin",
) -> None:
    """Box per cell plus every seed as a dot, log scale, cells ordered best first.

    ``runs`` needs columns cell, status and ``column``; diverged seeds are drawn as red
    crosses on the top edge.
    """
    data = [_finite_positive(runs.loc[runs["cell"] == cell, column]) for cell in order]
    positions = np.arange(1, len(order) + 1)
    ax.boxplot(
        data,
        positions=positions,
        widths=0.55,
        showfliers=False,
        medianprops={"lw": 2, "color": "black"},
    )
    jitter = np.random.default_rng(0)
    for position, values, index in zip(positions, data, range(len(order)), strict=True):
        offsets = jitter.uniform(-0.18, 0.18, size=len(values))
        ax.scatter(position + offsets, values, s=9, alpha=0.55, color=colour(index), zorder=3)
    ax.set_yscale("log")
    top = max((v.max() for v in data if len(v)), default=1.0)
    for position, cell in zip(positions, order, strict=True):
        diverged = int(((runs["cell"] == cell) & (runs["status"] == "diverged")).sum())
        if diverged:
            ax.scatter([position], [top * 1.5], marker="x", color="red", zorder=4)
            ax.annotate(
                f"{diverged} diverged",
                (position, top * 1.5),
                fontsize=7,
                ha="center",
                va="bottom",
                color="red",
            )
    ax.set_xticks(positions)
    ax.set_xticklabels(
        order, rotation=30 if len(order) > 4 else 0, ha="right" if len(order) > 4 else "center"
    )
    ax.set_xlabel(f"cell (ordered by median {what}, best first)")
    ax.set_ylabel(f"{what} (log scale)")
    ax.set_title(f"{what[0].upper()}{what[1:]} of every seed")
    ax.grid(True, axis="y", which="major", alpha=0.3)


def pairwise_matrix(pairs: pd.DataFrame, order: list[str], ax: Axes) -> None:
    """P(row < column) for every ordered pair; * marks Holm-significant pairs."""
    size = len(order)
    index = {cell: i for i, cell in enumerate(order)}
    matrix = np.full((size, size), np.nan)
    marks = np.full((size, size), "", dtype=object)
    for row in pairs.itertuples():
        i, j = index[row.a], index[row.b]
        matrix[i, j], matrix[j, i] = row.p_a_below_b, 1.0 - row.p_a_below_b
        if row.significant:
            marks[i, j] = marks[j, i] = "*"
    image = ax.imshow(matrix, cmap="RdBu", vmin=0, vmax=1)
    for i in range(size):
        for j in range(size):
            if i != j and np.isfinite(matrix[i, j]):
                dark = abs(matrix[i, j] - 0.5) > 0.3  # deep red or blue: white text reads
                ax.text(
                    j,
                    i,
                    f"{matrix[i, j]:.2f}{marks[i, j]}",
                    ha="center",
                    va="center",
                    fontsize=8 if size <= 8 else 7,
                    color="white" if dark else "black",
                )
    ax.set_xticks(range(size))
    ax.set_yticks(range(size))
    ax.set_xticklabels(order, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(order, fontsize=8)
    ax.set_xlabel("cell B")
    ax.set_ylabel("cell A")
    ax.set_title("P(seed of A ends below seed of B); * = significant after Holm")
    ax.figure.colorbar(image, ax=ax, label="P(A < B)", shrink=0.8)


def heatmap(cells: pd.DataFrame, x: str, y: str, ax: Axes) -> None:
    """Median final error over a grid of two swept settings (log colour scale)."""
    from matplotlib.colors import LogNorm

    grid = cells.pivot_table(index=y, columns=x, values="median", aggfunc="first")
    values = grid.to_numpy(dtype=float)
    finite = values[np.isfinite(values) & (values > 0)]
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size else None
    image = ax.imshow(
        np.where(np.isfinite(values), values, np.nan), cmap="viridis_r", norm=norm, aspect="auto"
    )
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            text = f"{values[i, j]:.2g}" if np.isfinite(values[i, j]) else "-"
            # viridis_r runs from light (low error) to dark (high error): pick a text colour
            # that stands out from the cell.
            light = norm is not None and np.isfinite(values[i, j]) and norm(values[i, j]) < 0.5
            colour_name = "black" if light else "white"
            ax.text(j, i, text, ha="center", va="center", fontsize=9, color=colour_name)
    ax.set_xticks(range(len(grid.columns)))
    ax.set_xticklabels([str(c) for c in grid.columns], rotation=30, ha="right")
    ax.set_yticks(range(len(grid.index)))
    ax.set_yticklabels([str(i) for i in grid.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title("Median final error margin")
    ax.figure.colorbar(image, ax=ax, label="median final error margin")


def new_figure(n_cells: int, kind: str) -> tuple[Figure, Axes]:
    """A figure sized so that up to 12 cells stay readable."""
    if kind == "matrix" or kind == "heatmap":
        side = max(5.0, 0.75 * n_cells + 2.5)
        figure, ax = plt.subplots(figsize=(side + 1.5, side), layout="constrained")
    else:
        figure, ax = plt.subplots(figsize=(max(7.5, 0.9 * n_cells + 3), 5.0), layout="constrained")
    return figure, ax


def auto_intervals(rounds: pd.DataFrame, margin: tuple[float, float]) -> Figure:
    """An auto sweep's pairs, one panel each: P(A<B) and its interval after every round.

    ``rounds`` is ``auto_report.rounds_table``: one row per (round, pair). A pair is drawn up
    to the round that decided it; later rounds no longer test it.
    """
    judged = rounds.dropna(subset=["estimate"])
    judged = judged[(judged["decided_look"] == 0) | (judged["round"] <= judged["decided_look"])]
    pairs = list(dict.fromkeys(zip(judged["a"], judged["b"], strict=True)))
    n_panels = max(1, len(pairs))
    figure, axes = plt.subplots(
        1, n_panels, figsize=(max(6.0, 3.6 * n_panels), 4.2), squeeze=False, sharey=True,
        layout="constrained",
    )  # fmt: skip
    most = float(judged[["n_a", "n_b"]].min(axis=1).max()) if len(judged) else 1.0
    for ax, (a, b) in zip(axes[0], pairs, strict=False):
        rows = judged[(judged["a"] == a) & (judged["b"] == b)]
        seeds = rows[["n_a", "n_b"]].min(axis=1).to_numpy()
        estimate = rows["estimate"].to_numpy()
        errors = [estimate - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - estimate]
        ax.axhspan(margin[0], margin[1], color="0.9", zorder=0)
        for level, style in ((0.5, "--"), (margin[0], ":"), (margin[1], ":")):
            ax.axhline(level, color="0.5", linestyle=style, linewidth=1, zorder=1)
        ax.errorbar(seeds, estimate, yerr=errors, fmt="o-", color="0.35", mfc="white", capsize=3)
        decided = rows[rows["decided_now"].astype(bool)]
        ax.plot(
            decided[["n_a", "n_b"]].min(axis=1), decided["estimate"], "o", color="#D55E00",
            markersize=8, zorder=4,
        )  # fmt: skip
        outcome = str(rows["decision"].iloc[-1]).replace("_", " ")
        outcome = {"a better": f"{a} lower", "b better": f"{b} lower"}.get(outcome, outcome)
        ax.set_title(f"{a} vs {b}: {outcome}")
        ax.set_xlabel("seeds per cell")
        ax.set_xlim(0, most * 1.08)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("P(A<B), interval at the round's alpha")
    return figure
