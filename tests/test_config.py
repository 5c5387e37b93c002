"""Config at the edge: composing, converting to frozen dataclasses, one-line errors."""

from __future__ import annotations

import dataclasses

import pytest

from nnsweep.config import ConfigError, RunConfig, parse_layers, to_run_config
from nnsweep.sweep.cell import load_cell
from nnsweep.train.data import load_dataset


def test_default_config_is_the_tutorials_example_2(compose_config) -> None:
    run = to_run_config(compose_config())
    assert isinstance(run, RunConfig)
    assert run.dataset.name == run.dataset.label == "tutorial_ex2"
    assert load_dataset(run.dataset).inputs.shape == (8, 4)
    assert load_dataset(run.dataset).targets.shape == (8, 2)
    assert run.train.hidden_layers == (8, 16, 8)
    assert run.train.activation == "sigmoid" and run.train.init == "tutorial"
    assert run.train.bias is False and run.train.lr == 1.0
    assert run.train.iterations == 100_000 and run.train.log_every == 10_000
    assert run.seeds == (1,)


def test_run_config_is_frozen(compose_config) -> None:
    run = to_run_config(compose_config())
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.seed = 2  # type: ignore[misc]


def test_example_1_and_the_pitfall_targets(compose_config) -> None:
    ex1 = to_run_config(compose_config("dataset=tutorial_ex1", "layers=8"))
    assert load_dataset(ex1.dataset).inputs.shape == (8, 3)
    assert load_dataset(ex1.dataset).targets.shape == (8, 1)
    assert [row[0] for row in ex1.dataset.targets] == [0, 1, 1, 0, 1, 1, 1, 1]
    assert ex1.train.hidden_layers == (8,)
    pitfall = to_run_config(compose_config("dataset=tutorial_ex1_pitfall"))
    assert [row[0] for row in pitfall.dataset.targets] == [0, 0, 0, 0, 1, 1, 1, 1]


def test_seed_block(compose_config) -> None:
    run = to_run_config(compose_config("seed=5", "n_seeds=3"))
    assert run.seeds == (5, 6, 7)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("8-16-8", (8, 16, 8)), ("16", (16,)), (8, (8,)), ([8, 16, 8], (8, 16, 8))],
)
def test_parse_layers_accepts(value, expected) -> None:
    assert parse_layers(value) == expected


@pytest.mark.parametrize("value", ["8-x-8", "0-8", -3, "", "8--8", [8, 0], [], True, 2.5, "8-16-"])
def test_parse_layers_rejects_with_the_key_and_value(value) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_layers(value)
    message = str(caught.value)
    assert message.startswith("layers=") and "\n" not in message


def test_yaml_list_layers(compose_config) -> None:
    run = to_run_config(compose_config("layers=[16,8,8]"))
    assert run.train.hidden_layers == (16, 8, 8)


def test_too_large_a_network_names_the_size(compose_config) -> None:
    with pytest.raises(ConfigError, match=r"GiB"):
        load_cell(compose_config("layers=100000-100000"))


def test_config_checks_settings_without_reading_the_data(compose_config, tmp_path) -> None:
    """A CSV that is not there is a valid setting; loading the cell refuses it."""
    missing = tmp_path / "nowhere.csv"
    overrides = (
        "dataset=csv",
        f"dataset.path={missing}",
        "dataset.inputs=[x]",
        "dataset.targets=[y]",
        "dataset.holdout=0.5",
    )
    run = to_run_config(compose_config(*overrides))
    assert run.dataset.path == str(missing) and run.dataset.inputs == ("x",)
    assert run.dataset.label == "csv(nowhere.csv, inputs=[x], targets=[y]) holdout=0.5 data_seed=0"
    with pytest.raises(ConfigError, match=f"dataset.path={missing}: no such file"):
        load_cell(compose_config(*overrides))
