"""Bring your own trainer: ``trainer=module:function`` names any importable callable.

The contract (README, "Bring your own trainer"):

    def train(settings: TrainSpec, data: TrainData, seeds: list[int]) -> list[SeedResult]

``settings`` is the cell's validated, frozen ``TrainSpec`` (layers, lr, iterations, ...,
and the free-form ``trainer_args`` as ``settings.args``); ``data`` the training rows and
the held-out inputs; ``seeds`` the seeds to train. It returns one ``SeedResult`` per seed:
the final model's outputs on the training rows (and on the held-out rows, when there are
any), and optionally a learning curve. nnsweep computes every metric itself from those
outputs (``score``), so a verdict means the same whichever trainer made it.

A trainer that raises, or returns the wrong shape or a non-finite output, becomes a
``TrainerError`` of one line naming the trainer, the problem and the user's file and line.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from nnsweep.errors import ConfigError
from nnsweep.train.loop import TrainResult, accuracy, log_iterations


class TrainerError(RuntimeError):
    """A user's trainer failed; the message is one line (trainer, problem, file:line)."""


@dataclass(frozen=True)
class TrainData:
    """What a trainer trains on: read-only float64 arrays.

    Attributes
    ----------
    inputs : ndarray, shape (n_samples, n_inputs)
    targets : ndarray, shape (n_samples, n_outputs)
    holdout_inputs : ndarray, shape (n_held, n_inputs); n_held is 0 without a holdout
        (the held-out targets are not given: nnsweep scores the outputs itself)
    """

    inputs: np.ndarray
    targets: np.ndarray
    holdout_inputs: np.ndarray


@dataclass(frozen=True)
class SeedResult:
    """What a trainer returns for one seed.

    Attributes
    ----------
    outputs : array-like, shape (n_samples, n_outputs)
        The final model's outputs on ``data.inputs``.
    holdout_outputs : array-like, shape (n_held, n_outputs), or None
        The final model's outputs on ``data.holdout_inputs``; required when n_held > 0.
    curve : array-like, shape (n_points,), or None
        Optional learning curve: the training error margin, mean(|targets - outputs|),
        at ``curve_iterations(settings)`` (iteration 0, log_every, ..., then iterations).
    """

    outputs: Any
    holdout_outputs: Any = None
    curve: Any = None


Trainer = Callable[[Any, TrainData, list[int]], Sequence[SeedResult]]


def curve_iterations(settings: Any) -> np.ndarray:
    """The iterations a ``SeedResult.curve`` gives the error at: 0, log_every, ... below
    ``iterations``, then ``iterations`` (the final model)."""
    return log_iterations(settings.iterations, settings.log_every)


# --------------------------------------------------------------------------------------
# Naming and loading a trainer
# --------------------------------------------------------------------------------------


def _import_module(name: str, module: str, base_dir: Path | None) -> ModuleType:
    # The folder the user launched from comes first, as for `python -m`: the installed
    # `nnsweep` script (and a remote worker) would not look there otherwise.
    folder = str(base_dir or Path.cwd())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if error.name and module.startswith(error.name):
            raise ConfigError(
                f"trainer={name}: no module {error.name!r} (looked in {folder} and the "
                "installed packages)"
            ) from None
        raise ConfigError(f"trainer={name}: importing it failed: {_one_line(error)}") from None
    except Exception as error:
        raise ConfigError(f"trainer={name}: importing it failed: {_one_line(error)}") from None


def load(name: str, base_dir: Path | None = None) -> Callable[..., Any]:
    """The callable a ``module:function`` names, or a one-line ``ConfigError``."""
    module_name, _, function = name.partition(":")
    target: Any = _import_module(name, module_name, base_dir)
    for part in function.split("."):
        if not hasattr(target, part):
            raise ConfigError(f"trainer={name}: {module_name} has no {function!r}")
        target = getattr(target, part)
    if not callable(target):
        raise ConfigError(f"trainer={name}: {function} is not a function")
    return target


def source_sha256(name: str, base_dir: Path | None = None) -> str:
    """SHA-256 of the source file of the trainer's module: editing it retrains. A module
    that cannot be imported has none ("", and ``load`` refuses it before any key is made)."""
    module_name = name.partition(":")[0]
    try:
        module = sys.modules.get(module_name) or _import_module(name, module_name, base_dir)
    except ConfigError:
        return ""
    path = getattr(module, "__file__", None)
    if not path:
        return "no-source-file"
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --------------------------------------------------------------------------------------
# Running one, and scoring what it returned
# --------------------------------------------------------------------------------------


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _user_frame(error: BaseException) -> str:
    """The deepest frame of the traceback outside nnsweep and the standard library."""
    nnsweep_dir = str(Path(__file__).resolve().parents[1])
    stdlib = os.path.dirname(os.__file__)
    where = ""
    for frame in traceback.extract_tb(error.__traceback__):
        file = str(Path(frame.filename).resolve())
        if not file.startswith((nnsweep_dir, stdlib)):
            where = f"{frame.filename}, line {frame.lineno}"
    return where


def _definition(function: Callable[..., Any]) -> str:
    try:
        _, line = inspect.getsourcelines(function)
        return f"{inspect.getsourcefile(function)}, line {line}"
    except (OSError, TypeError):
        return getattr(function, "__module__", "?")


