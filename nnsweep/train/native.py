"""The native kernel (``_kernel.c``): the portable arithmetic, 1, 4 or 8 seeds per vector.

The portable arithmetic (ARITHMETIC.md) defines every number as a fixed sequence of IEEE-754
binary64 operations. The kernel performs exactly that sequence, so it needs no probe against
numpy to be trusted: every path gives the numpy implementation's bits on every CPU. Three
paths, picked at run time: ``avx512`` (AVX-512F, 8 seeds per vector), ``avx2`` (4) and
``scalar`` (portable C99, 1). One C call trains one block of seeds through every iteration
and writes the logged error margins into a buffer.

``NNSWEEP_KERNEL`` chooses who does the portable arithmetic: ``auto`` (the default: the
fastest path this CPU runs, else numpy), ``avx512``, ``avx2`` or ``scalar`` (that path, or a
one-line error where it is not available), ``native`` (the fastest path, or an error where
the kernel is not built) and ``numpy`` (the numpy implementation). All of them give the same
bits. The host-numpy arithmetic (``arithmetic=numpy``) never uses the kernel.
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

ABI = 3  # _kernel.c's NN_ABI: a stale build with another struct layout is not used
PATHS = {"avx512": 2, "avx2": 1, "scalar": 0}  # fastest first; values are _kernel.c's PATH_*
MODES = ("auto", "native", "numpy", *PATHS)  # the values NNSWEEP_KERNEL may take
ACTIVATIONS = {"sigmoid": 0, "tanh": 1, "relu": 2}  # _kernel.c's ACT_*
MAX_LAYERS = 64
# How often the calling thread passes the kernel's progress on.
PROGRESS_SECONDS = 0.5

_ARRAY = ctypes.c_void_p
_INT = ctypes.c_int64
_DOUBLE = ctypes.c_double


class KernelUnavailableError(RuntimeError):
    """A kernel path was asked for (``NNSWEEP_KERNEL``) that cannot train this cell here."""


class NNNet(ctypes.Structure):
    """``struct nn_net`` of ``_kernel.c``, field for field: one block of seeds."""

    _fields_ = [
        ("lanes", _INT),  # seeds per vector of the path the buffers are laid out for
        ("n_layers", _INT),  # weight layers
        ("units", _ARRAY),  # int64 (n_layers + 1,): units per layer, inputs first
        ("activations", _ARRAY),  # int64 (n_layers,): ACTIVATIONS of each layer
        ("has_bias", _INT),
        ("n_samples", _INT),
        ("inputs", _ARRAY),  # float64 (n_samples, units[0])
        ("targets", _ARRAY),  # float64 (n_samples, units[-1])
        ("lr", _DOUBLE),
        ("threshold", _DOUBLE),  # first_below: first margin below this
        ("iterations", _INT),
        ("log_points", _ARRAY),  # int64 (n_points,)
        ("n_points", _INT),
        ("stop_flag", _ARRAY),  # int64 (1,), polled every iteration: non-zero stops
        ("progress", _ARRAY),  # int64 (1,): iterations done, written by the kernel
        ("weights", _ARRAY),  # float64, each layer (a, b, lanes), back to back
        ("biases", _ARRAY),  # float64, each layer (b, lanes), back to back
        ("curves", _ARRAY),  # float64 (n_points, lanes)
        ("final_error", _ARRAY),  # float64 (lanes,)
        ("final_output", _ARRAY),  # float64 (n_samples, n_outputs, lanes)
        ("saved_weights", _ARRAY),  # like weights: a stopped lane's weights
        ("saved_biases", _ARRAY),
        ("reached", _ARRAY),  # int64 (lanes,)
        ("first_below", _ARRAY),  # int64 (lanes,)
        ("status", _ARRAY),  # int64 (lanes,): 1 training, 0 unused, -1 diverged
    ]


@cache
def _library() -> ctypes.CDLL | None:
    spec = importlib.util.find_spec("nnsweep.train._kernel")
    if spec is None or spec.origin is None:
        return None
    try:
        library = ctypes.CDLL(spec.origin)
        library.nn_abi.restype = _INT
    except (OSError, AttributeError):
        return None  # not built, or a build of the old kernel
    if library.nn_abi() != ABI:
        return None
    for name in ("nn_path_lanes", "nn_path_available"):
        getattr(library, name).restype = _INT
        getattr(library, name).argtypes = [_INT]
    library.nn_train.restype = _INT
    library.nn_train.argtypes = [_INT, ctypes.POINTER(NNNet)]
    library.nn_evaluate.restype = _INT
    library.nn_evaluate.argtypes = [_INT, ctypes.POINTER(NNNet)]
    library.nn_exp.restype = _INT
    library.nn_exp.argtypes = [_INT, _ARRAY, _ARRAY, _INT]
    return library


def built() -> bool:
    """Whether the kernel was compiled (its scalar path then runs on any CPU)."""
    return _library() is not None


@cache
def available_paths() -> tuple[str, ...]:
    """The kernel paths this build has and this CPU runs, fastest first."""
    library = _library()
    if library is None:
        return ()
    return tuple(name for name, code in PATHS.items() if library.nn_path_available(code))


def lanes(path: str) -> int:
    """Seeds per vector of a kernel path."""
    library = _library()
    assert library is not None
    return int(library.nn_path_lanes(PATHS[path]))


def mode() -> str:
    """``NNSWEEP_KERNEL``: one of ``MODES`` (``auto`` when unset).

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
    """Read every NNSWEEP_* variable once, so that a bad value is refused before any work.

    Raises
    ------
    ConfigError
        For a bad value, or a kernel path forced by ``NNSWEEP_KERNEL`` that this machine
        cannot run.
    """
    wanted = mode()
    threads()
    if wanted in PATHS and wanted not in available_paths():
        raise ConfigError(f"NNSWEEP_KERNEL={wanted}: {_why_missing(wanted)}")
    if wanted == "native" and not available_paths():
        raise ConfigError(f"NNSWEEP_KERNEL=native: {_why_missing('native')}")


