"""Small value checks shared by the settings (config) and the dataset keys (train.data).

Each takes the key and the value as the user gave them and returns the checked value, or
raises ``ConfigError`` in one line naming both.
"""

from __future__ import annotations

from typing import Any

from nnsweep.errors import ConfigError


def show(value: Any) -> str:
    """A value as the user would type it, quoted when empty."""
    if isinstance(value, str):
        return repr(value) if value == "" or value.strip() != value else value
    return str(value)


def whole_number(key: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """An int (not a bool) within [minimum, maximum]."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{key}={show(value)}: must be a whole number >= {minimum}")
    if value < minimum:
        raise ConfigError(f"{key}={show(value)}: must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{key}={show(value)}: must be <= {maximum:,}")
    return value
