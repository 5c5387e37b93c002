"""Families of shapes (budget(...)) and the columns derived from a shape."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import only_dir, run_cli, run_cli_here

from nnsweep import schema
from nnsweep.errors import ConfigError
from nnsweep.train import shapes


def family(text: str) -> list[tuple[int, ...]]:
    return shapes.budget_shapes(shapes.parse_budget(text))


@pytest.mark.parametrize(
    ("total", "depth", "step"),
    [(32, 3, 4), (24, 3, 4), (16, 3, 2), (32, 2, 4), (12, 4, 1), (8, 1, 4), (40, 4, 4)],
)
def test_counts_bounds_and_order(total: int, depth: int, step: int) -> None:
    found = family(f"budget(total={total}, depth={depth}, step={step})")
    # Compositions of total/step into depth positive parts.
    assert len(found) == math.comb(total // step - 1, depth - 1)
    assert len(set(found)) == len(found)
    assert found == sorted(found)
    for shape in found:
        assert len(shape) == depth
        assert sum(shape) == total
        assert all(width >= step and width % step == 0 for width in shape)


def test_the_issues_family_of_21() -> None:
    found = [shapes.layers_text(s) for s in family("budget(total=32, depth=3, step=4)")]
    assert len(found) == 21
    assert found[:3] == ["4-4-24", "4-8-20", "4-12-16"]
    assert found[-1] == "24-4-4"
    assert "8-16-8" in found and "16-8-8" in found and "8-8-8" not in found


def test_weight_filter_keeps_exactly_the_shapes_in_range() -> None:
    every = family("budget(total=32, depth=3, step=4)")
    kept = family(
        "budget(total=32, depth=3, step=4, inputs=4, outputs=2, min_weights=200, max_weights=260)"
    )
    expected = [s for s in every if 200 <= shapes.weight_count(s, 4, 2) <= 260]
    assert kept == expected
    assert 0 < len(kept) < len(every)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("budget(total=30, depth=3, step=4)", "not a multiple of step 4"),
        ("budget(total=8, depth=3, step=4)", "need total >= 12"),
        ("budget(total=32, step=4)", "give depth"),
        ("budget(total=32, depth=3, width=4)", "unknown argument 'width'"),
        ("budget(total=32, depth=3, depth=2)", "'depth' is given twice"),
        ("budget(total=32, depth=3, step=x)", "'step=x' is not name=whole number"),
        ("budget(total=32, depth=0)", "depth must be >= 1"),
        ("budget(total=32, depth=3, max_weights=200)", "needs inputs= and outputs="),
        ("budget(total=400, depth=5)", "more than 2000; raise step"),
        ("budget(total=32, depth=3)x", "write a family as budget("),
    ],
)
def test_bad_specs_are_refused_in_one_line(spec: str, says: str) -> None:
    with pytest.raises(ConfigError) as error:
        shapes.expand_value(spec)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("layers=budget")
    assert says in message


def test_empty_filter_is_an_error_not_an_empty_sweep() -> None:
    with pytest.raises(ConfigError, match="no shape passes the weight filter"):
        shapes.expand_value("budget(total=32,depth=3,step=4,inputs=4,outputs=2,max_weights=10)")


def test_expansion_mixes_with_plain_shapes_and_drops_duplicates() -> None:
    value = "8-8-8, budget(total=12, depth=2, step=4),4-8,16"
    assert shapes.expand_value(value) == "8-8-8,4-8,8-4,16"
    assert shapes.expand_value("8-16-8,8-8-8") == "8-16-8,8-8-8"  # untouched


def test_expansion_of_params_and_command_line() -> None:
    params = {"layers": "budget(total=12, depth=2, step=4)", "lr": "0.1,1"}
    assert shapes.expand_params(params) == {"layers": "4-8,8-4", "lr": "0.1,1"}
    assert shapes.expand_params(None) == {}
    overrides = ["layers=budget(total=12,depth=2,step=4)", "n_seeds=3", "+layers=8"]
    assert shapes.expand_overrides(overrides) == ["layers=4-8,8-4", "n_seeds=3", "+layers=8"]


def test_shape_columns_of_the_tutorials_shapes() -> None:
    # The tutorial's weight counts (4 inputs, 2 outputs, no biases): 304, 176, 272.
    for layers, weights in (((8, 16, 8), 304), ((8, 8, 8), 176), ((16, 8, 8), 272)):
        columns = shapes.shape_columns(layers, 4, 2)
        assert columns["weights_no_bias"] == weights
        assert columns["weights_with_bias"] == weights + sum(layers) + 2
        assert columns["total_neurons"] == sum(layers)
        assert columns["depth"] == 3
    assert shapes.front_loading((8, 16, 8)) == pytest.approx(0.5)
    assert shapes.front_loading((24, 4, 4)) == pytest.approx(0.8125)
    assert shapes.front_loading((4, 4, 24)) == pytest.approx(0.1875)
    assert shapes.front_loading((32, 0)) == 1.0 and shapes.front_loading((0, 32)) == 0.0
    assert math.isnan(shapes.front_loading((8,)))


def test_module_prints_the_list_and_refuses_bad_specs(capsys: pytest.CaptureFixture) -> None:
    assert shapes.main(["budget(total=12, depth=2, step=4)"]) == 0
    assert capsys.readouterr().out.strip() == "4-8,8-4"
    assert shapes.main(["budget(total=13, depth=2, step=4)"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a multiple of step 4" in err


def test_cli_refuses_a_bad_family_in_one_line(tmp_path: Path) -> None:
    done = run_cli_here(
        ["-m", "layers=budget(total=30, depth=3, step=4)", f"results_dir={tmp_path}"]
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "nnsweep: error: layers=budget(total=30,depth=3,step=4): "
        "total 30 is not a multiple of step 4"
    ]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
@pytest.mark.parametrize("where", ["experiments_file", "command_line"])
def test_a_family_sweep_lists_its_shapes_in_multirun_yaml(tmp_path: Path, where: str) -> None:
    common = ["n_seeds=2", "iterations=40", "log_every=20", f"results_dir={tmp_path}"]
    if where == "command_line":
        arguments = ["-m", "layers=budget(total=12, depth=2, step=4)", *common]
    else:
        (tmp_path / "experiments").mkdir()
        (tmp_path / "experiments" / "family.yaml").write_text(
            "# @package _global_\nname: family\nhydra:\n  mode: MULTIRUN\n  sweeper:\n"
            "    params:\n      layers: budget(total=12, depth=2, step=4)\n"
        )
        arguments = [
            "experiments=family",
            f"hydra.searchpath=[file://{tmp_path}]",
            *common,
        ]
    done = run_cli(arguments)
    assert done.returncode == 0, done.stderr
    sweep_dir = only_dir(tmp_path / ("sweep" if where == "command_line" else "family"))
    recorded = yaml.safe_load((sweep_dir / "multirun.yaml").read_text())
    listed = (
        recorded["hydra"]["overrides"]["task"][0]
        if where == "command_line"
        else recorded["hydra"]["sweeper"]["params"]["layers"]
    )
    assert listed.endswith("4-8,8-4")
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    assert sorted(runs["layers"].unique()) == ["4-8", "8-4"]
    by_layers = runs.groupby("layers").first()
    assert by_layers.loc["4-8", "weights_no_bias"] == 4 * 4 + 4 * 8 + 8 * 2
    assert by_layers.loc["8-4", "front_loading"] == pytest.approx(1 - 4 / 12)
    assert set(schema.SHAPE_COLUMNS) <= set(runs.columns)
    assert "4-8" in (sweep_dir / "report.md").read_text()
