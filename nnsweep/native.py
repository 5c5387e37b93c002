"""The optional native kernel (``_kernel.c``): the tutorial's sigmoid network, 4 seeds per call.

numpy stays the definition of the arithmetic. The kernel is used only where it is known to
give numpy's numbers bit for bit: on x86-64 with AVX2 and FMA, for sigmoid networks without
biases and small enough that OpenBLAS sums every product in one pass, and only after a probe
on the cell's own data has matched numpy exactly. Anything else, and any doubt, runs numpy.

``NNSWEEP_KERNEL=numpy`` forces numpy; ``NNSWEEP_KERNEL=native`` makes a cell that cannot use
the kernel an error instead of a silent fallback (tests and benchmarks use both).
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import cache

import numpy as np

LANES = 4
# OpenBLAS sums a product's depth in one pass up to its GEMM_Q block (256 or more on x86-64);
# beyond it the order changes. Every depth here (layer widths, sample count) stays below.
MAX_DEPTH = 128
# Iterations per kernel call; each thread records its progress between calls.
CHUNK = 2048
# How often the calling thread passes that progress on.
PROGRESS_SECONDS = 0.5
# Iterations the probe trains with both numpy and the kernel before trusting the kernel.
PROBE_ITERATIONS = 24

_ARRAY = ctypes.c_void_p
_INT = ctypes.c_int64
_DOUBLE = ctypes.c_double


class KernelUnavailableError(RuntimeError):
    """``NNSWEEP_KERNEL=native`` was asked for a cell the kernel cannot train."""


@cache
def _library() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("nnsweep._kernel")
    if spec is None or spec.origin is None:
        return None
    try:
        library = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    library.nn_available.restype = _INT
    if not library.nn_available():
        return None
    library.nn_exp.argtypes = [_ARRAY, _ARRAY, _INT]
    library.nn_exp.restype = None
    library.nn_train_block.restype = _INT
    library.nn_train_block.argtypes = [
        _INT, _ARRAY, _INT, _ARRAY, _ARRAY, _ARRAY, _ARRAY, _DOUBLE, _DOUBLE, _INT, _INT, _INT,
        _ARRAY, _INT, _ARRAY, _ARRAY, _ARRAY, _ARRAY, _ARRAY, _ARRAY, _ARRAY,
    ]  # fmt: skip
    return library


def mode() -> str:
    """``auto`` (the default), ``numpy`` or ``native``, from ``NNSWEEP_KERNEL``."""
    return os.environ.get("NNSWEEP_KERNEL", "auto")


def threads() -> int:
    """Threads for the kernel: ``NNSWEEP_THREADS``, else the CPUs this process may use."""
    wanted = os.environ.get("NNSWEEP_THREADS")
    if wanted:
        return max(1, int(wanted))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def available() -> bool:
    """Whether the kernel was built and this CPU can run it."""
    return _library() is not None


def exp(values: np.ndarray) -> np.ndarray:
    """The kernel's exp (for tests); ``values`` is 1-D with a length divisible by 4."""
    library = _library()
    assert library is not None
    values = np.ascontiguousarray(values, dtype=np.float64)
    result = np.empty_like(values)
    library.nn_exp(values.ctypes.data, result.ctypes.data, values.size)
    return result


def supports(
    units: Sequence[int], n_samples: int, activation: str, output_activation: str, bias: bool
) -> str:
    """Why the kernel cannot train this network, or ``""`` when it can."""
    if not available():
        return "the native kernel is not built or this CPU lacks AVX2/FMA"
    if (activation, output_activation) != ("sigmoid", "sigmoid"):
        return "the native kernel only does sigmoid layers"
    if bias:
        return "the native kernel has no biases"
    if max(*units, n_samples) > MAX_DEPTH or len(units) > 64:
        return f"the native kernel takes at most {MAX_DEPTH} units and samples"
    if min(*units, n_samples) < 2:
        # numpy hands a product with a dimension of 1 to BLAS's gemv or dot, which sum in
        # another order than dgemm.
        return "the native kernel needs 2 or more units in every layer and 2 or more samples"
    if any(rows % 2 for rows in (n_samples, *units[:-1])):
        # A product's rows are the samples, or a layer's inputs (for the update). OpenBLAS's
        # dgemm sums an odd last row with 4 interleaved partial sums; every other entry,
        # and every entry when the rows are even, is one sequential chain.
        return "the native kernel needs an even number of samples and of units feeding a layer"
    return ""


@dataclass
class BlockResult:
    """The kernel's per-seed outcome; arrays follow the seed order given to ``train_blocks``."""

    curves: np.ndarray  # (n_seeds, n_points), NaN where not reached
    final_error: np.ndarray  # (n_seeds,)
    final_output: np.ndarray  # (n_seeds, n_samples, n_outputs)
    weights: list[np.ndarray]  # each (n_seeds, a, b); a diverged seed's are from its last step
    diverged: np.ndarray  # (n_seeds,) bool: the error margin went non-finite
    iterations_reached: np.ndarray  # (n_seeds,)
    first_below: np.ndarray  # (n_seeds,), -1 if never


