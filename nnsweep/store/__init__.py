"""Result files: atomic writes, the per-seed cache, provenance, sweep folders and tables.

The layer's public names, re-exported from its modules so that callers write
``from nnsweep import store`` and ``store.gather(...)``:

* ``atomic``: atomic writes and checked reads of Parquet, JSON and ``.npz`` files;
* ``cache``: the per-seed cache (key, entry layout, checksums);
* ``jobs``: what a job records besides its results: provenance and progress;
* ``tables``: sweep folders, reading jobs, gathering, ``summary.csv`` and ``collect``.

The file and column names live in ``nnsweep.schema``.
"""

from nnsweep.store.atomic import (
    atomic_write,
    npz_bytes,
    parquet_bytes,
    read_json,
    read_npz,
    sha256_bytes,
    write_bytes,
    write_json,
    write_npz,
    write_parquet,
    write_text,
)
from nnsweep.store.cache import (
    ENTRY_KEY,
    ENTRY_SEED,
    ENTRY_SHA256,
    arrays_sha256,
    cache_key,
    cache_path,
    load_cached,
    store_cached,
)
from nnsweep.store.jobs import (
    SIMD_FLAGS,
    ProgressFile,
    clear_outcome,
    cpu,
    group_origins,
    provenance,
    read_progress,
    seed_origin,
)
from nnsweep.store.tables import (
    Gathered,
    JobRead,
    check_sweep_dir,
    check_tables,
    collect,
    gather,
    job_dirs,
    owner_run_id,
    read_auto,
    read_job,
    remove_report,
    summarise,
)

__all__ = [
    "ENTRY_KEY",
    "ENTRY_SEED",
    "ENTRY_SHA256",
    "SIMD_FLAGS",
    "Gathered",
    "JobRead",
    "ProgressFile",
    "arrays_sha256",
    "atomic_write",
    "cache_key",
    "cache_path",
    "check_sweep_dir",
    "check_tables",
    "clear_outcome",
    "collect",
    "cpu",
    "gather",
    "group_origins",
    "job_dirs",
    "load_cached",
    "npz_bytes",
    "owner_run_id",
    "parquet_bytes",
    "provenance",
    "read_auto",
    "read_job",
    "read_json",
    "read_npz",
    "read_progress",
    "remove_report",
    "seed_origin",
    "sha256_bytes",
    "store_cached",
    "summarise",
    "write_bytes",
    "write_json",
    "write_npz",
    "write_parquet",
    "write_text",
]
