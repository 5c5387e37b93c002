"""Command line: Hydra at the edge, frozen dataclasses below.

``python -m nnsweep [overrides]``      one cell (prints the tutorial's error-margin lines)
``python -m nnsweep -m [overrides]``   a Hydra multirun, one job per cell
``python -m nnsweep experiments=NAME`` a sweep defined in experiments/NAME.yaml
``python -m nnsweep collect DIR``      rebuild a sweep's tables (and report) from its files
``python -m nnsweep report DIR``       rebuild a sweep's report from its stored tables
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException, MissingConfigException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict

from nnsweep import native, ownership, store
from nnsweep.config import ConfigError, RunConfig, cell_settings, register_configs, to_run_config
from nnsweep.errors import SweepFolderError
from nnsweep.progress import progress_bar
from nnsweep.run import run_cell
from nnsweep.shapes import expand_overrides

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
log = logging.getLogger("nnsweep")

register_configs()
ownership.register_resolver()


# --------------------------------------------------------------------------------------
# User mistakes: one line on stderr, exit status 2, no traceback
# --------------------------------------------------------------------------------------


def exit_with_error(message: str) -> NoReturn:
    print(f"nnsweep: error: {message}", file=sys.stderr)
    sys.exit(2)


def describe_hydra_error(error: HydraException) -> str:
    """Hydra's multi-line composition errors, folded into one line."""
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


def _is_multirun(cfg: DictConfig) -> bool:
    return str(cfg.hydra.get("mode")) in {"MULTIRUN", str(RunMode.MULTIRUN)}


