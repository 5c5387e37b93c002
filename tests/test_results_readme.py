"""results/README.md's list of the runs.parquet columns is generated from the declarations
(nnsweep/schema.py), and the declarations match a stored table."""

from __future__ import annotations

import pandas as pd
from conftest import PROJECT_ROOT

from nnsweep import schema

RESULTS_README = PROJECT_ROOT / "results" / "README.md"


def test_results_readme_lists_the_runs_columns_from_their_declarations() -> None:
    assert schema.runs_columns_doc() in RESULTS_README.read_text(encoding="utf-8"), (
        "results/README.md's runs.parquet columns are stale; paste "
        "nnsweep.schema.runs_columns_doc() into it"
    )


def test_the_declared_runs_columns_are_a_stored_tables_in_order() -> None:
    """Every column of the shipped neurons_early table is declared, in the table's order;
    a declared column it lacks is a setting added after it was stored (read with its
    legacy value)."""
    stored = list(pd.read_parquet(PROJECT_ROOT / "results" / "neurons_early" / schema.RUNS).columns)
    assert [c for c in schema.RUNS_COLUMNS if c in stored] == stored
    assert set(schema.RUNS_COLUMNS) - set(stored) <= set(schema.LEGACY_SETTINGS)
