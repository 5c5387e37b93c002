"""A variant of the tutorial's network: mini-batches and momentum, vectorised over seeds.

    nnsweep trainer=minibatch_momentum:train trainer_args={batch_size:4,momentum:0.9}

Every seed's weights are one slice of a stacked array (n_seeds, a, b), so all seeds train
in one numpy call per layer. Each update takes ``batch_size`` rows, drawn without
replacement epoch by epoch, separately for each seed. ``iterations`` counts updates.
trainer_args: batch_size (default 32, capped at the number of rows), momentum (0.9).
"""

from __future__ import annotations

import itertools

import numpy as np

from nnsweep import SeedResult, TrainData, TrainSpec, curve_iterations


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def forward(inputs: np.ndarray, weights: list[np.ndarray]) -> list[np.ndarray]:
    """inputs (n_seeds, n, n_in) or (n, n_in); returns every layer, (n_seeds, n, units)."""
    layers = [inputs]
    for weight in weights:
        layers.append(sigmoid(np.matmul(layers[-1], weight)))
    return layers


def train(settings: TrainSpec, data: TrainData, seeds: list[int]) -> list[SeedResult]:
    args = settings.args
    momentum = float(args.get("momentum", 0.9))
    n_rows = len(data.inputs)
    batch = min(int(args.get("batch_size", 32)), n_rows)
    units = [data.inputs.shape[1], *settings.hidden_layers, data.targets.shape[1]]
    weights = []  # the tutorial's draw per seed, stacked: (n_seeds, a, b)
    for seed in seeds:
        rng = np.random.RandomState(seed)
        weights.append([rng.random_sample((a, b)) * 2 - 1 for a, b in itertools.pairwise(units)])
    weights = [np.stack(layer) for layer in zip(*weights, strict=True)]
    velocity = [np.zeros_like(w) for w in weights]
    shuffles = [np.random.RandomState(seed + 2**31) for seed in seeds]  # batch order
    order = np.empty((len(seeds), 0), dtype=np.int64)
    logged = set(curve_iterations(settings)[:-1].tolist())
    curves: list[np.ndarray] = []
    for iteration in range(settings.iterations):
        if iteration in logged:  # full-batch margin of the current weights
            error = data.targets - forward(data.inputs, weights)[-1]
            curves.append(np.abs(error).mean(axis=(1, 2)))
        if order.shape[1] < batch:  # a new epoch for every seed
            fresh = np.stack([rng.permutation(n_rows) for rng in shuffles])
            order = np.concatenate([order, fresh], axis=1)
        rows, order = order[:, :batch], order[:, batch:]
        layers = forward(data.inputs[rows], weights)
        delta = (data.targets[rows] - layers[-1]) * (layers[-1] * (1 - layers[-1]))
        for k in range(len(weights) - 1, -1, -1):
            step = np.matmul(layers[k].transpose(0, 2, 1), delta)
            if k:
                delta = np.matmul(delta, weights[k].transpose(0, 2, 1))
                delta *= layers[k] * (1 - layers[k])
            # Momentum as a running mean of the steps: lr keeps its meaning (the tutorial's
            # step size), whatever the momentum.
            velocity[k] = momentum * velocity[k] + (1 - momentum) * step
            weights[k] += settings.lr * velocity[k]
    outputs = forward(data.inputs, weights)[-1]
    curves.append(np.abs(data.targets - outputs).mean(axis=(1, 2)))
    curve = np.stack(curves, axis=1)
    held = forward(data.holdout_inputs, weights)[-1] if len(data.holdout_inputs) else None
    return [
        SeedResult(outputs[s], None if held is None else held[s], curve[s])
        for s in range(len(seeds))
    ]
