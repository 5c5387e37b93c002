"""Sweep folders and their tables: checking a folder, reading jobs, gathering, summarising.

A job directory is complete when its ``runs.parquet`` exists (it is written last), and its
``provenance.json`` holds the SHA-256 of every result file, checked when gathering.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnsweep import schema
from nnsweep.errors import DamagedFileError, SweepFolderError
from nnsweep.schema import (
    AUTO_RECORD,
    CELL_COLUMNS,
    CURVES,
    FAILURE,
    FIGURES,
    MULTIRUN,
    OWNER,
    PROGRESS,
    PROVENANCE,
    REPORT_FILES,
    RUNS,
    SUMMARY,
    TABLE_CHECKSUMS,
    WEIGHTS,
    with_legacy_settings,
)
from nnsweep.store.atomic import read_json, sha256_bytes, write_bytes, write_json, write_parquet


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


def read_auto(sweep_dir: Path) -> dict[str, Any] | None:
    """The auto record of a sweep folder (``n_seeds=auto``), or None for an ordinary sweep."""
    path = sweep_dir / AUTO_RECORD
    if not path.exists():
        return None
    record = read_json(path)
    owner = owner_run_id(sweep_dir)
    if owner is None:  # a folder made before owners (or shipped without owner.json)
        return record
    if "run_id" in record:
        return record if record["run_id"] == owner else None
    # Written before records named their run: this run's only if written after its claim.
    return record if path.stat().st_mtime_ns >= (sweep_dir / OWNER).stat().st_mtime_ns else None


def remove_report(sweep_dir: Path) -> None:
    """Remove a report and what it wrote beside the tables (CSV tables, figures), so that a
    folder used again never shows an earlier run's report, or its files, as this one's."""
    for name in REPORT_FILES:
        (sweep_dir / name).unlink(missing_ok=True)
    figures = sweep_dir / FIGURES
    if figures.is_dir():
        for figure in figures.glob("*.png"):
            figure.unlink()
        if not any(figures.iterdir()):
            figures.rmdir()


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
        runs = with_legacy_settings(pd.read_parquet(job_dir / RUNS))
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
    report (``per_cell.ranked_error``), so this median equals cell_stats.csv's.
    """
    if runs.empty:
        return pd.DataFrame()
    rows = []
    for settings, cell in runs.groupby(CELL_COLUMNS, sort=False, dropna=False):
        seeded = cell[cell["status"] != "failed"]
        errors = schema.worst_when_diverged(seeded["final_error"], seeded["status"] == "ok")
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
    a folder that is not a sweep folder, or one where no job of the run that owns it has
    finished (a run killed before its first job ended), before writing anything: empty
    tables would replace the earlier ones.
    """
    gathered = gather(sweep_dir, lost)
    if gathered.runs.empty:
        ignored = "".join(f"; {notice.removeprefix('nnsweep: ')}" for notice in gathered.notices)
        raise SweepFolderError(
            f"{sweep_dir}: nothing to collect: no job of the run that owns it has finished"
            f"{ignored}; its tables are left as they were"
        )
    summary = summarise(gathered.runs)
    checksums = {
        RUNS: write_parquet(sweep_dir / RUNS, gathered.runs),
        CURVES: write_parquet(sweep_dir / CURVES, gathered.curves),
        SUMMARY: write_bytes(sweep_dir / SUMMARY, summary.to_csv(index=False).encode("utf-8")),
    }
    write_json(sweep_dir / TABLE_CHECKSUMS, checksums)
    return gathered.runs, gathered.curves, summary, gathered.notices


def check_tables(sweep_dir: Path) -> None:
    """The gathered tables against the SHA-256 that ``collect`` recorded, as the job files
    are checked: one flipped bit would otherwise change a report's numbers silently.

    Tables gathered before checksums were recorded (no ``checksums.json``) pass unchecked.

    Raises
    ------
    DamagedFileError
        Naming the first table that is missing or does not match.
    """
    path = sweep_dir / TABLE_CHECKSUMS
    if not path.exists():
        return
    for name, expected in read_json(path).items():
        table = sweep_dir / name
        if name not in (RUNS, CURVES, SUMMARY):
            continue
        if not table.exists():
            raise DamagedFileError(table, f"is missing ({TABLE_CHECKSUMS} records it)")
        if sha256_bytes(table.read_bytes()) != expected:
            raise DamagedFileError(table, f"does not match its checksum in {TABLE_CHECKSUMS}")
