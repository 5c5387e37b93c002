"""The sweep report: Markdown and self-contained HTML, with figures and CSV tables.

``write_report(sweep_dir)`` reads the stored tables (``runs.parquet``, ``curves.parquet``),
never trains, and writes into the sweep directory:

* ``report.md`` and ``report.html`` (figures embedded as data URIs, every value escaped);
* ``figures/*.png``;
* ``cell_stats.csv``, ``pairwise.csv`` and ``failures.csv``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from nnsweep import schema, store
from nnsweep.config import parse_margin
from nnsweep.report import placement_report, plots, run_record, sweep_figures, wording
from nnsweep.report.auto_report import auto_section
from nnsweep.report.render import (
    Figure,
    Section,
    format_number,
    render_html,
    render_markdown,
    save_figure,
    shown,
)
from nnsweep.stats import analysis, core, per_cell, robust

MAX_VERDICT_PAIRS = 10  # beyond this many pairs the verdict points to the pairwise table
COLLAPSE_ROWS = 12  # a pairwise table longer than this folds under <details>
SEED_ROWS_SHOWN = 50  # a per-seed table longer than this folds under <details>


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------

CELL_TABLE_COLUMNS = {
    "cell": "cell",
    "n_weights": "weights",
    "n_seeds": "seeds",
    "n_diverged": "diverged",
    "median": "median final error",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "iqr": "IQR",
    "solve_rate": "solved",
    "solve_ci_low": "solved CI low",
    "solve_ci_high": "solved CI high",
    "median_iterations_to_threshold": "median iterations to threshold",
    "unstable_fraction": "unstable",
    "seed1_error": "seed 1 final error",
    "seed1_rank": "seed 1 rank in cell",
}

# On noisy data "solved" and "iterations to threshold" mean nothing: accuracies replace them.
NOISY_CELL_TABLE_COLUMNS = {
    **{k: v for k, v in CELL_TABLE_COLUMNS.items() if not k.startswith(("solve", "median_it"))},
    "accuracy": "median training accuracy",
    "holdout_accuracy": "median held-out accuracy",
}

PAIR_TABLE_COLUMNS = {
    "a": "A",
    "b": "B",
    "part": "part",
    "n_a": "n A",
    "n_b": "n B",
    "estimate": "estimate",
    "ci_low": "CI low",
    "ci_high": "CI high",
    "ci_level": "CI level",
    "bound_low": "trimming bound low",
    "bound_high": "trimming bound high",
    "median_ratio": "median A / median B",
    "p_value": "p",
    "p_holm": "p (Holm)",
    "p_equivalence_holm": "p equivalence (Holm)",
    "decision": "decision",
    "seeds_needed": "seeds per cell to decide (from)",
    "seeds_needed_high": "seeds per cell to decide (to)",
}


FAILURE_TABLE_COLUMNS = {
    "cell": "cell",
    "n_seeds": "seeds",
    "n_unsolved": "unsolved seeds",
    "failure_rate": "failure rate",
    "unsolved_median_final_error": "unsolved: median final error",
    "unsolved_median_max_abs_error": "unsolved: median worst |error|",
    "solved_median_final_error": "solved: median final error",
}


def _cell_table(cells: pd.DataFrame, noisy: bool) -> pd.DataFrame:
    columns = NOISY_CELL_TABLE_COLUMNS if noisy else CELL_TABLE_COLUMNS
    if "holdout_accuracy" in cells and cells["holdout_accuracy"].isna().all():
        columns = {k: v for k, v in columns.items() if k != "holdout_accuracy"}
    return shown(cells, columns)


def _margin(sweep_dir: Path) -> tuple[float, float]:
    """The sweep's equivalence margin for P(A<B) (``equivalence_margin``), or the default."""
    value = run_record.sweep_config(sweep_dir).get("equivalence_margin")
    return sweep_figures.EQUIVALENCE_MARGIN if value is None else parse_margin(value)


