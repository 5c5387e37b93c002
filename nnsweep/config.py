"""Configuration: Hydra's schema at the edge, frozen dataclasses everywhere below it.

Two families of dataclasses live here.

* ``*Conf`` classes are the typed structured-config schema that ``conf/config.yaml`` extends.
  Every setting is declared there once, with ``setting(default, doc, ...)``: its type, its
  default, its one-line doc, the check its type cannot express, and whether it changes a
  seed's numbers. Everything else is derived from that declaration: the validated
  ``TrainSpec``, the per-seed cache key (``train_key_fields``), the table columns
  (``CELL_COLUMNS``), the settings of ``--help`` and the README's settings table.
* ``RunConfig``, ``TrainSpec`` and ``DatasetSpec`` are the frozen, validated objects that
  the trainer, the job runner and the analysis take. Nothing below the CLI sees Hydra.

``to_run_config`` is the single bridge between the two.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Optional

import numpy as np

from nnsweep import data
from nnsweep.data import DatasetSpec
from nnsweep.errors import ConfigError
from nnsweep.model import ACTIVATIONS, INITIALISERS

# OmegaConf's marker for a value that a config file must provide. Hydra itself is imported
# only inside the functions that talk to it, so the trainer never loads it.
MISSING = "???"

# --------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------

_LAYERS_TEXT = re.compile(r"^\d+(-\d+)*$")


def _show(value: Any) -> str:
    """A value as the user would type it, quoted when empty."""
    if isinstance(value, str):
        return repr(value) if value == "" or value.strip() != value else value
    return str(value)


def parse_layers(value: Any) -> tuple[int, ...]:
    """Hidden layer sizes from ``"8-16-8"``, ``8`` or ``[8, 16, 8]``.

    Raises
    ------
    ConfigError
        If the value is empty, not made of positive integers, or not a string/int/list.
    """
    bad = f"layers={_show(value)}"
    if isinstance(value, bool):
        raise ConfigError(f"{bad}: give hidden layer sizes joined by '-', e.g. layers=8-16-8")
    if isinstance(value, int):
        sizes: list[Any] = [value]
    elif isinstance(value, str):
        text = value.strip()
        if not text:
            raise ConfigError(f"{bad}: give at least one hidden layer, e.g. layers=8-16-8")
        if not _LAYERS_TEXT.match(text):
            raise ConfigError(
                f"{bad}: hidden layer sizes must be positive integers joined by '-', "
                "e.g. layers=8-16-8"
            )
        sizes = [int(part) for part in text.split("-")]
    elif isinstance(value, list | tuple):
        sizes = list(value)
        if not sizes:
            raise ConfigError(f"{bad}: give at least one hidden layer, e.g. layers=8-16-8")
    else:
        raise ConfigError(f"{bad}: give hidden layer sizes joined by '-', e.g. layers=8-16-8")
    for size in sizes:
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ConfigError(f"{bad}: every hidden layer size must be a positive integer")
    return tuple(sizes)


def _seed_count(key: str, value: Any) -> int:
    if value == "auto":  # the auto sweep gives every job a number; a single run has none
        raise ConfigError(
            f"{key}=auto: needs a sweep of two or more cells, e.g. "
            "python -m nnsweep -m layers=8-16-8,16-8-8 n_seeds=auto"
        )
    return _integer(key, value, minimum=1)


def _integer(key: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}={_show(value)}: must be a whole number >= {minimum}")
    if value < minimum:
        raise ConfigError(f"{key}={_show(value)}: must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}={_show(value)}: must be <= {maximum:,}")
    return value


# Limits checked before anything is allocated (a typo such as n_seeds=1000000000 must not
# first fill the memory). Generous for real work: the shipped sweeps use 1e5 iterations.
MAX_ITERATIONS = 10**9
MAX_LOG_POINTS = 10**6  # error-margin points recorded per seed
MAX_SAMPLES = 10**6  # rows a generated dataset may have
MAX_DATA_SEED = 2**32 - 1  # numpy's legacy seeding takes 32 bits
_FOLDER_NAME = re.compile(r"^[\w.+-]+$")


def _folder_name(key: str, value: Any) -> str:
    """A plain folder name: ``name=../../etc`` must not write outside ``results_dir``."""
    if not isinstance(value, str) or not _FOLDER_NAME.match(value) or set(value) == {"."}:
        raise ConfigError(
            f"{key}={_show(value)}: must be a plain folder name (letters, digits, '.', '_', "
            "'-', '+'), since sweeps go to <results_dir>/<name>/"
        )
    return value


def _positive_float(key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}={_show(value)}: must be a number")
    number = float(value)
    if not math.isfinite(number) or number <= 0:
        raise ConfigError(f"{key}={_show(value)}: must be a finite number > 0")
    return number


def _choice(key: str, value: Any, table: Mapping[str, Any]) -> str:
    if not isinstance(value, str) or value not in table:
        raise ConfigError(
            f"{key}={_show(value)}: unknown; choose one of {', '.join(sorted(table))}"
        )
    return value


def _boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key}={_show(value)}: must be true or false")
    return value


def parse_margin(value: Any) -> tuple[float, float]:
    """``equivalence_margin``: two numbers low < 0.5 < high within [0, 1]."""
    message = f"equivalence_margin={_show(value)}: give two numbers around 0.5, e.g. [0.44, 0.56]"
    if isinstance(value, str) or not isinstance(value, list | tuple) or len(value) != 2:
        raise ConfigError(message)
    if any(isinstance(v, bool) or not isinstance(v, int | float) for v in value):
        raise ConfigError(message)
    low, high = float(value[0]), float(value[1])
    if not 0 <= low < 0.5 < high <= 1:
        raise ConfigError(message)
    return low, high


def _layers(key: str, value: Any) -> tuple[int, ...]:
    return parse_layers(value)


def _show_layers(sizes: tuple[int, ...]) -> str:
    return "-".join(map(str, sizes))


# --------------------------------------------------------------------------------------
# Hydra schema (what YAML and the command line may set), every setting declared once
# --------------------------------------------------------------------------------------

Check = Callable[[str, Any], Any]  # (key, value) -> the validated value, or ConfigError


def setting(
    default: Any,
    doc: str,
    *,
    check: Check | None = None,
    numbers: bool = False,
    spec: str | None = None,
    show: Callable[[Any], Any] | None = None,
) -> Any:
    """Declare one config key.

    Parameters
    ----------
    default : the value when neither YAML nor the command line sets it
    doc : one line, shown by ``--help`` and in the README's settings table
    check : what the field's type cannot express (ranges, choices), with a one-line error
    numbers : True when the value changes a seed's trained numbers: it is then a field of
        ``TrainSpec`` (named ``spec`` when that differs), part of every seed's cache key, and
        a column of the results tables (written with ``show``)
    """
    metadata = {"doc": doc, "check": check, "numbers": numbers, "spec": spec, "show": show}
    return field(default=default, metadata=metadata)


@dataclass
class DatasetConf:
    # Name written into every results row; conventionally the config file's name.
    name: str = MISSING
    # Where the data comes from: table (inline rows), csv, parity, moons or circles.
    kind: str = "table"
    # table: input rows (n_samples x n_inputs); csv: the input column names.
    inputs: Any = None
    # table: target rows (n_samples x n_outputs); csv: the target column names.
    targets: Any = None
    # csv: path of the file (a header row, then one sample per row).
    path: Optional[str] = None  # noqa: UP045 - OmegaConf needs typing.Optional
    # parity: number of input bits (all 2**bits inputs are used).
    bits: Optional[int] = None  # noqa: UP045
    # moons, circles: number of samples to generate.
    n_samples: Optional[int] = None  # noqa: UP045
    # moons, circles: standard deviation of the Gaussian jitter added to the inputs.
    noise: Optional[float] = None  # noqa: UP045
    # Seed of generated data and of the held-out split; independent of the training seed.
    data_seed: int = 0
    # Fraction of rows held out from training and scored after it (0 = none).
    holdout: float = 0.0


@dataclass
class NNSweepConf:
    # The training data; a file of conf/dataset/ (or ./conf/dataset/), chosen by dataset=NAME.
    dataset: DatasetConf = MISSING
    layers: Any = setting(
        "8-16-8",
        "hidden layer sizes joined by '-' (a YAML list also works)",
        check=_layers,
        numbers=True,
        spec="hidden_layers",
        show=_show_layers,
    )
    activation: str = setting(
        "sigmoid",
        "hidden activation: " + " | ".join(ACTIVATIONS),
        check=partial(_choice, table=ACTIVATIONS),
        numbers=True,
    )
    output_activation: str = setting(
        "sigmoid",
        "output activation: " + " | ".join(ACTIVATIONS),
        check=partial(_choice, table=ACTIVATIONS),
        numbers=True,
    )
    init: str = setting(
        "tutorial",
        "weight init: " + " | ".join(INITIALISERS) + " (tutorial: the tutorial's draw)",
        check=partial(_choice, table=INITIALISERS),
        numbers=True,
    )
    bias: bool = setting(False, "add a bias vector per layer (the tutorial has none)",
                         check=_boolean, numbers=True)  # fmt: skip
    lr: float = setting(1.0, "learning rate; 1.0 is the tutorial's plain W += L.T @ delta",
                        check=_positive_float, numbers=True)  # fmt: skip
    iterations: int = setting(100_000, "full-batch training iterations per seed",
                              check=partial(_integer, minimum=1, maximum=MAX_ITERATIONS),
                              numbers=True)  # fmt: skip
    log_every: int = setting(10_000, "record (for one seed: print) the error margin this often",
                             check=partial(_integer, minimum=1), numbers=True)  # fmt: skip
    error_threshold: float = setting(
        0.01,
        '"converged" = first iteration with an error margin below this',
        check=_positive_float,
        numbers=True,
    )
    seed: int = setting(1, "first seed; seed s draws weights as np.random.seed(s) would",
                        check=partial(_integer, minimum=0))  # fmt: skip
    # Any, not int: a sweep may say "auto" (OmegaConf has no int-or-"auto" type).
    n_seeds: Any = setting(
        1,
        "consecutive seeds trained together, stacked, in one job; auto (sweeps): rounds of "
        "seed_block seeds until every pair of cells is decided",
        check=_seed_count,
    )
    max_seeds: int = setting(1000, "n_seeds=auto: no cell gets more seeds than this",
                             check=partial(_integer, minimum=2))  # fmt: skip
    seed_block: int = setting(50, "n_seeds=auto: seeds added per cell per round",
                              check=partial(_integer, minimum=2))  # fmt: skip
    name: str = setting("sweep", "sweeps go to <results_dir>/<name>/<timestamp>/",
                        check=_folder_name)  # fmt: skip
    results_dir: str = setting("results", "root of all output (relative: to where you run)")
    cache_dir: str = setting("${results_dir}/.cache",
                             "per-seed results; seeds found here are not retrained")  # fmt: skip
    progress: bool = setting(True, "one progress line on stderr (terminals only), <= 1/s",
                             check=_boolean)  # fmt: skip
    notes: str = setting("", "free text for the top of a sweep's report; changes no number")
    equivalence_margin: Any = setting(
        (0.44, 0.56),
        '"practically equivalent" when the 95% CI of P(A<B) lies inside [low, high] '
        "(solve rates: a difference within the same half-width); changes no number",
        check=lambda key, value: parse_margin(value),
    )


# Every setting, in declaration order, and those that change a seed's numbers.
SETTINGS = tuple(f for f in dataclasses.fields(NNSweepConf) if "doc" in f.metadata)
NUMBER_SETTINGS = tuple(f for f in SETTINGS if f.metadata["numbers"])
# Columns that say which cell a row belongs to, in the order tables show them.
CELL_COLUMNS = ["dataset", *(f.name for f in NUMBER_SETTINGS)]


def register_configs() -> None:
    """Register the schema so that ``conf/config.yaml`` can extend it (nnsweep's app only)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="nnsweep_schema", node=NNSweepConf)


def settings_table() -> str:
    """The README's settings table, in Markdown, from the declarations above."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    lines.append("| `dataset` | `tutorial_ex2` | a file of `conf/dataset/` or `./conf/dataset/` |")
    for f in SETTINGS:
        default = f.default if f.default != "" else '""'
        if isinstance(default, bool):
            default = str(default).lower()
        doc = f.metadata["doc"].replace("|", "\\|")  # a literal | inside a Markdown table
        lines.append(f"| `{f.name}` | `{default}` | {doc} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# Plain, validated objects (what the code below the CLI takes)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrainSpec:
    """Everything the trainer needs besides the data and the seeds."""

    hidden_layers: tuple[int, ...]  # hidden layer sizes, input and output excluded
    activation: str = "sigmoid"  # hidden activation name
    output_activation: str = "sigmoid"  # output activation name
    init: str = "tutorial"  # weight initialiser name
    bias: bool = False  # add a bias vector per layer
    lr: float = 1.0  # learning rate; 1.0 reproduces the tutorial bit for bit
    iterations: int = 100_000  # full-batch iterations
    log_every: int = 10_000  # error-margin logging interval
    error_threshold: float = 0.01  # margin below which a seed counts as converged


@dataclass(frozen=True)
class RunConfig:
    """One cell of a sweep: a dataset, a training spec and a block of seeds."""

    dataset: DatasetSpec  # the training data
    train: TrainSpec  # network and optimiser settings
    seed: int = 1  # first seed
    n_seeds: int = 1  # number of consecutive seeds
    name: str = "sweep"  # sweep name
    progress: bool = True  # show a progress line
    cache_dir: str = "results/.cache"  # per-seed result cache
    seeds: tuple[int, ...] = field(init=False)  # derived: the seeds this cell trains

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(range(self.seed, self.seed + self.n_seeds)))


# --------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------


def _matrix(key: str, rows: Any) -> tuple[tuple[float, ...], ...]:
    if not isinstance(rows, list | tuple) or isinstance(rows, str) or not rows:
        raise ConfigError(f"{key}: must be a non-empty list of rows of numbers")
    width = None
    parsed = []
    for row_number, row in enumerate(rows):
        if not isinstance(row, list | tuple) or isinstance(row, str) or not row:
            raise ConfigError(f"{key}[{row_number}]={_show(row)}: must be a list of numbers")
        values = []
        for value in row:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{key}[{row_number}]: {_show(value)} is not a number")
            if not math.isfinite(value):
                raise ConfigError(f"{key}[{row_number}]: {_show(value)} is not finite")
            values.append(float(value))
        if width is not None and len(values) != width:
            raise ConfigError(
                f"{key}[{row_number}]: has {len(values)} values but row 0 has {width}"
            )
        width = len(values)
        parsed.append(tuple(values))
    return tuple(parsed)


def _columns(key: str, value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(v, str) for v in value)
    ):
        raise ConfigError(f"{key}={_show(value)}: give a list of column names, e.g. [x1, x2]")
    return list(value)


def _source(raw: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, str]:
    """The dataset's full arrays and its label, by kind."""
    kind = raw.get("kind", "table")
    name = raw["name"]
    if kind == "table":
        inputs = np.array(_matrix("dataset.inputs", raw.get("inputs")))
        targets = np.array(_matrix("dataset.targets", raw.get("targets")))
        if len(inputs) != len(targets):
            raise ConfigError(
                f"dataset={name}: {len(inputs)} input rows but {len(targets)} target rows"
            )
        return inputs, targets, name
    if kind == "csv":
        path = raw.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"dataset.path={_show(path)}: give the CSV file's path")
        inputs, targets = data.read_csv(
            path,
            _columns("dataset.inputs", raw.get("inputs")),
            _columns("dataset.targets", raw.get("targets")),
        )
        return inputs, targets, name
    seed = _integer("dataset.data_seed", raw.get("data_seed"), 0, MAX_DATA_SEED)
    if kind == "parity":
        bits = _integer("dataset.bits", raw.get("bits"), 1)
        if bits > 16:
            raise ConfigError(f"dataset.bits={bits}: at most 16 (2**bits rows)")
        return (*data.parity(bits), f"{name}(bits={bits})")
    if kind in ("moons", "circles"):
        n_samples = _integer("dataset.n_samples", raw.get("n_samples"), 2, MAX_SAMPLES)
        noise = raw.get("noise")
        if isinstance(noise, bool) or not isinstance(noise, int | float) or not 0 <= noise < 10:
            raise ConfigError(f"dataset.noise={_show(noise)}: must be a number in [0, 10)")
        noise = noise + 0.0  # -0.0 is 0.0 (numpy refuses a negative-signed scale)
        make = data.two_moons if kind == "moons" else data.circles
        label = f"{name}(n={n_samples}, noise={noise}, seed={seed})"
        return (*make(n_samples, float(noise), seed), label)
    raise ConfigError(
        f"dataset.kind={_show(kind)}: unknown; choose one of table, csv, parity, moons, circles"
    )


