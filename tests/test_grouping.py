"""Best/worst groups and compact letters: on hand-made patterns and on a synthetic sweep
whose groups are known."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from conftest import make_runs
from scipy import stats

from nnsweep.report import wording
from nnsweep.stats import analysis, grouping, per_cell


def shares_a_letter(letters: dict[str, str], a: str, b: str) -> bool:
    return bool(set(letters[a]) & set(letters[b]))  # fewer than 53 letters: one char each


def test_letters_of_a_known_pattern() -> None:
    order = list("ABCDEF")
    together = [set("ABC"), set("CD"), set("EF")]
    separated = {
        frozenset(p)
        for p in itertools.combinations(order, 2)
        if not any(set(p) <= group for group in together)
    }
    letters = grouping.compact_letters(order, separated)
    assert letters == {"A": "a", "B": "a", "C": "ab", "D": "b", "E": "c", "F": "c"}
    best, worst = grouping.best_and_worst_groups(order, separated)
    assert best == ["A", "B", "C"]
    assert worst == ["F", "E"]


def test_no_separation_is_one_letter_and_full_separation_is_one_each() -> None:
    order = [f"c{i}" for i in range(21)]
    assert set(grouping.compact_letters(order, set()).values()) == {"a"}
    every = {frozenset(p) for p in itertools.combinations(order, 2)}
    letters = grouping.compact_letters(order, every)
    assert [letters[c] for c in order] == list("abcdefghijklmnopqrstu")


@pytest.mark.parametrize("seed", range(40))
def test_letters_say_exactly_what_the_pairs_say(seed: int) -> None:
    rng = np.random.default_rng(seed)
    order = [f"c{i}" for i in range(int(rng.integers(3, 12)))]
    # Mostly interval-like patterns (what rank tests give), some arbitrary ones.
    level = np.sort(rng.normal(size=len(order)))
    width = rng.uniform(0.2, 1.5)
    separated = {
        frozenset((a, b))
        for (i, a), (j, b) in itertools.combinations(enumerate(order), 2)
        if abs(level[i] - level[j]) > width or rng.random() < 0.1
    }
    letters = grouping.compact_letters(order, separated)
    for a, b in itertools.combinations(order, 2):
        assert shares_a_letter(letters, a, b) == (frozenset((a, b)) not in separated), (a, b)
    assert letters[order[0]].startswith("a")


def _synthetic_runs(levels: dict[str, float], n_seeds: int = 50) -> pd.DataFrame:
    """A stored runs table: each cell's final errors lognormal around its level."""
    rng = np.random.default_rng(11)
    rows = []
    for job, (layers, level) in enumerate(levels.items()):
        for seed in range(1, n_seeds + 1):
            rows.append(
                {
                    "layers": layers,
                    "job": job,
                    "seed": seed,
                    "final_error": float(rng.lognormal(np.log(level), 0.25)),
                    "first_below_threshold": 10,
                }
            )
    return make_runs(rows)


def test_groups_of_a_synthetic_sweep_are_recovered() -> None:
    # 21 cells in three known groups whose medians differ twofold; identical within.
    groups = {"a": 0.001, "b": 0.002, "c": 0.004}
    levels = {f"{g}{i}": level for g, level in groups.items() for i in range(7)}
    runs = _synthetic_runs(levels)
    cells = per_cell.cell_statistics(runs)
    pairs = analysis.compare_pairs(runs, cells)
    order = cells["cell"].tolist()
    separated = grouping.separated_pairs(pairs)
    letters = grouping.compact_letters(order, separated)
    for a, b in itertools.combinations(order, 2):
        assert shares_a_letter(letters, a, b) == (a[0] == b[0]), (a, b, letters[a], letters[b])
    assert {letters[c] for c in order} == {"a", "b", "c"}
    assert all(letters[c] == "a" for c in order if c.startswith("a"))
    best, worst = grouping.best_and_worst_groups(order, separated)
    assert sorted(best) == [f"a{i}" for i in range(7)]
    assert sorted(worst) == [f"c{i}" for i in range(7)]
    verdict = wording.grouped_verdict(order, separated)
    assert "6 other cell(s) cannot be told apart" in verdict
    assert len(verdict) < 600


def test_separated_pairs_reads_the_verdicts_long_table() -> None:
    pairs = pd.DataFrame(
        {
            "a": ["x", "x", "x", "y"],
            "b": ["y", "y", "z", "z"],
            "part": ["reliability", "pooled", "pooled", "pooled"],
            "decision": ["a_better", "equivalent", "b_better", "undecided"],
        }
    )
    assert grouping.separated_pairs(pairs) == {frozenset(("x", "z"))}
    assert grouping.separated_pairs(pairs, part="reliability") == {frozenset(("x", "y"))}


def test_seed1_line_is_scipys_spearman() -> None:
    cells = pd.DataFrame(
        {"cell": list("abcde"), "median": [1, 2, 3, 4, 5], "seed1_error": [2, 1, 3, 5, 4.0]}
    )
    line = wording.seed1_line(cells)
    rho = stats.spearmanr(cells["median"], cells["seed1_error"]).statistic
    assert f"Spearman ρ = {rho:.2f} over 5 cells" in line
    assert line.count("\n") == 0
    assert grouping.seed1_order(cells).tolist() == [2, 1, 3, 5, 4]
    assert wording.seed1_line(cells.assign(seed1_error=np.nan)) is None


def test_many_cell_summary_counts_each_part_and_names_the_groups() -> None:
    order = [f"c{i}" for i in range(10)]
    rows = []
    for i, j in itertools.combinations(range(10), 2):
        pooled = "a_better" if j - i > 2 else "undecided" if j - i > 1 else "equivalent"
        rows.append({"a": order[i], "b": order[j], "part": "pooled", "decision": pooled})
        rows.append({"a": order[i], "b": order[j], "part": "reliability", "decision": "undecided"})
    pairs = pd.DataFrame(rows)
    labels = {"reliability": "Reliability (solve rate)", "pooled": "Pooled (error of all seeds)"}
    paragraphs = wording.many_cell_summary(order, pairs, labels, "error")
    assert paragraphs[0].startswith("10 cells, ranked in the cell table")
    assert (
        "Best on error: c0; 2 other cell(s) cannot be told apart from it (c1, c2)."
        in (paragraphs[0])
    )
    assert "Worst: c9; 2 other cell(s) cannot be told apart from it (c8, c7)." in paragraphs[0]
    assert paragraphs[1] == "Reliability (solve rate): 0 of 45 pairs told apart, 45 undecided."
    assert paragraphs[2].startswith(
        "Pooled (error of all seeds): 28 of 45 pairs told apart, 9 practically equivalent, "
        "8 undecided"
    )


def test_letter_ranges_shorten_long_runs_only() -> None:
    assert grouping.letter_ranges("abcdefghijklmnopqrstuvwxy") == "a-y"
    assert grouping.letter_ranges("bcdeghijmnostuv") == "b-e g-j m-o s-v"
    assert grouping.letter_ranges("abd") == "abd"
    assert grouping.letter_ranges("abcz") == "a-c z"
    assert grouping.letter_ranges("") == ""
