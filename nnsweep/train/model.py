"""Stacked fully-connected networks with the tutorial's exact arithmetic.

Every array carries a leading seed axis: weights are ``(n_seeds, a, b)``. ``np.matmul``
treats each seed's slice as its own 2-D product and hands it to BLAS exactly as the
tutorial's ``np.dot`` does, so a seed trained inside a batch gets the same bits as the
seed trained alone. Element-wise work is done in place on contiguous buffers, in the
tutorial's order of operations: reordering ``err * (out * (1 - out))`` changes results.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# --------------------------------------------------------------------------------------
# Activations: in-place forward, and the derivative expressed through the output
# --------------------------------------------------------------------------------------


def _sigmoid(z: np.ndarray) -> None:
    # 1 / (1 + np.exp(-z)), one operation at a time, in the tutorial's order.
    np.negative(z, z)
    np.exp(z, z)
    np.add(1, z, z)
    np.divide(1, z, z)


def _sigmoid_derivative(a: np.ndarray, out: np.ndarray) -> None:
    # a * (1 - a), the tutorial's sigmoid_derivative applied to the layer's output.
    np.subtract(1, a, out)
    np.multiply(a, out, out)


def _tanh(z: np.ndarray) -> None:
    np.tanh(z, out=z)


def _tanh_derivative(a: np.ndarray, out: np.ndarray) -> None:
    np.multiply(a, a, out=out)
    np.subtract(1, out, out=out)


def _relu(z: np.ndarray) -> None:
    np.maximum(z, 0, out=z)


def _relu_derivative(a: np.ndarray, out: np.ndarray) -> None:
    # a >= 0 after relu, so sign(a) is exactly the 0/1 derivative.
    np.sign(a, out=out)


@dataclass(frozen=True)
class Activation:
    """An activation as an in-place forward map and its derivative at the output."""

    forward: Callable[[np.ndarray], None]  # z -> f(z), in place
    derivative: Callable[[np.ndarray, np.ndarray], None]  # (f(z), out) -> f'(z) into out
    output_range: tuple[float, float]  # closed range the output can take


ACTIVATIONS: dict[str, Activation] = {
    "sigmoid": Activation(_sigmoid, _sigmoid_derivative, (0.0, 1.0)),
    "tanh": Activation(_tanh, _tanh_derivative, (-1.0, 1.0)),
    "relu": Activation(_relu, _relu_derivative, (0.0, float("inf"))),
}

# --------------------------------------------------------------------------------------
# Initialisers: one RandomState per seed, layers drawn in order
# --------------------------------------------------------------------------------------

Initialiser = Callable[[np.random.RandomState, int, int], np.ndarray]


def _tutorial_init(rng: np.random.RandomState, fan_in: int, fan_out: int) -> np.ndarray:
    # np.random.random((a, b)) * 2 - 1 after np.random.seed(seed): uniform on [-1, 1).
    return rng.random_sample((fan_in, fan_out)) * 2 - 1


def _xavier_init(rng: np.random.RandomState, fan_in: int, fan_out: int) -> np.ndarray:
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return (rng.random_sample((fan_in, fan_out)) * 2 - 1) * limit


def _he_init(rng: np.random.RandomState, fan_in: int, fan_out: int) -> np.ndarray:
    return rng.standard_normal((fan_in, fan_out)) * np.sqrt(2.0 / fan_in)


INITIALISERS: dict[str, Initialiser] = {
    "tutorial": _tutorial_init,
    "xavier": _xavier_init,
    "glorot": _xavier_init,
    "he": _he_init,
}


# --------------------------------------------------------------------------------------
# Seed streams: which RandomState seed s of a cell draws its weights from
# --------------------------------------------------------------------------------------


def _shared_stream(seed: int, units: Sequence[int]) -> np.random.RandomState:
    # np.random.seed(seed), the tutorial's: every shape draws its first layer first, so
    # cells with the same inputs and first width share their first-layer weights.
    return np.random.RandomState(seed)


def _per_cell_stream(seed: int, units: Sequence[int]) -> np.random.RandomState:
    # The integers (seed, number of weight layers, *units) through numpy's SeedSequence
    # into four 32-bit words that seed the legacy RandomState (its init_by_array), i.e.
    #   np.random.seed(np.random.SeedSequence([s, len(units) - 1, *units]).generate_state(4))
    # No hash of Python objects and both steps under numpy's stream-stability policy: the
    # same words on every machine. The layer count keeps (seed, units) -> entropy one-to-one
    # by construction, not only because sizes are positive (SeedSequence reads [.., 8] and
    # [.., 8, 0] alike).
    entropy = [int(seed), len(units) - 1, *(int(u) for u in units)]
    return np.random.RandomState(np.random.SeedSequence(entropy).generate_state(4))


SeedStream = Callable[[int, Sequence[int]], np.random.RandomState]

# ``TrainSpec.seed_stream``: how seed s of a network with layer units ``units`` gets its
# RandomState. The draws from it are the same initialiser calls either way.
SEED_STREAMS: dict[str, SeedStream] = {
    "shared": _shared_stream,
    "per_cell": _per_cell_stream,
}


def layer_units(n_inputs: int, hidden_layers: Sequence[int], n_outputs: int) -> list[int]:
    """Units per layer, input and output included: ``[n_in, *hidden, n_out]``."""
    return [n_inputs, *hidden_layers, n_outputs]


def init_weights(
    units: Sequence[int], seeds: Sequence[int], init: str, stream: str = "shared"
) -> list[np.ndarray]:
    """Draw every seed's weights and stack them.

    With ``stream="shared"`` (the default, the tutorial's) seed ``s`` gets exactly what
    ``np.random.seed(s)`` followed by one draw per layer would give; with ``"per_cell"`` the
    same draws come from a stream of (s, ``units``) (``SEED_STREAMS``). Each seed has its own
    ``RandomState``; the global numpy stream is never touched.

    Returns
    -------
    list of ndarray
        One C-contiguous float64 array of shape ``(n_seeds, units[k], units[k + 1])`` per layer.
    """
    draw = INITIALISERS[init]
    seed_stream = SEED_STREAMS[stream]
    per_seed = []
    for seed in seeds:
        rng = seed_stream(seed, units)
        per_seed.append([draw(rng, a, b) for a, b in itertools.pairwise(units)])
    return [
        np.ascontiguousarray(np.stack([layers[k] for layers in per_seed]), dtype=np.float64)
        for k in range(len(units) - 1)
    ]


# --------------------------------------------------------------------------------------
# The stacked network: preallocated buffers, forward and backward passes
# --------------------------------------------------------------------------------------


class StackedNetwork:
    """``n_seeds`` networks of one shape trained together on one full batch.

    Parameters
    ----------
    inputs : ndarray, shape (n_samples, n_inputs)
    targets : ndarray, shape (n_samples, n_outputs)
    weights : list of ndarray, each (n_seeds, units[k], units[k + 1])
        Taken over (not copied) and updated in place.
    biases : list of ndarray, each (n_seeds, 1, units[k + 1]), or None for no biases
    activation, output_activation : str
        Keys of ``ACTIVATIONS``.
    """

    def __init__(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        weights: list[np.ndarray],
        biases: list[np.ndarray] | None,
        activation: str,
        output_activation: str,
    ) -> None:
        self.inputs = np.ascontiguousarray(inputs, dtype=np.float64)
        self.targets = np.ascontiguousarray(targets, dtype=np.float64)
        self.weights = weights
        self.biases = biases
        self.activation_names = (activation, output_activation)
        n_layers = len(weights)
        self.activations = [ACTIVATIONS[activation]] * (n_layers - 1)
        self.activations.append(ACTIVATIONS[output_activation])
        n_seeds = weights[0].shape[0]
        n_samples = self.inputs.shape[0]
        widths = [w.shape[2] for w in weights]
        # outputs[k] is layer k+1's output; outputs[-1] is the network's output.
        self.outputs = [np.empty((n_seeds, n_samples, b)) for b in widths]
        self.deltas = [np.empty((n_seeds, n_samples, b)) for b in widths]
        self.slopes = [np.empty((n_seeds, n_samples, b)) for b in widths]
        self.gradients = [np.empty_like(w) for w in weights]
        self.error = np.empty((n_seeds, n_samples, widths[-1]))
        self._abs_error = np.empty_like(self.error)
        self._error_sums = np.empty(n_seeds)
        self._flat_abs_error = self._abs_error.reshape(n_seeds, -1)
        self._flat_error = self.error.reshape(-1)
        self._build_steps()

    def _build_steps(self) -> None:
        """Pair every buffer with the operation that fills it, once.

        The loop runs ~10^5 times, so views and pairings are made here. They stay valid
        because weights and buffers are only ever updated in place. A single seed works on
        2-D views with ``np.dot``, exactly the tutorial's call and cheaper than the stacked
        ``np.matmul``; both hand BLAS the same product, so the bits do not change.
        """
        single = self.n_seeds == 1

        def view(array: np.ndarray) -> np.ndarray:
            return array[0] if single else array

        def transposed(array: np.ndarray) -> np.ndarray:
            return array[0].T if single else array.transpose(0, 2, 1)

        self._product = np.dot if single else np.matmul
        outputs = [view(o) for o in self.outputs]
        deltas = [view(d) for d in self.deltas]
        slopes = [view(d) for d in self.slopes]
        biases = [view(b) for b in self.biases] if self.biases is not None else None
        layer_inputs = [self.inputs, *outputs[:-1]]
        self._forward_steps = [
            (
                layer_inputs[k],
                view(self.weights[k]),
                outputs[k],
                self.activations[k].forward,
                None if biases is None else biases[k],
            )
            for k in range(len(self.weights))
        ]
        last = len(self.weights) - 1
        self._output_step = (
            self.targets,
            outputs[last],
            view(self.error),
            self.activations[last].derivative,
            slopes[last],
            deltas[last],
        )
        self._pullbacks = [
            (
                deltas[k],
                transposed(self.weights[k]),
                deltas[k - 1],
                self.activations[k - 1].derivative,
                outputs[k - 1],
                slopes[k - 1],
            )
            for k in range(last, 0, -1)
        ]
        layer_inputs_t = [np.ascontiguousarray(self.inputs.T)]
        layer_inputs_t += [transposed(o) for o in self.outputs[:-1]]
        self._gradient_steps = list(
            zip(layer_inputs_t, deltas, [view(g) for g in self.gradients], strict=True)
        )

    @property
    def n_seeds(self) -> int:
        return self.weights[0].shape[0]

    def forward(self) -> np.ndarray:
        """Run the full batch through every seed's network; returns the output buffer."""
        product = self._product
        for layer_input, weight, output, activate, bias in self._forward_steps:
            product(layer_input, weight, output)
            if bias is not None:
                output += bias
            activate(output)
        return self.outputs[-1]

    def backward(self) -> None:
        """Error, deltas and update directions from the current (old) weights.

        Fills ``self.error`` with ``targets - output`` and ``self.gradients[k]`` with
        ``L_k^T @ delta_{k+1}``, the tutorial's update (minus the gradient of half the
        summed squared error).
        """
        product = self._product
        targets, output, error, derivative, slope, delta = self._output_step
        np.subtract(targets, output, error)
        derivative(output, slope)
        np.multiply(error, slope, delta)
        for delta, weight_t, pulled, derivative, output, slope in self._pullbacks:
            # This layer's error is the next delta pulled back through the old weights.
            product(delta, weight_t, pulled)
            derivative(output, slope)
            np.multiply(pulled, slope, pulled)
        for layer_input_t, delta, gradient in self._gradient_steps:
            product(layer_input_t, delta, gradient)

    def apply(self, lr: float) -> None:
        """``W += lr * (L^T @ delta)`` for every layer; a rate of 1 skips the multiply."""
        scale = lr != 1.0
        for weight, gradient in zip(self.weights, self.gradients, strict=True):
            if scale:
                gradient *= lr
            weight += gradient
        if self.biases is not None:
            for bias, delta in zip(self.biases, self.deltas, strict=True):
                step = delta.sum(axis=1, keepdims=True)
                if scale:
                    step *= lr
                bias += step

    def error_is_finite(self) -> bool:
        """Whether every error entry is finite, in one BLAS call (NaN and inf propagate).

        A huge but finite error can overflow the dot product: that only sends the caller to
        the exact per-seed check.
        """
        return bool(np.dot(self._flat_error, self._flat_error) < np.inf)

    def error_sums(self) -> np.ndarray:
        """Each seed's ``sum(abs(error))``, summed in the order ``np.mean`` sums.

        Returns
        -------
        ndarray, shape (n_seeds,)
            A buffer reused by the next call.
        """
        np.abs(self.error, out=self._abs_error)
        return np.add.reduce(self._flat_abs_error, axis=1, out=self._error_sums)

    def error_margins(self) -> np.ndarray:
        """Each seed's ``np.mean(abs(error))``, bit for bit (shape (n_seeds,), a new array)."""
        return self.error_sums() / self._flat_abs_error.shape[1]

    def evaluate(self) -> np.ndarray:
        """Error margins of the current weights on this network's data, without training.

        Returns
        -------
        ndarray, shape (n_seeds,)
        """
        np.subtract(self.targets, self.forward(), out=self.error)
        return self.error_margins()

    def half_squared_error(self) -> np.ndarray:
        """``0.5 * sum((targets - output)**2)`` per seed, the loss the updates descend."""
        output = self.forward()
        return 0.5 * ((self.targets - output) ** 2).sum(axis=(1, 2))

    def seed_outputs(self) -> np.ndarray:
        """The output layer, shape (n_seeds, n_samples, n_outputs) (the buffer itself)."""
        return self.outputs[-1]

    def seed_weights(self) -> list[np.ndarray]:
        """The weights, each (n_seeds, a, b) (the arrays trained in place)."""
        return self.weights

    def seed_biases(self) -> list[np.ndarray] | None:
        """The biases, each (n_seeds, 1, b), or None."""
        return self.biases

    def keep(self, rows: np.ndarray) -> StackedNetwork:
        """A network holding only the seeds at ``rows``, mid-iteration state included.

        Outputs, error, deltas and gradients are carried over, so ``apply`` can follow a
        ``backward`` done before the split.
        """
        weights = [np.ascontiguousarray(w[rows]) for w in self.weights]
        biases = (
            None if self.biases is None else [np.ascontiguousarray(b[rows]) for b in self.biases]
        )
        kept = StackedNetwork(self.inputs, self.targets, weights, biases, *self.activation_names)
        for mine, theirs in (
            (self.outputs, kept.outputs),
            (self.deltas, kept.deltas),
            (self.gradients, kept.gradients),
            ([self.error], [kept.error]),
        ):
            for source, target in zip(mine, theirs, strict=True):
                target[...] = source[rows]
        return kept
