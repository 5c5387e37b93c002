"""Every way of installing nnsweep finds its experiments from any folder (issue 21, MEDIUM 13).

setuptools' default editable install maps the ``hydra_plugins.nnsweep_plugins`` package by
name only, and Hydra finds plugins by listing folders: run anywhere but the checkout, the
experiments group and the sweeper were missing (``experiments: unknown setting``). Each
mode is installed from a copy of the sources into a fresh venv that borrows this one's
dependencies (as test_wheel.py does, which covers the built wheel), then run from an empty
folder holding only the user's own experiment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import PROJECT_ROOT

pytestmark = pytest.mark.slow

NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", "results", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.so"
)

MODES = {
    "pip-install": [],
    "editable-default": ["-e"],
    "editable-strict": ["--config-settings", "editable_mode=strict", "-e"],
    "editable-compat": ["--config-settings", "editable_mode=compat", "-e"],
}


def _run(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "HYDRA_FULL_ERROR"}}
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900, check=False
    )
    assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-3000:])
    return done


@pytest.mark.parametrize("mode", list(MODES))
def test_every_install_mode_finds_shipped_and_local_experiments(mode: str, tmp_path: Path) -> None:
    sources = tmp_path / "sources"
    shutil.copytree(PROJECT_ROOT, sources, ignore=NOT_SOURCES)
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path)
    python = venv / "bin" / "python"
    site = _run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path
    )
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
            *MODES[mode],
            str(sources),
        ],
        tmp_path,
    )

    user = tmp_path / "user"  # a folder outside the checkout, with the user's own experiment
    (user / "experiments").mkdir(parents=True)
    (user / "experiments" / "mine.yaml").write_text(
        "# @package _global_\nname: mine\niterations: 200\nhydra:\n  mode: MULTIRUN\n"
        "  sweeper:\n    params:\n      layers: 3-3,5\n"
    )
    where = _run([str(python), "-c", "import nnsweep; print(nnsweep.__file__)"], user)
    assert not where.stdout.startswith(str(PROJECT_ROOT)), where.stdout  # not this checkout
    for experiment in ("neurons_early", "mine"):  # shipped, then ./experiments
        job = _run(
            [str(python), "-m", "nnsweep", f"experiments={experiment}", "--cfg", "job"], user
        )
        assert f"name: {experiment}\n" in job.stdout, (mode, job.stdout[-500:])
    hydra = _run([str(python), "-m", "nnsweep", "experiments=mine", "--cfg", "hydra"], user)
    assert "nnsweep_plugins.sweeper.NNSweepSweeper" in hydra.stdout  # validating sweeper
