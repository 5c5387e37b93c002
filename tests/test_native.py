"""The native kernel gives numpy's numbers bit for bit, or it is not used."""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import os

import numpy as np
import pytest
from conftest import EX2_INPUTS, EX2_TARGETS, require_numpys_bits

from nnsweep.config import TrainSpec
from nnsweep.train import native
from nnsweep.train.loop import TrainResult, _train_native, _train_numpy, choose_kernel, train
from nnsweep.train.model import init_weights, layer_units

# Example 1 with a constant fourth input: the kernel needs an even number of inputs.
EX1_INPUTS = np.array([[a, b, c, 1] for a in (0, 1) for b in (0, 1) for c in (0, 1)], dtype=float)
EX1_TARGETS = np.array([[0], [1], [1], [0], [1], [1], [1], [1]], dtype=float)


@pytest.fixture(autouse=True)
def _needs_kernel() -> None:
    if not native.available():
        if os.environ.get("NNSWEEP_REQUIRE_NATIVE") == "1":
            pytest.fail("NNSWEEP_REQUIRE_NATIVE=1 but the native kernel is not available")
        pytest.skip("native kernel not built, or this CPU lacks AVX2/FMA")


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return np.array_equal(a, b, equal_nan=True)


def _assert_identical(by_numpy: TrainResult, by_kernel: TrainResult) -> None:
    assert (by_numpy.kernel, by_kernel.kernel) == ("numpy", "native")
    for field in ("curves", "final_error", "final_output", "diverged", "iterations_reached"):
        assert _same(getattr(by_numpy, field), getattr(by_kernel, field)), field
    assert _same(by_numpy.first_below_threshold, by_kernel.first_below_threshold)
    assert by_numpy.reason == by_kernel.reason
    for a, b in zip(by_numpy.weights, by_kernel.weights, strict=True):
        assert _same(a, b)


def _both(monkeypatch: pytest.MonkeyPatch, *args, **kwargs) -> tuple[TrainResult, TrainResult]:
    monkeypatch.setenv("NNSWEEP_KERNEL", "numpy")
    by_numpy = train(*args, **kwargs)
    monkeypatch.setenv("NNSWEEP_KERNEL", "native")
    by_kernel = train(*args, **kwargs)
    return by_numpy, by_kernel


def test_exp_is_the_c_librarys_exp_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    special = [0.0, -0.0, 1e-300, -1e-300, 2.0**-54, -(2.0**-55), 511.99, 512.0, -512.0,
               709.78, 709.79, -745.1, -745.2, 1023.0, 1e10, -1e10, np.inf, -np.inf, np.nan,
               5e-324, -708.5, -720.0]  # fmt: skip
    values = np.concatenate([
        rng.uniform(-40, 40, 400_000),
        rng.uniform(-750, 720, 400_000),
        rng.standard_normal(400_000) * np.exp(rng.uniform(-60, 4, 400_000)),
        rng.integers(0, 2**64, 400_000, dtype=np.uint64).view(np.float64),
        special, np.zeros(2),
    ])  # fmt: skip
    # The C library's own exp, value by value (numpy's may be another routine: AVX-512F).
    c_exp = ctypes.CDLL(ctypes.util.find_library("m")).exp
    c_exp.argtypes, c_exp.restype = [ctypes.c_double], ctypes.c_double
    with np.errstate(over="ignore", invalid="ignore"):
        expected = np.frompyfunc(c_exp, 1, 1)(values).astype(np.float64)
    assert _same(native.exp(values), expected)


