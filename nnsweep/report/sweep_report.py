"""The sweep report: Markdown and self-contained HTML, with figures and CSV tables.

``write_report(sweep_dir)`` reads the stored tables (``runs.parquet``, ``curves.parquet``),
never trains, and writes into the sweep directory:

* ``report.md`` and ``report.html`` (figures embedded as data URIs, every value escaped);
* ``figures/*.png``;
* ``cell_stats.csv``, ``pairwise.csv`` and ``failures.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from nnsweep import schema, store
from nnsweep.config import parse_margin
from nnsweep.report import placement_report, plots, wording
from nnsweep.report.auto_report import auto_section
from nnsweep.report.render import (
    Figure,
    Section,
    format_number,
    render_html,
    render_markdown,
    save_figure,
)
from nnsweep.stats import analysis, core

MAX_VERDICT_PAIRS = 10  # beyond this many pairs the verdict points to the pairwise table
COLLAPSE_ROWS = 12  # a pairwise table longer than this folds under <details>
SEED_ROWS_SHOWN = 50  # a per-seed table longer than this folds under <details>


# --------------------------------------------------------------------------------------
# What was run
# --------------------------------------------------------------------------------------


def _sweep_config(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return {}
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return {}


def _job_provenance(sweep_dir: Path, runs: pd.DataFrame) -> dict[int, dict[str, Any]]:
    """The provenance.json of every job in ``runs`` (not of job folders it ignored)."""
    found = {}
    for job_dir in _gathered_job_dirs(sweep_dir, runs):
        path = job_dir / schema.PROVENANCE
        if path.exists():
            try:
                found[int(job_dir.name)] = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
    return found


def _gathered_job_dirs(sweep_dir: Path, runs: pd.DataFrame) -> list[Path]:
    """The job folders whose rows are in the sweep's table: a folder left by another run
    is in the sweep folder but not in this sweep."""
    gathered = {int(job) for job in runs["job"].dropna()} if "job" in runs else set()
    return [job for job in store.job_dirs(sweep_dir) if int(job.name) in gathered]


def _distinct(values: Any) -> str:
    shown = [str(v) for v in dict.fromkeys(values) if v is not None]
    return ", ".join(shown) if shown else "not recorded"


def _blas(entries: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{b.get('internal_api')} {b.get('version')}, core type {b.get('architecture')}, "
        f"{b.get('num_threads')} thread(s)"
        for b in entries
    )


def _cpu(cpu: dict[str, Any] | None) -> str:
    if not cpu:
        return "not recorded"
    simd = ", ".join(
        f"{flag} {'yes' if flag in cpu['simd'] else 'no'}" for flag in store.SIMD_FLAGS
    )
    return f"{cpu.get('model')} ({simd})"


def _dirty(value: Any, files: list[str] | None = None) -> str:
    if value is None:
        return "not recorded"
    if not value:
        return "no (clean tree)"
    return "YES, uncommitted changes" + (f" in {', '.join(files)}" if files else "")


def _provenance_table(jobs: dict[int, dict[str, Any]], runs: pd.DataFrame) -> pd.DataFrame:
    """What computed this sweep's numbers, one row per item (jobs agreeing share a value)."""
    details = list(jobs.values())
    kernels = {
        job: p.get("kernel")
        or ("all seeds from the cache" if p.get("trained_seeds") == [] else None)
        for job, p in jobs.items()
    }
    by_kernel: dict[str, list[int]] = {}
    for job, kernel in kernels.items():
        by_kernel.setdefault(str(kernel or "not recorded"), []).append(job)
    trained = sum(len(p.get("trained_seeds", [])) for p in details)
    rows = [
        ("nnsweep", _distinct(p.get("nnsweep") for p in details)),
        ("git commit", _distinct(p.get("git_commit") for p in details)),
        ("uncommitted changes", _distinct(
            _dirty(p.get("git_dirty"), p.get("git_dirty_files")) for p in details
        )),
        ("CPU (SIMD flags)", _distinct(_cpu(p.get("cpu")) for p in details)),
        ("arithmetic", "; ".join(
            f"{kernel} (job{'s' if len(js) > 1 else ''} {', '.join(map(str, js))})"
            for kernel, js in by_kernel.items()
        )),
        ("numpy", _distinct(p.get("numpy") for p in details)),
        ("BLAS", _distinct(_blas(p.get("blas", [])) for p in details)),
        ("python", _distinct(p.get("python") for p in details)),
        ("pandas", _distinct(p.get("pandas") for p in details)),
        ("host", _distinct(p.get("host") for p in details)),
        ("platform", _distinct(p.get("platform") for p in details)),
        ("jobs written (UTC)", _time_span(p.get("time_utc") for p in details)),
        ("seeds trained by this sweep", f"{trained} of {int(runs['seed'].notna().sum())}"),
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=["item", "value"])


