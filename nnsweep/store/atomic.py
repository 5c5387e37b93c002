"""Atomic writes and checked reads: every result file goes through here.

* every file is written under a temporary name and renamed into place, so a reader never
  sees half a file, and a killed process leaves at most a stray ``.*.tmp`` file behind;
* results are Parquet, JSON or ``.npz`` read with ``allow_pickle=False``, never pickles;
* every file is read and written as UTF-8, whatever the locale.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnsweep.errors import DamagedFileError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(temporary_path)``, then rename the temporary file onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(temporary)
        os.replace(temporary, path)
    except OSError as error:
        if error.filename is None:  # a full disk says nothing of where: name the file
            raise OSError(error.errno, error.strerror, str(path)) from error
        raise
    finally:
        if temporary.exists():
            temporary.unlink()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_bytes(path: Path, data: bytes) -> str:
    """Write ``data`` atomically; its SHA-256, to be recorded and checked when read back."""
    atomic_write(path, lambda p: p.write_bytes(data))
    return sha256_bytes(data)


def write_text(path: Path, text: str) -> None:
    """UTF-8 whatever the locale: a non-ASCII note or path must not crash or vanish."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    write_text(path, json.dumps(payload, indent=2, sort_keys=True, ensure_ascii=False))


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from ``path``; a garbled or non-object file is a ``DamagedFileError``."""
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:  # UnicodeDecodeError and JSONDecodeError included
        raise DamagedFileError(path, f"not readable JSON ({type(error).__name__})") from None
    if not isinstance(payload, dict):
        raise DamagedFileError(path, "not a JSON object")
    return payload


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def write_parquet(path: Path, frame: pd.DataFrame) -> str:
    return write_bytes(path, parquet_bytes(frame))


def npz_bytes(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()  # a file object also stops numpy adding '.npz'
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def write_npz(path: Path, arrays: Mapping[str, np.ndarray]) -> str:
    return write_bytes(path, npz_bytes(arrays))


def read_npz(path: Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
