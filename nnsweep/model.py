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
    np.negative(z, out=z)
    np.exp(z, out=z)
    np.add(1, z, out=z)
    np.divide(1, z, out=z)


def _sigmoid_derivative(a: np.ndarray, out: np.ndarray) -> None:
    # a * (1 - a), the tutorial's sigmoid_derivative applied to the layer's output.
    np.subtract(1, a, out=out)
    np.multiply(a, out, out=out)


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


def layer_units(n_inputs: int, hidden_layers: Sequence[int], n_outputs: int) -> list[int]:
    """Units per layer, input and output included: ``[n_in, *hidden, n_out]``."""
    return [n_inputs, *hidden_layers, n_outputs]


def init_weights(units: Sequence[int], seeds: Sequence[int], init: str) -> list[np.ndarray]:
    """Draw every seed's weights and stack them.

    Seed ``s`` gets exactly what ``np.random.seed(s)`` followed by one draw per layer would
    give, from its own ``RandomState``; the global numpy stream is never touched.

    Returns
    -------
    list of ndarray
        One C-contiguous float64 array of shape ``(n_seeds, units[k], units[k + 1])`` per layer.
    """
    draw = INITIALISERS[init]
    per_seed = []
    for seed in seeds:
        rng = np.random.RandomState(seed)
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
        self._inputs_t = np.ascontiguousarray(self.inputs.T)

    @property
    def n_seeds(self) -> int:
        return self.weights[0].shape[0]

    def _layer_input(self, k: int) -> np.ndarray:
        return self.inputs if k == 0 else self.outputs[k - 1]

    def forward(self) -> np.ndarray:
        """Run the full batch through every seed's network; returns the output buffer."""
        for k, (weight, activation) in enumerate(zip(self.weights, self.activations, strict=True)):
            np.matmul(self._layer_input(k), weight, out=self.outputs[k])
            if self.biases is not None:
                self.outputs[k] += self.biases[k]
            activation.forward(self.outputs[k])
        return self.outputs[-1]

    def backward(self) -> None:
        """Error, deltas and update directions from the current (old) weights.

        Fills ``self.error`` with ``targets - output`` and ``self.gradients[k]`` with
        ``L_k^T @ delta_{k+1}``, the tutorial's update (minus the gradient of half the
        summed squared error).
        """
        last = len(self.weights) - 1
        np.subtract(self.targets, self.outputs[last], out=self.error)
        self.activations[last].derivative(self.outputs[last], self.slopes[last])
        np.multiply(self.error, self.slopes[last], out=self.deltas[last])
        for k in range(last, 0, -1):
            # This layer's error is the next delta pulled back through the old weights.
            np.matmul(self.deltas[k], self.weights[k].transpose(0, 2, 1), out=self.deltas[k - 1])
            self.activations[k - 1].derivative(self.outputs[k - 1], self.slopes[k - 1])
            np.multiply(self.deltas[k - 1], self.slopes[k - 1], out=self.deltas[k - 1])
        np.matmul(self._inputs_t, self.deltas[0], out=self.gradients[0])
        for k in range(1, last + 1):
            np.matmul(self.outputs[k - 1].transpose(0, 2, 1), self.deltas[k], out=self.gradients[k])

    def apply(self, lr: float) -> None:
        """``W += lr * (L^T @ delta)`` for every layer; a rate of 1 skips the multiply."""
        for k, weight in enumerate(self.weights):
            if lr != 1.0:
                self.gradients[k] *= lr
            weight += self.gradients[k]
            if self.biases is not None:
                step = self.deltas[k].sum(axis=1, keepdims=True)
                if lr != 1.0:
                    step *= lr
                self.biases[k] += step

    def error_margins(self, out: np.ndarray | None = None) -> np.ndarray:
        """Each seed's ``np.mean(abs(error))``, summed in the same order numpy's mean uses.

        Returns
        -------
        ndarray, shape (n_seeds,)
        """
        np.abs(self.error, out=self._abs_error)
        flat = self._abs_error.reshape(self.n_seeds, -1)
        margins = np.add.reduce(flat, axis=1, out=out)
        np.divide(margins, flat.shape[1], out=margins)
        return margins

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
