"""A sweep: expand the grid, validate every cell, launch the jobs in batches.

Plain functions behind the thin ``NNSweepSweeper`` plugin (hydra_plugins/nnsweep_plugins),
written against Hydra's public API only: overrides come from ``OverridesParser``, each cell
is composed once with ``ConfigLoader.load_sweep_config`` and the configured launcher runs
each batch with ``Launcher.launch(batch, initial_job_idx)``, as Hydra's own sweepers do.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
from collections.abc import Collection, Sequence
from concurrent.futures import BrokenExecutor
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.utils import JobReturn
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf, open_dict, read_write
from omegaconf.errors import OmegaConfBaseException

from nnsweep import store
from nnsweep.config import RunConfig, cell_settings
from nnsweep.errors import ConfigError, SweepFolderError
from nnsweep.exits import describe_hydra_error, describe_resolution_error, exit_with_error
from nnsweep.sweep import leftovers, ownership, staging
from nnsweep.sweep.auto import is_auto, launch_auto_sweep
from nnsweep.sweep.cell import load_cell
from nnsweep.sweep.progress import SweepProgress
from nnsweep.train.shapes import expand_params

Job = list[str]  # one job's overrides, e.g. ["layers=8-8", "lr=0.5"]


def expand_grid(config_loader: Any, overrides: Sequence[str]) -> list[Job]:
    """The cartesian product of the sweep overrides, in the basic sweeper's order.

    ``a=1,2 b=x`` gives ``[["a=1", "b=x"], ["a=2", "b=x"]]``; ``range(...)`` sweeps too.

    Raises
    ------
    HydraException
        For a sweep that cannot be enumerated (an interval) or bad override syntax.
    """
    parser = OverridesParser.create(config_loader=config_loader)
    axes: dict[str, list[str]] = {}
    for override in parser.parse_overrides(list(overrides)):
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise HydraException(f"{key}: nnsweep sweeps lists and ranges, not intervals")
            axes[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            axes[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*axes.values())]


def compose_cell(config: DictConfig, config_loader: Any, job: Job) -> RunConfig:
    """Compose one job's config exactly as its launcher will, and validate it (its data
    included: a bad file is refused before the first job runs)."""
    job_config = config_loader.load_sweep_config(master_config=config, sweep_overrides=job)
    with open_dict(job_config):
        del job_config["hydra"]
    run, _ = load_cell(OmegaConf.to_container(job_config, resolve=True))
    return run


def validated_cells(config: DictConfig, config_loader: Any, jobs: Sequence[Job]) -> list[RunConfig]:
    """Every cell composed once and validated; the first bad one exits with one line."""
    try:
        cells = [compose_cell(config, config_loader, job) for job in jobs]
        check_distinct_data(cells)
        return cells
    except ConfigError as error:
        exit_with_error(str(error))
    except HydraException as error:
        exit_with_error(describe_hydra_error(error))
    except OmegaConfBaseException as error:  # results_dir=${nope}
        exit_with_error(describe_resolution_error(error, [o for job in jobs for o in job]))


def check_distinct_data(cells: Sequence[RunConfig]) -> None:
    """Refuse two cells whose tables would read the same but whose data differ (two
    datasets of one name with different rows): they would be merged into one cell."""
    seen: dict[tuple[Any, ...], RunConfig] = {}
    for cell in cells:
        settings = tuple(sorted(cell_settings(cell).items(), key=lambda item: item[0]))
        first = seen.setdefault(settings, cell)
        if first.dataset != cell.dataset:
            differ = [
                f"dataset.{f.name}"
                for f in dataclasses.fields(cell.dataset)
                if getattr(first.dataset, f.name) != getattr(cell.dataset, f.name)
            ]
            raise ConfigError(
                f"dataset={cell.dataset.name}: two cells name their data "
                f"{cell.dataset.label!r} but differ in {', '.join(differ)}; "
                "give each dataset its own dataset.name"
            )


def swept_keys(config_loader: Any, overrides: Sequence[str]) -> set[str]:
    """The keys that the sweep lists values for (``layers`` in ``layers=8,8 lr=1``)."""
    parser = OverridesParser.create(config_loader=config_loader)
    parsed = parser.parse_overrides(list(overrides))
    return {o.get_key_element() for o in parsed if o.is_sweep_override()}


def check_distinct_cells(
    cells: Sequence[RunConfig], jobs: Sequence[Job], swept: Collection[str] = ()
) -> None:
    """Refuse two jobs that compose to the same cell (``layers=8,8``) in an auto sweep: its
    rounds compare cells, and a cell compared with itself was judged "failed" (its seeds
    were merged into the first job's) and named by its job index."""
    seen: dict[tuple[Any, ...], int] = {}
    for index, cell in enumerate(cells):
        settings = tuple(sorted(cell_settings(cell).items(), key=lambda item: item[0]))
        first = seen.setdefault(settings, index)
        if first != index:
            pair = (jobs[first], jobs[index])
            shown = [
                k
                for k, override in enumerate(pair[0])
                if override != pair[1][k] or override.split("=")[0] in swept
            ]
            named = [" ".join(job[k] for k in shown) or "two jobs" for job in pair]
            raise ConfigError(
                f"n_seeds=auto: {named[0]} and {named[1]} are the same cell; an auto sweep "
                "compares distinct cells, so list each value once"
            )


def batches(jobs: Sequence[Job], max_batch_size: int | None) -> list[list[Job]]:
    """Jobs in launch batches of at most ``max_batch_size`` (all at once when None)."""
    size = max_batch_size or len(jobs) or 1
    return [list(jobs[start : start + size]) for start in range(0, len(jobs), size)]


def launch(
    launcher: Any, jobs: Sequence[Job], max_batch_size: int | None, initial_job_idx: int = 0
) -> list[Any]:
    """Run every batch through the configured launcher; a job's exception is re-raised."""
    returns: list[Sequence[JobReturn]] = []
    for batch in batches(jobs, max_batch_size):
        results = launcher.launch(batch, initial_job_idx=initial_job_idx)
        for result in results:
            _ = result.return_value  # raises the job's exception, as Hydra's sweepers do
        initial_job_idx += len(batch)
        returns.append(results)
    return returns


def expand_shape_families(config: DictConfig, params: dict[str, str]) -> dict[str, str]:
    """Turn ``layers: budget(...)`` into its list of shapes, here, once: the jobs, the
    validation and multirun.yaml (saved from ``config``) then all see the plain list."""
    try:
        params = expand_params(params)
    except ConfigError as error:
        exit_with_error(str(error))
    if params:
        with read_write(config), open_dict(config):
            config.hydra.sweeper.params = dict(params)
    return params


def claim_sweep_dir(config: DictConfig) -> Path:
    """Once every cell is valid: the folder becomes this sweep's (or is refused) and gets
    ``multirun.yaml``."""
    sweep_dir = Path(config.hydra.sweep.dir)
    leftovers.remove_dead_leftovers()  # /dev/shm files of sweeps killed with kill -9
    try:
        if staging.holds_results(sweep_dir):  # trained beside it, swapped in at the end
            sweep_dir = staging.stage(sweep_dir)
        else:
            ownership.claim(sweep_dir)
    except SweepFolderError as error:
        exit_with_error(str(error))
    OmegaConf.save(config, sweep_dir / "multirun.yaml")  # names the folder the user gave
    if sweep_dir != Path(config.hydra.sweep.dir):
        # The launcher makes the folder from the sweep's config and each job composes its
        # own from hydra.overrides.hydra: both now point into the staging folder.
        with read_write(config), open_dict(config):
            config.hydra.sweep.dir = str(sweep_dir)
            quoted = str(sweep_dir).replace("\\", "\\\\").replace("'", "\\'")
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir='{quoted}'")
    if "joblib" in str(OmegaConf.select(config, "hydra.launcher._target_", default="")):
        start_trackers_deaf_to_hangup()
    return sweep_dir


def start_trackers_deaf_to_hangup() -> None:
    """Start loky's and multiprocessing's resource trackers now, with SIGHUP ignored.

    They ignore SIGINT and SIGTERM themselves but not SIGHUP: a closed terminal (SIGHUP to
    the process group) killed loky's tracker, which joblib then relaunched, and the new one
    printed a KeyError traceback for every semaphore and memmap folder the workers freed.
    An ignored signal stays ignored across exec, so a tracker started now keeps ignoring it;
    it still ends when the driver does (its pipe closes). Each call after the first is a
    no-op while the trackers run.
    """
    import signal
    from multiprocessing import resource_tracker as multiprocessing_tracker

    from joblib.externals.loky.backend import resource_tracker as loky_tracker

    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        loky_tracker.ensure_running()
        multiprocessing_tracker.ensure_running()
    finally:
        signal.signal(signal.SIGHUP, previous)


def auto_sweep(
    config: DictConfig,
    config_loader: Any,
    launcher: Any,
    jobs: Sequence[Job],
    swept: Collection[str] = (),
) -> list[Any]:
    """``n_seeds=auto``: rounds of seeds through the same launcher (see nnsweep.sweep.auto)."""

    def validate(job_lists: list[Job]) -> list[RunConfig]:
        cells = validated_cells(config, config_loader, job_lists)
        check_distinct_cells(cells, jobs, swept)
        claim_sweep_dir(config)
        return cells

    try:
        return launch_auto_sweep(config, launcher, jobs, validate)
    except ConfigError as error:
        exit_with_error(str(error))


def run_sweep(
    config: DictConfig,
    config_loader: Any,
    launcher: Any,
    params: dict[str, str],
    arguments: Sequence[str],
    max_batch_size: int | None = None,
) -> list[Any]:
    """Validate every cell before any job runs (nothing is written for a bad one), claim
    the sweep folder, save ``multirun.yaml`` and launch, with a progress line."""
    params = expand_shape_families(config, params)
    overrides = [*(f"{key}={value}" for key, value in params.items()), *arguments]
    try:
        jobs = expand_grid(config_loader, overrides)
    except HydraException as error:
        exit_with_error(describe_hydra_error(error))
    if is_auto(config):
        swept = swept_keys(config_loader, overrides)
        return auto_sweep(config, config_loader, launcher, jobs, swept)
    cells = validated_cells(config, config_loader, jobs)
    sweep_dir = claim_sweep_dir(config)
    total = sum(cell.n_seeds * cell.train.iterations for cell in cells)
    show = bool(config.get("progress", True))
    with SweepProgress(sweep_dir, n_cells=len(cells), total=total, enabled=show):
        try:
            return launch(launcher, jobs, max_batch_size)
        except BrokenExecutor as error:  # a worker was lost (killed, out of memory)
            returns, lost = relaunch_unfinished(launcher, jobs, sweep_dir, error)
            if not lost:
                return returns
            from nnsweep.sweep.callback import finish_sweep

            reasons = {job: _no_result(failure) for job, failure in lost.items()}
            sys.exit(
                finish_sweep(
                    sweep_dir,
                    {job: {**cell_settings(cells[job]), "reason": reasons[job]} for job in lost},
                )
                or 1
            )
        except Exception as error:  # a full disk: the jobs without files fail, not the sweep
            from nnsweep.sweep.callback import finish_broken_sweep

            sys.exit(finish_broken_sweep(sweep_dir, cells, error))


def _no_result(error: BaseException) -> str:
    first_line = (str(error).strip().splitlines() or [""])[0]
    return f"no result: {type(error).__name__}: {first_line}".rstrip(": ")


def relaunch_unfinished(
    launcher: Any, jobs: Sequence[Job], sweep_dir: Path, error: BaseException
) -> tuple[list[Any], dict[int, BaseException]]:
    """After a lost worker broke the pool, launch each job that left no outcome again, on
    its own: a cell that merely shared the pool with the lost one finishes (its finished
    seeds come from the cache), and a cell that kills its worker again fails alone.

    Returns the launcher's results and the jobs lost again (job number -> their error).
    """
    owner = store.owner_run_id(sweep_dir)
    unfinished = [
        index
        for index in range(len(jobs))
        if (job := store.read_job(sweep_dir / str(index))) is None or job.run_id != owner
    ]
    print(
        f"nnsweep: a worker was lost ({_no_result(error).removeprefix('no result: ')}); "
        f"launching the {len(unfinished)} unfinished job(s) again, one at a time",
        file=sys.stderr,
    )
    returns: list[Any] = []
    lost: dict[int, BaseException] = {}
    for index in unfinished:
        try:
            returns += launch(launcher, [jobs[index]], None, initial_job_idx=index)
        except Exception as again:  # lost again, or its own failure: this job alone
            lost[index] = again
    return returns, lost
