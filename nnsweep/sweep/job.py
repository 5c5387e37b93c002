"""One job: train the seeds of one cell that the cache lacks, then write the job's files.

Takes a frozen ``RunConfig`` and a directory; knows nothing of Hydra.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnsweep import schema, store
from nnsweep.config import BUILTIN_TRAINER, RunConfig, cell_settings, train_key_fields
from nnsweep.train import portable, trainer
from nnsweep.train.data import Dataset, load_dataset
from nnsweep.train.loop import (
    ARITHMETIC_VERSION,
    SEED_COLUMNS,
    TRAINED_COLUMNS,
    UNSTABLE_CHANGE,
    TrainResult,
    arithmetic_label,
    train,
)
from nnsweep.train.shapes import shape_columns, weight_count

# Bump when what a cache entry holds changes; old entries are then simply not found.
# 4: the per-seed arrays are named as their runs.parquet columns (first_below_threshold).
CACHE_FORMAT = 4

ProgressSink = Callable[[int, int], None]  # (seed-iterations done, seed-iterations total)


@dataclass(frozen=True)
class CellOutcome:
    """What a job produced, as the tables it wrote."""

    runs: pd.DataFrame  # one row per seed
    curves: pd.DataFrame  # one row per (seed, logged iteration)
    # seed -> output of the loop's last forward pass (before the last update), as the
    # tutorial prints it
    last_pass_outputs: dict[int, np.ndarray]
    n_trained: int  # seeds trained now (the rest came from the cache)


@cache
def _floating_point_stack() -> dict[str, Any]:
    """numpy, the BLAS library and core type, the CPU and the C library: the rounding order
    of every product and exp depends on them, so seeds trained on another stack differ."""
    from threadpoolctl import threadpool_info

    blas = sorted(
        f"{info.get('internal_api')} {info.get('version')} {info.get('architecture')}"
        for info in threadpool_info()
        if info.get("user_api") == "blas"
    )
    return {
        "numpy": np.__version__,
        "blas": blas,
        "machine": platform.machine(),
        "libc": " ".join(platform.libc_ver()) or sys.platform,
    }


def arithmetic_identity(run: RunConfig, dataset: Dataset) -> dict[str, Any]:
    """What the bits of a seed depend on besides its settings.

    ``portable``: its name and version only. Every path and every machine computes the
    same bits, so the entry is shared by every host, kernel path and folder.
    ``numpy``: the host's floating-point stack (BLAS, libm, numpy), which numpy's own
    arithmetic always does (the native kernel computes the portable arithmetic only).
    """
    if run.train.arithmetic == portable.NAME:
        return {"arithmetic": portable.NAME, "version": portable.VERSION}
    return {**_floating_point_stack(), "kernel": "numpy"}


def seed_cache_fields(run: RunConfig, dataset: Dataset, seed: int) -> dict[str, Any]:
    """Everything that changes a seed's numbers; its hash is the seed's cache key."""
    return {
        "arithmetic_version": ARITHMETIC_VERSION,
        "arithmetic_identity": arithmetic_identity(run, dataset),
        "cache_format": CACHE_FORMAT,
        "dataset_sha256": dataset.fingerprint(),
        **train_key_fields(run.train),
        **trainer_identity(run),
        "seed": seed,
    }


def trainer_identity(run: RunConfig) -> dict[str, Any]:
    """A user's trainer: its module's source (its name and args are settings, in the key
    already), so that editing the trainer retrains. The built-in one is versioned by
    ARITHMETIC_VERSION."""
    if run.train.trainer == BUILTIN_TRAINER:
        return {}
    return {"trainer_source_sha256": trainer.source_sha256(run.train.trainer)}


# A cache entry holds, besides the stored seed columns and the weights (and biases) of each
# layer, these arrays of the seed: ``split_by_seed`` writes them, ``entry_arrays`` requires
# every one, so an entry that lacks one is retrained with a notice instead of failing later.
ENTRY_ARRAYS = ("log_iterations", "curve", "final_output", "last_pass_output")


def entry_arrays(run: RunConfig) -> list[str]:
    """Every array a cache entry of ``run``'s cell must hold: all that the job reads."""
    # a user's trainer returns no weights (see nnsweep.train.trainer)
    n_layers = len(run.train.hidden_layers) + 1 if run.train.trainer == BUILTIN_TRAINER else 0
    biases = [f"bias_{k}" for k in range(n_layers)] if run.train.bias else []
    stored = [column.name for column in SEED_COLUMNS if column.source != "derived"]
    return [*stored, *ENTRY_ARRAYS, *(f"weight_{k}" for k in range(n_layers)), *biases]


