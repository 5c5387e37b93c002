"""Every setting is declared once (nnsweep/config.py); everything else is derived from it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nnsweep import schema, store
from nnsweep.config import (
    NUMBER_SETTINGS,
    SETTINGS,
    cell_settings,
    settings_table,
    to_run_config,
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