def _check_target_range(
    raw: Mapping[str, Any], targets: np.ndarray, output_activation: str
) -> None:
    low, high = ACTIVATIONS[output_activation].output_range
    outside = np.argwhere((targets < low) | (targets > high))
    if not len(outside):
        return
    row, column = outside[0]
    value = targets[row, column]
    where = (
        f"{raw['path']}: column {_columns('dataset.targets', raw.get('targets'))[column]!r}, "
        f"row {row + 1}"
        if raw.get("kind") == "csv"
        else f"dataset={raw['name']}: target row {row}, column {column}"
    )
    raise ConfigError(
        f"{where}: {value:g} is outside [{low:g}, {high:g}], "
        f"the range of output_activation={output_activation}"
    )


def dataset_spec(raw: Mapping[str, Any], output_activation: str = "sigmoid") -> DatasetSpec:
    """Validate a dataset node (plain mapping): read or generate it, then split off holdout."""
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"dataset.name={_show(name)}: must be a non-empty string")
    inputs, targets, label = _source(raw)
    _check_target_range(raw, targets, output_activation)
    fraction = raw.get("holdout", 0.0) or 0.0
    if isinstance(fraction, bool) or not isinstance(fraction, int | float) or not 0 <= fraction < 1:
        raise ConfigError(f"dataset.holdout={_show(fraction)}: must be a fraction in [0, 1)")
    training, held = data.holdout_rows(
        len(inputs),
        float(fraction),
        _integer("dataset.data_seed", raw.get("data_seed", 0), 0, MAX_DATA_SEED),
    )
    if len(held):
        label = f"{label} holdout={fraction}"

    def rows(array: np.ndarray) -> tuple[tuple[float, ...], ...]:
        return tuple(tuple(float(v) for v in row) for row in array)

    return DatasetSpec(
        name=label,
        inputs=rows(inputs[training]),
        targets=rows(targets[training]),
        holdout_inputs=rows(inputs[held]),
        holdout_targets=rows(targets[held]),
    )


