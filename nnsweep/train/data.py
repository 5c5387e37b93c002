"""Datasets: one spec, one registry of kinds, the rows, the held-out split, the arrays.

Every ``dataset.*`` key is declared once, as a field of ``DatasetSpec`` (the Hydra schema
``config.DatasetConf`` is derived from it). Every kind of dataset is one entry of
``KINDS``: the keys it takes, how they are checked, how its rows are made, how it is
labelled in tables. ``dataset_spec`` validates a dataset node into a spec (where the rows
come from, not the rows); ``load_dataset`` makes the rows, splits off the held-out part
and, for classification, standardises the inputs on the training rows and one-hot encodes
the classes. Generated data depends only on its parameters and ``data_seed``, never on the
training seed.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep.checks import show, whole_number
from nnsweep.errors import ConfigError
from nnsweep.train.model import ACTIVATIONS

Arrays = tuple[np.ndarray, np.ndarray]  # (inputs (n, n_in), targets (n, n_out))
Rows = tuple[tuple[float, ...], ...]  # a table's rows, as the config gives them

MAX_SAMPLES = 10**6  # rows a generated dataset may have
MAX_DATA_SEED = 2**32 - 1  # numpy's legacy seeding takes 32 bits


def dataset_key(default: Any, doc: str) -> Any:
    """Declare one ``dataset.*`` key: its default and its one line for ``--help``."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset's validated settings, hashable and free of Hydra: where its rows come from.

    Each field is a ``dataset.*`` key; which kinds take it is in ``KINDS``. Two specs that
    differ in any field are two datasets (and two cells of a sweep).
    """

    name: str = dataset_key("???", "name written into tables and reports")
    kind: str = dataset_key("table", "where the rows come from (see Dataset kinds)")
    inputs: Rows | tuple[str, ...] | None = dataset_key(
        None, "table: input rows; csv: input column names"
    )
    targets: Rows | tuple[str, ...] | None = dataset_key(
        None, "table: target rows; csv: target column names (or give label_column)"
    )
    path: str | None = dataset_key(None, "csv: the file (relative: to where you run)")
    label_column: str | None = dataset_key(
        None, "csv: a column of class labels (classification: one-hot, standardised inputs)"
    )
    bits: int | None = dataset_key(None, "parity: number of input bits")
    n_samples: int | None = dataset_key(None, "moons, circles: rows to generate")
    noise: float | None = dataset_key(None, "moons, circles: sd of the Gaussian jitter")
    data_seed: int = dataset_key(0, "seed of generated rows and of the held-out split")
    holdout: float = dataset_key(0.0, "fraction of rows held out (classes: stratified)")

    @property
    def label(self) -> str:
        """The name written into tables and reports: every key that changes the rows."""
        label = KINDS[self.kind].label(self)
        if self.holdout > 0:
            label = f"{label} holdout={self.holdout}"
            if "seed=" not in label:
                label = f"{label} data_seed={self.data_seed}"
        return label

    @property
    def classification(self) -> bool:
        """Rows come with class labels: standardised inputs, one-hot targets, stratified."""
        return KINDS[self.kind].classes or self.label_column is not None


# Keys every kind takes; the others belong to the kinds that list them in ``KINDS``.
COMMON_KEYS = ("name", "kind", "data_seed", "holdout")
DATASET_KEYS = tuple(f.name for f in fields(DatasetSpec))


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


def _read_table(path: str) -> Any:
    """A CSV file (UTF-8, a header row) as a pandas table of strings, or a one-line error."""
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
            io.StringIO(text),
            dtype=str,
            keep_default_na=False,
            skipinitialspace=True,
            header=None,
        )
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
    return table


def _column(path: str, table: Any, column: str) -> list[str]:
    if column not in table.columns:
        header = list(table.columns)
        shown = ", ".join(header[:20]) + (", ..." if len(header) > 20 else "")
        raise ConfigError(f"{path}: column {column!r} not found; the file has {shown}")
    return table[column].tolist()


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
    table = _read_table(path)
    columns = {
        column: _numeric_column(path, column, _column(path, table, column))
        for column in [*input_columns, *target_columns]
    }
    inputs = np.column_stack([columns[c] for c in input_columns])
    targets = np.column_stack([columns[c] for c in target_columns])
    return inputs, targets


def read_labelled_csv(
    path: str, input_columns: Sequence[str], label_column: str
) -> tuple[np.ndarray, np.ndarray]:
    """Numeric input columns and a column of class labels (any text) of a CSV file.

    Returns inputs, shape (n_samples, n_inputs), and labels, shape (n_samples,) of str.
    Raises ``ConfigError`` as ``read_csv`` does, and for a missing label.
    """
    table = _read_table(path)
    labels = [text.strip() for text in _column(path, table, label_column)]
    for row, text in enumerate(labels, start=1):
        if text == "" or text.lower() == "nan":
            raise ConfigError(f"{path}: column {label_column!r}, row {row}: missing label")
    inputs = np.column_stack(
        [_numeric_column(path, c, _column(path, table, c)) for c in input_columns]
    )
    return inputs, np.array(labels, dtype=str)


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


def stratified_rows(
    classes: np.ndarray, fraction: float, data_seed: int, names: Sequence[str] = ()
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (training, held out) with each class held out in ``fraction``.

    ``classes`` : shape (n_samples,), class index of each row. Each class's held-out rows
    are drawn from ``data_seed`` (round(fraction * class size) of them); both lists are in
    file order. ``names`` : the classes as the data name them, for messages.

    Raises
    ------
    ConfigError
        When a class is too small to have rows in both parts.
    """
    rng = np.random.RandomState(data_seed)
    held = []
    for code in range(int(classes.max()) + 1):
        rows = np.flatnonzero(classes == code)
        n_held = round(fraction * len(rows))
        if fraction > 0 and not 1 <= n_held < len(rows):
            raise ConfigError(
                f"dataset.holdout={fraction}: class {names[code] if names else code!r} has "
                f"{len(rows)} row(s), too few "
                "to have rows both in training and held out"
            )
        held.append(rows[rng.permutation(len(rows))[:n_held]])
    held_rows = np.sort(np.concatenate(held)).astype(np.int64)
    return np.setdiff1d(np.arange(len(classes)), held_rows), held_rows


