"""The auto sweep's rounds (n_seeds=auto), in process with real training of tiny cells.

The launcher here runs each job with ``run_cell`` in this process; the end-to-end tests
through Hydra's launchers are in tests/test_auto_sweep.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from nnsweep import schema, store
from nnsweep.config import RunConfig, cell_settings, to_run_config
from nnsweep.stats.sequential import Plan
from nnsweep.sweep.auto import RoundJob, run_auto_sweep
from nnsweep.sweep.job import run_cell


def fake_launcher(
    cells: list[RunConfig], sweep_dir: Path, log: list[list[RoundJob]], failing: int = -1
):
    """Run each job of a round with run_cell into sweep_dir/<job number>; the cell
    ``failing`` fails as the task records a code failure."""

    def launch(jobs, first_job):
        log.append(list(jobs))
        for offset, job in enumerate(jobs):
            job_dir = sweep_dir / str(first_job + offset)
            run = dataclasses.replace(cells[job.cell], seed=job.seed, n_seeds=job.n_seeds)
            if job.cell == failing:
                failure = {"reason": "boom", "settings": cell_settings(run)}
                store.write_json(job_dir / schema.FAILURE, failure)
            else:
                run_cell(run, job_dir, job=first_job + offset)

    return launch


def twins(cells: list[RunConfig]) -> list[RunConfig]:
    """The last cell made a cell of its own with the same numbers: error_threshold changes
    no final error (the same settings twice would be one cell, its seeds counted once)."""
    train = dataclasses.replace(cells[-1].train, error_threshold=0.02)
    return [*cells[:-1], dataclasses.replace(cells[-1], train=train)]


@pytest.fixture
def tiny_cells(compose_config, tmp_path):
    def make(*layer_options: str, iterations: int = 300) -> list[RunConfig]:
        return [
            to_run_config(
                compose_config(
                    f"layers={layers}",
                    f"iterations={iterations}",
                    "log_every=100",
                    f"cache_dir={tmp_path / 'cache'}",
                )
            )
            for layers in layer_options
        ]

    return make


def test_rounds_stop_when_every_pair_is_decided(tiny_cells, tmp_path) -> None:
    # 1 hidden unit against 16 after 300 iterations: a large effect, decided in round 1 or 2;
    # 16 against 16-16 is what needs more rounds.
    cells = tiny_cells("1", "16", "16-16")
    plan = Plan(max_seeds=60, seed_block=12)
    sweep_dir = tmp_path / "sweep"
    log: list[list[RoundJob]] = []
    record = run_auto_sweep(plan, len(cells), 1, sweep_dir, fake_launcher(cells, sweep_dir, log))
    rounds = record["rounds"]
    assert record["stop"] in {"decided", "max_seeds"}
    assert json.loads((sweep_dir / schema.AUTO_RECORD).read_text()) == json.loads(
        json.dumps(record)
    )
    # Round 1 gives every cell seed_block seeds, seeds 1..12.
    assert [(job.cell, job.seed, job.n_seeds) for job in log[0]] == [
        (0, 1, 12),
        (1, 1, 12),
        (2, 1, 12),
    ]
    runs = store.gather(sweep_dir).runs
    names = list(rounds[0]["seeds"])  # cell labels, in the grid's order
    for number, jobs in enumerate(log[1:], start=2):
        # Later rounds: the next block, only for cells in a pair undecided the round before.
        undecided = {
            cell
            for pair in rounds[number - 2]["pairs"]
            if pair["decision"] == "undecided"
            for cell in (pair["a"], pair["b"])
        }
        assert {names[job.cell] for job in jobs} == undecided
        assert all(job.seed == 1 + (number - 1) * 12 and job.n_seeds == 12 for job in jobs)
    # Decided pairs keep their decision and round; the sweep stops when none is undecided.
    final = rounds[-1]["pairs"]
    if record["stop"] == "decided":
        assert all(pair["decision"] != "undecided" for pair in final)
    else:
        assert len(rounds) == plan.n_looks
    for pair in final:
        if pair["decided_look"]:
            at = rounds[pair["decided_look"] - 1]["pairs"]
            assert next(p for p in at if (p["a"], p["b"]) == (pair["a"], pair["b"]))["decided_now"]
    # The tables pool every block of a cell: seeds per cell as the last round says.
    per_cell = runs.groupby("layers")["seed"].nunique().to_dict()
    assert per_cell == {name: n for name, n in rounds[-1]["seeds"].items()}


def test_a_large_effect_stops_after_one_round(tiny_cells, tmp_path) -> None:
    cells = tiny_cells("1", "16")
    plan = Plan(max_seeds=100, seed_block=20)
    sweep_dir = tmp_path / "sweep"
    log: list[list[RoundJob]] = []
    record = run_auto_sweep(plan, 2, 1, sweep_dir, fake_launcher(cells, sweep_dir, log))
    assert record["stop"] == "decided"
    assert len(log) == 1 and len(record["rounds"]) == 1
    (pair,) = record["rounds"][0]["pairs"]
    assert (pair["a"], pair["b"], pair["decision"]) == ("1", "16", "b_better")
    assert pair["ci_high"] < 0.5


def test_identical_cells_run_to_max_seeds_and_say_what_is_known(tiny_cells, tmp_path) -> None:
    # The same numbers twice: seeds are identical, every comparison ties, nothing is "better".
    cells = twins(tiny_cells("4", "4"))
    plan = Plan(max_seeds=30, seed_block=10)
    sweep_dir = tmp_path / "sweep"
    record = run_auto_sweep(plan, 2, 1, sweep_dir, fake_launcher(cells, sweep_dir, []))
    decisions = [pair["decision"] for pair in record["rounds"][-1]["pairs"]]
    assert decisions[0] in {"undecided", "equivalent"}
    last = record["rounds"][-1]["pairs"][0]
    assert last["ci_low"] <= 0.5 <= last["ci_high"]
    if decisions[0] == "undecided":
        assert record["stop"] == "max_seeds" and len(record["rounds"]) == 3
        assert np.isfinite(last["seeds_needed"]) and last["seeds_needed"] > 30


def test_a_failed_cell_leaves_the_later_rounds(tiny_cells, tmp_path) -> None:
    cells = tiny_cells("4", "8", "8-8")
    plan = Plan(max_seeds=40, seed_block=10)
    sweep_dir = tmp_path / "sweep"
    log: list[list[RoundJob]] = []
    launch = fake_launcher(cells, sweep_dir, log, failing=0)
    record = run_auto_sweep(plan, 3, 1, sweep_dir, launch)
    assert all(job.cell != 0 for jobs in log[1:] for job in jobs)
    first = record["rounds"][0]
    assert first["failed"] == ["4"]
    for pair in first["pairs"]:
        if "4" in (pair["a"], pair["b"]):
            assert pair["decision"] == "not_applicable"


def test_a_rerun_replays_the_rounds_from_the_cache(tiny_cells, tmp_path) -> None:
    cells = tiny_cells("4", "8", "16")
    plan = Plan(max_seeds=40, seed_block=10)
    first = run_auto_sweep(plan, 3, 1, tmp_path / "a", fake_launcher(cells, tmp_path / "a", []))
    again = run_auto_sweep(plan, 3, 1, tmp_path / "b", fake_launcher(cells, tmp_path / "b", []))
    assert first == again
    runs_a = store.gather(tmp_path / "a").runs
    runs_b = store.gather(tmp_path / "b").runs
    pd.testing.assert_frame_equal(
        runs_a.drop(columns="wall_seconds"), runs_b.drop(columns="wall_seconds")
    )


def test_the_report_shows_rounds_decisions_and_what_is_known(tiny_cells, tmp_path) -> None:
    from nnsweep.report.auto_report import ROUNDS_CSV
    from nnsweep.report.sweep_report import write_report

    # 1 against 16 is decided in round 1; 4 against itself never is.
    cells = twins(tiny_cells("1", "16", "4", "4"))
    plan = Plan(max_seeds=30, seed_block=10)
    sweep_dir = tmp_path / "sweep"
    record = run_auto_sweep(plan, 4, 1, sweep_dir, fake_launcher(cells, sweep_dir, []))
    store.collect(sweep_dir)
    write_report(sweep_dir)
    text = (sweep_dir / "report.md").read_text().replace("&lt;", "<")  # Markdown escapes <
    assert "## Seeds chosen by the data (n_seeds=auto)" in text
    assert record["rule"] in text and "O'Brien-Fleming" in text
    # Separated from 10 seeds on, but round 1's share of alpha (O'Brien-Fleming, 12 tests)
    # is below what a permutation of 10 against 10 can show: decided in round 2.
    decided = "16 error_threshold=0.01 ends lower than 1 error_threshold=0.01: decided in round 2"
    assert decided + " with 20 and 20 seeds" in text
    # Told from the winner's side: P(16 < 1) = 1, not P(1 < 16) = 0, on the final seeds.
    assert "P(16 error_threshold=0.01<1 error_threshold=0.01) = 1.00" in text
    undecided = "4 error_threshold=0.01 vs 4 error_threshold=0.02: undecided at max_seeds = 30"
    assert undecided + " (30 and 30 seeds)" in text and "seeds per cell would decide it" in text
    assert (sweep_dir / "figures" / "auto_intervals.png").stat().st_size > 0
    table = pd.read_csv(sweep_dir / ROUNDS_CSV)
    assert len(table) == len(record["rounds"]) * 6
    assert table.groupby("round")["alpha"].first().sum() <= plan.alpha


def test_the_rounds_use_the_verdicts_equivalence_margin() -> None:
    from omegaconf import OmegaConf

    from nnsweep.sweep.auto import auto_plan

    config = OmegaConf.create(
        {"max_seeds": 100, "seed_block": 20, "equivalence_margin": [0.4, 0.6]}
    )
    assert auto_plan(config).margin == (0.4, 0.6)
    assert auto_plan(OmegaConf.create({"max_seeds": 100, "seed_block": 20})).margin == (0.44, 0.56)
