"""Issue 21: ``kill -9`` of a sweep's process group leaves joblib/loky files in /dev/shm;
the next sweep removes those whose creating process is gone, and only those."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli_here

from nnsweep.sweep import leftovers


def _dead_pid() -> int:
    """The pid of a process that has ended (reaped, so nothing holds it)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_leftovers_of_dead_processes_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead, live = _dead_pid(), os.getpid()
    names = {
        "dead_folder": f"joblib_memmapping_folder_{dead}_0a1b_2c3d",
        "dead_semaphore": f"sem.loky-{dead}-x8f2k1",
        "live_folder": f"joblib_memmapping_folder_{live}_0a1b_2c3d",
        "live_semaphore": f"sem.loky-{live}-x8f2k1",
        "not_joblibs": f"sem.mp-{dead}-abc",
    }
    for kind, name in names.items():
        if kind.endswith("folder"):
            (tmp_path / name).mkdir()
            (tmp_path / name / "array.pkl").write_bytes(b"\0" * 8)
        else:
            (tmp_path / name).write_bytes(b"\0" * 32)

    removed = leftovers.remove_dead_leftovers(tmp_path)

    assert sorted(removed) == sorted([names["dead_folder"], names["dead_semaphore"]])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted([names["live_folder"], names["live_semaphore"], names["not_joblibs"]])


def test_a_missing_shared_memory_folder_is_not_an_error(tmp_path: Path) -> None:
    assert leftovers.remove_dead_leftovers(tmp_path / "none") == []


def test_a_sweep_removes_dead_leftovers_when_it_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shm = tmp_path / "shm"
    (shm / f"joblib_memmapping_folder_{_dead_pid()}_0a1b_2c3d").mkdir(parents=True)
    live = shm / f"sem.loky-{os.getpid()}-x8f2k1"
    live.write_bytes(b"\0")
    monkeypatch.setattr(leftovers, "SHM_DIR", shm)
    done = run_cli_here(
        [
            "-m",
            "layers=4,8",
            "n_seeds=2",
            "iterations=20",
            "hydra/launcher=basic",
            "progress=false",
            f"results_dir={tmp_path / 'results'}",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert [p.name for p in shm.iterdir()] == [live.name]
