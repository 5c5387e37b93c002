"""The built wheel, installed into a fresh virtualenv, works from an empty folder.

The wheel is built from a copy of the sources (so the checkout stays clean), installed
without its dependencies into a new venv that borrows this environment's packages through
a ``.pth`` line (fast, and nnsweep itself then comes only from the wheel), and run as a
user would: ``nnsweep`` from a folder that holds nothing but their own experiment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pandas as pd
import pytest
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "results", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.so"
)


def _run(command: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "HYDRA_FULL_ERROR"}}
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """bin/ of a fresh venv holding the wheel built from this checkout."""
    base = tmp_path_factory.mktemp("wheel")
    sources = base / "sources"
    shutil.copytree(PROJECT_ROOT, sources, ignore=NOT_SOURCES)
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), "."], sources)
    (wheel,) = dist.glob("nnsweep-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
    assert "nnsweep/conf/config.yaml" in names
    assert "nnsweep/conf/dataset/tutorial_ex2.yaml" in names
    assert "nnsweep/conf/hydra/help/nnsweep.yaml" in names
    assert "nnsweep/experiments/neurons_early.yaml" in names
    assert "hydra_plugins/nnsweep_plugins/sweeper.py" in names
    assert "Requires-Dist: hydra-core>=1.3.2" in metadata and "<1.4" not in metadata

    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base)
    python = venv / "bin" / "python"
    site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], base)
    borrowed = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    (Path(site.stdout.strip()) / "borrowed.pth").write_text("\n".join(sorted(borrowed)) + "\n")
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        base,
    )
    return venv / "bin"


def test_the_wheel_runs_a_cell_a_sweep_and_help_from_an_empty_folder(
    installed: Path, tmp_path: Path
) -> None:
    where = _run(
        [str(installed / "python"), "-c", "import nnsweep; print(nnsweep.__file__)"], tmp_path
    )
    assert where.stdout.startswith(str(installed.parent)), where.stdout  # not the checkout

    one = _run([str(installed / "nnsweep"), "iterations=201", "log_every=100"], tmp_path)
    assert one.stdout.count("Current error margin:") == 3
    (run_dir,) = (tmp_path / "results" / "run").iterdir()
    assert pd.read_parquet(run_dir / "runs.parquet")["layers"].tolist() == ["8-16-8"]

    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "mine.yaml").write_text(
        "# @package _global_\n"
        "name: mine\n"
        "iterations: 200\n"
        "log_every: 100\n"
        "n_seeds: 2\n"
        "hydra:\n"
        "  mode: MULTIRUN\n"
        "  sweeper:\n"
        "    params:\n"
        "      layers: 3-3,5\n"
    )
    sweep = _run([str(installed / "python"), "-m", "nnsweep", "experiments=mine"], tmp_path)
    assert "2 cell(s), 4 seed(s)" in sweep.stdout
    (sweep_dir,) = (tmp_path / "results" / "mine").iterdir()
    # Where to look next, as the path the user gave (relative to where they ran it).
    assert f"report: {(sweep_dir / 'report.html').relative_to(tmp_path)}" in sweep.stdout
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    assert sorted(set(runs["layers"])) == ["3-3", "5"] and len(runs) == 4
    assert (sweep_dir / "report.md").exists() and (sweep_dir / "summary.csv").exists()

    page = _run([str(installed / "nnsweep"), "--help"], tmp_path).stdout
    assert len(page.splitlines()) <= 60
    assert "which hidden-layer shape trains best" in page
    assert "collect" in page and "report" in page and "-m" in page
    assert "mine" in page and "neurons_early" in page and "tutorial_ex2" in page
    assert "lr=1.0" in page and "ray_cluster" in page
    assert ".venv" not in page and "results/" not in page and "site-packages" not in page
    hydra_help = _run([str(installed / "nnsweep"), "--hydra-help"], tmp_path).stdout
    assert "Hydra" in hydra_help
    job = _run([str(installed / "nnsweep"), "--cfg", "job"], tmp_path).stdout
    assert "layers: 8-16-8" in job


def test_the_wheel_runs_a_trainer_from_the_users_folder(installed: Path, tmp_path: Path) -> None:
    """``trainer=module:function`` imports from the folder the user runs the installed
    ``nnsweep`` script in (not on its sys.path by itself), in the sweep's worker processes."""
    shutil.copy(PROJECT_ROOT / "examples" / "tutorial_loop.py", tmp_path / "my_loop.py")
    done = _run(
        [
            str(installed / "nnsweep"),
            "-m",
            "trainer=builtin,my_loop:train",
            "iterations=200",
            "log_every=100",
            "n_seeds=5",
            "progress=false",
        ],
        tmp_path,
    )
    assert "Traceback" not in done.stderr
    (sweep_dir,) = (tmp_path / "results" / "sweep").iterdir()
    runs = pd.read_parquet(sweep_dir / "runs.parquet")
    assert sorted(set(runs["trainer"])) == ["builtin", "my_loop:train"]
    assert (runs["status"] == "ok").all() and len(runs) == 10
