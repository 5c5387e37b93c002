"""Figures. Each function draws stored tables into a new Figure; saving is the report's job.

Choices, stated once:
* One ``CellStyle`` per cell, made once per report by ``cell_styles`` and passed to every
  figure, so a cell has the same colour in all of them. Colours are Okabe and Ito's
  colour-blind-safe palette; past its 7 colours they repeat with another line style and marker.
* More than ``MAX_OVERLAID`` cells on one axes cannot be told apart, so curve figures then
  become small multiples: one panel per cell, the other cells' medians in grey behind it.
* Every label is plain text: no TeX, no mathtext, so a ``$`` in a cell name prints as ``$``.
  Log axes get plain tick labels (0.001, 1e-05) and, on a range under a decade, more ticks.

Figures are made without pyplot (``render.new_figure``), so importing this module leaves a
notebook's backend and rcParams alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
import pandas as pd
from matplotlib import ticker
from matplotlib.axes import Axes
from matplotlib.colors import LogNorm, to_hex
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from nnsweep import schema
from nnsweep.report.render import new_figure, plain_text

# Okabe & Ito (2008), "Color Universal Design": distinct under the common colour-vision
# deficiencies. Its yellow is left out: thin lines and small dots of it vanish on white.
PALETTE = (
    "#0072B2",  # blue
    "#E69F00",  # orange
    "#009E73",  # bluish green
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
    "#56B4E9",  # sky blue
    "#000000",  # black
)
LINESTYLES = ("-", "--", ":", "-.")  # the second cue, once the palette has been used up
MARKERS = ("o", "s", "^", "D")
MAX_OVERLAID = 8  # cells one axes can show apart; beyond, small multiples
GREY = "#b0b0b0"
SEED1_COLOUR = "#222222"


@dataclass(frozen=True)
class CellStyle:
    """How one cell is drawn in every figure of a report."""

    colour: str  # hex, from PALETTE
    linestyle: str  # matplotlib line style
    marker: str  # matplotlib marker


def cell_styles(cells: Sequence[str]) -> dict[str, CellStyle]:
    """The report's one mapping from cell to style: the i-th cell gets the i-th colour; past
    the palette, colours repeat with the next line style and marker."""
    styles = {}
    for index, cell in enumerate(dict.fromkeys(cells)):
        cycle, slot = divmod(index, len(PALETTE))
        styles[cell] = CellStyle(
            PALETTE[slot], LINESTYLES[cycle % len(LINESTYLES)], MARKERS[cycle % len(MARKERS)]
        )
    return styles


# --------------------------------------------------------------------------------------
# Axes helpers
# --------------------------------------------------------------------------------------


def _plain_number(value: float, _position: object = None) -> str:
    return f"{value:g}"


TICK_MANTISSAS = ((1,), (1, 2, 5), (1, 1.5, 2, 3, 5, 7), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))


def readable_log_axis(axis: matplotlib.axis.Axis, values: np.ndarray) -> None:
    """Plain tick labels on a log axis, at least 4 of them whatever the data's span: decades,
    then 1-2-5 steps, then finer steps, then evenly spaced ticks on a very narrow range."""
    values = _finite_positive(values)
    axis.set_minor_formatter(ticker.NullFormatter())
    if not len(values):
        axis.set_major_formatter(ticker.FuncFormatter(_plain_number))
        return
    low, high = values.min(), values.max()
    decades = range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
    for mantissas in TICK_MANTISSAS:
        ticks = [m * 10.0**k for k in decades for m in mantissas if low <= m * 10.0**k <= high]
        if len(ticks) >= 4:
            axis.set_major_locator(ticker.FixedLocator(ticks))
            break
    else:
        axis.set_major_locator(ticker.MaxNLocator(nbins=5))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:.3g}"))


def _iteration_axis(ax: Axes, first_logged: float, last: float) -> None:
    """Symmetric-log iterations: linear up to the first logged point, logarithmic after, so
    the first few thousand iterations, where most happens, get most of the width."""
    linthresh = max(first_logged, 1.0)
    ax.set_xscale("symlog", linthresh=linthresh, linscale=0.4)
    decades = 10.0 ** np.arange(np.ceil(np.log10(linthresh)), np.floor(np.log10(last * 1.02)) + 1)
    ax.set_xticks([0.0, *decades] if last > 0 else [0.0])
    ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:,.0f}"))
    ax.xaxis.set_minor_formatter(ticker.NullFormatter())


def _finite_positive(values: pd.Series | np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[np.isfinite(array) & (array > 0)]


def _panels(n_cells: int, width: float = 12.0) -> tuple[Figure, list[Axes]]:
    """A grid of small multiples, one panel per cell, sharing both axes."""
    columns = min(n_cells, 5 if n_cells > 12 else 4 if n_cells > 6 else 3)
    rows = -(-n_cells // columns)
    figure, axes = new_figure(
        rows,
        columns,
        figsize=(width, 2.3 * rows + 0.8),
        sharex=True,
        sharey=True,
        layout="constrained",
        squeeze=False,
    )
    flat = list(axes.ravel())
    for ax in flat[n_cells:]:
        ax.set_visible(False)
    return figure, flat[:n_cells]


def _legend_handles(styles: Mapping[str, CellStyle], order: Sequence[str]) -> list[Line2D]:
    return [
        Line2D([], [], color=styles[c].colour, ls=styles[c].linestyle, lw=2, label=c) for c in order
    ]


# --------------------------------------------------------------------------------------
# Learning curves
# --------------------------------------------------------------------------------------


def _quartiles(frame: pd.DataFrame) -> pd.DataFrame:
    bands = frame.groupby("iteration")["error"].quantile([0.25, 0.5, 0.75]).unstack()
    bands.columns = ["q1", "median", "q3"]
    return bands.reset_index()


def _split_modes(cell_curves: pd.DataFrame, split: bool) -> list[tuple[str, pd.DataFrame]]:
    """The cell's seeds as one group, or as solved and not solved when both are common
    enough that one median and band would hide two modes."""
    seeds = cell_curves.drop_duplicates("seed")
    n_solved, n_seeds = int(seeds["solved"].sum()), len(seeds)
    smallest = max(3, int(0.05 * n_seeds))
    if split and min(n_solved, n_seeds - n_solved) >= smallest:
        return [
            (f"solved ({n_solved})", cell_curves[cell_curves["solved"]]),
            (f"not solved ({n_seeds - n_solved})", cell_curves[~cell_curves["solved"]]),
        ]
    return [("", cell_curves)]


@plain_text
def learning_curves(
    curves: pd.DataFrame,
    order: Sequence[str],
    styles: Mapping[str, CellStyle],
    threshold: float | None = None,
    split_solved: bool = True,
) -> Figure:
    """Median error margin per cell against iteration (symlog), the IQR as a band.

    ``curves`` has one row per (seed, logged iteration) with columns cell, seed, iteration,
    error and solved; diverged points are +inf. Where a cell has both solved and unsolved
    seeds in numbers, their medians are drawn apart (unsolved dashed, no band). With more
    than ``MAX_OVERLAID`` cells: one panel per cell, every seed drawn thinly.
    """
    curves = curves.assign(error=schema.worst_when_diverged(curves["error"]))
    logged = np.sort(curves["iteration"].unique())
    first_logged = float(logged[1]) if len(logged) > 1 else 1.0
    if len(order) > MAX_OVERLAID:
        return _learning_curve_panels(curves, order, styles, threshold, first_logged)
    figure, ax = new_figure(figsize=(9.5, 5.2), layout="constrained")
    handles = []
    for cell in order:
        style = styles[cell]
        for mode, group in _split_modes(curves[curves["cell"] == cell], split_solved):
            band = _quartiles(group)
            unsolved = mode.startswith("not")
            label = f"{cell}, {mode}" if mode else cell
            (line,) = ax.plot(
                band["iteration"],
                band["median"],
                color=style.colour,
                gid=cell,
                ls=":" if unsolved else style.linestyle,
                lw=1.3 if unsolved else 2.0,
                label=label,
            )
            handles.append(line)
            if not unsolved:
                ax.fill_between(
                    band["iteration"],
                    band["q1"],
                    band["q3"],
                    color=style.colour,
                    gid=cell,
                    alpha=0.15,
                    lw=0,
                )
    _finish_curves(ax, curves, threshold, first_logged)
    if threshold is not None:
        handles.append(Line2D([], [], color="grey", ls=(0, (4, 3)), lw=1, label="threshold"))
    ax.legend(handles=handles, fontsize="small", loc="upper right", ncol=1 + len(handles) // 9)
    ax.set_title("Learning curves: median over seeds, band = interquartile range")
    return figure


def _finish_curves(
    ax: Axes, curves: pd.DataFrame, threshold: float | None, first_logged: float
) -> None:
    _iteration_axis(ax, first_logged, float(curves["iteration"].max()))
    ax.set_yscale("log")
    readable_log_axis(ax.yaxis, curves["error"].to_numpy())
    if threshold is not None:
        ax.axhline(threshold, color="grey", ls=(0, (4, 3)), lw=1, zorder=1)
    ax.set_xlabel("iteration (linear to the first logged point, log after)")
    ax.set_ylabel("error margin, mean |target - output|")
    ax.grid(True, which="major", alpha=0.3)


def _learning_curve_panels(
    curves: pd.DataFrame,
    order: Sequence[str],
    styles: Mapping[str, CellStyle],
    threshold: float | None,
    first_logged: float,
) -> Figure:
    figure, axes = _panels(len(order))
    medians = {cell: _quartiles(curves[curves["cell"] == cell]) for cell in order}
    for ax, cell in zip(axes, order, strict=True):
        for other, band in medians.items():
            if other != cell:
                ax.plot(band["iteration"], band["median"], color=GREY, lw=0.8, zorder=1)
        mine = curves[curves["cell"] == cell]
        colour = styles[cell].colour
        for _, seed in mine.groupby("seed"):
            ax.plot(
                seed["iteration"],
                seed["error"],
                color=colour,
                gid=cell,
                lw=0.5,
                alpha=0.25,
                zorder=2,
            )
        band = medians[cell]
        ax.plot(
            band["iteration"],
            band["median"],
            color=colour,
            gid=cell,
            lw=2.2,
            zorder=3,
            ls=styles[cell].linestyle,
        )
        seed1 = mine[mine["seed"] == 1]
        ax.plot(
            seed1["iteration"], seed1["error"], color=SEED1_COLOUR, lw=1.0, ls=(0, (1, 1)), zorder=4
        )
        ax.set_title(cell, fontsize=10, color="black")
        _finish_curves(ax, curves, threshold, first_logged)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=8)
    figure.supxlabel("iteration (linear to the first logged point, log after)")
    figure.supylabel("error margin, mean |target - output|")
    figure.suptitle(
        "Learning curves per cell: every seed thin, median thick, seed 1 dotted black; "
        "other cells' medians grey" + ("; dashed line = threshold" if threshold is not None else "")
    )
    return figure


# --------------------------------------------------------------------------------------
# Performance profile
# --------------------------------------------------------------------------------------


def _ecdf(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted finite values and the fraction of all seeds (diverged included) at or below."""
    finite = np.sort(values[np.isfinite(values)])
    return finite, np.arange(1, len(finite) + 1) / len(values)


