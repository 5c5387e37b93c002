"""The report section of a sweep that tunes the learning rate per shape (``tune_seeds``).

Shows the shape x lr table on the tuning seeds, which lr each shape got, and the verdict at
the tuned lr beside the verdict at the tutorial's lr = 1, both on the evaluation seeds only
(``nnsweep.stats.tuning`` explains the nesting).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from nnsweep.config import parse_margin
from nnsweep.report import wording
from nnsweep.report.render import Section
from nnsweep.stats import analysis, per_cell, tuning

TITLE = "Each shape at its own learning rate (nested tuning)"


def _seed_ranges(seeds: Sequence[int]) -> str:
    if not seeds:
        return "none"
    return (
        f"{seeds[0]}..{seeds[-1]}"
        if list(seeds) == list(range(seeds[0], seeds[-1] + 1))
        else (", ".join(str(s) for s in seeds))
    )


def _number(value: float) -> str:
    return f"{value:g}"


def _verdict(rows: pd.DataFrame, margin: tuple[float, float]) -> tuple[list[str], pd.DataFrame]:
    """The standard verdict (``analysis``) on ``rows``, labelled by shape only."""
    rows = rows.assign(lr="tuned") if rows[tuning.AXIS].nunique() > 1 else rows
    cells = per_cell.cell_statistics(rows)
    if len(cells) < 2:
        return ["Fewer than two shapes: nothing to compare."], pd.DataFrame()
    pairs = analysis.compare_metrics(rows, {"final_error": cells}, margin=margin)
    paragraphs = wording.verdict_paragraphs(cells, pairs, "final_error")
    family = wording.family_sentence(pairs)
    return [p for p in (*paragraphs, family) if p], pairs


def _winner(row: pd.Series) -> str:
    decision = str(row["decision"])
    if decision == "a_better":
        return f"{row['a']} lower" if row["part"] != "reliability" else f"{row['a']} more often"
    if decision == "b_better":
        return f"{row['b']} lower" if row["part"] != "reliability" else f"{row['b']} more often"
    return decision.replace("_", " ")


def side_by_side(tuned: pd.DataFrame, baseline: pd.DataFrame) -> pd.DataFrame:
    """Every pair and part: the decision at the tuned lr beside the one at lr = 1."""
    if tuned.empty or baseline.empty:
        return pd.DataFrame()

    def keyed(pairs: pd.DataFrame) -> dict[tuple[frozenset, str], str]:
        return {(frozenset((r["a"], r["b"])), r["part"]): _winner(r) for _, r in pairs.iterrows()}

    at_tuned, at_one = keyed(tuned), keyed(baseline)
    rows = []
    for (pair, part), decision in at_tuned.items():
        a, b = sorted(pair)
        rows.append(
            {
                "pair": f"{a} vs {b}",
                "part": part,
                "at tuned lr": decision,
                "at lr = 1": at_one.get((pair, part), "-"),
            }
        )
    table = pd.DataFrame(rows)
    table = table[
        (table["at tuned lr"] != "not applicable") | (table["at lr = 1"] != "not applicable")
    ]
    table = table.assign(same=np.where(table["at tuned lr"] == table["at lr = 1"], "yes", "no"))
    return table.reset_index(drop=True)


def _at_the_edge(chosen: pd.DataFrame, runs: pd.DataFrame) -> str:
    """A warning when a shape's chosen lr is the grid's smallest or largest."""
    grid = np.sort(runs[tuning.AXIS].astype(float).unique())
    low = chosen[np.isclose(chosen[tuning.AXIS].astype(float), grid[0])]["layers"].tolist()
    high = chosen[np.isclose(chosen[tuning.AXIS].astype(float), grid[-1])]["layers"].tolist()
    words = []
    if high:
        words.append(
            f"{', '.join(high)} got the largest lr of the grid, so a larger one may suit "
            f"{'them' if len(high) > 1 else 'it'} better"
        )
    if low:
        words.append(
            f"{', '.join(low)} got the smallest lr of the grid, so a smaller one may "
            f"suit {'them' if len(low) > 1 else 'it'} better"
        )
    return (" " + "; ".join(words) + ": the tuned verdict is for this grid.") if words else ""


def lr_grid(tuning_rows: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """Shape x lr on the tuning seeds: 'median (solve rate)', the chosen lr starred."""
    table = tuning.lr_table(tuning_rows)
    picked = set(zip(chosen["layers"], chosen[tuning.AXIS].astype(float), strict=True))
    table["shown"] = [
        f"{r.median_final_error:.3g} ({r.solve_rate:.0%})"
        + (" *" if (r.layers, float(r.lr)) in picked else "")
        for r in table.itertuples()
    ]
    grid = table.pivot_table(
        index="layers", columns=tuning.AXIS, values="shown", aggfunc="first", sort=False
    )
    grid.columns = [f"lr = {_number(float(c))}" for c in grid.columns]
    return grid.reset_index().rename(columns={"layers": "shape"})


def tuning_sections(
    runs: pd.DataFrame, tune_seeds: int, margin: tuple[float, float]
) -> list[Section]:
    """The tuned verdict beside the lr = 1 one; empty when the sweep does not tune."""
    if not tuning.is_tuning_sweep(runs, tune_seeds):
        return []
    tuning_rows, evaluation = tuning.split_seeds(runs, tune_seeds)
    if evaluation.empty:
        return [
            Section(
                TITLE,
                paragraphs=(
                    f"tune_seeds = {tune_seeds} uses every seed to choose the learning rate, so "
                    "no seed is left to judge the shapes at it: raise n_seeds above tune_seeds.",
                ),
            )
        ]
    choice = tuning.tuned(runs, tune_seeds)
    got = "; ".join(f"{r.layers}: lr = {_number(float(r.lr))}" for r in choice.chosen.itertuples())
    edge = _at_the_edge(choice.chosen, runs)
    tuned_paragraphs, tuned_pairs = _verdict(tuning.at_chosen(evaluation, choice.chosen), margin)
    baseline_rows = tuning.at_lr(evaluation)
    paragraphs = [
        f"Each shape's learning rate was chosen on seeds {_seed_ranges(choice.tuning_seeds)} "
        "(the lowest median final error, a diverged seed counting as the worst; ties go to "
        "the lr nearest 1), and the shapes are compared at it on seeds "
        f"{_seed_ranges(choice.evaluation_seeds)} only, so the choice cannot flatter the "
        f"verdict. Chosen: {got}.{edge}",
        "**At each shape's tuned lr:** " + " ".join(tuned_paragraphs),
    ]
    table = None
    if baseline_rows[["layers"]].drop_duplicates().shape[0] >= 2:
        baseline_paragraphs, baseline_pairs = _verdict(baseline_rows, margin)
        paragraphs.append(
            f"**At the tutorial's lr = {_number(tuning.BASELINE)}, same seeds:** "
            + " ".join(baseline_paragraphs)
        )
        table = side_by_side(tuned_pairs, baseline_pairs)
        comparable = table[
            (table["at tuned lr"] != "not applicable") & (table["at lr = 1"] != "not applicable")
        ]
        if len(comparable):
            changed = comparable[comparable["same"] == "no"]
            paragraphs.append(
                f"{len(comparable) - len(changed)} of {len(comparable)} pair decisions that "
                "apply at both are the same at the tuned lr as at lr = 1"
                + (
                    "; they differ on "
                    + "; ".join(
                        f"{r.pair} ({r.part}: {r['at lr = 1']} at lr = 1, {r['at tuned lr']} tuned)"
                        for _, r in changed.iterrows()
                    )
                    + "."
                    if len(changed)
                    else "."
                )
            )
    else:
        paragraphs.append(
            f"The sweep has no lr = {_number(tuning.BASELINE)} cells for two shapes or more: "
            "no baseline verdict to set beside the tuned one."
        )
    paragraphs.append(
        "Shape x lr on the tuning seeds: the median final error (the solve rate); * marks "
        "the lr each shape got."
    )
    sections = [
        Section(TITLE, paragraphs=tuple(paragraphs), table=lr_grid(tuning_rows, choice.chosen))
    ]
    if table is not None and len(table):
        sections.append(Section("Tuned lr against lr = 1, pair by pair", table=table))
    return sections


def sweep_tuning_sections(sweep_dir: Path, runs: pd.DataFrame) -> list[Section]:
    """``tuning_sections`` with tune_seeds and the equivalence margin from the sweep's
    ``multirun.yaml`` (none when it is missing or does not tune)."""
    path = sweep_dir / "multirun.yaml"
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8")) or {} if path.exists() else {}
    except yaml.YAMLError:
        config = {}
    tune_seeds = int(config.get("tune_seeds") or 0)
    margin = config.get("equivalence_margin")
    return tuning_sections(
        runs, tune_seeds, analysis.MARGIN if margin is None else parse_margin(margin)
    )
