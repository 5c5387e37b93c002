"""Datasets: the user's CSV, generated problems, the held-out split, and the arrays.

``config`` validates a dataset's settings into a ``DatasetSpec`` (where the rows come from,
not the rows); ``load_dataset`` reads or generates the rows from it, checks them and splits
off the held-out part. The job loads its data this way, and so does the check that refuses
a bad file before anything runs. Generated data depends only on its parameters and
``data_seed``, never on the training seed.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nnsweep.errors import ConfigError
from nnsweep.train.model import ACTIVATIONS

Arrays = tuple[np.ndarray, np.ndarray]  # (inputs (n, n_in), targets (n, n_out))
Rows = tuple[tuple[float, ...], ...]  # a table's rows, as the config gives them


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's validated settings, hashable and free of Hydra: where its rows come from.

    The fields are those of ``conf/dataset/*.yaml``; ``load_dataset`` builds the arrays.
    """

    name: str  # the config's name
    kind: str = "table"  # table (inline rows), csv, parity, moons or circles
    inputs: Rows | tuple[str, ...] = ()  # table: input rows; csv: input column names
    targets: Rows | tuple[str, ...] = ()  # table: target rows; csv: target column names
    path: str | None = None  # csv: the file (anchored where the user launched)
    bits: int | None = None  # parity: number of input bits
    n_samples: int | None = None  # moons, circles: rows to generate
    noise: float | None = None  # moons, circles: sd of the jitter
    data_seed: int = 0  # seed of generated rows and of the held-out split
    holdout: float = 0.0  # fraction of rows held out from training

    @property
    def label(self) -> str:
        """The name written into tables and reports, generator parameters included."""
        label = self.name
        if self.kind == "parity":
            label = f"{self.name}(bits={self.bits})"
        elif self.kind in ("moons", "circles"):
            label = f"{self.name}(n={self.n_samples}, noise={self.noise}, seed={self.data_seed})"
        return f"{label} holdout={self.holdout}" if self.holdout > 0 else label


# --------------------------------------------------------------------------------------
# Generated problems
# --------------------------------------------------------------------------------------


def parity(bits: int) -> Arrays:
    """Every ``bits``-bit input; the target is 1 when an odd number of bits are set."""
    inputs = np.array(
        [[(row >> (bits - 1 - k)) & 1 for k in range(bits)] for row in range(2**bits)],
        dtype=np.float64,
    )
    targets = (inputs.sum(axis=1, keepdims=True) % 2).astype(np.float64)
    return inputs, targets


def two_moons(n_samples: int, noise: float, data_seed: int) -> Arrays:
    """Two interleaved half circles (class 0 on top), jittered by Gaussian ``noise``."""
    rng = np.random.RandomState(data_seed)
    n_top = n_samples // 2
    n_bottom = n_samples - n_top
    top = np.linspace(0, np.pi, n_top)
    bottom = np.linspace(0, np.pi, n_bottom)
    inputs = np.vstack(
        [
            np.column_stack([np.cos(top), np.sin(top)]),
            np.column_stack([1 - np.cos(bottom), 0.5 - np.sin(bottom)]),
        ]
    )
    inputs += rng.normal(scale=noise, size=inputs.shape)
    targets = np.concatenate([np.zeros(n_top), np.ones(n_bottom)])[:, None]
    return inputs, targets


def circles(n_samples: int, noise: float, data_seed: int, factor: float = 0.5) -> Arrays:
    """Two concentric circles (class 1 inside, radius ``factor``), jittered by ``noise``."""
    rng = np.random.RandomState(data_seed)
    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    outer = np.linspace(0, 2 * np.pi, n_outer, endpoint=False)
    inner = np.linspace(0, 2 * np.pi, n_inner, endpoint=False)
    inputs = np.vstack(
        [
            np.column_stack([np.cos(outer), np.sin(outer)]),
            factor * np.column_stack([np.cos(inner), np.sin(inner)]),
        ]
    )
    inputs += rng.normal(scale=noise, size=inputs.shape)
    targets = np.concatenate([np.zeros(n_outer), np.ones(n_inner)])[:, None]
    return inputs, targets


# --------------------------------------------------------------------------------------
# The user's CSV
# --------------------------------------------------------------------------------------


# What a column name may look like. A header that is not made of such names is not echoed
# back: the "file" may be anything the user mistyped, /etc/shadow included.
_COLUMN_NAME = re.compile(r"^[\w .()\[\]/%+#-]{1,64}$")
# A number as a user writes one in a table: no '_' digit groups (float() takes "1_0" as 10).
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^[+-]?(nan|inf|infinity)$", re.I)


def read_csv(path: str, input_columns: Sequence[str], target_columns: Sequence[str]) -> Arrays:
    """Numeric input and target columns of a CSV file (UTF-8) with a header row.

    Raises
    ------
    ConfigError
        Naming the file, and the column and row (1 = first data row) where that applies:
        missing or unreadable file, not UTF-8 text, empty file, a header that is not a row
        of column names, a duplicated column name, missing column, a value that is not a
        number, NaN. The file's content is never quoted, except cells of the named columns.
    """
    import pandas as pd

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"dataset.path={path}: no such file")
    try:
        text = file.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise ConfigError(f"dataset.path={path}: cannot be read ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file") from None
    try:
        table = pd.read_csv(
            io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True,
            header=None,
        )  # fmt: skip
    except pd.errors.EmptyDataError:
        raise ConfigError(f"{path}: the file is empty") from None
    except pd.errors.ParserError:
        raise ConfigError(f"{path}: not a CSV table (rows of comma-separated values)") from None
    header = [str(name).strip() for name in table.iloc[0]]
    if not all(_COLUMN_NAME.match(name) for name in header):
        raise ConfigError(
            f"{path}: its first line is not a header of comma-separated column names "
            f"({len(header)} field(s) found)"
        )
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise ConfigError(f"{path}: column name(s) {', '.join(map(repr, repeated))} repeated")
    table = table.iloc[1:].set_axis(header, axis=1)
    if table.empty:
        raise ConfigError(f"{path}: the file has a header but no rows")
    columns = {}
    for column in [*input_columns, *target_columns]:
        if column not in table.columns:
            shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
            raise ConfigError(f"{path}: column {column!r} not found; the file has {shown}")
        columns[column] = _numeric_column(path, column, table[column].tolist())
    inputs = np.column_stack([columns[c] for c in input_columns])
    targets = np.column_stack([columns[c] for c in target_columns])
    return inputs, targets


