"""Each shape at its own learning rate: a nested choice, so the choice cannot leak into the verdict.

An untuned learning rate favours some shapes (Bouthillier et al. 2021), so a fair question
is whether the verdict holds when every shape gets the learning rate that suits it. The
sweep pattern (see ``experiments/neurons_early_tuned.yaml``) is ``layers x lr`` with
``tune_seeds = k``:

* The first ``k`` seeds of every cell (by seed number) are *tuning* seeds. On them alone,
  each shape's learning rate is chosen: the lr with the lowest median final error over the
  tuning seeds (a diverged seed counting as the worst error, so an lr that makes seeds stick
  or blow up loses on both counts); ties go to the lr closest to the tutorial's 1.
* The other seeds are *evaluation* seeds: the verdict compares the shapes, each at its
  chosen lr, on them only. Choosing and judging on the same seeds would favour whichever
  shape had lucky tuning seeds (a winner's curse); nested, the choice is one more part of
  the shape being compared.
* The same evaluation seeds at the baseline lr (1, the tutorial's) give the verdict to
  compare with.

Pure functions on the runs table; no words (``nnsweep.report.tuning_report``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from nnsweep import schema
from nnsweep.stats import placement

AXIS = "lr"  # the setting tuned per shape
BASELINE = 1.0  # the tutorial's learning rate


def shape_columns(runs: pd.DataFrame) -> list[str]:
    """The columns that name a shape's cell apart from the tuned setting."""
    return [c for c in placement.cell_columns(runs) if c != AXIS]


def is_tuning_sweep(runs: pd.DataFrame, tune_seeds: int) -> bool:
    """A sweep the tuned verdict applies to: tune_seeds set, and the lr varies."""
    return tune_seeds > 0 and AXIS in runs and runs[AXIS].nunique() > 1


def split_seeds(runs: pd.DataFrame, tune_seeds: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(tuning rows, evaluation rows): per cell, the ``tune_seeds`` lowest seed numbers tune."""
    seeded = runs[runs["status"] != "failed"]
    rank = seeded.groupby(placement.cell_columns(seeded), dropna=False)["seed"].rank(method="first")
    tuning = rank <= tune_seeds
    return seeded[tuning], seeded[~tuning]


def _ranked_error(rows: pd.DataFrame) -> pd.Series:
    return schema.worst_when_diverged(rows["final_error"], rows["status"] == "ok")


def lr_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Per shape and lr: seeds, solve rate and median final error (diverged = worst)."""
    keys = [*shape_columns(rows), AXIS]
    table = (
        rows.assign(ranked=_ranked_error(rows), won=rows["solved"].fillna(False).astype(bool))
        .groupby(keys, sort=False, dropna=False)
        .agg(
            n_seeds=("seed", "size"),
            solve_rate=("won", "mean"),
            median_final_error=("ranked", "median"),
        )
        .reset_index()
    )
    return table


@dataclass(frozen=True)
class Choice:
    """Which lr each shape got, and from which seeds."""

    chosen: pd.DataFrame  # one row per shape: its columns, lr, median on the tuning seeds
    tuning_seeds: tuple[int, ...]  # seed numbers that chose
    evaluation_seeds: tuple[int, ...]  # seed numbers that judge


def choose(tuning: pd.DataFrame) -> pd.DataFrame:
    """Per shape, the lr with the lowest median final error on the tuning seeds."""
    table = lr_table(tuning)
    distance = np.abs(np.log(table[AXIS].astype(float) / BASELINE))
    table = table.assign(_distance=distance, _order=np.arange(len(table)))
    ranked = table.sort_values(["median_final_error", "_distance"], kind="stable")
    chosen = ranked.groupby(shape_columns(tuning), sort=False, dropna=False).head(1)
    # in the sweep's order of shapes, as the tables list them
    return chosen.sort_values("_order").drop(columns=["_distance", "_order"]).reset_index(drop=True)


def tuned(runs: pd.DataFrame, tune_seeds: int) -> Choice:
    """The nested choice: lr per shape from the tuning seeds."""
    tuning, evaluation = split_seeds(runs, tune_seeds)
    return Choice(
        chosen=choose(tuning),
        tuning_seeds=tuple(sorted(tuning["seed"].unique().tolist())),
        evaluation_seeds=tuple(sorted(evaluation["seed"].unique().tolist())),
    )


def at_chosen(evaluation: pd.DataFrame, chosen: pd.DataFrame) -> pd.DataFrame:
    """The evaluation rows of each shape at its chosen lr."""
    keys = [*shape_columns(evaluation), AXIS]
    picked = chosen[keys].drop_duplicates()
    return evaluation.merge(picked, on=keys, how="inner")


def at_lr(evaluation: pd.DataFrame, lr: float = BASELINE) -> pd.DataFrame:
    """The evaluation rows at one lr (the tutorial's, by default)."""
    return evaluation[np.isclose(evaluation[AXIS].astype(float), lr)]
