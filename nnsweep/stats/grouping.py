"""Summaries of many pairwise decisions: best and worst groups, compact letters, seed 1.

With 21 cells there are 210 pairs; nobody reads 210 sentences. These functions fold the
pairwise decisions into what a reader can hold:

* the group of cells that cannot be told apart from the best cell, and from the worst;
* a compact letter display (Piepho 2004, "insert and absorb"): cells that share a letter
  are not significantly different, cells that share none are;
* Spearman's rho between how the tutorial's single seed orders the cells and the medians.

The sentences made from these live in ``nnsweep.report.wording``. They take the cell order
(best first) and the set of pairs the tests separate, so they work with any pairwise table:
``separated_pairs`` reads the verdict's ``decision`` column.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

import pandas as pd
from scipy import stats

from nnsweep.stats import analysis

Pair = frozenset[str]

# decide_pair's outcomes that separate two cells (see analysis.compare_pairs).
SEPARATED = ("a_better", "b_better")


def separated_pairs(pairs: pd.DataFrame, part: str = "pooled") -> set[Pair]:
    """Pairs whose comparison decided that one cell is better.

    Reads the verdict's long table (``part`` and ``decision`` columns; ``part`` picks which
    comparison counts).
    """
    if pairs.empty:
        return set()
    chosen = pairs[pairs["part"] == part] if "part" in pairs else pairs
    if part == "pooled" and "part" in pairs:
        # Where every seed succeeded pooled is left out: quality then covers all seeds.
        chosen = analysis.headline_rows(pairs)
    chosen = chosen[chosen["decision"].isin(SEPARATED)]
    return {frozenset((row.a, row.b)) for row in chosen.itertuples()}


def best_and_worst_groups(
    order: Sequence[str], separated: set[Pair]
) -> tuple[list[str], list[str]]:
    """The cells not separated from the best (``order[0]``), and from the worst (last).

    Each group lists its anchor first, then the others in ``order``.
    """
    if not order:
        return [], []
    best, worst = order[0], order[-1]
    best_group = [c for c in order if c == best or frozenset((best, c)) not in separated]
    worst_group = [
        c for c in reversed(order) if c == worst or frozenset((worst, c)) not in separated
    ]
    return best_group, worst_group


def _letter(index: int) -> str:
    """a..z, then A..Z, then aa, ab, ... (enough for any table)."""
    alphabet = string.ascii_lowercase + string.ascii_uppercase
    if index < len(alphabet):
        return alphabet[index]
    return _letter(index // len(alphabet) - 1) + alphabet[index % len(alphabet)]


def compact_letters(order: Sequence[str], separated: Iterable[Pair]) -> dict[str, str]:
    """A compact letter display: cells sharing a letter are not significantly different.

    Insert-and-absorb (Piepho 2004): start with one letter for every cell; for each
    separated pair, split every letter holding both cells into one without each; drop
    letters that another letter contains. Letters are then named in the order of their
    best cell, so the best cell has "a". Every separated pair shares no letter, and every
    pair that is not separated shares at least one.
    """
    position = {cell: i for i, cell in enumerate(order)}
    columns: list[frozenset[str]] = [frozenset(order)]
    for pair in sorted(separated, key=lambda p: sorted(position[c] for c in p)):
        first, second = sorted(pair, key=position.__getitem__)
        split: list[frozenset[str]] = []
        for column in columns:
            if first in column and second in column:
                split += [column - {first}, column - {second}]
            else:
                split.append(column)
        # Absorb: a letter whose cells another letter already covers adds nothing.
        unique = list(dict.fromkeys(split))
        columns = [c for c in unique if c and not any(c < other for other in unique)]
    columns.sort(key=lambda column: sorted(position[c] for c in column))
    letters = {cell: "" for cell in order}
    for index, column in enumerate(columns):
        for cell in column:
            letters[cell] += _letter(index)
    return letters


def letter_ranges(letters: str) -> str:
    """Runs of 3 or more consecutive letters written as ranges, for display.

    'abcdefghz' -> 'a-h z', 'bcdeghijmno' -> 'b-e g-j m-o', 'abd' -> 'abd'. (With cells
    ordered by median, a letter usually covers a run of neighbours, so its cells' strings
    are runs too: ranges keep a 25-letter display short.)
    """
    runs: list[str] = []
    for letter in letters:
        if runs and ord(letter) == ord(runs[-1][-1]) + 1:
            runs[-1] += letter
        else:
            runs.append(letter)
    tokens: list[str] = []
    for run in runs:
        if len(run) >= 3:
            tokens.append(f"{run[0]}-{run[-1]}")
        elif tokens and "-" not in tokens[-1]:
            tokens[-1] += run
        else:
            tokens.append(run)
    return " ".join(tokens)


def seed1_agreement(cells: pd.DataFrame) -> tuple[float, int] | None:
    """Spearman's rho between the cells' medians and seed 1's errors, and the cell count.

    None when a cell lacks seed 1 or there are fewer than three cells (no correlation).
    """
    if len(cells) < 3 or cells["seed1_error"].isna().any():
        return None
    rho = stats.spearmanr(cells["median"], cells["seed1_error"]).statistic
    return float(rho), len(cells)


def seed1_order(cells: pd.DataFrame) -> pd.Series:
    """Each cell's place (1 = best) when cells are ordered by seed 1's error alone."""
    return cells["seed1_error"].rank(method="min").astype("Int64")


MANY_CELLS = 8  # above this many cells a verdict summarises pairs instead of naming them
