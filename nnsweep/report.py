"""The sweep report: Markdown and self-contained HTML, with figures and CSV tables.

``write_report(sweep_dir)`` reads the stored tables (``runs.parquet``, ``curves.parquet``),
never trains, and writes into the sweep directory:

* ``report.md`` and ``report.html`` (figures embedded as data URIs, every value escaped);
* ``figures/*.png``;
* ``cell_stats.csv``, ``pairwise.csv`` and ``failures.csv``.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import yaml
from matplotlib.axes import Axes

from nnsweep import analysis, plots, store

FIGURES = "figures"
MAX_VERDICT_PAIRS = 10  # beyond this many pairs the verdict points to the pairwise table


@dataclass(frozen=True)
class Figure:
    """A saved PNG and what it shows."""

    file: str  # path relative to the sweep directory
    caption: str  # one sentence under the image


@dataclass(frozen=True)
class Section:
    """A titled block: paragraphs, then an optional table, then optional figures."""

    title: str
    paragraphs: tuple[str, ...] = ()
    table: pd.DataFrame | None = None
    bullets: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = ()


# --------------------------------------------------------------------------------------
# Number formatting
# --------------------------------------------------------------------------------------


def _number(value: Any) -> str:
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        if np.isnan(value):
            return "-"
        if np.isinf(value):
            return "never" if value > 0 else "-inf"
        return f"{value:.4g}"
    return str(value)


def _formatted(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.apply(lambda column: column.map(_number)).astype(str)


# --------------------------------------------------------------------------------------
# What was run
# --------------------------------------------------------------------------------------


def _sweep_config(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return {}
    try:
        return yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError:
        return {}


def _provenance(sweep_dir: Path) -> dict[str, Any]:
    for job_dir in store.job_dirs(sweep_dir):
        path = job_dir / store.PROVENANCE
        if path.exists():
            details = json.loads(path.read_text())
            details.pop("cache_keys", None)
            details.pop("trained_seeds", None)
            return details
    return {}


def _command(config: dict[str, Any]) -> str | None:
    overrides = config.get("hydra", {}).get("overrides", {})
    if overrides.get("task") is None:
        return None
    hydra_overrides = [
        o for o in overrides.get("hydra", []) if not str(o).startswith("hydra.mode=")
    ]
    return " ".join(["python -m nnsweep", *map(str, overrides["task"]), *map(str, hydra_overrides)])


def _run_table(runs: pd.DataFrame) -> pd.DataFrame:
    seeds = runs["seed"].dropna()
    rows = []
    for column in store.CELL_COLUMNS:
        values = runs[column].dropna().unique().tolist()
        rows.append({"setting": column, "value": ", ".join(_number(v) for v in values)})
    if len(seeds):
        rows.append(
            {
                "setting": "seeds per cell",
                "value": f"{int(seeds.min())}..{int(seeds.max())} "
                f"({runs.groupby(store.CELL_COLUMNS, dropna=False)['seed'].count().max()} "
                "per cell)",
            }
        )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------
# Figures
# --------------------------------------------------------------------------------------


def _save(figure: plt.Figure, sweep_dir: Path, name: str) -> str:
    relative = f"{FIGURES}/{name}.png"
    path = sweep_dir / relative
    path.parent.mkdir(exist_ok=True)
    store.atomic_write(path, lambda p: figure.savefig(p, dpi=110, format="png"))
    plt.close(figure)
    return relative


def _figure(
    sweep_dir: Path, name: str, caption: str, kind: str, size: int, draw: Callable[[Axes], None]
) -> Figure:
    """Draw one figure with ``draw(ax)``, save it as figures/<name>.png, and describe it."""
    figure, ax = plots.new_figure(size, kind)
    draw(ax)
    return Figure(_save(figure, sweep_dir, name), caption)


def _figures(
    sweep_dir: Path,
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    cells: pd.DataFrame,
    pairs: pd.DataFrame,
    holdout: pd.DataFrame | None = None,
) -> list[Figure]:
    order = cells["cell"].tolist()
    n_cells = len(order)
    made = []
    if not curves.empty:
        bands = analysis.curve_bands(curves, runs)
        made.append(_figure(
            sweep_dir, "learning_curves",
            "Median error margin over seeds per cell; the band is the IQR.",
            "curves", n_cells, lambda ax: plots.learning_curves(bands, order, ax),
        ))  # fmt: skip
    made.append(_figure(
        sweep_dir, "final_errors",
        "Every seed's final error margin; boxes show quartiles, cells best first.",
        "box", n_cells, lambda ax: plots.final_errors(runs, order, ax),
    ))  # fmt: skip
    if n_cells > 2:
        made.append(_figure(
            sweep_dir, "pairwise",
            "Chance that a seed of the row cell ends below a seed of the column cell.",
            "matrix", n_cells, lambda ax: plots.pairwise_matrix(pairs, order, ax),
        ))  # fmt: skip
    if holdout is not None:
        holdout_order = holdout["cell"].tolist()
        made.append(_figure(
            sweep_dir, "holdout_errors",
            "Every seed's error on the held-out rows; cells best first.",
            "box", n_cells,
            lambda ax: plots.final_errors(
                runs, holdout_order, ax, column="holdout_error", what="held-out error margin"
            ),
        ))  # fmt: skip
    axes = analysis.varying_columns(runs)
    if len(axes) == 2 and all(cells[a].nunique() > 1 for a in axes):
        made.append(_figure(
            sweep_dir, "heatmap", f"Median final error over {axes[0]} x {axes[1]}.",
            "heatmap", max(cells[a].nunique() for a in axes),
            lambda ax: plots.heatmap(cells, axes[1], axes[0], ax),
        ))  # fmt: skip
    return made


# --------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------

CELL_TABLE_COLUMNS = {
    "cell": "cell",
    "n_seeds": "seeds",
    "n_diverged": "diverged",
    "median": "median final error",
    "ci_low": "95% CI low",
    "ci_high": "95% CI high",
    "iqr": "IQR",
    "mean": "mean",
    "solved_fraction": "solved",
    "median_iterations_to_threshold": "median iterations to threshold",
    "seed1_error": "seed 1 final error",
    "seed1_rank": "seed 1 rank in cell",
}

PAIR_TABLE_COLUMNS = {
    "a": "A",
    "b": "B",
    "p_a_below_b": "P(A<B)",
    "p_value": "p (Mann-Whitney U)",
    "p_holm": "p (Holm)",
    "verdict": "verdict",
    "solved_a": "A solved",
    "solved_b": "B solved",
    "p_solved_holm": "solve-rate p (Fisher, Holm)",
}


def _holdout_section(cells: pd.DataFrame, pairs: pd.DataFrame) -> Section:
    """Verdict and table for the error on rows never trained on."""
    shown = ("cell", "n_seeds", "median", "ci_low", "ci_high", "iqr", "mean")
    columns = {k: v for k, v in CELL_TABLE_COLUMNS.items() if k in shown}
    columns["median"] = "median held-out error"
    return Section(
        "Verdict on held-out error",
        paragraphs=(
            "The same tests on each seed's error margin over the held-out rows (scored with "
            "the final weights; never trained on).",
            analysis.overall_verdict(cells, pairs, what="held-out error"),
        ),
        bullets=tuple(pairs["verdict"]) if 0 < len(pairs) <= MAX_VERDICT_PAIRS else (),
        table=cells[list(columns)].rename(columns=columns),
    )


def _sections(
    sweep_dir: Path,
    runs: pd.DataFrame,
    cells: pd.DataFrame,
    pairs: pd.DataFrame,
    failures: pd.DataFrame,
    figures: list[Figure],
    holdout: tuple[pd.DataFrame, pd.DataFrame] | None = None,
) -> list[Section]:
    config = _sweep_config(sweep_dir)
    threshold = ", ".join(_number(v) for v in runs["error_threshold"].dropna().unique())
    verdict = analysis.overall_verdict(cells, pairs)
    solved = analysis.overall_solved_verdict(pairs)
    seed1 = analysis.seed1_note(cells)
    failed = runs[runs["status"] == "failed"]
    notes = str(config.get("notes") or "").strip()
    sections = [Section("About this sweep", paragraphs=(notes,))] if notes else []
    sections += [
        Section(
            "Verdict",
            paragraphs=tuple(p for p in (verdict, solved, seed1) if p),
            # Every pair in words, while that stays readable; the table below has them all.
            bullets=tuple(pairs["verdict"]) + tuple(pairs["solved_verdict"])
            if 0 < len(pairs) <= MAX_VERDICT_PAIRS
            else (),
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
            paragraphs=(
                "Best first. Diverged seeds count as the worst possible error. The confidence "
                f"interval of the median is a {analysis.CONFIDENCE:.0%} percentile bootstrap "
                f"({analysis.BOOTSTRAP_RESAMPLES} resamples, fixed seed). 'Solved' is the "
                "fraction of seeds whose every output rounds to its target. 'Iterations to "
                f"threshold' is the median first iteration with error margin below {threshold} "
                "('never' when most seeds never got there).",
            ),
            table=cells[list(CELL_TABLE_COLUMNS)].rename(columns=CELL_TABLE_COLUMNS),
        ),
    ]
    if holdout is not None:
        verdict_at = next(i for i, section in enumerate(sections) if section.title == "Verdict")
        sections.insert(verdict_at + 1, _holdout_section(*holdout))
    from nnsweep.auto_report import auto_section  # n_seeds=auto sweeps only

    auto = auto_section(sweep_dir)
    if auto is not None:  # right after the verdict: its decisions are the ones to quote
        sections.insert(1 + next(i for i, s in enumerate(sections) if s.title == "Verdict"), auto)
    if len(pairs):
        sections.append(
            Section(
                "Pairwise tests",
                paragraphs=(
                    "Two-sided Mann-Whitney U test per pair (seeds of different cells are "
                    "independent samples, not pairs), Holm-corrected over all "
                    f"{len(pairs)} pair(s) at alpha = {analysis.ALPHA}. P(A<B) is the chance "
                    "that a random seed of A ends below a random seed of B. Solve rates are "
                    "compared with Fisher's exact test, Holm-corrected on their own.",
                ),
                table=pairs[list(PAIR_TABLE_COLUMNS)].rename(columns=PAIR_TABLE_COLUMNS),
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
            table=failures.rename(
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
    sections.append(Section("Figures", figures=tuple(figures)))
    provenance = _provenance(sweep_dir)
    if provenance:
        rows = [
            {"item": k, "value": json.dumps(v) if not isinstance(v, str) else v}
            for k, v in sorted(provenance.items())
        ]
        sections.append(Section("Provenance", table=pd.DataFrame(rows)))
    return sections


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def _markdown_table(frame: pd.DataFrame) -> str:
    cells = _formatted(frame)

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.replace("|", "\\|").replace("\n", " ") for v in values) + " |"

    rows = [line(list(map(str, cells.columns))), "|" + "---|" * len(cells.columns)]
    rows += [line(list(row)) for row in cells.itertuples(index=False)]
    return "\n".join(rows)


def render_markdown(title: str, sections: list[Section]) -> str:
    parts = [f"# {title}", ""]
    for section in sections:
        parts += [f"## {section.title}", ""]
        parts += [p + "\n" for p in section.paragraphs]
        parts += [f"- {b}" for b in section.bullets] + ([""] if section.bullets else [])
        if section.table is not None and not section.table.empty:
            parts += [_markdown_table(section.table), ""]
        for figure in section.figures:
            parts += [f"![{figure.caption}]({figure.file})", "", f"*{figure.caption}*", ""]
    return "\n".join(parts)


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 70rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
figure { margin: 1rem 0 2rem; } img { max-width: 100%; } figcaption { color: #555; }
code { background: #f3f3f3; padding: 0 0.2rem; }
"""


