"""The report, regenerated from stored tables, checked against direct pandas/scipy sums."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli
from scipy import stats

from nnsweep import analysis, store

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
                    "activation": "sigmoid",
                    "output_activation": "sigmoid",
                    "init": "tutorial",
                    "bias": False,
                    "lr": 1.0,
                    "iterations": 1000,
                    "log_every": 500,
                    "error_threshold": 0.01,
                    "job": job,
                    "seed": seed,
                    "status": "diverged" if diverged else "ok",
                    "reason": "non-finite" if diverged else "",
                    "final_error": np.nan if diverged else final,
                    "diverged": diverged,
                    "solved": seed % 5 != 0,
                    "max_abs_error": 0.1,
                    "iterations_reached": 10 if diverged else 1000,
                    "first_below_threshold": 100 * seed,
                    "wall_seconds": 0.01,
                }
            )
            for iteration, error in ((0, 0.45), (500, 0.01 * scale), (999, final)):
                curves.append({"job": job, "seed": seed, "iteration": iteration, "error": error})
    runs = pd.DataFrame(rows)
    sweep_dir.mkdir(parents=True)
    store.write_parquet(sweep_dir / store.RUNS, runs)
    store.write_parquet(sweep_dir / store.CURVES, pd.DataFrame(curves))
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
    done = run_cli(["report", str(sweep_dir)])
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
    raw = []
    for row in pairs.itertuples():
        direct = stats.mannwhitneyu(samples[row.a], samples[row.b], alternative="two-sided")
        assert row.p_value == pytest.approx(direct.pvalue, rel=1e-12)
        below = np.mean([(x < y) + 0.5 * (x == y) for x in samples[row.a] for y in samples[row.b]])
        assert row.p_a_below_b == pytest.approx(below, rel=1e-12)
        raw.append(direct.pvalue)
    # Holm by hand: sort, multiply by (m - rank), running maximum, cap at 1.
    order = np.argsort(raw)
    expected = np.minimum(
        1, np.maximum.accumulate((len(raw) - np.arange(len(raw))) * np.array(raw)[order])
    )
    np.testing.assert_allclose(pairs["p_holm"].to_numpy()[order], expected, rtol=1e-12)

    verdicts = dict(zip(zip(pairs["a"], pairs["b"], strict=True), pairs["verdict"], strict=True))
    assert verdicts[("8-16-8", "16-8-8")].startswith("8-16-8 ends lower than 16-8-8")
    assert "cannot be told apart with 30 seeds each" in verdicts[("8-16-8", "8-8-8")]

    markdown = (sweep_dir / "report.md").read_text()
    assert "## Verdict" in markdown and "8-16-8 ends lower than 16-8-8" in markdown

    page = (sweep_dir / "report.html").read_text()
    parser = _Collector()
    parser.feed(page)
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == 3  # learning curves, final errors, pairwise matrix
    assert all((attrs["src"] or "").startswith("data:image/png;base64,") for attrs in images)
    assert sum(1 for tag, _ in parser.tags if tag == "table") >= 4
    assert EVIL not in page and "&lt;script&gt;" in page
    assert not any(tag == "script" for tag, _ in parser.tags)
    for name in ("learning_curves", "final_errors", "pairwise"):
        assert (sweep_dir / "figures" / f"{name}.png").stat().st_size > 10_000


def test_holm_matches_a_hand_computation() -> None:
    adjusted = analysis.holm(np.array([0.01, 0.04, 0.03, 0.5]))
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 0.5])


def test_a_sweep_of_two_numeric_axes_gets_a_heatmap(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "grid"
    runs = _fake_sweep(sweep_dir)
    grid = pd.concat(
        [runs.assign(lr=lr, job=runs["job"] + 3 * k) for k, lr in enumerate((0.5, 1.0))]
    )
    store.write_parquet(sweep_dir / store.RUNS, grid)
    store.write_parquet(sweep_dir / store.CURVES, pd.DataFrame())
    from nnsweep.report import write_report

    write_report(sweep_dir)
    assert (sweep_dir / "figures" / "heatmap.png").exists()
    assert "heatmap.png" in (sweep_dir / "report.md").read_text()


def test_report_of_a_missing_directory_is_a_one_line_error(tmp_path: Path) -> None:
    done = run_cli(["report", str(tmp_path / "nope")])
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nnsweep: error: report needs" in done.stderr
