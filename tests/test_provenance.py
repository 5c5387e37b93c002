"""Provenance a report relies on: CPU, dirty tree, and where cached seeds were computed."""

from __future__ import annotations

import json
from pathlib import Path

from nnsweep import schema, store
from nnsweep.config import to_run_config
from nnsweep.sweep.job import run_cell


def test_provenance_names_the_cpu_and_the_tree_state() -> None:
    details = store.provenance()
    assert details["cpu"]["model"]
    assert set(details["cpu"]["simd"]) <= set(store.SIMD_FLAGS)
    assert details["git_dirty"] in (True, False, None)
    assert isinstance(details["git_dirty_files"], list)


def test_cached_seeds_keep_where_and_when_they_were_computed(
    compose_config, tmp_path: Path
) -> None:
    run = to_run_config(
        compose_config(f"cache_dir={tmp_path / 'cache'}", "layers=4", "n_seeds=2", "iterations=50")
    )
    run_cell(run, tmp_path / "first")
    first = json.loads((tmp_path / "first" / schema.PROVENANCE).read_text())
    assert first["trained_seeds"] == [1, 2]
    [origin] = first["seed_origins"]
    assert origin["seeds"] == [1, 2]
    assert origin["host"] == first["host"] and origin["kernel"] == first["kernel"]
    assert origin["time_utc"] and origin["cpu"] == first["cpu"]

    run_cell(run, tmp_path / "again")  # every seed from the cache now
    again = json.loads((tmp_path / "again" / schema.PROVENANCE).read_text())
    assert again["trained_seeds"] == [] and again["kernel"] is None
    assert again["seed_origins"] == first["seed_origins"]
