"""Real multiruns in subprocesses: tables, launchers, experiments, resume, kills, failures."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import PROJECT_ROOT, only_dir, run_cli, run_cli_here

pytestmark = pytest.mark.slow

SMALL = ["-m", "layers=8-8,4-4,8", "n_seeds=3", "iterations=400", "log_every=100"]
TIMING_COLUMNS = ["wall_seconds"]


def _tables(sweep_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    runs = pd.read_parquet(sweep_dir / "runs.parquet").drop(columns=TIMING_COLUMNS)
    curves = pd.read_parquet(sweep_dir / "curves.parquet")
    summary = pd.read_csv(sweep_dir / "summary.csv")
    return runs, curves, summary


def _assert_same_tables(left: Path, right: Path) -> None:
    for a, b in zip(_tables(left), _tables(right), strict=True):
        pd.testing.assert_frame_equal(a, b)


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SMALL swept once with the joblib launcher, for the tests that only read it (or copy
    it first): its sweep folder, at results_dir/sweep/ref, with its cache beside it."""
    results = tmp_path_factory.mktemp("small")
    done = run_cli([*SMALL, f"results_dir={results}", f"hydra.sweep.dir={results / 'ref'}"])
    assert done.returncode == 0, done.stderr
    return results / "ref"


def _sweep(
    tmp_path: Path, name: str, *extra: str, env=None
) -> tuple[subprocess.CompletedProcess, Path]:
    results = tmp_path / name
    done = run_cli([*SMALL, f"results_dir={results}", *extra], env=env)
    return done, results


def _trained(sweep_dir: Path) -> int:
    return sum(
        len(json.loads((job / "provenance.json").read_text())["trained_seeds"])
        for job in sweep_dir.iterdir()
        if (job / "provenance.json").exists()
    )


def test_multirun_writes_every_table(small_sweep: Path) -> None:
    sweep_dir = small_sweep
    runs, curves, summary = _tables(sweep_dir)
    assert len(runs) == 9 and set(runs["layers"]) == {"8-8", "4-4", "8"}
    assert (runs["status"] == "ok").all()
    assert len(curves) == 9 * 5  # iterations 0, 100, 200, 300 and the final weights, 400
    assert summary["n_seeds"].tolist() == [3, 3, 3]
    # 4 inputs, 2 outputs, no biases: 4*8 + 8*8 + 8*2, 4*4 + 4*4 + 4*2, 4*8 + 8*2.
    sizes = runs.groupby("layers")["n_weights"].unique().map(list).to_dict()
    assert sizes == {"8-8": [112], "4-4": [40], "8": [48]}
    assert "## Verdict" in (sweep_dir / "report.md").read_text()
    assert (sweep_dir / "report.html").stat().st_size > 10_000
    for job in ("0", "1", "2"):
        assert (sweep_dir / job / "weights.npz").exists()
        provenance = json.loads((sweep_dir / job / "provenance.json").read_text())
        assert {"nnsweep", "git_commit", "python", "numpy", "blas", "host", "time_utc"} <= set(
            provenance
        )
    # Every config value that can change the numbers is a column.
    for column in (
        "dataset",
        "dataset_sha256",
        "layers",
        "activation",
        "init",
        "bias",
        "lr",
        "iterations",
        "seed",
        "arithmetic_version",
        "arithmetic",
        "final_error",
        "diverged",
        "iterations_reached",
        "wall_seconds",
        "accuracy",
        "holdout_accuracy",
        "end_change",
        "unstable",
        "n_weights",
        "solvable",
    ):
        assert column in pd.read_parquet(sweep_dir / "runs.parquet").columns


def test_basic_launcher_gives_the_same_tables_as_joblib(tmp_path: Path, small_sweep: Path) -> None:
    basic_done, basic_results = _sweep(tmp_path, "basic", "hydra/launcher=basic")
    assert basic_done.returncode == 0, basic_done.stderr
    _assert_same_tables(small_sweep, only_dir(basic_results / "sweep"))


