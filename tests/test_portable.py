"""The portable arithmetic: its exp, its gradients, its op order, and seeds alone vs batched.

The op order is pinned by ``portable_scalar.py``, the spec written out in plain Python floats:
the vectorised implementation (and every native kernel path) must give its bits.
"""

from __future__ import annotations

import dataclasses
import decimal
import math

import numpy as np
import portable_scalar as scalar
import pytest
from conftest import EX2_INPUTS, EX2_TARGETS

from nnsweep.config import TrainSpec, train_spec
from nnsweep.train import portable
from nnsweep.train.loop import train
from nnsweep.train.model import init_weights, layer_units
from nnsweep.train.portable import PortableNetwork

# -- exp --------------------------------------------------------------------------------------

# Decimal's exp is correctly rounded to the context's precision. 24 digits put the reference
# within 1e-7 ulp of the true value, so the measured error is the implementation's own.
REFERENCE = decimal.Context(prec=24, Emin=-9999, Emax=9999)


def _ulp_errors(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """|y - exp(x)| in units of the last place of the correctly rounded exp(x)."""
    errors = np.empty(x.size)
    exact = decimal.Decimal
    for i, (value, result) in enumerate(zip(x.tolist(), y.tolist(), strict=True)):
        truth = REFERENCE.exp(exact(value))
        nearest = float(truth)  # correctly rounded, subnormals and overflow included
        if math.isinf(nearest):
            errors[i] = 0.0 if result == nearest else np.inf
            continue
        unit = math.ulp(nearest) if nearest else 2.0**-1074
        errors[i] = float(REFERENCE.divide(abs(exact(result) - truth), exact(unit)))
    return errors


def _exp_points(n: int, seed: int) -> np.ndarray:
    """Where exp is used and where it is hard: the whole finite range, the sigmoid's usual
    inputs, both sides of every range-reduction boundary (n + 1/2) ln 2, and the subnormals."""
    rng = np.random.default_rng(seed)
    quarter = n // 4
    boundaries = (rng.integers(-1075, 1024, quarter) + 0.5) * math.log(2)
    return np.concatenate(
        [
            rng.uniform(-745.2, 709.8, quarter),
            rng.uniform(-40.0, 40.0, quarter),
            boundaries + rng.uniform(-1e-9, 1e-9, quarter) * np.abs(boundaries),
            rng.uniform(-745.2, -708.0, n - 3 * quarter),
        ]
    )


def _max_ulp_error(n: int, seed: int) -> float:
    x = _exp_points(n, seed)
    with np.errstate(over="ignore"):
        return float(_ulp_errors(x, portable.exp(x)).max())


# The spec's exp (degree-13 Horner, no FMA) is "about 1 ulp": measured just above 1 (1.17)
# where p < 1 and two roundings meet; docs/arithmetic.md quotes the figure of the slow test.
MAX_ULP = 1.25


def test_exp_is_within_about_one_ulp_on_20k_points() -> None:
    assert _max_ulp_error(20_000, 1) < MAX_ULP


@pytest.mark.slow
def test_exp_is_within_about_one_ulp_on_a_million_points() -> None:
    """The figure docs/arithmetic.md quotes (printed with -s)."""
    x = _exp_points(1_000_000, 2)
    with np.errstate(over="ignore"):
        errors = _ulp_errors(x, portable.exp(x))
    print(
        f"portable exp over {x.size:,} points: max error {errors.max():.3f} ulp, "
        f"{(errors > 0.5).mean():.2%} not correctly rounded, {(errors > 1).mean():.3%} above 1 ulp"
    )
    assert errors.max() < MAX_ULP


def test_the_ulp_measure_can_fail() -> None:
    """np.nextafter twice away from the right answer is measured as about 2 ulp."""
    x = np.array([0.5, -3.0, 100.0])
    wrong = np.nextafter(np.nextafter(portable.exp(x), np.inf), np.inf)
    assert (_ulp_errors(x, wrong) > 1.0).all()


LARGEST_FINITE = float.fromhex("0x1.62e42fefa39efp+9")  # largest x with exp(x) < 2^1024


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (0.0, 1.0),
        (-0.0, 1.0),
        (5e-324, 1.0),
        (-5e-324, 1.0),
        (2.0**-54, 1.0),
        (math.inf, math.inf),
        (-math.inf, 0.0),
        (1e300, math.inf),
        (-1e300, 0.0),
        (np.nextafter(LARGEST_FINITE, math.inf), math.inf),
        (710.0, math.inf),
        (-746.0, 0.0),
        (-745.2, 0.0),
        (-745.1, 5e-324),  # the smallest subnormal, not flushed to zero
    ],
)
def test_exp_edges(x: float, expected: float) -> None:
    with np.errstate(over="ignore"):
        got = portable.exp(np.array([x]))[0]
        assert got == scalar.exp(x)
    assert got == expected and math.copysign(1, got) == 1


