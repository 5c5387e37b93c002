"""A sweep run again into a folder that holds results trains beside it and swaps at the end.

``make run`` writes into ``results/neurons_early``, whose tables and report are committed.
Writing there directly, a run that is killed (Ctrl-C, a closed laptop, a CI timeout) left
the folder half old and half new (its tables deleted, some jobs rewritten), and a user who
committed then committed that. Instead, such a run claims the folder without touching it
(its lock keeps other runs out), trains into the hidden sibling ``.NAME.new`` and, once the
tables and report are written there, swaps the two folders. A killed run leaves the folder
exactly as it was; the next run removes the stale ``.NAME.new`` (the per-seed cache still
saves the training it had done).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nnsweep import schema
from nnsweep.sweep import ownership

# What nnsweep writes into a sweep folder: the swap replaces these; anything else in the
# old folder (a user's notes) is carried over into the new one.
_OUTPUTS = {
    schema.RUNS,
    schema.CURVES,
    schema.SUMMARY,
    schema.MULTIRUN,
    schema.OWNER,
    schema.AUTO_RECORD,
    schema.TABLE_CHECKSUMS,
    schema.PROGRESS,
    schema.FIGURES,
    *schema.REPORT_FILES,
    ownership.LOCK,
    ".hydra",
}

# staging folder (resolved) -> the folder it replaces when the sweep ends (as given)
_staged: dict[Path, Path] = {}


def staging_dir(folder: Path) -> Path:
    """Where a run into ``folder`` trains until it ends: a hidden sibling."""
    return folder.parent / f".{folder.name}.new"


def holds_results(folder: Path) -> bool:
    """Whether ``folder`` holds anything a run would overwrite (more than a claim)."""
    if not folder.is_dir():
        return False
    return any(entry.name not in (ownership.LOCK, schema.OWNER) for entry in folder.iterdir())


def stage(folder: Path) -> Path:
    """Claim ``folder`` without changing it, and a fresh staging folder for this run.

    Raises
    ------
    SweepFolderError
        When another live run holds ``folder`` (or its staging folder).
    """
    ownership.claim(folder, keep_owner=True)  # locked: nobody else writes it, owner kept
    staging = staging_dir(folder)
    if staging.exists():  # a killed run's (the lock on ``folder`` says none is alive)
        shutil.rmtree(staging)
    ownership.claim(staging)
    _staged[staging.resolve()] = folder
    return staging


def publish(sweep_dir: Path) -> Path:
    """Swap a staged sweep's folder in for the one it replaces; return where it now is.

    A folder that was not staged is returned unchanged.
    """
    staged = sweep_dir.resolve()
    folder = _staged.pop(staged, None)
    if folder is None:
        return sweep_dir
    old = folder.parent / f".{folder.name}.old"
    if old.exists():
        shutil.rmtree(old)
    os.rename(folder, old)
    os.rename(staged, folder)
    for entry in old.iterdir():  # the user's own files stay in the folder
        if (
            not (entry.name in _OUTPUTS or entry.name.isdecimal())
            and not (folder / entry.name).exists()
        ):
            os.rename(entry, folder / entry.name)
    shutil.rmtree(old)
    ownership.moved(staged, folder.resolve())
    return folder