def test_running_again_trains_nothing_and_overlap_trains_only_new_seeds(
    tmp_path: Path, small_sweep: Path
) -> None:
    results = tmp_path / "r"
    shutil.copytree(small_sweep.parent / ".cache", results / ".cache")  # the first run's cache
    again = run_cli([*SMALL, f"results_dir={results}", "hydra.sweep.dir=" + str(results / "two")])
    assert again.returncode == 0, again.stderr
    assert _trained(small_sweep) == 9
    assert _trained(results / "two") == 0
    _assert_same_tables(small_sweep, results / "two")
    more = run_cli(
        [*SMALL, "n_seeds=5", f"results_dir={results}", "hydra.sweep.dir=" + str(results / "three")]
    )
    assert more.returncode == 0, more.stderr
    assert _trained(results / "three") == 6  # seeds 4 and 5 of each of three cells
    fresh = run_cli(
        [
            *SMALL,
            "n_seeds=5",
            f"results_dir={tmp_path / 'fresh'}",
            "hydra.sweep.dir=" + str(tmp_path / "fresh" / "sweep"),
        ]
    )
    assert fresh.returncode == 0
    _assert_same_tables(results / "three", tmp_path / "fresh" / "sweep")


def _killed_sweep(results: Path, arguments: list[str], wait_for_cache: bool) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "nnsweep", *arguments],
        cwd=PROJECT_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while wait_for_cache and time.monotonic() < deadline:
        if list((results / ".cache").rglob("*.npz")) or process.poll() is not None:
            break
        time.sleep(0.05)
    while not wait_for_cache and time.monotonic() < deadline:  # started: its folder exists
        if list(results.glob("sweep/*/multirun.yaml")) or process.poll() is not None:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the sweep ended before it could be killed"
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.mark.parametrize("wait_for_cache", [False, True], ids=["early", "mid-sweep"])
def test_a_killed_sweep_run_again_gives_the_uninterrupted_tables(
    tmp_path: Path, wait_for_cache: bool
) -> None:
    sweep = ["-m", "layers=8-8,4-4,8,6-6", "n_seeds=4", "iterations=6000", "log_every=1000"]
    killed = tmp_path / "killed"
    _killed_sweep(killed, [*sweep, f"results_dir={killed}"], wait_for_cache)
    rerun = run_cli([*sweep, f"results_dir={killed}", f"hydra.sweep.dir={killed / 'rerun'}"])
    assert rerun.returncode == 0, rerun.stderr
    clean = run_cli(
        [
            *sweep,
            f"results_dir={tmp_path / 'clean'}",
            f"hydra.sweep.dir={tmp_path / 'clean' / 'sweep'}",
        ]
    )
    assert clean.returncode == 0, clean.stderr
    _assert_same_tables(killed / "rerun", tmp_path / "clean" / "sweep")
    if wait_for_cache:
        assert _trained(killed / "rerun") < 16  # what the killed sweep finished was reused


def test_a_new_experiment_file_works_without_code_changes(tmp_path: Path) -> None:
    name = "zz_test_new"
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / f"{name}.yaml").write_text(
        "# @package _global_\n"
        f"name: {name}\n"
        "iterations: 200\n"
        "log_every: 100\n"
        "n_seeds: 2\n"
        "hydra:\n"
        "  mode: MULTIRUN\n"
        "  sweeper:\n"
        "    params:\n"
        "      layers: 3-3,5\n"
        "      lr: 0.5,1.0\n"
    )
    results = tmp_path / "results"
    done = run_cli(
        [f"hydra.searchpath=[file://{tmp_path}]", f"experiments={name}", f"results_dir={results}"]
    )
    assert done.returncode == 0, done.stderr
    assert not list((PROJECT_ROOT / "experiments").glob("zz_test*"))
    runs = pd.read_parquet(only_dir(results / name) / "runs.parquet")
    assert len(runs) == 8
    assert set(zip(runs["layers"], runs["lr"], strict=True)) == {
        ("3-3", 0.5),
        ("3-3", 1.0),
        ("5", 0.5),
        ("5", 1.0),
    }