def preflight(overrides: Sequence[str]) -> None:
    """Validate a single run before Hydra creates its output directory.

    Multiruns are validated cell by cell by the nnsweep sweeper instead.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException:
        return  # Hydra reports syntax errors itself
    if any(override.is_sweep_override() for override in parsed):
        return
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
    except HydraException as error:
        exit_with_error(describe_hydra_error(error))
    if _is_multirun(cfg):
        return
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        to_run_config(OmegaConf.to_container(cfg, resolve=True))
    except ConfigError as error:
        exit_with_error(str(error))


# --------------------------------------------------------------------------------------
# The Hydra task: one cell
# --------------------------------------------------------------------------------------


def _print_single_run(run: RunConfig, runs: Any, curves: Any, outputs: dict) -> None:
    if run.n_seeds == 1:
        seed = run.seeds[0]
        # The tutorial's trace: the error before the update at every log_every-th iteration
        # (the curve's last point, the final weights' error, is not part of it).
        iteration = curves["iteration"]
        logged = curves[(iteration % run.train.log_every == 0) & (iteration < run.train.iterations)]
        for margin in logged["error"]:
            print(f"Current error margin: {margin}")
        print(outputs[seed])
        return
    for row in runs.itertuples():
        print(f"seed {row.seed}: final error margin {row.final_error} ({row.status})")
    print(f"median final error margin: {runs['final_error'].median()}")


def _run_single(run: RunConfig, job_dir: Path) -> None:
    total = run.n_seeds * run.train.iterations
    with progress_bar(total, "training", run.progress) as bar:

        def show(done: int, _total: int) -> None:
            bar.update(done - bar.n)

        outcome = run_cell(run, job_dir, job=0, progress=show)
    _print_single_run(run, outcome.runs, outcome.curves, outcome.last_pass_outputs)


def _run_job(run: RunConfig, job_dir: Path, job: int) -> None:
    """A multirun job: a code failure becomes failure.json, not a crashed sweep."""
    progress = store.ProgressFile(job_dir / store.PROGRESS, run.n_seeds * run.train.iterations)
    # The run that owns the sweep folder; gathering takes only its jobs' files.
    owner = ownership.owner(job_dir.parent)
    run_id = owner.get("run_id")
    ownership.exit_with_parent(owner)
    try:
        run_cell(run, job_dir, job=job, progress=progress, run_id=run_id)
    except Exception as error:  # recorded as the cell's outcome; the sweep goes on
        reason = f"{type(error).__name__}: {error}"
        log.error("cell %s failed: %s (traceback in %s)", job, reason, store.FAILURE)
        store.write_json(
            job_dir / store.FAILURE,
            {
                "reason": reason,
                "traceback": traceback.format_exc(),
                "settings": cell_settings(run),
                "run_id": run_id,
            },
        )


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="config")
def hydra_main(cfg: DictConfig) -> None:
    from threadpoolctl import threadpool_limits

    hydra_cfg = HydraConfig.get()
    # Remote launchers (Ray, SLURM) run jobs in another working directory: every relative
    # path is taken from the directory the user launched from, on a shared filesystem.
    launched_from = Path(hydra_cfg.runtime.cwd)
    try:
        run = to_run_config(cfg, base_dir=launched_from)
    except ConfigError as error:
        exit_with_error(str(error))
    if hydra_cfg.mode == RunMode.MULTIRUN:
        job_dir = launched_from / hydra_cfg.sweep.dir / hydra_cfg.sweep.subdir
    else:
        job_dir = launched_from / hydra_cfg.run.dir
    # Each job is one core's worth of work; tiny matrices gain nothing from BLAS threads.
    with threadpool_limits(limits=1, user_api="blas"):
        if hydra_cfg.mode == RunMode.MULTIRUN:
            _run_job(run, job_dir, int(hydra_cfg.job.num))
        else:
            try:
                _run_single(run, job_dir)
            except native.KernelUnavailableError as error:
                exit_with_error(f"NNSWEEP_KERNEL=native: {error}")


# --------------------------------------------------------------------------------------
# End of a multirun: tables and report from the sweep directory
# --------------------------------------------------------------------------------------


def _release_idle_workers() -> None:
    """Stop joblib's idle worker processes now rather than at interpreter exit.

    Only an executor that exists is stopped (asking loky for one would start one); if
    loky's module changes shape, the workers simply stop at exit as before.
    """
    reusable = sys.modules.get("joblib.externals.loky.reusable_executor")
    executor = getattr(reusable, "_executor", None)
    if executor is not None:
        executor.shutdown(wait=False, kill_workers=True)


def finish_sweep(sweep_dir: Path, lost: dict[int, dict[str, Any]] | None = None) -> int:
    """Gather tables, write the report, print a one-line summary; 1 if any cell failed.

    ``lost``: jobs that may have no files (job number -> settings and reason), when the
    sweep's launcher lost a worker or a job could not write.
    """
    try:
        runs, _curves, summary, notices = store.collect(sweep_dir, lost)
        for notice in notices:
            print(notice, file=sys.stderr)
        if (runs["status"] != "failed").any():  # a report needs at least one trained seed
            # Imported only now: collecting the tables needs none of the report's libraries.
            from nnsweep.report import write_report

            write_report(sweep_dir)
    except OSError as error:  # a full disk, a folder gone read-only
        print(
            f"nnsweep: error: cannot write the tables of {sweep_dir}: {error.strerror or error}; "
            f"fix that, then run `python -m nnsweep collect {sweep_dir}`",
            file=sys.stderr,
        )
        return 1
    n_failed = int((runs["status"] == "failed").sum()) if not runs.empty else 0
    n_diverged = int((runs["status"] == "diverged").sum()) if not runs.empty else 0
    n_seeds = int(runs["seed"].notna().sum()) if not runs.empty else 0
    print(
        f"nnsweep: {len(summary)} cell(s), {n_seeds} seed(s), {n_diverged} diverged, "
        f"{n_failed} failed cell(s); tables in {sweep_dir}"
    )
    if n_failed:
        failed = runs[runs["status"] == "failed"].iloc[0]
        print(
            f"nnsweep: error: {n_failed} cell(s) failed; first: job {failed['job']} "
            f"(layers={failed['layers']}): {failed['reason']}",
            file=sys.stderr,
        )
        return 1
    return 0


def finish_broken_sweep(sweep_dir: Path, cells: Sequence[RunConfig], error: BaseException) -> int:
    """The launcher gave up (a worker was killed, as by the OOM killer, or a job could not
    even record its failure, as on a full disk): the jobs without files become failed rows
    with the reason, the others are gathered, and the summary line says so."""
    log.debug("the sweep's launcher failed", exc_info=error)
    first_line = (str(error).strip().splitlines() or [""])[0]
    reason = f"no result: {type(error).__name__}: {first_line}".rstrip(": ")
    lost = {job: {**cell_settings(cell), "reason": reason} for job, cell in enumerate(cells)}
    return finish_sweep(sweep_dir, lost) or 1


def _import_report_modules() -> None:
    # Lowest priority (Linux nices threads one by one): the jobs keep the cores.
    if hasattr(os, "setpriority"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
    import nnsweep.report  # noqa: F401  (matplotlib and scipy: about 2 s)


class SweepTablesCallback(Callback):
    """Hydra callback: build the sweep's tables and report when a multirun ends."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Before Hydra creates the folder: a second run into it is refused, not mixed in.
        try:
            ownership.claim(Path(config.hydra.run.dir))
        except SweepFolderError as error:
            exit_with_error(str(error))

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        # The main process only waits while the jobs train, so it imports the report's
        # libraries meanwhile instead of after the last job. Python's import lock makes a
        # later import wait for this one to finish.
        threading.Thread(target=_import_report_modules, daemon=True).start()

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        # Stopping the workers takes a moment; it overlaps the tables and the report.
        threading.Thread(target=_release_idle_workers).start()
        try:
            status = finish_sweep(sweep_dir)
        except Exception as error:
            log.exception("gathering %s failed", sweep_dir)
            print(
                f"nnsweep: error: gathering the tables of {sweep_dir} failed: "
                f"{type(error).__name__}: {error}; rerun `python -m nnsweep collect {sweep_dir}`",
                file=sys.stderr,
            )
            sys.exit(1)
        if status:
            sys.exit(status)


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------


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
    return finish_sweep(sweep_dir)


def _report_command(arguments: Sequence[str]) -> int:
    sweep_dir = _sweep_dir_argument("report", arguments)
    from nnsweep.report import write_report

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
        if not any(argument.startswith("-") for argument in arguments):
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
