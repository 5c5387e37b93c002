"""End of a multirun: the sweep's tables and report, built from its folder (a Hydra callback)."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from nnsweep import store
from nnsweep.config import RunConfig, cell_settings
from nnsweep.errors import SweepFolderError
from nnsweep.exits import exit_with_error
from nnsweep.sweep import ownership, staging

log = logging.getLogger("nnsweep")


def finish_sweep(sweep_dir: Path, lost: dict[int, dict[str, Any]] | None = None) -> int:
    """Gather tables, write the report, print a one-line summary; 1 if any cell failed.

    ``lost``: jobs that may have no files (job number -> settings and reason), when the
    sweep's launcher lost a worker or a job could not write.
    """
    try:
        runs, _curves, summary, notices = store.collect(sweep_dir, lost)
        for notice in notices:
            print(notice, file=sys.stderr)
        reported = bool((runs["status"] != "failed").any())
        if reported:  # a report needs at least one trained seed
            # Imported only now, in the main thread: collecting the tables needs none of the
            # report's libraries. (A thread that imported them while the jobs trained could
            # still be inside `import matplotlib` when a refused sweep exited, and the
            # interpreter then crashed at exit: issue 21.)
            from nnsweep.report.sweep_report import write_report

            write_report(sweep_dir)
        else:  # no report to write: an earlier run's must not pass for this one's
            store.remove_report(sweep_dir)
        sweep_dir = staging.publish(sweep_dir)  # a staged run replaces the folder only now
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
        + (f"; report: {sweep_dir / 'report.html'}" if reported else "")
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


class SweepTablesCallback(Callback):
    """Hydra callback: build the sweep's tables and report when a multirun ends."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        # Before Hydra creates the folder: a second run into it is refused, not mixed in.
        try:
            ownership.claim(Path(config.hydra.run.dir))
        except SweepFolderError as error:
            exit_with_error(str(error))

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
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