def test_exp_keeps_the_very_nan_it_was_given_and_its_neighbours_unchanged() -> None:
    payload = np.array([0x7FF8000000000123, 0xFFF8000000000000], dtype=np.uint64).view(float)
    x = np.array([1.0, payload[0], -2.0, payload[1], 3.0])
    got = portable.exp(x)
    assert np.array_equal(got.view(np.uint64)[[1, 3]], payload.view(np.uint64))
    assert np.array_equal(got[[0, 2, 4]], portable.exp(np.array([1.0, -2.0, 3.0])))


def test_exp_results_below_2_to_the_minus_1022_are_correctly_scaled_subnormals() -> None:
    x = np.linspace(-745.0, -708.5, 5001)
    y = portable.exp(x)
    assert (y < 2.0**-1022).sum() > 4000 and (y > 0).all()
    assert (_ulp_errors(x, y) <= 1.0).all()  # an ulp here is 2^-1074: absolute


def test_exp_largest_finite_argument_gives_a_finite_result() -> None:
    got = portable.exp(np.array([LARGEST_FINITE]))[0]
    error = _ulp_errors(np.array([LARGEST_FINITE]), np.array([got]))[0]
    assert math.isfinite(got) and error < MAX_ULP


def test_exp_matches_the_scalar_spec_bit_for_bit_in_place_and_not() -> None:
    x = _exp_points(4000, 3)
    expected = np.array([scalar.exp(v) for v in x.tolist()])
    with np.errstate(over="ignore"):
        got = portable.exp(x)
        inplace = x.copy()
        portable.exp(inplace, out=inplace)
        strided = portable.exp(np.repeat(x, 2)[::2])
    for result in (got, inplace, strided):
        assert np.array_equal(result.view(np.int64), expected.view(np.int64))


def test_exp_uses_no_libm() -> None:
    """A deliberately different np.exp cannot change it (it never calls np.exp)."""
    x = np.linspace(-30, 30, 1001)
    before = portable.exp(x)
    real = np.exp
    try:
        np.exp = lambda *a, **k: real(*a, **k) * 2  # type: ignore[assignment]
        after = portable.exp(x)
    finally:
        np.exp = real
    assert np.array_equal(before, after)


# -- activations ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "relu"])
def test_activations_and_derivatives_match_the_scalar_spec(name: str) -> None:
    rng = np.random.default_rng(4)
    z = np.concatenate(
        [rng.normal(0, 3, 3000), rng.normal(0, 400, 500), [0.0, -0.0, np.inf, -np.inf, 1e-310]]
    )
    with np.errstate(over="ignore"):
        a = portable.activate(name, z)
        s = portable.derivative(name, a)
    expected_a = np.array([scalar.activate(name, v) for v in z.tolist()])
    expected_s = np.array([scalar.slope(name, v) for v in expected_a.tolist()])
    assert np.array_equal(a.view(np.int64), expected_a.view(np.int64))
    assert np.array_equal(s.view(np.int64), expected_s.view(np.int64))


