"""The report, regenerated from stored tables, checked against direct pandas/scipy sums."""

from __future__ import annotations

import shutil
from html.parser import HTMLParser
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import make_runs, run_cli_here

from nnsweep import schema, store
from nnsweep.report import plots
from nnsweep.stats import core, per_cell

EVIL = "<script>alert('x')</script>"


def _fake_sweep(sweep_dir: Path) -> pd.DataFrame:
    """Three cells' stored tables, as a sweep would leave them (one cell clearly better)."""
    rng = np.random.default_rng(7)
    rows, curves = [], []
    for job, (layers, scale) in enumerate([("8-16-8", 1.0), ("8-8-8", 1.0), ("16-8-8", 3.0)]):
        for seed in range(1, 31):
            final = float(rng.lognormal(np.log(0.002 * scale), 0.3))
            diverged = layers == "8-8-8" and seed == 30
            rows.append(
                {
                    "dataset": EVIL,
                    "layers": layers,
                    "log_every": 500,
                    "job": job,
                    "seed": seed,
                    "reason": "non-finite" if diverged else "",
                    "final_error": np.nan if diverged else final,
                    "solved": seed % 5 != 0,
                    "iterations_reached": 10 if diverged else 1000,
                    "first_below_threshold": 100 * seed,
                }
            )
            for iteration, error in ((0, 0.45), (500, 0.01 * scale), (999, final)):
                curves.append({"job": job, "seed": seed, "iteration": iteration, "error": error})
    runs = make_runs(rows)
    sweep_dir.mkdir(parents=True)
    store.write_parquet(sweep_dir / schema.RUNS, runs)
    store.write_parquet(sweep_dir / schema.CURVES, pd.DataFrame(curves))
    return runs


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_report_command_regenerates_the_report_and_its_numbers_are_right(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    runs = _fake_sweep(sweep_dir)
    done = run_cli_here(["report", str(sweep_dir)])
    assert done.returncode == 0, done.stderr

    cells = pd.read_csv(sweep_dir / "cell_stats.csv").set_index("layers")
    for layers, group in runs.groupby("layers"):
        errors = group["final_error"].where(group["status"] == "ok", np.inf)
        assert cells.loc[layers, "median"] == pytest.approx(errors.median(), rel=1e-12)
        assert cells.loc[layers, "n_seeds"] == len(group)
        assert cells.loc[layers, "solved_fraction"] == pytest.approx(group["solved"].mean())
        assert (
            cells.loc[layers, "ci_low"]
            <= cells.loc[layers, "median"]
            <= cells.loc[layers, "ci_high"]
        )
    assert cells.loc["8-8-8", "n_diverged"] == 1
    assert cells.index[0] == "8-16-8"  # best first

    pairs = pd.read_csv(sweep_dir / "pairwise.csv")
    samples = {
        layers: g["final_error"].where(g["status"] == "ok", np.inf).to_numpy()
        for layers, g in runs.groupby("layers")
    }
    pooled = pairs[pairs["part"] == "pooled"]
    assert len(pooled) == 3
    for row in pooled.itertuples():
        x, y = samples[row.a], samples[row.b]
        # The verdict's one rank test (tests/test_verdict.py writes it out by hand).
        assert row.p_value == pytest.approx(core.rank_test(x, y).p_value()[0], rel=1e-12)
        below = np.mean([(x < y) + 0.5 * (x == y) for x in samples[row.a] for y in samples[row.b]])
        assert row.estimate == pytest.approx(below, rel=1e-12)
    # tests/test_verdict.py recomputes every other number of this table.
    sentences = dict(
        zip(zip(pooled["a"], pooled["b"], strict=True), pooled["sentence"], strict=True)
    )
    assert "8-16-8 ends with lower error than 16-8-8" in sentences[("8-16-8", "16-8-8")]
    assert "undecided" in sentences[("8-16-8", "8-8-8")]

    markdown = (sweep_dir / "report.md").read_text()
    assert "## Verdict" in markdown and "8-16-8 ends with lower error than 16-8-8" in markdown
    # The table a reader reads says "A better", in words; pairwise.csv keeps the codes.
    assert "a_better" not in markdown and "b_better" not in markdown
    assert "| A better |" in markdown or "| B better |" in markdown
    assert set(pairs["decision"]) & {"a_better", "b_better"}

    page = (sweep_dir / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == 4  # learning curves, performance profile, final errors, forest
    assert all((attrs["src"] or "").startswith("data:image/png;base64,") for attrs in images)
    assert sum(1 for tag, _ in parser.tags if tag == "table") >= 4
    assert EVIL not in page and "&lt;script&gt;" in page
    scripts = [attrs for tag, attrs in parser.tags if tag == "script"]
    assert len(scripts) == 1 and "src" not in scripts[0]  # only the inline sort script
    for name in ("learning_curves", "performance_profile", "final_errors", "pairwise"):
        assert (sweep_dir / "figures" / f"{name}.png").stat().st_size > 10_000
    _check_page(page, sweep_dir)


class _Page(HTMLParser):
    """The parts of report.html the checks need: images, links, scripts, seed rows, swatches."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self.seed_rows: list[list[str]] = []
        self.swatches: dict[str, set[str]] = {}
        self._in_seeds = self._in_script = self._in_body = False
        self._colour: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]
        if tag == "img":
            self.images.append(found.get("src") or "")
        if tag == "script":
            self._in_script = True
        if tag == "table" and found.get("id") == "seeds":
            self._in_seeds = True
        if tag == "tbody":
            self._in_body = True
        if tag == "tr" and self._in_seeds and self._in_body:
            self.seed_rows.append([])
        if tag == "td":
            self._colour, self._text = found.get("data-colour"), []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False
        if tag == "table":
            self._in_seeds = self._in_body = False
        if tag == "tbody":
            self._in_body = False
        if tag == "td":
            text = "".join(self._text).strip()
            if self._in_seeds and self._in_body:
                self.seed_rows[-1].append(text)
            if self._colour:
                self.swatches.setdefault(text, set()).add(self._colour)
            self._colour = None

    def handle_data(self, data: str) -> None:
        self._text.append(data)
        if self._in_script:
            self.scripts.append(data)


def _check_page(page: str, sweep_dir: Path) -> None:
    """What issue 10 asks of every report.html."""
    parsed = _Page()
    parsed.feed(page)
    assert parsed.images and all(src.startswith("data:image/png;base64,") for src in parsed.images)
    # Self-contained: nothing fetched from a network, only relative links to its own files.
    assert not [u for u in parsed.urls if "//" in u.split("base64,")[0] or u.startswith("/")]
    assert "http" not in "".join(parsed.scripts) and "@import" not in page
    assert "table.sortable" in "".join(parsed.scripts) and "input.filter" in page
    runs = per_cell.seeded_runs(pd.read_parquet(sweep_dir / schema.RUNS))
    assert len(parsed.seed_rows) == len(runs)  # one row per seed
    shown = sorted((row[0], int(row[1])) for row in parsed.seed_rows)
    assert shown == sorted(zip(runs["cell"], runs["seed"].astype(int), strict=True))
    assert page.count('<tr class="seed1">') == int((runs["seed"] == 1).sum())
    # Every swatch of a cell, in every table, has the colour of the report's one mapping.
    cells = pd.read_csv(sweep_dir / "cell_stats.csv")["cell"].tolist()
    styles = plots.cell_styles(cells)
    assert set(parsed.swatches) == set(cells)
    assert all(parsed.swatches[c] == {styles[c].colour} for c in cells)


SHIPPED = ["neurons_early", "pitfall", "moons_holdout"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_reports_are_self_contained_sortable_and_one_colour_per_cell(name: str) -> None:
    sweep_dir = Path(__file__).resolve().parents[1] / "results" / name
    _check_page((sweep_dir / "report.html").read_text(), sweep_dir)
    markdown = (sweep_dir / "report.md").read_text()
    assert "## Every seed" in markdown and "## Reproduce" in markdown
    assert f"python -m nnsweep report results/{name}" in markdown


def test_one_style_per_cell_colour_blind_palette_and_a_second_cue_past_it() -> None:
    names = [f"cell{i}" for i in range(3 * len(plots.PALETTE))]
    styles = plots.cell_styles(names)
    assert styles == plots.cell_styles(names)  # the same cells, the same styles
    assert all(style.colour in plots.PALETTE for style in styles.values())
    first = [styles[n] for n in names[: len(plots.PALETTE)]]
    assert len({s.colour for s in first}) == len(first)  # distinct colours while they last
    cues = {(s.colour, s.linestyle, s.marker) for s in styles.values()}
    assert len(cues) == len(names)  # past the palette the line style and marker differ
    assert all(s.linestyle == "-" for s in first)


def test_every_figure_draws_each_cell_in_its_mapped_colour(tmp_path: Path) -> None:
    runs = per_cell.seeded_runs(_fake_sweep(tmp_path / "s"))
    runs["unstable"] = runs["seed"] % 3 == 0  # crosses, still in the cell's colour
    curves = pd.read_parquet(tmp_path / "s" / schema.CURVES).merge(
        runs[["job", "seed", "cell", "solved"]], on=["job", "seed"]
    )
    for n_cells in (3, 10):  # one axes, and small multiples past MAX_OVERLAID
        names = {layers: f"shape {i}" for i, layers in enumerate(runs["layers"].unique())}
        many = pd.concat([runs.assign(cell=runs["layers"].map(names) + f" v{k}") for k in range(4)])
        many_curves = pd.concat(
            [curves.assign(cell=curves["cell"].map(names) + f" v{k}") for k in range(4)]
        )
        order = sorted(many["cell"].unique())[:n_cells]
        subset = many[many["cell"].isin(order)]
        styles = plots.cell_styles(order[::-1])  # any order: the mapping alone decides
        figures = [
            plots.learning_curves(many_curves[many_curves["cell"].isin(order)], order, styles),
            plots.performance_profile(subset, order, styles),
            plots.final_errors(subset, order, styles),
        ]
        for figure in figures:
            drawn = plots.cell_colours(figure)
            assert set(drawn) == set(order)
            assert all(drawn[c] == {styles[c].colour.upper()} for c in order)
            plt.close(figure)


def test_holm_matches_a_hand_computation() -> None:
    adjusted = core.holm(np.array([0.01, 0.04, 0.03, 0.5]))
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 0.5])


def test_a_sweep_of_two_numeric_axes_gets_a_heatmap(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "grid"
    runs = _fake_sweep(sweep_dir)
    grid = pd.concat(
        [runs.assign(lr=lr, job=runs["job"] + 3 * k) for k, lr in enumerate((0.5, 1.0))]
    )
    store.write_parquet(sweep_dir / schema.RUNS, grid)
    store.write_parquet(sweep_dir / schema.CURVES, pd.DataFrame())
    from nnsweep.report.sweep_report import write_report

    write_report(sweep_dir)
    assert (sweep_dir / "figures" / "heatmap.png").exists()
    assert "heatmap.png" in (sweep_dir / "report.md").read_text()


def test_report_of_a_missing_directory_is_a_one_line_error(tmp_path: Path) -> None:
    done = run_cli_here(["report", str(tmp_path / "nope")])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nnsweep: error: report needs" in done.stderr


def test_a_forest_of_many_pairs_keeps_the_ones_a_ranking_rests_on() -> None:
    from itertools import combinations

    from nnsweep.report.sweep_figures import MAX_FOREST_ROWS, forest_rows

    order = [f"c{i}" for i in range(20)]  # 190 pairs
    effects = pd.DataFrame(
        [(a, b, f"{a} vs {b}", 0.6, 0.5, 0.7, "undecided") for a, b in combinations(order, 2)],
        columns=["a", "b", "label", "estimate", "ci_low", "ci_high", "decision"],
    )
    kept, note = forest_rows(effects, order)
    assert len(kept) == 19 + 18 <= MAX_FOREST_ROWS and "190" in note
    assert set(kept["label"]) >= {"c0 vs c19", "c7 vs c8"} and "c3 vs c9" not in set(kept["label"])
    assert forest_rows(effects.head(10), order)[0].equals(effects.head(10))


@pytest.mark.parametrize(
    ("arithmetics", "same_bits", "depends"),
    [(["portable"], True, False), (["numpy"], False, True), (["portable", "numpy"], True, True)],
)
def test_provenance_says_what_the_arithmetic_makes_per_seed_values_depend_on(
    arithmetics: list[str], same_bits: bool, depends: bool
) -> None:
    from nnsweep.report.run_record import _arithmetic_sentence

    runs = pd.DataFrame({"arithmetic": arithmetics})
    sentence = _arithmetic_sentence(runs)
    assert ("same bits on every CPU" in sentence) == same_bits
    assert ("depend, bit for bit, on the floating-point order" in sentence) == depends
    # Tables from before the setting existed were trained with the host's numpy.
    assert "depend, bit for bit" in _arithmetic_sentence(pd.DataFrame({"seed": [1]}))


def test_the_files_section_links_every_file_of_the_sweep_folder(tmp_path: Path) -> None:
    # A newcomer found checksums.json in the folder but not in the report.
    sweep_dir = tmp_path / "neurons_early"
    shutil.copytree(Path(__file__).resolve().parents[1] / "results" / "neurons_early", sweep_dir)
    done = run_cli_here(["report", str(sweep_dir)])
    assert done.returncode == 0, done.stderr
    markdown = (sweep_dir / "report.md").read_text()
    files = markdown.split("## Files", 1)[1]
    top_level = {p.name for p in sweep_dir.iterdir() if p.is_file() and p.name[0] != "."}
    unlinked = {name for name in top_level if f"]({name})" not in files}
    # owner.json is the running sweep's claim on the folder, not a result: git ignores it,
    # so a link to it from a shipped report would be broken.
    assert unlinked <= {"report.html", "owner.json"}, unlinked
    assert "owner.json" not in files
