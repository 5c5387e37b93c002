"""The Hydra task: one cell, as a single run or as one job of a sweep.

Hydra composes the config; this turns it into a frozen ``RunConfig``, checks that its data
loads, and hands it to ``run_cell``. ``preflight`` validates a single run before Hydra
creates its folder.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.errors import HydraException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf, open_dict
from omegaconf.errors import OmegaConfBaseException

from nnsweep import schema, store
from nnsweep.config import (
    ConfigError,
    RunConfig,
    cell_settings,
    check_output_paths,
    register_configs,
)
from nnsweep.exits import (
    describe_file_error,
    describe_hydra_error,
    describe_missing_launcher,
    describe_resolution_error,
    exit_with_error,
)
from nnsweep.help import register_resolver
from nnsweep.locations import CONF_DIR
from nnsweep.sweep import ownership
from nnsweep.sweep.cell import load_cell
from nnsweep.sweep.job import run_cell
from nnsweep.sweep.progress import progress_bar
from nnsweep.train import native
from nnsweep.train.trainer import TrainerError

log = logging.getLogger("nnsweep")


def register_plugins() -> None:
    """Register nnsweep's Hydra plugins (search path, its config source, the sweeper) by hand.

    Hydra finds plugins by listing the folders of the ``hydra_plugins`` namespace package.
    setuptools' default editable install maps ``hydra_plugins.nnsweep_plugins`` by name
    only, which a listing does not see: run from any folder but the checkout, every
    experiment was an unknown setting. Registering twice (a wheel, a compat install) is a
    no-op: Hydra keeps each class once.
    """
    from hydra.core.plugins import Plugins

    from hydra_plugins.nnsweep_plugins.config_source import NNSweepGroupSource
    from hydra_plugins.nnsweep_plugins.search_path import NNSweepSearchPathPlugin
    from hydra_plugins.nnsweep_plugins.sweeper import NNSweepSweeper

    for plugin in (NNSweepGroupSource, NNSweepSearchPathPlugin, NNSweepSweeper):
        Plugins.instance().register(plugin)


register_configs()
register_plugins()
register_resolver()
ownership.register_resolver()


def _is_multirun(cfg: DictConfig) -> bool:
    return str(cfg.hydra.get("mode")) in {"MULTIRUN", str(RunMode.MULTIRUN)}


MULTIRUN_FLAGS = ("-m", "--multirun")


def _parse_each(overrides: Sequence[str]) -> list[Any]:
    """Hydra's parse of every override; the first bad one exits with one line naming it."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed += parser.parse_overrides([text])
        except HydraException:
            exit_with_error(
                f"{text}: not a valid override; write key=value, and quote a value holding "
                "spaces, brackets or non-ASCII letters, e.g. notes='a b'"
            )
    return parsed


# Hydra's output folders, by mode. Empty (``hydra.sweep.dir=$OUT`` with OUT unset), Hydra
# writes into the working folder (or a job into the sweep folder), over the files there.
HYDRA_OUTPUT_KEYS = {
    "hydra.run.dir": ("working", "results/run/mine"),
    "hydra.sweep.dir": ("working", "results/my_sweep"),
    "hydra.sweep.subdir": ("sweep", "'${hydra.job.num}'"),
}


def check_hydra_output_dirs(cfg: DictConfig, multirun: bool) -> None:
    """Refuse an empty (or filesystem-root) Hydra output folder, naming the key."""
    for key, (folder, example) in HYDRA_OUTPUT_KEYS.items():
        if key.startswith("hydra.sweep.") != multirun:
            continue
        try:
            value = OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
        except Exception:  # resolved by Hydra only when a job runs (hydra.job.num)
            continue
        text = "" if value is None else str(value)
        try:
            resolved = Path(text).resolve()
        except (RuntimeError, OSError) as error:  # a symbolic link loop (3.11: RuntimeError)
            exit_with_error(f"{key}={text}: cannot be resolved ({error})")
        if not text.strip():
            exit_with_error(
                f"{key}={text!r}: is empty, so the output would go into the {folder} folder "
                f"itself; give a folder, e.g. {key}={example} (is a shell variable unset?)"
            )
        if folder == "working" and resolved == Path(resolved.anchor):
            exit_with_error(f"{key}={text}: is the filesystem root; give a folder")


def check_launcher(cfg: DictConfig) -> None:
    """joblib's ``n_jobs``: 0 runs nothing (joblib refuses it only once the sweep started)."""
    n_jobs = OmegaConf.select(cfg, "hydra.launcher.n_jobs", default=None)
    if n_jobs is not None and (
        isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0
    ):
        exit_with_error(
            f"hydra.launcher.n_jobs={n_jobs}: give the number of jobs to run at once, e.g. 2, "
            "or -1 for one per core"
        )


