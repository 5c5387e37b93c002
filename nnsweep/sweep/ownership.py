"""Which run owns an output folder: an exclusive lock held for the run's life, and its id.

Two runs must never write into one folder. A run claims its folder before writing anything:
it takes an exclusive ``flock`` on ``.nnsweep.lock`` (held until the process ends, released
by the kernel even after ``kill -9``) and then writes ``owner.json`` with a fresh run id.
A second run into a claimed folder is refused in one line. Jobs record the owner's run id
in their files, so gathering takes only the jobs of the run that owns the folder now.

Folder names are unique too: ``${nnsweep_stamp:}`` is the start time to the microsecond and
a short random suffix, so two runs started in the same second get two folders.
"""

from __future__ import annotations

import atexit
import os
import platform
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nnsweep import schema, store
from nnsweep.errors import SweepFolderError

LOCK = ".nnsweep.lock"

# Lock files this process holds, by folder; kept open for the life of the process.
_held: dict[Path, int] = {}


def stamp() -> str:
    """A folder name: local start time to the microsecond, then 6 random hex digits."""
    return f"{datetime.now():%Y-%m-%d_%H-%M-%S.%f}-{uuid.uuid4().hex[:6]}"


def register_resolver() -> None:
    """``${nnsweep_stamp:}`` for conf/config.yaml (cached: one value per composed config)."""
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("nnsweep_stamp"):
        OmegaConf.register_new_resolver("nnsweep_stamp", stamp, use_cache=True)


def claim(folder: Path, keep_owner: bool = False) -> str | None:
    """Take ``folder`` for this run (creating it) and return the new run id.

    ``keep_owner`` (``collect``): lock the folder but keep the run id of the run that made
    its jobs, and return it.

    Raises
    ------
    SweepFolderError
        When another live process holds the folder; names that process.
    """
    import fcntl

    folder = Path(folder)
    resolved = folder.resolve()
    if resolved in _held:  # this process claimed it already
        return store.owner_run_id(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as error:  # read-only, not a folder, no such device
        raise SweepFolderError(f"{folder}: cannot be written ({error.strerror})") from None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(descriptor)
        raise SweepFolderError(
            f"{folder}: in use by another nnsweep run ({_holder(folder)}); "
            "wait for it to end or choose another folder"
        ) from None
    _held[resolved] = descriptor
    if keep_owner:
        return store.owner_run_id(folder)
    if store.job_dirs(folder):  # a sweep folder run again: its old tables are not this run's
        for name in (schema.RUNS, schema.CURVES, schema.SUMMARY):
            (folder / name).unlink(missing_ok=True)
    run_id = uuid.uuid4().hex
    store.write_json(
        folder / schema.OWNER,
        {
            "run_id": run_id,
            "pid": os.getpid(),
            "host": platform.node(),
            "started_utc": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "command": " ".join(sys.argv),
        },
    )
    return run_id


def moved(source: Path, target: Path) -> None:
    """A claimed folder was renamed over another claimed one (a staged sweep swapped in):
    the lock held on ``source`` is now the lock of ``target``; the replaced one's is let go."""
    replaced = _held.pop(target, None)
    if replaced is not None:
        os.close(replaced)
    if source in _held:
        _held[target] = _held.pop(source)


def owner(folder: Path) -> dict[str, Any]:
    """``owner.json`` of a claimed folder; empty when there is none or it is unreadable."""
    try:
        return store.read_json(folder / schema.OWNER)
    except ValueError:
        return {}


_watching = threading.Event()  # set once this process watches its parent
_stop_watching = threading.Event()  # set at exit: the watch thread ends before the interpreter


def exit_with_parent(owner: dict[str, Any], poll_seconds: float = 0.5) -> None:
    """In a worker process that the owning driver started, exit as soon as the driver is
    gone (``kill -9`` gives it no chance to stop its workers): no orphan trains on and
    writes into the folder afterwards. Does nothing in the driver itself, or in jobs
    started by something else (Ray, SLURM), whose parent is not the driver."""
    driver = owner.get("pid")
    if (
        _watching.is_set()
        or owner.get("host") != platform.node()
        or driver == os.getpid()
        or driver != os.getppid()
    ):
        return
    _watching.set()

    def watch() -> None:
        while not _stop_watching.wait(poll_seconds):
            if os.getppid() != driver:
                os._exit(1)  # the driver is gone: nobody will gather this job's files

    thread = threading.Thread(target=watch, name="nnsweep-parent-watch", daemon=True)
    thread.start()

    def stop() -> None:
        # No thread outlives the interpreter: this one is stopped and joined at exit.
        _stop_watching.set()
        thread.join()

    atexit.register(stop)


def _holder(folder: Path) -> str:
    try:
        owner = store.read_json(folder / schema.OWNER)
    except (OSError, ValueError):
        return "starting"
    return f"pid {owner.get('pid')} on {owner.get('host')}, started {owner.get('started_utc')}"
