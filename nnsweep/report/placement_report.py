"""The placement study's combined report, and the many-cell parts of every sweep report.

Per-sweep report parts (called by ``report``): ``cell_table_extras`` (compact letters and
seed 1's place among the cells), ``many_cell_figures`` (a ranked dot plot and a pairwise
matrix once a sweep has more than ``grouping.MANY_CELLS`` cells) and ``placement_section``
(the placement verdict when a sweep holds three or more shapes of one neuron budget).

The combined report, over several sweeps of shape families:

``python -m nnsweep.report.placement_report DIR`` reads every sub-folder of DIR holding a sweep's
``runs.parquet`` (each made by one experiments file, each with its own full report), and
writes DIR/report.md, DIR/report.html, DIR/placement_trends.csv,
DIR/placement_over_training.csv and DIR/figures/. It never trains.

Per task the verdict reads one metric: the final training error on truth tables, where a
network can fit every row; the held-out accuracy (as ``analysis`` defines it) where the
sweep held rows out, since noisy data is never "solved". The training error's trend is
given for every task, so tasks can be compared on one footing too.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure as PlotFigure

from nnsweep import schema, store
from nnsweep.report import placement_words, plots_many, tuning_report, wording
from nnsweep.report.render import (
    Figure,
    Section,
    render_html,
    render_markdown,
    save_figure,
    shown,
)
from nnsweep.stats import core, grouping, placement

# render.save_figure: (folder, name, caption, matplotlib figure) -> saved Figure
Saver = Callable[[Path, str, str, PlotFigure], Figure]

TITLE = "nnsweep placement study: where should the neurons go?"


def _parts(study_dir: Path) -> list[Path]:
    return sorted(p for p in study_dir.iterdir() if p.is_dir() and (p / schema.RUNS).exists())


def load_study(study_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every part's runs and curves, with a ``part`` column and jobs numbered apart."""
    runs, curves = [], []
    for index, part in enumerate(_parts(study_dir)):
        offset = 10_000 * index  # job numbers restart in every sweep
        part_runs = schema.with_legacy_settings(pd.read_parquet(part / schema.RUNS))
        part_runs = part_runs.assign(part=part.name)
        part_runs["job"] += offset
        runs.append(part_runs)
        if (part / schema.CURVES).exists():
            part_curves = pd.read_parquet(part / schema.CURVES)
            part_curves["job"] += offset
            curves.append(part_curves)
    if not runs:
        raise FileNotFoundError(f"{study_dir}: no sub-folder holds a sweep's {schema.RUNS}")
    return pd.concat(runs, ignore_index=True), (
        pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()
    )


def verdict_metric(rows: pd.DataFrame) -> str:
    """held-out accuracy when rows were held out, else the final training error."""
    if "holdout_accuracy" in rows and rows["holdout_accuracy"].notna().any():
        return "holdout_accuracy"
    return "final_error"


def study_results(
    runs: pd.DataFrame, curves: pd.DataFrame | None
) -> tuple[list[placement.BudgetResult], list[placement.BudgetResult]]:
    """Per part (sweep) of a study: the budgets judged on the verdict's metric (with the
    trend over training when curves are stored), and, where that metric is not the training
    error, the training error's budgets too."""
    verdicts, secondary = [], []
    for _part, rows in runs.groupby("part", sort=True) if "part" in runs else [(None, runs)]:
        chosen = verdict_metric(rows)
        for result in placement.analyse(rows, chosen):
            if curves is not None and len(curves):
                result = placement.over_training(result, rows, curves)
            verdicts.append(result)
        if chosen != "final_error":
            secondary.extend(placement.analyse(rows, "final_error"))
    # one error budget for every call the report makes
    adjusted = placement.adjust([*verdicts, *secondary])
    return adjusted[: len(verdicts)], adjusted[len(verdicts) :]


