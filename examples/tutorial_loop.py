"""The tutorial's training loop, written as a user would: one seed at a time, np.dot.

    nnsweep trainer=tutorial_loop:train        (run from this folder)

Under host arithmetic (numpy's own) it gives the built-in trainer's numbers for the same
settings, seed for seed: the same draws, the same operations in the same order.
"""

from __future__ import annotations

import itertools

import numpy as np

from nnsweep import SeedResult, TrainData, TrainSpec


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def forward(inputs: np.ndarray, synapses: list[np.ndarray]) -> list[np.ndarray]:
    layers = [inputs]
    for synapse in synapses:
        layers.append(sigmoid(np.dot(layers[-1], synapse)))
    return layers


def train(settings: TrainSpec, data: TrainData, seeds: list[int]) -> list[SeedResult]:
    if (settings.activation, settings.output_activation, settings.bias, settings.init) != (
        "sigmoid",
        "sigmoid",
        False,
        "tutorial",
    ):
        raise ValueError("the tutorial's loop has sigmoid layers, no biases, its own init")
    units = [data.inputs.shape[1], *settings.hidden_layers, data.targets.shape[1]]
    results = []
    for seed in seeds:
        np.random.seed(seed)
        synapses = [np.random.random((a, b)) * 2 - 1 for a, b in itertools.pairwise(units)]
        curve = []
        for iteration in range(settings.iterations):
            layers = forward(data.inputs, synapses)
            error = data.targets - layers[-1]
            if iteration % settings.log_every == 0:
                curve.append(np.mean(np.abs(error)))
            deltas = [error * (layers[-1] * (1 - layers[-1]))]
            for k in range(len(synapses) - 1, 0, -1):
                pulled = deltas[0].dot(synapses[k].T)
                deltas.insert(0, pulled * (layers[k] * (1 - layers[k])))
            for k, synapse in enumerate(synapses):
                step = layers[k].T.dot(deltas[k])
                synapse += step if settings.lr == 1.0 else settings.lr * step
        outputs = forward(data.inputs, synapses)[-1]
        curve.append(np.mean(np.abs(data.targets - outputs)))
        held = forward(data.holdout_inputs, synapses)[-1] if len(data.holdout_inputs) else None
        results.append(SeedResult(outputs=outputs, holdout_outputs=held, curve=curve))
    return results