def split_by_seed(result: TrainResult) -> list[dict[str, np.ndarray]]:
    """One cache entry (a dict of arrays) per seed of a stacked result: the trained
    ``SEED_COLUMNS`` under their own names, the job's ``wall_seconds``, then the curve,
    outputs and weights."""
    entries = []
    for row in range(len(result.seeds)):
        entry = {
            column.name: column.dtype(getattr(result, column.name)[row])
            for column in TRAINED_COLUMNS
        }
        # The stacked batch's wall time, shared out evenly: seeds are not timed apart.
        entry["wall_seconds"] = np.float64(result.wall_seconds / len(result.seeds))
        entry["log_iterations"] = result.log_iterations
        entry["curve"] = result.curves[row]
        entry["final_output"] = result.final_output[row]
        entry["last_pass_output"] = result.last_pass_output[row]
        for k, weight in enumerate(result.weights):
            entry[f"weight_{k}"] = weight[row]
        for k, bias in enumerate(result.biases or []):
            entry[f"bias_{k}"] = bias[row]
        entries.append(entry)
    return entries


def _solved(final_output: np.ndarray, targets: np.ndarray) -> bool:
    """Every output rounds to its target (the task is learnt, not merely approached)."""
    return bool(np.isfinite(final_output).all() and np.array_equal(np.round(final_output), targets))


def n_weights(run: RunConfig, dataset: Dataset) -> int:
    """Trainable numbers of one network: every weight, and every bias when there are biases."""
    n_inputs, n_outputs = dataset.inputs.shape[1], dataset.targets.shape[1]
    return weight_count(run.train.hidden_layers, n_inputs, n_outputs, bias=run.train.bias)


def solvable(dataset: Dataset) -> bool:
    """Whether a network can fit every training row exactly: a truth table (integer inputs
    and targets) in which no input row appears with two different targets. Noisy data
    (moons, circles, most CSVs) is not, so "solved" means nothing there."""
    inputs, targets = dataset.inputs, dataset.targets
    if not (
        np.array_equal(inputs, np.round(inputs)) and np.array_equal(targets, np.round(targets))
    ):
        return False
    rows = np.unique(np.hstack([inputs, targets]), axis=0)
    return len(np.unique(rows[:, : inputs.shape[1]], axis=0)) == len(rows)