TREND_COLUMNS = {
    "dataset": "task",
    "total_neurons": "neurons",
    "n_shapes": "shapes",
    "n_seeds": "seeds",
    "metric": "metric",
    "rho": "ρ (front-loading, typical seed)",
    "rho_ci_low": "CI low (shapes+seeds, BCa)",
    "rho_ci_high": "CI high",
    "rho_seed_ci_low": "CI low (seeds only)",
    "rho_seed_ci_high": "CI high (seeds only)",
    "rho_direction": "front-loading",
    "rho_fragile": "fragile",
}

PART_COLUMNS = {
    "best": "what matters",
    "best_explained": "explained alone",
    "best_stability": "best in % of resamples",
    "best_effect": "effect over its range",
    "best_ci_low": "CI low",
    "best_ci_high": "CI high",
    "front_explained": "front-loading explains",
    "front_adjusted_effect": "front-loading beside it",
    "front_adjusted_ci_low": "CI low ",
    "front_adjusted_ci_high": "CI high ",
    "front_adjusted_direction": "front-loading beside it: call",
    "front_adjusted_fragile": "fragile",
}

SELECTION_FREE_COLUMNS = {
    "quality_best": "descriptor",
    "selection_free_tau": "quantile of every seed",
    "selection_free_effect": "effect over its range",
    "selection_free_ci_low": "CI low",
    "selection_free_ci_high": "CI high",
    "selection_free_direction": "call",
    "quality_best_direction": "call on the seeds that solved",
}

OVER_COLUMNS = {
    "dataset": "task",
    "total_neurons": "neurons",
    "fraction": "fraction of training",
    "iteration": "iteration",
    "rho": "ρ",
    "rho_ci_low": "95% CI low",
    "rho_ci_high": "95% CI high",
    "direction": "front-loading",
}


def _selection_free_table(chosen: pd.DataFrame) -> pd.DataFrame:
    """The selection-free check per budget, descriptors in words."""
    words = [placement_words.descriptor_words(d, 3) for d in chosen["quality_best"]]
    renamed = {"dataset": "task", "total_neurons": "neurons", **SELECTION_FREE_COLUMNS}
    return chosen.assign(quality_best=words).rename(columns=renamed)


def part_table(trends: pd.DataFrame, part: str) -> pd.DataFrame:
    """One part's columns of ``placement.trends_table``, renamed for a report (effects on
    the log scale for the solve part (log odds) and the error (log ratio))."""
    keep = {f"{part}_{k}": v for k, v in PART_COLUMNS.items() if f"{part}_{k}" in trends}
    if not keep:
        return pd.DataFrame()
    picked = trends[[c for c in ("dataset", "total_neurons") if c in trends] + list(keep)]
    return picked.rename(columns={"dataset": "task", "total_neurons": "neurons", **keep})


def descriptor_pivot(results: list[placement.BudgetResult]) -> pd.DataFrame:
    """Share of the between-shape variation each descriptor explains alone, per budget and
    part (descriptors as columns)."""
    table = placement.descriptors_table(results)
    if table.empty:
        return table
    table["descriptor"] = [placement_words.descriptor_words(d, 3) for d in table["descriptor"]]
    return (
        table.pivot_table(
            index=["dataset", "total_neurons", "part"],
            columns="descriptor",
            values="explained",
            sort=False,
        )
        .reset_index()
        .rename(columns={"dataset": "task", "total_neurons": "neurons"})
    )


