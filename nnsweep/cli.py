"""Command line: route to a command or to the Hydra task, and report user mistakes.

``nnsweep [overrides]``            one cell (prints the tutorial's error-margin lines)
``nnsweep -m [overrides]``         a Hydra multirun, one job per cell
``nnsweep experiments=NAME``       a sweep defined in experiments/NAME.yaml
``nnsweep collect DIR``            rebuild a sweep's tables (and report) from its files
``nnsweep report DIR``             rebuild a sweep's report from its stored tables
``python -m nnsweep`` is the same. The Hydra task is nnsweep/sweep/task.py, the sweep-end
callback nnsweep/sweep/callback.py.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from nnsweep import schema, store
from nnsweep.config import ConfigError
from nnsweep.errors import DamagedFileError, SweepFolderError
from nnsweep.exits import exit_with_error
from nnsweep.locations import CONF_DIR
from nnsweep.sweep import ownership
from nnsweep.train import native
from nnsweep.train.shapes import expand_overrides

__all__ = ["COMMANDS", "CONF_DIR", "main"]


def _sweep_dir_argument(command: str, arguments: Sequence[str]) -> Path:
    """The one sweep folder a command was given; anything else is refused in one line."""
    needs = f"{command} needs one sweep folder"
    if len(arguments) != 1:
        exit_with_error(f"{needs}, got {' '.join(arguments) or 'none'}")
    sweep_dir = Path(arguments[0])
    try:
        store.check_sweep_dir(sweep_dir, tables_only=command == "report")
    except SweepFolderError as error:
        exit_with_error(f"{needs}: {error}")
    return sweep_dir


def _collect_command(arguments: Sequence[str]) -> int:
    sweep_dir = _sweep_dir_argument("collect", arguments)
    try:
        # A sweep that is still running owns its folder: collect waits for nothing, it refuses.
        ownership.claim(sweep_dir, keep_owner=True)
    except SweepFolderError as error:
        exit_with_error(f"collect: {error}")
    from nnsweep.sweep.callback import finish_sweep

    try:
        return finish_sweep(sweep_dir)
    except SweepFolderError as error:  # nothing to collect: the tables stay as they were
        exit_with_error(f"collect: {error}")


def _check_tables(sweep_dir: Path) -> None:
    """A report needs a readable ``runs.parquet`` with at least one trained seed."""
    import pandas as pd

    path = sweep_dir / schema.RUNS
    redo = f"rebuild it with `python -m nnsweep collect {sweep_dir}`"
    try:
        store.check_tables(sweep_dir)
    except DamagedFileError as error:
        exit_with_error(f"report: {error}; {redo.replace('it', 'the tables', 1)}")
    try:
        runs = schema.with_legacy_settings(pd.read_parquet(path))
    except Exception as error:  # pyarrow's many errors for a garbled file
        exit_with_error(f"report: {path}: unreadable ({type(error).__name__}); {redo}")
    missing = [column for column in ("status", *schema.CELL_COLUMNS) if column not in runs]
    if missing:
        exit_with_error(f"report: {path}: lacks the column(s) {', '.join(missing)}; {redo}")
    if not (runs["status"] != "failed").any():
        exit_with_error(f"report: {path}: holds no trained seed, so there is nothing to report")


def _report_command(arguments: Sequence[str]) -> int:
    sweep_dir = _sweep_dir_argument("report", arguments)
    _check_tables(sweep_dir)
    from nnsweep.report.sweep_report import write_report

    path = write_report(sweep_dir)
    print(f"nnsweep: report written to {path}")
    return 0


COMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "collect": _collect_command,
    "report": _report_command,
}


def _interrupt(signum: int, _frame: Any) -> None:
    # SIGTERM and SIGHUP end a run the way Ctrl-C does: joblib stops its workers, the
    # native kernel's threads see their stop flag, and nothing half-done is written.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _utf8_everywhere() -> None:
    """Under a non-UTF-8 locale, start again in Python's UTF-8 mode: arguments, paths, notes
    and every file are then UTF-8, instead of crashing on (or dropping) non-ASCII text."""
    if sys.flags.utf8_mode or sys.getfilesystemencoding().lower().replace("-", "") == "utf8":
        return
    arguments = [os.fsencode(argument) for argument in sys.argv[1:]]  # the bytes as typed
    environment = {**os.environ, "PYTHONUTF8": "1"}  # the workers are started in it too
    os.execve(sys.executable, [sys.executable, "-m", "nnsweep", *arguments], environment)


def main() -> None:
    _utf8_everywhere()
    arguments = sys.argv[1:]
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    try:
        native.check_environment()
    except ConfigError as error:
        exit_with_error(str(error))
    try:
        if arguments and arguments[0] in COMMANDS:
            sys.exit(COMMANDS[arguments[0]](arguments[1:]))
        # layers=budget(...) becomes its list of shapes before Hydra parses the command line
        # (Hydra would read it as an unknown grammar function), so multirun.yaml lists them.
        try:
            arguments = expand_overrides(arguments)
        except ConfigError as error:
            exit_with_error(str(error))
        sys.argv[1:] = arguments
        from nnsweep.sweep.task import hydra_main, preflight

        preflight(arguments)
        hydra_main()
    except KeyboardInterrupt as interrupt:
        name = str(interrupt) or "SIGINT"
        print(
            f"nnsweep: interrupted ({name}); the workers are stopped. Seeds that finished are "
            "cached: running the same command again trains only the rest.",
            file=sys.stderr,
        )
        sys.exit(128 + getattr(signal, name, signal.SIGINT))
