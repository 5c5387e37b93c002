"""The kernel's scalar path on another architecture gives the same bits (issue 17's stretch).

Cross-compiles ``tests/cross/golden_driver.c`` (which includes ``_kernel.c``) for aarch64,
runs it under qemu-user, and compares every curve point, final margin and final weight with
the numpy transcription of the spec computed here on the host. Needs Debian's
``gcc-aarch64-linux-gnu`` and ``qemu-user``; skipped (saying so) where they are missing.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import EX2_INPUTS, EX2_TARGETS, PROJECT_ROOT
from test_native import run_spec, same_bits, spec_forward, spec_margin

from nnsweep.train import native
from nnsweep.train.model import init_weights, layer_units

CROSS_GCC = "aarch64-linux-gnu-gcc"
QEMU = "qemu-aarch64"


def cases() -> list[dict]:
    rng = np.random.default_rng(11)
    tutorial = {
        "inputs": EX2_INPUTS.astype(float),
        "targets": EX2_TARGETS.astype(float),
        "weights": init_weights(layer_units(4, (8, 16, 8), 2), range(1, 5), "tutorial"),
        "biases": None,
        "kinds": ["sigmoid"] * 4,
        "lr": 1.0,
        "iterations": 3000,
        "points": np.arange(0, 3000, 250),
        "threshold": 0.01,
    }
    units = layer_units(3, (5, 3), 1)
    mixed = {
        "inputs": rng.standard_normal((41, 3)),
        "targets": rng.integers(0, 2, (41, 1)) * 1.0,
        "weights": init_weights(units, range(7, 10), "xavier"),
        "biases": [rng.standard_normal((3, 1, b)) for b in units[1:]],
        "kinds": ["tanh", "relu", "sigmoid"],
        "lr": 0.3,
        "iterations": 300,
        "points": np.arange(0, 300, 20),
        "threshold": 0.01,
    }
    units = layer_units(2, (4,), 2)
    diverging = {
        "inputs": rng.standard_normal((9, 2)),
        "targets": rng.integers(0, 2, (9, 2)) * 1.0,
        "weights": init_weights(units, range(3), "he"),
        "biases": None,
        "kinds": ["relu", "relu"],
        "lr": 1e200,
        "iterations": 20,
        "points": np.arange(20),
        "threshold": 0.01,
    }
    return [tutorial, mixed, diverging]


def hex_line(values) -> str:
    return " ".join(float(v).hex() for v in np.asarray(values, dtype=np.float64).ravel())


def driver_input(nets: list[dict]) -> str:
    lines = [str(len(nets))]
    for net in nets:
        units = [net["weights"][0].shape[1], *(w.shape[2] for w in net["weights"])]
        kinds = [native.ACTIVATIONS[k] for k in net["kinds"]]
        n_seeds = net["weights"][0].shape[0]
        lines.append(
            " ".join(map(str, [len(units) - 1, *units, *kinds, int(net["biases"] is not None)]))
        )
        lines.append(f"{net['inputs'].shape[0]} {float(net['lr']).hex()} {net['iterations']}")
        lines.append(" ".join(map(str, [len(net["points"]), *net["points"], n_seeds])))
        lines += [hex_line(net["inputs"]), hex_line(net["targets"])]
        for s in range(n_seeds):
            lines.append(hex_line(np.concatenate([w[s].ravel() for w in net["weights"]])))
            if net["biases"] is not None:
                lines.append(hex_line(np.concatenate([b[s].ravel() for b in net["biases"]])))
    return "\n".join(lines) + "\n"


def expected_lines(net: dict) -> list[list[float]]:
    spec = run_spec(net)
    W = [np.moveaxis(w, 0, -1) for w in spec["weights"]]
    B = None if spec["biases"] is None else [np.moveaxis(b[:, 0], 0, -1) for b in spec["biases"]]
    with np.errstate(all="ignore"):
        output = spec_forward(net["inputs"], W, B, net["kinds"])[-1]
        scored = spec_margin(net["targets"][:, :, None] - output)
    rows = []
    for s in range(net["weights"][0].shape[0]):
        row = [
            -1.0 if spec["diverged"][s] else 1.0,
            float(spec["iterations_reached"][s]),
            *spec["curves"][s],
            spec["final_error"][s],
            *np.concatenate([w[s].ravel() for w in spec["weights"]]),
        ]
        if spec["biases"] is not None:
            row += list(np.concatenate([b[s].ravel() for b in spec["biases"]]))
        row.append(spec["final_error"][s] if spec["diverged"][s] else scored[s])
        rows.append(row)
    return rows


def _cross_built_driver(tmp_path: Path) -> Path:
    """tests/cross/golden_driver.c built for aarch64 as the kernel is (no contraction)."""
    driver = tmp_path / "driver"
    source = PROJECT_ROOT / "tests" / "cross" / "golden_driver.c"
    flags = ["-O2", "-std=c99", "-ffp-contract=off", "-fno-fast-math", "-static"]
    subprocess.run([CROSS_GCC, *flags, str(source), "-lm", "-o", str(driver)], check=True)
    return driver


@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which(CROSS_GCC) and shutil.which(QEMU)),
    reason=f"needs {CROSS_GCC} and {QEMU} (apt-get install gcc-aarch64-linux-gnu qemu-user)",
)
def test_the_scalar_path_on_aarch64_gives_the_same_bits(tmp_path: Path) -> None:
    driver = _cross_built_driver(tmp_path)
    nets = cases()
    done = subprocess.run(
        [QEMU, str(driver)], input=driver_input(nets), capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    got = [[float.fromhex(v) for v in line.split()] for line in done.stdout.splitlines()]
    expected = [row for net in nets for row in expected_lines(net)]
    assert len(got) == len(expected) == 10
    for index, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert same_bits(np.array(a), np.array(b)), f"seed row {index}"
    assert any(row[0] == -1.0 for row in got)  # the diverging case diverged


@pytest.mark.slow
@pytest.mark.skipif(
    not (shutil.which(CROSS_GCC) and shutil.which(QEMU)),
    reason=f"needs {CROSS_GCC} and {QEMU} (apt-get install gcc-aarch64-linux-gnu qemu-user)",
)
def test_the_golden_file_on_aarch64(tmp_path: Path) -> None:
    """tests/golden: every seed's final error, trained and scored by the scalar path on
    aarch64, is the golden file's, bit for bit."""
    import test_golden

    nets, names = [], []
    for cell in test_golden.CELLS:
        inputs, targets = test_golden._data(cell.data)
        spec = cell.spec
        units = layer_units(inputs.shape[1], spec.hidden_layers, targets.shape[1])
        n_seeds = len(cell.seeds)
        nets.append(
            {
                "inputs": inputs,
                "targets": targets,
                "weights": init_weights(units, cell.seeds, spec.init),
                "biases": [np.zeros((n_seeds, 1, b)) for b in units[1:]] if spec.bias else None,
                "kinds": [spec.activation] * (len(units) - 2) + [spec.output_activation],
                "lr": spec.lr,
                "iterations": spec.iterations,
                "points": np.array([0]),
            }
        )
        names += [f"{cell.name} {seed}" for seed in cell.seeds]
    driver = _cross_built_driver(tmp_path)
    done = subprocess.run(
        [QEMU, str(driver)], input=driver_input(nets), capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr
    got = [
        f"{name} {float.fromhex(line.split()[-1]).hex()}"
        for name, line in zip(names, done.stdout.splitlines(), strict=True)
    ]
    expected = [
        line
        for line in test_golden.GOLDEN.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert got == expected