def _holdout_section(cells: pd.DataFrame, pairs: pd.DataFrame) -> Section:
    """Verdict and table for the error on rows never trained on."""
    kept = ("cell", "n_seeds", "median", "ci_low", "ci_high", "iqr", "holdout_accuracy")
    columns = {k: v for k, v in NOISY_CELL_TABLE_COLUMNS.items() if k in kept}
    columns["median"] = "median held-out error"
    return Section(
        "Verdict on held-out error",
        paragraphs=(
            "The same comparisons on each seed's error margin over the held-out rows (scored "
            "with the final weights; never trained on), in the same Holm family as the "
            "training verdict. Success rates do not depend on the rows scored, so the "
            "reliability part is the training verdict's.",
            *wording.verdict_paragraphs(cells, pairs, "holdout_error"),
        ),
        bullets=tuple(pairs["sentence"]) if 0 < len(pairs) <= 3 * MAX_VERDICT_PAIRS else (),
        table=shown(cells, columns),
    )


def _sections(
    sweep_dir: Path,
    runs: pd.DataFrame,
    cells: pd.DataFrame,
    pairs: pd.DataFrame,
    failures: pd.DataFrame,
    figures: list[Figure],
    holdout: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    robustness: robust.Stability | None = None,
    margin: tuple[float, float] = sweep_figures.EQUIVALENCE_MARGIN,
) -> list[Section]:
    config = run_record.sweep_config(sweep_dir)
    command = run_record.command_line(config)
    threshold = ", ".join(format_number(v) for v in runs["error_threshold"].dropna().unique())
    all_pairs = pairs if holdout is None else pd.concat([pairs, holdout[1]], ignore_index=True)
    verdict = wording.verdict_paragraphs(cells, pairs, "final_error", robustness)
    seed1 = wording.seed1_paragraph(cells, pairs) if len(pairs) else None
    family = wording.family_paragraph(all_pairs) if len(all_pairs) else None
    failed = runs[runs["status"] == "failed"]
    notes = str(config.get("notes") or "").strip()
    noisy = len(cells) > 0 and not cells["solvable"].all()
    sections = [Section("About this sweep", paragraphs=(notes,))] if notes else []
    sections += [
        Section(
            "Verdict",
            paragraphs=tuple(p for p in (*verdict, seed1, family) if p),
            # Every pair in words, while that stays readable; the table below has them all.
            bullets=tuple(pairs["sentence"]) if 0 < len(pairs) <= 3 * MAX_VERDICT_PAIRS else (),
        ),
        Section(
            "What was run",
            paragraphs=tuple(
                p
                for p in (
                    f"Command: `{command}`" if command else None,
                    f"{len(failed)} cell(s) failed with a code error and are left out: "
                    + "; ".join(f"job {r.job}: {r.reason}" for r in failed.itertuples())
                    if len(failed)
                    else None,
                )
                if p
            ),
            table=run_record.run_table(runs),
        ),
        Section(
            "Cells",
            paragraphs=tuple(
                p
                for p in (
                    "Best first. 'Final error' is the error margin (mean |target - output|) of "
                    "the final weights, one forward pass after training. Diverged seeds count "
                    "as the worst possible error here and in summary.csv. The "
                    f"{per_cell.CONFIDENCE:.0%} interval of the median is the exact "
                    "distribution-free one from order statistics (scipy.stats.quantile_test). "
                    + (
                        "The data is noisy, so no network should fit every row: 'solved' and "
                        "'iterations to threshold' do not apply, and the table gives the "
                        "median accuracy (the fraction of rows whose every output rounds to its "
                        "target) on training and held-out rows instead. "
                        if noisy
                        else "'Solved' is the fraction of seeds whose every output rounds to "
                        "its target, with a Wilson interval. 'Iterations to threshold' is the "
                        "median first iteration with error margin below "
                        f"{threshold} ('never' when most seeds never got there). "
                    )
                    + "'Unstable' is the fraction of seeds whose training error moved by more "
                    "than 1% in one of the last two updates. 'Weights' counts every trainable "
                    "number of one network.",
                    *(f"{r.cell}: {r.ci_note}." for r in cells.itertuples() if r.ci_note),
                )
                if p
            ),
            table=_cell_table(cells, noisy),
        ),
        Section("Figures", figures=tuple(figures)),
    ]
    if holdout is not None:
        verdict_at = next(i for i, section in enumerate(sections) if section.title == "Verdict")
        sections.insert(verdict_at + 1, _holdout_section(*holdout))
    auto = auto_section(sweep_dir)
    if auto is not None:  # right after the verdict: its decisions are the ones to quote
        sections.insert(1 + next(i for i, s in enumerate(sections) if s.title == "Verdict"), auto)
    if len(pairs):
        sections.append(
            Section(
                "Pairwise comparisons",
                paragraphs=(
                    wording.methods_text(
                        margin, seed_streams=runs["seed_stream"].dropna().unique().tolist()
                    ),
                    "Estimate: for reliability the success rate of A minus that of B; for "
                    "quality and pooled P(A<B) + 0.5 P(A=B). 'CI level' is the confidence "
                    "of each row's interval (its test's Holm level). Every comparison is "
                    "unpaired.",
                ),
                table=shown(wording.decisions_in_words(_decided_first(pairs)), PAIR_TABLE_COLUMNS),
                collapse=_collapse_summary(pairs),
            )
        )
    sections.append(
        Section(
            "Seeds that did not learn the task",
            paragraphs=(
                "A seed fails when some output does not round to its target after training. "
                "Where the failing seeds end tells whether they are stuck (a large error "
                "that stopped moving) or merely slow.",
            ),
            table=None
            if failures.empty
            else shown(_best_first(failures, cells), FAILURE_TABLE_COLUMNS),
        )
    )
    sections.append(_seed_section(runs, cells, holdout is not None))
    sections += run_record.record_sections(sweep_dir, config, runs, cells["cell"].tolist())
    return sections


