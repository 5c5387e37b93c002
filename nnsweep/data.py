"""Datasets as float64 arrays, and a fingerprint of their contents for cache keys."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from nnsweep.config import DatasetSpec


@dataclass(frozen=True, eq=False)
class Dataset:
    """Training data as arrays.

    Attributes
    ----------
    name : str
    inputs : ndarray, shape (n_samples, n_inputs), float64
    targets : ndarray, shape (n_samples, n_outputs), float64
    """

    name: str
    inputs: np.ndarray
    targets: np.ndarray

    def fingerprint(self) -> str:
        """SHA-256 of the shapes and bytes of inputs and targets: same data, same key."""
        digest = hashlib.sha256()
        for array in (self.inputs, self.targets):
            digest.update(repr(array.shape).encode())
            digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
        return digest.hexdigest()


def load_dataset(spec: DatasetSpec) -> Dataset:
    """Build the arrays of a validated dataset spec."""
    inputs = np.array(spec.inputs, dtype=np.float64)
    targets = np.array(spec.targets, dtype=np.float64)
    inputs.setflags(write=False)
    targets.setflags(write=False)
    return Dataset(name=spec.name, inputs=inputs, targets=targets)