def _why_missing(path: str) -> str:
    if not built():
        return "the native kernel is not built (no C compiler at install time?)"
    return f"this CPU (or this build) has no {path} path; it has {', '.join(available_paths())}"


def supports(n_layers: int, activations: Sequence[str]) -> str:
    """Why the kernel cannot train this network, or ``""`` when it can."""
    if not built():
        return "the native kernel is not built"
    if n_layers > MAX_LAYERS:
        return f"the native kernel takes at most {MAX_LAYERS} weight layers"
    unknown = sorted(set(activations) - set(ACTIVATIONS))
    if unknown:
        return f"the native kernel has no {unknown[0]} activation"
    return ""


def choose_path(n_layers: int, activations: Sequence[str]) -> tuple[str, str]:
    """Who does the portable arithmetic for this network: a kernel path or ``"numpy"``.

    Returns
    -------
    (path, reason)
        ``path`` is ``"avx512"``, ``"avx2"``, ``"scalar"`` or ``"numpy"``; ``reason`` says
        why numpy was chosen (empty for a kernel path or ``NNSWEEP_KERNEL=numpy``).

    Raises
    ------
    KernelUnavailableError
        When ``NNSWEEP_KERNEL`` forces a kernel path that cannot train this network here.
    """
    wanted = mode()
    if wanted == "numpy":
        return "numpy", ""
    why_not = supports(n_layers, activations)
    if not why_not and wanted in PATHS and wanted not in available_paths():
        why_not = _why_missing(wanted)
    if not why_not and not available_paths():
        why_not = _why_missing("native")
    if why_not:
        if wanted != "auto":
            raise KernelUnavailableError(why_not)
        return "numpy", why_not
    return (available_paths()[0] if wanted in ("auto", "native") else wanted), ""


def exp(values: np.ndarray, path: str) -> np.ndarray:
    """The kernel's exp through one path, value by value (for tests)."""
    library = _library()
    assert library is not None
    values = np.ascontiguousarray(values, dtype=np.float64)
    result = np.empty_like(values)
    if library.nn_exp(PATHS[path], values.ctypes.data, result.ctypes.data, values.size) != 0:
        raise KernelUnavailableError(f"the kernel's {path} path is not available here")
    return result


@dataclass
class BlockResult:
    """The kernel's per-seed outcome; arrays follow the seed order given to ``train_blocks``."""

    curves: np.ndarray  # (n_seeds, n_points), NaN where not reached
    final_error: np.ndarray  # (n_seeds,)
    final_output: np.ndarray  # (n_seeds, n_samples, n_outputs)
    weights: list[np.ndarray]  # each (n_seeds, a, b); a diverged seed's are from its last pass
    biases: list[np.ndarray] | None  # each (n_seeds, 1, b)
    diverged: np.ndarray  # (n_seeds,) bool: the error margin went non-finite
    iterations_reached: np.ndarray  # (n_seeds,)
    first_below: np.ndarray  # (n_seeds,), -1 if never