def placement_figures(
    out_dir: Path,
    runs: pd.DataFrame,
    results: list[placement.BudgetResult],
    save: Saver,
    name: str = "placement",
) -> list[Figure]:
    """Per metric, one panel per budget (statistic against front-loading); what each
    descriptor explains; then the trend over training."""
    made = []
    by_metric: dict[str, list[placement.BudgetResult]] = {}
    for result in results:
        by_metric.setdefault(result.metric.column, []).append(result)
    for metric_name, chosen in by_metric.items():
        info = placement.METRICS[metric_name]
        budgets = []
        for result in chosen:
            rows = runs
            for column in ("dataset", "total_neurons", "depth"):
                rows = rows[rows[column].astype(str) == str(result.settings[column])]
            t = result.trend
            fragile = " (fragile)" if t.fragile or result.flips_over_training else ""
            title = (
                f"{result.settings['dataset']}, {int(result.settings['total_neurons'])} neurons"
                f"\nρ = {t.rho:.2f} [{t.low:.2f}, {t.high:.2f}] (shape-level BCa): "
                f"{t.direction.value}{fragile}"
            )
            budgets.append((title, rows))
        made.append(
            save(
                out_dir,
                f"{name}_{metric_name}",
                f"Each shape's {info.label} against its front-loading, one panel per neuron "
                "budget; colour is the weight count, the bar the seeds' interquartile range.",
                plots_many.placement_panels(
                    budgets, info.column, info.label, info.higher_is_better
                ),
            )
        )
    table = placement.descriptors_table(results)
    if len(table):
        made.append(
            save(
                out_dir,
                f"{name}_descriptors",
                "Share of the between-shape variation each descriptor explains alone, per "
                "budget and part (solve rate: binomial deviance; error of the seeds that "
                "solved, or the metric: weighted R²). The tallest bar is what matters.",
                plots_many.descriptor_bars(table),
            )
        )
    over = placement.over_training_table(results)
    if len(over):
        made.append(
            save(
                out_dir,
                f"{name}_over_training",
                "Spearman's rho of front-loading with the shapes' median training error at "
                "10%, 25%, 50% and 100% of training, per budget (band: shape-level 95% BCa CI).",
                plots_many.trend_over_training(over),
            )
        )
    return made


METHOD = (
    "A budget is a task, a total number of hidden neurons and a depth, with every other "
    "setting that changes a seed's numbers equal; inside it shapes differ only in where the "
    "neurons sit. Front-loading is one minus the neuron-weighted mean layer position, scaled "
    "to [0, 1] (24-4-4: 0.81, 8-16-8: 0.5, 4-4-24: 0.19). For three layers it is "
    "0.5 + (w1 - w3)/(2T): it ignores the middle layer (4-24-4, 8-16-8 and 8-8-8 all score "
    "0.5), so shapes are also described by each layer's width (log scale), the narrowest "
    "layer's width and the weight count.",
    "Two parts, the shape as the unit. How often seeds solve: a logistic regression of each "
    "shape's solve count on one descriptor (Firth's bias reduction keeps it finite where a "
    "descriptor separates always-solving shapes from the rest). The final error of the seeds "
    "that solved: least squares of log(final error) on the descriptor. That second part "
    "conditions on an outcome the shape changes (a shape that rescues hard initialisations "
    "adds late, high-error solvers to it), so it describes the runs that worked and is not a "
    "causal effect on quality. Noisy tasks that no seed 'solves' have one part: the metric "
    "(held-out accuracy) of every seed.",
    "What matters is the descriptor that explains the largest share of the between-shape "
    "variation on its own (binomial deviance for the solve part, weighted R² otherwise); "
    "'best in x% of resamples' says how stable that choice is. Front-loading is then fitted "
    "beside it: if its effect vanishes, front-loading was standing in for that descriptor.",
    "Error control: per budget, every call of its answer (each part's best descriptor, "
    "front-loading alone and beside it, the selection-free checks and the typical seed's ρ) "
    f"is one Holm family at family-wise alpha = {core.ALPHA}, as one sweep's verdict is; each "
    "p-value inverts its BCa interval, and each interval is shown at its Holm level, so it "
    "excludes no change exactly when the call is made. Across budgets the families are separate "
    "questions (a task and a neuron count each); the over-training points are descriptive, "
    "at 95% each.",
    f"Every interval is a BCa interval from a two-stage bootstrap ({placement.RESAMPLES} "
    "draws, fixed seed): shapes resampled with replacement, then seeds within each drawn "
    "shape; the acceleration comes from the jackknife leaving one shape out. Resampling "
    "shapes keeps a descriptor's misfit between shapes in the interval; the seeds-only "
    "interval, which treats it as known, is shown beside ρ. A call is made when the interval "
    "excludes no change; it is fragile when the interval's end nearest no change lies within "
    f"{placement.FRAGILE_SHARE:.0%} of the interval's width from it, or when the trend's "
    "direction changes over training.",
    "ρ is Spearman's rank correlation over a budget's shapes between front-loading and the "
    "shape's median final error (mean held-out accuracy on tasks with a held-out split): "
    "the typical seed, which mixes both parts. Effects are quoted over a descriptor's range "
    "in the budget: odds of solving as a ratio, errors as a ratio, accuracy as a difference.",
)


