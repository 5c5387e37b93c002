"""Summaries of many pairwise decisions: best and worst groups, compact letters, seed 1.

With 21 cells there are 210 pairs; nobody reads 210 sentences. These functions fold the
pairwise decisions into what a reader can hold:

* the group of cells that cannot be told apart from the best cell, and from the worst;
* a compact letter display (Piepho 2004, "insert and absorb"): cells that share a letter
  are not significantly different, cells that share none are;
* one Spearman line for how the tutorial's single seed orders the cells.

They take the cell order (best first) and the set of pairs the tests separate, so they
work with any pairwise table: ``separated_pairs`` reads the verdict's ``decision`` column,
or the older ``significant`` one.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nnsweep.stats import analysis

Pair = frozenset[str]

# decide_pair's outcomes that separate two cells (see analysis.compare_pairs).
SEPARATED = ("a_better", "b_better")


def separated_pairs(pairs: pd.DataFrame, part: str = "pooled") -> set[Pair]:
    """Pairs whose comparison decided that one cell is better.

    Reads the verdict's long table (``part`` and ``decision`` columns; ``part`` picks which
    comparison counts) or the older wide one (a boolean ``significant`` column).
    """
    if pairs.empty:
        return set()
    if "decision" in pairs:
        chosen = pairs[pairs["part"] == part] if "part" in pairs else pairs
        if part == "pooled" and "part" in pairs:
            # Where every seed succeeded pooled is left out: quality then covers all seeds.
            chosen = analysis.headline_rows(pairs)
        chosen = chosen[chosen["decision"].isin(SEPARATED)]
    else:
        chosen = pairs[pairs["significant"].astype(bool)]
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


def seed1_line(cells: pd.DataFrame) -> str | None:
    """One line on the tutorial's method (one seed per cell) against all seeds."""
    agreement = seed1_agreement(cells)
    if agreement is None:
        return None
    rho, count = agreement
    if not np.isfinite(rho):
        return None
    return (
        "Seed 1's order (one seed per cell, the tutorial's method) agrees with the medians' "
        f"order with Spearman ρ = {rho:.2f} over {count} cells; each cell's seed-1 rank is in "  # noqa: RUF001
        "the cell table."
    )


def seed1_order(cells: pd.DataFrame) -> pd.Series:
    """Each cell's place (1 = best) when cells are ordered by seed 1's error alone."""
    return cells["seed1_error"].rank(method="min").astype("Int64")


def _names(cells: Sequence[str], limit: int) -> str:
    if len(cells) <= limit:
        return ", ".join(cells)
    return ", ".join(cells[:limit]) + f" and {len(cells) - limit} more"


def grouped_verdict(
    order: Sequence[str],
    separated: set[Pair],
    what: str = "final error",
    limit: int = 8,
    counts: bool = True,
) -> str:
    """The verdict for many cells: the best group, the worst group, and the letters.

    At most ``limit`` names per group are written out; the rest are counted.
    """
    if len(order) < 2:
        return "Only one cell: nothing to compare."
    if not separated:
        return (
            f"No cell can be told apart from any other on {what}: the sweep does not support "
            "any ranking."
        )
    best, worst = best_and_worst_groups(order, separated)
    parts = [
        f"Best on {what}: {order[0]}; {len(best) - 1} other cell(s) cannot be told apart "
        f"from it" + (f" ({_names(best[1:], limit)})." if len(best) > 1 else "."),
        f"Worst: {order[-1]}; {len(worst) - 1} other cell(s) cannot be told apart from it"
        + (f" ({_names(worst[1:], limit)})." if len(worst) > 1 else "."),
    ]
    if set(best) & set(worst):
        parts.append("The two groups overlap: the ranking between them is not settled.")
    if counts:
        parts.append(
            f"{len(separated)} of {len(order) * (len(order) - 1) // 2} pairs are told apart; "
            "in the cell table, cells that share a letter cannot be told apart."
        )
    else:
        parts.append(
            "In the cell table, cells that share a letter cannot be told apart (pooled comparison)."
        )
    return " ".join(parts)


MANY_CELLS = 8  # above this many cells a verdict summarises pairs instead of naming them

DECISION_WORDS = {
    "a_better": "told apart",
    "b_better": "told apart",
    "equivalent": "practically equivalent",
    "undecided": "undecided",
    "not_applicable": "left out",
}


def decision_counts(rows: pd.DataFrame) -> str:
    """'95 of 210 pairs told apart, 12 practically equivalent, 103 undecided'."""
    words = rows["decision"].map(DECISION_WORDS).value_counts()
    pieces = [f"{words.get('told apart', 0)} of {len(rows)} pairs told apart"]
    pieces += [
        f"{words[word]} {word}"
        for word in ("practically equivalent", "undecided", "left out")
        if words.get(word, 0)
    ]
    return ", ".join(pieces)


def many_cell_summary(
    order: Sequence[str], pairs: pd.DataFrame, labels: dict[str, str], what: str
) -> list[str]:
    """A verdict for many cells: the best and worst groups on the pooled comparison, then
    one line of counts per part (``labels``: part -> its title), instead of pair lists."""
    paragraphs = [
        f"{len(order)} cells, ranked in the cell table and the ranked figure. "
        + grouped_verdict(order, separated_pairs(pairs, "pooled"), what, counts=False)
    ]
    for part, label in labels.items():
        rows = pairs[pairs["part"] == part] if "part" in pairs else pairs
        if len(rows):
            paragraphs.append(f"{label}: {decision_counts(rows)}.")
    if len(paragraphs) > 1:
        paragraphs[-1] = paragraphs[-1][:-1] + " (every pair in the pair table)."
    return paragraphs
