"""Provenance a report relies on: CPU, dirty tree, and where cached seeds were computed."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import PROJECT_ROOT

from nnsweep import schema, store
from nnsweep.config import to_run_config
from nnsweep.store import jobs
from nnsweep.sweep.job import run_cell


def test_provenance_names_the_cpu_and_the_tree_state() -> None:
    details = store.provenance()
    assert details["cpu"]["model"]
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
    assert details["cpu"]["simd"] == [flag for flag in store.SIMD_FLAGS if flag in flags]
    # The tree state is what git itself says about the checkout, results/ left out.
    status = subprocess.run(
        [
            "git",
            "-C",
            str(PROJECT_ROOT),
            "status",
            "--porcelain",
            "--untracked-files=no",
            "--",
            ".",
            ":(exclude)results",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if status.returncode != 0:  # not a git checkout (an unpacked sdist): git cannot tell
        assert details["git_dirty"] is None and details["git_dirty_files"] == []
    else:
        changed = [line[3:] for line in status.stdout.splitlines() if line.strip()]
        assert details["git_dirty"] is bool(changed)
        assert details["git_dirty_files"] == changed[:20]


def test_a_dirty_tree_names_its_changed_files_but_not_results(tmp_path: Path) -> None:
    def git(*arguments: str) -> None:
        subprocess.run(["git", "-C", str(tmp_path), *arguments], check=True, capture_output=True)

    assert jobs._git_dirty_files(tmp_path) is None  # not a repository: git cannot tell
    git("init", "-q")
    (tmp_path / "results").mkdir()
    for name in ("code.py", "results/table.csv"):
        (tmp_path / name).write_text("before\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    assert jobs._git_dirty_files(tmp_path) == []
    (tmp_path / "results" / "table.csv").write_text("after\n")
    (tmp_path / "new.py").write_text("untracked\n")
    assert jobs._git_dirty_files(tmp_path) == []
    (tmp_path / "code.py").write_text("after\n")
    assert jobs._git_dirty_files(tmp_path) == ["code.py"]


def test_cached_seeds_keep_where_and_when_they_were_computed(
    compose_config, tmp_path: Path
) -> None:
    run = to_run_config(
        compose_config(f"cache_dir={tmp_path / 'cache'}", "layers=4", "n_seeds=2", "iterations=50")
    )
    run_cell(run, tmp_path / "first")
    first = json.loads((tmp_path / "first" / schema.PROVENANCE).read_text())
    assert first["trained_seeds"] == [1, 2]
    [origin] = first["seed_origins"]
    assert origin["seeds"] == [1, 2]
    assert origin["host"] == first["host"] and origin["kernel"] == first["kernel"]
    assert origin["time_utc"] and origin["cpu"] == first["cpu"]

    run_cell(run, tmp_path / "again")  # every seed from the cache now
    again = json.loads((tmp_path / "again" / schema.PROVENANCE).read_text())
    assert again["trained_seeds"] == [] and again["kernel"] is None
    assert again["seed_origins"] == first["seed_origins"]


def test_an_installed_nnsweep_inside_a_users_repository_names_no_commit_as_its_own(
    tmp_path: Path, monkeypatch
) -> None:
    """Issue 21: site-packages in a project's .venv lies inside the project's repository;
    its commit was recorded as nnsweep's and its tree called clean."""
    import nnsweep

    def git(*arguments: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(tmp_path), *arguments], check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    git("init", "-q")
    (tmp_path / "analysis.py").write_text("the user's code\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "the user's work")
    package = tmp_path / ".venv" / "lib" / "site-packages" / "nnsweep"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("# an installed copy\n")
    monkeypatch.setattr(nnsweep, "__file__", str(package / "__init__.py"))
    monkeypatch.chdir(tmp_path)

    details = store.provenance()

    assert details["git_commit"] is None and details["git_dirty"] is None
    assert details["nnsweep_source"] == "installed"
    assert len(details["nnsweep_source_sha256"]) == 64
    assert details["project_git_commit"] == git("rev-parse", "HEAD")
    assert details["project_git_dirty"] is False
    assert Path(details["project_dir"]).resolve() == tmp_path.resolve()


def test_nnsweeps_own_checkout_is_named_and_not_as_a_project() -> None:
    details = store.provenance()  # the tests run from nnsweep's checkout
    if details["nnsweep_source"] == "installed":  # an unpacked sdist: git cannot tell
        return
    head = subprocess.run(
        ["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    assert details["git_commit"] == head.stdout.strip()
    assert "project_git_commit" not in details
