"""Every kernel path gives the portable arithmetic's bits: the numpy implementation's
(nnsweep/train/portable.py), and a short transcription of the spec (docs/arithmetic.md) kept
here as a second reading, compared as bits, on every machine. Only paths this CPU lacks are
skipped; where a C compiler exists the kernel must have been built (NNSWEEP_REQUIRE_NATIVE).
"""

from __future__ import annotations

import itertools
import os
import shutil
from fractions import Fraction
from math import factorial

import numpy as np
import pytest
from conftest import EX2_INPUTS, EX2_TARGETS

from nnsweep.config import train_spec
from nnsweep.errors import ConfigError
from nnsweep.train import native, portable
from nnsweep.train.loop import train_stacked, training_points
from nnsweep.train.model import init_weights, layer_units

# ---------------------------------------------------------------------------------------
# The spec, transcribed: elementwise numpy ufuncs over a seed axis (last), one operation each
# ---------------------------------------------------------------------------------------

INV_LN2 = float.fromhex("0x1.71547652b82fep+0")
SHIFT = float.fromhex("0x1.8p52")
LN2_HI = float.fromhex("0x1.62e42fee00000p-1")
LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
C = [float(Fraction(1, factorial(k))) for k in range(14)]


def spec_exp(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    nan = x != x
    v = np.where(nan, 0.0, x)
    v = np.where(v > 710.0, 710.0, v)
    v = np.where(v < -746.0, -746.0, v)
    t = v * INV_LN2
    t = t + SHIFT
    n = t - SHIFT
    hi = n * LN2_HI
    r = v - hi
    lo = n * LN2_LO
    r = r - lo
    p = np.full_like(r, C[13])
    for k in range(12, -1, -1):
        p = p * r
        p = p + C[k]
    n1 = np.floor(n * 0.5)
    n2 = n - n1
    s1 = ((n1.astype(np.int64) + 1023) << 52).view(np.float64)
    s2 = ((n2.astype(np.int64) + 1023) << 52).view(np.float64)
    result = (p * s1) * s2
    return np.where(nan, x, result)


def spec_activate(z: np.ndarray, kind: str) -> np.ndarray:
    if kind == "sigmoid":
        return 1.0 / (1.0 + spec_exp(-z))
    if kind == "tanh":
        e = spec_exp(-2.0 * np.abs(z))
        return np.copysign((1.0 - e) / (1.0 + e), z)
    return np.where(z <= 0, 0.0, z)


def spec_slope(a: np.ndarray, kind: str) -> np.ndarray:
    if kind == "sigmoid":
        return a * (1.0 - a)
    if kind == "tanh":
        return 1.0 - a * a
    return np.where(a > 0, 1.0, 0.0)


def spec_sum(terms: np.ndarray) -> np.ndarray:
    """Sequential sum over the first axis, started from the first term."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def spec_forward(inputs, weights, biases, kinds):
    """Every layer's output, (rows, units, S); weights (a, b, S), biases (b, S) or None."""
    layer = np.broadcast_to(inputs[:, :, None], (*inputs.shape, weights[0].shape[-1]))
    outputs = []
    for k, weight in enumerate(weights):
        # z[r, j] = sum_i L[r, i] * W[i, j], i ascending
        z = spec_sum(np.moveaxis(layer, 1, 0)[:, :, None, :] * weight[:, None, :, :])
        if biases is not None:
            z = z + biases[k][None]
        layer = spec_activate(z, kinds[k])
        outputs.append(layer)
    return outputs


def spec_margin(err: np.ndarray) -> np.ndarray:
    flat = np.abs(err).reshape(-1, err.shape[-1])
    return spec_sum(flat) / flat.shape[0]


def spec_train(inputs, targets, weights, biases, kinds, lr, iterations, points, threshold):
    """The spec's training plus the numpy loop's per-seed bookkeeping; seed-major output."""
    W = [np.ascontiguousarray(np.moveaxis(w, 0, -1)) for w in weights]
    B = None if biases is None else [np.moveaxis(b[:, 0, :], 0, -1).copy() for b in biases]
    S = weights[0].shape[0]
    out = {
        "curves": np.full((S, len(points)), np.nan),
        "final_error": np.full(S, np.nan),
        "final_output": np.full((S, *targets.shape), np.nan),
        "diverged": np.zeros(S, dtype=bool),
        "iterations_reached": np.full(S, iterations, dtype=np.int64),
        "first_below": np.full(S, -1, dtype=np.int64),
        "weights": [np.empty_like(w) for w in weights],
        "biases": None if biases is None else [np.empty_like(b) for b in biases],
    }
    slot = 0
    active = np.ones(S, dtype=bool)

    def keep(seeds):
        for k, w in enumerate(W):
            out["weights"][k][seeds] = np.moveaxis(w, -1, 0)[seeds]
        if B is not None:
            for k, b in enumerate(B):
                out["biases"][k][seeds] = np.moveaxis(b, -1, 0)[seeds][:, None, :]

    for it in range(iterations):
        outputs = spec_forward(inputs, W, B, kinds)
        output = outputs[-1]
        err = targets[:, :, None] - output
        deltas = [None] * len(W)
        deltas[-1] = err * spec_slope(output, kinds[-1])
        margins = spec_margin(err)
        logged = slot < len(points) and points[slot] == it
        if logged:
            out["curves"][active, slot] = margins[active]
            slot += 1
        stopped = active & ~np.isfinite(margins)
        if stopped.any():
            out["diverged"][stopped] = True
            out["iterations_reached"][stopped] = it + 1
            out["final_error"][stopped] = margins[stopped]
            out["final_output"][stopped] = np.moveaxis(output, -1, 0)[stopped]
            keep(stopped)
            active &= ~stopped
        crossed = active & (out["first_below"] < 0) & (margins < threshold)
        out["first_below"][crossed] = it
        if it == iterations - 1:
            out["final_error"][active] = margins[active]
            out["final_output"][active] = np.moveaxis(output, -1, 0)[active]
        for k in range(len(W) - 1, 0, -1):
            # e[r, i] = sum_j delta[r, j] * W[i, j], j ascending
            terms = np.moveaxis(deltas[k], 1, 0)[:, :, None, :] * np.moveaxis(W[k], 1, 0)[:, None]
            e = spec_sum(terms)
            deltas[k - 1] = e * spec_slope(outputs[k - 1], kinds[k - 1])
        layer_inputs = [np.broadcast_to(inputs[:, :, None], (*inputs.shape, S)), *outputs[:-1]]
        for k in range(len(W)):
            # g[i, j] = sum_r L[r, i] * delta[r, j], r ascending
            g = spec_sum(layer_inputs[k][:, :, None, :] * deltas[k][:, None, :, :])
            if lr != 1.0:
                g = lr * g
            W[k] = W[k] + g
            if B is not None:
                step = spec_sum(deltas[k])
                if lr != 1.0:
                    step = lr * step
                B[k] = B[k] + step
    keep(active)
    return out


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

REQUIRED = os.environ.get("NNSWEEP_REQUIRE_NATIVE") == "1"


def paths() -> list:
    """Every kernel path, skipped (with the reason) only where this CPU lacks it."""
    params = []
    for path in native.PATHS:
        marks = []
        if not native.built():
            marks = [pytest.mark.skipif(not REQUIRED, reason="the native kernel is not built")]
        elif path not in native.available_paths():
            marks = [pytest.mark.skip(reason=f"this CPU has no {path}")]
        params.append(pytest.param(path, marks=marks, id=path))
    return params


@pytest.fixture(autouse=True)
def _kernel_built() -> None:
    if REQUIRED and not native.built():
        pytest.fail("NNSWEEP_REQUIRE_NATIVE=1 (a C compiler exists) but the kernel did not build")


def same_bits(a, b) -> bool:
    """Equal as IEEE bit patterns; NaNs match any NaN (the spec fixes no NaN payload)."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype != np.float64:
        return np.array_equal(a, b)
    nan = np.isnan(a) & np.isnan(b)
    return bool(np.all((a.view(np.uint64) == b.view(np.uint64)) | nan))


def assert_same(expected: dict, got: native.BlockResult | dict, where: str = "") -> None:
    def field(name: str):
        return got[name] if isinstance(got, dict) else getattr(got, name)

    names = ("curves", "final_error", "final_output", "diverged", "iterations_reached")
    for name in (*names, "first_below"):
        assert same_bits(expected[name], field(name)), f"{where} {name}"
    for a, b in zip(expected["weights"], field("weights"), strict=True):
        assert same_bits(a, b), f"{where} weights"
    if expected["biases"] is not None:
        for a, b in zip(expected["biases"], field("biases"), strict=True):
            assert same_bits(a, b), f"{where} biases"


# ---------------------------------------------------------------------------------------
# exp
# ---------------------------------------------------------------------------------------


def exp_points(n: int) -> np.ndarray:
    rng = np.random.default_rng(17)
    edges = [
        0.0,
        -0.0,
        1e-300,
        -1e-300,
        5e-324,
        -5e-324,
        2.0**-54,
        -(2.0**-55),
        1.0,
        -1.0,
        0.5 * np.log(2),
        709.78,
        709.7827128933840,
        709.79,
        710.0,
        710.5,
        711.0,
        1e10,
        -708.39,
        -708.4,
        -709.0,
        -744.44,
        -745.1,
        -745.13321910194122,
        -745.2,
        -746.0,
        -746.5,
        -1e10,
        np.inf,
        -np.inf,
        np.nan,
        -np.nan,
        1.7976931348623157e308,
        -1.7976931348623157e308,
        2.2250738585072014e-308,
    ]
    # exact multiples of ln2 / 2 (ties in the reduction) and their neighbours
    k = np.arange(-2200, 2100) * 0.5
    ties = np.concatenate(
        [k * np.log(2), np.nextafter(k * np.log(2), np.inf), np.nextafter(k * np.log(2), -np.inf)]
    )
    parts = [
        np.array(edges),
        ties,
        rng.uniform(-40, 40, n // 4),
        rng.uniform(-750, 720, n // 4),
        rng.standard_normal(n // 4) * np.exp(rng.uniform(-60, 4, n // 4)),
        rng.integers(0, 2**64, n // 4, dtype=np.uint64).view(np.float64),
    ]
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def exp_cases() -> tuple[np.ndarray, np.ndarray]:
    """10M+ values, edges included, and their exp by the numpy implementation (which the
    transcription of the spec gives too)."""
    values = exp_points(10_000_000)
    assert values.size >= 10_000_000
    with np.errstate(all="ignore"):
        expected = portable.exp(values)
        assert same_bits(spec_exp(values), expected)
    return values, expected


@pytest.mark.parametrize("path", paths())
def test_exp_gives_the_numpy_implementations_bits_on_ten_million_points(
    path: str, exp_cases
) -> None:
    values, expected = exp_cases
    assert same_bits(native.exp(values, path), expected)


def test_exp_edges_are_the_specs() -> None:
    """The transcription itself: the edge behaviour the spec states."""
    with np.errstate(all="ignore"):
        got = spec_exp(np.array([np.nan, np.inf, -np.inf, 710.0, -0.0, -746.0, -744.5]))
    assert np.isnan(got[0]) and got[1] == np.inf and got[2] == 0.0 and not np.signbit(got[2])
    assert got[3] == np.inf and got[4] == 1.0 and got[5] == 0.0
    assert got[6] == 5e-324  # a correctly scaled subnormal, not flushed


@pytest.mark.parametrize("path", paths())
def test_exp_is_within_one_ulp_of_the_true_value(path: str) -> None:
    from decimal import Decimal, getcontext

    getcontext().prec = 40
    rng = np.random.default_rng(3)
    values = np.concatenate([rng.uniform(-700, 700, 3000), rng.uniform(-2, 2, 3000)])
    got = native.exp(values, path)
    worst = 0.0
    for x, y in zip(values, got, strict=True):
        true = Decimal(float(x)).exp()
        ulp = np.spacing(float(true))
        worst = max(worst, abs(float(Decimal(float(y)) - true)) / ulp)
    assert worst < 1.5, worst  # "about 1 ulp": the accuracy of the spec, not of a path


# ---------------------------------------------------------------------------------------
# Training: every path, the spec's bits
# ---------------------------------------------------------------------------------------


def random_network(rng: np.random.Generator, index: int) -> dict:
    """A random network nnsweep can train: odd widths, 1 output, many rows, bias, tanh, relu."""
    n_in = int(rng.integers(1, 6))
    n_out = 1 if index % 3 == 0 else int(rng.integers(1, 4))
    hidden = tuple(int(w) for w in rng.integers(1, 12, size=int(rng.integers(1, 4))))
    rows = int(rng.choice([1, 3, 8, 17, 64, 301])) if index % 5 else 320
    hidden_kind = str(rng.choice(list(native.ACTIVATIONS)))
    kinds = [hidden_kind] * len(hidden) + [str(rng.choice(["sigmoid", "sigmoid", "tanh", "relu"]))]
    inputs = rng.choice([0.0, 1.0, -0.5, 0.25, 2.0], size=(rows, n_in))
    if index % 4 == 1:
        inputs = rng.standard_normal((rows, n_in))
    targets = rng.integers(0, 2, size=(rows, n_out)).astype(float)
    n_seeds = int(rng.integers(3, 21))
    units = layer_units(n_in, hidden, n_out)
    weights = init_weights(
        units,
        range(100 * index, 100 * index + n_seeds),
        str(rng.choice(["tutorial", "xavier", "he"])),
    )
    biases = None
    if index % 2:
        biases = [rng.standard_normal((n_seeds, 1, b)) * 0.5 for b in units[1:]]
    lr = float(rng.choice([1.0, 0.5, 0.1, 3.0]))
    if index % 6 == 5:  # relu at a huge rate: overflow to inf, then NaN, for some seeds
        kinds, lr = ["relu"] * len(kinds), 1e150
    iterations = 60 if rows < 100 else 12
    spec = train_spec(
        hidden_layers=hidden,
        activation=kinds[0],
        output_activation=kinds[-1],
        lr=lr,
        bias=biases is not None,
        iterations=iterations,
        log_every=7,
        error_threshold=0.3,
    )
    return {
        "inputs": inputs,
        "targets": targets,
        "weights": weights,
        "biases": biases,
        "kinds": kinds,
        "lr": lr,
        "iterations": iterations,
        "threshold": 0.3,
        "spec": spec,
        "points": training_points(iterations, spec.log_every),
    }


NETWORKS = 24


def run_kernel(path: str, net: dict) -> native.BlockResult:
    return native.train_blocks(
        path,
        net["inputs"],
        net["targets"],
        [w.copy() for w in net["weights"]],
        None if net["biases"] is None else [b.copy() for b in net["biases"]],
        net["kinds"],
        net["lr"],
        net["iterations"],
        net["points"],
        net["threshold"],
    )


def run_spec(net: dict) -> dict:
    with np.errstate(all="ignore"):
        return spec_train(
            net["inputs"],
            net["targets"],
            net["weights"],
            net["biases"],
            net["kinds"],
            net["lr"],
            net["iterations"],
            net["points"],
            net["threshold"],
        )


def run_numpy_implementation(net: dict) -> dict:
    """nnsweep's numpy implementation of the portable arithmetic (portable.py), through the
    trainer's own loop and recorder."""
    with np.errstate(all="ignore"):
        record = train_stacked(
            net["inputs"],
            net["targets"],
            net["spec"],
            [w.copy() for w in net["weights"]],
            None if net["biases"] is None else [b.copy() for b in net["biases"]],
            None,
        )
    return {
        "curves": record.curves,
        "final_error": record.final_error,
        "final_output": record.final_output,
        "diverged": record.diverged,
        "iterations_reached": record.iterations_reached,
        "first_below": record.first_below_threshold,
        "weights": record.weights,
        "biases": record.biases,
    }


@pytest.fixture(scope="module")
def networks() -> list[tuple[dict, dict]]:
    """Random networks with their numbers from the numpy implementation, which the
    transcription of the spec above must give too."""
    rng = np.random.default_rng(2026)
    nets = [random_network(rng, index) for index in range(NETWORKS)]
    pairs = []
    for index, net in enumerate(nets):
        by_numpy = run_numpy_implementation(net)
        assert_same(run_spec(net), by_numpy, f"network {index}: spec vs numpy implementation")
        pairs.append((net, by_numpy))
    return pairs


def test_the_random_networks_cover_what_nnsweep_trains(networks) -> None:
    nets = [net for net, _ in networks]
    assert len(nets) >= 20
    assert sum(net["weights"][0].shape[0] for net in nets) >= 200
    widths = [w.shape[2] for net in nets for w in net["weights"][:-1]]
    assert any(w % 2 for w in widths)
    assert any(net["targets"].shape[1] == 1 for net in nets)
    assert any(net["inputs"].shape[0] >= 300 for net in nets)
    assert any(net["biases"] is not None for net in nets)
    kinds = {kind for net in nets for kind in net["kinds"]}
    assert kinds == {"sigmoid", "tanh", "relu"}
    assert any(net["lr"] != 1.0 for net in nets)
    assert any(spec["diverged"].any() for _, spec in networks)


@pytest.mark.parametrize("path", paths())
def test_every_path_trains_the_numpy_implementations_bits(path: str, networks) -> None:
    """Curves, final errors and outputs, final weights and biases, divergence and threshold
    crossings: identical bits, seed by seed, for every network."""
    for index, (net, by_numpy) in enumerate(networks):
        assert_same(by_numpy, run_kernel(path, net), f"network {index}:")


@pytest.mark.parametrize("path", paths())
def test_tutorial_networks_many_iterations(path: str) -> None:
    """4-8-16-8-2 on Example 2, sigmoid, no biases: the shipped sweeps' networks."""
    units = layer_units(4, (8, 16, 8), 2)
    net = {
        "inputs": EX2_INPUTS.astype(float),
        "targets": EX2_TARGETS.astype(float),
        "weights": init_weights(units, range(1, 12), "tutorial"),
        "biases": None,
        "kinds": ["sigmoid"] * 4,
        "lr": 1.0,
        "iterations": 600,
        "points": np.arange(0, 600, 50),
        "threshold": 0.05,
    }
    assert_same(run_spec(net), run_kernel(path, net))


@pytest.mark.parametrize("path", paths())
def test_a_diverging_seed_stops_alone(path: str) -> None:
    """NaN and inf flow as the spec says; the stopped seed is recorded, the others go on."""
    units = layer_units(4, (8, 8), 2)
    weights = init_weights(units, range(1, 11), "tutorial")
    weights[1][2, 3, 4] = np.nan  # seed 3 stops at iteration 0
    weights[0][5, 0, 0] = np.inf  # seed 6: inf times a zero input is NaN
    weights[2][8, 0, 0] = 1e308  # seed 9: huge but finite
    net = {
        "inputs": EX2_INPUTS.astype(float),
        "targets": EX2_TARGETS.astype(float),
        "weights": weights,
        "biases": None,
        "kinds": ["sigmoid", "relu", "relu"],
        "lr": 0.5,
        "iterations": 40,
        "points": np.arange(40),
        "threshold": 0.01,
    }
    by_spec = run_spec(net)
    assert by_spec["diverged"][[2, 5]].all() and not by_spec["diverged"].all()
    assert_same(by_spec, run_kernel(path, net))


@pytest.mark.parametrize("path", paths())
def test_evaluate_is_the_specs_forward_pass(path: str, networks) -> None:
    for net, _ in networks[:8]:
        margins, outputs = native.evaluate(
            path, net["inputs"], net["targets"], net["weights"], net["biases"], net["kinds"]
        )
        W = [np.moveaxis(w, 0, -1) for w in net["weights"]]
        B = None if net["biases"] is None else [np.moveaxis(b[:, 0], 0, -1) for b in net["biases"]]
        with np.errstate(all="ignore"):
            output = spec_forward(net["inputs"], W, B, net["kinds"])[-1]
            expected = spec_margin(net["targets"][:, :, None] - output)
        assert same_bits(margins, expected)
        assert same_bits(outputs, np.moveaxis(output, -1, 0))


# ---------------------------------------------------------------------------------------
# Choosing a path
# ---------------------------------------------------------------------------------------


def test_a_c_compiler_means_a_built_kernel() -> None:
    """CI's guard: where a compiler exists, ``make`` sets NNSWEEP_REQUIRE_NATIVE=1."""
    if shutil.which("cc") or shutil.which("gcc"):
        assert REQUIRED or native.built(), "a C compiler exists but the kernel is not built"
    if REQUIRED:
        assert native.built() and "scalar" in native.available_paths()


def test_nnsweep_kernel_forces_a_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNSWEEP_KERNEL", "numpy")
    assert native.choose_path(3, ["sigmoid"] * 3) == ("numpy", "")
    for path in native.available_paths():
        monkeypatch.setenv("NNSWEEP_KERNEL", path)
        assert native.choose_path(3, ["sigmoid"] * 3) == (path, "")
    monkeypatch.setenv("NNSWEEP_KERNEL", "auto")
    best = native.available_paths()[0] if native.available_paths() else "numpy"
    assert native.choose_path(3, ["sigmoid"] * 3)[0] == best


def test_an_unknown_or_missing_path_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NNSWEEP_KERNEL", "avx1024")
    with pytest.raises(ConfigError, match="NNSWEEP_KERNEL=avx1024: unknown"):
        native.check_environment()
    missing = [p for p in native.PATHS if p not in native.available_paths()]
    if missing:
        monkeypatch.setenv("NNSWEEP_KERNEL", missing[0])
        with pytest.raises(ConfigError, match=f"NNSWEEP_KERNEL={missing[0]}: ") as error:
            native.check_environment()
        assert "\n" not in str(error.value)
        with pytest.raises(native.KernelUnavailableError):
            native.choose_path(2, ["sigmoid"] * 2)


def test_layouts_round_trip() -> None:
    rng = np.random.default_rng(0)
    layers = [rng.standard_normal((5, a, b)) for a, b in itertools.pairwise([3, 7, 1])]
    flat = native._to_lanes(layers, np.arange(5))
    back = native._from_lanes(flat, [(3, 7), (7, 1)], 5)
    assert all(np.array_equal(a, b) for a, b in zip(layers, back, strict=True))


def test_without_the_kernel_numpy_trains_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    """No C compiler at install time: the numpy implementation gives the same numbers, and
    the result (so provenance) says why it ran."""
    from nnsweep.train.loop import train

    spec = train_spec(hidden_layers=(3,), iterations=20, log_every=5)
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    with_kernel = train(inputs, targets, spec, [1, 2, 3])
    monkeypatch.setattr(native, "built", lambda: False)
    monkeypatch.setattr(native, "available_paths", lambda: ())
    monkeypatch.setenv("NNSWEEP_KERNEL", "auto")
    without = train(inputs, targets, spec, [1, 2, 3])
    assert without.kernel == "numpy" and "not built" in without.kernel_note
    assert same_bits(without.final_error, with_kernel.final_error)
    assert same_bits(without.curves, with_kernel.curves)
    monkeypatch.setenv("NNSWEEP_KERNEL", "native")
    with pytest.raises(native.KernelUnavailableError, match="not built"):
        train(inputs, targets, spec, [1, 2, 3])
