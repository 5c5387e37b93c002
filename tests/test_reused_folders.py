"""A run claims only its own outputs (issue 21): empty output keys, collect with nothing to
collect, a report from unusable tables, and sweep folders used again."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest
from conftest import PROJECT_ROOT, run_cli, run_cli_here

from nnsweep import schema, store
from nnsweep.config import to_run_config
from nnsweep.errors import SweepFolderError
from nnsweep.sweep import job as run

# 5 seeds: a 2-cell report of 2 or 3 seeds per cell trips KeyError '_tests' (reported on main)
FAST = ("layers=4-4", "n_seeds=5", "iterations=60", "log_every=20")


@pytest.fixture
def cell(compose_config):
    def make(*overrides: str):
        return to_run_config(compose_config(*FAST, *overrides))

    return make


def _sweep_of_an_earlier_run(tmp_path: Path, cell) -> Path:
    """A sweep folder whose tables and job belong to run "earlier", now owned by "killed"
    (a run killed before any of its jobs finished)."""
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / schema.MULTIRUN).write_text("{}\n")
    store.write_json(sweep_dir / schema.OWNER, {"run_id": "earlier"})
    run.run_cell(cell(), sweep_dir / "0", job=0, run_id="earlier")
    store.collect(sweep_dir)
    store.write_json(sweep_dir / schema.OWNER, {"run_id": "killed"})
    return sweep_dir


def _files(folder: Path) -> dict[str, bytes]:
    """Every file's bytes (but the run lock, which collect takes and git ignores)."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != ".nnsweep.lock"
    }


# --------------------------------------------------------------------------------------
# HIGH 4: collect with nothing to collect
# --------------------------------------------------------------------------------------


def test_collect_with_no_job_of_the_owning_run_is_refused_and_writes_nothing(
    cell, tmp_path: Path
) -> None:
    sweep_dir = _sweep_of_an_earlier_run(tmp_path, cell)
    before = _files(sweep_dir)
    assert len(pd.read_parquet(sweep_dir / schema.RUNS)) == 5
    with pytest.raises(SweepFolderError, match=r"nothing to collect.*ignored job folder"):
        store.collect(sweep_dir)
    assert _files(sweep_dir) == before


def test_collect_with_nothing_to_collect_is_one_line_and_leaves_the_files(
    cell, tmp_path: Path
) -> None:
    sweep_dir = _sweep_of_an_earlier_run(tmp_path, cell)
    before = _files(sweep_dir)
    done = run_cli(["collect", str(sweep_dir)], timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"nnsweep: error: collect: {sweep_dir}: nothing to collect"
    ), lines
    assert _files(sweep_dir) == before


@pytest.mark.parametrize(
    ("table", "says"),
    [
        (pd.DataFrame({"job": pd.Series(dtype="int64")}), "lacks the column(s) status, dataset"),
        (b"PAR1 garbled", "unreadable"),
    ],
    ids=["empty-table", "garbled"],
)
def test_report_on_unusable_tables_is_one_line(table, says: str, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / schema.MULTIRUN).write_text("{}\n")
    if isinstance(table, bytes):
        (sweep_dir / schema.RUNS).write_bytes(table)
    else:
        store.write_parquet(sweep_dir / schema.RUNS, table)
    done = run_cli(["report", str(sweep_dir)], timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0] and "Traceback" not in done.stderr, lines
    assert not (sweep_dir / "report.md").exists()


# --------------------------------------------------------------------------------------
# MEDIUM 5: the sweep's own tables carry checksums, as its job files do
# --------------------------------------------------------------------------------------


