"""The CLI as a user meets it: printed lines, exit status, files, and bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import TUTORIAL_TRACE, only_dir, run_cli, run_cli_here

from nnsweep.sweep import cell


def _margins(stdout: str) -> list[float]:
    prefix = "Current error margin: "
    return [float(line[len(prefix) :]) for line in stdout.splitlines() if line.startswith(prefix)]


@pytest.mark.parametrize("arithmetic", ["portable", "numpy"])
def test_single_run_prints_the_tutorial_lines_and_writes_its_files(
    tmp_path: Path, arithmetic: str
) -> None:
    """Both arithmetics print the tutorial's trace to 12+ digits (portable is the default)."""
    extra = [] if arithmetic == "portable" else [f"arithmetic={arithmetic}"]
    done = run_cli(["iterations=20001", f"results_dir={tmp_path}", *extra])
    assert done.returncode == 0, done.stderr
    margins = _margins(done.stdout)
    assert len(margins) == 3
    np.testing.assert_allclose(margins, TUTORIAL_TRACE[:3], rtol=1e-12, atol=0)
    assert "[[" in done.stdout  # the final output layer, printed as the tutorial does
    run_dir = only_dir(tmp_path / "run")
    assert done.stderr.strip().splitlines()[-1] == f"nnsweep: results in {run_dir}"
    runs = pd.read_parquet(run_dir / "runs.parquet")
    assert runs["seed"].tolist() == [1]
    assert runs["layers"].tolist() == ["8-16-8"]
    assert runs["status"].tolist() == ["ok"]
    assert runs["arithmetic"].tolist() == [arithmetic]
    curves = pd.read_parquet(run_dir / "curves.parquet")
    np.testing.assert_array_equal(curves["error"].to_numpy()[:3], margins)
    with np.load(run_dir / "weights.npz", allow_pickle=False) as weights:
        assert sorted(weights.files) == [f"seed1_weight_{k}" for k in range(4)]
        assert weights["seed1_weight_1"].shape == (8, 16)
    provenance = json.loads((run_dir / "provenance.json").read_text())
    assert provenance["numpy"] == np.__version__
    assert provenance["arithmetic"].startswith(arithmetic)
    assert provenance["kernel_note"] is None  # numpy was forced, or a kernel path trained
    identity = provenance["seed_origins"][0]
    assert identity["kernel"] == provenance["kernel"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_example_1_runs_a_3_8_1_network(tmp_path: Path) -> None:
    done = run_cli(
        [
            "dataset=tutorial_ex1",
            "layers=8",
            "iterations=1001",
            "log_every=500",
            f"results_dir={tmp_path}",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert len(_margins(done.stdout)) == 3
    weights = np.load(only_dir(tmp_path / "run") / "weights.npz")
    assert weights["seed1_weight_0"].shape == (3, 8)
    assert weights["seed1_weight_1"].shape == (8, 1)


# Bad input on the command line: one line naming the key and value, exit 2, nothing written.
# A few run as real processes (a single run, a sweep, a missing file): the contract is what
# the user's shell sees. The rest call the same entry point in this process.
BAD_INPUTS_IN_A_PROCESS = [
    (["layers=8-x-8"], "layers=8-x-8"),
    (["-m", "dataset=tutorial_ex1,nope"], "dataset=nope"),
    (["experiments=nope"], "experiments=nope"),
]
BAD_INPUTS = [
    (["layers=0-8"], "layers=0-8"),
    (["layers=-3"], "layers=-3"),
    (["layers="], "layers=''"),
    (["iterations=0"], "iterations=0"),
    (["iterations=-5"], "iterations=-5"),
    (["lr=nan"], "lr=nan"),
    (["lr=inf"], "lr=inf"),
    (["lr=-0.5"], "lr=-0.5"),
    (["lr=0"], "lr=0"),
    (["dataset=nope"], "dataset=nope"),
    (["activation=softplus"], "activation=softplus"),
    (["arithmetic=fast"], "arithmetic=fast"),
    (["n_seeds=0"], "n_seeds=0"),
    (["layers=100000-100000"], "GiB"),
    (["iterations=abc"], "iterations=abc: must be a whole number"),
    (["-m", "iterations=10,abc"], "iterations=abc: must be a whole number"),
    (["lr=fast"], "lr=fast: must be a number"),
    (["progress=maybe"], "progress=maybe: must be true or false"),
    (["-m", "layers=8-8,8-x"], "layers=8-x"),
    (["-m", "n_seeds=2,0"], "n_seeds=0"),
    (["-m", "layers=4,100000-100000"], "GiB"),
    # issue 13: grammar, typos, limits (their rules are tested in-process in test_integrity)
    (["layers=["], "layers=["),
    (["layers=8,16"], "add -m"),
    (["+iteration=5"], "did you mean iterations?"),
    (["n_seeds=1000000000"], "GiB"),
    # issue 21: an auto sweep compares cells; one cell listed twice was "a failed cell"
    (["-m", "layers=8,8", "n_seeds=auto", "iterations=50"], "layers=8 and layers=8 are the same"),
    (["-m", "layers=8,[8],16", "n_seeds=auto"], "layers=8 and layers=[8] are the same cell"),
]


def _refused_in_one_line(done: subprocess.CompletedProcess[str], named: str) -> None:
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("nnsweep: error: ") and named in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


@pytest.mark.parametrize(
    ("arguments", "named"),
    BAD_INPUTS_IN_A_PROCESS,
    ids=[" ".join(a) for a, _ in BAD_INPUTS_IN_A_PROCESS],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, arguments: list[str], named: str
) -> None:
    results = tmp_path / "results"
    _refused_in_one_line(run_cli([*arguments, f"results_dir={results}"], timeout=120), named)
    assert not results.exists()


@pytest.mark.parametrize(
    ("arguments", "named"), BAD_INPUTS, ids=[" ".join(a) for a, _ in BAD_INPUTS]
)
def test_bad_input_is_refused_in_one_line_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, arguments: list[str], named: str
) -> None:
    """The same contract, called in this process; the memory limit is this test's 8 GiB, so
    "too big" does not depend on the RAM of the machine that runs it."""
    monkeypatch.setattr(cell, "available_memory_bytes", lambda: 8 * 2**30)
    results = tmp_path / "results"
    _refused_in_one_line(run_cli_here([*arguments, f"results_dir={results}"]), named)
    assert not results.exists()


@pytest.mark.slow
@pytest.mark.parametrize("arithmetic", ["portable", "numpy"])
def test_default_run_matches_all_ten_tutorial_numbers(tmp_path: Path, arithmetic: str) -> None:
    """``python -m nnsweep`` with no overrides is the tutorial's Example 2, 100k iterations,
    and prints the tutorial's trace under either arithmetic."""
    done = run_cli([f"results_dir={tmp_path}", f"arithmetic={arithmetic}"])
    assert done.returncode == 0, done.stderr
    margins = _margins(done.stdout)
    assert len(margins) == 10
    np.testing.assert_allclose(margins, TUTORIAL_TRACE, rtol=1e-12, atol=0)
    output_lines = done.stdout.splitlines()[10:]
    assert output_lines[0].startswith("[[0.99836")  # the tutorial's print(layer_5), first row


# issue 21: a symbolic link loop as an output folder (32-48 lines of traceback) and an
# interpolation that cannot be resolved (93 lines), single runs and sweeps alike.
UNRESOLVABLE = [
    (["results_dir={loop}"], "results_dir={loop}: cannot be resolved (Symlink loop"),
    (["cache_dir={loop}"], "cache_dir={loop}: cannot be resolved (Symlink loop"),
    (["-m", "layers=8,16", "results_dir={loop}/sub"], "results_dir={loop}/sub: cannot be"),
    (["-m", "layers=8,16", "cache_dir={loop}"], "cache_dir={loop}: cannot be resolved"),
    (["hydra.run.dir={loop}"], "hydra.run.dir={loop}: cannot be resolved"),
    (["results_dir=${{nope}}"], "results_dir=${{nope}}: cannot be resolved (Interpolation key"),
    (["-m", "layers=8,16", "results_dir=${{nope}}"], "results_dir=${{nope}}: cannot be"),
    (["-m", "layers=8,16", "lr=${{nope}}"], "lr=${{nope}}: cannot be resolved"),
    (["notes=${{oc.env:NNSWEEP_UNSET_VARIABLE}}"], "Environment variable"),
]


@pytest.mark.parametrize(
    ("arguments", "named"), UNRESOLVABLE, ids=[" ".join(a) for a, _ in UNRESOLVABLE]
)
def test_a_symlink_loop_or_a_bad_interpolation_is_refused_in_one_line(
    tmp_path: Path, arguments: list[str], named: str
) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "other")
    (tmp_path / "other").symlink_to(loop)
    results, cache = tmp_path / "results", tmp_path / "cache"
    given = [a.format(loop=loop) for a in arguments]
    defaults = [f"{key}={path}" for key, path in (("results_dir", results), ("cache_dir", cache))]
    keys = {a.split("=")[0] for a in given}
    done = run_cli_here(
        [*given, "iterations=10", *(d for d in defaults if d.split("=")[0] not in keys)]
    )
    _refused_in_one_line(done, named.format(loop=loop))
    assert not results.exists() and not cache.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["loop", "other"]


@pytest.mark.parametrize(
    ("launcher", "module", "extra"),
    [
        ("ray_cluster", "ray", "ray"),
        ("slurm", "submitit", "slurm"),
        ("submitit_local", "hydra_plugins.hydra_submitit_launcher", "slurm"),
    ],
)
def test_a_launcher_whose_extra_is_missing_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, launcher: str, module: str, extra: str
) -> None:
    """Issue 21: the launchers --help lists failed with Hydra's raw "Could not load" (or a
    ModuleNotFoundError in every job) without naming the extra that installs them."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *rest: None if name == module else real_find_spec(name, *rest),
    )
    results = tmp_path / "results"
    done = run_cli_here(
        ["-m", "layers=4,8", f"hydra/launcher={launcher}", f"results_dir={results}"]
    )
    _refused_in_one_line(done, f"hydra/launcher={launcher}: needs {module}")
    assert f"pip install 'nnsweep[{extra}]'" in done.stderr
    assert not results.exists()


def test_hydras_could_not_load_a_launcher_names_the_extra() -> None:
    from hydra.errors import ConfigCompositionException

    from nnsweep.exits import describe_hydra_error

    error = ConfigCompositionException(
        "In 'hydra/launcher/ray_cluster': Could not load 'hydra/launcher/ray'."
    )
    line = describe_hydra_error(error)
    assert line == (
        "hydra/launcher=ray: not installed; it comes with nnsweep's ray extra: "
        "pip install 'nnsweep[ray]'"
    )