def render_html(title: str, sections: list[Section], sweep_dir: Path) -> str:
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts += [f"<p>{_inline(p)}</p>" for p in section.paragraphs]
        if section.bullets:
            parts.append(
                "<ul>" + "".join(f"<li>{_inline(b)}</li>" for b in section.bullets) + "</ul>"
            )
        if section.table is not None and not section.table.empty:
            parts.append(_formatted(section.table).to_html(index=False, escape=True, border=0))
        for figure in section.figures:
            data = base64.b64encode((sweep_dir / figure.file).read_bytes()).decode("ascii")
            parts.append(
                f'<figure><img alt="{html.escape(figure.caption)}" '
                f'src="data:image/png;base64,{data}">'
                f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>"
            )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(sweep_dir: Path) -> Path:
    """Analyse the stored tables of ``sweep_dir`` and write the report; returns report.html."""
    runs = pd.read_parquet(sweep_dir / store.RUNS)
    curves_path = sweep_dir / store.CURVES
    curves = pd.read_parquet(curves_path) if curves_path.exists() else pd.DataFrame()
    seeded = analysis.seeded_runs(runs)
    cells = analysis.cell_statistics(runs)
    pairs = analysis.pairwise_tests(runs, cells) if len(cells) > 1 else pd.DataFrame()
    failures = analysis.failure_summary(runs)
    tables = {"cell_stats": cells, "pairwise": pairs, "failures": failures}
    holdout = None
    if "holdout_error" in analysis.available_metrics(runs):
        holdout_cells = analysis.cell_statistics(runs, "holdout_error")
        holdout_pairs = (
            analysis.pairwise_tests(runs, holdout_cells, "holdout_error")
            if len(holdout_cells) > 1
            else pd.DataFrame()
        )
        holdout = (holdout_cells, holdout_pairs)
        tables.update(cell_stats_holdout=holdout_cells, pairwise_holdout=holdout_pairs)
    for name, table in tables.items():
        store.atomic_write(sweep_dir / f"{name}.csv", lambda p, t=table: t.to_csv(p, index=False))
    figures = (
        _figures(sweep_dir, seeded, curves, cells, pairs, holdout[0] if holdout else None)
        if len(cells)
        else []
    )
    sections = _sections(sweep_dir, runs, cells, pairs, failures, figures, holdout)
    title = f"nnsweep report: {_sweep_config(sweep_dir).get('name') or sweep_dir.name}"
    markdown = render_markdown(title, sections)
    store.atomic_write(sweep_dir / "report.md", lambda p: p.write_text(markdown))
    page = render_html(title, sections, sweep_dir)
    store.atomic_write(sweep_dir / "report.html", lambda p: p.write_text(page))
    return sweep_dir / "report.html"
