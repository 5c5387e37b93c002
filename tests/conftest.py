"""Shared fixtures: composed configs (Hydra's compose API), the CLI in this process or in a
subprocess, and synthetic runs tables."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Sequence
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, open_dict

from nnsweep.config import register_configs
from nnsweep.locations import CONF_DIR

PROJECT_ROOT = CONF_DIR.parent

# The tutorial's Example 2 data (In [6]).
EX2_INPUTS = np.array(
    [
        [0, 0, 0, 0],
        [0, 0, 0, 1],
        [0, 0, 1, 0],
        [0, 0, 1, 1],
        [0, 1, 0, 0],
        [0, 1, 0, 1],
        [0, 1, 1, 0],
        [0, 1, 1, 1],
    ]
)
EX2_TARGETS = np.array([[1, 0], [1, 1], [1, 1], [1, 0], [1, 1], [0, 1], [0, 0], [1, 1]])

# What the tutorial printed for Example 2, 4-8-16-8-2, seed 1, every 10,000 iterations.
TUTORIAL_TRACE = [
    0.44711071583178513,
    0.004957724608214143,
    0.003368736657040206,
    0.002699241313895848,
    0.0023102055028723827,
    0.00204909238051682,
    0.0018586619092116137,
    0.00171203849427689,
    0.001594739285055455,
    0.0014981884017274266,
]


@pytest.fixture
def compose_config(tmp_path: Path) -> Callable[..., DictConfig]:
    """Compose conf/config.yaml with overrides, output pointed at ``tmp_path``."""

    register_configs()  # what the nnsweep app does at start

    def _compose(*overrides: str) -> DictConfig:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(
                "config",
                overrides=[f"results_dir={tmp_path}", *overrides],
                return_hydra_config=False,
            )
        with open_dict(cfg):
            cfg.pop("hydra", None)
        return cfg

    return _compose


def run_cli(
    arguments: Sequence[str],
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600,
) -> subprocess.CompletedProcess[str]:
    """``python -m nnsweep ARGUMENTS`` as a user runs it; output captured as text."""
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("HYDRA_FULL_ERROR", None)
    return subprocess.run(
        [sys.executable, "-m", "nnsweep", *arguments],
        cwd=cwd or PROJECT_ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_cli_here(
    arguments: Sequence[str], cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m nnsweep ARGUMENTS`` called in this process, without starting Python,
    Hydra and pandas again: for what a command prints and returns. ``run_cli`` stays for
    what only a real process shows (start-up, signals, workers, environment)."""
    from hydra.core.global_hydra import GlobalHydra

    from nnsweep import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGHUP)}
    argv, here = sys.argv[:], Path.cwd()
    sys.argv = ["nnsweep", *arguments]
    os.chdir(cwd or PROJECT_ROOT)
    status: Any = 0
    try:
        with redirect_stdout(stdout), redirect_stderr(stderr):
            cli.main()
    except SystemExit as exited:
        status = exited.code
    finally:
        sys.argv = argv
        os.chdir(here)
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        GlobalHydra.instance().clear()
    returncode = status if isinstance(status, int) else 0 if status is None else 1
    return subprocess.CompletedProcess(
        ["nnsweep", *arguments], returncode, stdout.getvalue(), stderr.getvalue()
    )


def cell_settings(**changes: Any) -> dict[str, Any]:
    """The settings columns of one synthetic runs.parquet row: a small sigmoid cell."""
    settings = {
        "dataset": "synthetic",
        "layers": "8-8",
        "activation": "sigmoid",
        "output_activation": "sigmoid",
        "init": "tutorial",
        "bias": False,
        "lr": 1.0,
        "iterations": 1000,
        "log_every": 100,
        "error_threshold": 0.01,
        "arithmetic": "portable",
        "trainer": "builtin",
        "trainer_args": "{}",
        "seed_stream": "shared",
    }
    return {**settings, **changes}


# A healthy seed's value of every per-seed column (schema.SEED_COLUMNS), for synthetic tables;
# test_record checks that it names every column, so a new column cannot be forgotten here.
SEED_DEFAULTS: dict[str, Any] = {
    "status": "ok",
    "reason": "",
    "final_error": 0.01,
    "holdout_error": np.nan,
    "diverged": False,
    "solved": True,
    "accuracy": 1.0,
    "holdout_accuracy": np.nan,
    "end_change": 0.0,
    "unstable": False,
    "n_weights": 100,
    "solvable": True,
    "max_abs_error": 0.1,
    "iterations_reached": 1000,
    "first_below_threshold": -1,
    "wall_seconds": 0.0,
}


def make_runs(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A runs table as a sweep stores it, from partial rows: each row's cell settings
    (``cell_settings`` with the row's changes), ``job`` and ``seed``, then every per-seed
    column of ``schema.SEED_COLUMNS`` in order, a healthy seed's value unless the row gives
    one; then any other column the row gives. A non-finite ``final_error`` without a
    ``status`` makes a diverged seed (status, ``diverged`` and ``solved`` follow)."""
    from nnsweep import schema

    table = []
    for values in rows:
        values = dict(values)
        if not np.isfinite(values.get("final_error", 0.0)) and "status" not in values:
            values.update(status="diverged", diverged=True, solved=False)
        settings = cell_settings(**{k: v for k, v in values.items() if k in schema.CELL_COLUMNS})
        seed_values = {
            c.name: values.get(c.name, SEED_DEFAULTS[c.name]) for c in schema.SEED_COLUMNS
        }
        known = {*settings, *seed_values}
        others = {k: v for k, v in values.items() if k not in known}
        ids = {"job": others.pop("job", 0), "seed": others.pop("seed", 1)}
        table.append({**settings, **ids, **seed_values, **others})
    return pd.DataFrame(table)


def ctrl_c_reaches_it() -> None:
    """``preexec_fn`` for a child that a test sends SIGINT: undo an inherited SIG_IGN.

    A shell starts a background command (``make test &`` in a script) with SIGINT ignored,
    and Python then installs no KeyboardInterrupt handler, so Ctrl-C tests would wait for a
    child that never hears them. A user's own ignored Ctrl-C stays ignored, as it should.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Tests whose promises are timed (a signal answered within seconds) and the stress test that
# loads every core: one xdist worker runs them all, so the load never meets the timing.
LOAD_SENSITIVE = pytest.mark.xdist_group("load_sensitive")


def only_dir(parent: Path) -> Path:
    """The single sub-directory of ``parent`` (a sweep's or a run's timestamp folder)."""
    children = [p for p in parent.iterdir() if p.is_dir()]
    assert len(children) == 1, children
    return children[0]


# Who may do the portable arithmetic: the numpy implementation, and each native kernel path.
PORTABLE_PATHS = ("numpy", "scalar", "avx2", "avx512")


@pytest.fixture(params=PORTABLE_PATHS)
def portable_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test once per path of the portable arithmetic (``NNSWEEP_KERNEL`` forces it).

    A kernel path is skipped where this build or CPU lacks it (``native.available_paths``);
    every path must give the numpy implementation's bits.
    """
    from nnsweep.train import native

    if request.param != "numpy":
        available = getattr(native, "available_paths", tuple)()
        if request.param not in available:
            pytest.skip(f"the native kernel's {request.param} path is not available here")
    monkeypatch.setenv("NNSWEEP_KERNEL", request.param)
    return request.param
