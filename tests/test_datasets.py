"""One dataset spec and registry: every key is part of a cell's identity, a key the kind
lacks is refused, and classification data (real data sets, a CSV's label column) is split
stratified, standardised on training rows only and one-hot encoded."""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import only_dir, run_cli

from nnsweep.config import ConfigError, RunConfig, cell_settings, run_config, train_spec
from nnsweep.help import help_page
from nnsweep.sweep.launch import check_distinct_data
from nnsweep.train import data
from nnsweep.train.data import DATASET_KEYS, KINDS, dataset_spec, load_dataset

MOONS = {"name": "m", "kind": "moons", "n_samples": 40, "noise": 0.1, "holdout": 0.25}
CSV = {
    "name": "c",
    "kind": "csv",
    "path": "a.csv",
    "inputs": ["x1"],
    "targets": ["y"],
    "holdout": 0.25,
}
# (base node, key, two values): every dataset key, on a kind that takes it.
VARIED = [
    (CSV, "name", "c", "d"),
    (CSV, "path", "a.csv", "b.csv"),
    (CSV, "inputs", ["x1"], ["x1", "x2"]),
    (CSV, "targets", ["y"], ["z"]),
    ({**CSV, "targets": None, "label_column": "s"}, "label_column", "s", "t"),
    (CSV, "data_seed", 0, 1),
    (CSV, "holdout", 0.25, 0.5),
    ({"name": "p", "kind": "parity", "bits": 3}, "bits", 3, 4),
    (MOONS, "n_samples", 40, 60),
    (MOONS, "noise", 0.1, 0.2),
    (MOONS, "data_seed", 0, 1),
    ({"name": "i", "kind": "iris", "holdout": 0.3}, "data_seed", 0, 1),
    ({"name": "t", "inputs": [[0], [1]], "targets": [[0], [1]]}, "inputs", [[0], [1]], [[1], [0]]),
    ({"name": "t", "inputs": [[0], [1]], "targets": [[0], [1]]}, "targets", [[0], [1]], [[1], [0]]),
    (MOONS, "kind", "moons", "circles"),
]


def _cell(node: dict) -> RunConfig:
    return run_config(dataset_spec(node), train_spec(hidden_layers=(2,)))


def test_every_dataset_key_is_varied_below() -> None:
    assert {key for _, key, _, _ in VARIED} == set(DATASET_KEYS)


@pytest.mark.parametrize(("base", "key", "first", "second"), VARIED)
def test_cells_that_differ_only_in_a_dataset_key_are_two_cells_or_refused(
    base: dict, key: str, first: object, second: object
) -> None:
    cells = [_cell({**base, key: first}), _cell({**base, key: second})]
    if cell_settings(cells[0]) != cell_settings(cells[1]):
        check_distinct_data(cells)  # two labels: two cells, nothing to refuse
        return
    # The same label for different data (two tables of one name): refused, never merged.
    with pytest.raises(ConfigError, match=f"differ in dataset.{key}; give each dataset its own"):
        check_distinct_data(cells)