def _best_first(table: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Rows in the order of the cells table (best median first)."""
    rank = {cell: i for i, cell in enumerate(cells["cell"])}
    return table.sort_values("cell", key=lambda c: c.map(rank), kind="stable")


def _is_decided(pairs: pd.DataFrame) -> pd.Series:
    return pairs["decision"].isin(["a_better", "b_better", "equivalent"])


def _decided_first(pairs: pd.DataFrame) -> pd.DataFrame:
    """Decided pairs first, each group by adjusted p (smallest first)."""
    key = pairs.assign(_undecided=~_is_decided(pairs))
    return key.sort_values(["_undecided", "p_holm"], kind="stable").drop(columns="_undecided")


def _collapse_summary(pairs: pd.DataFrame) -> str | None:
    """Tables longer than this fold away under a summary line."""
    if len(pairs) <= COLLAPSE_ROWS:
        return None
    return f"All {len(pairs)} pair rows ({int(_is_decided(pairs).sum())} decided, shown first)"


SEED_TABLE_COLUMNS = {
    "cell": "cell",
    "seed": "seed",
    "rank": "rank in cell",
    "final_error": "final error",
    "holdout_error": "held-out error",
    "accuracy": "accuracy",
    "holdout_accuracy": "held-out accuracy",
    "solved": "solved",
    "unstable": "unstable end",
    "end_change": "end change",
    "first_below_threshold": "iterations to threshold",
    "status": "status",
}


def _seed_section(runs: pd.DataFrame, cells: pd.DataFrame, holdout: bool) -> Section:
    """Every seed, cells best first and seeds best first within a cell; seed 1 highlighted."""
    seeded = per_cell.seeded_runs(runs)
    seeded = seeded.assign(_error=per_cell.ranked_error(seeded))
    seeded["rank"] = seeded.groupby("cell")["_error"].rank(method="min").astype(int)
    seeded = _best_first(seeded.sort_values(["_error", "seed"], kind="stable"), cells)
    seeded["first_below_threshold"] = seeded["first_below_threshold"].where(
        seeded["first_below_threshold"] >= 0, np.inf
    )
    columns = dict(SEED_TABLE_COLUMNS)
    if not holdout:
        columns.pop("holdout_error")
        columns.pop("holdout_accuracy")
    table = shown(seeded, columns)
    return Section(
        "Every seed",
        paragraphs=(
            f"{len(table)} seeds; settings shared by every cell are under 'What was run'. "
            "Click a column heading to sort; type in the box to keep the rows holding every "
            "word typed. Seed 1, the tutorial's network, is highlighted.",
        ),
        table=table,
        table_id="seeds",
        highlight=tuple(seeded["seed"] == 1),
        collapse=f"All {len(table)} seeds" if len(table) > SEED_ROWS_SHOWN else None,
    )


def write_report(sweep_dir: Path) -> Path:
    """Analyse the stored tables of ``sweep_dir`` and write the report; returns report.html."""
    runs = schema.with_legacy_settings(pd.read_parquet(sweep_dir / schema.RUNS))
    store.remove_report(sweep_dir)  # nothing of an earlier report survives unless rewritten
    curves_path = sweep_dir / schema.CURVES
    curves = pd.read_parquet(curves_path) if curves_path.exists() else pd.DataFrame()
    seeded = per_cell.seeded_runs(runs)
    margin = _margin(sweep_dir)
    cells = per_cell.cell_statistics(runs)
    by_metric = {"final_error": cells}
    if "holdout_error" in per_cell.available_metrics(runs):
        by_metric["holdout_error"] = per_cell.cell_statistics(runs, "holdout_error")
    # Every test the verdicts rely on, training and held-out, in one Holm family.
    rate_margin, smallest_effect = core.RATE_MARGIN, analysis.SMALLEST_EFFECT
    compared = wording.with_sentences(
        analysis.compare_metrics(
            runs,
            by_metric,
            margin=margin,
            rate_margin=rate_margin,
            smallest_effect=smallest_effect,
        ),
        margin,
        rate_margin,
        smallest_effect,
    )

    def of_metric(metric: str) -> pd.DataFrame:
        if compared.empty:
            return pd.DataFrame()
        return compared[compared["metric"] == metric].reset_index(drop=True)

    pairs = of_metric("final_error")
    failures = per_cell.failure_summary(runs)
    _, robustness = robust.robustness(runs, curves, margin=margin)
    tables = {"cell_stats": cells, "pairwise": pairs, "failures": failures}
    holdout = None
    if "holdout_error" in by_metric:
        holdout = (by_metric["holdout_error"], of_metric("holdout_error"))
        tables.update(cell_stats_holdout=holdout[0], pairwise_holdout=holdout[1])
    for name, table in tables.items():
        store.atomic_write(sweep_dir / f"{name}.csv", lambda p, t=table: t.to_csv(p, index=False))
    # One style per cell for every figure and table swatch; the best cells (cells table
    # order) get the distinct colours first, where telling lines apart matters most.
    styles = plots.cell_styles(cells["cell"].tolist() if len(cells) else [])
    figures = (
        sweep_figures.figures(sweep_dir, seeded, curves, cells, pairs, styles, holdout, margin)
        if len(cells)
        else []
    )
    sections = _sections(
        sweep_dir, runs, cells, pairs, failures, figures, holdout, robustness, margin
    )
    # Many cells: groups instead of pair lists; shape budgets: the placement section.
    sections = placement_report.readable_sections(
        sections, sweep_dir, runs, curves, cells, pairs, save_figure, holdout
    )
    title = f"nnsweep report: {run_record.sweep_config(sweep_dir).get('name') or sweep_dir.name}"
    markdown = render_markdown(title, sections)
    store.write_text(sweep_dir / "report.md", markdown)
    colours = {cell: style.colour for cell, style in styles.items()}
    page = render_html(title, sections, sweep_dir, colours)
    store.write_text(sweep_dir / "report.html", page)
    return sweep_dir / "report.html"
