"""The arithmetic: gradients, the tutorial's own loop, and seeds alone versus in a batch."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from conftest import EX2_INPUTS, EX2_TARGETS

from nnsweep.config import train_spec
from nnsweep.train.loop import UNSTABLE_CHANGE, log_iterations, train, training_points
from nnsweep.train.model import StackedNetwork, init_weights, layer_units
from nnsweep.train.reference import tutorial_predict, tutorial_train

EX1_INPUTS = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
EX1_TARGETS = np.array([[0], [1], [1], [0], [1], [1], [1], [1]])


def _network(activation: str, bias: bool, seeds=(3, 4)) -> StackedNetwork:
    rng = np.random.RandomState(0)
    inputs = rng.uniform(-1, 1, size=(6, 3))
    targets = rng.uniform(0.1, 0.9, size=(6, 2))
    units = layer_units(3, (5, 4), 2)
    weights = init_weights(units, seeds, "tutorial")
    biases = [rng.uniform(-0.5, 0.5, size=(len(seeds), 1, b)) for b in units[1:]] if bias else None
    output = "sigmoid" if activation == "relu" else activation
    return StackedNetwork(inputs, targets, weights, biases, activation, output)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_update_is_minus_the_finite_difference_gradient(activation: str, bias: bool) -> None:
    net = _network(activation, bias)
    net.forward()
    net.backward()
    parameters = [*net.weights, *(net.biases or [])]
    analytic = [g.copy() for g in net.gradients]
    if net.biases is not None:
        analytic += [d.sum(axis=1, keepdims=True) for d in net.deltas]
    step = 1e-6
    for parameter, update in zip(parameters, analytic, strict=True):
        numeric = np.empty_like(parameter)
        for index in np.ndindex(parameter.shape):
            saved = parameter[index]
            parameter[index] = saved + step
            plus = net.half_squared_error()[index[0]]
            parameter[index] = saved - step
            minus = net.half_squared_error()[index[0]]
            parameter[index] = saved
            numeric[index] = (plus - minus) / (2 * step)
        # The tutorial's update W += L.T @ delta is minus the gradient of 0.5 * sum(err**2).
        scale = np.maximum(np.abs(numeric), np.abs(update)).max()
        relative = np.abs(numeric + update).max() / scale
        assert relative < 1e-6, (activation, bias, relative)


def test_gradient_check_fails_on_a_wrong_gradient() -> None:
    """The check above can fail: a reordered-sign update is caught."""
    net = _network("sigmoid", False)
    net.forward()
    net.backward()
    wrong = net.gradients[0].copy()
    parameter = net.weights[0]
    index = (0, 0, 0)
    saved = parameter[index]
    parameter[index] = saved + 1e-6
    plus = net.half_squared_error()[0]
    parameter[index] = saved - 1e-6
    minus = net.half_squared_error()[0]
    numeric = (plus - minus) / 2e-6
    assert abs(numeric - wrong[index]) > 1e-3 * abs(numeric)


@pytest.mark.parametrize(
    ("inputs", "targets", "hidden"),
    [
        (EX2_INPUTS, EX2_TARGETS, (8, 16, 8)),
        (EX2_INPUTS, EX2_TARGETS, (16, 8, 8)),
        (EX1_INPUTS, EX1_TARGETS, (8,)),
    ],
)
def test_stacked_trainer_equals_the_tutorial_loop_bit_for_bit(inputs, targets, hidden) -> None:
    iterations, log_every = 600, 100
    spec = train_spec(
        hidden_layers=hidden, iterations=iterations, log_every=log_every, arithmetic="numpy"
    )
    seeds = [1, 2, 5]
    result = train(inputs.astype(float), targets.astype(float), spec, seeds)
    assert result.kernel == "numpy"  # the host arithmetic never uses the native kernel
    for row, seed in enumerate(seeds):
        margins, synapses, final, output = tutorial_train(
            inputs, targets, hidden, seed, iterations, log_every
        )
        logged = np.isin(result.log_iterations, np.arange(0, iterations, log_every))
        assert np.array_equal(result.curves[row][logged], margins)
        for stacked, alone in zip(result.weights, synapses, strict=True):
            assert np.array_equal(stacked[row], alone)
        # The trained network is measured once more after the loop, on its final weights.
        predicted = tutorial_predict(inputs, synapses)
        final_weights_error = np.mean(abs(targets - predicted))
        assert final_weights_error != final  # the last update moved it
        assert result.final_error[row] == final_weights_error
        assert result.curves[row][-1] == final_weights_error
        # What the tutorial prints after its loop: the last forward pass's output.
        assert np.array_equal(result.last_pass_output[row], output)
        assert result.log_iterations[-1] == iterations
        assert np.array_equal(result.final_output[row], predicted)
        # end_change compares the final margin with the two before it, as the tutorial's
        # loop computes them.
        before = [tutorial_train(inputs, targets, hidden, seed, n, n)[2] for n in (599, 600)]
        expected = max(abs(e - final_weights_error) for e in before) / final_weights_error
        assert result.end_change[row] == expected


def test_a_seed_alone_equals_the_seed_in_a_batch_of_100() -> None:
    # The portable arithmetic's twin of this test is in test_portable.py.
    spec = train_spec(hidden_layers=(8, 16, 8), iterations=300, log_every=50, arithmetic="numpy")
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    batch = train(inputs, targets, spec, list(range(1, 101)))
    assert batch.kernel == "numpy"
    for seed in (1, 2, 37, 64, 100):
        alone = train(inputs, targets, spec, [seed])
        row = seed - 1
        assert np.array_equal(alone.curves[0], batch.curves[row])
        assert alone.final_error[0] == batch.final_error[row]
        assert np.array_equal(alone.final_output[0], batch.final_output[row])
        assert alone.first_below_threshold[0] == batch.first_below_threshold[row]
        assert alone.end_change[0] == batch.end_change[row]
        assert alone.accuracy[0] == batch.accuracy[row]
        for a, b in zip(alone.weights, batch.weights, strict=True):
            assert np.array_equal(a[0], b[row])


def test_init_draws_what_np_random_seed_draws_and_leaves_the_global_stream_alone() -> None:
    np.random.seed(12345)
    before = np.random.get_state()[1].copy()
    stacked = init_weights([4, 8, 2], [7, 9], "tutorial")
    assert np.array_equal(np.random.get_state()[1], before)
    for row, seed in enumerate((7, 9)):
        np.random.seed(seed)
        first = np.random.random((4, 8)) * 2 - 1
        second = np.random.random((8, 2)) * 2 - 1
        assert np.array_equal(stacked[0][row], first)
        assert np.array_equal(stacked[1][row], second)


def test_reordering_the_delta_product_is_not_what_we_compute() -> None:
    """The order err * (out * (1 - out)) matters: (err * out) * (1 - out) differs somewhere."""
    rng = np.random.RandomState(1)
    out = rng.random_sample(100_000)
    err = rng.random_sample(100_000) - out
    assert not np.array_equal(err * (out * (1 - out)), (err * out) * (1 - out))


@pytest.mark.parametrize("arithmetic", ["portable", "numpy"])
def test_diverging_seeds_are_recorded_and_the_rest_are_unchanged(arithmetic: str) -> None:
    spec = train_spec(
        arithmetic=arithmetic,
        hidden_layers=(8, 8),
        activation="tanh",
        output_activation="relu",
        lr=1.0,
        iterations=400,
        log_every=100,
    )
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    seeds = list(range(1, 25))
    result = train(inputs, targets, spec, seeds)
    assert result.diverged.any() and not result.diverged.all(), result.diverged
    for row in np.flatnonzero(result.diverged):
        assert result.iterations_reached[row] < spec.iterations
        assert "non-finite" in result.reason[row]
        assert not np.isfinite(result.final_error[row])
    for row in np.flatnonzero(~result.diverged)[:3]:
        alone = train(inputs, targets, spec, [seeds[row]])
        assert not alone.diverged[0]
        assert alone.final_error[0] == result.final_error[row]
        for a, b in zip(alone.weights, result.weights, strict=True):
            assert np.array_equal(a[0], b[row])


def test_curves_end_with_the_final_weights() -> None:
    assert log_iterations(100_000, 10_000).tolist()[-2:] == [90_000, 100_000]
    assert log_iterations(10, 5).tolist() == [0, 5, 10]
    assert log_iterations(11, 5).tolist() == [0, 5, 10, 11]
    assert training_points(11, 5).tolist() == [0, 5, 9, 10]
    assert training_points(1, 5).tolist() == [0]


@pytest.mark.parametrize("arithmetic", ["portable", "numpy"])
def test_end_change_flags_a_seed_that_oscillates(arithmetic: str) -> None:
    """On noisy data a too-large learning rate makes seeds flip between states every update."""
    rng = np.random.RandomState(0)
    inputs = rng.normal(size=(60, 2))
    targets = (inputs[:, :1] + 0.8 * rng.normal(size=(60, 1)) > 0).astype(float)
    spec = train_spec(hidden_layers=(8,), activation="tanh", iterations=1000, arithmetic=arithmetic)
    calm = train(inputs, targets, dataclasses.replace(spec, lr=0.05), [1, 2, 3, 4])
    wild = train(inputs, targets, dataclasses.replace(spec, lr=1.0), [1, 2, 3, 4])
    assert (calm.end_change < UNSTABLE_CHANGE).all(), calm.end_change
    assert (wild.end_change > 10 * UNSTABLE_CHANGE).sum() >= 3, wild.end_change
    right = (np.round(wild.final_output) == targets).all(axis=2).mean(axis=1)
    assert np.array_equal(wild.accuracy, right) and (right > 0.5).all()
