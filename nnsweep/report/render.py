"""How a report looks: its building blocks, number formats, figures on disk, Markdown and HTML.

Every report (a sweep's, the placement study's) is a list of ``Section``s; this module turns
them into ``report.md`` and a self-contained ``report.html`` (figures embedded as data URIs,
every value escaped, tables sortable and filterable by inline script). It imports nothing
else of the report package: what a section says is decided elsewhere.
"""

from __future__ import annotations

import base64
import functools
import html
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure as PlotFigure

from nnsweep import store

FIGURES = "figures"  # every report's figures go to <report folder>/figures/<name>.png

# Every label is plain text: no TeX, no mathtext, so a "$" in a cell name prints as "$". It
# holds while a figure is drawn and saved (``plain_text``, ``save_figure``), never globally:
# importing nnsweep leaves a notebook's backend and rcParams as they were.
PLAIN_TEXT = {"text.usetex": False, "text.parse_math": False}


@dataclass(frozen=True)
class Figure:
    """A saved PNG and what it shows."""

    file: str  # path relative to the sweep directory
    caption: str  # one sentence under the image


@dataclass(frozen=True)
class Section:
    """A titled block: paragraphs, bullets, code, a table, figures, then links."""

    title: str
    paragraphs: tuple[str, ...] = ()
    table: pd.DataFrame | None = None
    bullets: tuple[str, ...] = ()
    figures: tuple[Figure, ...] = ()
    code: str | None = None  # shown as a code block (the Reproduce commands)
    collapse: str | None = None  # when set, the table folds under <details> with this summary
    table_id: str | None = None  # a sortable, filterable table (the per-seed one)
    highlight: tuple[bool, ...] = ()  # per table row: highlighted (seed 1)
    links: tuple[tuple[str, str], ...] = ()  # (label, relative path)


def save_figure(folder: Path, name: str, caption: str, figure: PlotFigure) -> Figure:
    """Save ``figure`` atomically as ``folder/figures/<name>.png``; the report's ``Figure``."""
    relative = f"{FIGURES}/{name}.png"
    path = folder / relative
    path.parent.mkdir(exist_ok=True)
    with matplotlib.rc_context(PLAIN_TEXT):  # tick labels are made while saving
        store.atomic_write(path, lambda p: figure.savefig(p, dpi=110, format="png"))
    return Figure(relative, caption)


def new_figure(
    rows: int = 1, columns: int = 1, *, figsize: tuple[float, float], **options: Any
) -> tuple[PlotFigure, Any]:
    """A figure and its axes (as ``pyplot.subplots`` gives them), made without pyplot: no
    backend is chosen or changed, and nothing keeps the figure alive once it is saved."""
    figure = PlotFigure(figsize=figsize, layout=options.pop("layout", None))
    return figure, figure.subplots(rows, columns, **options)


def plain_text(draw: Callable[..., PlotFigure]) -> Callable[..., PlotFigure]:
    """Draw with ``PLAIN_TEXT`` in force, so every label made on the way is plain text."""

    @functools.wraps(draw)
    def drawn(*args: Any, **kwargs: Any) -> PlotFigure:
        with matplotlib.rc_context(PLAIN_TEXT):
            return draw(*args, **kwargs)

    return drawn


# --------------------------------------------------------------------------------------
# Number formatting
# --------------------------------------------------------------------------------------


def format_number(value: Any) -> str:
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


# How a column's numbers look, keyed by the column's source name, not by its display
# heading: a table renamed for display with ``shown`` remembers its sources, so renaming a
# heading does not change its numbers' look. Other numeric columns get a format chosen
# from their values (``_auto_format``); a table not made with ``shown`` is looked up by
# its own column names.
PERCENT = "percent"  # 0.84 -> 84%
P_VALUE = "p_value"  # four decimals, "< 0.0001" below that
ITERATIONS = "iterations"  # +inf iterations means the threshold was never reached: "never"
COLUMN_FORMATS = {
    "solve_rate": PERCENT,
    "solve_ci_low": PERCENT,
    "solve_ci_high": PERCENT,
    "failure_rate": PERCENT,
    "unstable_fraction": PERCENT,
    "accuracy": PERCENT,
    "holdout_accuracy": PERCENT,
    "p_value": P_VALUE,
    "p_holm": P_VALUE,
    "p_equivalence_holm": P_VALUE,
    "first_below_threshold": ITERATIONS,
    "median_iterations_to_threshold": ITERATIONS,
    "iteration": ITERATIONS,
    "iterations": ITERATIONS,
}
SOURCES = "sources"  # DataFrame.attrs key of ``shown`` tables: display heading -> source