def test_divergence_is_a_recorded_outcome_not_a_crash(tmp_path: Path) -> None:
    done = run_cli(
        [
            "-m",
            "layers=8-8",
            "activation=tanh",
            "output_activation=relu",
            "lr=1.0,0.01",
            "n_seeds=24",
            "iterations=400",
            "log_every=100",
            f"results_dir={tmp_path}",
        ]
    )
    assert done.returncode == 0, done.stderr
    runs = pd.read_parquet(only_dir(tmp_path / "sweep") / "runs.parquet")
    diverged = runs[runs["status"] == "diverged"]
    assert 0 < len(diverged) < 24 and (diverged["lr"] == 1.0).all()
    assert diverged["reason"].str.contains("non-finite").all()
    assert (runs[runs["lr"] == 0.01]["status"] == "ok").all()


def test_a_failing_cell_is_a_row_and_a_non_zero_exit(tmp_path: Path) -> None:
    env = {
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent / "fault_injection"), os.environ.get("PYTHONPATH", "")]
        ),
        "NNSWEEP_TEST_FAIL_LAYERS": "4-4",
    }
    done, results = _sweep(tmp_path, "f", env=env)
    assert done.returncode == 1, done.stderr
    summary_lines = [line for line in done.stderr.splitlines() if line.startswith("nnsweep: error")]
    assert len(summary_lines) == 1 and "injected failure" in summary_lines[0]
    runs = pd.read_parquet(only_dir(results / "sweep") / "runs.parquet")
    failed = runs[runs["status"] == "failed"]
    assert failed["layers"].tolist() == ["4-4"]
    assert (runs[runs["layers"] != "4-4"]["status"] == "ok").all()
    assert len(runs) == 7  # two healthy cells of three seeds, one failed-cell row


def test_collect_rebuilds_tables_of_a_partial_sweep(tmp_path: Path, small_sweep: Path) -> None:
    sweep_dir = tmp_path / "partial"
    shutil.copytree(small_sweep, sweep_dir)
    full = pd.read_parquet(sweep_dir / "runs.parquet")
    (sweep_dir / "2" / "runs.parquet").unlink()  # as if job 2 never finished
    for table in ("runs.parquet", "curves.parquet", "summary.csv"):
        (sweep_dir / table).unlink()
    collected = run_cli_here(["collect", str(sweep_dir)])
    assert collected.returncode == 0, collected.stderr
    partial = pd.read_parquet(sweep_dir / "runs.parquet")
    assert len(partial) == 6
    pd.testing.assert_frame_equal(partial, full[full["job"] != 2].reset_index(drop=True))


def test_a_sweep_whose_every_cell_fails_still_writes_its_tables(tmp_path: Path) -> None:
    env = {
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent / "fault_injection"), os.environ.get("PYTHONPATH", "")]
        ),
        "NNSWEEP_TEST_FAIL_LAYERS": "4-4",
    }
    results = tmp_path / "all"
    done = run_cli(
        ["-m", "layers=4-4", "n_seeds=2", "iterations=100", f"results_dir={results}"], env=env
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    runs = pd.read_parquet(only_dir(results / "sweep") / "runs.parquet")
    assert runs["status"].tolist() == ["failed"]


def test_seed_blocks_of_one_cell_are_pooled(tmp_path: Path) -> None:
    """Splitting a cell's seeds over jobs (to balance cores) still gives one cell."""
    done = run_cli(
        [
            "-m",
            "layers=4",
            "seed=1,3",
            "n_seeds=2",
            "iterations=200",
            "log_every=100",
            f"results_dir={tmp_path}",
        ]
    )
    assert done.returncode == 0, done.stderr
    sweep_dir = only_dir(tmp_path / "sweep")
    summary = pd.read_csv(sweep_dir / "summary.csv")
    assert summary["n_seeds"].tolist() == [4] and summary["job_ids"].tolist() == ["0 1"]
    assert summary["n_jobs"].tolist() == [2]
    cells = pd.read_csv(sweep_dir / "cell_stats.csv")
    assert cells["n_seeds"].tolist() == [4]
    assert sorted(pd.read_parquet(sweep_dir / "runs.parquet")["seed"]) == [1, 2, 3, 4]
