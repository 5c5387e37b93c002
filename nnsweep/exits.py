"""User mistakes end here: one line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from hydra.errors import HydraException


def exit_with_error(message: str) -> NoReturn:
    print(f"nnsweep: error: {message}", file=sys.stderr)
    sys.exit(2)


def describe_hydra_error(error: HydraException) -> str:
    """Hydra's multi-line composition errors, folded into one line."""
    from hydra.errors import MissingConfigException

    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, name = error.missing_cfg_file.rpartition("/")
        if group and error.options is not None:
            choices = ", ".join(sorted(error.options)) or "none"
            kind = group.removesuffix("s")  # "experiments" group, one experiment
            return f"{group}={name}: unknown {kind}; choose one of {choices}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    cause = error.__cause__
    if cause is not None:
        lines.append(str(cause).splitlines()[0].strip())
    return " ".join(lines[:1] + lines[-1:] if len(lines) > 1 else lines)