def shown(table: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    """The columns of ``columns`` (source -> heading) that ``table`` has, renamed for
    display; the result remembers each heading's source, which picks its number format."""
    present = {k: v for k, v in columns.items() if k in table}
    renamed = table[list(present)].rename(columns=present)
    renamed.attrs = {**renamed.attrs, SOURCES: {v: k for k, v in present.items()}}
    return renamed


def _auto_format(values: np.ndarray) -> Callable[[float], str]:
    """One format for a float column: fixed decimals giving the smallest value 3 significant
    digits (at most 4 on the typical value); scientific when values go below 1e-5."""
    finite = np.abs(values[np.isfinite(values) & (values != 0)])
    if finite.size == 0:
        return lambda v: f"{v:.4g}"
    if np.all(values[np.isfinite(values)] == np.round(values[np.isfinite(values)])):
        return lambda v: f"{v:,.0f}"
    low, typical = finite.min(), np.median(finite)
    if low < 1e-5 or finite.max() >= 1e6:
        return lambda v: f"{v:.2e}"
    decimals = int(max(0, min(2 - np.floor(np.log10(low)), 3 - np.floor(np.log10(typical)))))
    return lambda v: f"{v:,.{decimals}f}"


def _column_texts(source: str, column: pd.Series) -> list[str]:
    """Every value of one column in that column's single format (``COLUMN_FORMATS``)."""
    if (
        pd.api.types.is_bool_dtype(column)
        or column.map(lambda v: isinstance(v, bool | np.bool_)).all()
    ):
        return ["yes" if bool(v) else "no" for v in column]
    if not _is_numeric(column):
        return [format_number(v) for v in column]  # text: as written
    values = column.to_numpy(dtype=float)
    kind = COLUMN_FORMATS.get(source)
    if kind == PERCENT:
        fmt: Callable[[float], str] = lambda v: f"{v:.0%}"  # noqa: E731
    elif kind == P_VALUE:
        fmt = lambda v: "< 0.0001" if v < 1e-4 else f"{v:.4f}"  # noqa: E731
    else:
        fmt = _auto_format(values)
    never = "never" if kind == ITERATIONS else "inf"
    return [
        "-" if np.isnan(v) else (never if v > 0 else "-inf") if np.isinf(v) else fmt(v)
        for v in values
    ]


def _is_numeric(column: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)


def _formatted(frame: pd.DataFrame) -> pd.DataFrame:
    sources = frame.attrs.get(SOURCES, {})
    return pd.DataFrame(
        {name: _column_texts(str(sources.get(name, name)), frame[name]) for name in frame.columns},
        dtype=str,
    )


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def _markdown_table(frame: pd.DataFrame) -> str:
    cells = _formatted(frame)

    def line(values: list[str]) -> str:
        return (
            "| "
            + " | ".join(markdown_text(v).replace("|", "\\|").replace("\n", " ") for v in values)
            + " |"
        )

    rows = [line(list(map(str, cells.columns))), "|" + "---|" * len(cells.columns)]
    rows += [line(list(row)) for row in cells.itertuples(index=False)]
    return "\n".join(rows)


def render_markdown(title: str, sections: list[Section]) -> str:
    parts = [f"# {title}", ""]
    for section in sections:
        parts += [f"## {section.title}", ""]
        parts += [markdown_text(p) + "\n" for p in section.paragraphs]
        parts += [f"- {markdown_text(b)}" for b in section.bullets]
        parts += [""] if section.bullets else []
        if section.code:
            parts += ["```sh", section.code, "```", ""]
        if section.table is not None and not section.table.empty:
            table = _markdown_table(section.table)
            if section.collapse:  # GitHub renders a Markdown table inside <details>
                table = f"<details><summary>{html.escape(section.collapse)}</summary>\n\n{table}"
                table += "\n\n</details>"
            parts += [table, ""]
        for figure in section.figures:
            parts += [f"[![{figure.caption}]({figure.file})]({figure.file})", ""]
            parts += [f"*{markdown_text(figure.caption)}*", ""]
        parts += [f"- [{label}]({target})" for label, target in section.links]
        parts += [""] if section.links else []
    return "\n".join(parts)


# What CommonMark would read as markup rather than text: a "<" that opens a tag, a comment,
# a declaration or an autolink, and a "&" that spells an entity. "P(A<B)" and "16-8-8 < 8-8-8"
# are none of these, so they stay as written and the raw report.md reads as it renders.
_MARKUP_LT = re.compile(
    r"<(?=[A-Za-z][A-Za-z0-9-]*(?:\s[^<>]*)?/?>"  # an open tag
    r"|/[A-Za-z][A-Za-z0-9-]*\s*>"  # a closing tag
    r"|[!?]"  # a comment, declaration, CDATA or processing instruction
    r"|[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*>"  # an autolink
    r"|[^\s@<>]+@[^\s@<>]+>)"  # an e-mail autolink
)
_ENTITY_AMP = re.compile(r"&(?=#?[A-Za-z0-9]+;)")


def markdown_text(text: str) -> str:
    """``text`` for report.md: shown as written by a Markdown renderer, never run as HTML.

    Escapes only what would be read as markup (a note holding "<script>" stays text), not
    every "<", so comparisons such as P(A<B) read the same in the raw file. Code spans are
    literal in Markdown and are left alone.
    """
    pieces = text.split("`")
    return "`".join(
        piece
        if index % 2 and index < len(pieces) - 1  # a closed code span
        else _MARKUP_LT.sub("&lt;", _ENTITY_AMP.sub("&amp;", piece))
        for index, piece in enumerate(pieces)
    )


def _inline(text: str) -> str:
    """Escape, then turn `code` spans into <code>."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


STYLE = """
body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
.wrap { overflow-x: auto; max-width: 100%; margin: 0.5rem 0 1.5rem; }
table { border-collapse: collapse; font-size: 0.88rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top;
         white-space: nowrap; }
th { background: #f3f3f3; white-space: normal; vertical-align: bottom; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.prose { white-space: normal; min-width: 22rem; }
tr.seed1 td { background: #fff3c4; font-weight: 600; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th::after { content: " \\2195"; color: #999; font-size: 0.8em; }
.sw { display: inline-block; width: 0.8em; height: 0.8em; margin-right: 0.35em;
      border: 1px solid #0003; vertical-align: -0.05em; }
figure { margin: 1rem 0 2rem; } img { max-width: 100%; height: auto; }
figcaption { color: #555; }
code { background: #f3f3f3; padding: 0 0.2rem; }
pre code { background: none; padding: 0; }
pre { background: #f6f6f6; border: 1px solid #ddd; padding: 0.6rem 0.8rem; overflow-x: auto; }
details > summary { cursor: pointer; margin: 0.5rem 0; font-weight: 600; }
input.filter { font: inherit; padding: 0.2rem 0.4rem; width: min(28rem, 100%); margin: 0.3rem 0; }
"""

# Sort on a heading click (numbers by data-v, text by its letters), filter rows by words.
# Inline and dependency-free, so the page stays one self-contained file.
SCRIPT = """
document.querySelectorAll("table.sortable").forEach(function (table) {
  var body = table.tBodies[0];
  table.querySelectorAll("th").forEach(function (th, col) {
    th.addEventListener("click", function () {
      var up = th.dataset.dir !== "asc";
      th.dataset.dir = up ? "asc" : "desc";
      var key = function (row) {
        var cell = row.cells[col];
        if (cell.dataset.v === undefined) return cell.textContent;
        var v = parseFloat(cell.dataset.v);
        return isNaN(v) ? Infinity : v;
      };
      var rows = Array.prototype.slice.call(body.rows);
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        var d = typeof x === "number" ? (x < y ? -1 : x > y ? 1 : 0)
                                      : x.localeCompare(y, undefined, {numeric: true});
        return up ? d : -d;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
document.querySelectorAll("input.filter").forEach(function (input) {
  var body = document.getElementById(input.dataset.table).tBodies[0];
  input.addEventListener("input", function () {
    var words = input.value.toLowerCase().split(/\\s+/).filter(Boolean);
    Array.prototype.forEach.call(body.rows, function (row) {
      var text = row.textContent.toLowerCase();
      row.hidden = !words.every(function (w) { return text.indexOf(w) >= 0; });
    });
  });
});
"""

SWATCH_COLUMNS = ("cell", "A", "B")  # columns naming a cell get its colour's swatch
PROSE_COLUMNS = ("verdict", "sentence")  # sentences may wrap


def _html_table(
    frame: pd.DataFrame,
    colours: Mapping[str, str],
    table_id: str | None = None,
    highlight: tuple[bool, ...] = (),
) -> str:
    """A table with numbers right-aligned in one format per column, cell names unbroken
    and swatched in their figure colour; sortable (raw values in data-v) when it has an id."""
    texts = _formatted(frame)
    numeric = [_is_numeric(frame[name]) for name in frame.columns]
    head = "".join(
        f"<th{' class=num' if is_number else ''}>{html.escape(str(name))}</th>"
        for name, is_number in zip(frame.columns, numeric, strict=True)
    )
    rows = []
    for index in range(len(frame)):
        cells = []
        for column, (name, is_number) in enumerate(zip(frame.columns, numeric, strict=True)):
            text = html.escape(texts.iat[index, column])
            raw = frame.iat[index, column]
            if is_number:
                value = float(pd.to_numeric(raw, errors="coerce"))
                sort_key = f' data-v="{value!r}"' if table_id else ""
                cells.append(f'<td class="num"{sort_key}>{text}</td>')
            elif name in SWATCH_COLUMNS and raw in colours:
                swatch = f'<span class="sw" style="background:{colours[raw]}"></span>'
                cells.append(f'<td data-colour="{colours[raw]}">{swatch}{text}</td>')
            elif name in PROSE_COLUMNS:
                cells.append(f'<td class="prose">{text}</td>')
            else:
                cells.append(f"<td>{text}</td>")
        marked = ' class="seed1"' if index < len(highlight) and highlight[index] else ""
        rows.append(f"<tr{marked}>{''.join(cells)}</tr>")
    attributes = f' id="{table_id}" class="sortable"' if table_id else ""
    table = (
        f"<table{attributes}><thead><tr>{head}</tr></thead>"
        f"<tbody>\n{chr(10).join(rows)}\n</tbody></table>"
    )
    search = (
        f'<input class="filter" type="search" data-table="{table_id}" '
        f'placeholder="Filter rows, e.g. 8-16-8 no" aria-label="filter rows">'
        if table_id
        else ""
    )
    return f'{search}<div class="wrap">{table}</div>'


def render_html(
    title: str,
    sections: list[Section],
    sweep_dir: Path,
    colours: Mapping[str, str] | None = None,
) -> str:
    colours = colours or {}
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
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
        if section.code:
            parts.append(f"<pre><code>{html.escape(section.code)}</code></pre>")
        if section.table is not None and not section.table.empty:
            table = _html_table(section.table, colours, section.table_id, section.highlight)
            if section.collapse:
                table = (
                    f"<details><summary>{html.escape(section.collapse)}</summary>{table}</details>"
                )
            parts.append(table)
        for figure in section.figures:
            data = base64.b64encode((sweep_dir / figure.file).read_bytes()).decode("ascii")
            target = html.escape(figure.file)
            parts.append(
                f'<figure><a href="{target}"><img alt="{html.escape(figure.caption)}" '
                f'src="data:image/png;base64,{data}"></a>'
                f"<figcaption>{html.escape(figure.caption)} "
                f'(<a href="{target}">{html.escape(Path(figure.file).name)}</a>)'
                "</figcaption></figure>"
            )
        if section.links:
            parts.append(
                "<ul>"
                + "".join(
                    f'<li><a href="{html.escape(target)}">{html.escape(label)}</a></li>'
                    for label, target in section.links
                )
                + "</ul>"
            )
    parts.append(f"<script>{SCRIPT}</script>")
    parts.append("</body></html>")
    return "\n".join(parts)
