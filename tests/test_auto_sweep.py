"""n_seeds=auto end to end: the real CLI, Hydra's launchers, kill -9 and a rerun."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import PROJECT_ROOT, only_dir, run_cli

pytestmark = pytest.mark.slow

# 1 hidden unit against 16 is decided in round 1; 16 against 16-16 needs a second round.
AUTO_SWEEP = [
    "-m",
    "layers=1,16,16-16",
    "n_seeds=auto",
    "max_seeds=60",
    "seed_block=12",
    "iterations=300",
    "log_every=100",
    "progress=false",
]


def _auto_sweep(results: Path, *extra: str) -> Path:
    done = run_cli([*AUTO_SWEEP, f"results_dir={results}", *extra])
    assert done.returncode == 0, done.stderr
    return only_dir(results / "sweep")


def _tables(sweep_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.read_parquet(sweep_dir / "runs.parquet").drop(columns=["wall_seconds"])
    return runs, pd.read_parquet(sweep_dir / "curves.parquet")


def _rounds(sweep_dir: Path) -> list[dict]:
    return json.loads((sweep_dir / "auto.json").read_text())["rounds"]


def _assert_same_sweep(left: Path, right: Path) -> None:
    for a, b in zip(_tables(left), _tables(right), strict=True):
        pd.testing.assert_frame_equal(a, b)
    assert _rounds(left) == _rounds(right)


def test_an_auto_sweep_runs_rounds_and_stops_when_decided(tmp_path: Path) -> None:
    sweep_dir = _auto_sweep(tmp_path)
    record = json.loads((sweep_dir / "auto.json").read_text())
    rounds = record["rounds"]
    assert record["stop"] == "decided" and len(rounds) == 3
    # Round 1: every cell, seeds 1-12 (jobs 0-2). At 12 seeds a cell the rank test is the
    # studentized permutation one, which cannot reach round 1's tiny alpha even for separated
    # samples, so round 2 runs every cell again (seeds 13-24) and decides the pairs with "1";
    # round 3 runs only the undecided pair's cells.
    assert rounds[0]["jobs"] == {"1": 0, "16": 1, "16-16": 2}
    assert rounds[1]["jobs"] == {"1": 3, "16": 4, "16-16": 5}
    assert rounds[2]["jobs"] == {"16": 6, "16-16": 7}
    assert sorted(p.name for p in sweep_dir.iterdir() if p.name.isdigit()) == list("01234567")
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    seeds = runs.groupby("layers")["seed"].agg(["min", "max", "count"])
    assert seeds.loc["1"].tolist() == [1, 24, 24]
    assert seeds.loc["16"].tolist() == [1, 36, 36] and seeds.loc["16-16"].tolist() == [1, 36, 36]
    decisions = {(p["a"], p["b"]): (p["decision"], p["decided_look"]) for p in rounds[-1]["pairs"]}
    assert decisions[("1", "16")] == ("b_better", 2)
    assert decisions[("16", "16-16")][1] == 3
    report = (sweep_dir / "report.md").read_text()
    assert "## Seeds chosen by the data (n_seeds=auto)" in report
    assert "O'Brien-Fleming" in report
    # The command it prints runs as printed: a sweep without an experiments file needs -m.
    assert "python -m nnsweep -m layers=1,16,16-16 n_seeds=auto" in report
    assert f"python -m nnsweep report {sweep_dir.resolve()}" in report and "${" not in report


def test_a_single_run_refuses_n_seeds_auto(tmp_path: Path) -> None:
    done = run_cli(["n_seeds=auto", f"results_dir={tmp_path}"])
    assert done.returncode == 2
    assert done.stderr.strip().startswith("nnsweep: error: n_seeds=auto: needs a sweep")
    assert "Traceback" not in done.stderr


def test_a_bad_plan_is_refused_before_anything_runs(tmp_path: Path) -> None:
    done = run_cli([*AUTO_SWEEP, "max_seeds=10", f"results_dir={tmp_path}"])
    assert done.returncode == 2
    assert done.stderr.strip() == "nnsweep: error: max_seeds=10: must be >= seed_block=12"
    assert not (tmp_path / "sweep").exists() or not any((tmp_path / "sweep").iterdir())


def test_an_auto_sweep_of_one_cell_is_refused(tmp_path: Path) -> None:
    done = run_cli(["-m", "layers=8", "n_seeds=auto", "iterations=50", f"results_dir={tmp_path}"])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("nnsweep: error: n_seeds=auto: compares cells")
    assert not (tmp_path / "sweep").exists() or not any((tmp_path / "sweep").iterdir())


def test_joblib_and_basic_launchers_give_the_same_auto_sweep(tmp_path: Path) -> None:
    joblib_dir = _auto_sweep(tmp_path / "joblib")
    basic_dir = _auto_sweep(tmp_path / "basic", "hydra/launcher=basic")
    _assert_same_sweep(joblib_dir, basic_dir)


def test_a_killed_auto_sweep_resumes_from_the_cache(tmp_path: Path) -> None:
    reference = _auto_sweep(tmp_path / "reference")
    results = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "nnsweep", *AUTO_SWEEP, f"results_dir={results}"],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    try:
        while not list(results.glob("sweep/*/auto.json")):  # round 1 is done and judged
            assert process.poll() is None, "the sweep ended before it could be killed"
            assert time.monotonic() < deadline, "round 1 did not finish"
            time.sleep(0.02)
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # the driver and its workers, mid-sweep
        process.wait()
    killed = only_dir(results / "sweep")
    assert not (killed / "runs.parquet").exists()  # it never reached the end
    assert json.loads((killed / "auto.json").read_text())["stop"] == "running"
    # The same command again: a new sweep folder, every round it had done from the cache.
    done = run_cli([*AUTO_SWEEP, f"results_dir={results}"])
    assert done.returncode == 0, done.stderr
    resumed = next(p for p in (results / "sweep").iterdir() if p != killed)
    _assert_same_sweep(reference, resumed)
    provenance = json.loads((resumed / "0" / "provenance.json").read_text())
    assert provenance["trained_seeds"] == []  # round 1 cost no training
