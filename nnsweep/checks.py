"""Small value checks shared by the settings (config) and the dataset keys (train.data).

Each takes the key and the value as the user gave them and returns the checked value, or
raises ``ConfigError`` in one line naming both. The constraints (``Interval``, ``Choice``,
``Rule``) are such checks as data, in the spirit of scikit-learn's ``_parameter_constraints``:
each also says in words which values it takes, so ``--help`` and the README's settings table
print the ranges that the check enforces, from the same object.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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


def finite_number(key: str, value: Any, above: float) -> float:
    """A finite int or float (not a bool) strictly above ``above``, as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"{key}={show(value)}: must be a number")
    number = float(value)
    if not math.isfinite(number) or number <= above:
        raise ConfigError(f"{key}={show(value)}: must be a finite number > {above:g}")
    return number


@dataclass(frozen=True)
class Interval:
    """A whole number in [low, high], or a finite float above ``low`` (``int`` or ``float``)."""

    kind: type  # int: a whole number, low and high included; float: a finite number > low
    low: float  # the smallest whole number allowed, or the bound a float must exceed
    high: int | None = None  # the largest whole number allowed (int only); None: no bound

    def __call__(self, key: str, value: Any) -> Any:
        if self.kind is int:
            return whole_number(key, value, int(self.low), self.high)
        return finite_number(key, value, self.low)

    def describe(self) -> str:
        """The values, in words: "1 to 1,000,000,000", ">= 0", "> 0"."""
        if self.kind is float:
            return f"> {self.low:g}"
        if self.high is None:
            return f">= {int(self.low)}"
        return f"{int(self.low)} to {self.high:,}"


@dataclass(frozen=True)
class Choice:
    """One of the keys of a dispatch table (``ACTIVATIONS``, ``ARITHMETICS``, ...)."""

    table: Mapping[str, Any]  # the names allowed, in the order they are shown

    def __call__(self, key: str, value: Any) -> str:
        if not isinstance(value, str) or value not in self.table:
            raise ConfigError(
                f"{key}={show(value)}: unknown; choose one of {', '.join(sorted(self.table))}"
            )
        return value

    def describe(self) -> str:
        return " | ".join(self.table)


@dataclass(frozen=True)
class Rule:
    """A check that no interval or choice expresses, with its values in words."""

    check: Callable[[str, Any], Any]  # (key, value) -> the checked value, or ConfigError
    values: str  # which values it takes, in a few words

    def __call__(self, key: str, value: Any) -> Any:
        return self.check(key, value)

    def describe(self) -> str:
        return self.values
