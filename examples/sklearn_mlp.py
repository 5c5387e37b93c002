"""scikit-learn's MLPClassifier as an nnsweep trainer: a trainer that is not numpy at all.

    pip install 'nnsweep[real]'
    nnsweep trainer=sklearn_mlp:train dataset=iris trainer_args={solver:adam}

The cell's hidden layers, learning rate and iterations (epochs, as ``max_iter``) go to the
classifier; seed s is its ``random_state``. Targets with several 0/1 columns (one-hot
classes, or the tutorial's two outputs) are fitted as multi-label indicators, so each
output is a sigmoid unit's probability, as in nnsweep's own networks. trainer_args: solver
(default adam), alpha (L2 penalty, default 0.0001).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier

from nnsweep import SeedResult, TrainData, TrainSpec

ACTIVATIONS = {"sigmoid": "logistic", "tanh": "tanh", "relu": "relu"}


def _probabilities(model: MLPClassifier, inputs: np.ndarray, n_outputs: int) -> np.ndarray:
    probabilities = model.predict_proba(inputs)
    return probabilities[:, 1:] if n_outputs == 1 else probabilities


def train(settings: TrainSpec, data: TrainData, seeds: list[int]) -> list[SeedResult]:
    args = settings.args
    n_outputs = data.targets.shape[1]
    targets = data.targets[:, 0].astype(int) if n_outputs == 1 else data.targets.astype(int)
    results = []
    for seed in seeds:
        model = MLPClassifier(
            hidden_layer_sizes=settings.hidden_layers,
            activation=ACTIVATIONS[settings.activation],
            solver=args.get("solver", "adam"),
            alpha=float(args.get("alpha", 1e-4)),
            learning_rate_init=settings.lr,
            max_iter=settings.iterations,
            random_state=seed,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # a budget, not a failure
            model.fit(data.inputs, targets)
        held = None
        if len(data.holdout_inputs):
            held = _probabilities(model, data.holdout_inputs, n_outputs)
        results.append(SeedResult(_probabilities(model, data.inputs, n_outputs), held))
    return results
