"""A closed terminal or Ctrl-C reaches the whole process group: still one line (issue 21,
MEDIUM 3). SIGHUP to the group killed loky's resource tracker (it ignores only SIGINT and
SIGTERM); joblib relaunched it, and the new tracker printed a KeyError traceback for every
semaphore and memmap folder the stopped workers freed."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from conftest import LOAD_SENSITIVE
from test_signals import _gone_after, _session, _start_sweep

pytestmark = [pytest.mark.slow, LOAD_SENSITIVE]


@pytest.mark.parametrize("signum", [signal.SIGHUP, signal.SIGINT], ids=["SIGHUP", "SIGINT"])
def test_a_signal_to_the_whole_group_is_one_line(tmp_path: Path, signum: int) -> None:
    process = _start_sweep(tmp_path)
    os.killpg(process.pid, signum)  # what a closed terminal (or Ctrl-C in it) sends
    try:
        assert process.wait(timeout=60) == 128 + signum
        assert not _gone_after(process.pid, 30)
    finally:
        for pid in _session(process.pid):
            os.kill(pid, signal.SIGKILL)
    assert process.stderr is not None
    lines = process.stderr.read().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnsweep: interrupted"), lines
