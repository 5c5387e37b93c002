"""Settings that could run for months or decide nothing are refused in one line (issue 21:
MEDIUM 1 and 7, LOW error_threshold and n_jobs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_cli
from omegaconf import OmegaConf

from nnsweep.config import ConfigError, parse_margin, to_run_config
from nnsweep.sweep.auto import auto_plan


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"seed_block": 2, "max_seeds": 1_000_000_000}, "max_seeds=1000000000: must be <= 100,000"),
        ({"seed_block": 200_000, "max_seeds": 100_000}, "seed_block=200000: must be <= 100,000"),
        ({"seed_block": 2, "max_seeds": 1000}, "plans 500 rounds; at most 100"),
    ],
    ids=["huge-max_seeds", "huge-seed_block", "too-many-rounds"],
)
def test_an_auto_plan_of_months_is_refused(settings: dict, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        auto_plan(OmegaConf.create(settings))


def test_the_shipped_auto_plans_stay_allowed() -> None:
    assert auto_plan(OmegaConf.create({"max_seeds": 1000, "seed_block": 100})).n_looks == 10
    assert auto_plan(OmegaConf.create({"max_seeds": 2000, "seed_block": 100})).n_looks == 20
    assert auto_plan(OmegaConf.create({"max_seeds": 100_000, "seed_block": 1000})).n_looks == 100


def test_max_seeds_is_bounded_as_a_setting_too(compose_config) -> None:
    with pytest.raises(ConfigError, match=r"^max_seeds=1000000000: must be <= 100,000$"):
        to_run_config(compose_config("max_seeds=1000000000"))


@pytest.mark.parametrize(
    "margin", [[0, 1], [0.25, 0.56], [0.44, 0.75], [0.1, 0.9], [0.5, 0.6], [0.6, 0.7]]
)
def test_an_equivalence_margin_that_decides_everything_is_refused(margin: list) -> None:
    with pytest.raises(ConfigError, match=r"inside \(0.25, 0.75\)"):
        parse_margin(margin)


def test_a_reasonable_equivalence_margin_is_kept() -> None:
    assert parse_margin([0.3, 0.7]) == (0.3, 0.7)
    assert parse_margin((0.44, 0.56)) == (0.44, 0.56)


def test_an_error_threshold_above_the_largest_error_margin_is_refused(compose_config) -> None:
    with pytest.raises(ConfigError, match=r"error_threshold=1.5: must be <= 1, the largest"):
        to_run_config(compose_config("error_threshold=1.5"))
    with pytest.raises(ConfigError, match=r"error_threshold=3.0: must be <= 2"):
        to_run_config(compose_config("output_activation=tanh", "error_threshold=3.0"))
    assert to_run_config(compose_config("error_threshold=1.0")).train.error_threshold == 1.0
    relu = to_run_config(compose_config("output_activation=relu", "error_threshold=5.0"))
    assert relu.train.error_threshold == 5.0  # unbounded outputs: no largest margin


def test_n_jobs_0_is_refused_before_the_sweep_starts(tmp_path: Path) -> None:
    done = run_cli(
        [
            "-m",
            "layers=8,16",
            "iterations=20",
            "hydra.launcher.n_jobs=0",
            f"results_dir={tmp_path}",
        ],
        timeout=300,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnsweep: error: hydra.launcher.n_jobs=0:")
    assert not (tmp_path / "sweep").exists()
