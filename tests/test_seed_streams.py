"""``seed_stream``: shared (np.random.seed(s) in every cell, the default) or per_cell streams."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import EX2_INPUTS, EX2_TARGETS, make_runs, only_dir, run_cli

from nnsweep import store
from nnsweep.config import ConfigError, to_run_config, train_spec
from nnsweep.report import wording
from nnsweep.store.tables import summarise
from nnsweep.sweep.job import seed_cache_fields
from nnsweep.train.data import load_dataset
from nnsweep.train.loop import train
from nnsweep.train.model import INITIALISERS, init_weights

SHAPE_8_8 = [4, 8, 8, 2]
SHAPE_8_16 = [4, 8, 16, 2]


def _recipe(units: list[int], seed: int, init: str) -> list[np.ndarray]:
    """per_cell as documented (model._per_cell_stream), written out with numpy's global
    stream the tutorial's way: np.random.seed(words), then one draw per layer."""
    words = np.random.SeedSequence([seed, len(units) - 1, *units]).generate_state(4)
    np.random.seed(words)
    drawn = []
    for a, b in itertools.pairwise(units):
        if init == "he":
            drawn.append(np.random.standard_normal((a, b)) * np.sqrt(2.0 / a))
        elif init == "tutorial":
            drawn.append(np.random.random((a, b)) * 2 - 1)
        else:  # xavier, glorot
            drawn.append((np.random.random((a, b)) * 2 - 1) * np.sqrt(6.0 / (a + b)))
    return drawn


def test_the_default_stream_is_np_random_seed_and_shares_first_layers_across_shapes() -> None:
    for seed in (1, 7):
        default = init_weights(SHAPE_8_16, [seed], "tutorial")
        shared = init_weights(SHAPE_8_16, [seed], "tutorial", "shared")
        np.random.seed(seed)
        for k, (a, b) in enumerate(itertools.pairwise(SHAPE_8_16)):
            tutorial = np.random.random((a, b)) * 2 - 1
            assert np.array_equal(default[k][0], tutorial)
            assert np.array_equal(shared[k][0], tutorial)
        other = init_weights(SHAPE_8_8, [seed], "tutorial")
        assert np.array_equal(other[0][0], shared[0][0])  # what the stream's name says
    assert train_spec(hidden_layers=(8,)).seed_stream == "shared"


def test_per_cell_gives_other_first_layers_across_shapes_and_the_same_for_one_cell() -> None:
    seeds = [1, 7, 8]
    small = init_weights(SHAPE_8_8, seeds, "tutorial", "per_cell")
    wide = init_weights(SHAPE_8_16, seeds, "tutorial", "per_cell")
    again = init_weights(SHAPE_8_8, seeds, "tutorial", "per_cell")
    shared = init_weights(SHAPE_8_8, seeds, "tutorial", "shared")
    for row in range(len(seeds)):
        assert small[0][row].shape == wide[0][row].shape == (4, 8)
        assert not np.array_equal(small[0][row], wide[0][row])
        assert not np.array_equal(small[0][row], shared[0][row])
        for k in range(len(small)):
            assert np.array_equal(small[k][row], again[k][row])
    # Two seeds of one cell draw differently too.
    assert not np.array_equal(small[0][0], small[0][1])


@pytest.mark.parametrize("init", sorted(INITIALISERS))
def test_per_cell_is_the_documented_machine_independent_recipe(init: str) -> None:
    np.random.seed(12345)
    before = np.random.get_state()[1].copy()
    stacked = init_weights(SHAPE_8_16, [3, 4], init, "per_cell")
    assert np.array_equal(np.random.get_state()[1], before)  # global stream untouched
    for row, seed in enumerate((3, 4)):
        for k, expected in enumerate(_recipe(SHAPE_8_16, seed, init)):
            assert np.array_equal(stacked[k][row], expected)


def test_per_cell_draws_are_pinned() -> None:
    # SeedSequence and the legacy RandomState are both under numpy's stream-stability
    # policy: these bits must not move with the machine or the numpy version.
    weights = init_weights([4, 8, 16, 8, 2], [1], "tutorial", "per_cell")
    assert weights[0][0, 0, 0] == -0.36129221033747694
    assert weights[-1][0, -1, -1] == 0.052777276242412796


def test_per_cell_keeps_the_initialisers_distribution() -> None:
    from scipy import stats

    tutorial = init_weights(SHAPE_8_16, range(200), "tutorial", "per_cell")[0].ravel()
    assert stats.kstest(tutorial, stats.uniform(loc=-1, scale=2).cdf).pvalue > 0.001
    he = init_weights(SHAPE_8_16, range(200), "he", "per_cell")[0].ravel() / np.sqrt(2 / 4)
    assert stats.kstest(he, stats.norm.cdf).pvalue > 0.001