def _origin_table(jobs: dict[int, dict[str, Any]], runs: pd.DataFrame) -> pd.DataFrame:
    """Where and when the seeds that came from the cache were computed."""
    labels = analysis.seeded_runs(runs).drop_duplicates("job").set_index("job")["cell"]
    rows = []
    for job, details in jobs.items():
        trained = set(details.get("trained_seeds", []))
        origins = details.get("seed_origins")
        cell = labels.get(job, f"job {job}")
        if origins is None:
            cached = sorted(set(map(int, details.get("cache_keys", {}))) - trained)
            if cached:
                origins = [{"seeds": cached, "host": None}]
            else:
                continue
        for origin in origins:
            seeds = [s for s in origin["seeds"] if s not in trained]
            if not seeds:
                continue
            known = origin.get("host") is not None
            rows.append({
                "cell": cell,
                "seeds": _seed_ranges(seeds),
                "computed on": origin.get("host") if known else "not recorded (cached before "
                "nnsweep recorded origins)",
                "at (UTC)": origin.get("time_utc") or "-",
                "commit": str(origin.get("git_commit") or "-")[:12],
                "arithmetic": origin.get("kernel") or "-",
                "CPU": _cpu(origin.get("cpu")) if known else "-",
            })  # fmt: skip
    return pd.DataFrame(rows)


def _time_span(times: Any) -> str:
    known = sorted(str(t) for t in times if t)
    if not known:
        return "not recorded"
    return known[0] if known[0] == known[-1] else f"{known[0]} to {known[-1]}"


def _seed_ranges(seeds: list[int]) -> str:
    """1, 2, 3, 7 -> '1-3, 7'."""
    seeds = sorted(seeds)
    parts, start = [], seeds[0]
    for previous, seed in zip(seeds, [*seeds[1:], None], strict=True):
        if seed != previous + 1 if seed is not None else True:
            parts.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = seed
    return ", ".join(parts)


def _command(config: dict[str, Any]) -> str | None:
    overrides = config.get("hydra", {}).get("overrides", {})
    if overrides.get("task") is None:
        return None
    hydra_overrides = [
        o for o in overrides.get("hydra", []) if not str(o).startswith("hydra.mode=")
    ]
    task = [str(override) for override in overrides["task"]]
    # A report is a sweep's: without an experiments file (which sets the mode) it took -m.
    multirun = [] if any(o.startswith("experiments=") for o in task) else ["-m"]
    return " ".join(["python -m nnsweep", *multirun, *task, *map(str, hydra_overrides)])


