"""The golden file: every machine and every path must reproduce these per-seed numbers.

``tests/golden/portable_v1.txt`` holds the final error of every seed of a small fixed sweep
(odd widths, one output, biases, tanh and relu, four inits, lr != 1, 301 rows), as hex
floats. It was written once by the numpy implementation of the portable arithmetic; a CPU,
BLAS, libm or kernel path that changes one bit of one seed fails here. Rewrite it only when
the arithmetic's version changes (``python tests/test_golden.py``).
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from pathlib import Path

import numpy as np

from nnsweep.config import TrainSpec, train_spec
from nnsweep.train import portable
from nnsweep.train.loop import train

GOLDEN = Path(__file__).resolve().parent / "golden" / f"portable_v{portable.VERSION}.txt"

EX2_INPUTS = [[0, a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
EX2_TARGETS = [[1, 0], [1, 1], [1, 1], [1, 0], [1, 1], [0, 1], [0, 0], [1, 1]]
EX1_INPUTS = [[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)]
EX1_TARGETS = [[0], [1], [1], [0], [1], [1], [1], [1]]
PARITY4_INPUTS = [list(bits) for bits in itertools.product((0, 1), repeat=4)]
PARITY4_TARGETS = [[sum(bits) % 2] for bits in PARITY4_INPUTS]


def _noisy_rows() -> tuple[np.ndarray, np.ndarray]:
    """301 rows, 2 inputs, 1 noisy label: drawn by RandomState's integer-exact uniform
    stream, so the data are the same bits everywhere."""
    rng = np.random.RandomState(2024)
    inputs = rng.uniform(-2, 2, (301, 2))
    noise = rng.uniform(-0.5, 0.5, 301)
    targets = (inputs[:, 0] * inputs[:, 1] + noise > 0).astype(float)[:, None]
    return inputs, targets


@dataclasses.dataclass(frozen=True)
class GoldenCell:
    name: str
    data: str
    spec: TrainSpec
    seeds: tuple[int, ...]


def _spec(hidden: tuple[int, ...], iterations: int, **changes) -> TrainSpec:
    return train_spec(hidden_layers=hidden, iterations=iterations, log_every=iterations, **changes)


CELLS = [
    GoldenCell("ex2-8-16-8", "ex2", _spec((8, 16, 8), 300), tuple(range(1, 25))),
    GoldenCell(
        "ex2-5-3-tanh-bias",
        "ex2",
        _spec((5, 3), 300, activation="tanh", bias=True, lr=0.5, init="xavier"),
        tuple(range(1, 25)),
    ),
    GoldenCell("ex1-7", "ex1", _spec((7,), 400), tuple(range(1, 25))),
    GoldenCell(
        "parity4-9-3-relu-bias",
        "parity4",
        _spec((9, 3), 300, activation="relu", bias=True, lr=0.3, init="he"),
        tuple(range(1, 25)),
    ),
    GoldenCell(
        "noisy301-5-tanh",
        "noisy301",
        _spec(
            (5,),
            60,
            activation="tanh",
            output_activation="tanh",
            bias=True,
            lr=0.01,
            init="glorot",
        ),
        tuple(range(1, 13)),
    ),
]


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    tables = {
        "ex2": (EX2_INPUTS, EX2_TARGETS),
        "ex1": (EX1_INPUTS, EX1_TARGETS),
        "parity4": (PARITY4_INPUTS, PARITY4_TARGETS),
    }
    if name == "noisy301":
        return _noisy_rows()
    inputs, targets = tables[name]
    return np.array(inputs, dtype=float), np.array(targets, dtype=float)


def golden_lines() -> list[str]:
    """``cell seed final_error`` per seed, the error as ``float.hex``."""
    lines = []
    with np.errstate(all="ignore"):
        for cell in CELLS:
            inputs, targets = _data(cell.data)
            result = train(inputs, targets, cell.spec, list(cell.seeds))
            for seed, error in zip(cell.seeds, result.final_error.tolist(), strict=True):
                lines.append(f"{cell.name} {seed} {float(error).hex()}")
    return lines


def test_the_golden_file_is_reproduced_bit_for_bit(portable_path: str) -> None:
    expected = [
        line for line in GOLDEN.read_text().splitlines() if line and not line.startswith("#")
    ]
    got = golden_lines()
    assert len(expected) == len(got) == sum(len(cell.seeds) for cell in CELLS)
    different = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
    assert not different, f"{len(different)} seeds differ, first: {different[:3]}"


def test_the_golden_comparison_can_fail() -> None:
    """One ulp of one seed's error shows as a different line."""
    line = f"x 1 {(0.1).hex()}"
    changed = f"x 1 {np.nextafter(0.1, 1.0).hex()}"
    assert line != changed


if __name__ == "__main__":
    header = [
        f"# Portable arithmetic v{portable.VERSION}: final error of every seed, as float.hex.",
        "# Written by: python tests/test_golden.py (only when the arithmetic's version changes)",
        "# cell seed final_error",
    ]
    GOLDEN.parent.mkdir(exist_ok=True)
    GOLDEN.write_text("\n".join([*header, *golden_lines()]) + "\n")
    print(f"wrote {GOLDEN}", file=sys.stderr)