def run(
    name: str, settings: Any, data: TrainData, seeds: list[int], base_dir: Path | None = None
) -> list[SeedResult]:
    """Call the trainer and check what it returned, or raise a one-line ``TrainerError``."""
    function = load(name, base_dir)
    try:
        returned = function(settings, data, list(seeds))
    except Exception as error:
        where = _user_frame(error) or _definition(function)
        raise TrainerError(f"trainer {name} raised {_one_line(error)} ({where})") from None
    try:
        return check_results(returned, data, len(seeds), settings)
    except ValueError as error:
        raise TrainerError(f"trainer {name} returned {error} ({_definition(function)})") from None


def _array(value: Any, what: str, shape: tuple[int, ...]) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what} that is not an array of numbers") from None
    if array.shape != shape:
        raise ValueError(f"{what} of shape {array.shape}; expected {shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{what} with a non-finite value (NaN or inf)")
    return array


def check_results(returned: Any, data: TrainData, n_seeds: int, settings: Any) -> list[SeedResult]:
    """The returned results as checked float arrays, or a ValueError saying what is wrong."""
    if isinstance(returned, SeedResult) or not isinstance(returned, Sequence):
        raise ValueError(f"a {type(returned).__name__}; expected a list of SeedResult")
    if len(returned) != n_seeds:
        raise ValueError(f"{len(returned)} result(s) for {n_seeds} seed(s)")
    n_out = data.targets.shape[1]
    n_points = len(curve_iterations(settings))
    checked = []
    for k, result in enumerate(returned):
        if not isinstance(result, SeedResult):
            raise ValueError(f"a {type(result).__name__} for seed #{k}; expected SeedResult")
        outputs = _array(result.outputs, f"outputs for seed #{k}", (len(data.inputs), n_out))
        holdout = None
        if len(data.holdout_inputs):
            if result.holdout_outputs is None:
                raise ValueError(f"no holdout_outputs for seed #{k} (the data has held-out rows)")
            holdout = _array(
                result.holdout_outputs,
                f"holdout_outputs for seed #{k}",
                (len(data.holdout_inputs), n_out),
            )
        curve = None
        if result.curve is not None:
            curve = _array(result.curve, f"a curve for seed #{k}", (n_points,))
        checked.append(SeedResult(outputs, holdout, curve))
    return checked


def margins(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """``mean(|targets - outputs|)`` per seed, summed as the built-in trainer sums it.

    outputs : (n_seeds, n_samples, n_outputs); returns (n_seeds,).
    """
    flat = np.abs(targets - outputs).reshape(len(outputs), -1)
    return np.add.reduce(flat, axis=1) / flat.shape[1]


def score(
    results: list[SeedResult], targets: np.ndarray, holdout_targets: np.ndarray, settings: Any
) -> dict[str, Any]:
    """Every per-seed number nnsweep records, computed from the outputs alone.

    Returns the ``TrainResult``-named arrays (final_error, holdout_error, accuracy,
    holdout_accuracy, first_below_threshold, ...) with a first axis over the seeds, and
    ``curves`` (n_seeds, n_points) and ``log_iterations``.
    """
    n_seeds = len(results)
    outputs = np.stack([r.outputs for r in results])
    final_error = margins(outputs, targets)
    scored: dict[str, Any] = {
        "final_output": outputs,
        "final_error": final_error,
        "accuracy": accuracy(outputs, targets),
        "holdout_error": np.full(n_seeds, np.nan),
        "holdout_accuracy": np.full(n_seeds, np.nan),
        "diverged": np.zeros(n_seeds, dtype=bool),
        "reason": [""] * n_seeds,
        "end_change": np.full(n_seeds, np.nan),  # the outputs alone cannot tell
        "iterations_reached": np.full(n_seeds, settings.iterations, dtype=np.int64),
    }
    if len(holdout_targets):
        held = np.stack([r.holdout_outputs for r in results])
        scored["holdout_error"] = margins(held, holdout_targets)
        scored["holdout_accuracy"] = accuracy(held, holdout_targets)
    points = curve_iterations(settings)
    curves = np.full((n_seeds, len(points)), np.nan)
    first_below = np.full(n_seeds, -1, dtype=np.int64)
    for k, result in enumerate(results):
        if result.curve is not None:
            curves[k] = result.curve
            below = np.flatnonzero(result.curve < settings.error_threshold)
            first_below[k] = points[below[0]] if len(below) else -1
        curves[k, -1] = final_error[k]  # the curve ends at the final model, as nnsweep scores it
    scored["curves"] = curves
    scored["log_iterations"] = points
    scored["first_below_threshold"] = first_below
    return scored


def train_with(
    name: str, settings: Any, data: TrainData, holdout_targets: np.ndarray, seeds: list[int]
) -> TrainResult:
    """Train ``seeds`` with the user's trainer and score its outputs: the built-in trainer's
    ``TrainResult``, without weights (nnsweep never sees the user's model)."""
    started = time.perf_counter()
    results = run(name, settings, data, seeds)
    scored = score(results, data.targets, holdout_targets, settings)
    if all(result.curve is None for result in results):  # only the final model's margin
        scored["curves"] = scored["curves"][:, -1:]
        scored["log_iterations"] = scored["log_iterations"][-1:]
    return TrainResult(
        seeds=np.asarray(seeds, dtype=np.int64),
        log_iterations=scored.pop("log_iterations"),
        curves=scored.pop("curves"),
        final_output=scored["final_output"],
        last_pass_output=scored.pop("final_output"),
        weights=[],
        biases=None,
        wall_seconds=time.perf_counter() - started,
        kernel="trainer",
        **scored,
    )