def _run_table(runs: pd.DataFrame) -> pd.DataFrame:
    seeds = runs["seed"].dropna()
    rows = []
    for column in schema.CELL_COLUMNS:
        values = runs[column].dropna().unique().tolist()
        rows.append({"setting": column, "value": ", ".join(format_number(v) for v in values)})
    if len(seeds):
        rows.append(
            {
                "setting": "seeds per cell",
                "value": f"{int(seeds.min())}..{int(seeds.max())} "
                f"({runs.groupby(schema.CELL_COLUMNS, dropna=False)['seed'].count().max()} "
                "per cell)",
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


# P(A<B) inside this is "practically equivalent"; a sweep may set its own
# (``equivalence_margin``), which the report reads from multirun.yaml.
EQUIVALENCE_MARGIN = analysis.MARGIN


def _p_below_ci(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """95% CI of P(X<Y) + 0.5 P(X=Y) by DeLong's placement variance (until the verdict's
    pairwise table gives its own)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    psi = (x[:, None] < y[None, :]) + 0.5 * (x[:, None] == y[None, :])
    estimate = psi.mean()
    variance = psi.mean(axis=1).var(ddof=1) / len(x) + psi.mean(axis=0).var(ddof=1) / len(y)
    half = 1.959964 * np.sqrt(max(variance, 0.0))
    return float(max(0.0, estimate - half)), float(min(1.0, estimate + half))


def pair_effects(pairs: pd.DataFrame, runs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The forest plot's rows: label, estimate, ci_low, ci_high, decision, one per pair and
    part of the verdict's pairwise table where P(A<B) applies."""
    if pairs.empty:
        return pd.DataFrame(
            columns=["a", "b", "label", "estimate", "ci_low", "ci_high", "decision"]
        )
    if "part" in pairs:  # the verdict's table (CONTRACT.md)
        shown = pairs[pairs["part"].isin(["quality", "pooled"])]
        shown = shown[shown["decision"] != "not_applicable"]
        several = shown["part"].nunique() > 1
        return pd.DataFrame({
            "a": shown["a"].to_numpy(str),
            "b": shown["b"].to_numpy(str),
            "label": [f"{r.a} vs {r.b}" + (f" ({r.part})" if several else "")
                      for r in shown.itertuples()],
            "estimate": shown["estimate"].to_numpy(float),
            "ci_low": shown["ci_low"].to_numpy(float),
            "ci_high": shown["ci_high"].to_numpy(float),
            "decision": shown["decision"].to_numpy(str),
        })  # fmt: skip
    errors = analysis.ranked_error(runs, metric)
    samples = {c: errors[runs["cell"] == c].to_numpy(float) for c in runs["cell"].unique()}
    rows = []
    for row in pairs.itertuples():
        low, high = _p_below_ci(samples[row.a], samples[row.b])
        if row.significant:
            decision = "a_better" if row.p_a_below_b > 0.5 else "b_better"
        elif EQUIVALENCE_MARGIN[0] <= low and high <= EQUIVALENCE_MARGIN[1]:
            decision = "equivalent"
        else:
            decision = "undecided"
        rows.append((row.a, row.b, f"{row.a} vs {row.b}", row.p_a_below_b, low, high, decision))
    return pd.DataFrame(
        rows, columns=["a", "b", "label", "estimate", "ci_low", "ci_high", "decision"]
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


def _figures(
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
        made.append(save_figure(
            sweep_dir, "learning_curves",
            "Error margin against iteration (log after the first logged point): "
            + ("the median over seeds per cell, the band is the interquartile range"
               + ("; where a cell has both solved and stuck seeds, their medians are drawn "
                  "apart" if stuck else "")
               if len(order) <= plots.MAX_OVERLAID
               else "one panel per cell, every seed thin, the median thick, seed 1 dotted")
            + ("; the dashed line is the error threshold." if threshold else "."),
            plots.learning_curves(labelled, order, styles, threshold, split_solved=solving),
        ))  # fmt: skip
    made.append(save_figure(
        sweep_dir, "performance_profile",
        "Performance profile: for each final error margin, the share of a cell's seeds ending "
        "at or below it. A late step is stuck seeds; the height before it, the success rate.",
        plots.performance_profile(runs, order, styles, threshold=threshold),
    ))  # fmt: skip
    made.append(save_figure(
        sweep_dir, "final_errors",
        "Every seed's final error margin, cells best first; boxes show quartiles"
        + ("; hollow dots are seeds that did not solve the task" if stuck else "")
        + "; the star is seed 1.",
        plots.final_errors(runs, order, styles, mark_unsolved=solving),
    ))  # fmt: skip
    effects, trimmed = forest_rows(pair_effects(pairs, runs, "final_error"), order)
    if len(effects):
        made.append(save_figure(
            sweep_dir, "pairwise",
            "P(A<B), the chance that a seed of A ends below a seed of B, with its 95% CI, one "
            "row per pair; the shaded band is the equivalence margin." + trimmed,
            plots.forest(effects, margin, "Effect sizes: P(A<B) per pair"),
        ))  # fmt: skip
    if holdout is not None:
        holdout_cells, holdout_pairs = holdout
        made.append(save_figure(
            sweep_dir, "holdout_errors",
            "Every seed's error on the held-out rows, cells best first on it; the star is seed 1.",
            plots.final_errors(
                runs, holdout_cells["cell"].tolist(), styles, column="holdout_error",
                what="held-out error margin", mark_unsolved=solving,
            ),
        ))  # fmt: skip
        holdout_effects, trimmed = forest_rows(
            pair_effects(holdout_pairs, runs, "holdout_error"), holdout_cells["cell"].tolist()
        )
        if len(holdout_effects):
            made.append(save_figure(
                sweep_dir, "pairwise_holdout",
                "P(A<B) on the held-out error, with its 95% CI, one row per pair." + trimmed,
                plots.forest(holdout_effects, margin,
                             "Effect sizes on held-out error: P(A<B) per pair"),
            ))  # fmt: skip
    axes = analysis.varying_columns(runs)
    if len(axes) == 2 and all(cells[a].nunique() > 1 for a in axes):
        made.append(save_figure(
            sweep_dir, "heatmap", f"Median final error over {axes[0]} x {axes[1]}.",
            plots.heatmap(cells, axes[1], axes[0]),
        ))  # fmt: skip
    colours = {cell: style.colour for cell, style in styles.items()}
    made += placement_report.many_cell_figures(sweep_dir, cells, pairs, colours, save_figure)
    return made


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


def _cell_table(cells: pd.DataFrame, noisy: bool) -> pd.DataFrame:
    columns = NOISY_CELL_TABLE_COLUMNS if noisy else CELL_TABLE_COLUMNS
    if "holdout_accuracy" in cells and cells["holdout_accuracy"].isna().all():
        columns = {k: v for k, v in columns.items() if k != "holdout_accuracy"}
    return _shown(cells, columns)


def _margin(sweep_dir: Path) -> tuple[float, float]:
    """The sweep's equivalence margin for P(A<B) (``equivalence_margin``), or the default."""
    value = _sweep_config(sweep_dir).get("equivalence_margin")
    return EQUIVALENCE_MARGIN if value is None else parse_margin(value)


def _holdout_section(cells: pd.DataFrame, pairs: pd.DataFrame) -> Section:
    """Verdict and table for the error on rows never trained on."""
    shown = ("cell", "n_seeds", "median", "ci_low", "ci_high", "iqr", "holdout_accuracy")
    columns = {k: v for k, v in NOISY_CELL_TABLE_COLUMNS.items() if k in shown}
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
        table=_shown(cells, columns),
    )


def _sections(
    sweep_dir: Path,
    runs: pd.DataFrame,
    cells: pd.DataFrame,
    pairs: pd.DataFrame,
    failures: pd.DataFrame,
    figures: list[Figure],
    holdout: tuple[pd.DataFrame, pd.DataFrame] | None = None,
    robustness: analysis.Stability | None = None,
    margin: tuple[float, float] = EQUIVALENCE_MARGIN,
) -> list[Section]:
    config = _sweep_config(sweep_dir)
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
                    f"Command: `{_command(config)}`" if _command(config) else None,
                    f"{len(failed)} cell(s) failed with a code error and are left out: "
                    + "; ".join(f"job {r.job}: {r.reason}" for r in failed.itertuples())
                    if len(failed)
                    else None,
                )
                if p
            ),
            table=_run_table(runs),
        ),
        Section(
            "Cells",
            paragraphs=tuple(
                p
                for p in (
                    "Best first. 'Final error' is the error margin (mean |target - output|) of "
                    "the final weights, one forward pass after training. Diverged seeds count "
                    "as the worst possible error here and in summary.csv. The "
                    f"{analysis.CONFIDENCE:.0%} interval of the median is the exact "
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
                table=_shown(_decided_first(pairs), PAIR_TABLE_COLUMNS),
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
            else _best_first(failures, cells).rename(
                columns={
                    "n_unsolved": "unsolved seeds",
                    "failure_rate": "failure rate",
                    "unsolved_median_final_error": "unsolved: median final error",
                    "unsolved_median_max_abs_error": "unsolved: median worst |error|",
                    "solved_median_final_error": "solved: median final error",
                    "n_seeds": "seeds",
                }
            ),
        )
    )
    sections.append(_seed_section(runs, cells, holdout is not None))
    jobs = _job_provenance(sweep_dir, runs)
    sections.append(_reproduce_section(sweep_dir, config, jobs))
    if jobs:
        sections.append(
            Section(
                "Provenance",
                paragraphs=(
                    "Per-seed values depend on the floating-point order of the BLAS and CPU "
                    "that computed them; distributions over seeds do not.",
                ),
                table=_provenance_table(jobs, runs),
            )
        )
        origins = _origin_table(jobs, runs)
        unknown = origins["computed on"].str.startswith("not recorded") if len(origins) else []
        if len(origins) and all(unknown):
            sections.append(
                Section(
                    "Seeds taken from the cache",
                    paragraphs=(
                        "Every seed of this sweep came from the per-seed cache, filled before "
                        "nnsweep recorded where and when a seed was computed: their origin is "
                        "not known. Rerunning with an emptied cache records it.",
                    ),
                )
            )
        elif len(origins):
            sections.append(
                Section(
                    "Seeds taken from the cache",
                    paragraphs=("Where and when the seeds this sweep reused were computed.",),
                    table=_best_first(origins, cells),
                )
            )
    sections.append(_files_section(sweep_dir, runs))
    return sections


def _shown(table: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The columns of ``columns`` that ``table`` has, renamed for display."""
    present = {k: v for k, v in columns.items() if k in table}
    return table[list(present)].rename(columns=present)


def _best_first(table: pd.DataFrame, cells: pd.DataFrame) -> pd.DataFrame:
    """Rows in the order of the cells table (best median first)."""
    rank = {cell: i for i, cell in enumerate(cells["cell"])}
    return table.sort_values("cell", key=lambda c: c.map(rank), kind="stable")


def _is_decided(pairs: pd.DataFrame) -> pd.Series:
    if "decision" in pairs:
        return pairs["decision"].isin(["a_better", "b_better", "equivalent"])
    return pairs["significant"].astype(bool)


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
    seeded = analysis.seeded_runs(runs)
    seeded = seeded.assign(_error=analysis.ranked_error(seeded))
    seeded["rank"] = seeded.groupby("cell")["_error"].rank(method="min").astype(int)
    seeded = _best_first(seeded.sort_values(["_error", "seed"], kind="stable"), cells)
    seeded["first_below_threshold"] = seeded["first_below_threshold"].where(
        seeded["first_below_threshold"] >= 0, np.inf
    )
    columns = dict(SEED_TABLE_COLUMNS)
    if not holdout:
        columns.pop("holdout_error")
        columns.pop("holdout_accuracy")
    table = _shown(seeded, columns)
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


def _shown_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _reproduce_section(
    sweep_dir: Path, config: dict[str, Any], jobs: dict[int, dict[str, Any]]
) -> Section:
    """The commands that made these files, and the code state they ran on."""
    commits = sorted({str(p.get("git_commit")) for p in jobs.values() if p.get("git_commit")})
    dirty = [p.get("git_dirty") for p in jobs.values()]
    folder = str(config.get("hydra", {}).get("sweep", {}).get("dir") or "")
    if not folder or "${" in folder:  # the default dir is an interpolation: name the real one
        folder = _shown_path(sweep_dir)
    command = _command(config)
    lines = []
    if commits:
        lines += [
            f"git checkout {commits[0]}"
            + ("  # jobs ran on several commits" if len(commits) > 1 else "")
        ]
    lines += [
        "# the sweep (trains only seeds missing from results/.cache)",
        command or "# the command line was not recorded (no multirun.yaml)",
        "# the tables again from the job folders, then this report",
        f"python -m nnsweep collect {folder}",
        "# this report again from the stored tables, without training",
        f"python -m nnsweep report {folder}",
    ]  # fmt: skip
    state = (
        "not recorded (made before nnsweep recorded it)"
        if not dirty or any(d is None for d in dirty)
        else "dirty: uncommitted changes, the commit alone does not reproduce it"
        if any(dirty)
        else "clean"
    )
    return Section(
        "Reproduce",
        paragraphs=(f"Commit {', '.join(commits) or 'not recorded'}; working tree {state}.",),
        code="\n".join(lines),
    )


RAW_FILES = (
    (schema.RUNS, "one row per seed"),
    (schema.CURVES, "one row per seed and logged iteration"),
    (schema.SUMMARY, "per-cell counts and quartiles"),
    ("cell_stats.csv", "the cells table"),
    ("pairwise.csv", "the pairwise table"),
    ("failures.csv", "the failures table"),
    ("cell_stats_holdout.csv", "the cells table on held-out error"),
    ("pairwise_holdout.csv", "the pairwise table on held-out error"),
    ("multirun.yaml", "the sweep's full Hydra config"),
    ("report.md", "this report in Markdown"),
)


def _files_section(sweep_dir: Path, runs: pd.DataFrame) -> Section:
    links = [
        (f"{name}: {what}", name)
        for name, what in RAW_FILES
        if (sweep_dir / name).exists() or name == "report.md"
    ]
    links += [
        (f"job {job.name}: provenance.json", f"{job.name}/{schema.PROVENANCE}")
        for job in _gathered_job_dirs(sweep_dir, runs)
    ]
    return Section(
        "Files",
        paragraphs=(
            "Each job folder (0/, 1/, ...) also holds that cell's own runs.parquet, "
            "curves.parquet and weights.npz (final weights of every seed).",
        ),
        links=tuple(links),
    )


def write_report(sweep_dir: Path) -> Path:
    """Analyse the stored tables of ``sweep_dir`` and write the report; returns report.html."""
    runs = schema.with_legacy_settings(pd.read_parquet(sweep_dir / schema.RUNS))
    store.remove_report(sweep_dir)  # nothing of an earlier report survives unless rewritten
    curves_path = sweep_dir / schema.CURVES
    curves = pd.read_parquet(curves_path) if curves_path.exists() else pd.DataFrame()
    seeded = analysis.seeded_runs(runs)
    margin = _margin(sweep_dir)
    cells = analysis.cell_statistics(runs)
    by_metric = {"final_error": cells}
    if "holdout_error" in analysis.available_metrics(runs):
        by_metric["holdout_error"] = analysis.cell_statistics(runs, "holdout_error")
    # Every test the verdicts rely on, training and held-out, in one Holm family.
    rate_margin, smallest_effect = core.RATE_MARGIN, analysis.SMALLEST_EFFECT
    compared = wording.with_sentences(
        analysis.compare_metrics(
            runs, by_metric, margin=margin, rate_margin=rate_margin,
            smallest_effect=smallest_effect,
        ),
        margin, rate_margin, smallest_effect,
    )  # fmt: skip

    def of_metric(metric: str) -> pd.DataFrame:
        if compared.empty:
            return pd.DataFrame()
        return compared[compared["metric"] == metric].reset_index(drop=True)

    pairs = of_metric("final_error")
    failures = analysis.failure_summary(runs)
    _, robustness = analysis.robustness(runs, curves, margin=margin)
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
        _figures(sweep_dir, seeded, curves, cells, pairs, styles, holdout, margin)
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
    title = f"nnsweep report: {_sweep_config(sweep_dir).get('name') or sweep_dir.name}"
    markdown = render_markdown(title, sections)
    store.write_text(sweep_dir / "report.md", markdown)
    colours = {cell: style.colour for cell, style in styles.items()}
    page = render_html(title, sections, sweep_dir, colours)
    store.write_text(sweep_dir / "report.html", page)
    return sweep_dir / "report.html"
