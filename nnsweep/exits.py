"""User mistakes end here: one line on stderr, exit status 2, no traceback."""

from __future__ import annotations

import dataclasses
import difflib
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from hydra.errors import HydraException


def exit_with_error(message: str) -> NoReturn:
    print(f"nnsweep: error: {message}", file=sys.stderr)
    sys.exit(2)


# Hydra's message for a key that the schema lacks, as a config file sets it.
_UNKNOWN_KEY = re.compile(
    r"(?:In '(?P<where>[^']+)': )?ConfigKeyError[^\n]*\n?\s*Key '(?P<key>[^']+)' not in"
)


# Hydra's message for a key that the schema lacks, as the command line sets it.
_UNKNOWN_OVERRIDE = re.compile(r"Could not override '(?P<key>[^']+)'")


# Hydra's message for a value of the wrong type, as the command line sets it.
_BAD_VALUE = re.compile(
    r"Error merging override (?P<override>\S+).*?"
    r"(?:could not be converted to (?P<type>\w+)|(?P<bool>is not a valid bool))",
    re.DOTALL,
)
_TYPE_WORDS = {"Integer": "a whole number", "Float": "a number"}


# Launchers that come with an extra: the modules each needs, and the extra that installs them.
LAUNCHER_EXTRAS = {
    "ray": ("ray", "hydra_plugins.hydra_ray_launcher"),
    "slurm": ("submitit", "hydra_plugins.hydra_submitit_launcher"),
}


def launcher_extra(launcher: str) -> str | None:
    """The extra a launcher needs (``ray_cluster`` -> ``ray``), None for a built-in one."""
    if launcher.startswith("ray"):
        return "ray"
    if launcher.startswith("submitit") or launcher == "slurm":
        return "slurm"
    return None


def describe_missing_launcher(launcher: str) -> str | None:
    """One line naming the extra to install, when ``launcher``'s modules are not importable."""
    import importlib.util

    extra = launcher_extra(launcher)
    if extra is None:
        return None
    for module in LAUNCHER_EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            return (
                f"hydra/launcher={launcher}: needs {module}, from nnsweep's {extra} extra: "
                f"pip install 'nnsweep[{extra}]' (in a checkout: pip install -e '.[{extra}]')"
            )
    return None


_LAUNCHER_NOT_LOADED = re.compile(r"Could not load 'hydra/launcher/(?P<name>[\w-]+)'")


def _did_you_mean(key: str) -> str:
    from nnsweep.config import DatasetConf, NNSweepConf

    schema, prefix = (DatasetConf, "dataset.") if key.startswith("dataset.") else (NNSweepConf, "")
    known = [prefix + field.name for field in dataclasses.fields(schema)]
    match = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    return f"; did you mean {match[0]}?" if match else f"; known settings: {', '.join(known)}"


def describe_resolution_error(error: Exception, overrides: Sequence[str] = ()) -> str:
    """An interpolation OmegaConf cannot resolve (``results_dir=${nope}``), in one line
    naming the override that set it (or its key, when a config file did)."""
    key = str(getattr(error, "full_key", "") or "")
    why = str(getattr(error, "msg", "") or error).splitlines()[0].strip()
    typed = [o for o in overrides if key and o.split("=", 1)[0].lstrip("+~") == key]
    return f"{typed[-1] if typed else key or 'a setting'}: cannot be resolved ({why})"


def describe_file_error(error: Exception, overrides: Sequence[str]) -> str:
    """A config file (an experiment, a dataset) that YAML or UTF-8 cannot read, in one line."""
    import yaml

    picked = ", ".join(o for o in overrides if o.split("=")[0] in ("experiments", "dataset"))
    where = f"{picked}: " if picked else ""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        problem = error.problem or error.context or "unreadable"
        return f"{mark.name}, line {mark.line + 1}: not valid YAML ({problem})"
    if isinstance(error, UnicodeDecodeError):
        return f"{where}a config file is not UTF-8 text (byte {error.start})"
    return f"{where}a config file is not valid YAML ({type(error).__name__})"


def describe_hydra_error(error: HydraException) -> str:
    """Hydra's multi-line composition errors, folded into one line."""
    from hydra.errors import MissingConfigException

    if isinstance(error, MissingConfigException) and error.missing_cfg_file:
        group, _, name = error.missing_cfg_file.rpartition("/")
        if group and error.options is not None:
            choices = ", ".join(sorted(error.options)) or "none"
            kind = group.removesuffix("s")  # "experiments" group, one experiment
            return f"{group}={name}: unknown {kind}; choose one of {choices}"
    unknown = _UNKNOWN_KEY.search(str(error))
    if unknown:  # a key the schema lacks, set by a config file (an experiment)
        where, key = unknown.group("where") or "a config file", unknown.group("key")
        if key in ("experiments", "dataset"):  # the file held no mapping of settings
            return f"{where}: the file is empty or not a mapping of settings"
        return f"{where}: unknown setting {key}{_did_you_mean(key)}"
    not_loaded = _LAUNCHER_NOT_LOADED.search(str(error))
    if not_loaded and launcher_extra(not_loaded["name"]):  # its plugin is not installed
        extra = launcher_extra(not_loaded["name"])
        return (
            f"hydra/launcher={not_loaded['name']}: not installed; it comes with nnsweep's "
            f"{extra} extra: pip install 'nnsweep[{extra}]'"
        )
    bad_value = _BAD_VALUE.search(f"{error} {error.__cause__}")
    if bad_value:  # iterations=abc: in nnsweep's words, not Hydra's
        kind = "true or false" if bad_value["bool"] else _TYPE_WORDS.get(bad_value["type"])
        if kind:
            return f"{bad_value['override']}: must be {kind}"
    overridden = _UNKNOWN_OVERRIDE.search(str(error))
    # A key the schema lacks, on the command line ("not in" is in the error or its cause).
    if overridden and "not in" in f"{error} {error.__cause__}":
        key = overridden.group("key")
        return f"{key}: unknown setting{_did_you_mean(key)} (nnsweep --help lists them)"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    cause = error.__cause__
    if cause is not None:
        lines.append(str(cause).splitlines()[0].strip())
    return " ".join(lines[:1] + lines[-1:] if len(lines) > 1 else lines)
