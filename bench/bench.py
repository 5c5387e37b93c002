"""Speed and memory, measured by hand (``make bench``); never part of the test suite.

First, each arithmetic path side by side in this process (``arithmetic_paths``): the
tutorial's loop, host numpy stacked, the portable arithmetic in numpy and every native kernel
path, in network-iterations per second on one core.

Then three ways of doing the same work, in one run so the ratios share one machine state:

(a) the tutorial's loop, one network at a time, in this process;
(b) the same loop spread over a joblib pool of 2 workers;
(c) nnsweep's sweep, end to end through the CLI (a fresh cache, so everything trains).

First, the single-cell bar: ``python -m nnsweep`` with its defaults (the tutorial's Example 2,
seed 1, 100k iterations, CLI start-up and files included) against the tutorial's own loop.

Then, unless skipped: the wall time of ``experiments=neurons_early`` (30M network-iterations)
and the peak memory (summed RSS of the process tree) of a 10-shape x 1000-seed x 2k sweep.

Usage: python bench/bench.py [--iterations N] [--seeds N] [--skip-extra]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nnsweep.config import TrainSpec  # noqa: E402
from nnsweep.train import native  # noqa: E402
from nnsweep.train.loop import train  # noqa: E402
from nnsweep.train.reference import tutorial_predict, tutorial_train  # noqa: E402

SHAPES = [(8, 16, 8), (8, 8, 8), (16, 8, 8)]
EX2_INPUTS = np.array([[0, a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
EX2_TARGETS = np.array([[1, 0], [1, 1], [1, 1], [1, 0], [1, 1], [0, 1], [0, 0], [1, 1]])
MEMORY_SHAPES = "4,8,16,4-4,8-8,16-16,8-16-8,8-8-8,16-8-8,32-32"


def _one_network(shape: tuple[int, ...], seed: int, iterations: int) -> float:
    synapses = tutorial_train(EX2_INPUTS, EX2_TARGETS, shape, seed, iterations, iterations)[1]
    # nnsweep's final_error: the margin of the final weights, one forward pass after training.
    return float(np.mean(abs(EX2_TARGETS - tutorial_predict(EX2_INPUTS, synapses))))


def _jobs(seeds: int) -> list[tuple[tuple[int, ...], int]]:
    return [(shape, seed) for shape in SHAPES for seed in range(1, seeds + 1)]


def tutorial_serial(seeds: int, iterations: int) -> tuple[float, list[float]]:
    started = time.perf_counter()
    finals = [_one_network(shape, seed, iterations) for shape, seed in _jobs(seeds)]
    return time.perf_counter() - started, finals


def tutorial_joblib(seeds: int, iterations: int) -> float:
    started = time.perf_counter()
    Parallel(n_jobs=2)(delayed(_one_network)(s, seed, iterations) for s, seed in _jobs(seeds))
    return time.perf_counter() - started


class PeakRss:
    """Samples the summed RSS of a process and all its descendants every 0.1 s."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _tree(self) -> list[int]:
        pids, queue = [], [self.pid]
        while queue:
            pid = queue.pop()
            pids.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*"):
                try:
                    queue += [int(c) for c in (task / "children").read_text().split()]
                except OSError:
                    continue
        return pids

    def _rss(self, pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, sum(self._rss(pid) for pid in self._tree()))

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def nnsweep_cli(arguments: list[str], results: Path) -> tuple[float, int, Path]:
    """Run the CLI; returns wall seconds, peak summed RSS in bytes, and the sweep directory."""
    command = [sys.executable, "-m", "nnsweep", *arguments, f"results_dir={results}"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    with PeakRss(process.pid) as memory:
        output, _ = process.communicate()
    elapsed = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"nnsweep failed ({process.returncode}):\n{output}")
    sweep_dir = next(p for p in results.glob("*/*") if (p / "runs.parquet").exists())
    return elapsed, memory.peak, sweep_dir


def single_single_run() -> None:
    started = time.perf_counter()
    tutorial_train(EX2_INPUTS, EX2_TARGETS, (8, 16, 8), 1, 100_000)
    tutorial_seconds = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as scratch:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "nnsweep", f"results_dir={scratch}", "progress=false"],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        cli_seconds = time.perf_counter() - started
    print(
        f"single cell, 4-8-16-8-2 x 100k: tutorial loop {tutorial_seconds:.1f} s, "
        f"python -m nnsweep {cli_seconds:.1f} s (start-up and files included): "
        f"nnsweep takes {cli_seconds / tutorial_seconds:.2f}x the tutorial's time"
    )


def _stacked_rate(arithmetic: str, path: str, seeds: int, iterations: int) -> float:
    """Network-iterations per second of ``train`` on 4-8-16-8-2 (Example 2), ``seeds``
    stacked, with NNSWEEP_KERNEL=path and one thread (per core)."""
    spec = TrainSpec(
        hidden_layers=(8, 16, 8), iterations=iterations, log_every=iterations,
        arithmetic=arithmetic,
    )  # fmt: skip
    saved = {name: os.environ.get(name) for name in ("NNSWEEP_KERNEL", "NNSWEEP_THREADS")}
    os.environ.update(NNSWEEP_KERNEL=path, NNSWEEP_THREADS="1")
    try:
        started = time.perf_counter()
        result = train(
            EX2_INPUTS.astype(float), EX2_TARGETS.astype(float), spec, range(1, seeds + 1)
        )
        seconds = time.perf_counter() - started
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    assert result.kernel == (path if arithmetic == "portable" else "numpy"), result.kernel
    return seeds * iterations / seconds