def _to_lanes(layers: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
    """Layers of some seeds, each (n_seeds, ...), as one flat buffer with seeds last."""
    return np.concatenate([np.moveaxis(layer[rows], 0, -1).ravel() for layer in layers])


def _from_lanes(flat: np.ndarray, shapes: list[tuple[int, ...]], n_lanes: int) -> list:
    """Inverse of ``_to_lanes``: each layer as (lanes, *shape)."""
    layers, offset = [], 0
    for shape in shapes:
        size = int(np.prod(shape)) * n_lanes
        layers.append(np.moveaxis(flat[offset : offset + size].reshape(*shape, n_lanes), -1, 0))
        offset += size
    return layers


class _Blocks:
    """The seeds laid out in blocks of ``lanes`` and one ``NNNet`` per block.

    The structs hold raw addresses: every array they point to is kept alive here.
    """

    def __init__(
        self,
        path: str,
        inputs: np.ndarray,
        targets: np.ndarray,
        weights: list[np.ndarray],
        biases: list[np.ndarray] | None,
        activations: Sequence[str],
        n_points: int = 0,
    ) -> None:
        self.path, self.lanes = path, lanes(path)
        self.inputs = np.ascontiguousarray(inputs, dtype=np.float64)
        self.targets = np.ascontiguousarray(targets, dtype=np.float64)
        self.n_seeds = weights[0].shape[0]
        self.units = np.array([weights[0].shape[1], *(w.shape[2] for w in weights)], np.int64)
        self.kinds = np.array([ACTIVATIONS[a] for a in activations], dtype=np.int64)
        self.shapes = [(w.shape[1], w.shape[2]) for w in weights]
        self.bias_shapes = [(b,) for b in self.units[1:]]
        self.stop_flag = np.zeros(1, dtype=np.int64)
        self.blocks: list[dict] = []
        n_samples, n_out = self.targets.shape
        L = self.lanes
        for start in range(0, self.n_seeds, L):
            rows = np.arange(start, min(start + L, self.n_seeds))
            # An unused lane repeats the last seed: real numbers, never read back.
            padded = np.concatenate([rows, np.full(L - rows.size, rows[-1])])
            block = {
                "rows": rows,
                "weights": _to_lanes(weights, padded),
                "biases": None if biases is None else _to_lanes([b[:, 0] for b in biases], padded),
                "curves": np.full((max(n_points, 1), L), np.nan),
                "final_error": np.full(L, np.nan),
                "final_output": np.full((n_samples, n_out, L), np.nan),
                "reached": np.full(L, 0, dtype=np.int64),
                "first_below": np.full(L, -1, dtype=np.int64),
                "status": (np.arange(L) < rows.size).astype(np.int64),
                "progress": np.zeros(1, dtype=np.int64),
            }
            block["saved"] = np.zeros_like(block["weights"])
            block["saved_biases"] = None if biases is None else np.zeros_like(block["biases"])
            self.blocks.append(block)

    def struct(
        self, block: dict, lr: float, threshold: float, iterations: int, points: np.ndarray
    ) -> NNNet:
        def address(array: np.ndarray | None) -> int | None:
            return None if array is None else array.ctypes.data

        n_samples = self.targets.shape[0]
        return NNNet(
            lanes=self.lanes,
            n_layers=len(self.shapes),
            units=address(self.units),
            activations=address(self.kinds),
            has_bias=int(block["biases"] is not None),
            n_samples=n_samples,
            inputs=address(self.inputs),
            targets=address(self.targets),
            lr=lr,
            threshold=threshold,
            iterations=iterations,
            log_points=address(points),
            n_points=points.size,
            stop_flag=address(self.stop_flag),
            progress=address(block["progress"]),
            weights=address(block["weights"]),
            biases=address(block["biases"]),
            curves=address(block["curves"]),
            final_error=address(block["final_error"]),
            final_output=address(block["final_output"]),
            saved_weights=address(block["saved"]),
            saved_biases=address(block["saved_biases"]),
            reached=address(block["reached"]),
            first_below=address(block["first_below"]),
            status=address(block["status"]),
        )

    def layers(self, block: dict, key: str, shapes: list) -> list[np.ndarray]:
        return _from_lanes(block[key], shapes, self.lanes)


def train_blocks(
    path: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    weights: list[np.ndarray],
    biases: list[np.ndarray] | None,
    activations: Sequence[str],
    lr: float,
    iterations: int,
    log_points: np.ndarray,
    error_threshold: float,
    progress: Callable[[int], None] | None = None,
) -> BlockResult:
    """Train every seed with the kernel path ``path``, one C call per block of seeds.

    Parameters
    ----------
    weights : list of ndarray, each (n_seeds, a, b)
    biases : list of ndarray, each (n_seeds, 1, b), or None for no biases
    activations : one name per weight layer (keys of ``ACTIVATIONS``)
    log_points : ndarray of int, ascending
        Iterations whose error margin (of the pass before that iteration's update) is kept.
    progress : callable, optional
        Gets the iterations done (the work of every block, averaged), every half second.

    Blocks are shared out over ``threads()`` threads: ctypes lets go of the GIL during a
    call, so blocks run on separate cores.
    """
    library = _library()
    assert library is not None
    points = np.ascontiguousarray(log_points, dtype=np.int64)
    lay = _Blocks(path, inputs, targets, weights, biases, activations, points.size)
    code = PATHS[path]

    def run(block: dict) -> None:
        struct = lay.struct(block, lr, error_threshold, iterations, points)
        done = library.nn_train(code, ctypes.byref(struct))
        if done < 0:
            raise MemoryError("the native kernel could not allocate its buffers")
        block["done"] = done

    n_threads = min(threads(), len(lay.blocks))
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        work = [pool.submit(run, block) for block in lay.blocks]
        try:
            reported = 0
            while wait(work, timeout=PROGRESS_SECONDS).not_done:
                done = sum(int(b["progress"][0]) for b in lay.blocks) // len(lay.blocks)
                if progress is not None and done > reported:
                    reported = done
                    progress(done)
        except BaseException:
            # Ctrl-C (or SIGTERM, turned into one) lands here in the main thread: the kernel
            # sees the flag within one iteration, so the pool's exit does not wait for the
            # rest of the training. Nothing of this batch is kept.
            lay.stop_flag[0] = 1
            raise
        for future in work:
            future.result()  # a thread's error surfaces here
    if progress is not None:
        progress(iterations)
    return _collect(lay, iterations, points.size)


def _collect(lay: _Blocks, iterations: int, n_points: int) -> BlockResult:
    n_seeds = lay.n_seeds
    n_samples, n_out = lay.targets.shape
    has_bias = lay.blocks[0]["biases"] is not None
    result = BlockResult(
        curves=np.full((n_seeds, n_points), np.nan),
        final_error=np.full(n_seeds, np.nan),
        final_output=np.full((n_seeds, n_samples, n_out), np.nan),
        weights=[np.empty((n_seeds, a, b)) for a, b in lay.shapes],
        biases=[np.empty((n_seeds, 1, b)) for (b,) in lay.bias_shapes] if has_bias else None,
        diverged=np.zeros(n_seeds, dtype=bool),
        iterations_reached=np.full(n_seeds, iterations, dtype=np.int64),
        first_below=np.full(n_seeds, -1, dtype=np.int64),
    )
    for block in lay.blocks:
        rows, used = block["rows"], slice(0, block["rows"].size)
        stopped = block["status"] == -1
        final = lay.layers(block, "weights", lay.shapes)
        saved = lay.layers(block, "saved", lay.shapes)
        for k in range(len(lay.shapes)):
            result.weights[k][rows] = np.where(stopped[:, None, None], saved[k], final[k])[used]
        if result.biases is not None:
            final = lay.layers(block, "biases", lay.bias_shapes)
            saved = lay.layers(block, "saved_biases", lay.bias_shapes)
            for k in range(len(lay.bias_shapes)):
                kept = np.where(stopped[:, None], saved[k], final[k])[used]
                result.biases[k][rows] = kept[:, None, :]
        result.curves[rows] = block["curves"][:n_points].T[used]
        result.final_error[rows] = block["final_error"][used]
        result.final_output[rows] = np.moveaxis(block["final_output"], -1, 0)[used]
        result.diverged[rows] = stopped[used]
        result.iterations_reached[rows] = np.where(stopped, block["reached"], iterations)[used]
        result.first_below[rows] = block["first_below"][used]
    return result


def evaluate(
    path: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    weights: list[np.ndarray],
    biases: list[np.ndarray] | None,
    activations: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """One forward pass of every seed's weights: (margins (n_seeds,), outputs
    (n_seeds, n_samples, n_outputs)), by the spec's forward pass and error-margin rule."""
    library = _library()
    assert library is not None
    lay = _Blocks(path, inputs, targets, weights, biases, activations)
    margins = np.empty(lay.n_seeds)
    outputs = np.empty((lay.n_seeds, *lay.targets.shape))
    no_points = np.zeros(0, dtype=np.int64)
    for block in lay.blocks:
        struct = lay.struct(block, 1.0, 0.0, 0, no_points)
        if library.nn_evaluate(PATHS[path], ctypes.byref(struct)) < 0:
            raise MemoryError("the native kernel could not allocate its buffers")
        used = slice(0, block["rows"].size)
        margins[block["rows"]] = block["final_error"][used]
        outputs[block["rows"]] = np.moveaxis(block["final_output"], -1, 0)[used]
    return margins, outputs