@plain_text
def performance_profile(
    runs: pd.DataFrame,
    order: Sequence[str],
    styles: Mapping[str, CellStyle],
    column: str = "final_error",
    what: str = "final error margin",
    threshold: float | None = None,
) -> Figure:
    """Empirical CDF of a per-seed error per cell, log x (rliable's performance profile).

    A step up far right is the stuck seeds, the height reached before it the success rate,
    and the slope of the left part the spread of the runs that worked. Seed 1 is a star.
    """
    values = {c: runs.loc[runs["cell"] == c, column].to_numpy(dtype=float) for c in order}
    seed1 = {
        c: runs.loc[(runs["cell"] == c) & (runs["seed"] == 1), column].to_numpy(dtype=float)
        for c in order
    }
    everything = np.concatenate([v for v in values.values()]) if values else np.array([])
    finite = _finite_positive(everything)
    # The threshold only where it falls among the errors: far off, it squeezes them together.
    show_threshold = (
        threshold is not None and len(finite) and finite.min() <= threshold <= finite.max()
    )
    overlay = len(order) <= MAX_OVERLAID
    figure, axes = (
        new_figure(figsize=(9.5, 5.0), layout="constrained") if overlay else _panels(len(order))
    )
    axes = [axes] * len(order) if overlay else axes
    for ax, cell in zip(axes, order, strict=True):
        if not overlay:
            for other in order:
                if other != cell:
                    x, y = _ecdf(values[other])
                    ax.step(x, y, where="post", color=GREY, lw=0.8)
        x, y = _ecdf(values[cell])
        style = styles[cell]
        ax.step(
            x, y, where="post", color=style.colour, gid=cell, ls=style.linestyle, lw=2, label=cell
        )
        if len(seed1[cell]) and np.isfinite(seed1[cell][0]):
            at = seed1[cell][0]
            ax.plot(
                [at],
                [np.mean(values[cell] <= at)],
                marker="*",
                ms=11,
                color=style.colour,
                gid=cell,
                mec=SEED1_COLOUR,
                mew=0.8,
                zorder=4,
                ls="none",
            )
        if not overlay:
            ax.set_title(cell, fontsize=10)
            ax.tick_params(labelsize=8)
    for ax in axes if not overlay else axes[:1]:
        ax.set_xscale("log")
        readable_log_axis(ax.xaxis, everything)
        if show_threshold:
            ax.axvline(threshold, color="grey", ls=(0, (4, 3)), lw=1)
        ax.set_ylim(0, 1.02)
        ax.grid(True, which="major", alpha=0.3)
    label_x, label_y = f"{what} (log scale)", "fraction of seeds at or below"
    title = f"Performance profile: share of seeds ending at or below each {what}"
    if overlay:
        axes[0].set_xlabel(label_x)
        axes[0].set_ylabel(label_y)
        axes[0].set_title(title)
        extra = [
            Line2D(
                [],
                [],
                marker="*",
                ms=10,
                color="white",
                mec=SEED1_COLOUR,
                ls="none",
                label="seed 1",
            )
        ]
        if show_threshold:
            extra.append(Line2D([], [], color="grey", ls=(0, (4, 3)), label="threshold"))
        axes[0].legend(
            handles=_legend_handles(styles, order) + extra, fontsize="small", loc="lower right"
        )
    else:
        figure.supxlabel(label_x)
        figure.supylabel(label_y)
        figure.suptitle(title + "; star = seed 1, grey = other cells")
    return figure


