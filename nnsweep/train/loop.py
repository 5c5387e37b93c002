"""The training loop: full-batch updates of a block of seeds at once.

Knows numpy and the frozen ``TrainSpec``; nothing of Hydra, files or plots.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from nnsweep.config import TrainSpec
from nnsweep.schema import SEED_COLUMNS
from nnsweep.train import native, portable
from nnsweep.train.model import StackedNetwork, init_weights, layer_units
from nnsweep.train.portable import PortableNetwork

# Bump whenever a change could alter any trained number: it is part of every cache key.
# 2: final_error and final_output are those of the final weights (one forward pass after
# training); curves end at ``iterations``; end_change and accuracies are recorded.
# 3: the arithmetic setting: portable (portable.VERSION, the default) or numpy (the host's).
ARITHMETIC_VERSION = 3

# The stacked networks of each arithmetic (``TrainSpec.arithmetic``): the loop below drives
# either through the same methods, so both share one recorder of per-seed outcomes.
NETWORKS: dict[str, type[StackedNetwork] | type[PortableNetwork]] = {
    "portable": PortableNetwork,
    "numpy": StackedNetwork,
}

# How many updates before the end the trainer keeps the error of, to measure instability.
LOOK_BACK = 2

# A seed is "unstable" at the end of training when one of its last LOOK_BACK updates moved
# its training error by more than this fraction of the final error (an oscillating seed at a
# large learning rate moves by 10-30%; a converging one by far less than 1%).
UNSTABLE_CHANGE = 0.01

# How often (in iterations) the loop reports progress to its caller.
PROGRESS_EVERY = 256

# The per-seed columns the trainer computes itself (``schema.SEED_COLUMNS`` declares them all).
TRAINED_COLUMNS = tuple(c for c in SEED_COLUMNS if c.source == "trained")


@dataclass
class TrainResult:
    """Per-seed outcome of ``train``; every array's first axis follows ``seeds``.

    Attributes
    ----------
    seeds : ndarray, shape (n_seeds,)
    log_iterations : ndarray, shape (n_points,)
        Iterations whose error margin is in ``curves``: every ``log_every``-th one, then
        ``iterations``. The margin at iteration ``i`` is that of the weights after ``i``
        updates, so the last point is the final weights'.
    curves : ndarray, shape (n_seeds, n_points)
        ``mean(|targets - output|)`` at those iterations; NaN after a seed diverged.
    final_output : ndarray, shape (n_seeds, n_samples, n_outputs)
        The output layer of the final weights.
    last_pass_output : ndarray, shape (n_seeds, n_samples, n_outputs)
        The output of the last forward pass in the loop (before the last update): what the
        tutorial prints after its loop.
    weights : list of ndarray, each (n_seeds, units[k], units[k + 1])
        Weights after the last update.
    biases : list of ndarray, each (n_seeds, 1, units[k + 1]), or None
    wall_seconds : float
        Wall time of the whole stacked computation.
    kernel : str
        Which code did the arithmetic (the bits are the same whichever): ``"numpy"`` (the
        stacked numpy loop of ``spec.arithmetic``) or a native kernel path of the portable
        arithmetic (``"scalar"``, ``"avx2"``, ``"avx512"``).
    kernel_note : str
        Why the portable arithmetic fell back to numpy although the kernel was wanted
        (e.g. it is not built); empty otherwise.
    reason, final_error, holdout_error, diverged, accuracy, holdout_accuracy, end_change, \
    iterations_reached, first_below_threshold : one value per seed
        The ``TRAINED_COLUMNS`` of ``SEED_COLUMNS``, where each is documented (``reason`` is
        a list of str, the others arrays of shape (n_seeds,)).
    """

    seeds: np.ndarray
    log_iterations: np.ndarray
    curves: np.ndarray
    final_output: np.ndarray
    last_pass_output: np.ndarray
    weights: list[np.ndarray]
    biases: list[np.ndarray] | None
    wall_seconds: float
    kernel: str
    reason: list[str]
    final_error: np.ndarray
    holdout_error: np.ndarray
    diverged: np.ndarray
    accuracy: np.ndarray
    holdout_accuracy: np.ndarray
    end_change: np.ndarray
    iterations_reached: np.ndarray
    first_below_threshold: np.ndarray
    kernel_note: str = ""


def log_iterations(iterations: int, log_every: int) -> np.ndarray:
    """The iterations of a stored curve: 0, log_every, ... below ``iterations``, then
    ``iterations`` itself (the final weights, after the last update)."""
    return np.array([*range(0, iterations, log_every), iterations], dtype=np.int64)


def training_points(iterations: int, log_every: int) -> np.ndarray:
    """The iterations whose error the training loop records: the curve's points before the
    end, and the last ``LOOK_BACK`` iterations (for ``end_change``)."""
    traced = set(range(0, iterations, log_every))
    traced.update(range(max(0, iterations - LOOK_BACK), iterations))
    return np.array(sorted(traced), dtype=np.int64)


def accuracy(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Fraction of rows whose every output rounds to its target, per seed.

    outputs : (n_seeds, n_samples, n_outputs); targets : (n_samples, n_outputs).
    Returns shape (n_seeds,). A non-finite output is never right.
    """
    right = (np.round(outputs) == targets).all(axis=2)
    return right.mean(axis=1)


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
        self.points = training_points(spec.iterations, spec.log_every)
        self.curves = np.full((n_seeds, len(self.points)), np.nan)
        self.final_error = np.full(n_seeds, np.nan)
        self.final_output = np.full((n_seeds, *output_shape), np.nan)
        self.weights = [np.empty_like(w) for w in weights]
        self.biases = None if biases is None else [np.empty_like(b) for b in biases]
        self.diverged = np.zeros(n_seeds, dtype=bool)
        self.iterations_reached = np.full(n_seeds, spec.iterations, dtype=np.int64)
        self.first_below_threshold = np.full(n_seeds, -1, dtype=np.int64)
        self.reason = [""] * n_seeds

    def finish(self, rows: np.ndarray, net: Network, positions: np.ndarray) -> None:
        """Store the weights of the seeds at ``positions`` (rows ``rows`` of ``net``)."""
        for k, weight in enumerate(net.seed_weights()):
            self.weights[k][positions] = weight[rows]
        biases = net.seed_biases()
        if biases is not None and self.biases is not None:
            for k, bias in enumerate(biases):
                self.biases[k][positions] = bias[rows]


