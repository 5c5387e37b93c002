"""Everything that touches result files: atomic writes, the per-seed cache, sweep tables.

Rules kept here:
* every file is written under a temporary name and renamed into place, so a reader never
  sees half a file, and a killed process leaves at most a stray ``.*.tmp`` file behind;
* results are Parquet, JSON or ``.npz`` read with ``allow_pickle=False``, never pickles;
* a job directory is complete when its ``runs.parquet`` exists (it is written last).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import nnsweep

RUNS = "runs.parquet"  # one row per seed (per job, and gathered per sweep)
CURVES = "curves.parquet"  # one row per (seed, logged iteration)
WEIGHTS = "weights.npz"  # final weights of every seed of a job
PROVENANCE = "provenance.json"  # versions, BLAS, host and time of a job
PROGRESS = "progress.json"  # seed-iterations done, for the sweep's progress line
FAILURE = "failure.json"  # written instead of results when a job's code failed
SUMMARY = "summary.csv"  # per-cell median, IQR and counts of a sweep

# Columns that say which cell a row belongs to, in the order tables show them.
CELL_COLUMNS = [
    "dataset",
    "layers",
    "activation",
    "output_activation",
    "init",
    "bias",
    "lr",
    "iterations",
    "log_every",
    "error_threshold",
]

# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then rename the temporary file onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    atomic_write(path, lambda p: p.write_text(json.dumps(payload, indent=2, sort_keys=True)))


def write_parquet(path: Path, frame: pd.DataFrame) -> None:
    atomic_write(path, lambda p: frame.to_parquet(p, index=False))


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> None:
    def write(temporary: Path) -> None:
        with temporary.open("wb") as handle:  # a file object stops numpy adding '.npz'
            np.savez_compressed(handle, **arrays)

    atomic_write(path, write)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


# --------------------------------------------------------------------------------------
# Per-seed cache, addressed by the hash of everything that changes the numbers
# --------------------------------------------------------------------------------------


def cache_key(fields: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``fields`` (floats written with ``repr``)."""

    def canonical(value: Any) -> Any:
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, tuple | list):
            return [canonical(item) for item in value]
        return value

    text = json.dumps({k: canonical(v) for k, v in fields.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.npz"


def load_cached(cache_dir: Path, key: str) -> dict[str, np.ndarray] | None:
    """The cached arrays of one seed, or None when absent or unreadable."""
    path = cache_path(cache_dir, key)
    if not path.exists():
        return None
    try:
        return read_npz(path)
    except (OSError, ValueError, EOFError):
        return None  # a damaged entry is simply trained again


def store_cached(cache_dir: Path, key: str, arrays: Mapping[str, np.ndarray]) -> None:
    write_npz(cache_path(cache_dir, key), arrays)


# --------------------------------------------------------------------------------------
# Provenance and progress
# --------------------------------------------------------------------------------------


def _git_commit() -> str | None:
    repo = Path(nnsweep.__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _git_dirty_files() -> list[str] | None:
    """Tracked files with uncommitted changes, outside ``results/`` (a sweep rewriting the
    shipped results is not a change to the code); None when git cannot tell."""
    repo = Path(nnsweep.__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no",
             "--", ".", ":(exclude)results"],
            capture_output=True, text=True, timeout=5, check=False,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return [line[3:] for line in done.stdout.splitlines() if line.strip()]


SIMD_FLAGS = ("avx2", "fma", "avx512f")  # the ones that decide BLAS's and the kernel's path


def cpu() -> dict[str, Any]:
    """CPU model and the SIMD flags that change which kernels BLAS and nnsweep run."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() == "flags":
                flags = set(value.split())
    except OSError:
        pass  # not Linux: the model from platform, flags unknown
    return {"model": model, "simd": [flag for flag in SIMD_FLAGS if flag in flags]}


def seed_origin(details: Mapping[str, Any], kernel: str) -> str:
    """Where and when a seed was computed, as JSON stored in its cache entry, so that a later
    sweep reusing the entry can say what computed its numbers."""
    keys = ("host", "time_utc", "git_commit", "git_dirty", "cpu")
    return json.dumps({**{k: details.get(k) for k in keys}, "kernel": kernel}, sort_keys=True)


def group_origins(origins: Mapping[int, str]) -> list[dict[str, Any]]:
    """Seeds grouped by the origin (``seed_origin`` JSON, "" if unrecorded) of their numbers."""
    groups: dict[str, list[int]] = {}
    for seed, origin in origins.items():
        groups.setdefault(origin, []).append(int(seed))
    return [
        {"seeds": seeds, **(json.loads(origin) if origin else {"host": None})}
        for origin, seeds in groups.items()
    ]


def provenance() -> dict[str, Any]:
    """Versions, BLAS, CPU, host and time: what a reader needs to trust or redo a result."""
    from threadpoolctl import threadpool_info

    dirty_files = _git_dirty_files()
    return {
        "nnsweep": nnsweep.__version__,
        "git_commit": _git_commit(),
        "git_dirty": None if dirty_files is None else bool(dirty_files),
        "git_dirty_files": (dirty_files or [])[:20],
        "cpu": cpu(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "blas": [
            {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for info in threadpool_info()
            if info.get("user_api") == "blas"
        ],
        "host": platform.node(),
        "platform": platform.platform(),
        "time_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


class ProgressFile:
    """Writes a job's seed-iterations done to ``progress.json``, at most once a second."""

    def __init__(self, path: Path, total: int) -> None:
        self.path = path
        self.total = total
        self._last_write = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        now = time.monotonic()
        if now - self._last_write < 1.0 and done < self.total:
            return
        self._last_write = now
        write_json(self.path, {"done": int(done), "total": int(self.total)})


def read_progress(sweep_dir: Path) -> tuple[int, int]:
    """Seed-iterations done, and jobs complete, over a sweep directory."""
    done = 0
    finished = 0
    for job_dir in job_dirs(sweep_dir):
        if (job_dir / RUNS).exists() or (job_dir / FAILURE).exists():
            finished += 1
        try:
            done += int(json.loads((job_dir / PROGRESS).read_text())["done"])
        except (OSError, ValueError, KeyError):
            continue
    return done, finished


# --------------------------------------------------------------------------------------
# Gathering a sweep's tables by scanning its directory
# --------------------------------------------------------------------------------------


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job sub-directories of a sweep (named by Hydra's job number), in job order."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(jobs, key=lambda p: int(p.name))


def _failure_row(job_dir: Path) -> dict[str, Any]:
    failure = json.loads((job_dir / FAILURE).read_text())
    row = {column: failure.get("settings", {}).get(column) for column in CELL_COLUMNS}
    row.update(job=int(job_dir.name), status="failed", reason=failure.get("reason", ""))
    return row


def gather(sweep_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Concatenate every finished job's runs and curves; failed jobs become status rows.

    Works on partial sweeps: a job without ``runs.parquet`` or ``failure.json`` is simply
    not there yet.
    """
    runs: list[pd.DataFrame] = []
    curves: list[pd.DataFrame] = []
    failures: list[dict[str, Any]] = []
    for job_dir in job_dirs(sweep_dir):
        if (job_dir / RUNS).exists():
            runs.append(pd.read_parquet(job_dir / RUNS))
            curves.append(pd.read_parquet(job_dir / CURVES))
        elif (job_dir / FAILURE).exists():
            failures.append(_failure_row(job_dir))
    if failures:
        runs.append(pd.DataFrame(failures))
    runs_table = _concat(runs).sort_values(["job", "seed"], kind="stable", na_position="last")
    curves_table = _concat(curves)
    if not curves_table.empty:
        curves_table = curves_table.sort_values(["job", "seed", "iteration"], kind="stable")
    return runs_table.reset_index(drop=True), curves_table.reset_index(drop=True)


def _concat(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    frames = [frame for frame in frames if not frame.empty]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    # A sweep whose every cell failed still has the columns readers rely on.
    for column, dtype in (
        ("job", "int64"),
        ("seed", "float64"),
        ("status", "object"),
        ("final_error", "float64"),
    ):
        if column not in table:
            table[column] = pd.Series(dtype=dtype)
    return table


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Per cell (same settings; seed blocks of one cell may come from several jobs): seed,
    diverged and failed counts, median final error and its IQR, in order of first job."""
    if runs.empty:
        return pd.DataFrame()
    rows = []
    for settings, cell in runs.groupby(CELL_COLUMNS, sort=False, dropna=False):
        ok = cell[cell["status"] == "ok"]["final_error"]
        q1, median, q3 = ok.quantile([0.25, 0.5, 0.75]).tolist() if len(ok) else [np.nan] * 3
        rows.append(
            {
                **dict(zip(CELL_COLUMNS, settings, strict=True)),
                "jobs": " ".join(str(job) for job in sorted(cell["job"].unique())),
                "n_seeds": int(cell["seed"].notna().sum()),
                "n_ok": len(ok),
                "n_diverged": int((cell["status"] == "diverged").sum()),
                "n_failed": int((cell["status"] == "failed").sum()),
                "median_final_error": median,
                "q1_final_error": q1,
                "q3_final_error": q3,
                "iqr_final_error": q3 - q1,
            }
        )
    return pd.DataFrame(rows)


def collect(sweep_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Build ``runs.parquet``, ``curves.parquet`` and ``summary.csv`` in ``sweep_dir``."""
    runs, curves = gather(sweep_dir)
    summary = summarise(runs)
    write_parquet(sweep_dir / RUNS, runs)
    write_parquet(sweep_dir / CURVES, curves)
    atomic_write(sweep_dir / SUMMARY, lambda p: summary.to_csv(p, index=False))
    return runs, curves, summary