def preflight(arguments: Sequence[str]) -> None:
    """Check the command line before Hydra creates anything, each mistake in one line.

    Override syntax, the config files it picks (experiments, datasets), a list of values
    without -m; and for a single run every value. A sweep's cells are each validated by
    the nnsweep sweeper. Hydra's own flags (--help, --cfg, ...) are left to Hydra.
    """
    import yaml
    from hydra import compose, initialize_config_dir

    flags = [argument for argument in arguments if argument.startswith("-")]
    if any(flag not in MULTIRUN_FLAGS for flag in flags):
        return
    overrides = [argument for argument in arguments if argument not in MULTIRUN_FLAGS]
    parsed = _parse_each(overrides)
    for override in parsed:  # before Hydra's "Could not load" or a job's ModuleNotFoundError
        if override.get_key_element() == "hydra/launcher" and not override.is_sweep_override():
            missing = describe_missing_launcher(str(override.value()))
            if missing:
                exit_with_error(missing)
    sweeps = [str(o.input_line) for o in parsed if o.is_sweep_override()]
    fixed = [str(o.input_line) for o in parsed if not o.is_sweep_override()]
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=fixed, return_hydra_config=True)
    except HydraException as error:
        exit_with_error(describe_hydra_error(error))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        exit_with_error(describe_file_error(error, overrides))
    try:  # the user's folders first: their mistakes are named, not Hydra's folders below
        user = cfg.copy()
        with open_dict(user):
            del user["hydra"]
        settings = OmegaConf.to_container(user, resolve=True)
        assert isinstance(settings, dict)
        check_output_paths(settings)
    except OmegaConfBaseException as error:
        exit_with_error(describe_resolution_error(error, overrides))
    except ConfigError as error:
        exit_with_error(str(error))
    check_hydra_output_dirs(cfg, multirun=bool(flags) or _is_multirun(cfg))
    if bool(flags) or _is_multirun(cfg):
        check_launcher(cfg)
    if flags or _is_multirun(cfg):
        return
    if sweeps:
        _refuse_a_bad_sweep_value(parsed, fixed)
        exit_with_error(
            f"{sweeps[0]}: a list of values is a sweep; add -m for one job per value, "
            f"e.g. python -m nnsweep -m {' '.join(sweeps)}"
        )
    with open_dict(cfg):
        del cfg["hydra"]
    try:
        load_cell(OmegaConf.to_container(cfg, resolve=True))
    except ConfigError as error:
        exit_with_error(str(error))


def _refuse_a_bad_sweep_value(parsed: list[Any], fixed: list[str]) -> None:
    """Refuse the first value of a sweep that -m would refuse, so the -m hint never suggests a
    command that fails (``layers=8,x`` suggested ``-m layers=8,x``, which then failed on x)."""
    from hydra import compose, initialize_config_dir

    for override in parsed:
        if not override.is_sweep_override():
            continue
        try:
            values = list(override.sweep_string_iterator())[:MAX_CHECKED_SWEEP_VALUES]
        except HydraException:  # a glob or an interval: -m itself will say what it makes of it
            continue
        for value in values:
            line = f"{override.get_key_element()}={value}"
            try:
                with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                    cfg = compose("config", overrides=[*fixed, line])
                load_cell(OmegaConf.to_container(cfg, resolve=True))
            except ConfigError as error:
                exit_with_error(str(error))
            except HydraException as error:
                exit_with_error(describe_hydra_error(error))
            except OmegaConfBaseException as error:
                exit_with_error(describe_resolution_error(error, [line]))


MAX_CHECKED_SWEEP_VALUES = 20  # a longer list is checked by -m itself, job by job


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
    # stderr, so stdout stays the tutorial's own trace
    print(f"nnsweep: results in {job_dir}", file=sys.stderr)


def _run_job(run: RunConfig, job_dir: Path, job: int) -> None:
    """A multirun job: a code failure becomes failure.json, not a crashed sweep."""
    progress = store.ProgressFile(job_dir / schema.PROGRESS, run.n_seeds * run.train.iterations)
    # The run that owns the sweep folder; gathering takes only its jobs' files.
    owner = ownership.owner(job_dir.parent)
    run_id = owner.get("run_id")
    ownership.exit_with_parent(owner)
    try:
        run_cell(run, job_dir, job=job, progress=progress, run_id=run_id)
    except Exception as error:  # recorded as the cell's outcome; the sweep goes on
        reason = (
            str(error) if isinstance(error, TrainerError) else f"{type(error).__name__}: {error}"
        )
        log.error("cell %s failed: %s (traceback in %s)", job, reason, schema.FAILURE)
        store.write_json(
            job_dir / schema.FAILURE,
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
        run, _ = load_cell(cfg, base_dir=launched_from)
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
            except TrainerError as error:  # the user's bug, in one line (no nnsweep frames)
                exit_with_error(str(error))
            except native.KernelUnavailableError as error:
                exit_with_error(f"NNSWEEP_KERNEL=native: {error}")