def _parts_table(study_dir: Path, runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for part, part_runs in runs.groupby("part", sort=True):
        rows.append(
            {
                "part": part,
                "task": part_runs["dataset"].iloc[0],
                "shapes": part_runs["layers"].nunique(),
                "seeds per shape": int(part_runs.groupby("layers")["seed"].count().min()),
                "iterations": int(part_runs["iterations"].iloc[0]),
                "lr": float(part_runs["lr"].iloc[0]),
                "training seconds (sum over seeds)": round(float(part_runs["wall_seconds"].sum())),
                "report": f"{part}/report.html",
            }
        )
    return pd.DataFrame(rows)


def write_study_report(study_dir: Path, command: str | None = None) -> Path:
    """Analyse every part of ``study_dir`` and write the combined report."""
    runs, curves = load_study(study_dir)
    verdicts, secondary = study_results(runs, curves)
    trends = placement.trends_table(verdicts)
    over = placement.over_training_table(verdicts)
    descriptors = placement.descriptors_table(verdicts)
    store.atomic_write(study_dir / "placement_trends.csv", lambda p: trends.to_csv(p, index=False))
    store.atomic_write(
        study_dir / "placement_descriptors.csv", lambda p: descriptors.to_csv(p, index=False)
    )
    store.atomic_write(
        study_dir / "placement_over_training.csv", lambda p: over.to_csv(p, index=False)
    )
    summary = placement_words.summary(verdicts)
    answer = [line for result in verdicts for line in placement_words.budget_paragraphs(result)]
    sections = [
        Section("Answer", paragraphs=tuple(([summary] if summary else []) + answer)),
        Section("How it was measured", paragraphs=METHOD),
        Section("What each descriptor explains", table=descriptor_pivot(verdicts)),
        Section(
            "The typical seed against front-loading",
            table=shown(trends, TREND_COLUMNS),
        ),
    ]
    for part, title in (
        ("solve", "How often seeds solve: what matters, and front-loading beside it"),
        ("quality", "Error of the seeds that solved: what matters, and front-loading beside it"),
        ("metric", "The metric of every seed: what matters, and front-loading beside it"),
    ):
        table = part_table(trends, part)
        if len(table):
            sections.append(
                Section(
                    title,
                    paragraphs=(
                        "Effects over the descriptor's range on the log scale (log odds of "
                        "solving; log of the error ratio), or as an accuracy difference.",
                    ),
                    table=table,
                )
            )
    if "selection_free_effect" in trends:
        chosen = trends.dropna(subset=["selection_free_effect"])
        keep = [c for c in ("dataset", "total_neurons", *SELECTION_FREE_COLUMNS) if c in chosen]
        sections.append(
            Section(
                "Error of the seeds that solved: the selection-free check",
                paragraphs=(
                    "The same descriptor on each shape's low quantile of every seed's final "
                    "error (log ratio over the descriptor's range): all seeds are randomised, "
                    "so this contrast cannot be made by which seeds solve.",
                ),
                table=_selection_free_table(chosen[keep]),
            )
        )
    if secondary:
        sections.append(
            Section(
                "The training error on tasks judged by held-out accuracy",
                paragraphs=tuple(
                    line for r in secondary for line in placement_words.budget_paragraphs(r)
                ),
            )
        )
    if len(over):
        sections.append(
            Section(
                "Over training",
                table=shown(over, OVER_COLUMNS),
            )
        )
    sections.append(
        Section(
            "What was run",
            paragraphs=tuple(
                p
                for p in (
                    f"Combined report made by `{command}`." if command else None,
                    "Each part is one experiments file with its own full report (cells, "
                    "groups, pairwise tests, figures, provenance).",
                )
                if p
            ),
            table=_parts_table(study_dir, runs),
        )
    )
    figures = placement_figures(study_dir, runs, verdicts, save_figure)
    sections.append(Section("Figures", figures=tuple(figures)))
    markdown = render_markdown(TITLE, sections)
    store.atomic_write(study_dir / "report.md", lambda p: p.write_text(markdown))
    page = render_html(TITLE, sections, study_dir)
    store.atomic_write(study_dir / "report.html", lambda p: p.write_text(page))
    return study_dir / "report.html"


# --------------------------------------------------------------------------------------
# Parts of every sweep report
# --------------------------------------------------------------------------------------


def cell_table_extras(cells: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """``cells`` with ``group`` (compact letters on the pooled comparison, long runs as
    ranges) and ``seed1_order`` (the cell's place when ordered by seed 1 alone)."""
    order = cells["cell"].tolist()
    letters = grouping.compact_letters(order, grouping.separated_pairs(pairs))
    extras = cells.copy()
    extras["group"] = [grouping.letter_ranges(letters[c]) for c in order]
    if "seed1_error" in cells:
        extras["seed1_order"] = grouping.seed1_order(cells)
    return extras


def many_cell_figures(
    sweep_dir: Path,
    cells: pd.DataFrame,
    pairs: pd.DataFrame,
    colours: dict[str, str],
    save: Saver,
    what: str = "final error margin",
    name: str = "",
) -> list[Figure]:
    """A ranked dot plot with letters and a pairwise matrix, for more than MANY_CELLS cells."""
    if len(cells) <= grouping.MANY_CELLS:
        return []
    order = cells["cell"].tolist()
    separated = grouping.separated_pairs(pairs)
    letters = grouping.compact_letters(order, separated)
    return [
        save(
            sweep_dir,
            f"ranked{name}",
            f"Cells ranked by median {what}: the dot is the median, the thick bar its 95% CI, "
            "the grey bar the interquartile range; cells sharing a letter cannot be told apart.",
            plots_many.ranked_dots(cells, letters, what, colours),
        ),
        save(
            sweep_dir,
            f"pairwise_matrix{name}",
            "P(A<B) for every pair, cells ordered by median (best first); red: the row cell "
            "ends higher, blue: lower; a dot marks the pairs told apart.",
            plots_many.pairwise_matrix(pairs, order, separated),
        ),
    ]


def placement_section(
    sweep_dir: Path, runs: pd.DataFrame, curves: pd.DataFrame | None, save: Saver
) -> Section | None:
    """The placement verdict of one sweep, when it holds a budget of three shapes or more."""
    results, _ = study_results(runs, curves)
    if not results:
        return None
    summary = placement_words.summary(results)
    paragraphs = [line for r in results for line in placement_words.budget_paragraphs(r)]
    trends = placement.trends_table(results)
    return Section(
        "Where the neurons go (placement)",
        paragraphs=(
            *([summary] if summary and len(results) > 1 else []),
            *paragraphs,
            "Two parts with the shape as the unit (solve rate: logistic; error of the seeds "
            "that solved: least squares on log error, a description of the runs that worked); "
            "intervals: 95% BCa from resampling shapes and then seeds. See "
            "nnsweep/stats/placement.py.",
        ),
        table=shown(trends, TREND_COLUMNS),
        figures=tuple(placement_figures(sweep_dir, runs, results, save)),
    )


# The verdict's part titles, for the count lines (analysis.PART_WORDS when it has them).
_PART_LABELS = {
    "reliability": "Reliability (how often seeds succeed)",
    "quality": "Quality ({what} of the seeds that succeeded)",
    "pooled": "Pooled ({what} of all seeds)",
}


def _insert_columns(table: pd.DataFrame, extras: pd.DataFrame) -> pd.DataFrame:
    """The shown cell table with 'group' after the cell and 'seed 1 order' at the end."""
    table = table.copy()
    table.insert(1, "group", extras["group"].to_numpy())
    if "seed1_order" in extras:
        table["seed 1 order among cells"] = extras["seed1_order"].to_numpy()
    return table


def _grouped(section: Section, cells: pd.DataFrame, pairs: pd.DataFrame, what: str) -> Section:
    """A verdict section for many cells: groups and counts instead of pair and cell lists."""
    from dataclasses import replace

    kept = tuple(wording.many_cell_paragraphs(section.paragraphs))
    labels = {k: v.format(what=what) for k, v in _PART_LABELS.items()} if "part" in pairs else {}
    summary = wording.many_cell_summary(cells["cell"].tolist(), pairs, labels, what)
    seed1 = wording.seed1_line(cells) if what == "final error" else None
    return replace(section, paragraphs=(*summary, *kept, *([seed1] if seed1 else ())), bullets=())


def readable_sections(
    sections: list[Section],
    sweep_dir: Path,
    runs: pd.DataFrame,
    curves: pd.DataFrame | None,
    cells: pd.DataFrame,
    pairs: pd.DataFrame,
    save: Saver,
    holdout: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> list[Section]:
    """A sweep report's sections, made readable at many cells, plus the placement section.

    * Past ``grouping.MANY_CELLS`` cells, the verdicts' pair and cell lists give way to the
      best and worst groups, one count line per part and one Spearman line for seed 1; a
      robustness sentence listing pairs is cut to a count.
    * The cell table gains the compact letters ('group') and seed 1's order among cells.
    * A sweep with a budget of three or more shapes gets the placement section after the
      verdict; a sweep that tunes lr per shape (``tune_seeds``) its tuned verdict before it.
    """
    from dataclasses import replace

    many = len(cells) > grouping.MANY_CELLS and len(pairs) > 0
    extras = cell_table_extras(cells, pairs) if len(pairs) else None
    out = []
    for section in sections:
        if section.title == "Verdict" and many:
            section = _grouped(section, cells, pairs, "final error")
        elif section.title.startswith("Verdict on held-out") and many and holdout is not None:
            if len(holdout[1]):
                section = _grouped(section, holdout[0], holdout[1], "held-out error")
                if section.table is not None:
                    letters = cell_table_extras(*holdout).drop(
                        columns="seed1_order", errors="ignore"
                    )
                    section = replace(section, table=_insert_columns(section.table, letters))
        elif section.title == "Cells" and extras is not None and section.table is not None:
            section = replace(
                section,
                table=_insert_columns(section.table, extras),
                paragraphs=(*section.paragraphs, wording.GROUP_COLUMNS_NOTE),
            )
        if section.title == "Verdict":
            out.extend(_tuned(sweep_dir, runs))
        out.append(section)
        if section.title == "Verdict":
            placed = placement_section(sweep_dir, runs, curves, save)
            if placed is not None:
                out.append(placed)
    return out


def _tuned(sweep_dir: Path, runs: pd.DataFrame) -> list[Section]:
    """A sweep with tune_seeds > 0 over lr: its tuned verdict, before the all-cells one."""
    return tuning_report.sweep_tuning_sections(sweep_dir, runs)


def main(arguments: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if arguments is None else arguments)
    if len(arguments) != 1 or not Path(arguments[0]).is_dir():
        print("usage: python -m nnsweep.report.placement_report STUDY_DIR", file=sys.stderr)
        return 2
    study_dir = Path(arguments[0])
    try:
        path = write_study_report(
            study_dir, command=f"python -m nnsweep.report.placement_report {arguments[0]}"
        )
    except FileNotFoundError as error:
        print(f"nnsweep: error: {error}", file=sys.stderr)
        return 2
    print(f"nnsweep: placement report written to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