# --------------------------------------------------------------------------------------
# Per-seed errors
# --------------------------------------------------------------------------------------


@plain_text
def final_errors(
    runs: pd.DataFrame,
    order: Sequence[str],
    styles: Mapping[str, CellStyle],
    column: str = "final_error",
    what: str = "final error margin",
    mark_unsolved: bool = True,
) -> Figure:
    """Box per cell plus every seed as a dot, log scale, cells in ``order`` (best first).

    ``runs`` needs columns cell, seed, status, solved and ``column`` (and ``unstable`` when
    recorded). Unsolved seeds are hollow (when ``mark_unsolved``), unstable ones crossed,
    seed 1 is a star, diverged seeds are counted above the boxes.
    """
    figure, ax = new_figure(figsize=(max(7.5, 0.75 * len(order) + 3.5), 5.2), layout="constrained")
    groups = [runs[runs["cell"] == cell] for cell in order]
    data = [_finite_positive(group[column]) for group in groups]
    positions = np.arange(1, len(order) + 1)
    ax.boxplot(
        data,
        positions=positions,
        widths=0.6,
        showfliers=False,
        medianprops={"lw": 2, "color": SEED1_COLOUR},
        boxprops={"color": "#666666"},
        whiskerprops={"color": "#666666"},
        capprops={"color": "#666666"},
    )
    jitter = np.random.default_rng(0)
    unstable_any = False
    for position, group, cell in zip(positions, groups, order, strict=True):
        colour = styles[cell].colour
        shown = group[np.isfinite(group[column]) & (group[column] > 0)]
        x = position + jitter.uniform(-0.2, 0.2, size=len(shown))
        y = shown[column].to_numpy(dtype=float)
        # An unstable seed is a cross in the cell's colour instead of its dot.
        flagged = np.zeros(len(shown), bool)
        if "unstable" in shown:
            flagged = shown["unstable"].fillna(False).astype(bool).to_numpy()
            unstable_any |= bool(flagged.any())
        unsolved = (~shown["solved"].astype(bool)).to_numpy() if mark_unsolved else None
        solid = (np.ones(len(shown), bool) if unsolved is None else ~unsolved) & ~flagged
        unsolved = None if unsolved is None else unsolved & ~flagged
        marker = styles[cell].marker
        ax.scatter(
            x[solid],
            y[solid],
            s=12,
            alpha=0.6,
            color=colour,
            gid=cell,
            lw=0,
            marker=marker,
            zorder=3,
        )
        if unsolved is not None and unsolved.any():
            ax.scatter(
                x[unsolved],
                y[unsolved],
                marker=marker,
                s=22,
                facecolors="none",
                edgecolors=colour,
                gid=cell,
                lw=1.1,
                zorder=3,
            )
        if flagged.any():
            ax.scatter(
                x[flagged],
                y[flagged],
                s=22,
                marker="x",
                color=colour,
                gid=cell,
                lw=1.0,
                alpha=0.8,
                zorder=3,
            )
        seed1 = (shown["seed"] == 1).to_numpy()
        ax.scatter(
            x[seed1],
            y[seed1],
            s=130,
            marker="*",
            color=colour,
            gid=cell,
            edgecolors=SEED1_COLOUR,
            lw=0.9,
            zorder=5,
        )
    ax.set_yscale("log")
    readable_log_axis(ax.yaxis, np.concatenate(data) if data else np.array([]))
    top = max((v.max() for v in data if len(v)), default=1.0)
    for position, group in zip(positions, groups, strict=True):
        diverged = int((group["status"] == "diverged").sum())
        if diverged:
            ax.annotate(
                f"{diverged} diverged",
                (position, top),
                xytext=(0, 8),
                textcoords="offset points",
                fontsize=8,
                ha="center",
                color="#D55E00",
            )
    ax.set_xticks(positions)
    slanted = len(order) > 4 or max(map(len, order), default=0) > 12
    ax.set_xticklabels(order, rotation=30 if slanted else 0, ha="right" if slanted else "center")
    for label, cell in zip(ax.get_xticklabels(), order, strict=True):
        label.set_color(styles[cell].colour)
    ax.set_xlabel(f"cell (by median {what}, best first)")
    ax.set_ylabel(f"{what} (log scale)")
    ax.set_title(f"{what[0].upper()}{what[1:]} of every seed")
    ax.grid(True, axis="y", which="major", alpha=0.3)
    legend = [Line2D([], [], marker="o", color="#666666", ls="none", label="seed")]
    if mark_unsolved and not runs["solved"].astype(bool).all():
        legend.append(
            Line2D(
                [],
                [],
                marker="o",
                mfc="none",
                mec="#666666",
                ls="none",
                label="seed that did not solve the task",
            )
        )
    if unstable_any:
        legend.append(
            Line2D([], [], marker="x", color="#666666", ls="none", label="unstable at the end")
        )
    legend.append(
        Line2D(
            [],
            [],
            marker="*",
            ms=11,
            color="white",
            mec=SEED1_COLOUR,
            ls="none",
            label="seed 1 (the tutorial's)",
        )
    )
    ax.legend(handles=legend, fontsize="small", loc="best", framealpha=0.9)
    return figure