def arithmetic_paths(seeds: int, iterations: int) -> None:
    """Each way of doing the arithmetic side by side, per core, as ratios in one run: the
    tutorial's loop (one network at a time), the host-numpy stacked loop, the portable
    arithmetic's numpy implementation, and each native kernel path this machine has."""
    started = time.perf_counter()
    tutorial_iterations = max(iterations // 10, 1)
    tutorial_train(EX2_INPUTS, EX2_TARGETS, (8, 16, 8), 1, tutorial_iterations)
    tutorial = tutorial_iterations / (time.perf_counter() - started)
    rows = [("tutorial loop (one network)", tutorial)]
    paths = [("host numpy, stacked (arithmetic=numpy)", "numpy", "numpy")]
    paths.append(("portable, numpy implementation", "portable", "numpy"))
    for path in getattr(native, "available_paths", tuple)():
        paths.append((f"portable, kernel {path}", "portable", path))
    for label, arithmetic, path in paths:
        rows.append((label, _stacked_rate(arithmetic, path, seeds, iterations)))
    print(
        f"arithmetic paths, 4-8-16-8-2 on Example 2, {seeds} seeds stacked x {iterations} "
        "iterations, one thread (network-iterations per second; ratios):"
    )
    host = rows[1][1]
    for label, rate in rows:
        print(
            f"  {label:40s} {rate:12,.0f}  {rate / tutorial:7.1f}x tutorial  "
            f"{rate / host:6.2f}x host numpy"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--seeds", type=int, default=64)
    parser.add_argument("--skip-extra", action="store_true", help="only the (a)/(b)/(c) ratios")
    parser.add_argument("--single-only", action="store_true", help="only the single-cell bar")
    parser.add_argument(
        "--paths-only", action="store_true", help="only the arithmetic paths side by side"
    )
    parser.add_argument("--path-seeds", type=int, default=400, help="seeds stacked per path")
    parser.add_argument("--path-iterations", type=int, default=1000)
    args = parser.parse_args()
    arithmetic_paths(args.path_seeds, args.path_iterations)
    if args.paths_only:
        return
    single_single_run()
    if args.single_only:
        return
    work = len(SHAPES) * args.seeds * args.iterations
    print(
        f"work: {len(SHAPES)} shapes x {args.seeds} seeds x {args.iterations} iterations "
        f"= {work:,} network-iterations; {os.cpu_count()} cores"
    )

    with tempfile.TemporaryDirectory() as scratch:
        layers = ",".join("-".join(map(str, shape)) for shape in SHAPES)
        c_seconds, _, sweep_dir = nnsweep_cli(
            [
                "-m",
                f"layers={layers}",
                f"n_seeds={args.seeds}",
                f"iterations={args.iterations}",
                f"log_every={args.iterations}",
                "progress=false",
                "arithmetic=numpy",  # the tutorial's own arithmetic: (a) must match it
            ],
            Path(scratch) / "c",
        )
        runs = pd.read_parquet(sweep_dir / "runs.parquet")
        print(
            f"(c) nnsweep sweep, CLI end to end: {c_seconds:8.1f} s  "
            f"{work / c_seconds:12,.0f} network-it/s"
        )
        a_seconds, finals = tutorial_serial(args.seeds, args.iterations)
        print(
            f"(a) tutorial loop, one process:    {a_seconds:8.1f} s  "
            f"{work / a_seconds:12,.0f} network-it/s"
        )
        b_seconds = tutorial_joblib(args.seeds, args.iterations)
        print(
            f"(b) tutorial loop, joblib n_jobs=2: {b_seconds:7.1f} s  "
            f"{work / b_seconds:12,.0f} network-it/s"
        )
        same = np.array_equal(runs["final_error"].to_numpy(), np.array(finals))
        print(
            f"(c) / (a) = {a_seconds / c_seconds:.1f}x   (c) / (b) = {b_seconds / c_seconds:.1f}x"
            f"   final errors of (c) identical to (a): {same}"
        )

        if args.skip_extra:
            return
        seconds, peak, _ = nnsweep_cli(
            ["experiments=neurons_early", "progress=false"], Path(scratch) / "ne"
        )
        print(
            f"neurons_early (3 x 100 seeds x 100k = 30M network-it), tables and report: "
            f"{seconds:.1f} s wall, {30e6 / seconds:,.0f} network-it/s, "
            f"peak RSS {peak / 2**20:,.0f} MiB"
        )
        seconds, peak, _ = nnsweep_cli(
            [
                "-m",
                f"layers={MEMORY_SHAPES}",
                "n_seeds=1000",
                "iterations=2000",
                "log_every=100",
                "progress=false",
            ],
            Path(scratch) / "mem",
        )
        print(
            f"10 shapes x 1000 seeds x 2k iterations: {seconds:.1f} s wall, "
            f"peak RSS of the process tree {peak / 2**20:,.0f} MiB"
        )


if __name__ == "__main__":
    main()