def _numeric_column(path: str, column: str, cells: list[str]) -> np.ndarray:
    values = np.empty(len(cells))
    for row, text in enumerate(cells, start=1):
        text = text.strip()
        if text == "":
            raise ConfigError(f"{path}: column {column!r}, row {row}: missing value")
        if not _NUMBER.match(text):
            raise ConfigError(f"{path}: column {column!r}, row {row}: {text!r} is not a number")
        value = float(text)
        if math.isnan(value):
            raise ConfigError(f"{path}: column {column!r}, row {row}: missing value (NaN)")
        if math.isinf(value):
            raise ConfigError(f"{path}: column {column!r}, row {row}: {text!r} is not finite")
        values[row - 1] = value
    return values


# --------------------------------------------------------------------------------------
# Held-out split and the arrays the trainer takes
# --------------------------------------------------------------------------------------


def holdout_rows(n_rows: int, fraction: float, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (training, held out), both in file order, drawn from ``data_seed``."""
    n_held = round(fraction * n_rows)
    if fraction > 0 and not 1 <= n_held < n_rows:
        raise ConfigError(
            f"dataset.holdout={fraction}: holds out {n_held} of {n_rows} rows; "
            "both parts need at least one row"
        )
    held = np.sort(np.random.RandomState(data_seed).permutation(n_rows)[:n_held])
    training = np.setdiff1d(np.arange(n_rows), held)
    return training, held


@dataclass(frozen=True, eq=False)
class Dataset:
    """Training data (and the optional held-out part) as read-only float64 arrays.

    Attributes
    ----------
    name : str
    inputs : ndarray, shape (n_samples, n_inputs)
    targets : ndarray, shape (n_samples, n_outputs)
    holdout_inputs : ndarray, shape (n_held, n_inputs); n_held may be 0
    holdout_targets : ndarray, shape (n_held, n_outputs)
    """

    name: str
    inputs: np.ndarray
    targets: np.ndarray
    holdout_inputs: np.ndarray
    holdout_targets: np.ndarray

    @property
    def has_holdout(self) -> bool:
        return len(self.holdout_inputs) > 0

    def fingerprint(self) -> str:
        """SHA-256 of the shapes and bytes of every array: same data, same key."""
        digest = hashlib.sha256()
        arrays = [self.inputs, self.targets]
        if self.has_holdout:
            arrays += [self.holdout_inputs, self.holdout_targets]
        for array in arrays:
            digest.update(repr(array.shape).encode())
            digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
        return digest.hexdigest()


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array, dtype=np.float64)
    array.setflags(write=False)
    return array


def _source(spec: DatasetSpec) -> Arrays:
    """The dataset's full arrays (every row, before the held-out split), by kind."""
    if spec.kind == "table":
        return np.array(spec.inputs, dtype=np.float64), np.array(spec.targets, dtype=np.float64)
    if spec.kind == "csv":
        assert spec.path is not None
        return read_csv(spec.path, spec.inputs, spec.targets)  # type: ignore[arg-type]
    if spec.kind == "parity":
        assert spec.bits is not None
        return parity(spec.bits)
    assert spec.n_samples is not None and spec.noise is not None
    make = two_moons if spec.kind == "moons" else circles
    return make(spec.n_samples, spec.noise, spec.data_seed)


def _check_target_range(spec: DatasetSpec, targets: np.ndarray, output_activation: str) -> None:
    low, high = ACTIVATIONS[output_activation].output_range
    outside = np.argwhere((targets < low) | (targets > high))
    if not len(outside):
        return
    row, column = outside[0]
    value = targets[row, column]
    where = (
        f"{spec.path}: column {spec.targets[column]!r}, row {row + 1}"
        if spec.kind == "csv"
        else f"dataset={spec.name}: target row {row}, column {column}"
    )
    raise ConfigError(
        f"{where}: {value:g} is outside [{low:g}, {high:g}], "
        f"the range of output_activation={output_activation}"
    )


def load_dataset(spec: DatasetSpec, output_activation: str = "sigmoid") -> Dataset:
    """Read or generate the rows of a validated spec, check them, split off the holdout.

    Raises
    ------
    ConfigError
        In one line naming the file (column, row) or the dataset: a CSV that cannot be
        used, a target outside ``output_activation``'s range, a holdout that leaves either
        part without rows.
    """
    inputs, targets = _source(spec)
    _check_target_range(spec, targets, output_activation)
    training, held = holdout_rows(len(inputs), spec.holdout, spec.data_seed)
    return Dataset(
        name=spec.label,
        inputs=_frozen(inputs[training]),
        targets=_frozen(targets[training]),
        holdout_inputs=_frozen(inputs[held]),
        holdout_targets=_frozen(targets[held]),
    )
