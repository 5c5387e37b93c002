"""Shared-memory files that a killed sweep leaves behind, removed at the next start.

joblib's loky backend puts memmapping folders (``joblib_memmapping_folder_PID_...``) and
named semaphores (``sem.loky-PID-...``) in ``/dev/shm``; its resource tracker removes them
when the driver ends, but ``kill -9`` of the whole process group kills the tracker too, and
they stay until reboot, one set per killed run (CI timeouts pile them up). Both names carry
the pid of the process that made them: one whose process is gone is garbage. A name whose
pid is alive (any process, even an unrelated one that reused the pid) is left alone.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

SHM_DIR = Path("/dev/shm")

# The creating process's pid in joblib's and loky's names (joblib/_memmapping_reducer.py,
# joblib/externals/loky/backend/synchronize.py).
_LEFTOVER = re.compile(r"^(?:joblib_memmapping_folder_|sem\.loky-)(?P<pid>\d+)[_-]")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def remove_dead_leftovers(shm_dir: Path | None = None) -> list[str]:
    """Remove this user's joblib/loky files in ``shm_dir`` (``SHM_DIR``) whose creating
    process is gone; return their names. Never raises: a courtesy, not part of the sweep."""
    shm_dir = SHM_DIR if shm_dir is None else shm_dir
    removed: list[str] = []
    try:
        entries = list(os.scandir(shm_dir))
    except OSError:
        return removed
    for entry in entries:
        match = _LEFTOVER.match(entry.name)
        if match is None or _alive(int(match.group("pid"))):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:  # gone meanwhile, or not ours to remove
            continue
        removed.append(entry.name)
    return removed