@pytest.mark.parametrize("arithmetic", ["portable", "numpy"])
def test_a_seed_alone_equals_the_seed_in_a_batch_under_per_cell(arithmetic: str) -> None:
    spec = train_spec(
        hidden_layers=(8, 16, 8),
        iterations=300,
        log_every=50,
        arithmetic=arithmetic,
        seed_stream="per_cell",
    )
    inputs, targets = EX2_INPUTS.astype(float), EX2_TARGETS.astype(float)
    batch = train(inputs, targets, spec, list(range(1, 21)))
    shared = train(inputs, targets, dataclasses.replace(spec, seed_stream="shared"), [5])
    for seed in (1, 5, 20):
        alone = train(inputs, targets, spec, [seed])
        row = seed - 1
        assert np.array_equal(alone.curves[0], batch.curves[row])
        assert alone.final_error[0] == batch.final_error[row]
        assert np.array_equal(alone.final_output[0], batch.final_output[row])
        for a, b in zip(alone.weights, batch.weights, strict=True):
            assert np.array_equal(a[0], b[row])
    assert batch.curves[4][0] != shared.curves[0][0]  # the stream reached the trainer


def _key(run) -> str:
    return store.cache_key(seed_cache_fields(run, load_dataset(run.dataset), run.seeds[0]))


def test_the_stream_is_in_the_cache_key_and_the_default_key_is_unchanged(compose_config) -> None:
    shared = to_run_config(compose_config("layers=8-8"))
    per_cell = to_run_config(compose_config("layers=8-8", "seed_stream=per_cell"))
    assert per_cell.train.seed_stream == "per_cell"
    assert _key(shared) != _key(per_cell)
    # Entries cached before the setting existed were trained with the shared stream: at
    # that value the key is what it was, so they are still found.
    fields = seed_cache_fields(shared, load_dataset(shared.dataset), 1)
    assert "seed_stream" not in fields
    assert seed_cache_fields(per_cell, load_dataset(per_cell.dataset), 1)["seed_stream"] == (
        "per_cell"
    )


def test_cells_differing_only_in_the_stream_are_two_cells() -> None:
    runs = make_runs(
        [
            {"seed_stream": stream, "seed": seed, "job": job}
            for job, stream in enumerate(("shared", "per_cell"))
            for seed in (1, 2, 3)
        ]
    )
    summary = summarise(runs)
    assert sorted(summary["seed_stream"]) == ["per_cell", "shared"]
    assert summary["n_seeds"].tolist() == [3, 3]


def test_a_bad_stream_or_a_users_trainer_with_per_cell_is_refused(compose_config) -> None:
    with pytest.raises(ConfigError, match=r"^seed_stream='?random'?: unknown; choose one of"):
        to_run_config(compose_config("seed_stream=random"))
    with pytest.raises(ConfigError, match=r"^seed_stream=per_cell: only trainer=builtin"):
        to_run_config(compose_config("seed_stream=per_cell", "trainer=my_trainer:train"))


def test_the_methods_text_says_which_stream_the_sweep_used() -> None:
    shared = wording.methods_text()
    assert "seed_stream=shared" in shared and "share their first-layer weights" in shared
    per_cell = wording.methods_text(seed_streams=["per_cell"])
    assert "seed_stream=per_cell" in per_cell and "independent draws" in per_cell
    assert "share their first-layer weights" not in per_cell
    both = wording.methods_text(seed_streams=["shared", "per_cell"])
    assert "with seed_stream=shared" in both and "with seed_stream=per_cell" in both


def test_a_sweep_over_both_streams_keeps_them_apart_end_to_end(tmp_path: Path) -> None:
    results = tmp_path / "streams"
    done = run_cli(
        [
            "-m",
            "layers=8-8,8-16",
            "seed_stream=shared,per_cell",
            "n_seeds=3",
            "iterations=300",
            "log_every=100",
            "dataset=tutorial_ex2",
            "progress=false",
            f"results_dir={results}",
        ]
    )
    assert done.returncode == 0, done.stderr
    sweep = only_dir(results / "sweep")
    runs = pd.read_parquet(sweep / "runs.parquet")
    assert runs.groupby(["layers", "seed_stream"])["seed"].count().to_dict() == {
        (layers, stream): 3 for layers in ("8-8", "8-16") for stream in ("per_cell", "shared")
    }
    error = runs.set_index(["layers", "seed_stream", "seed"])["final_error"].sort_index()
    assert not np.array_equal(error["8-8", "shared"], error["8-8", "per_cell"])
    report = (sweep / "report.md").read_text(encoding="utf-8")
    assert "with seed_stream=per_cell" in report
