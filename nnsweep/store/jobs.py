"""What a job records besides its results: provenance (what computed them, where and when),
its progress file, and clearing an earlier outcome before it runs again."""

from __future__ import annotations

import functools
import hashlib
import json
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import nnsweep
from nnsweep.schema import FAILURE, PROGRESS, RUNS
from nnsweep.store.atomic import write_json
from nnsweep.store.tables import job_dirs


def _package_dir() -> Path:
    return Path(nnsweep.__file__).resolve().parent


def _git(repo: Path, *arguments: str) -> str | None:
    """``git -C repo ARGUMENTS``'s output; None when git cannot tell (no git, no repo)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *arguments],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (done.stdout.strip() or None) if done.returncode == 0 else None


def _checkout() -> Path | None:
    """nnsweep's own git checkout (the repository, or an editable install of it): the folder
    above the package, when it is git's top level. None for an installed copy, also one that
    lies inside another repository (site-packages in a project's .venv): that commit is the
    project's, not nnsweep's."""
    root = _package_dir().parent
    top = _git(root, "rev-parse", "--show-toplevel")
    return root if top is not None and Path(top).resolve() == root else None


def _git_commit(repo: Path | None) -> str | None:
    return None if repo is None else _git(repo, "rev-parse", "HEAD")


@functools.cache
def _source_sha256(package: Path) -> str:
    """nnsweep's own identity where git cannot give one (an installed copy): the SHA-256 of
    its source files, names and bytes, in a fixed order."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".c", ".h") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(package).as_posix().encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _project(checkout: Path | None) -> dict[str, Any]:
    """The user's own repository (where the run started), when it is not nnsweep's: its
    commit and state, labelled as the project's."""
    top = _git(Path.cwd(), "rev-parse", "--show-toplevel")
    if top is None or (checkout is not None and Path(top).resolve() == checkout):
        return {}
    dirty_files = _git_dirty_files(Path(top))
    return {
        "project_dir": top,
        "project_git_commit": _git(Path(top), "rev-parse", "HEAD"),
        "project_git_dirty": None if dirty_files is None else bool(dirty_files),
    }


def _git_dirty_files(repo: Path | None = None) -> list[str] | None:
    """Tracked files with uncommitted changes, outside ``results/`` (a sweep rewriting the
    shipped results is not a change to the code); None when git cannot tell. ``repo``:
    nnsweep's own checkout unless given."""
    repo = repo or Path(nnsweep.__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            [
                "git",
                "-C",
                str(repo),
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":(exclude)results",
            ],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
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

    checkout = _checkout()  # git_* describe nnsweep's own checkout, never the user's
    dirty_files = _git_dirty_files(checkout) if checkout is not None else None
    return {
        "nnsweep": nnsweep.__version__,
        "nnsweep_source": "git checkout" if checkout is not None else "installed",
        "nnsweep_source_sha256": _source_sha256(_package_dir()),
        "git_commit": _git_commit(checkout),
        "git_dirty": None if dirty_files is None else bool(dirty_files),
        "git_dirty_files": (dirty_files or [])[:20],
        **_project(checkout),
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
