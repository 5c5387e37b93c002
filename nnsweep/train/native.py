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

from nnsweep.errors import ConfigError

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

MODES = ("auto", "numpy", "native")  # the values NNSWEEP_KERNEL may take


class KernelUnavailableError(RuntimeError):
    """``NNSWEEP_KERNEL=native`` was asked for a cell the kernel cannot train."""


class NNBlock(ctypes.Structure):
    """``struct nn_block`` of ``_kernel.c``, field for field: one block of 4 seeds."""

    _fields_ = [
        ("lanes", _INT),  # LANES as this module lays out buffers; the kernel checks it
        ("n_layers", _INT),  # weight layers
        ("units", _ARRAY),  # int64 (n_layers + 1,): units per layer, inputs first
        ("n_samples", _INT),
        ("inputs", _ARRAY),  # float64 (n_samples, units[0])
        ("targets", _ARRAY),  # float64 (n_samples, units[-1])
        ("lr", _DOUBLE),
        ("threshold", _DOUBLE),  # first_below: first margin below this
        ("last", _INT),  # iterations - 1
        ("log_points", _ARRAY),  # int64 (n_points,)
        ("n_points", _INT),
        ("stop_flag", _ARRAY),  # int64 (1,), polled every iteration: non-zero stops
        ("weights", _ARRAY),  # float64, each layer (a, b, LANES)
        ("scratch", _ARRAY),  # float64, see scratch_size in train_blocks
        ("curves", _ARRAY),  # float64 (n_points, LANES)
        ("final_error", _ARRAY),  # float64 (LANES,)
        ("final_output", _ARRAY),  # float64 (n_samples, n_outputs, LANES)
        ("saved_weights", _ARRAY),  # float64, like weights: a diverged lane's last weights
        ("reached", _ARRAY),  # int64 (LANES,)
        ("first_below", _ARRAY),  # int64 (LANES,)
        ("status", _ARRAY),  # int64 (LANES,): 1 training, 0 unused, -1 diverged
    ]


@cache
def _library() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("nnsweep.train._kernel")
    if spec is None or spec.origin is None:
        return None
    try:
        library = ctypes.CDLL(spec.origin)
    except OSError:
        return None
    library.nn_available.restype = _INT
    library.nn_lanes.restype = _INT
    # A library built for another lane count would read the buffers wrongly: not used.
    if not library.nn_available() or library.nn_lanes() != LANES:
        return None
    library.nn_exp.argtypes = [_ARRAY, _ARRAY, _INT]
    library.nn_exp.restype = None
    library.nn_train_block.restype = _INT
    library.nn_train_block.argtypes = [ctypes.POINTER(NNBlock), _INT, _INT]
    return library


def mode() -> str:
    """``auto`` (the default), ``numpy`` or ``native``, from ``NNSWEEP_KERNEL``.

    Raises
    ------
    ConfigError
        For any other value, naming it.
    """
    wanted = os.environ.get("NNSWEEP_KERNEL", "auto").strip() or "auto"
    if wanted not in MODES:
        raise ConfigError(f"NNSWEEP_KERNEL={wanted}: unknown; choose one of {', '.join(MODES)}")
    return wanted


def threads() -> int:
    """Threads for the kernel: ``NNSWEEP_THREADS``, else the CPUs this process may use.

    Raises
    ------
    ConfigError
        When ``NNSWEEP_THREADS`` is not a whole number from 1 to 1024.
    """
    wanted = os.environ.get("NNSWEEP_THREADS", "").strip()
    if wanted:
        if not wanted.isdecimal() or not 1 <= int(wanted) <= 1024:
            raise ConfigError(f"NNSWEEP_THREADS={wanted}: must be a whole number from 1 to 1024")
        return int(wanted)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1


def check_environment() -> None:
    """Read every NNSWEEP_* variable once, so that a bad value is refused before any work."""
    mode()
    threads()


def available() -> bool:
    """Whether the kernel was built and this CPU can run it."""
    return _library() is not None


@cache
def reproduces_numpy() -> bool:
    """Whether numpy's ``exp`` on this machine is the one the kernel mirrors (glibc's).

    On CPUs with AVX-512F numpy computes float64 ``exp`` with its own vector routine, and
    OpenBLAS picks another dgemm kernel: the kernel matches neither, so the per-cell probe
    rejects it there and numpy trains. Tests of bit-identity with numpy apply only where this
    holds.
    """
    if not available():
        return False
    values = np.linspace(-40.0, 40.0, 4096) + 1e-3 * np.sin(np.arange(4096.0))
    return bool(np.array_equal(exp(values), np.exp(values)))


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

    stop_flag = np.zeros(1, dtype=np.int64)  # raised on Ctrl-C; every block polls it
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
        # The struct holds raw addresses: the arrays above stay alive in ``block``.
        block["struct"] = NNBlock(
            lanes=LANES, n_layers=len(shapes), units=units.ctypes.data, n_samples=n_samples,
            inputs=inputs.ctypes.data, targets=targets.ctypes.data, lr=lr,
            threshold=error_threshold, last=iterations - 1, log_points=points.ctypes.data,
            n_points=n_points, stop_flag=stop_flag.ctypes.data,
            weights=block["weights"].ctypes.data, scratch=block["scratch"].ctypes.data,
            curves=block["curves"].ctypes.data, final_error=block["final_error"].ctypes.data,
            final_output=block["final_output"].ctypes.data,
            saved_weights=block["saved"].ctypes.data,
            reached=block["reached"].ctypes.data, first_below=block["first_below"].ctypes.data,
            status=block["status"].ctypes.data,
        )  # fmt: skip
        blocks.append(block)

    def advance(group: list[dict], chunk_start: int, chunk_stop: int) -> bool:
        """Run the chunk on every block of ``group``; False when stopped."""
        for block in group:
            done = library.nn_train_block(ctypes.byref(block["struct"]), chunk_start, chunk_stop)
            if done < 0:
                raise RuntimeError("the native kernel was built for another lane count")
            if done < chunk_stop:
                return False
        return True

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
            if not advance(blocks[thread::n_threads], chunk_start, chunk_stop):
                return
            reached[thread] = chunk_stop

    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        work = [pool.submit(run, thread) for thread in range(n_threads)]
        try:
            reported = 0
            while wait(work, timeout=PROGRESS_SECONDS).not_done:
                if progress is not None and min(reached) > reported:
                    reported = min(reached)
                    progress(reported)
        except BaseException:
            # Ctrl-C (or SIGTERM, turned into one) lands here in the main thread: the kernel
            # threads see the flag within one iteration, so the pool's exit does not wait
            # for the rest of the training. Nothing of this batch is kept.
            stop_flag[0] = 1
            raise
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
