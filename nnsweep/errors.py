"""Exception types for user mistakes and damaged files, shared across modules."""

from __future__ import annotations

from pathlib import Path


class ConfigError(ValueError):
    """A user mistake in the configuration; its message is one line naming key and value."""


class SweepFolderError(ValueError):
    """A folder given as a sweep folder is not one (or is owned by another run): one line."""


class DamagedFileError(ValueError):
    """A result file that cannot be trusted: garbled, truncated or not matching its checksum."""

    def __init__(self, path: Path, why: str) -> None:
        super().__init__(f"{path}: {why}")
        self.path = path
        self.why = why