def test_a_sweep_over_two_csv_files_gives_two_cells(tmp_path: Path) -> None:
    for name, flip in (("a.csv", 0), ("b.csv", 1)):
        rows = ["x1,x2,y"] + [f"{a},{b},{a ^ b ^ flip}" for a in (0, 1) for b in (0, 1)]
        (tmp_path / name).write_text("\n".join(rows) + "\n")
    done = run_cli(
        [
            "-m",
            "dataset=csv",
            "dataset.path=a.csv,b.csv",
            "dataset.inputs=[x1,x2]",
            "dataset.targets=[y]",
            "layers=2",
            "n_seeds=5",
            "iterations=50",
            "log_every=10",
            "progress=false",
            f"results_dir={tmp_path / 'results'}",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    runs = pd.read_parquet(only_dir(tmp_path / "results" / "sweep") / "runs.parquet")
    assert sorted(runs["dataset"].unique()) == [
        "csv(a.csv, inputs=[x1,x2], targets=[y])",
        "csv(b.csv, inputs=[x1,x2], targets=[y])",
    ]
    assert len(runs) == 10 and "duplicate" not in done.stderr


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (
            {"name": "tutorial_ex2", "inputs": [[0]], "targets": [[0]], "path": "x.csv"},
            "dataset.path=x.csv: dataset tutorial_ex2 (kind table) has no path; choose dataset=csv",
        ),
        (
            {**MOONS, "bits": 3},
            "dataset.bits=3: dataset m (kind moons) has no bits; choose dataset=parity",
        ),
        ({"name": "iris", "kind": "iris", "label_column": "y"}, "choose dataset=csv"),
    ],
)
def test_a_key_the_datasets_kind_lacks_is_refused_with_a_hint(node: dict, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        dataset_spec(node)
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_forgetting_dataset_csv_is_refused_through_the_cli(tmp_path: Path) -> None:
    done = run_cli(["dataset.path=x.csv", f"results_dir={tmp_path / 'r'}"], cwd=tmp_path)
    assert done.returncode == 2 and not (tmp_path / "r").exists()
    assert done.stderr.strip().splitlines() == [
        "nnsweep: error: dataset.path=x.csv: dataset tutorial_ex2 (kind table) has no path; "
        "choose dataset=csv, e.g. dataset=csv dataset.path=data.csv dataset.inputs=[x] "
        "dataset.targets=[y]"
    ]


def test_help_lists_every_dataset_key_and_kind() -> None:
    page = help_page()
    keys = page.split("Dataset keys")[1].split("\n\n")[0]
    for key in DATASET_KEYS:
        assert re.search(rf"[ :]{key}[,;( \n]", keys), key
    for kind in KINDS:
        assert re.search(rf"[ ;]{kind}[,:]", keys), kind


# ---------------------------------------------------------------------------------------
# Classification: real data sets and a CSV's label column
# ---------------------------------------------------------------------------------------


def _labelled(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "labelled.csv"
    path.write_text(text)
    return {
        "name": "c",
        "kind": "csv",
        "path": str(path),
        "inputs": ["x1", "x2"],
        "label_column": "kind",
    }


def test_inputs_are_standardised_with_training_rows_only(tmp_path: Path) -> None:
    rng = np.random.RandomState(0)
    rows = ["x1,x2,kind"]
    for k in range(40):
        rows.append(f"{rng.normal():.6f},{rng.normal() * 5 + 3:.6f},{'ab'[k % 2]}")
    node = _labelled(tmp_path, "\n".join(rows) + "\n")
    dataset = load_dataset(dataset_spec({**node, "holdout": 0.25}))
    # Statistics of the training rows only: they are exactly centred and scaled ...
    assert np.allclose(dataset.inputs.mean(axis=0), 0, atol=1e-12)
    assert np.allclose(dataset.inputs.std(axis=0), 1, atol=1e-12)
    # ... and the held-out rows went through the same (training) transform. Statistics
    # that saw every row (leakage) give training rows whose mean is not 0.
    raw = np.array([[float(v) for v in row.split(",")[:2]] for row in rows[1:]])
    training, held = data.stratified_rows(np.arange(40) % 2, 0.25, 0)
    mean, sd = raw[training].mean(axis=0), raw[training].std(axis=0)
    assert np.allclose(dataset.holdout_inputs, (raw[held] - mean) / sd, atol=1e-12)
    assert not np.allclose(dataset.holdout_inputs, (raw[held] - raw.mean(0)) / raw.std(0))


@pytest.mark.parametrize(
    ("kind", "n_inputs", "n_outputs", "n_rows"),
    [
        ("iris", 4, 3, 150),
        ("wine", 13, 3, 178),
        ("breast_cancer", 30, 1, 569),
        ("digits", 64, 10, 1797),
    ],
)
def test_bundled_data_is_stratified_and_one_hot(kind, n_inputs, n_outputs, n_rows) -> None:
    pytest.importorskip("sklearn")
    dataset = load_dataset(dataset_spec({"name": kind, "kind": kind, "holdout": 0.3}))
    assert dataset.inputs.shape[1] == n_inputs and dataset.targets.shape[1] == n_outputs
    assert len(dataset.inputs) + len(dataset.holdout_inputs) == n_rows
    for targets in (dataset.targets, dataset.holdout_targets):
        assert set(np.unique(targets)) == {0.0, 1.0}
        if n_outputs > 1:
            assert (targets.sum(axis=1) == 1).all()  # one-hot: exactly one class per row
    # Stratified: every class is held out in (close to) the same fraction.
    train_counts = (
        dataset.targets.sum(axis=0)
        if n_outputs > 1
        else np.bincount(dataset.targets[:, 0].astype(int))
    )
    held_counts = (
        dataset.holdout_targets.sum(axis=0)
        if n_outputs > 1
        else np.bincount(dataset.holdout_targets[:, 0].astype(int))
    )
    fractions = held_counts / (train_counts + held_counts)
    assert np.all(np.abs(fractions - 0.3) < 0.05), fractions


def test_the_held_out_split_depends_on_data_seed_only() -> None:
    pytest.importorskip("sklearn")
    spec = {"name": "iris", "kind": "iris", "holdout": 0.3}
    first = load_dataset(dataset_spec(spec))
    again = load_dataset(dataset_spec(spec))
    other = load_dataset(dataset_spec({**spec, "data_seed": 1}))
    assert first.fingerprint() == again.fingerprint() != other.fingerprint()


BAD_LABELLED = [
    ("x1,x2,kind\n0,1,a\n1,0,a\n1,1,a\n", 0.0, "column 'kind': one class only ('a')"),
    ("x1,x2,kind\n0,1,a\n1,0,a\n1,1,a\n0,0,a\n1,1,b\n", 0.25, "class 'b' has 1 row(s), too few"),
    ("x1,x2,kind\n0,1,a\n1,zz,b\n", 0.0, "column 'x2', row 2: 'zz' is not a number"),
    ("x1,x2,kind\n0,1,a\n1,,b\n", 0.0, "column 'x2', row 2: missing value"),
    ("x1,x2,kind\n0,1,a\n1,0,\n", 0.0, "column 'kind', row 2: missing label"),
]


@pytest.mark.parametrize(("text", "holdout", "expected"), BAD_LABELLED)
def test_bad_labelled_csv_is_one_line(tmp_path: Path, text: str, holdout: float, expected: str):
    node = _labelled(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_dataset(dataset_spec({**node, "holdout": holdout}))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_bad_labelled_csv_exits_2_through_the_cli(tmp_path: Path) -> None:
    node = _labelled(tmp_path, BAD_LABELLED[0][0])
    done = run_cli(
        [
            "dataset=csv",
            f"dataset.path={node['path']}",
            "dataset.inputs=[x1,x2]",
            "dataset.label_column=kind",
            f"results_dir={tmp_path / 'r'}",
        ],
        cwd=tmp_path,
    )
    assert done.returncode == 2 and not (tmp_path / "r").exists()
    assert len(done.stderr.strip().splitlines()) == 1 and "one class only" in done.stderr


def test_real_data_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)  # import sklearn now fails
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ConfigError, match=r"dataset=wine: .*pip install 'nnsweep\[real\]'"):
        load_dataset(dataset_spec({"name": "wine", "kind": "wine"}))


def test_spec_and_schema_declare_the_same_keys() -> None:
    from nnsweep.config import DatasetConf

    assert [f.name for f in dataclasses.fields(DatasetConf)] == list(DATASET_KEYS)
