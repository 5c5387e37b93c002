"""Every setting is declared once (nnsweep/config.py); everything else is derived from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nnsweep import schema, store
from nnsweep.checks import Choice, Interval
from nnsweep.config import (
    MAX_AUTO_SEEDS,
    MAX_ITERATIONS,
    NUMBER_SETTINGS,
    SETTINGS,
    ConfigError,
    RunConfig,
    TrainSpec,
    cell_settings,
    checked_setting,
    run_config,
    setting_values,
    settings_table,
    shown_default,
    to_run_config,
    train_spec,
)
from nnsweep.help import help_page
from nnsweep.sweep.job import seed_cache_fields
from nnsweep.train.data import load_dataset

README = Path(__file__).resolve().parents[1] / "README.md"


def _changed(value):
    """Another value of the same type (the key is computed without validating it)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value * 2 + 1
    if isinstance(value, tuple):
        return (*value, 3)
    return f"{value}_other"


def _key(run) -> str:
    dataset = load_dataset(run.dataset)
    return store.cache_key(seed_cache_fields(run, dataset, run.seeds[0]))


def test_every_setting_has_a_doc_and_a_default() -> None:
    for f in SETTINGS:
        assert f.metadata["doc"] and "\n" not in f.metadata["doc"], f.name
        assert f.default is not dataclasses.MISSING, f.name


@pytest.mark.parametrize("setting", NUMBER_SETTINGS, ids=lambda f: f.name)
def test_a_setting_that_changes_the_numbers_changes_every_seeds_cache_key(
    compose_config, setting
) -> None:
    run = to_run_config(compose_config())
    name = setting.metadata["spec"] or setting.name
    train = dataclasses.replace(run.train, **{name: _changed(getattr(run.train, name))})
    assert _key(dataclasses.replace(run, train=train)) != _key(run)


def test_every_trainer_field_is_a_declared_setting_and_in_the_key(compose_config) -> None:
    run = to_run_config(compose_config())
    declared = {f.metadata["spec"] or f.name for f in NUMBER_SETTINGS}
    assert {f.name for f in dataclasses.fields(run.train)} == declared
    for f in dataclasses.fields(run.train):
        train = dataclasses.replace(run.train, **{f.name: _changed(getattr(run.train, f.name))})
        assert _key(dataclasses.replace(run, train=train)) != _key(run), f.name


def test_seed_and_data_are_in_the_key(compose_config) -> None:
    run = to_run_config(compose_config())
    assert _key(dataclasses.replace(run, seed=2)) != _key(run)
    other_data = to_run_config(compose_config("dataset=tutorial_ex1", "layers=8"))
    assert _key(dataclasses.replace(run, dataset=other_data.dataset)) != _key(run)


def test_table_columns_are_the_settings_that_change_the_numbers(compose_config) -> None:
    run = to_run_config(compose_config("layers=16-8-8"))
    settings = cell_settings(run)
    assert list(settings) == schema.CELL_COLUMNS
    assert settings["layers"] == "16-8-8" and settings["dataset"] == "tutorial_ex2"


def test_the_readme_settings_table_is_generated_from_the_declarations() -> None:
    assert settings_table() in README.read_text(encoding="utf-8"), (
        "README's settings table is stale; paste nnsweep.config.settings_table() into it"
    )


def test_help_lists_every_setting_with_its_default_on_one_page() -> None:
    page = help_page()
    assert len(page.splitlines()) <= 60
    for f in SETTINGS:
        assert f"  {f.name}=" in page and f.metadata["doc"] in page
    assert ".venv" not in page and "results/" not in page


def test_the_config_schemas_pickle_by_reference() -> None:
    # Launchers that pickle the config (submitit, Ray) recompose it in the job against the
    # unpickled schema; a schema pickled by value arrived there with no fields.
    import pickle

    from nnsweep.config import DatasetConf, NNSweepConf

    for schema_class in (DatasetConf, NNSweepConf):
        assert pickle.loads(pickle.dumps(schema_class)) is schema_class


def test_the_plain_objects_carry_no_defaults_of_their_own(compose_config) -> None:
    """Defaults live in the settings' declarations only; train_spec and run_config use them."""
    for plain in (TrainSpec, RunConfig):
        for f in dataclasses.fields(plain):
            assert f.default is dataclasses.MISSING, (plain.__name__, f.name)
    declared = to_run_config(compose_config())  # conf/config.yaml sets no setting itself
    assert train_spec() == declared.train
    rebuilt = run_config(declared.dataset, declared.train)
    assert rebuilt.cache_dir == "results/.cache"
    assert dataclasses.replace(rebuilt, cache_dir=declared.cache_dir) == declared


@pytest.mark.parametrize(
    ("constraint", "good", "bad", "words"),
    [
        (Interval(int, 1, 10), 10, 11, "1 to 10"),
        (Interval(int, 0), 0, -1, ">= 0"),
        (Interval(float, 0), 1e-9, 0.0, "> 0"),
        (Choice({"sigmoid": 1, "tanh": 2}), "tanh", "relu", "sigmoid | tanh"),
    ],
)
def test_a_constraint_enforces_the_values_it_describes(constraint, good, bad, words) -> None:
    assert constraint("key", good) == good
    with pytest.raises(ConfigError, match=rf"^key={bad}: "):
        constraint("key", bad)
    assert constraint.describe() == words


def test_help_and_readme_print_every_settings_range_from_its_check() -> None:
    page, table = help_page(), settings_table()
    for f in SETTINGS:
        values = setting_values(f)
        line = next(line for line in page.splitlines() if line.startswith(f"  {f.name}="))
        assert all(value.strip() in line for value in values.split("|")), (f.name, line)
        assert f"| {values.replace('|', chr(92) + '|')} |" in table, f.name
    iterations = next(f for f in SETTINGS if f.name == "iterations")
    assert setting_values(iterations) == f"1 to {MAX_ITERATIONS:,}"


@pytest.mark.parametrize("key", ["max_seeds", "seed_block"])
def test_an_auto_sweep_checks_its_plan_with_the_settings_own_check(key) -> None:
    from nnsweep.sweep.auto import auto_plan

    for value in (1, MAX_AUTO_SEEDS + 1, "x"):
        with pytest.raises(ConfigError) as by_plan:
            auto_plan({key: value})
        with pytest.raises(ConfigError) as by_setting:
            checked_setting({key: value}, key)
        assert str(by_plan.value) == str(by_setting.value)


def test_help_lists_the_shipped_experiments_once_from_the_checkout(tmp_path, monkeypatch) -> None:
    from nnsweep.locations import SHIPPED_EXPERIMENTS

    monkeypatch.chdir(SHIPPED_EXPERIMENTS.parent)
    assert "here:    the shipped ones" in help_page()
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "mine.yaml").write_text("# @package _global_\n")
    monkeypatch.chdir(tmp_path)
    assert "here:    mine" in help_page()


def test_help_and_readme_show_the_same_defaults() -> None:
    page, table = help_page(), settings_table()
    for f in SETTINGS:
        assert f"  {f.name}={shown_default(f)} " in page, f.name
        assert f"| `{f.name}` | `{shown_default(f)}` |" in table, f.name


@pytest.mark.parametrize("value", [0, "foo", True])
def test_a_bad_seed_count_says_auto_is_also_a_value(value) -> None:
    with pytest.raises(ConfigError, match=r"must be a whole number >= 1 \(or auto, in a sweep\)"):
        checked_setting({"n_seeds": value}, "n_seeds")
