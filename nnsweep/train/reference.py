"""The tutorial's own training loop, kept verbatim in spirit as the yardstick.

Tests compare nnsweep's stacked trainer against it bit for bit, and ``bench/`` uses it as
the baseline. It is deliberately the slow, one-network-at-a-time code of Example 2,
generalised only to any list of layer sizes.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def sigmoid_derivative(x: np.ndarray) -> np.ndarray:
    return x * (1 - x)


def tutorial_train(
    inputs: np.ndarray,
    targets: np.ndarray,
    hidden_layers: Sequence[int],
    seed: int,
    iterations: int,
    log_every: int = 10_000,
) -> tuple[list[float], list[np.ndarray], float, np.ndarray]:
    """Example 2's loop for any hidden layers.

    Returns
    -------
    margins : list of float
        ``np.mean(abs(error))`` at every ``log_every``-th iteration, as the tutorial prints.
    synapses : list of ndarray
        The weights after the loop.
    final_margin : float
        The margin of the last error computed.
    output : ndarray, shape (n_samples, n_outputs)
        The output layer of the last forward pass.
    """
    units = [inputs.shape[1], *hidden_layers, targets.shape[1]]
    np.random.seed(seed)
    synapses = [np.random.random((a, b)) * 2 - 1 for a, b in itertools.pairwise(units)]
    margins = []
    for i in range(iterations):
        layers = [inputs]
        for synapse in synapses:
            layers.append(sigmoid(np.dot(layers[-1], synapse)))
        error = targets - layers[-1]
        deltas = [error * sigmoid_derivative(layers[-1])]
        for k in range(len(synapses) - 1, 0, -1):
            layer_error = deltas[0].dot(synapses[k].T)
            deltas.insert(0, layer_error * sigmoid_derivative(layers[k]))
        for k, synapse in enumerate(synapses):
            synapse += layers[k].T.dot(deltas[k])
        if i % log_every == 0:
            margins.append(np.mean(abs(error)))
    return margins, synapses, float(np.mean(abs(error))), layers[-1]


def tutorial_predict(inputs: np.ndarray, synapses: Sequence[np.ndarray]) -> np.ndarray:
    """The output layer of trained ``synapses``: the tutorial's forward pass, once."""
    layer = inputs
    for synapse in synapses:
        layer = sigmoid(np.dot(layer, synapse))
    return layer
