"""Everything that touches result files: atomic writes, the per-seed cache, sweep tables.

Rules kept here:
* every file is written under a temporary name and renamed into place, so a reader never
  sees half a file, and a killed process leaves at most a stray ``.*.tmp`` file behind;
* results are Parquet, JSON or ``.npz`` read with ``allow_pickle=False``, never pickles;
* a job directory is complete when its ``runs.parquet`` exists (it is written last), and its
  ``provenance.json`` holds the SHA-256 of every result file, checked when gathering;
* every file is read and written as UTF-8, whatever the locale;
* cache entries record their own key, seed and a checksum of their arrays: an entry that is
  unreadable, edited, truncated or filed under another key is trained again, with a notice.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import nnsweep
from nnsweep import config
from nnsweep.errors import DamagedFileError, SweepFolderError

RUNS = "runs.parquet"  # one row per seed (per job, and gathered per sweep)
CURVES = "curves.parquet"  # one row per (seed, logged iteration)
WEIGHTS = "weights.npz"  # final weights of every seed of a job
PROVENANCE = "provenance.json"  # versions, BLAS, host and time of a job
PROGRESS = "progress.json"  # seed-iterations done, for the sweep's progress line
FAILURE = "failure.json"  # written instead of results when a job's code failed
SUMMARY = "summary.csv"  # per-cell median, IQR and counts of a sweep

# Columns that say which cell a row belongs to, derived from the declared settings.
CELL_COLUMNS = config.CELL_COLUMNS

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


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bytes(path: Path, data: bytes) -> str:
    """Write ``data`` atomically; its SHA-256, to be recorded and checked when read back."""
    atomic_write(path, lambda p: p.write_bytes(data))
    return sha256_bytes(data)


def write_text(path: Path, text: str) -> None:
    """UTF-8 whatever the locale: a non-ASCII note or path must not crash or vanish."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a garbled or non-object file is a ``DamagedFileError``."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError included
        raise DamagedFileError(path, f"not readable JSON ({type(error).__name__})") from None
    if not isinstance(payload, dict):
        raise DamagedFileError(path, "not a JSON object")
    return payload


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_parquet(path: Path, frame: pd.DataFrame) -> str:
    return write_bytes(path, parquet_bytes(frame))


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()  # a file object also stops numpy adding '.npz'
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> str:
    return write_bytes(path, npz_bytes(arrays))


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


# Fields every cache entry carries about itself (besides the seed's arrays).
ENTRY_KEY = "entry_key"  # the key it was stored under
ENTRY_SEED = "entry_seed"  # the seed it holds
ENTRY_SHA256 = "entry_sha256"  # checksum of every other array (names, dtypes, shapes, bytes)


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """Checksum of named arrays, independent of how the archive compressed them."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        if name in (ENTRY_KEY, ENTRY_SEED, ENTRY_SHA256):
            continue
        array = np.asarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def load_cached(
    cache_dir: Path, key: str, seed: int, required: Iterable[str] = ()
) -> tuple[dict[str, np.ndarray] | None, str]:
    """The cached arrays of one seed, or None with why it cannot be used.

    The reason is ``""`` when there is simply no entry; otherwise it is a one-line notice
    naming the file: the entry is unreadable, lacks ``required`` arrays, belongs to another
    key or seed, or its arrays no longer match their checksum. Such an entry is retrained.
    """
    path = cache_path(cache_dir, key)
    if not path.exists():
        return None, ""

    def damaged(why: str) -> tuple[None, str]:
        return None, f"nnsweep: cache entry {path} {why}; training seed {seed} again"

    try:
        entry = read_npz(path)
    except Exception as error:  # BadZipFile, truncated members, bad headers: all "damaged"
        return damaged(f"is unreadable ({type(error).__name__})")
    missing = [
        name for name in (ENTRY_KEY, ENTRY_SEED, ENTRY_SHA256, *required) if name not in entry
    ]
    if missing:
        return damaged(f"lacks {', '.join(missing)}")
    if (
        str(entry[ENTRY_KEY]) != key
        or entry[ENTRY_SEED].shape != ()
        or int(entry[ENTRY_SEED]) != seed
    ):
        return damaged("belongs to another key or seed")
    if str(entry[ENTRY_SHA256]) != arrays_sha256(entry):
        return damaged("does not match its checksum")
    return {name: array for name, array in entry.items() if not name.startswith("entry_")}, ""


def store_cached(cache_dir: Path, key: str, seed: int, arrays: Mapping[str, np.ndarray]) -> None:
    entry = dict(arrays)
    entry[ENTRY_KEY] = np.str_(key)
    entry[ENTRY_SEED] = np.int64(seed)
    entry[ENTRY_SHA256] = np.str_(arrays_sha256(arrays))
    write_npz(cache_path(cache_dir, key), entry)


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


def clear_outcome(job_dir: Path) -> None:
    """Remove an earlier run's outcome from a job folder before the job starts again."""
    for name in (RUNS, FAILURE):
        (job_dir / name).unlink(missing_ok=True)