def _edit_a_value(path: Path) -> None:
    runs = pd.read_parquet(path)
    runs.loc[0, "final_error"] = runs.loc[0, "final_error"] / 2  # still a valid table
    path.write_bytes(store.parquet_bytes(runs))


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x04
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("table", "damage"),
    [
        (schema.RUNS, _edit_a_value),
        (schema.RUNS, _flip_a_bit),
        (schema.CURVES, _flip_a_bit),
        (schema.SUMMARY, lambda path: path.write_text(path.read_text().replace("4-4", "8-8"))),
        (schema.CURVES, lambda path: path.unlink()),
    ],
    ids=["runs-edited", "runs-bit", "curves-bit", "summary-edited", "curves-gone"],
)
def test_a_report_from_changed_tables_is_refused_in_one_line(
    cell, tmp_path: Path, table: str, damage
) -> None:
    """On main before the fix, each of these reports was written, exit 0."""
    sweep_dir = _sweep_of_this_run(tmp_path, cell)
    store.collect(sweep_dir)
    store.check_tables(sweep_dir)  # as collect wrote them: they pass
    damage(sweep_dir / table)
    done = run_cli_here(["report", str(sweep_dir)])
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"nnsweep: error: report: {sweep_dir / table}"
    ), lines
    assert "checksums.json" in lines[0] and f"collect {sweep_dir}" in lines[0]
    assert not (sweep_dir / "report.md").exists()


# --------------------------------------------------------------------------------------
# HIGH 5: an empty Hydra output folder is refused, not the working folder written over
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        ["-m", "layers=8,16", "hydra.sweep.dir="],
        ["-m", "layers=8,16", "hydra.sweep.dir=' '"],
        ["-m", "layers=8,16", "hydra.sweep.subdir="],
        ["hydra.run.dir="],
    ],
    ids=["sweep.dir", "sweep.dir-blank", "sweep.subdir", "run.dir"],
)
def test_an_empty_output_folder_is_refused_and_the_working_folder_untouched(
    arguments: list[str], tmp_path: Path
) -> None:
    (tmp_path / schema.RUNS).write_bytes(b"the user's own table")
    (tmp_path / schema.SUMMARY).write_text("the user's own summary\n")
    before = _files(tmp_path)
    done = run_cli([*arguments, "iterations=20", "log_every=10"], cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr
    key = arguments[-1].split("=")[0]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"nnsweep: error: {key}="), lines
    assert "is empty" in lines[0]
    assert _files(tmp_path) == before


# --------------------------------------------------------------------------------------
# HIGH 3: a folder used again shows only this run's files
# --------------------------------------------------------------------------------------

SHIPPED_AUTO = PROJECT_ROOT / "results" / "neurons_early_auto" / schema.AUTO_RECORD
# Every file a report writes beside the tables, and its figures folder.
REPORT_FILES = (
    "report.md",
    "report.html",
    "cell_stats.csv",
    "pairwise.csv",
    "failures.csv",
    "cell_stats_holdout.csv",
    "pairwise_holdout.csv",
    "auto_rounds.csv",
)
FIGURES = "figures"


def _sweep_of_this_run(tmp_path: Path, cell, *, failing: bool = False) -> Path:
    """A sweep folder owned by run "now": jobs 0 and 1 are its own, job 2 is another run's."""
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / schema.MULTIRUN).write_text("{}\n")
    store.write_json(sweep_dir / schema.OWNER, {"run_id": "now"})
    for job, layers in enumerate(("4-4", "8")):
        if failing:
            settings = {"layers": layers, "dataset": "tutorial_ex2"}
            failure = {"reason": "ValueError: broken", "settings": settings, "run_id": "now"}
            store.write_json(sweep_dir / str(job) / schema.FAILURE, failure)
        else:
            run.run_cell(cell(f"layers={layers}"), sweep_dir / str(job), job=job, run_id="now")
    run.run_cell(cell("layers=3"), sweep_dir / "2", job=2, run_id="earlier")
    return sweep_dir


def _plant_an_earlier_report(sweep_dir: Path) -> None:
    for name in REPORT_FILES:
        (sweep_dir / name).write_text("an earlier run's file\n")
    (sweep_dir / FIGURES).mkdir()
    (sweep_dir / FIGURES / "holdout_errors.png").write_bytes(b"an earlier figure")