def test_activations_close_to_the_textbook_functions() -> None:
    z = np.linspace(-20, 20, 4001)
    assert np.allclose(portable.activate("sigmoid", z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    assert np.allclose(portable.activate("tanh", z), np.tanh(z), rtol=1e-13, atol=1e-16)
    assert np.array_equal(portable.activate("relu", z), np.maximum(z, 0))
    nan = portable.activate("tanh", np.array([np.nan]))[0]
    assert math.isnan(nan) and math.isnan(portable.activate("relu", np.array([np.nan]))[0])
    assert str(portable.activate("relu", np.array([-0.0]))[0]) == "0.0"  # +0.0


# -- gradients --------------------------------------------------------------------------------


def _network(activation: str, bias: bool, seeds=(3, 4)) -> PortableNetwork:
    rng = np.random.RandomState(0)
    inputs = rng.uniform(-1, 1, size=(7, 3))
    targets = rng.uniform(0.1, 0.9, size=(7, 2))
    units = layer_units(3, (5, 4), 2)
    weights = init_weights(units, seeds, "tutorial")
    biases = [rng.uniform(-0.5, 0.5, size=(len(seeds), 1, b)) for b in units[1:]] if bias else None
    output = "sigmoid" if activation == "relu" else activation
    return PortableNetwork(inputs, targets, weights, biases, activation, output)


def _half_squared_error(net: PortableNetwork) -> np.ndarray:
    output = net.forward()
    return 0.5 * ((net.targets[:, :, None] - output) ** 2).sum(axis=(0, 1))


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_update_is_minus_the_finite_difference_gradient(activation: str, bias: bool) -> None:
    net = _network(activation, bias)
    net.forward()
    net.backward()
    parameters = [*net.weights, *(net.biases or [])]
    analytic = [g.copy() for g in net.gradients]
    if net.biases is not None:
        analytic += [d.sum(axis=0) for d in net.deltas]  # the bias step, summed any order
    step = 1e-6
    for parameter, update in zip(parameters, analytic, strict=True):
        numeric = np.empty_like(parameter)
        for index in np.ndindex(parameter.shape):
            saved = parameter[index]
            parameter[index] = saved + step
            plus = _half_squared_error(net)[index[-1]]
            parameter[index] = saved - step
            minus = _half_squared_error(net)[index[-1]]
            parameter[index] = saved
            numeric[index] = (plus - minus) / (2 * step)
        # The update W += L.T @ delta is minus the gradient of 0.5 * sum(err**2).
        scale = np.maximum(np.abs(numeric), np.abs(update)).max()
        relative = np.abs(numeric + update).max() / scale
        assert relative < 1e-6, (activation, bias, relative)


def test_the_gradient_check_can_fail() -> None:
    net = _network("sigmoid", False)
    net.forward()
    net.backward()
    wrong = -net.gradients[0]  # the sign of an ascent
    parameter = net.weights[0]
    saved = parameter[0, 0, 0]
    parameter[0, 0, 0] = saved + 1e-6
    plus = _half_squared_error(net)[0]
    parameter[0, 0, 0] = saved - 1e-6
    minus = _half_squared_error(net)[0]
    numeric = (plus - minus) / 2e-6
    assert abs(numeric + wrong[0, 0, 0]) > 1e-3 * abs(numeric)


# -- the op order, pinned by the scalar spec --------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    n_inputs: int
    hidden: tuple[int, ...]
    n_outputs: int
    rows: int
    activation: str
    output_activation: str
    bias: bool
    lr: float


# Odd widths, one output, 300+ rows, biases, tanh and relu, lr != 1.
CASES = [
    Case(3, (5,), 1, 8, "sigmoid", "sigmoid", False, 1.0),
    Case(4, (7, 3), 2, 301, "tanh", "sigmoid", True, 0.05),
    Case(2, (3, 5), 1, 33, "relu", "sigmoid", True, 0.5),
    Case(5, (1, 4), 3, 17, "tanh", "tanh", False, 1.0),
    Case(1, (9,), 1, 40, "relu", "relu", True, 0.01),
    Case(6, (2, 3, 2), 2, 11, "sigmoid", "sigmoid", True, 2.5),
]


def _data(case: Case, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(seed)
    inputs = rng.uniform(-2, 2, (case.rows, case.n_inputs))
    if case.output_activation == "tanh":
        targets = rng.uniform(-0.9, 0.9, (case.rows, case.n_outputs))
    else:
        targets = np.round(rng.uniform(0, 1, (case.rows, case.n_outputs)))
    return inputs, targets


def _spec(case: Case, iterations: int) -> TrainSpec:
    return train_spec(
        hidden_layers=case.hidden,
        activation=case.activation,
        output_activation=case.output_activation,
        init="xavier",
        bias=case.bias,
        lr=case.lr,
        iterations=iterations,
        log_every=1,
        error_threshold=0.3,
        arithmetic="portable",
    )


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.hidden}-{c.rows}rows-{c.activation}")
def test_every_path_gives_the_scalar_specs_bits(case: Case, portable_path: str) -> None:
    """Curves (every iteration), final errors, outputs and weights, compared as bits."""
    iterations, seeds = 4, [2, 7]
    inputs, targets = _data(case, 11)
    result = train(inputs, targets, _spec(case, iterations), seeds)
    assert result.kernel == portable_path
    units = layer_units(case.n_inputs, case.hidden, case.n_outputs)
    initial = init_weights(units, seeds, "xavier")
    names = [case.activation] * len(case.hidden) + [case.output_activation]
    for row in range(len(seeds)):
        weights = [w[row].tolist() for w in initial]
        biases = [[0.0] * b for b in units[1:]] if case.bias else None
        margins, final = scalar.train(
            inputs.tolist(), targets.tolist(), weights, biases, names, case.lr, iterations
        )
        expected_curve = np.array([*margins, final])
        assert np.array_equal(result.curves[row], expected_curve, equal_nan=True)
        assert result.final_error[row] == final or (np.isnan(final) and result.diverged[row])
        for trained, expected in zip(result.weights, weights, strict=True):
            assert np.array_equal(trained[row].view(np.int64), np.array(expected).view(np.int64))
        if case.bias:
            for trained, expected in zip(result.biases, biases, strict=True):
                assert np.array_equal(trained[row, 0], np.array(expected))
        output = scalar.forward(inputs.tolist(), weights, biases, names)[-1]
        assert np.array_equal(result.final_output[row], np.array(output))


def test_the_scalar_comparison_can_fail() -> None:
    """The reordered tutorial product err * out * (1 - out) is caught by the comparison."""
    case = CASES[0]
    inputs, targets = _data(case, 11)
    net = PortableNetwork(
        inputs, targets, init_weights([3, 5, 1], [2], "xavier"), None, "sigmoid", "sigmoid"
    )
    net.forward()
    net.backward()
    out = net.outputs[-1]
    reordered = (net.error * out) * (1 - out)
    assert not np.array_equal(reordered, net.deltas[-1])


# -- seeds alone vs in a batch, and the recorder's outcomes ------------------------------------


def test_a_seed_alone_equals_the_seed_in_a_batch_of_100(portable_path: str) -> None:
    spec = train_spec(hidden_layers=(8, 16, 8), iterations=300, log_every=50)
    assert spec.arithmetic == "portable"  # the default
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    batch = train(inputs, targets, spec, list(range(1, 101)))
    assert batch.kernel == portable_path
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


def test_portable_is_close_to_but_not_the_host_arithmetic() -> None:
    """Both arithmetics train the same network: close numbers, different last bits."""
    spec = train_spec(hidden_layers=(8, 16, 8), iterations=2000, log_every=500)
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    ours = train(inputs, targets, spec, [1, 2, 3])
    host = train(inputs, targets, dataclasses.replace(spec, arithmetic="numpy"), [1, 2, 3])
    # Before any update only exp's last bits differ; training may then amplify them.
    assert np.allclose(ours.curves[:, 0], host.curves[:, 0], rtol=1e-14)
    assert np.allclose(ours.curves, host.curves, rtol=1e-2)
    assert not np.array_equal(ours.weights[0], host.weights[0])


def test_holdout_and_accuracy_come_from_the_portable_forward_pass() -> None:
    case = CASES[1]
    inputs, targets = _data(case, 5)
    held_in, held_out = _data(case, 6)
    spec = dataclasses.replace(_spec(case, 30), log_every=10)
    result = train(inputs, targets, spec, [1, 2, 3], holdout=(held_in[:40], held_out[:40]))
    net = PortableNetwork(
        held_in[:40],
        held_out[:40],
        result.weights,
        result.biases,
        case.activation,
        case.output_activation,
    )
    assert np.array_equal(result.holdout_error, net.evaluate())
    right = (np.round(net.seed_outputs()) == held_out[:40]).all(axis=2).mean(axis=1)
    assert np.array_equal(result.holdout_accuracy, right)
    assert (result.accuracy > 0).all()


def test_a_cell_the_kernel_cannot_train_goes_to_numpy_with_the_reason(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No path silently changes the numbers: the fallback trains the same bits and says why."""
    from nnsweep.train import native

    spec = train_spec(hidden_layers=(5, 3), activation="tanh", bias=True, iterations=40)
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    monkeypatch.setenv("NNSWEEP_KERNEL", "numpy")
    forced = train(inputs, targets, spec, [1, 2, 3])
    assert (forced.kernel, forced.kernel_note) == ("numpy", "")
    monkeypatch.setenv("NNSWEEP_KERNEL", "auto")
    monkeypatch.setattr(native, "supports", lambda *args: "the kernel cannot train this")
    fallback = train(inputs, targets, spec, [1, 2, 3])
    assert fallback.kernel == "numpy" and fallback.kernel_note == "the kernel cannot train this"
    assert np.array_equal(fallback.curves, forced.curves)
    assert np.array_equal(fallback.final_error, forced.final_error)
    if native.available_paths():
        monkeypatch.undo()
        monkeypatch.setenv("NNSWEEP_KERNEL", "auto")
        by_kernel = train(inputs, targets, spec, [1, 2, 3])
        assert by_kernel.kernel == native.available_paths()[0] and by_kernel.kernel_note == ""
        assert np.array_equal(by_kernel.curves, forced.curves)
        for a, b in zip(by_kernel.biases, forced.biases, strict=True):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("path", ["scalar", "avx2", "avx512"])
def test_each_kernel_paths_exp_is_this_exp_on_ten_million_points(path: str) -> None:
    """The kernel's exp against the numpy implementation's, as bits, edges included."""
    from nnsweep.train import native

    if path not in native.available_paths():
        pytest.skip(f"the native kernel's {path} path is not available here")
    edges = np.array(
        [
            0.0,
            -0.0,
            5e-324,
            -5e-324,
            np.inf,
            -np.inf,
            np.nan,
            709.78,
            709.79,
            -745.1,
            -745.2,
            LARGEST_FINITE,
            np.nextafter(LARGEST_FINITE, np.inf),
            710.0,
            -746.0,
            1e300,
            -1e300,
        ]
    )
    with np.errstate(over="ignore"):
        for chunk in range(10):
            x = np.concatenate([edges, _exp_points(1_000_000, 100 + chunk)])
            assert np.array_equal(
                native.exp(x, path).view(np.int64), portable.exp(x).view(np.int64)
            ), chunk