# --------------------------------------------------------------------------------------
# Effect sizes
# --------------------------------------------------------------------------------------

DECISION_STYLE = {  # decision -> (colour, marker, legend text)
    "a_better": ("#0072B2", "o", "A ends lower"),
    "b_better": ("#D55E00", "o", "B ends lower"),
    "equivalent": ("#009E73", "D", "practically equivalent"),
    "undecided": ("#777777", "o", "undecided"),
}


@plain_text
def forest(effects: pd.DataFrame, margin: tuple[float, float], title: str) -> Figure:
    """P(A<B) with its CI, one row per pair (and part), the 0.5 line and the margin.

    ``effects`` has columns label, estimate, ci_low, ci_high and decision.
    """
    height = max(2.5, 0.28 * len(effects) + 1.4)
    figure, ax = new_figure(figsize=(9.0, height), layout="constrained")
    rows = np.arange(len(effects))[::-1]  # first row on top
    ax.axvspan(*margin, color="#009E73", alpha=0.12, lw=0)
    ax.axvline(0.5, color="#444444", lw=1)
    seen = set()
    for y, row in zip(rows, effects.itertuples(), strict=True):
        colour, marker, text = DECISION_STYLE.get(row.decision, ("#777777", "o", row.decision))
        hollow = row.decision == "undecided"
        ax.plot([row.ci_low, row.ci_high], [y, y], color=colour, lw=1.6)
        ax.plot(
            [row.estimate],
            [y],
            marker=marker,
            ms=6,
            color=colour,
            mfc="white" if hollow else colour,
            ls="none",
            label=None if row.decision in seen else text,
        )
        seen.add(row.decision)
    ax.set_yticks(rows)
    ax.set_yticklabels(effects["label"], fontsize=8 if len(effects) > 20 else 9)
    ax.set_ylim(-0.7, len(effects) - 0.3)
    ax.set_xlim(0, 1)
    ax.set_xlabel(
        "P(A<B): chance that a seed of A ends below a seed of B (interval at its Holm level)"
    )
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(
        Rectangle(
            (0, 0),
            1,
            1,
            color="#009E73",
            alpha=0.12,
            lw=0,
            label=f"equivalence margin {margin[0]:g}-{margin[1]:g}",
        )
    )
    ax.legend(handles=handles, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return figure


# --------------------------------------------------------------------------------------
# Two-setting heatmap
# --------------------------------------------------------------------------------------


def _text_colour(rgba: tuple[float, ...]) -> str:
    """Black or white, whichever reads better on ``rgba`` (WCAG relative luminance)."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return "black" if luminance > 0.179 else "white"


@plain_text
def heatmap(cells: pd.DataFrame, x: str, y: str, value: str = "median") -> Figure:
    """Median final error over a grid of two swept settings (log colour scale)."""
    grid = cells.pivot_table(index=y, columns=x, values=value, aggfunc="first")
    values = grid.to_numpy(dtype=float)
    rows, columns = values.shape
    figure, ax = new_figure(
        figsize=(max(5.5, 1.1 * columns + 3), max(3.5, 0.55 * rows + 2)), layout="constrained"
    )
    finite = _finite_positive(values)
    norm = LogNorm(vmin=finite.min(), vmax=finite.max()) if finite.size > 1 else None
    image = ax.imshow(
        np.where(np.isfinite(values), values, np.nan), cmap="viridis_r", norm=norm, aspect="auto"
    )
    size = 10 if columns <= 6 else 8
    for i in range(rows):
        for j in range(columns):
            finite_value = np.isfinite(values[i, j])
            colour = _text_colour(image.to_rgba(values[i, j])) if finite_value else "black"
            text = f"{values[i, j]:.3g}" if finite_value else "-"
            ax.text(j, i, text, ha="center", va="center", fontsize=size, color=colour)
    ax.set_xticks(range(columns))
    ax.set_xticklabels(
        [str(c) for c in grid.columns],
        rotation=30 if columns > 5 else 0,
        ha="right" if columns > 5 else "center",
    )
    ax.set_yticks(range(rows))
    ax.set_yticklabels([str(i) for i in grid.index])
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    ax.set_title("Median final error margin")
    bar = figure.colorbar(image, ax=ax, label="median final error margin")
    readable_log_axis(bar.ax.yaxis, finite)
    return figure


def cell_colours(figure: Figure) -> dict[str, set[str]]:
    """Cell -> hex colours of every artist drawn for it (tagged with ``gid=cell``); a test
    checks them against the report's one mapping instead of reading pixels."""
    found: dict[str, set[str]] = {}
    for artist in figure.findobj(lambda a: a.get_gid() is not None):
        if isinstance(artist, Line2D):
            colours = [artist.get_color()]
        else:  # a scatter or band: its faces, or its edges when hollow
            colours = list(artist.get_facecolors()) or list(artist.get_edgecolors())
        found.setdefault(artist.get_gid(), set()).update(to_hex(c).upper() for c in colours)
    return found


@plain_text
def auto_intervals(rounds: pd.DataFrame, margin: tuple[float, float]) -> Figure:
    """An auto sweep's pairs, one panel each: P(A<B) and its interval after every round.

    ``rounds`` is ``auto_report.rounds_table``: one row per (round, pair). A pair is drawn up
    to the round that decided it; later rounds no longer test it.
    """
    judged = rounds.dropna(subset=["estimate"])
    judged = judged[(judged["decided_look"] == 0) | (judged["round"] <= judged["decided_look"])]
    pairs = list(dict.fromkeys(zip(judged["a"], judged["b"], strict=True)))
    n_panels = max(1, len(pairs))
    figure, axes = new_figure(
        1,
        n_panels,
        figsize=(max(6.0, 3.6 * n_panels), 4.2),
        squeeze=False,
        sharey=True,
        layout="constrained",
    )
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
            decided[["n_a", "n_b"]].min(axis=1),
            decided["estimate"],
            "o",
            color="#D55E00",
            markersize=8,
            zorder=4,
        )
        outcome = str(rows["decision"].iloc[-1]).replace("_", " ")
        outcome = {"a better": f"{a} lower", "b better": f"{b} lower"}.get(outcome, outcome)
        ax.set_title(f"{a} vs {b}: {outcome}")
        ax.set_xlabel("seeds per cell")
        ax.set_xlim(0, most * 1.08)
        ax.set_ylim(0, 1)
    axes[0][0].set_ylabel("P(A<B), interval at the round's alpha")
    return figure