def _tables(
    run: RunConfig, dataset: Dataset, entries: dict[int, dict[str, np.ndarray]], job: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    settings = cell_settings(run)
    size = n_weights(run, dataset)
    exact = solvable(dataset)
    fingerprint = dataset.fingerprint()
    # Derived from the shape and the data's units: neurons, depth, weights, front-loading.
    shape = shape_columns(
        run.train.hidden_layers, dataset.inputs.shape[1], dataset.targets.shape[1]
    )
    run_rows = []
    curve_frames = []
    for seed in run.seeds:
        entry = entries[seed]
        derived = {
            "status": "diverged" if bool(entry["diverged"]) else "ok",
            "solved": _solved(entry["final_output"], dataset.targets),
            "unstable": bool(entry["end_change"] > UNSTABLE_CHANGE),
            "n_weights": size,
            "solvable": exact,
            "max_abs_error": float(np.max(np.abs(dataset.targets - entry["final_output"]))),
        }
        run_rows.append(
            {
                **settings,
                **shape,
                "dataset_sha256": fingerprint,
                "arithmetic_version": ARITHMETIC_VERSION,
                "job": job,
                "seed": seed,
                **{
                    column.name: derived[column.name]
                    if column.source == "derived"
                    else entry[column.name].item()
                    for column in SEED_COLUMNS
                },
            }
        )
        curve_frames.append(
            pd.DataFrame(
                {
                    "job": job,
                    "seed": seed,
                    "iteration": entry["log_iterations"],
                    "error": entry["curve"],
                }
            )
        )
    curves = pd.concat(curve_frames, ignore_index=True)
    for column, value in reversed(list(settings.items())):
        curves.insert(0, column, value)
    return pd.DataFrame(run_rows), curves


def load_cached_entries(
    run: RunConfig, dataset: Dataset, keys: dict[int, str]
) -> dict[int, dict[str, np.ndarray]]:
    """The usable cache entries of a cell's seeds; a damaged one is named on stderr and
    left out, so that its seed is trained again (and its entry rewritten)."""
    cache_dir = Path(run.cache_dir)
    required = entry_arrays(run)
    entries: dict[int, dict[str, np.ndarray]] = {}
    for seed, key in keys.items():
        cached, notice = store.load_cached(cache_dir, key, seed, required)
        if cached is not None and cached["final_output"].shape != dataset.targets.shape:
            cached, notice = None, f"nnsweep: cache entry for seed {seed} has the wrong shape"
        if notice:
            print(notice, file=sys.stderr)
        if cached is not None:
            entries[seed] = cached
    return entries


def run_cell(
    run: RunConfig,
    job_dir: Path,
    job: int = 0,
    progress: ProgressSink | None = None,
    run_id: str | None = None,
) -> CellOutcome:
    """Train what the cache lacks for one cell and write the job's result files.

    Files, each written atomically, ``runs.parquet`` last: ``weights.npz``,
    ``curves.parquet``, ``provenance.json`` (with every file's SHA-256 and ``run_id``, the
    run that owns the folder), ``runs.parquet``. An earlier outcome in ``job_dir`` is
    removed first, so the folder never shows an older run's results as this one's.
    """
    store.clear_outcome(job_dir)
    dataset = load_dataset(run.dataset, run.train.output_activation)
    cache_dir = Path(run.cache_dir)
    keys = {seed: store.cache_key(seed_cache_fields(run, dataset, seed)) for seed in run.seeds}
    entries = load_cached_entries(run, dataset, keys)
    missing = [seed for seed in run.seeds if seed not in entries]
    iterations = run.train.iterations
    total = len(run.seeds) * iterations
    already = (len(run.seeds) - len(missing)) * iterations
    if progress is not None:
        progress(already, total)
    result = None
    if missing:

        def report(done: int) -> None:
            if progress is not None:
                progress(already + done * len(missing), total)

        holdout = (dataset.holdout_inputs, dataset.holdout_targets)
        if run.train.trainer == BUILTIN_TRAINER:
            result = train(
                dataset.inputs,
                dataset.targets,
                run.train,
                missing,
                progress=report,
                holdout=holdout,
            )
        else:
            data = trainer.TrainData(dataset.inputs, dataset.targets, dataset.holdout_inputs)
            result = trainer.train_with(
                run.train.trainer, run.train, data, dataset.holdout_targets, missing
            )
        origin = np.str_(store.seed_origin(store.provenance(), result.kernel))
        for seed, entry in zip(missing, split_by_seed(result), strict=True):
            entry["origin"] = origin  # where and when, for sweeps that reuse the entry
            store.store_cached(cache_dir, keys[seed], seed, entry)
            entries[seed] = entry
    runs, curves = _tables(run, dataset, entries, job)
    weights = {
        f"seed{seed}_{name}": array
        for seed in run.seeds
        for name, array in entries[seed].items()
        if name.startswith(("weight_", "bias_"))
    }
    runs_bytes = store.parquet_bytes(runs)
    checksums = {
        schema.WEIGHTS: store.write_npz(job_dir / schema.WEIGHTS, weights),
        schema.CURVES: store.write_parquet(job_dir / schema.CURVES, curves),
        schema.RUNS: store.sha256_bytes(runs_bytes),
    }
    store.write_json(
        job_dir / schema.PROVENANCE,
        {
            **store.provenance(),
            "run_id": run_id,
            "settings": cell_settings(run),
            "checksums": checksums,
            "cache_keys": keys,
            "trained_seeds": missing,
            # The arithmetic's name and version, and who computed it (numpy, or a native
            # kernel path): the numbers are the same whoever computed them.
            "arithmetic": arithmetic_label(run.train),
            "kernel": result.kernel if result is not None else None,
            # Set when numpy did the portable arithmetic because the kernel could not.
            "kernel_note": (getattr(result, "kernel_note", "") or None)
            if result is not None
            else None,
            "trainer": run.train.trainer,
            **(trainer_identity(run) if run.train.trainer != BUILTIN_TRAINER else {}),
            "seed_origins": store.group_origins(
                {seed: str(entries[seed].get("origin", "")) for seed in run.seeds}
            ),
        },
    )
    store.write_bytes(job_dir / schema.RUNS, runs_bytes)
    last_pass = {seed: entries[seed]["last_pass_output"] for seed in run.seeds}
    return CellOutcome(
        runs=runs,
        curves=curves,
        last_pass_outputs=last_pass,
        n_trained=len(missing),
    )
