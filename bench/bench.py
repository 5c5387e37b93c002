"""Speed, measured by hand (``make bench``); never part of the test suite.

Every figure is a ratio against the tutorial's own loop measured in the same run (machines
are shared and noisy):

1. Paths side by side, one core: the tutorial loop (host numpy, one network at a time),
   nnsweep's host arithmetic (arithmetic=numpy, seeds stacked through np.matmul), then its
   portable arithmetic through each of its paths (the numpy implementation, and the native
   kernel's scalar, AVX2 and AVX-512F paths), all training 4-8-16-8-2 on the
   tutorial's Example 2, in network-iterations per second of wall time and of CPU time.
   Rounds alternate the paths and each keeps its best round, so a burst of load elsewhere
   hits one round, not one path.
2. ``experiments=neurons_early`` end to end through the CLI with a fresh cache (3 shapes x
   100 seeds x 100k iterations = 30M network-iterations, tables and report included), all
   cores, as a wall time and a ratio to the tutorial loop's one-core rate; then by CPU time
   (what it would be without other load), split into the sweep's fixed cost (the same sweep
   with iterations=1) and training.

Optional (``--extra``): the single-cell bar (``python -m nnsweep`` with the tutorial's
settings against the tutorial's loop) and the peak memory of a 10-shape x 1000-seed sweep.

Usage: python bench/bench.py [--rounds N] [--scale X] [--skip-sweep] [--extra]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ["NNSWEEP_THREADS"] = "1"  # part 1 is per core; the CLI runs get their own env

import numpy as np
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nnsweep.config import train_spec  # noqa: E402
from nnsweep.train import native  # noqa: E402
from nnsweep.train.loop import train  # noqa: E402
from nnsweep.train.reference import tutorial_train  # noqa: E402

SHAPE = (8, 16, 8)
EX2_INPUTS = np.array([[0, a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)], float)
EX2_TARGETS = np.array([[1, 0], [1, 1], [1, 1], [1, 0], [1, 1], [0, 1], [0, 0], [1, 1]], float)
NEURONS_EARLY_WORK = 3 * 100 * 100_000
MEMORY_SHAPES = "4,8,16,4-4,8-8,16-16,8-16-8,8-8-8,16-8-8,32-32"

# (seeds, iterations) per round at --scale 1: each round takes about half a second here.
WORK = {
    "tutorial loop": (1, 20_000),
    "host": (400, 500),
    "numpy": (400, 150),
    "scalar": (64, 2_000),
    "avx2": (256, 2_000),
    "avx512": (256, 4_000),
}


def run_tutorial(seeds: int, iterations: int) -> None:
    for seed in range(1, seeds + 1):
        tutorial_train(EX2_INPUTS, EX2_TARGETS, SHAPE, seed, iterations, iterations)


def run_stacked(path: str, seeds: int, iterations: int) -> None:
    """nnsweep's trainer: ``host`` is arithmetic=numpy, any other path the portable one."""
    arithmetic = "numpy" if path == "host" else "portable"
    os.environ["NNSWEEP_KERNEL"] = "numpy" if path == "host" else path
    spec = train_spec(
        hidden_layers=SHAPE, iterations=iterations, log_every=iterations, arithmetic=arithmetic
    )
    result = train(EX2_INPUTS, EX2_TARGETS, spec, list(range(1, seeds + 1)))
    assert result.kernel == os.environ["NNSWEEP_KERNEL"], (result.kernel, path)


def paths_side_by_side(rounds: int, scale: float) -> tuple[float, float]:
    """Part 1; returns the tutorial loop's rate (network-iterations per second), and the
    same per second of CPU time."""
    kernel_paths = list(reversed(native.PATHS))  # scalar, avx2, avx512
    names = ["tutorial loop", "host", "numpy"]
    names += [p for p in kernel_paths if p in native.available_paths()]
    missing = [p for p in kernel_paths if p not in native.available_paths()]
    best = dict.fromkeys(names, 0.0)
    cpu_best = dict.fromkeys(names, 0.0)  # the same per CPU second (load costs no CPU time)
    for _ in range(rounds):
        for name in names:
            seeds, iterations = WORK[name]
            iterations = max(1, int(iterations * scale))
            started, cpu_started = time.perf_counter(), time.process_time()
            if name == "tutorial loop":
                run_tutorial(seeds, iterations)
            else:
                run_stacked(name, seeds, iterations)
            rate = seeds * iterations / (time.perf_counter() - started)
            best[name] = max(best[name], rate)
            cpu_rate = seeds * iterations / (time.process_time() - cpu_started)
            cpu_best[name] = max(cpu_best[name], cpu_rate)
    tutorial = best["tutorial loop"]
    print(f"4-8-16-8-2 on Example 2, one core, best of {rounds} rounds:")
    print(f"  {'path':<36} {'network-it/s':>13} {'x tutorial':>11} {'per CPU s':>11} {'x':>7}")
    labels = {
        "tutorial loop": "tutorial loop (host numpy)",
        "host": "arithmetic=numpy, stacked (host)",
        "numpy": "portable, numpy implementation",
        "scalar": "portable, kernel scalar (1/vector)",
        "avx2": "portable, kernel AVX2 (4/vector)",
        "avx512": "portable, kernel AVX-512F (8/vector)",
    }
    cpu_tutorial = cpu_best["tutorial loop"]
    for name in names:
        print(
            f"  {labels[name]:<36} {best[name]:>13,.0f} {best[name] / tutorial:>10.1f}x "
            f"{cpu_best[name]:>11,.0f} {cpu_best[name] / cpu_tutorial:>6.1f}x"
        )
    for name in missing:
        print(f"  {labels[name]:<36} {'not on this CPU':>13}")
    return tutorial, cpu_tutorial


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


