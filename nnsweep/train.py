"""The training loop: full-batch updates of a block of seeds at once.

Knows numpy and the frozen ``TrainSpec``; nothing of Hydra, files or plots.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nnsweep import native
from nnsweep.config import TrainSpec
from nnsweep.model import StackedNetwork, init_weights, layer_units

# Bump whenever a change could alter any trained number: it is part of every cache key.
ARITHMETIC_VERSION = 1

# How often (in iterations) the loop reports progress to its caller.
PROGRESS_EVERY = 256


@dataclass
class TrainResult:
    """Per-seed outcome of ``train``; every array's first axis follows ``seeds``.

    Attributes
    ----------
    seeds : ndarray, shape (n_seeds,)
    log_iterations : ndarray, shape (n_points,)
        Iterations whose error margin is in ``curves``: every ``log_every``-th one and the last.
    curves : ndarray, shape (n_seeds, n_points)
        ``mean(|targets - output|)`` at those iterations; NaN after a seed diverged.
    final_error : ndarray, shape (n_seeds,)
        The margin of the last error computed, as the tutorial's variable holds it after its loop.
    final_output : ndarray, shape (n_seeds, n_samples, n_outputs)
        The output layer of the last forward pass.
    weights : list of ndarray, each (n_seeds, units[k], units[k + 1])
        Weights after the last update.
    biases : list of ndarray, each (n_seeds, 1, units[k + 1]), or None
    diverged : ndarray of bool, shape (n_seeds,)
    iterations_reached : ndarray of int, shape (n_seeds,)
        Forward passes run; less than ``iterations`` only for a seed that diverged.
    first_below : ndarray of int, shape (n_seeds,)
        First iteration whose margin was below ``error_threshold``; -1 if never.
    reasons : list of str
        Empty for a healthy seed, else why it was stopped.
    holdout_error : ndarray, shape (n_seeds,)
        Error margin of the final weights on the held-out rows; NaN when there are none.
    wall_seconds : float
        Wall time of the whole stacked computation.
    kernel : str
        ``"native"`` or ``"numpy"``: which code did the arithmetic (the bits are the same).
    """

    seeds: np.ndarray
    log_iterations: np.ndarray
    curves: np.ndarray
    final_error: np.ndarray
    final_output: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray] | None
    diverged: np.ndarray
    iterations_reached: np.ndarray
    first_below: np.ndarray
    reasons: list[str]
    holdout_error: np.ndarray
    wall_seconds: float
    kernel: str = "numpy"


def log_iterations(iterations: int, log_every: int) -> np.ndarray:
    """The iterations whose error margin is recorded: 0, log_every, ... and the last one."""
    points = list(range(0, iterations, log_every))
    if points[-1] != iterations - 1:
        points.append(iterations - 1)
    return np.array(points, dtype=np.int64)


class _Recorder:
    """Collects per-seed outcomes while seeds drop out of the stacked batch."""

    def __init__(
        self,
        spec: TrainSpec,
        weights: list[np.ndarray],
        biases: list[np.ndarray] | None,
        output_shape: tuple[int, int],
    ) -> None:
        n_seeds = weights[0].shape[0]
        self.points = log_iterations(spec.iterations, spec.log_every)
        self.curves = np.full((n_seeds, len(self.points)), np.nan)
        self.final_error = np.full(n_seeds, np.nan)
        self.final_output = np.full((n_seeds, *output_shape), np.nan)
        self.weights = [np.empty_like(w) for w in weights]
        self.biases = None if biases is None else [np.empty_like(b) for b in biases]
        self.diverged = np.zeros(n_seeds, dtype=bool)
        self.reached = np.full(n_seeds, spec.iterations, dtype=np.int64)
        self.first_below = np.full(n_seeds, -1, dtype=np.int64)
        self.reasons = [""] * n_seeds

    def finish(self, rows: np.ndarray, net: StackedNetwork, positions: np.ndarray) -> None:
        """Store the weights of the seeds at ``positions`` (rows ``rows`` of ``net``)."""
        for k, weight in enumerate(net.weights):
            self.weights[k][positions] = weight[rows]
        if net.biases is not None and self.biases is not None:
            for k, bias in enumerate(net.biases):
                self.biases[k][positions] = bias[rows]


def train(
    inputs: np.ndarray,
    targets: np.ndarray,
    spec: TrainSpec,
    seeds: Sequence[int],
    progress: Callable[[int], None] | None = None,
    holdout: tuple[np.ndarray, np.ndarray] | None = None,
) -> TrainResult:
    """Train one network per seed, all stacked, with the tutorial's full-batch updates.

    Parameters
    ----------
    inputs : ndarray, shape (n_samples, n_inputs)
    targets : ndarray, shape (n_samples, n_outputs)
    spec : TrainSpec
    seeds : sequence of int
        Seed ``s`` draws its weights as ``np.random.seed(s)`` would.
    progress : callable, optional
        Called with the number of iterations done, every few hundred iterations.
    holdout : (inputs, targets), optional
        Held-out rows, never trained on; the final weights are scored on them.

    A seed whose error margin becomes non-finite is recorded as diverged and removed from
    the batch; the others go on, their numbers unchanged. The native kernel does the work
    where it is known to give numpy's bits (``choose_kernel``); numpy does it elsewhere.
    """
    started = time.perf_counter()
    units = layer_units(inputs.shape[1], spec.hidden_layers, targets.shape[1])
    weights = init_weights(units, seeds, spec.init)
    biases = None
    if spec.bias:
        biases = [np.zeros((len(seeds), 1, b)) for b in units[1:]]
    kernel = choose_kernel(inputs, targets, spec, weights)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if kernel == "native":
            record = _train_native(inputs, targets, spec, weights, progress)
        else:
            record = _train_numpy(inputs, targets, spec, weights, biases, progress)
    if progress is not None:
        progress(spec.iterations)
    holdout_error = np.full(len(seeds), np.nan)
    if holdout is not None and len(holdout[0]):
        scorer = StackedNetwork(
            holdout[0],
            holdout[1],
            record.weights,
            record.biases,
            spec.activation,
            spec.output_activation,
        )
        with np.errstate(over="ignore", invalid="ignore"):
            holdout_error = scorer.evaluate().copy()
    return TrainResult(
        seeds=np.asarray(seeds, dtype=np.int64),
        log_iterations=record.points,
        curves=record.curves,
        final_error=record.final_error,
        final_output=record.final_output,
        weights=record.weights,
        biases=record.biases,
        diverged=record.diverged,
        iterations_reached=record.reached,
        first_below=record.first_below,
        reasons=record.reasons,
        holdout_error=holdout_error,
        wall_seconds=time.perf_counter() - started,
        kernel=kernel,
    )


def choose_kernel(
    inputs: np.ndarray, targets: np.ndarray, spec: TrainSpec, weights: list[np.ndarray]
) -> str:
    """``"native"`` when the kernel supports this network and a probe matches numpy exactly.

    The probe trains up to 4 of the seeds for a few iterations both ways, on the cell's own
    data, and compares every curve point, output and weight bit for bit. It guards against
    a machine whose numpy, BLAS or libm rounds differently from the ones the kernel mirrors.
    """
    wanted = native.mode()
    if wanted == "numpy":
        return "numpy"
    units = [weights[0].shape[1], *(w.shape[2] for w in weights)]
    why_not = native.supports(
        units, inputs.shape[0], spec.activation, spec.output_activation, spec.bias
    )
    if not why_not and not _probe_matches(inputs, targets, spec, weights):
        why_not = "the native kernel does not reproduce numpy's numbers on this machine"
    if why_not and wanted == "native":
        raise native.KernelUnavailableError(why_not)
    return "numpy" if why_not else "native"


def _probe_matches(
    inputs: np.ndarray, targets: np.ndarray, spec: TrainSpec, weights: list[np.ndarray]
) -> bool:
    iterations = min(spec.iterations, native.PROBE_ITERATIONS)
    probe_spec = dataclasses.replace(spec, iterations=iterations, log_every=1)

    def sample() -> list[np.ndarray]:
        # Fresh copies: the numpy loop trains its weights in place.
        return [np.array(w[: native.LANES]) for w in weights]

    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        by_numpy = _train_numpy(inputs, targets, probe_spec, sample(), None, None)
        by_kernel = _train_native(inputs, targets, probe_spec, sample(), None)
    pairs = [
        (by_numpy.curves, by_kernel.curves),
        (by_numpy.final_output, by_kernel.final_output),
        *zip(by_numpy.weights, by_kernel.weights, strict=True),
    ]
    return all(np.array_equal(a, b, equal_nan=True) for a, b in pairs)


def _train_native(
    inputs: np.ndarray,
    targets: np.ndarray,
    spec: TrainSpec,
    weights: list[np.ndarray],
    progress: Callable[[int], None] | None,
) -> _Recorder:
    """The native kernel's run, in the recorder that the numpy loop fills."""
    record = _Recorder(spec, weights, None, targets.shape)
    outcome = native.train_blocks(
        inputs, targets, weights, spec.lr, spec.iterations, record.points,
        spec.error_threshold, progress,
    )  # fmt: skip
    record.curves = outcome.curves
    record.final_error = outcome.final_error
    record.final_output = outcome.final_output
    record.weights = outcome.weights
    record.diverged = outcome.diverged
    record.reached = outcome.iterations_reached
    record.first_below = outcome.first_below
    for position in np.flatnonzero(outcome.diverged):
        iteration = int(outcome.iterations_reached[position]) - 1
        record.reasons[position] = f"non-finite error margin at iteration {iteration}"
    _flag_non_finite_weights(record, np.flatnonzero(~outcome.diverged))
    return record


