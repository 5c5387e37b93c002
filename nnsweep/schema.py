"""The names every layer shares: result files and the columns of the result tables.

A foundation module, importable by train, store, stats, report and sweep alike: a reader
imports a name from here instead of writing the literal again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from nnsweep.config import NUMBER_SETTINGS

# --------------------------------------------------------------------------------------
# Result files
# --------------------------------------------------------------------------------------

RUNS = "runs.parquet"  # one row per seed (per job, and gathered per sweep)
CURVES = "curves.parquet"  # one row per (seed, logged iteration)
WEIGHTS = "weights.npz"  # final weights of every seed of a job
PROVENANCE = "provenance.json"  # versions, BLAS, host and time of a job
PROGRESS = "progress.json"  # seed-iterations done, for the sweep's progress line
FAILURE = "failure.json"  # written instead of results when a job's code failed
SUMMARY = "summary.csv"  # per-cell median, IQR and counts of a sweep
MULTIRUN = "multirun.yaml"  # Hydra writes it into every sweep folder it starts
OWNER = "owner.json"  # the run that owns a sweep folder now (see nnsweep.sweep.ownership)
AUTO_RECORD = "auto.json"  # an n_seeds=auto sweep's plan, rule and every round
TABLE_CHECKSUMS = "checksums.json"  # SHA-256 of a sweep's gathered tables (collect)
# What a sweep's report writes beside its tables (figures/ holds its *.png): removed before
# a report is written, so a folder used again shows no earlier run's report or tables.
REPORT_FILES = (
    "report.md",
    "report.html",
    "cell_stats.csv",
    "pairwise.csv",
    "failures.csv",
    "cell_stats_holdout.csv",
    "pairwise_holdout.csv",
    "auto_rounds.csv",
)
FIGURES = "figures"

# --------------------------------------------------------------------------------------
# Columns
# --------------------------------------------------------------------------------------

# Columns that say which cell a row belongs to, in the order tables show them: the dataset
# and every setting declared to change the numbers.
CELL_COLUMNS = ["dataset", *(f.name for f in NUMBER_SETTINGS)]

# Settings declared after results were first stored, with the value every table written
# before them had: tables without the column are read as if they carried it.
LEGACY_SETTINGS = {
    "arithmetic": "numpy",  # before the portable arithmetic: the host's
    "trainer": "builtin",  # before trainer=module:function: the built-in loop
    "trainer_args": "{}",  # ... with no trainer settings
    "seed_stream": "shared",  # before per_cell streams: np.random.seed(s) in every cell
}


def with_legacy_settings(table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with a column for every ``LEGACY_SETTINGS`` entry it lacks."""
    missing = {k: v for k, v in LEGACY_SETTINGS.items() if k not in table and len(table.columns)}
    return table.assign(**missing) if missing else table


# Columns derived from a cell's shape and its data's units (``shapes.shape_columns``).
SHAPE_COLUMNS = ("total_neurons", "depth", "weights_no_bias", "weights_with_bias", "front_loading")


@dataclass(frozen=True)
class SeedColumn:
    """One per-seed quantity of ``runs.parquet``, under one name everywhere it appears."""

    name: str  # the column; also the TrainResult attribute and cache-entry array (if any)
    dtype: type  # numpy type of one seed's value
    doc: str  # what it is, in one line
    # "trained": a TrainResult array (n_seeds,) and an array of every cache entry;
    # "cached": an array of every cache entry, filled by the job; "derived": computed by
    # the job from the entry and the data when it writes the table, never stored.
    source: str = "trained"