def read_progress(sweep_dir: Path) -> tuple[int, int]:
    """Seed-iterations done, and jobs complete, over a sweep directory."""
    done = 0
    finished = 0
    for job_dir in job_dirs(sweep_dir):
        if (job_dir / RUNS).exists() or (job_dir / FAILURE).exists():
            finished += 1
        try:
            done += int(json.loads((job_dir / PROGRESS).read_text(encoding="utf-8"))["done"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return done, finished


# --------------------------------------------------------------------------------------
# Gathering a sweep's tables by scanning its directory
# --------------------------------------------------------------------------------------

MULTIRUN = "multirun.yaml"  # Hydra writes it into every sweep folder it starts
OWNER = "owner.json"  # the run that owns a sweep folder now (see nnsweep.sweep.ownership)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job sub-directories of a sweep (named by Hydra's job number), in job order."""
    jobs = [p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdecimal()]
    return sorted(jobs, key=lambda p: int(p.name))


def _has_job_files(job_dir: Path) -> bool:
    return any((job_dir / name).exists() for name in (RUNS, FAILURE, PROVENANCE, PROGRESS))


def check_sweep_dir(sweep_dir: Path, tables_only: bool = False) -> None:
    """Refuse, in one line, a folder that is not a sweep folder (before anything is written).

    A sweep folder holds Hydra's ``multirun.yaml`` or job folders ``0/``, ``1/``, ...
    (``tables_only``: or just its gathered ``runs.parquet``, which is all a report needs); a
    job folder (its own ``provenance.json``) is refused, so its files are never written over.
    """
    if not sweep_dir.is_dir():
        raise SweepFolderError(f"{sweep_dir}: no such folder")
    if (sweep_dir / PROVENANCE).exists() or (sweep_dir / FAILURE).exists():
        raise SweepFolderError(
            f"{sweep_dir}: is one job's (or one run's) folder, not a sweep folder; "
            f"give the sweep folder that holds it, e.g. {sweep_dir.resolve().parent}"
        )
    is_sweep = (sweep_dir / MULTIRUN).exists() or any(map(_has_job_files, job_dirs(sweep_dir)))
    if tables_only:
        if (sweep_dir / RUNS).exists():
            return
        if is_sweep:  # collect can make the tables: say so
            raise SweepFolderError(
                f"{sweep_dir}: has no {RUNS}; run `python -m nnsweep collect {sweep_dir}` first"
            )
    if not is_sweep:
        raise SweepFolderError(
            f"{sweep_dir}: is not a sweep folder (no {MULTIRUN} and no job folders 0/, 1/, ...)"
        )


def owner_run_id(sweep_dir: Path) -> str | None:
    """The id of the run that owns ``sweep_dir``; None for folders made before owners."""
    if not (sweep_dir / OWNER).exists():
        return None
    return str(read_json(sweep_dir / OWNER).get("run_id"))


@dataclass
class JobRead:
    """What one job folder holds, as read and checked by ``read_job``."""

    runs: pd.DataFrame | None = None  # the job's rows (a one-row failure for a failed job)
    curves: pd.DataFrame | None = None  # its curves (None for a failed job)
    run_id: str | None = None  # the run that wrote it (None: written before run ids)
    damaged: str = ""  # why its files cannot be used, naming the file


def _failure_row(job_dir: Path, failure: Mapping[str, Any], reason: str) -> pd.DataFrame:
    settings = failure.get("settings")
    settings = settings if isinstance(settings, dict) else {}
    row = {column: settings.get(column) for column in CELL_COLUMNS}
    row.update(job=int(job_dir.name), status="failed", reason=reason)
    return pd.DataFrame([row])


def _newest(job_dir: Path) -> str | None:
    """Which outcome file of a job is newest: RUNS, FAILURE, or None when there is none."""
    present = [name for name in (RUNS, FAILURE) if (job_dir / name).exists()]
    if not present:
        return None
    return max(present, key=lambda name: (job_dir / name).stat().st_mtime_ns)


def read_job(job_dir: Path) -> JobRead | None:
    """A job's outcome, checked against the checksums in its ``provenance.json``.

    None while the job has no outcome yet. When both ``runs.parquet`` and ``failure.json``
    exist, the newer one wins: a failure is never hidden by older results. A garbled or
    damaged file gives a failure row whose reason names the file.
    """
    outcome = _newest(job_dir)
    if outcome is None:
        return None
    if outcome == FAILURE:
        try:
            failure = read_json(job_dir / FAILURE)
        except DamagedFileError as error:
            return _damaged(job_dir, {}, None, error)
        reason = str(failure.get("reason", ""))
        return JobRead(runs=_failure_row(job_dir, failure, reason), run_id=failure.get("run_id"))
    provenance: dict[str, Any] = {}
    try:
        provenance = read_json(job_dir / PROVENANCE)
        checksums = provenance.get("checksums", {})
        for name in (RUNS, CURVES, WEIGHTS):
            if name in checksums:
                data = (job_dir / name).read_bytes()
                if sha256_bytes(data) != checksums[name]:
                    raise DamagedFileError(job_dir / name, "does not match its recorded checksum")
        runs = pd.read_parquet(job_dir / RUNS)
        curves = pd.read_parquet(job_dir / CURVES)
    except DamagedFileError as error:
        return _damaged(job_dir, provenance, provenance.get("run_id"), error)
    except Exception as error:  # pyarrow and OS errors: the file is unreadable
        damaged = DamagedFileError(job_dir, f"unreadable ({type(error).__name__})")
        return _damaged(job_dir, provenance, provenance.get("run_id"), damaged)
    return JobRead(runs=runs, curves=curves, run_id=provenance.get("run_id"))


def _damaged(
    job_dir: Path, provenance: Mapping[str, Any], run_id: str | None, error: DamagedFileError
) -> JobRead:
    reason = f"damaged file {error.path}: {error.why}"
    runs = _failure_row(job_dir, provenance, reason)
    return JobRead(runs=runs, run_id=run_id, damaged=reason)


@dataclass
class Gathered:
    """A sweep's tables, and one-line notices about what was left out or repaired."""

    runs: pd.DataFrame
    curves: pd.DataFrame
    notices: list[str]

    def __iter__(self) -> Iterator[pd.DataFrame]:
        """``runs, curves = gather(...)`` as before the notices were added."""
        return iter((self.runs, self.curves))


def gather(sweep_dir: Path, lost: Mapping[int, Mapping[str, Any]] | None = None) -> Gathered:
    """Concatenate every finished job's runs and curves; failed jobs become status rows.

    Only jobs of the run that owns the folder (``owner.json``) are taken; job folders left
    by another run are ignored and named in a notice. A (cell, seed) sample trained by more
    than one job counts once. Works on partial sweeps: a job without ``runs.parquet`` or
    ``failure.json`` is simply not there yet, unless it is in ``lost`` (job number ->
    its settings and ``reason``): a job whose worker died, or that could not write its
    files, becomes a failed row with that reason.
    """
    check_sweep_dir(sweep_dir)
    lost = dict(lost or {})
    owner = owner_run_id(sweep_dir)
    runs: list[pd.DataFrame] = []
    curves: list[pd.DataFrame] = []
    notices: list[str] = []
    foreign: list[str] = []
    for job_dir in job_dirs(sweep_dir):
        job = read_job(job_dir)
        if job is None:
            continue
        unknown = job.damaged and job.run_id is None  # too damaged to tell: report it
        if owner is not None and job.run_id != owner and not unknown:
            foreign.append(job_dir.name)
            continue
        lost.pop(int(job_dir.name), None)
        if job.damaged:
            notices.append(
                f"nnsweep: error: job {job_dir.name}: {job.damaged}; rerun the sweep's command "
                "to repair it (cached seeds are not trained again)"
            )
        runs.append(job.runs)
        if job.curves is not None:
            curves.append(job.curves)
    for job, settings in sorted(lost.items()):
        reason = str(settings.get("reason", "lost"))
        runs.append(_failure_row(sweep_dir / str(job), {"settings": settings}, reason))
    if foreign:
        notices.append(
            f"nnsweep: ignored job folder(s) {', '.join(foreign)} of {sweep_dir}: "
            "left there by another run, not by this sweep's command"
        )
    runs_table = _concat(runs).sort_values(["job", "seed"], kind="stable", na_position="last")
    curves_table = _concat(curves)
    runs_table, curves_table, duplicates = _drop_duplicate_samples(runs_table, curves_table)
    if duplicates:
        notices.append(duplicates)
    if not curves_table.empty:
        curves_table = curves_table.sort_values(["job", "seed", "iteration"], kind="stable")
    return Gathered(runs_table.reset_index(drop=True), curves_table.reset_index(drop=True), notices)


def _drop_duplicate_samples(
    runs: pd.DataFrame, curves: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Keep the first job's row of every (cell, seed); the rest (and their curves) go."""
    columns = [c for c in CELL_COLUMNS if c in runs]
    if runs.empty or len(columns) < len(CELL_COLUMNS):
        return runs, curves, ""
    trained = runs["status"] != "failed"
    repeated = trained & runs.duplicated(subset=[*columns, "seed"], keep="first")
    if not repeated.any():
        return runs, curves, ""
    dropped = runs[repeated]
    jobs = sorted(set(dropped["job"].astype(int)))
    if not curves.empty:
        gone = pd.MultiIndex.from_frame(dropped[["job", "seed"]].astype("int64"))
        pairs = pd.MultiIndex.from_frame(curves[["job", "seed"]].astype("int64"))
        curves = curves[~pairs.isin(gone)]
    cells = sorted(set(dropped["layers"].astype(str)))
    message = (
        f"nnsweep: {int(repeated.sum())} duplicate (cell, seed) sample(s) counted once: "
        f"job(s) {', '.join(map(str, jobs))} repeat seeds of cell(s) layers="
        f"{', '.join(cells)} that an earlier job trained"
    )
    return runs[~repeated], curves, message


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
    """Per cell (same settings; seed blocks of one cell may come from several jobs): job
    ids and count, seed, diverged and failed counts, median final error and its IQR, in
    order of first job.

    A diverged seed's final error counts as +inf (worst), as in every statistic of the
    report (``analysis.ranked_error``), so this median equals cell_stats.csv's.
    """
    if runs.empty:
        return pd.DataFrame()
    rows = []
    for settings, cell in runs.groupby(CELL_COLUMNS, sort=False, dropna=False):
        seeded = cell[cell["status"] != "failed"]
        errors = seeded["final_error"].where(seeded["status"] == "ok", np.inf)
        q1, median, q3 = (
            np.quantile(errors.to_numpy(dtype=float), [0.25, 0.5, 0.75]).tolist()
            if len(errors)
            else [np.nan] * 3
        )
        jobs = sorted(cell["job"].unique())
        rows.append(
            {
                **dict(zip(CELL_COLUMNS, settings, strict=True)),
                "job_ids": " ".join(str(job) for job in jobs),
                "n_jobs": len(jobs),
                "n_seeds": int(cell["seed"].notna().sum()),
                "n_ok": int((cell["status"] == "ok").sum()),
                "n_diverged": int((cell["status"] == "diverged").sum()),
                "n_failed": int((cell["status"] == "failed").sum()),
                "median_final_error": median,
                "q1_final_error": q1,
                "q3_final_error": q3,
                "iqr_final_error": q3 - q1,
            }
        )
    return pd.DataFrame(rows)


def collect(
    sweep_dir: Path, lost: Mapping[int, Mapping[str, Any]] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """Build ``runs.parquet``, ``curves.parquet`` and ``summary.csv`` in ``sweep_dir``.

    Returns the tables and the gathering's one-line notices. Refuses (``SweepFolderError``)
    a folder that is not a sweep folder, before writing anything.
    """
    gathered = gather(sweep_dir, lost)
    summary = summarise(gathered.runs)
    write_parquet(sweep_dir / RUNS, gathered.runs)
    write_parquet(sweep_dir / CURVES, gathered.curves)
    write_text(sweep_dir / SUMMARY, summary.to_csv(index=False))
    return gathered.runs, gathered.curves, summary, gathered.notices