def _train_numpy(
    inputs: np.ndarray,
    targets: np.ndarray,
    spec: TrainSpec,
    weights: list[np.ndarray],
    biases: list[np.ndarray] | None,
    progress: Callable[[int], None] | None,
) -> _Recorder:
    """The stacked numpy loop; ``weights`` and ``biases`` are updated in place."""
    n_seeds = weights[0].shape[0]
    net = StackedNetwork(inputs, targets, weights, biases, spec.activation, spec.output_activation)
    record = _Recorder(spec, weights, biases, targets.shape)
    active = np.arange(n_seeds)  # positions (in ``seeds``) of the seeds still training
    points = [int(i) for i in record.points] + [-1]
    slot = 0  # index of the next logged iteration in ``points``
    last = spec.iterations - 1
    n_errors = net.error[0].size  # np.mean's divisor
    # Exact margins are computed only where needed: at logged iterations, at the end, while
    # some seed has yet to cross the threshold, and when the error stops being finite. Other
    # iterations pay for one BLAS dot product over the error (NaN and inf survive it). The
    # crossing test on sums is a safe superset; exact margins decide.
    threshold_sum = spec.error_threshold * n_errors * (1 + 1e-9)
    waiting = np.ones(n_seeds, dtype=bool)  # not yet below the threshold
    n_waiting = n_seeds
    next_progress = PROGRESS_EVERY - 1 if progress is not None else -1

    for i in range(spec.iterations):
        net.forward()
        net.backward()
        logged = i == points[slot]
        if logged or n_waiting or i == last or not net.error_is_finite():
            sums = net.error_sums()
            if logged:
                record.curves[active, slot] = sums / n_errors
                slot += 1
            if not sums.max() < np.inf:  # NaN fails every comparison
                margins = sums / n_errors
                finite = np.isfinite(margins)
                net, active = _drop_diverged(net, active, finite, margins, record, i)
                if active.size == 0:
                    break
                sums = net.error_sums()
                waiting &= np.isin(np.arange(n_seeds), active)  # they never cross now
                n_waiting = int(waiting.sum())
            if n_waiting and sums.min() < threshold_sum:
                crossed = active[(sums / n_errors < spec.error_threshold) & waiting[active]]
                record.first_below[crossed] = i
                waiting[crossed] = False
                n_waiting = int(waiting.sum())
            if i == last:
                record.final_error[active] = sums / n_errors
                record.final_output[active] = net.outputs[-1]
        net.apply(spec.lr)
        if i == next_progress:
            progress(i + 1)
            next_progress += PROGRESS_EVERY
    if active.size:
        record.finish(np.arange(active.size), net, active)
        _flag_non_finite_weights(record, active)
    return record


def _drop_diverged(
    net: StackedNetwork,
    active: np.ndarray,
    finite: np.ndarray,
    margins: np.ndarray,
    record: _Recorder,
    iteration: int,
) -> tuple[StackedNetwork, np.ndarray]:
    """Record the seeds whose margin went non-finite and continue with the rest."""
    bad_rows = np.flatnonzero(~finite)
    positions = active[bad_rows]
    record.diverged[positions] = True
    record.reached[positions] = iteration + 1
    record.final_error[positions] = margins[bad_rows]
    record.final_output[positions] = net.outputs[-1][bad_rows]
    for position in positions:
        record.reasons[position] = f"non-finite error margin at iteration {iteration}"
    record.finish(bad_rows, net, positions)
    keep_rows = np.flatnonzero(finite)
    return net.keep(keep_rows), active[keep_rows]


def _flag_non_finite_weights(record: _Recorder, positions: np.ndarray) -> None:
    """Flag the seeds at ``positions`` whose last update overflowed a weight."""
    for position in positions:
        if not all(np.isfinite(weight[position]).all() for weight in record.weights):
            record.diverged[position] = True
            record.reasons[position] = "non-finite weights after the last update"