def nnsweep_cli(arguments: list[str]) -> tuple[float, int, float]:
    """Run the CLI with all cores and a fresh cache; returns wall seconds, peak RSS and the
    CPU seconds of the whole process tree (workers included)."""
    env = {k: v for k, v in os.environ.items() if k not in ("NNSWEEP_THREADS", "NNSWEEP_KERNEL")}
    with tempfile.TemporaryDirectory() as scratch:
        command = [
            sys.executable,
            "-m",
            "nnsweep",
            *arguments,
            f"hydra.sweep.dir={scratch}/sweep",
            f"results_dir={scratch}/results",
            f"cache_dir={scratch}/cache",
            "progress=false",
        ]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
        with PeakRss(process.pid) as memory:
            process.wait()
        elapsed = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        raise SystemExit(f"nnsweep failed ({process.returncode}): {' '.join(command)}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return elapsed, memory.peak, cpu


def neurons_early(tutorial_rate: float, cpu_tutorial_rate: float) -> None:
    seconds, peak, cpu = nnsweep_cli(["experiments=neurons_early"])
    tutorial_seconds = NEURONS_EARLY_WORK / tutorial_rate
    print(
        f"experiments=neurons_early, cold cache, end to end ({os.cpu_count()} cores): "
        f"{seconds:.1f} s, {NEURONS_EARLY_WORK / seconds:,.0f} network-it/s = "
        f"{tutorial_seconds / seconds:.1f}x the tutorial loop (which would take "
        f"{tutorial_seconds:,.0f} s at its rate above); peak RSS {peak / 2**20:,.0f} MiB"
    )
    # Without the machine's other load: CPU time, whole process tree, spread over the cores.
    fixed, _, fixed_cpu = nnsweep_cli(["experiments=neurons_early", "iterations=1"])
    tutorial_cpu = NEURONS_EARLY_WORK / cpu_tutorial_rate
    cores = os.cpu_count() or 1
    print(
        f"  CPU time of the process tree: {cpu:.1f} s, of which {fixed_cpu:.1f} s is the "
        f"sweep's fixed cost (the same sweep with iterations=1: {fixed:.1f} s wall) and "
        f"{cpu - fixed_cpu:.1f} s training; by CPU time the tutorial loop would take "
        f"{tutorial_cpu:,.0f} s: {tutorial_cpu / (cpu / cores):.1f}x the sweep's CPU time "
        f"spread over {cores} cores"
    )


def extras(tutorial_rate: float) -> None:
    seconds, _, _ = nnsweep_cli([])
    print(
        f"single cell (python -m nnsweep: 4-8-16-8-2 x 100k, seed 1, start-up and files "
        f"included): {seconds:.1f} s; the tutorial loop takes {1e5 / tutorial_rate:.1f} s"
    )
    seconds, peak, _ = nnsweep_cli(
        ["-m", f"layers={MEMORY_SHAPES}", "n_seeds=1000", "iterations=2000", "log_every=100"]
    )
    print(
        f"10 shapes x 1000 seeds x 2k iterations: {seconds:.1f} s wall, "
        f"peak RSS of the process tree {peak / 2**20:,.0f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of part 1 (best kept)")
    parser.add_argument("--scale", type=float, default=1.0, help="iterations per round, scaled")
    parser.add_argument("--skip-sweep", action="store_true", help="part 1 only")
    parser.add_argument("--extra", action="store_true", help="single cell and memory too")
    args = parser.parse_args()
    print(f"kernel paths on this CPU: {', '.join(native.available_paths()) or 'none (not built)'}")
    with threadpool_limits(limits=1):  # one core: no BLAS threads either
        tutorial_rate, cpu_tutorial_rate = paths_side_by_side(args.rounds, args.scale)
    if not args.skip_sweep:
        neurons_early(tutorial_rate, cpu_tutorial_rate)
    if args.extra:
        extras(tutorial_rate)


if __name__ == "__main__":
    main()
