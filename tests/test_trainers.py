"""Bring your own trainer: the shipped examples, the cache, and a trainer's failures."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_ROOT, only_dir, run_cli

from nnsweep.config import SETTINGS, ConfigError
from nnsweep.sweep.cell import load_cell
from nnsweep.sweep.job import run_cell
from nnsweep.train import trainer
from nnsweep.train.trainer import TrainData, TrainerError

EXAMPLES = PROJECT_ROOT / "examples"
# Host arithmetic (numpy's own), where the setting exists: the tutorial's loop is numpy.
HOST = ["arithmetic=numpy"] if any(f.name == "arithmetic" for f in SETTINGS) else []


def _cell(compose_config, base_dir: Path, *overrides: str):
    return load_cell(compose_config(*HOST, *overrides), base_dir=base_dir)


def _run(compose_config, tmp_path: Path, base_dir: Path, *overrides: str):
    run, _ = _cell(compose_config, base_dir, *overrides)
    job_dir = tmp_path / f"job{len(list(tmp_path.glob('job*')))}"
    return run_cell(run, job_dir)


@pytest.mark.parametrize(
    "overrides",
    [
        ("layers=8-16-8", "iterations=300", "log_every=100", "n_seeds=3"),
        (
            "dataset=moons",
            "dataset.holdout=0.25",
            "dataset.n_samples=40",
            "lr=0.05",
            "layers=4",
            "iterations=200",
            "log_every=50",
            "n_seeds=2",
        ),
    ],
)
def test_the_tutorials_loop_example_gives_the_built_in_numbers(
    compose_config, tmp_path: Path, overrides: tuple[str, ...]
) -> None:
    builtin = _run(compose_config, tmp_path, EXAMPLES, *overrides)
    example = _run(compose_config, tmp_path, EXAMPLES, "trainer=tutorial_loop:train", *overrides)
    assert example.n_trained == builtin.n_trained > 0
    # max_abs_error and solved are read off the final weights' outputs, final_error off the
    # last pass: equal columns mean equal outputs at both ends of the loop.
    numbers = [
        "final_error",
        "max_abs_error",
        "holdout_error",
        "accuracy",
        "holdout_accuracy",
        "solved",
    ]
    pd.testing.assert_frame_equal(builtin.runs[numbers], example.runs[numbers])
    assert (example.runs["trainer"] == "tutorial_loop:train").all()
    # The same curve, point for point (the built-in one records the same iterations).
    assert np.array_equal(builtin.curves["error"], example.curves["error"])


# The minibatch-momentum example trainer's cell, without its seeds.
MOMENTUM = (
    "trainer=minibatch_momentum:train",
    "trainer_args={batch_size:4,momentum:0.9}",
    "lr=0.5",
    "iterations=1500",
    "log_every=500",
)


def test_the_minibatch_momentum_example_trains_every_seed_apart(compose_config, tmp_path):
    outcome = _run(compose_config, tmp_path, EXAMPLES, *MOMENTUM, "n_seeds=3")
    runs = outcome.runs
    assert runs["final_error"].nunique() == 3 and runs["final_error"].max() < 0.2
    assert json.loads(runs["trainer_args"].iloc[0]) == {"batch_size": 4, "momentum": 0.9}
    # Vectorised over seeds, yet a seed alone gets its own numbers.
    alone = _run(
        compose_config,
        tmp_path,
        EXAMPLES,
        *MOMENTUM,
        "seed=2",
        "cache_dir=" + str(tmp_path / "other_cache"),
    )
    assert np.allclose(alone.runs["final_error"].iloc[0], runs["final_error"].iloc[1])


def test_the_scikit_learn_example_on_real_data(compose_config, tmp_path: Path) -> None:
    pytest.importorskip("sklearn")
    outcome = _run(
        compose_config,
        tmp_path,
        EXAMPLES,
        "trainer=sklearn_mlp:train",
        "dataset=iris",
        "layers=8",
        "lr=0.01",
        "iterations=300",
        "log_every=100",
        "n_seeds=2",
    )
    assert (outcome.runs["holdout_accuracy"] > 0.8).all()
    assert (outcome.runs["dataset"] == "iris holdout=0.3 data_seed=0").all()


def _write(folder: Path, name: str, body: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(
        "import numpy as np\nfrom nnsweep import SeedResult\n\n\n"
        "def train(settings, data, seeds):\n" + body
    )
    return path


MEAN = "    return [SeedResult(np.full(data.targets.shape, {value})) for _ in seeds]\n"


def test_editing_the_trainer_retrains(compose_config, tmp_path: Path) -> None:
    path = _write(tmp_path, "edited_trainer", MEAN.format(value=0.5))
    first = _run(compose_config, tmp_path, tmp_path, "trainer=edited_trainer:train", "n_seeds=2")
    again = _run(compose_config, tmp_path, tmp_path, "trainer=edited_trainer:train", "n_seeds=2")
    assert (first.n_trained, again.n_trained) == (2, 0)  # the cache holds the seeds
    path.write_text(path.read_text().replace("0.5", "0.25"))
    sys.modules.pop("edited_trainer")  # a new process would import the edited file
    edited = _run(compose_config, tmp_path, tmp_path, "trainer=edited_trainer:train", "n_seeds=2")
    assert edited.n_trained == 2
    assert edited.runs["final_error"].tolist() != first.runs["final_error"].tolist()
    # The trainer's arguments are part of the key too.
    args = _run(
        compose_config,
        tmp_path,
        tmp_path,
        "trainer=edited_trainer:train",
        "n_seeds=2",
        "trainer_args={x:1}",
    )
    assert args.n_trained == 2
    provenance = json.loads((tmp_path / "job2" / "provenance.json").read_text())
    assert provenance["trainer"] == "edited_trainer:train"
    assert provenance["trainer_source_sha256"] == trainer.source_sha256("edited_trainer:train")


BAD = [
    (
        "    raise ValueError('no convergence')\n",
        r"trainer bad_\d:train raised ValueError: no convergence \(.*bad_\d\.py, line 6\)",
    ),
    (
        "    return [SeedResult(np.zeros((3, 1))) for _ in seeds]\n",
        r"trainer bad_\d:train returned outputs for seed #0 of shape \(3, 1\); expected \(8, 2\)",
    ),
    (
        MEAN.format(value="np.nan"),
        r"trainer bad_\d:train returned outputs for seed #0 with a non-finite value",
    ),
    (
        "    return [SeedResult(np.zeros((8, 2)))]\n",
        r"trainer bad_\d:train returned 1 result\(s\) for 2 seed\(s\)",
    ),
]


@pytest.mark.parametrize(("number", "body", "expected"), [(k, *b) for k, b in enumerate(BAD)])
def test_a_bad_trainer_is_one_line_naming_it_and_the_users_file(
    compose_config, tmp_path: Path, number: int, body: str, expected: str
) -> None:
    _write(tmp_path, f"bad_{number}", body)
    run, dataset = _cell(compose_config, tmp_path, f"trainer=bad_{number}:train", "n_seeds=2")
    data = TrainData(dataset.inputs, dataset.targets, dataset.holdout_inputs)
    with pytest.raises(TrainerError, match=expected) as caught:
        trainer.run(run.train.trainer, run.train, data, [1, 2])
    assert "\n" not in str(caught.value)


def test_a_trainer_that_cannot_be_loaded_is_refused(compose_config, tmp_path: Path) -> None:
    for name, expected in [
        ("nope", "trainer=nope: give builtin or module:function"),
        ("no_such_module:train", "trainer=no_such_module:train: no module 'no_such_module'"),
        ("tutorial_loop:nope", "trainer=tutorial_loop:nope: tutorial_loop has no 'nope'"),
    ]:
        with pytest.raises(ConfigError, match=expected):
            _cell(compose_config, EXAMPLES, f"trainer={name}")


def test_a_raising_trainer_is_a_failed_row_and_the_sweep_goes_on(tmp_path: Path) -> None:
    shutil.copy(EXAMPLES / "tutorial_loop.py", tmp_path)
    _write(tmp_path, "raising", "    return 1 / 0\n")
    done = run_cli(
        [
            "-m",
            "trainer=tutorial_loop:train,raising:train",
            "iterations=100",
            "log_every=50",
            "n_seeds=2",
            "progress=false",
            f"results_dir={tmp_path / 'results'}",
            *HOST,
        ],
        cwd=tmp_path,
    )
    assert "Traceback" not in done.stderr and "nnsweep/" not in done.stderr, done.stderr
    runs = pd.read_parquet(only_dir(tmp_path / "results" / "sweep") / "runs.parquet")
    good = runs[runs["trainer"] == "tutorial_loop:train"]
    assert len(good) == 2 and (good["status"] == "ok").all()
    (failed,) = runs[runs["status"] == "failed"].itertuples()
    assert failed.reason.startswith("trainer raising:train raised ZeroDivisionError: division by")
    assert failed.reason.endswith(f"({tmp_path / 'raising.py'}, line 6)")