# The per-seed record, declared once, in the order of the runs.parquet columns that follow
# the cell's settings, shape, data and seed. ``run`` derives the cache entries and the table
# rows from it; ``TrainResult`` holds the "trained" ones.
SEED_COLUMNS = (
    SeedColumn("status", np.str_, "ok or diverged (a failed cell's row says failed)", "derived"),
    SeedColumn("reason", np.str_, "empty for a healthy seed, else why it was stopped"),
    SeedColumn(
        "final_error",
        np.float64,
        "error margin of the final weights; for a diverged "
        "seed, the non-finite margin that stopped it",
    ),
    SeedColumn(
        "holdout_error",
        np.float64,
        "error margin of the final weights on the held-out rows; NaN when there are none",
    ),
    SeedColumn("diverged", np.bool_, "the error margin or a weight became non-finite"),
    SeedColumn("solved", np.bool_, "every training output rounds to its target", "derived"),
    SeedColumn(
        "accuracy",
        np.float64,
        "fraction of training rows whose every output rounds to its target (final weights)",
    ),
    SeedColumn(
        "holdout_accuracy", np.float64, "accuracy on the held-out rows; NaN when there are none"
    ),
    SeedColumn(
        "end_change",
        np.float64,
        "max |e_k - e_final| / e_final over the margins one "
        "and two updates before the final weights; NaN for a diverged seed",
    ),
    SeedColumn("unstable", np.bool_, "end_change above UNSTABLE_CHANGE", "derived"),
    SeedColumn("n_weights", np.int64, "trainable numbers of one network", "derived"),
    SeedColumn(
        "solvable",
        np.bool_,
        "the training data can be fitted exactly (a truth table without contradicting rows)",
        "derived",
    ),
    SeedColumn(
        "max_abs_error", np.float64, "largest |target - output| over the training rows", "derived"
    ),
    SeedColumn(
        "iterations_reached",
        np.int64,
        "forward passes run; less than iterations only for a seed that diverged",
    ),
    SeedColumn(
        "first_below_threshold",
        np.int64,
        "first iteration whose margin was below error_threshold; -1 if never",
    ),
    SeedColumn(
        "wall_seconds",
        np.float64,
        "the stacked batch's wall time shared out evenly (seeds are not timed apart)",
        "cached",
    ),
)


# What runs.parquet holds between a cell's shape and its seed's record: the fingerprints of
# the data and of the arithmetic that computed the row, and which job and seed it is.
ROW_IDENTITY_COLUMNS = ("dataset_sha256", "arithmetic_version", "job", "seed")

# Every runs.parquet column, in the order of the table.
RUNS_COLUMNS = (
    *CELL_COLUMNS,
    *SHAPE_COLUMNS,
    *ROW_IDENTITY_COLUMNS,
    *(column.name for column in SEED_COLUMNS),
)


def worst_when_diverged(
    values: pd.Series | np.ndarray,
    ok: pd.Series | np.ndarray | None = None,
    higher_is_better: bool = False,
) -> pd.Series | np.ndarray:
    """``values`` with every diverged seed at the worst value, so that it ranks last.

    The one rule of every statistic, table and figure: a seed whose status is not "ok"
    (``ok`` False), or whose value is missing or not finite, diverged. Its value becomes
    +inf for an error and 0 for an accuracy (``higher_is_better``). Without ``ok`` (a
    curve has no status) only the value decides. A Series stays a Series, index kept.
    """
    worst = 0.0 if higher_is_better else np.inf
    numbers = np.asarray(values, dtype=float)
    kept = np.isfinite(numbers) if ok is None else np.isfinite(numbers) & np.asarray(ok, bool)
    if isinstance(values, np.ndarray):
        return np.where(kept, numbers, worst)
    return values.astype(float).where(kept, worst)


_TYPE_WORDS = {np.str_: "text", np.float64: "float", np.int64: "integer", np.bool_: "yes/no"}


def _code_list(names: Sequence[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def runs_columns_doc() -> str:
    """results/README.md's list of the runs.parquet columns, in Markdown, from the
    declarations above (a test checks that the README holds it)."""
    lines = [
        "One row per seed. Its columns, in order: the cell's settings "
        f"({_code_list(CELL_COLUMNS)}; see the README's settings table), its shape "
        f"({_code_list(SHAPE_COLUMNS)}), the fingerprints of its data and arithmetic "
        f"({_code_list(ROW_IDENTITY_COLUMNS[:2])}), {_code_list(ROW_IDENTITY_COLUMNS[2:])}, "
        "then the seed's record:",
        "",
        "| column | type | meaning |",
        "|---|---|---|",
    ]
    for column in SEED_COLUMNS:
        doc = column.doc.replace("|", "\\|")  # a literal | inside a Markdown table
        lines.append(f"| `{column.name}` | {_TYPE_WORDS[column.dtype]} | {doc} |")
    return "\n".join(lines) + "\n"
