"""The sweep report's figures: which are drawn, with what caption, from the stored tables.

Drawing is ``plots``' and ``plots_many``'s job (via ``placement_report``); saving is
``render.save_figure``'s.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nnsweep.report import placement_report, plots
from nnsweep.report.render import Figure, save_figure
from nnsweep.stats import analysis, per_cell

# P(A<B) inside this is "practically equivalent"; a sweep may set its own
# (``equivalence_margin``), which the report reads from multirun.yaml.
EQUIVALENCE_MARGIN = analysis.MARGIN


def pair_effects(pairs: pd.DataFrame) -> pd.DataFrame:
    """The forest plot's rows: label, estimate, ci_low, ci_high, decision, one per pair and
    part of the verdict's pairwise table where P(A<B) applies."""
    if pairs.empty:
        return pd.DataFrame(
            columns=["a", "b", "label", "estimate", "ci_low", "ci_high", "decision"]
        )
    shown = pairs[pairs["part"].isin(["quality", "pooled"])]
    shown = shown[shown["decision"] != "not_applicable"]
    several = shown["part"].nunique() > 1
    return pd.DataFrame(
        {
            "a": shown["a"].to_numpy(str),
            "b": shown["b"].to_numpy(str),
            "label": [
                f"{r.a} vs {r.b}" + (f" ({r.part})" if several else "") for r in shown.itertuples()
            ],
            "estimate": shown["estimate"].to_numpy(float),
            "ci_low": shown["ci_low"].to_numpy(float),
            "ci_high": shown["ci_high"].to_numpy(float),
            "decision": shown["decision"].to_numpy(str),
        }
    )


MAX_FOREST_ROWS = 50  # past this many rows the forest plot keeps the pairs that rank the cells


def forest_rows(effects: pd.DataFrame, order: list[str]) -> tuple[pd.DataFrame, str]:
    """All rows while they fit; else the best cell against each other and each cell against
    the next in rank (the comparisons a ranking rests on), with a note saying so."""
    if len(effects) <= MAX_FOREST_ROWS:
        return effects, ""
    rank = {cell: i for i, cell in enumerate(order)}
    gap = (effects["a"].map(rank) - effects["b"].map(rank)).abs()
    best = effects["a"].eq(order[0]) | effects["b"].eq(order[0])
    kept = effects[best | (gap == 1)]
    note = (
        f" Of {len(effects)} rows, shown are the {len(kept)} that compare the best cell with "
        "each other and each cell with the next in rank; pairwise.csv has them all."
    )
    return kept, note


def _solving_matters(runs: pd.DataFrame, cells: pd.DataFrame) -> bool:
    """Whether "solved" separates good from stuck seeds: only where every row can be learnt;
    on noisy data almost no seed gets every row right, and "unsolved" marks nothing."""
    if "solvable" in cells:  # the verdict's per-dataset decision
        return bool(cells["solvable"].all())
    return bool(len(runs)) and float(runs["solved"].astype(bool).mean()) >= 0.5


def figures(
    sweep_dir: Path,
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    cells: pd.DataFrame,
    pairs: pd.DataFrame,
    styles: dict[str, plots.CellStyle],
    holdout: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    margin: tuple[float, float] = EQUIVALENCE_MARGIN,
) -> list[Figure]:
    order = cells["cell"].tolist()
    thresholds = runs["error_threshold"].dropna().unique()
    threshold = float(thresholds[0]) if len(thresholds) == 1 else None
    solving = _solving_matters(runs, cells)
    stuck = solving and not runs["solved"].astype(bool).all()  # unsolved seeds to mark
    made = []
    if not curves.empty:
        labelled = curves.merge(runs[["job", "seed", "cell", "solved"]], on=["job", "seed"])
        made.append(
            save_figure(
                sweep_dir,
                "learning_curves",
                "Error margin against iteration (log after the first logged point): "
                + (
                    "the median over seeds per cell, the band is the interquartile range"
                    + (
                        "; where a cell has both solved and stuck seeds, their medians are drawn "
                        "apart"
                        if stuck
                        else ""
                    )
                    if len(order) <= plots.MAX_OVERLAID
                    else "one panel per cell, every seed thin, the median thick, seed 1 dotted"
                )
                + ("; the dashed line is the error threshold." if threshold else "."),
                plots.learning_curves(labelled, order, styles, threshold, split_solved=solving),
            )
        )
    made.append(
        save_figure(
            sweep_dir,
            "performance_profile",
            "Performance profile: for each final error margin, the share of a cell's seeds ending "
            "at or below it. A late step is stuck seeds; the height before it, the success rate.",
            plots.performance_profile(runs, order, styles, threshold=threshold),
        )
    )
    made.append(
        save_figure(
            sweep_dir,
            "final_errors",
            "Every seed's final error margin, cells best first; boxes show quartiles"
            + ("; hollow dots are seeds that did not solve the task" if stuck else "")
            + "; the star is seed 1.",
            plots.final_errors(runs, order, styles, mark_unsolved=solving),
        )
    )
    effects, trimmed = forest_rows(pair_effects(pairs), order)
    if len(effects):
        made.append(
            save_figure(
                sweep_dir,
                "pairwise",
                "P(A<B), the chance that a seed of A ends below a seed of B, one row per pair "
                "and part (reliability compares rates, so it is in the pairwise table, not here), "
                "with its interval at its test's Holm level (the pairwise table's CI level), so "
                "that no bar contradicts its decision; the shaded band is the equivalence margin."
                + trimmed,
                plots.forest(effects, margin, "Effect sizes: P(A<B) per pair"),
            )
        )
    if holdout is not None:
        holdout_cells, holdout_pairs = holdout
        made.append(
            save_figure(
                sweep_dir,
                "holdout_errors",
                "Every seed's error on the held-out rows, cells best first on it; "
                "the star is seed 1.",
                plots.final_errors(
                    runs,
                    holdout_cells["cell"].tolist(),
                    styles,
                    column="holdout_error",
                    what="held-out error margin",
                    mark_unsolved=solving,
                ),
            )
        )
        holdout_effects, trimmed = forest_rows(
            pair_effects(holdout_pairs), holdout_cells["cell"].tolist()
        )
        if len(holdout_effects):
            made.append(
                save_figure(
                    sweep_dir,
                    "pairwise_holdout",
                    "P(A<B) on the held-out error, one row per pair and part, with its interval at "
                    "its test's Holm level (the table's CI level)." + trimmed,
                    plots.forest(
                        holdout_effects, margin, "Effect sizes on held-out error: P(A<B) per pair"
                    ),
                )
            )
    axes = per_cell.varying_columns(runs)
    if len(axes) == 2 and all(cells[a].nunique() > 1 for a in axes):
        made.append(
            save_figure(
                sweep_dir,
                "heatmap",
                f"Median final error over {axes[0]} x {axes[1]}.",
                plots.heatmap(cells, axes[1], axes[0]),
            )
        )
    colours = {cell: style.colour for cell, style in styles.items()}
    made += placement_report.many_cell_figures(sweep_dir, cells, pairs, colours, save_figure)
    return made
