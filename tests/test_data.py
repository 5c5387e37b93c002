"""Datasets: generated problems, the user's CSV (and its one-line errors), held-out rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import only_dir, run_cli_here

from nnsweep.config import ConfigError, dataset_spec, run_config, train_spec
from nnsweep.sweep.cell import load_cell
from nnsweep.sweep.job import seed_cache_fields
from nnsweep.train import data
from nnsweep.train.data import load_dataset


def test_parity_is_every_input_with_its_parity() -> None:
    inputs, targets = data.parity(3)
    assert inputs.shape == (8, 3) and targets.shape == (8, 1)
    assert inputs.tolist()[5] == [1, 0, 1] and targets[5, 0] == 0
    assert targets[:, 0].tolist() == [0, 1, 1, 0, 1, 0, 0, 1]


@pytest.mark.parametrize("make", [data.two_moons, data.circles])
def test_generated_data_depends_only_on_its_data_seed(make) -> None:
    first, first_targets = make(50, 0.2, 3)
    again, _ = make(50, 0.2, 3)
    other, _ = make(50, 0.2, 4)
    assert first.shape == (50, 2) and sorted(set(first_targets[:, 0])) == [0.0, 1.0]
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_holdout_split_is_disjoint_deterministic_and_in_file_order() -> None:
    training, held = data.holdout_rows(40, 0.25, data_seed=1)
    assert len(held) == 10 and len(training) == 30
    assert sorted([*training, *held]) == list(range(40))
    assert list(held) == sorted(held)
    assert np.array_equal(held, data.holdout_rows(40, 0.25, data_seed=1)[1])
    assert not np.array_equal(held, data.holdout_rows(40, 0.25, data_seed=2)[1])


def test_dataset_spec_labels_generated_data_by_its_parameters() -> None:
    spec = dataset_spec(
        {
            "name": "moons",
            "kind": "moons",
            "n_samples": 40,
            "noise": 0.1,
            "data_seed": 2,
            "holdout": 0.25,
        }
    )
    assert spec.label == "moons(n=40, noise=0.1, seed=2) holdout=0.25"
    dataset = load_dataset(spec)
    assert dataset.name == spec.label
    assert len(dataset.inputs) == 30 and len(dataset.holdout_inputs) == 10


def test_cache_key_covers_dataset_contents_not_just_its_name(tmp_path: Path) -> None:
    keys = []
    for rows in ([[0, 1], [1, 0]], [[0, 1], [1, 1]]):
        spec = dataset_spec({"name": "same", "inputs": rows, "targets": [[0], [1]]})
        run = run_config(spec, train_spec(hidden_layers=(2,)))
        keys.append(seed_cache_fields(run, load_dataset(spec), 1)["dataset_sha256"])
    assert keys[0] != keys[1]


def _csv(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "data.csv"
    path.write_text(text)
    return path


CSV_ERRORS = [
    ("x1,x2,y\n0,0,0\n0,abc,1\n", ["x1", "x2"], "column 'x2', row 2: 'abc' is not a number"),
    ("x1,x2,y\n0,,0\n", ["x1", "x2"], "column 'x2', row 1: missing value"),
    ("x1,x2,y\n0,nan,0\n", ["x1", "x2"], "column 'x2', row 1: missing value (NaN)"),
    ("x1,x2,y\n0,0,0\n0,1,2\n", ["x1", "x2"], "column 'y', row 2: 2 is outside [0, 1]"),
    ("x1,x2,y\n0,0,0\n", ["x1", "z"], "column 'z' not found"),
    ("", ["x1", "x2"], "the file is empty"),
    ("x1,x2,y\n", ["x1", "x2"], "no rows"),
]


@pytest.mark.parametrize(("text", "inputs", "expected"), CSV_ERRORS)
def test_bad_csv_is_a_one_line_error_naming_file_column_and_row(
    compose_config, tmp_path: Path, text: str, inputs: list[str], expected: str
) -> None:
    path = _csv(tmp_path, text)
    cfg = compose_config(
        "dataset=csv",
        f"dataset.path={path}",
        f"dataset.inputs=[{','.join(inputs)}]",
        "dataset.targets=[y]",
    )
    with pytest.raises(ConfigError) as caught:
        load_cell(cfg)
    message = str(caught.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_csv_dataset_with_holdout_through_the_cli(tmp_path: Path) -> None:
    rows = ["x1,x2,y"] + [f"{a},{b},{a ^ b}" for a in (0, 1) for b in (0, 1)] * 4
    path = _csv(tmp_path, "\n".join(rows) + "\n")
    results = tmp_path / "results"
    done = run_cli_here(
        [
            "dataset=csv",
            f"dataset.path={path}",
            "dataset.inputs=[x1,x2]",
            "dataset.targets=[y]",
            "dataset.holdout=0.25",
            "layers=4",
            "n_seeds=3",
            "iterations=500",
            "log_every=100",
            f"results_dir={results}",
        ]
    )
    assert done.returncode == 0, done.stderr
    runs = pd.read_parquet(only_dir(results / "run") / "runs.parquet")
    label = "csv(data.csv, inputs=[x1,x2], targets=[y]) holdout=0.25 data_seed=0"
    assert runs["dataset"].unique().tolist() == [label]
    assert runs["holdout_error"].notna().all()
    bad = run_cli_here(
        [
            "dataset=csv",
            f"dataset.path={path}",
            "dataset.inputs=[x1,x2]",
            "dataset.targets=[y]",
            "output_activation=tanh",
            "dataset.holdout=1.5",
            f"results_dir={results / 'bad'}",
        ]
    )
    assert bad.returncode == 2 and "dataset.holdout=1.5" in bad.stderr
    assert not (results / "bad").exists()