def standardise(training: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both parts centred and scaled by the training rows' mean and sd (never the held-out
    rows': they stand for data the network has not seen). A constant column is centred."""
    mean = training.mean(axis=0)
    sd = training.std(axis=0)
    sd[sd == 0] = 1.0
    return (training - mean) / sd, (held - mean) / sd


def one_hot(classes: np.ndarray, n_classes: int) -> np.ndarray:
    """Targets for sigmoid outputs: one column per class, or one 0/1 column for two."""
    if n_classes == 2:
        return classes[:, None].astype(np.float64)
    return np.eye(n_classes)[classes]


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


def _check_target_range(spec: DatasetSpec, targets: np.ndarray, output_activation: str) -> None:
    low, high = ACTIVATIONS[output_activation].output_range
    outside = np.argwhere((targets < low) | (targets > high))
    if not len(outside):
        return
    row, column = outside[0]
    value = targets[row, column]
    where = (
        f"{spec.path}: column {spec.targets[column]!r}, row {row + 1}"
        if spec.kind == "csv" and spec.targets
        else f"dataset={spec.name}: target row {row}, column {column}"
    )
    raise ConfigError(
        f"{where}: {value:g} is outside [{low:g}, {high:g}], "
        f"the range of output_activation={output_activation}"
    )


def _class_codes(spec: DatasetSpec, labels: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Class index of each row (classes in sorted order), and the classes' names; one
    class only is refused."""
    names, codes = np.unique(labels, return_inverse=True)
    if len(names) < 2:
        where = f"dataset={spec.name}"
        if spec.path:
            where = f"{spec.path}: column {spec.label_column!r}"
        raise ConfigError(
            f"{where}: one class only ({str(names[0])!r}); a classification needs two"
        )
    return codes.astype(np.int64), [str(n) for n in names]


def load_dataset(spec: DatasetSpec, output_activation: str = "sigmoid") -> Dataset:
    """Make the rows of a validated spec, check them, split off the holdout.

    Classification data (a label column, the real datasets) is split stratified by class,
    its inputs standardised with the training rows' statistics only, and its classes
    one-hot encoded for sigmoid outputs.

    Raises
    ------
    ConfigError
        In one line naming the file (column, row) or the dataset: a CSV that cannot be
        used, a target outside ``output_activation``'s range, a holdout that leaves either
        part (or a class) without rows, a label column with one class.
    """
    inputs, targets = KINDS[spec.kind].make(spec)
    if spec.classification:
        classes, names = _class_codes(spec, targets)
        training, held = stratified_rows(classes, spec.holdout, spec.data_seed, names)
        targets = one_hot(classes, int(classes.max()) + 1)
        train_inputs, held_inputs = standardise(inputs[training], inputs[held])
    else:
        training, held = holdout_rows(len(inputs), spec.holdout, spec.data_seed)
        train_inputs, held_inputs = inputs[training], inputs[held]
    _check_target_range(spec, targets, output_activation)
    return Dataset(
        name=spec.label,
        inputs=_frozen(train_inputs),
        targets=_frozen(targets[training]),
        holdout_inputs=_frozen(held_inputs),
        holdout_targets=_frozen(targets[held]),
    )


# --------------------------------------------------------------------------------------
# The kinds: what each takes, how it is checked, made and labelled
# --------------------------------------------------------------------------------------


def _matrix(key: str, rows: Any) -> Rows:
    if not isinstance(rows, list | tuple) or isinstance(rows, str) or not rows:
        raise ConfigError(f"{key}: must be a non-empty list of rows of numbers")
    width = None
    parsed = []
    for row_number, row in enumerate(rows):
        if not isinstance(row, list | tuple) or isinstance(row, str) or not row:
            raise ConfigError(f"{key}[{row_number}]={show(row)}: must be a list of numbers")
        values = []
        for value in row:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{key}[{row_number}]: {show(value)} is not a number")
            if not math.isfinite(value):
                raise ConfigError(f"{key}[{row_number}]: {show(value)} is not finite")
            values.append(float(value))
        if width is not None and len(values) != width:
            raise ConfigError(
                f"{key}[{row_number}]: has {len(values)} values but row 0 has {width}"
            )
        width = len(values)
        parsed.append(tuple(values))
    return tuple(parsed)


def _columns(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(v, str) for v in value)
    ):
        raise ConfigError(f"{key}={show(value)}: give a list of column names, e.g. [x1, x2]")
    return tuple(value)


def _check_table(raw: Mapping[str, Any]) -> dict[str, Any]:
    inputs = _matrix("dataset.inputs", raw.get("inputs"))
    targets = _matrix("dataset.targets", raw.get("targets"))
    if len(inputs) != len(targets):
        raise ConfigError(
            f"dataset={raw['name']}: {len(inputs)} input rows but {len(targets)} target rows"
        )
    return {"inputs": inputs, "targets": targets}


def _check_csv(raw: Mapping[str, Any]) -> dict[str, Any]:
    path = raw.get("path")
    if not isinstance(path, str) or not path:
        raise ConfigError(f"dataset.path={show(path)}: give the CSV file's path")
    checked = {"path": path, "inputs": _columns("dataset.inputs", raw.get("inputs"))}
    label = raw.get("label_column")
    if label is None:
        if raw.get("targets") is None:
            raise ConfigError(
                "dataset.targets: give the target columns, e.g. dataset.targets=[y], or a "
                "column of class labels, e.g. dataset.label_column=species"
            )
        checked["targets"] = _columns("dataset.targets", raw.get("targets"))
        return checked
    if raw.get("targets") is not None:
        raise ConfigError(
            f"dataset.label_column={show(label)}: give either targets (numbers) or "
            "label_column (classes), not both"
        )
    if not isinstance(label, str) or not label:
        raise ConfigError(f"dataset.label_column={show(label)}: give one column name")
    return {**checked, "label_column": label}


def _check_parity(raw: Mapping[str, Any]) -> dict[str, Any]:
    bits = whole_number("dataset.bits", raw.get("bits"), 1)
    if bits > 16:
        raise ConfigError(f"dataset.bits={bits}: at most 16 (2**bits rows)")
    return {"bits": bits}


def _check_generated(raw: Mapping[str, Any]) -> dict[str, Any]:
    n_samples = whole_number("dataset.n_samples", raw.get("n_samples"), 2, MAX_SAMPLES)
    noise = raw.get("noise")
    if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise < 10:
        raise ConfigError(f"dataset.noise={show(noise)}: must be a number in [0, 10)")
    # -0.0 is 0.0 (numpy refuses a negative-signed scale)
    return {"n_samples": n_samples, "noise": float(noise + 0.0)}


def _check_nothing(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def _make_table(spec: DatasetSpec) -> Arrays:
    return np.array(spec.inputs, dtype=np.float64), np.array(spec.targets, dtype=np.float64)


def _make_csv(spec: DatasetSpec) -> Arrays:
    assert spec.path is not None and spec.inputs is not None
    if spec.label_column is not None:
        return read_labelled_csv(spec.path, spec.inputs, spec.label_column)  # type: ignore[arg-type]
    return read_csv(spec.path, spec.inputs, spec.targets)  # type: ignore[arg-type]


def _make_parity(spec: DatasetSpec) -> Arrays:
    assert spec.bits is not None
    return parity(spec.bits)


def _make_moons(spec: DatasetSpec) -> Arrays:
    assert spec.n_samples is not None and spec.noise is not None
    return two_moons(spec.n_samples, spec.noise, spec.data_seed)


def _make_circles(spec: DatasetSpec) -> Arrays:
    assert spec.n_samples is not None and spec.noise is not None
    return circles(spec.n_samples, spec.noise, spec.data_seed)


# scikit-learn's loaders of the data sets bundled inside its package (nothing downloaded).
SKLEARN_LOADERS = {
    "iris": "load_iris",
    "wine": "load_wine",
    "breast_cancer": "load_breast_cancer",
    "digits": "load_digits",
}


def _make_bundled(spec: DatasetSpec) -> Arrays:
    """Inputs and class labels of one of scikit-learn's bundled data sets."""
    try:
        import sklearn.datasets
    except ImportError:
        raise ConfigError(
            f"dataset={spec.name}: needs scikit-learn's bundled data; pip install 'nnsweep[real]'"
        ) from None
    inputs, labels = getattr(sklearn.datasets, SKLEARN_LOADERS[spec.kind])(return_X_y=True)
    return np.asarray(inputs, dtype=np.float64), np.asarray(labels)


def _label_name(spec: DatasetSpec) -> str:
    return spec.name


def _label_csv(spec: DatasetSpec) -> str:
    columns = f"inputs=[{','.join(spec.inputs or ())}]"
    if spec.label_column is not None:
        columns += f", label_column={spec.label_column}"
    else:
        columns += f", targets=[{','.join(spec.targets or ())}]"  # type: ignore[arg-type]
    return f"{spec.name}({Path(spec.path or '').name}, {columns})"


def _label_parity(spec: DatasetSpec) -> str:
    return f"{spec.name}(bits={spec.bits})"


def _label_generated(spec: DatasetSpec) -> str:
    return f"{spec.name}(n={spec.n_samples}, noise={spec.noise}, seed={spec.data_seed})"


@dataclass(frozen=True)
class DatasetKind:
    """One kind of dataset: its own keys, their check, its rows, its label."""

    doc: str  # one line for --help
    keys: tuple[str, ...]  # the keys it takes besides COMMON_KEYS
    check: Callable[[Mapping[str, Any]], dict[str, Any]]  # raw node -> its checked fields
    make: Callable[[DatasetSpec], Arrays]  # spec -> (inputs, targets or class labels)
    label: Callable[[DatasetSpec], str]  # spec -> name in tables (holdout added after)
    classes: bool = False  # make gives class labels (always a classification)


_BUNDLED = "scikit-learn's bundled data, classes: pip install 'nnsweep[real]'"
KINDS: dict[str, DatasetKind] = {
    "table": DatasetKind(
        "rows written out in the config",
        ("inputs", "targets"),
        _check_table,
        _make_table,
        _label_name,
    ),
    "csv": DatasetKind(
        "your CSV file: numeric target columns, or a label column",
        ("path", "inputs", "targets", "label_column"),
        _check_csv,
        _make_csv,
        _label_csv,
    ),
    "parity": DatasetKind(
        "every n-bit input, target 1 for an odd count",
        ("bits",),
        _check_parity,
        _make_parity,
        _label_parity,
    ),
    "moons": DatasetKind(
        "generated 2-D points of two classes",
        ("n_samples", "noise"),
        _check_generated,
        _make_moons,
        _label_generated,
    ),
    "circles": DatasetKind(
        "generated 2-D points of two classes",
        ("n_samples", "noise"),
        _check_generated,
        _make_circles,
        _label_generated,
    ),
    **{
        name: DatasetKind(_BUNDLED, (), _check_nothing, _make_bundled, _label_name, classes=True)
        for name in SKLEARN_LOADERS
    },
}


def _foreign_key(kind: str, name: str, key_name: str, value: Any) -> ConfigError:
    """A key that the chosen dataset's kind does not take, with where it does belong."""
    owners = [k for k, info in KINDS.items() if key_name in info.keys]
    hint = " or ".join(f"dataset={k}" for k in owners if k != "table") or "another dataset"
    if "csv" in owners:
        hint += ", e.g. dataset=csv dataset.path=data.csv dataset.inputs=[x] dataset.targets=[y]"
    return ConfigError(
        f"dataset.{key_name}={show(value)}: dataset {name} (kind {kind}) has no {key_name}; "
        f"choose {hint}"
    )


def dataset_spec(raw: Mapping[str, Any]) -> DatasetSpec:
    """Validate a dataset node (plain mapping) into a spec; ``load_dataset`` makes its rows.

    Raises
    ------
    ConfigError
        On the first bad value, and for a key the chosen kind does not take
        (``dataset.path=x.csv`` on the tutorial's table).
    """
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"dataset.name={show(name)}: must be a non-empty string")
    kind = raw.get("kind", "table")
    if kind not in KINDS:
        raise ConfigError(f"dataset.kind={show(kind)}: unknown; choose one of {', '.join(KINDS)}")
    info = KINDS[kind]
    for key_name, value in raw.items():
        if value is not None and key_name not in (*COMMON_KEYS, *info.keys):
            raise _foreign_key(kind, name, str(key_name), value)
    source = info.check(raw)
    fraction = raw.get("holdout", 0.0) or 0.0
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        raise ConfigError(f"dataset.holdout={show(fraction)}: must be a fraction in [0, 1)")
    data_seed = whole_number("dataset.data_seed", raw.get("data_seed", 0), 0, MAX_DATA_SEED)
    return DatasetSpec(name=name, kind=kind, data_seed=data_seed, holdout=float(fraction), **source)


def kinds_help() -> list[str]:
    """``--help``'s lines: each kind's own keys (kinds with the same keys together), wrapped;
    the keys every kind takes are ``COMMON_KEYS``."""
    import textwrap

    by_keys: dict[tuple[str, ...], list[str]] = {}
    for kind, info in KINDS.items():
        by_keys.setdefault(info.keys, []).append(kind)
    entries = [
        f"{', '.join(kinds)}: "
        + (", ".join(keys) or f"no keys of their own ({KINDS[kinds[0]].doc})")
        for keys, kinds in by_keys.items()
    ]
    entries.insert(0, f"every kind: {', '.join(COMMON_KEYS)}")
    text = "; ".join(entries)
    return textwrap.wrap(
        text, width=96, initial_indent="  ", subsequent_indent="  ", break_on_hyphens=False
    )
