"""The per-seed cache, addressed by the hash of everything that changes the numbers.

Cache entries record their own key, seed and a checksum of their arrays: an entry that is
unreadable, edited, truncated or filed under another key is trained again, with a notice.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from nnsweep.store.atomic import read_npz, write_npz


def cache_key(fields: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON of ``fields`` (floats written with ``repr``)."""

    def canonical(value: Any) -> Any:
        if isinstance(value, float):
            return repr(value)
        if isinstance(value, tuple | list):
            return [canonical(item) for item in value]
        return value

    text = json.dumps({k: canonical(v) for k, v in fields.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.npz"


# Fields every cache entry carries about itself (besides the seed's arrays).
ENTRY_KEY = "entry_key"  # the key it was stored under
ENTRY_SEED = "entry_seed"  # the seed it holds
ENTRY_SHA256 = "entry_sha256"  # checksum of every other array (names, dtypes, shapes, bytes)


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """Checksum of named arrays, independent of how the archive compressed them."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        if name in (ENTRY_KEY, ENTRY_SEED, ENTRY_SHA256):
            continue
        array = np.asarray(arrays[name])
        digest.update(f"{name}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def load_cached(
    cache_dir: Path, key: str, seed: int, required: Iterable[str] = ()
) -> tuple[dict[str, np.ndarray] | None, str]:
    """The cached arrays of one seed, or None with why it cannot be used.

    The reason is ``""`` when there is simply no entry; otherwise it is a one-line notice
    naming the file: the entry is unreadable, lacks ``required`` arrays, belongs to another
    key or seed, or its arrays no longer match their checksum. Such an entry is retrained.
    """
    path = cache_path(cache_dir, key)
    if not path.exists():
        return None, ""

    def damaged(why: str) -> tuple[None, str]:
        return None, f"nnsweep: cache entry {path} {why}; training seed {seed} again"

    try:
        entry = read_npz(path)
    except Exception as error:  # BadZipFile, truncated members, bad headers: all "damaged"
        return damaged(f"is unreadable ({type(error).__name__})")
    missing = [
        name for name in (ENTRY_KEY, ENTRY_SEED, ENTRY_SHA256, *required) if name not in entry
    ]
    if missing:
        return damaged(f"lacks {', '.join(missing)}")
    if (
        str(entry[ENTRY_KEY]) != key
        or entry[ENTRY_SEED].shape != ()
        or int(entry[ENTRY_SEED]) != seed
    ):
        return damaged("belongs to another key or seed")
    if str(entry[ENTRY_SHA256]) != arrays_sha256(entry):
        return damaged("does not match its checksum")
    return {name: array for name, array in entry.items() if not name.startswith("entry_")}, ""


def store_cached(cache_dir: Path, key: str, seed: int, arrays: Mapping[str, np.ndarray]) -> None:
    entry = dict(arrays)
    entry[ENTRY_KEY] = np.str_(key)
    entry[ENTRY_SEED] = np.int64(seed)
    entry[ENTRY_SHA256] = np.str_(arrays_sha256(arrays))
    path = cache_path(cache_dir, key)
    if path.is_dir() and not path.is_symlink():  # a folder in an entry's place (read as
        shutil.rmtree(path)  # damaged above) would fail its cell at every run
    write_npz(path, entry)
