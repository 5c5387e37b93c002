"""Signals and orphans, with real processes: SIGTERM, kill -9 and Ctrl-C (issue 13, 8-9).

These are behaviour tests, not benchmarks: the limits (5 s for a sweep's processes to be
gone, 1 s for Ctrl-C to end a native run) are the promises users were given.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from conftest import LOAD_SENSITIVE, PROJECT_ROOT, ctrl_c_reaches_it

from nnsweep.train import native

pytestmark = [pytest.mark.slow, LOAD_SENSITIVE]

# Two jobs train at once whatever the number of CPUs (joblib's default is one per CPU).
LONG_SWEEP = ["-m", "layers=8-8,4-4", "n_seeds=4", "iterations=5000000", "log_every=1000000"]
LONG_SWEEP += ["hydra.launcher.n_jobs=2"]


def _session(sid: int) -> list[int]:
    """Pids of every live process in session ``sid`` (the sweep started its own session)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdecimal():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and int(fields[3]) == sid:
            pids.append(int(entry.name))
    return pids


def _start_sweep(tmp_path: Path) -> subprocess.Popen:
    results = tmp_path / "results"
    process = subprocess.Popen(
        [sys.executable, "-m", "nnsweep", *LONG_SWEEP, f"results_dir={results}", "progress=false"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "NNSWEEP_KERNEL": "numpy"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # both jobs are training in their workers
        if len(list(results.glob("sweep/*/*/progress.json"))) == 2:
            break
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        time.sleep(0.1)
    else:
        pytest.fail("the sweep's jobs did not start")
    assert len(_session(process.pid)) >= 3  # the driver and its two workers at least
    return process


def _gone_after(sid: int, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _session(sid):
            return []
        time.sleep(0.1)
    return _session(sid)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signalled_driver_stops_its_workers(tmp_path: Path, signum: int) -> None:
    process = _start_sweep(tmp_path)
    os.kill(process.pid, signum)
    try:
        assert process.wait(timeout=5) == 128 + signum
        left = _gone_after(process.pid, 5)
        assert not left, f"still running 5 s after {signal.Signals(signum).name}: {left}"
    finally:
        for pid in _session(process.pid):
            os.kill(pid, signal.SIGKILL)
    assert process.stderr is not None
    lines = process.stderr.read().strip().splitlines()
    assert lines[-1].startswith("nnsweep: interrupted"), lines
    assert "Traceback" not in "\n".join(lines)


def test_workers_exit_when_their_driver_is_killed(tmp_path: Path) -> None:
    process = _start_sweep(tmp_path)
    os.kill(process.pid, signal.SIGKILL)  # the driver only: its workers are orphaned
    process.wait()
    try:
        left = _gone_after(process.pid, 5)
        assert not left, f"orphans still running 5 s after kill -9 of the driver: {left}"
    finally:
        for pid in _session(process.pid):
            os.kill(pid, signal.SIGKILL)


def test_ctrl_c_stops_the_native_kernel_within_a_second() -> None:
    if not native.built():
        pytest.skip("native kernel not built")
    script = textwrap.dedent("""
        import numpy as np
        from nnsweep.train import native
        from nnsweep.train.model import init_weights, layer_units
        inputs = np.array([[a, b, c, d] for a in (0, 1) for b in (0, 1) for c in (0, 1)
                           for d in (0, 1)], dtype=float)
        targets = inputs[:, :2].copy()
        weights = init_weights(layer_units(4, (64, 64, 64), 2), range(1, 17), "tutorial")
        points = np.array([0], dtype=np.int64)
        def started(done):
            print("training", flush=True)
        try:
            native.train_blocks(native.available_paths()[0], inputs, targets, weights, None,
                                ["sigmoid"] * 4, 1.0, 10**9, points, 0.01, started)
        except KeyboardInterrupt:
            print("interrupted", flush=True)
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "training"
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=1.0)
    finally:
        process.kill()
    assert time.monotonic() - signalled < 1.0
    assert process.stdout.read().strip() == "interrupted"


def test_ctrl_c_on_a_single_run_is_one_line_and_writes_no_results(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nnsweep",
            "n_seeds=8",
            "iterations=100000000",
            f"results_dir={tmp_path}",
            "progress=false",
        ],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=ctrl_c_reaches_it,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob("run/*/owner.json")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # training
    signalled = time.monotonic()
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=5) == 130
    assert time.monotonic() - signalled < 1.0
    assert process.stderr is not None
    lines = process.stderr.read().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnsweep: interrupted (SIGINT)"), lines
    assert not list(tmp_path.glob("run/*/runs.parquet"))