def _to_lanes(weights: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Weights of 4 seeds as one flat buffer, each layer (a, b, lanes)."""
    return np.concatenate([w[rows].transpose(1, 2, 0).ravel() for w in weights])


def _from_lanes(flat: np.ndarray, shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    """Inverse of ``_to_lanes``: each layer as (lanes, a, b)."""
    layers, offset = [], 0
    for a, b in shapes:
        size = a * b * LANES
        layers.append(flat[offset : offset + size].reshape(a, b, LANES).transpose(2, 0, 1))
        offset += size
    return layers


def train_blocks(
    inputs: np.ndarray,
    targets: np.ndarray,
    weights: list[np.ndarray],
    lr: float,
    iterations: int,
    log_points: np.ndarray,
    error_threshold: float,
    progress: Callable[[int], None] | None = None,
) -> BlockResult:
    """Train every seed of ``weights`` (each ``(n_seeds, a, b)``) with the kernel.

    Seeds go through in blocks of 4, one per lane; the blocks are shared out over threads.
    ``progress`` gets the iterations that every block has done.
    """
    library = _library()
    assert library is not None
    inputs = np.ascontiguousarray(inputs, dtype=np.float64)
    targets = np.ascontiguousarray(targets, dtype=np.float64)
    n_seeds = weights[0].shape[0]
    n_samples, n_out = targets.shape
    units = np.array([weights[0].shape[1], *(w.shape[2] for w in weights)], dtype=np.int64)
    shapes = [(w.shape[1], w.shape[2]) for w in weights]
    n_points = len(log_points)
    points = np.ascontiguousarray(log_points, dtype=np.int64)
    # Each layer's outputs and deltas, then the error and its magnitude (see _kernel.c).
    scratch_size = LANES * n_samples * (2 * int(units[1:].sum()) + 2 * n_out)

    blocks = []
    for start in range(0, n_seeds, LANES):
        rows = np.arange(start, min(start + LANES, n_seeds))
        padded = np.concatenate([rows, np.full(LANES - rows.size, rows[-1])])
        block = {
            "rows": rows,
            "weights": _to_lanes(weights, padded),
            "scratch": np.zeros(scratch_size),
            "curves": np.full((n_points, LANES), np.nan),
            "final_error": np.full(LANES, np.nan),
            "final_output": np.full((n_samples, n_out, LANES), np.nan),
            "reached": np.full(LANES, iterations, dtype=np.int64),
            "first_below": np.full(LANES, -1, dtype=np.int64),
            "status": (np.arange(LANES) < rows.size).astype(np.int64),
        }
        block["saved"] = np.zeros_like(block["weights"])
        blocks.append(block)

    def advance(group: list[dict[str, np.ndarray]], chunk_start: int, chunk_stop: int) -> None:
        for block in group:
            library.nn_train_block(
                len(shapes), units.ctypes.data, n_samples, inputs.ctypes.data,
                targets.ctypes.data, block["weights"].ctypes.data, block["scratch"].ctypes.data,
                lr, error_threshold, chunk_start, chunk_stop, iterations - 1, points.ctypes.data,
                n_points, block["curves"].ctypes.data, block["final_error"].ctypes.data,
                block["final_output"].ctypes.data, block["saved"].ctypes.data,
                block["reached"].ctypes.data, block["first_below"].ctypes.data,
                block["status"].ctypes.data,
            )  # fmt: skip

    # ctypes lets go of the GIL during the call, so threads run blocks on separate cores.
    # A sweep's jobs then share the machine's cores between them, and the last job of a
    # sweep no longer runs on one core while the others idle. Each thread takes its blocks
    # through every iteration on its own (no barrier per chunk: with more threads than
    # cores, a barrier would make every thread wait for the one the OS paused).
    n_threads = min(threads(), len(blocks))
    reached = [0] * n_threads  # iterations done by each thread's blocks

    def run(thread: int) -> None:
        for chunk_start in range(0, iterations, CHUNK):
            chunk_stop = min(chunk_start + CHUNK, iterations)
            advance(blocks[thread::n_threads], chunk_start, chunk_stop)
            reached[thread] = chunk_stop

    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        work = [pool.submit(run, thread) for thread in range(n_threads)]
        reported = 0
        while wait(work, timeout=PROGRESS_SECONDS).not_done:
            if progress is not None and min(reached) > reported:
                reported = min(reached)
                progress(reported)
        for future in work:
            future.result()  # a thread's error surfaces here
    if progress is not None:
        progress(iterations)

    result = BlockResult(
        curves=np.full((n_seeds, n_points), np.nan),
        final_error=np.full(n_seeds, np.nan),
        final_output=np.full((n_seeds, n_samples, n_out), np.nan),
        weights=[np.empty((n_seeds, a, b)) for a, b in shapes],
        diverged=np.zeros(n_seeds, dtype=bool),
        iterations_reached=np.full(n_seeds, iterations, dtype=np.int64),
        first_below=np.full(n_seeds, -1, dtype=np.int64),
    )
    for block in blocks:
        rows, used = block["rows"], slice(0, block["rows"].size)
        stopped = block["status"] == -1
        final = _from_lanes(block["weights"], shapes)
        saved = _from_lanes(block["saved"], shapes)
        for k in range(len(shapes)):
            result.weights[k][rows] = np.where(stopped[:, None, None], saved[k], final[k])[used]
        stopped = stopped[used]
        result.curves[rows] = block["curves"].T[used]
        result.final_error[rows] = block["final_error"][used]
        result.final_output[rows] = block["final_output"].transpose(2, 0, 1)[used]
        result.diverged[rows] = stopped
        result.iterations_reached[rows] = block["reached"][used]
        result.first_below[rows] = block["first_below"][used]
    return result
