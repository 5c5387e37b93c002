"""The many-cell figures and the placement study's combined report, on synthetic tables."""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from test_placement import synthetic, two_part

from nnsweep import schema, store
from nnsweep.report import placement_report, plots_many, wording
from nnsweep.report import sweep_report as report
from nnsweep.stats import analysis, grouping, per_cell, robust


def _texts(figure: plt.Figure) -> list[str]:
    return [t.get_text() for ax in figure.axes for t in ax.texts]


def test_matrix_has_numbers_up_to_12_cells_and_none_at_21() -> None:
    for size, numbered in ((6, True), (21, False)):
        order = [f"c{i}" for i in range(size)]
        pairs = pd.DataFrame(
            [
                {"a": a, "b": b, "part": "pooled", "estimate": 0.7}
                for a, b in itertools.combinations(order, 2)
            ]
        )
        separated = {frozenset(order[:2])}
        figure = plots_many.pairwise_matrix(pairs, order, separated)
        texts = [t for t in _texts(figure) if t]
        assert (len(texts) == size * (size - 1)) == numbered
        if numbered:
            assert sum(t.endswith("*") for t in texts) == 2
        else:
            assert texts == []
        plt.close(figure)
    matrix = plots_many.matrix_values(pairs, order)
    assert matrix[0, 1] == 0.7 and np.isclose(matrix[1, 0], 0.3) and np.isnan(matrix[0, 0])


def test_ranked_dots_puts_the_best_on_top_with_its_letters() -> None:
    runs, _ = synthetic(effect=1.5)
    cells = per_cell.cell_statistics(runs)
    letters = {cell: "ab"[i % 2] for i, cell in enumerate(cells["cell"])}
    figure = plots_many.ranked_dots(cells, letters)
    ax = figure.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    ticks = list(ax.get_yticks())
    assert labels[ticks.index(max(ticks))] == cells["cell"].iloc[0]
    assert sorted(t for t in _texts(figure) if t != "group") == sorted(letters.values())
    plt.close(figure)


def _study(tmp_path: Path) -> Path:
    """Two parts: a two-part table with known descriptors, and a flat one-part table."""
    study = tmp_path / "study"
    tables = (("first", two_part(n_seeds=30)), ("second", synthetic(effect=0.0, seed=5)))
    for name, (runs, curves) in tables:
        runs = runs.assign(
            dataset=f"task_{name}", n_weights=runs["weights_no_bias"], wall_seconds=0.01
        )
        (study / name).mkdir(parents=True)
        store.write_parquet(study / name / schema.RUNS, runs)
        store.write_parquet(study / name / schema.CURVES, curves)
    return study


def test_combined_report_answers_per_task(tmp_path: Path) -> None:
    study = _study(tmp_path)
    assert placement_report.main([str(study)]) == 0
    markdown = (study / "report.md").read_text()
    answer = markdown.split("## Answer")[1].split("\n## ")[0]
    assert answer.strip().startswith("What explains a shape's training best: task_first at 32")
    first = answer.split("**task_first")[1].split("**task_second")[0]
    assert "the error of the solved: the last layer's width" in answer
    assert "On the final error of the seeds that solved (a description of the runs that " in first
    assert "the last layer's width helps (x0." in first
    assert "Front-loading alone" in first and "beside the last layer's width it" in first
    assert "no detectable difference" not in markdown
    trends = pd.read_csv(study / "placement_trends.csv")
    assert sorted(trends["dataset"]) == ["task_first", "task_second"]
    descriptors = pd.read_csv(study / "placement_descriptors.csv")
    assert set(descriptors["part"]) == {"solve", "quality"}
    for name in ("placement_final_error", "placement_descriptors", "placement_over_training"):
        assert (study / "figures" / f"{name}.png").exists()
    assert "## What each descriptor explains" in markdown
    assert "## Error of the seeds that solved: the selection-free check" in markdown
    assert "Selection-free check, on the " in first
    assert "data:image/png;base64" in (study / "report.html").read_text()


def test_combined_report_refuses_a_folder_without_sweeps(tmp_path: Path, capsys) -> None:
    assert placement_report.main([str(tmp_path)]) == 2
    assert "no sub-folder holds a sweep's runs.parquet" in capsys.readouterr().err


def test_grouping_of_a_21_cell_sweep_fits_in_a_few_lines() -> None:
    runs, _ = synthetic(effect=1.5)
    cells = per_cell.cell_statistics(runs)
    pairs = analysis.compare_pairs(runs, cells)
    order = cells["cell"].tolist()
    verdict = wording.grouped_verdict(order, grouping.separated_pairs(pairs))
    assert len(order) == 21
    assert len(verdict) < 600, len(verdict)


VERDICT_LIMIT = 1500  # characters: a 21-cell verdict must read in well under a minute


@pytest.mark.slow
def test_a_21_cell_report_stays_readable(tmp_path: Path) -> None:
    runs, curves = synthetic(effect=1.5)
    runs = runs.assign(
        reason="",
        max_abs_error=0.1,
        iterations_reached=1000,
        wall_seconds=0.01,
        n_weights=runs["weights_no_bias"],
        holdout_error=np.nan,
        accuracy=1.0,
        holdout_accuracy=np.nan,
        end_change=0.0,
        unstable=False,
        dataset_sha256="0" * 64,
    )
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    store.write_parquet(sweep_dir / schema.RUNS, runs)
    store.write_parquet(sweep_dir / schema.CURVES, curves)
    report.write_report(sweep_dir)
    markdown = (sweep_dir / "report.md").read_text()
    verdict = markdown.split("## Verdict\n")[1].split("\n## ")[0].strip()
    assert len(verdict) < VERDICT_LIMIT, len(verdict)
    assert "Best on final error:" in verdict and "Worst:" in verdict
    assert "Spearman ρ = " in verdict
    assert verdict.count(" vs ") == 0  # no pair listed one by one
    cell_header = next(line for line in markdown.splitlines() if line.startswith("| cell |"))
    assert "| group |" in cell_header and "seed 1 order among cells" in cell_header
    assert "## Where the neurons go (placement)" in markdown
    figures = {p.name for p in (sweep_dir / "figures").iterdir()}
    assert {"ranked.png", "pairwise_matrix.png", "placement_final_error.png"} <= figures


def test_a_pair_by_pair_robustness_sentence_is_cut_to_a_count() -> None:
    """The short form comes from the decisions (wording), never from parsing the sentence."""
    changes = ((("a", "b"), "undecided", "a"), (("c", "d"), "c", "undecided"))
    stability = robust.Stability(
        (0.25, 0.5, 0.75, 1.0), {0.25: 2500, 0.5: 5000, 0.75: 7500, 1.0: 10000}, 0.5, 0.25, changes
    )
    paragraph = wording.robustness_sentence(stability)
    assert paragraph.kind == "robustness"
    assert "a vs b (undecided at 25%, a lower later)" in paragraph
    assert paragraph.short == (
        "Robustness: the verdict on all seeds' training error is stable from iteration 5,000 "
        "(50%) on; it differs at 25%: 2 pair decision(s) differ; the pair table gives the "
        "final ones."
    )
    stable = robust.Stability((0.5, 1.0), {0.5: 2, 1.0: 4}, 0.5, None, ())
    assert wording.robustness_sentence(stable).short == wording.robustness_sentence(stable)
    # Listing paragraphs are dropped by kind for many cells, whatever their words.
    kept = wording.many_cell_paragraphs(
        [wording.Paragraph("anything", "order"), paragraph, "plain text stays"]
    )
    assert kept == [paragraph.short, "plain text stays"]
