"""The per-seed record is declared once (train.SEED_COLUMNS): the trainer's result, the
cache entries and the runs table all use its names."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from nnsweep import schema, store
from nnsweep.config import to_run_config
from nnsweep.sweep.job import run_cell
from nnsweep.train.loop import SEED_COLUMNS, TRAINED_COLUMNS, TrainResult


def test_trained_columns_are_train_result_fields() -> None:
    fields = {f.name for f in dataclasses.fields(TrainResult)}
    assert {c.name for c in TRAINED_COLUMNS} <= fields
    assert len({c.name for c in SEED_COLUMNS}) == len(SEED_COLUMNS)


def test_table_and_cache_entries_follow_the_declaration(compose_config, tmp_path: Path) -> None:
    run = to_run_config(
        compose_config("iterations=50", "log_every=10", "n_seeds=2", f"cache_dir={tmp_path}/c")
    )
    outcome = run_cell(run, tmp_path / "job")
    columns = list(outcome.runs.columns)
    assert columns[columns.index("seed") + 1 :] == [c.name for c in SEED_COLUMNS]
    for column in SEED_COLUMNS:
        values = outcome.runs[column.name].to_numpy()
        assert np.array(values.tolist()).dtype.kind == np.dtype(column.dtype).kind, column.name
    entries = list((tmp_path / "c").rglob("*.npz"))
    assert len(entries) == 2
    entry = store.read_npz(entries[0])
    stored = {c.name for c in SEED_COLUMNS if c.source != "derived"}
    assert stored <= set(entry)
    assert not {c.name for c in SEED_COLUMNS if c.source == "derived"} & set(entry)


def test_the_synthetic_runs_helper_knows_every_seed_column() -> None:
    from conftest import SEED_DEFAULTS, make_runs

    assert list(SEED_DEFAULTS) == [c.name for c in SEED_COLUMNS]
    runs = make_runs([{"layers": "4", "seed": 2, "final_error": float("nan"), "part": "x"}])
    row = runs.iloc[0]
    seed_columns = [c.name for c in SEED_COLUMNS]
    assert list(runs.columns) == [*schema.CELL_COLUMNS, "job", "seed", *seed_columns, "part"]
    assert (row["layers"], row["seed"], row["status"], row["diverged"]) == (
        "4",
        2,
        "diverged",
        True,
    )
