"""A cell refused whole before anything runs: its settings, its data and its memory budget.

``config`` checks the settings, ``data`` loads the rows from the validated spec; a cell is
ready to run only when both pass and its stacked seeds fit in this machine's memory. The
single run, every cell of a sweep (before the first job) and each job call ``load_cell``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from nnsweep.config import BUILTIN_TRAINER, RunConfig, TrainSpec, to_run_config
from nnsweep.errors import ConfigError
from nnsweep.train import trainer
from nnsweep.train.data import Dataset, load_dataset


def estimated_bytes(dataset: Dataset, train: TrainSpec, n_seeds: int) -> int:
    """Rough peak memory of training ``n_seeds`` stacked networks, in bytes.

    Counts the float64 weights (with their gradient buffers) and the per-layer activation,
    delta and scratch buffers; the result is an estimate, good to a small factor.
    """
    n_samples, n_inputs = dataset.inputs.shape
    units = [n_inputs, *train.hidden_layers, dataset.targets.shape[1]]
    weights = sum(a * b for a, b in itertools.pairwise(units))
    activations = n_samples * sum(units[1:])
    per_seed = 2 * weights + 4 * activations
    return 8 * n_seeds * per_seed


def available_memory_bytes() -> int:
    """Physical memory of this machine (the budget a single job may not exceed)."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _gigabytes(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.1f} GiB"


def check_memory(run: RunConfig, dataset: Dataset) -> None:
    """Refuse a cell whose stacked seeds would not fit (before anything lists its seeds:
    ``n_seeds=1000000000`` is refused, not allocated)."""
    needed = estimated_bytes(dataset, run.train, run.n_seeds)
    budget = available_memory_bytes()
    if needed > budget:
        raise ConfigError(
            f"layers={'-'.join(map(str, run.train.hidden_layers))}: {run.n_seeds} stacked "
            f"network(s) would need about {_gigabytes(needed)}, more than this machine's "
            f"{_gigabytes(budget)}"
        )


def load_cell(cfg: Mapping[str, Any], base_dir: Path | None = None) -> tuple[RunConfig, Dataset]:
    """Validate a composed config and load its data: the cell, or a one-line ConfigError.

    ``base_dir`` anchors relative paths, as in ``config.to_run_config``.
    """
    run = to_run_config(cfg, base_dir)
    if run.train.trainer != BUILTIN_TRAINER:  # importable, before anything runs
        trainer.load(run.train.trainer, base_dir)
    dataset = load_dataset(run.dataset, run.train.output_activation)
    check_memory(run, dataset)
    return run, dataset