Network = StackedNetwork | PortableNetwork


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
        ``spec.arithmetic`` says how every number is computed: ``portable`` (the same bits
        on every machine, docs/arithmetic.md) or ``numpy`` (the tutorial's np.dot/np.exp).
    seeds : sequence of int
        Seed ``s`` draws its weights as ``np.random.seed(s)`` would (``spec.seed_stream``
        ``shared``), or from its own stream of (s, the layer units) (``per_cell``).
    progress : callable, optional
        Called with the number of iterations done, every few hundred iterations.
    holdout : (inputs, targets), optional
        Held-out rows, never trained on; the final weights are scored on them.

    A seed whose error margin becomes non-finite is recorded as diverged and removed from
    the batch; the others go on, their numbers unchanged. Who computes (``choose_path``)
    never changes the numbers: a native kernel path is used only where it gives the numpy
    implementation's bits.
    """
    started = time.perf_counter()
    units = layer_units(inputs.shape[1], spec.hidden_layers, targets.shape[1])
    weights = init_weights(units, seeds, spec.init, spec.seed_stream)
    biases = None
    if spec.bias:
        biases = [np.zeros((len(seeds), 1, b)) for b in units[1:]]
    kernel, kernel_note = choose_path(spec, len(units) - 1)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        if kernel == "numpy":
            record = train_stacked(inputs, targets, spec, weights, biases, progress)
        else:
            record = _train_portable_kernel(
                kernel, inputs, targets, spec, weights, biases, progress
            )
    if progress is not None:
        progress(spec.iterations)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        ending = _score_final_weights(inputs, targets, spec, record, holdout)
    return TrainResult(
        seeds=np.asarray(seeds, dtype=np.int64),
        log_iterations=log_iterations(spec.iterations, spec.log_every),
        curves=ending["curves"],
        final_output=ending["final_output"],
        last_pass_output=record.final_output,
        weights=record.weights,
        biases=record.biases,
        wall_seconds=time.perf_counter() - started,
        kernel=kernel,
        reason=record.reason,
        final_error=ending["final_error"],
        holdout_error=ending["holdout_error"],
        diverged=record.diverged,
        accuracy=ending["accuracy"],
        holdout_accuracy=ending["holdout_accuracy"],
        end_change=ending["end_change"],
        iterations_reached=record.iterations_reached,
        first_below_threshold=record.first_below_threshold,
        kernel_note=kernel_note,
    )


def arithmetic_label(spec: TrainSpec) -> str:
    """The arithmetic's name and version, as provenance and reports show it."""
    if spec.arithmetic == "portable":
        return f"{portable.NAME} v{portable.VERSION}"
    return f"{spec.arithmetic} (this host's numpy, BLAS and libm)"


def _score_final_weights(
    inputs: np.ndarray,
    targets: np.ndarray,
    spec: TrainSpec,
    record: _Recorder,
    holdout: tuple[np.ndarray, np.ndarray] | None,
) -> dict[str, np.ndarray]:
    """Measure the trained networks: one forward pass of the final weights, in numpy.

    Every path ends here, so the numbers are the same whichever trained. The margin of
    the final weights closes each curve; the margins recorded one and two updates before
    the end give ``end_change``.
    """
    n_seeds = record.weights[0].shape[0]
    network = NETWORKS[spec.arithmetic]
    scorer = network(
        inputs, targets, record.weights, record.biases, spec.activation, spec.output_activation
    )
    final_error = scorer.evaluate().copy()
    final_output = np.array(scorer.seed_outputs())
    stopped = record.diverged
    # A diverged seed keeps the non-finite margin (and output) that stopped it.
    final_error[stopped] = record.final_error[stopped]
    final_output[stopped] = record.final_output[stopped]
    traced = np.isin(record.points, np.arange(0, spec.iterations, spec.log_every))
    curves = np.column_stack([record.curves[:, traced], np.where(stopped, np.nan, final_error)])
    before = record.curves[:, record.points >= spec.iterations - LOOK_BACK]
    change = np.abs(before - final_error[:, None]).max(axis=1) / final_error
    end_change = np.where(stopped | ~np.isfinite(change), np.nan, change)
    holdout_error = np.full(n_seeds, np.nan)
    holdout_accuracy = np.full(n_seeds, np.nan)
    if holdout is not None and len(holdout[0]):
        held = network(
            holdout[0],
            holdout[1],
            record.weights,
            record.biases,
            spec.activation,
            spec.output_activation,
        )
        holdout_error = held.evaluate().copy()
        holdout_accuracy = accuracy(held.seed_outputs(), held.targets)
    return {
        "curves": curves,
        "final_error": final_error,
        "final_output": final_output,
        "end_change": end_change,
        "accuracy": accuracy(final_output, scorer.targets),
        "holdout_error": holdout_error,
        "holdout_accuracy": holdout_accuracy,
    }


def choose_path(spec: TrainSpec, n_layers: int) -> tuple[str, str]:
    """Who does the arithmetic for this cell: ``"numpy"`` or a native kernel path, and why
    numpy does the portable arithmetic when the kernel was wanted (``""`` otherwise).

    ``arithmetic=portable``: the kernel path ``native.choose_path`` picks (``"avx512"``,
    ``"avx2"`` or ``"scalar"``, as ``NNSWEEP_KERNEL`` allows and the CPU offers), else
    ``"numpy"``, the numpy implementation (``portable.PortableNetwork``). Every path gives
    the same bits, so the choice changes only the speed.
    ``arithmetic=numpy``: always ``"numpy"``; the kernel computes the portable arithmetic only.

    Raises
    ------
    native.KernelUnavailableError
        When ``NNSWEEP_KERNEL`` forces a kernel path that cannot train this cell here.
    """
    if spec.arithmetic == "numpy":
        return "numpy", ""
    activations = [spec.activation] * (n_layers - 1) + [spec.output_activation]
    return native.choose_path(n_layers, activations)


def _train_portable_kernel(
    path: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    spec: TrainSpec,
    weights: list[np.ndarray],
    biases: list[np.ndarray] | None,
    progress: Callable[[int], None] | None,
) -> _Recorder:
    """A native kernel path's run of the portable arithmetic, in the numpy loop's recorder.

    ``native.train_blocks(path, ...)`` is the twin of ``train_stacked``: the same initial
    weights and biases (seed-first), the same recorded points, the same per-seed outcomes,
    the same bits.
    """
    record = _Recorder(spec, weights, biases, targets.shape)
    activations = [spec.activation] * (len(weights) - 1) + [spec.output_activation]
    outcome = native.train_blocks(
        path,
        inputs,
        targets,
        weights,
        biases,
        activations,
        spec.lr,
        spec.iterations,
        record.points,
        spec.error_threshold,
        progress,
    )
    _take_outcome(record, outcome)
    if outcome.biases is not None:
        record.biases = outcome.biases
    return record


def _take_outcome(record: _Recorder, outcome: native.BlockResult) -> None:
    record.curves = outcome.curves
    record.final_error = outcome.final_error
    record.final_output = outcome.final_output
    record.weights = outcome.weights
    record.diverged = outcome.diverged
    record.iterations_reached = outcome.iterations_reached
    record.first_below_threshold = outcome.first_below
    for position in np.flatnonzero(outcome.diverged):
        iteration = int(outcome.iterations_reached[position]) - 1
        record.reason[position] = f"non-finite error margin at iteration {iteration}"
    _flag_non_finite_weights(record, np.flatnonzero(~outcome.diverged))


def train_stacked(
    inputs: np.ndarray,
    targets: np.ndarray,
    spec: TrainSpec,
    weights: list[np.ndarray],
    biases: list[np.ndarray] | None,
    progress: Callable[[int], None] | None,
) -> _Recorder:
    """The stacked numpy loop of ``spec.arithmetic``; both arithmetics record here.

    ``weights`` (each (n_seeds, a, b)) and ``biases`` (each (n_seeds, 1, b)) are the
    initial values; the host-numpy network trains them in place.
    """
    n_seeds = weights[0].shape[0]
    net: Network = NETWORKS[spec.arithmetic](
        inputs, targets, weights, biases, spec.activation, spec.output_activation
    )
    record = _Recorder(spec, weights, biases, targets.shape)
    active = np.arange(n_seeds)  # positions (in ``seeds``) of the seeds still training
    points = [int(i) for i in record.points] + [-1]
    slot = 0  # index of the next logged iteration in ``points``
    last = spec.iterations - 1
    n_errors = targets.size  # the error margin's divisor
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
                record.first_below_threshold[crossed] = i
                waiting[crossed] = False
                n_waiting = int(waiting.sum())
            if i == last:
                record.final_error[active] = sums / n_errors
                record.final_output[active] = net.seed_outputs()
        net.apply(spec.lr)
        if i == next_progress:
            progress(i + 1)
            next_progress += PROGRESS_EVERY
    if active.size:
        record.finish(np.arange(active.size), net, active)
        _flag_non_finite_weights(record, active)
    return record


def _drop_diverged(
    net: Network,
    active: np.ndarray,
    finite: np.ndarray,
    margins: np.ndarray,
    record: _Recorder,
    iteration: int,
) -> tuple[Network, np.ndarray]:
    """Record the seeds whose margin went non-finite and continue with the rest."""
    bad_rows = np.flatnonzero(~finite)
    positions = active[bad_rows]
    record.diverged[positions] = True
    record.iterations_reached[positions] = iteration + 1
    record.final_error[positions] = margins[bad_rows]
    record.final_output[positions] = net.seed_outputs()[bad_rows]
    for position in positions:
        record.reason[position] = f"non-finite error margin at iteration {iteration}"
    record.finish(bad_rows, net, positions)
    keep_rows = np.flatnonzero(finite)
    return net.keep(keep_rows), active[keep_rows]


def _flag_non_finite_weights(record: _Recorder, positions: np.ndarray) -> None:
    """Flag the seeds at ``positions`` whose last update overflowed a weight."""
    for position in positions:
        if not all(np.isfinite(weight[position]).all() for weight in record.weights):
            record.diverged[position] = True
            record.reason[position] = "non-finite weights after the last update"