def estimated_bytes(dataset: DatasetSpec, train: TrainSpec, n_seeds: int) -> int:
    """Rough peak memory of training ``n_seeds`` stacked networks, in bytes.

    Counts the float64 weights (with their gradient buffers) and the per-layer activation,
    delta and scratch buffers; the result is an estimate, good to a small factor.
    """
    units = [dataset.n_inputs, *train.hidden_layers, dataset.n_outputs]
    n_samples = len(dataset.inputs)
    weights = sum(a * b for a, b in itertools.pairwise(units))
    activations = n_samples * sum(units[1:])
    per_seed = 2 * weights + 4 * activations
    return 8 * n_seeds * per_seed


def available_memory_bytes() -> int:
    """Physical memory of this machine (the budget a single job may not exceed)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def _anchored(path: str, base_dir: Path | None) -> str:
    """A relative path taken from ``base_dir`` (the directory the user launched from)."""
    if base_dir is None or Path(path).is_absolute():
        return path
    return str(base_dir / path)


def to_run_config(cfg: Mapping[str, Any], base_dir: Path | None = None) -> RunConfig:
    """Turn a composed Hydra config into a validated, frozen ``RunConfig``.

    ``base_dir`` anchors relative paths (the CSV file, the cache); jobs pass the directory
    the sweep was launched from, which differs from their own on a remote worker.

    Raises
    ------
    ConfigError
        On the first invalid value, with a one-line message naming key and value.
    """
    from omegaconf import DictConfig, OmegaConf

    raw = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    assert isinstance(raw, Mapping)
    check_known_keys(raw)
    if "results_dir" in raw:  # composed configs have it; hand-made test mappings may not
        check_output_paths(raw, base_dir)
    dataset = raw.get("dataset")
    if not isinstance(dataset, Mapping):
        raise ConfigError(f"dataset={_show(dataset)}: choose a dataset, e.g. dataset=tutorial_ex2")
    if isinstance(dataset.get("path"), str) and dataset["path"]:
        dataset = {**dataset, "path": _anchored(dataset["path"], base_dir)}
    values = {}
    for setting_field in SETTINGS:
        value = raw.get(setting_field.name, setting_field.default)
        check = setting_field.metadata["check"]
        values[setting_field.name] = check(setting_field.name, value) if check else value
    train = TrainSpec(**{(f.metadata["spec"] or f.name): values[f.name] for f in NUMBER_SETTINGS})
    if train.iterations // train.log_every > MAX_LOG_POINTS:
        raise ConfigError(
            f"log_every={train.log_every}: records {train.iterations // train.log_every:,} "
            f"points per seed over iterations={train.iterations}; at most {MAX_LOG_POINTS:,}"
        )
    seed, n_seeds = values["seed"], values["n_seeds"]
    if seed + n_seeds > 2**32:
        raise ConfigError(f"seed={seed}: seeds must stay below 2**32 (n_seeds={n_seeds})")
    dataset_checked = dataset_spec(dataset, train.output_activation)
    # Before RunConfig lists the seeds: n_seeds=1000000000 is refused, not allocated.
    needed = estimated_bytes(dataset_checked, train, n_seeds)
    budget = available_memory_bytes()
    if needed > budget:
        raise ConfigError(
            f"layers={'-'.join(map(str, train.hidden_layers))}: {n_seeds} stacked network(s) "
            f"would need about {_gigabytes(needed)}, more than this machine's {_gigabytes(budget)}"
        )
    return RunConfig(
        dataset=dataset_checked,
        train=train,
        seed=seed,
        n_seeds=n_seeds,
        name=str(values["name"]),
        progress=values["progress"],
        cache_dir=_anchored(str(values["cache_dir"]), base_dir),
    )


def _close(key: str, known: Sequence[str]) -> str:
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else f"; known keys: {', '.join(sorted(known))}"


def check_known_keys(raw: Mapping[str, Any]) -> None:
    """Refuse a key the schema does not declare (``+iteration=5``, a typo in an experiments
    file): silently ignored, it would train with the default instead."""
    known = [f.name for f in dataclasses.fields(NNSweepConf)]
    for key in raw:
        if key not in known and key != "hydra":
            raise ConfigError(f"{key}: unknown setting{_close(str(key), known)}")
    dataset = raw.get("dataset")
    if isinstance(dataset, Mapping):
        known_dataset = [f"dataset.{f.name}" for f in dataclasses.fields(DatasetConf)]
        for key in dataset:
            if f"dataset.{key}" not in known_dataset:
                full = f"dataset.{key}"
                raise ConfigError(f"{full}: unknown setting{_close(full, known_dataset)}")


def check_output_paths(raw: Mapping[str, Any], base_dir: Path | None = None) -> None:
    """Where results and the cache go, checked before anything is trained: a folder that is
    not the filesystem root, and that exists or can be made, writable."""
    for key in ("results_dir", "cache_dir"):
        value = raw.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"{key}={_show(value)}: give a folder, e.g. {key}=results")
        folder = Path(_anchored(value, base_dir))
        if folder.resolve() == Path(folder.resolve().anchor):
            raise ConfigError(f"{key}={value}: is the filesystem root; give a folder")
        existing = folder
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        if not existing.is_dir():
            raise ConfigError(f"{key}={value}: {existing} is not a folder")
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ConfigError(f"{key}={value}: {existing} is not writable")


def train_key_fields(train: TrainSpec) -> dict[str, Any]:
    """Every field of the trainer's spec: the part of a seed's cache key that settings make.

    ``TrainSpec`` is built from exactly the settings declared with ``numbers=True``, so a
    new setting that changes the numbers is in the key without being listed anywhere.
    """
    return {f.name: getattr(train, f.name) for f in dataclasses.fields(train)}


def cell_settings(run: RunConfig) -> dict[str, Any]:
    """The flat settings that identify a cell, as columns of the results tables."""
    columns: dict[str, Any] = {"dataset": run.dataset.name}
    for f in NUMBER_SETTINGS:
        value = getattr(run.train, f.metadata["spec"] or f.name)
        columns[f.name] = f.metadata["show"](value) if f.metadata["show"] else value
    return columns