@pytest.mark.parametrize("record_run", ["earlier", None], ids=["other-run-id", "before-run-ids"])
def test_a_report_in_a_reused_folder_shows_only_this_runs_files(
    cell, tmp_path: Path, record_run: str | None
) -> None:
    from nnsweep.report.sweep_report import write_report

    sweep_dir = _sweep_of_this_run(tmp_path, cell)
    record = store.read_json(SHIPPED_AUTO)  # an auto sweep of other cells, in this folder
    record.pop("run_id", None)
    if record_run is not None:
        record["run_id"] = record_run
    store.write_json(sweep_dir / schema.AUTO_RECORD, record)
    if record_run is None:  # written before this run claimed the folder
        os.utime(sweep_dir / schema.AUTO_RECORD, ns=(0, 0))
    _plant_an_earlier_report(sweep_dir)
    store.collect(sweep_dir)
    write_report(sweep_dir)
    report = (sweep_dir / "report.md").read_text()
    assert "Seeds chosen by the data" not in report
    assert not (sweep_dir / "auto_rounds.csv").exists()
    for name in ("cell_stats_holdout.csv", "pairwise_holdout.csv"):
        assert not (sweep_dir / name).exists() and name not in report
    assert not (sweep_dir / FIGURES / "holdout_errors.png").exists()
    assert "0/provenance.json" in report and "1/provenance.json" in report
    assert "2/provenance.json" not in report  # job 2 is another run's, ignored


def test_an_auto_record_of_this_run_is_reported() -> None:
    sweep_dir = SHIPPED_AUTO.parent  # shipped without owner.json: its record is its own
    assert not (sweep_dir / schema.OWNER).exists()
    assert store.read_auto(sweep_dir) is not None


def test_when_every_cell_fails_no_earlier_report_or_table_stays(cell, tmp_path: Path) -> None:
    from nnsweep.sweep.callback import finish_sweep

    sweep_dir = _sweep_of_this_run(tmp_path, cell, failing=True)
    _plant_an_earlier_report(sweep_dir)
    assert finish_sweep(sweep_dir) == 1
    left = [name for name in REPORT_FILES if (sweep_dir / name).exists()]
    assert not left and not (sweep_dir / FIGURES).exists()
    runs = pd.read_parquet(sweep_dir / schema.RUNS)
    assert sorted(runs["job"]) == [0, 1] and set(runs["status"]) == {"failed"}


# --------------------------------------------------------------------------------------
# MEDIUM 10: a killed run into a folder of results (make run) leaves it as it was
# --------------------------------------------------------------------------------------

RERUN = ("-m", "layers=4,8,8-8", "n_seeds=2", "iterations=50", "log_every=25", "progress=false")


@pytest.mark.slow
def test_a_run_killed_in_a_folder_of_results_leaves_it_as_it_was(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "results" / "shipped"
    given = [*RERUN, f"hydra.sweep.dir={sweep_dir}", "hydra/launcher=basic"]
    first = run_cli([*given, f"cache_dir={tmp_path / 'cache1'}"], cwd=tmp_path, timeout=300)
    assert first.returncode == 0, first.stderr
    (sweep_dir / "notes.txt").write_text("the user's own file\n")
    before = _files(sweep_dir)

    # The basic launcher runs the jobs in the driver; the fault injection kills it (-9)
    # as it starts to train layers=8: job 0 is done, nothing after it is.
    faults = str(Path(__file__).parent / "fault_injection")
    env = {
        "PYTHONPATH": os.pathsep.join([faults, os.environ.get("PYTHONPATH", "")]),
        "NNSWEEP_TEST_KILL_LAYERS": "8",
    }
    killed = run_cli([*given, f"cache_dir={tmp_path / 'cache2'}"], cwd=tmp_path, env=env)
    assert killed.returncode == -9, killed.stderr
    assert _files(sweep_dir) == before  # owner.json included: the folder is still the first's
    assert (tmp_path / "results" / ".shipped.new" / "0" / schema.RUNS).exists()  # it trained

    again = run_cli([*given, f"cache_dir={tmp_path / 'cache2'}"], cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr
    # The summary names the published folder and its report, never the staging folder.
    assert again.stdout.strip().endswith(
        f"tables in {sweep_dir}; report: {sweep_dir / 'report.html'}"
    )
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["shipped"]
    after = _files(sweep_dir)
    assert after["notes.txt"] == before["notes.txt"]
    assert after[schema.OWNER] != before[schema.OWNER]  # the new run's folder now
    assert str(tmp_path / "results" / ".shipped") not in after["report.md"].decode()
    new = pd.read_parquet(sweep_dir / schema.RUNS)
    assert sorted(set(new["layers"])) == ["4", "8", "8-8"] and len(new) == 6
    assert (
        store.owner_run_id(sweep_dir)
        == store.read_json(sweep_dir / "0" / schema.PROVENANCE)["run_id"]
    )