@pytest.mark.parametrize(
    ("inputs", "targets", "hidden", "lr", "n_seeds", "threshold"),
    [
        (EX2_INPUTS, EX2_TARGETS, (8, 16, 8), 1.0, 9, 0.01),
        (EX2_INPUTS, EX2_TARGETS, (16, 8, 8), 1.0, 4, 0.05),
        (EX2_INPUTS, EX2_TARGETS, (8, 8, 8), 0.3, 6, 0.01),
        (EX2_INPUTS, EX2_TARGETS, (6,), 7.5, 5, 0.2),
        (EX1_INPUTS, np.hstack([EX1_TARGETS, 1 - EX1_TARGETS]), (8,), 1.0, 7, 0.02),
        (EX1_INPUTS, np.hstack([EX1_TARGETS, EX1_TARGETS]), (6, 10, 2, 4), 1e300, 3, 0.01),
    ],
)
def test_kernel_equals_numpy_bit_for_bit(
    monkeypatch: pytest.MonkeyPatch, inputs, targets, hidden, lr, n_seeds, threshold
) -> None:
    require_numpys_bits(native)
    spec = TrainSpec(
        hidden_layers=hidden, lr=lr, iterations=3000, log_every=250, error_threshold=threshold
    )
    seeds = list(range(3, 3 + n_seeds))
    by_numpy, by_kernel = _both(
        monkeypatch, inputs.astype(float), targets.astype(float), spec, seeds
    )
    _assert_identical(by_numpy, by_kernel)


def test_a_non_finite_seed_stops_alone_as_in_numpy() -> None:
    require_numpys_bits(native)
    """A seed whose weights hold NaN or inf is recorded as numpy records it; others go on."""
    spec = TrainSpec(hidden_layers=(8, 8), iterations=500, log_every=50)
    units = layer_units(4, spec.hidden_layers, 2)
    weights = init_weights(units, range(1, 8), "tutorial")
    weights[1][2, 3, 4] = np.nan  # seed 3 diverges at iteration 0
    weights[0][5, 0, 0] = np.inf  # seed 6: an infinite weight times a zero input gives NaN
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    with np.errstate(all="ignore"):
        by_numpy = _train_numpy(inputs, targets, spec, [w.copy() for w in weights], None, None)
        by_kernel = _train_native(inputs, targets, spec, [w.copy() for w in weights], None)
    assert by_numpy.diverged.tolist() == [False, False, True, False, False, True, False]
    fields = ("curves", "final_error", "final_output", "diverged", "iterations_reached")
    for field in (*fields, "first_below_threshold"):
        assert _same(getattr(by_numpy, field), getattr(by_kernel, field)), field
    assert by_numpy.reason == by_kernel.reason
    for a, b in zip(by_numpy.weights, by_kernel.weights, strict=True):
        assert _same(a, b)


def test_the_probe_rejects_a_kernel_that_is_one_ulp_off(monkeypatch: pytest.MonkeyPatch) -> None:
    require_numpys_bits(native)
    spec = TrainSpec(hidden_layers=(8, 16, 8), iterations=1000, log_every=100)
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    weights = init_weights(layer_units(4, spec.hidden_layers, 2), [1, 2, 3], "tutorial")
    assert choose_kernel(inputs, targets, spec, weights) == "native"
    honest = native.train_blocks

    def one_ulp_off(*args, **kwargs):
        outcome = honest(*args, **kwargs)
        outcome.weights[0][0, 0, 0] = np.nextafter(outcome.weights[0][0, 0, 0], np.inf)
        return outcome

    monkeypatch.setattr(native, "train_blocks", one_ulp_off)
    monkeypatch.setenv("NNSWEEP_KERNEL", "auto")
    assert choose_kernel(inputs, targets, spec, weights) == "numpy"
    monkeypatch.setenv("NNSWEEP_KERNEL", "native")
    with pytest.raises(native.KernelUnavailableError, match="does not reproduce"):
        choose_kernel(inputs, targets, spec, weights)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"activation": "tanh"}, "only does sigmoid"),
        ({"bias": True}, "no biases"),
        ({"hidden_layers": (8, 200)}, "at most 128"),
        ({"hidden_layers": (8, 1, 4)}, "2 or more units"),
        ({"hidden_layers": (8, 5, 4)}, "an even number"),
    ],
)
def test_networks_the_kernel_does_not_cover_go_to_numpy(
    monkeypatch: pytest.MonkeyPatch, change: dict, reason: str
) -> None:
    spec = dataclasses.replace(TrainSpec(hidden_layers=(8,), iterations=50, log_every=10), **change)
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    monkeypatch.setenv("NNSWEEP_KERNEL", "auto")
    assert train(inputs, targets, spec, [1, 2]).kernel == "numpy"
    monkeypatch.setenv("NNSWEEP_KERNEL", "native")
    with pytest.raises(native.KernelUnavailableError, match=reason):
        train(inputs, targets, spec, [1, 2])
