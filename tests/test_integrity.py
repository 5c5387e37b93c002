"""Nothing lost, nothing mixed, nothing stale (issue 13): folders, damaged files, CSV holes,
environment variables. Rules are tested in-process; a few real CLI runs check what users see.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import PROJECT_ROOT, only_dir, run_cli, run_cli_here

from nnsweep import schema, store
from nnsweep.config import ConfigError, to_run_config
from nnsweep.errors import SweepFolderError
from nnsweep.sweep import job as run
from nnsweep.sweep import ownership
from nnsweep.sweep.cell import load_cell
from nnsweep.train import data, native
from nnsweep.train.data import load_dataset

FAST = ("layers=4-4", "n_seeds=3", "iterations=60", "log_every=20")


@pytest.fixture
def cell(compose_config, tmp_path: Path):
    """A small validated cell whose cache lives in ``tmp_path``."""

    def make(*overrides: str):
        return to_run_config(compose_config(*FAST, *overrides))

    return make


def _job(sweep_dir: Path, job: int, run_config, run_id: str | None) -> Path:
    job_dir = sweep_dir / str(job)
    run.run_cell(run_config, job_dir, job=job, run_id=run_id)
    return job_dir


def _owned_sweep(tmp_path: Path) -> tuple[Path, str]:
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    (sweep_dir / schema.MULTIRUN).write_text("{}\n")
    run_id = "owner-run"
    store.write_json(sweep_dir / schema.OWNER, {"run_id": run_id})
    return sweep_dir, run_id


# --------------------------------------------------------------------------------------
# 1. A run owns its folder
# --------------------------------------------------------------------------------------


def test_folder_names_are_unique_within_one_second() -> None:
    names = {ownership.stamp() for _ in range(50)}
    assert len(names) == 50
    assert "${nnsweep_stamp:}" in (PROJECT_ROOT / "conf" / "config.yaml").read_text()


def test_a_second_run_into_an_owned_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    folder = tmp_path / "shared"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(f"""
            import sys, time
            from nnsweep.sweep import ownership
            ownership.claim({str(folder)!r})
            print("claimed", flush=True)
            time.sleep(60)
        """),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "claimed"
        with pytest.raises(SweepFolderError, match=r"in use by another nnsweep run \(pid \d+"):
            ownership.claim(folder)
    finally:
        holder.kill()
        holder.wait()
    assert ownership.claim(folder)  # the lock dies with its process, even after kill -9


# --------------------------------------------------------------------------------------
# 2. Only the owning run's jobs, and a job's newest outcome
# --------------------------------------------------------------------------------------


def test_gather_takes_only_the_owning_runs_jobs_and_names_the_others(cell, tmp_path: Path) -> None:
    sweep_dir, owner = _owned_sweep(tmp_path)
    _job(sweep_dir, 0, cell(), owner)
    _job(sweep_dir, 1, cell("layers=8"), "an-earlier-run")
    gathered = store.gather(sweep_dir)
    assert gathered.runs["job"].unique().tolist() == [0]
    assert gathered.curves["job"].unique().tolist() == [0]
    assert len(gathered.notices) == 1 and "ignored job folder(s) 1" in gathered.notices[0]


def test_a_newer_failure_is_not_hidden_by_older_results(cell, tmp_path: Path) -> None:
    sweep_dir, owner = _owned_sweep(tmp_path)
    job_dir = _job(sweep_dir, 0, cell(), owner)
    store.write_json(job_dir / schema.FAILURE, {"reason": "ValueError: new", "run_id": owner})
    runs = store.gather(sweep_dir).runs
    assert runs["status"].tolist() == ["failed"] and runs["reason"].tolist() == ["ValueError: new"]


def test_a_job_clears_an_earlier_outcome_of_its_folder(cell, tmp_path: Path) -> None:
    job_dir = tmp_path / "0"
    store.write_json(job_dir / schema.FAILURE, {"reason": "old"})
    run.run_cell(cell(), job_dir)
    assert not (job_dir / schema.FAILURE).exists() and (job_dir / schema.RUNS).exists()


def test_claiming_a_sweep_folder_again_removes_the_earlier_runs_tables(tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    (sweep_dir / "0").mkdir(parents=True)
    for name in (schema.RUNS, schema.CURVES, schema.SUMMARY):
        (sweep_dir / name).write_text("an earlier run's table")
    (sweep_dir / "0" / schema.RUNS).write_text("a job's own file")
    first = ownership.owner(sweep_dir).get("run_id")
    run_id = ownership.claim(sweep_dir)
    assert run_id != first and ownership.owner(sweep_dir)["run_id"] == run_id
    assert not any((sweep_dir / name).exists() for name in (schema.RUNS, schema.CURVES))
    assert (sweep_dir / "0" / schema.RUNS).exists()  # gathering decides about job folders


# --------------------------------------------------------------------------------------
# 3. collect and report take only sweep folders
# --------------------------------------------------------------------------------------


def test_a_job_folder_or_an_unrelated_folder_is_not_a_sweep_folder(cell, tmp_path: Path) -> None:
    sweep_dir, owner = _owned_sweep(tmp_path)
    job_dir = _job(sweep_dir, 0, cell(), owner)
    with pytest.raises(SweepFolderError, match="one job's"):
        store.collect(job_dir)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SweepFolderError, match="not a sweep folder"):
        store.collect(tmp_path / "empty")
    with pytest.raises(SweepFolderError, match="no such folder"):
        store.collect(tmp_path / "missing")
    assert not (tmp_path / "empty" / schema.RUNS).exists()
    store.check_sweep_dir(sweep_dir)
    # report on an unrelated folder must not send the user to collect, which refuses it too
    with pytest.raises(SweepFolderError, match="not a sweep folder"):
        store.check_sweep_dir(tmp_path / "empty", tables_only=True)
    with pytest.raises(SweepFolderError, match="run `python -m nnsweep collect"):
        store.check_sweep_dir(sweep_dir, tables_only=True)


def test_collect_on_a_job_folder_is_refused_and_leaves_its_files(cell, tmp_path: Path) -> None:
    sweep_dir, owner = _owned_sweep(tmp_path)
    job_dir = _job(sweep_dir, 0, cell(), owner)
    before = {p.name: p.read_bytes() for p in job_dir.iterdir()}
    for command in ("collect", "report"):
        done = run_cli_here([command, str(job_dir)])
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        refused = f"nnsweep: error: {command} needs one sweep folder: {job_dir}: is one job's"
        assert len(lines) == 1 and lines[0].startswith(refused), lines
    assert {p.name: p.read_bytes() for p in job_dir.iterdir()} == before


# --------------------------------------------------------------------------------------
# 4. A (cell, seed) pair is one sample
# --------------------------------------------------------------------------------------


def test_duplicate_cell_seeds_count_once(cell, tmp_path: Path) -> None:
    sweep_dir, owner = _owned_sweep(tmp_path)
    _job(sweep_dir, 0, cell("n_seeds=3"), owner)
    _job(sweep_dir, 1, cell("layers=8"), owner)
    _job(sweep_dir, 2, cell("n_seeds=5"), owner)  # seeds 1-3 again, and 4-5
    gathered = store.gather(sweep_dir)
    runs = gathered.runs
    four = runs[runs["layers"] == "4-4"]
    assert sorted(four["seed"]) == [1, 2, 3, 4, 5]
    assert not gathered.curves.duplicated(["layers", "seed", "iteration"]).any()
    assert store.summarise(runs)["n_seeds"].tolist() == [5, 3]
    assert len(gathered.notices) == 1 and "3 duplicate (cell, seed)" in gathered.notices[0]


# --------------------------------------------------------------------------------------
# 5. Damaged or foreign cache entries are trained again, with a notice
# --------------------------------------------------------------------------------------


def _entry_paths(run_config) -> dict[int, Path]:
    dataset = load_dataset(run_config.dataset)
    return {
        seed: store.cache_path(
            Path(run_config.cache_dir),
            store.cache_key(run.seed_cache_fields(run_config, dataset, seed)),
        )
        for seed in run_config.seeds
    }


def _truncate(path: Path, _seed_3: Path) -> None:
    path.write_bytes(path.read_bytes()[:200])


def _swap_with_seed_3(path: Path, seed_3: Path) -> None:
    path.write_bytes(seed_3.read_bytes())


def _edit_a_number(path: Path, _seed_3: Path) -> None:
    entry = store.read_npz(path)
    entry["final_error"] = np.float64(0.5)
    store.write_npz(path, entry)


def _make_a_folder(path: Path, _seed_3: Path) -> None:
    path.unlink()  # issue 21: a folder in an entry's place failed its cell at every run
    path.mkdir()
    (path / "something").write_text("not a cache entry\n")


@pytest.mark.parametrize(
    ("damage", "notice"),
    [
        (_truncate, "is unreadable"),
        (_swap_with_seed_3, "belongs to another key or seed"),
        (_edit_a_number, "does not match its checksum"),
        (_make_a_folder, "is unreadable (IsADirectoryError)"),
    ],
)
def test_a_damaged_cache_entry_is_retrained_with_a_notice(
    cell, tmp_path: Path, capsys, damage, notice
) -> None:
    run_config = cell()
    first = run.run_cell(run_config, tmp_path / "a")
    paths = _entry_paths(run_config)
    damage(paths[1], paths[3])
    capsys.readouterr()
    again = run.run_cell(run_config, tmp_path / "b")
    err = capsys.readouterr().err.strip().splitlines()
    assert again.n_trained == 1
    assert len(err) == 1 and str(paths[1]) in err[0] and notice in err[0], err
    pd.testing.assert_frame_equal(
        first.runs.drop(columns=["wall_seconds"]), again.runs.drop(columns=["wall_seconds"])
    )
    assert run.run_cell(run_config, tmp_path / "c").n_trained == 0  # the entry was rewritten


def _rewrite_entry(path: Path, keep) -> None:
    """Rewrite a cache entry with only the arrays ``keep(name)`` accepts, checksum updated
    (so the entry is damaged by what it lacks, not by its checksum)."""
    entry = store.read_npz(path)
    arrays = {k: v for k, v in entry.items() if not k.startswith("entry_") and keep(k)}
    store.store_cached(path.parent.parent, str(entry[store.ENTRY_KEY]), 1, arrays)


def test_an_entry_holding_just_the_declared_arrays_is_enough(cell, tmp_path: Path, capsys) -> None:
    """Every array the job reads is among the declared ones: an entry stripped to them
    (its origin note gone too) is used as it is, without a KeyError and without training."""
    run_config = cell("bias=true")
    first = run.run_cell(run_config, tmp_path / "a")
    required = set(run.entry_arrays(run_config))
    _rewrite_entry(_entry_paths(run_config)[1], lambda name: name in required)
    again = run.run_cell(run_config, tmp_path / "b")
    assert again.n_trained == 0
    assert capsys.readouterr().err.count("cache entry") == 0
    pd.testing.assert_frame_equal(first.runs, again.runs)


@pytest.mark.parametrize(
    "missing", ["final_error", "curve", "log_iterations", "last_pass_output", "weight_1", "bias_0"]
)
def test_an_entry_lacking_a_declared_array_is_retrained_with_a_notice(
    cell, tmp_path: Path, capsys, missing: str
) -> None:
    run_config = cell("bias=true")
    assert missing in run.entry_arrays(run_config)
    first = run.run_cell(run_config, tmp_path / "a")
    path = _entry_paths(run_config)[1]
    _rewrite_entry(path, lambda name: name != missing)
    capsys.readouterr()
    again = run.run_cell(run_config, tmp_path / "b")
    err = capsys.readouterr().err.strip().splitlines()
    assert again.n_trained == 1
    assert len(err) == 1 and str(path) in err[0] and f"lacks {missing}" in err[0], err
    pd.testing.assert_frame_equal(
        first.runs.drop(columns=["wall_seconds"]), again.runs.drop(columns=["wall_seconds"])
    )


# --------------------------------------------------------------------------------------
# 6. Job files are checked against the checksums recorded when they were written
# --------------------------------------------------------------------------------------


def _flip_a_bit(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name", [schema.RUNS, schema.CURVES, schema.WEIGHTS, schema.PROVENANCE])
def test_a_damaged_job_file_becomes_a_failed_row_naming_it(cell, tmp_path: Path, name: str) -> None:
    sweep_dir, owner = _owned_sweep(tmp_path)
    _job(sweep_dir, 0, cell(), owner)
    _job(sweep_dir, 1, cell("layers=8"), owner)
    target = sweep_dir / "1" / name
    if name == schema.PROVENANCE:
        target.write_text('{"run_id": "owner-ru')  # garbled JSON
    else:
        _flip_a_bit(target)
    gathered = store.gather(sweep_dir)
    failed = gathered.runs[gathered.runs["status"] == "failed"]
    assert failed["job"].tolist() == [1] and str(target) in failed["reason"].iloc[0]
    assert (gathered.runs[gathered.runs["job"] == 0]["status"] == "ok").all()
    assert len(gathered.notices) == 1 and "rerun the sweep's command" in gathered.notices[0]


def test_a_garbled_failure_file_is_a_failed_row_not_a_traceback(tmp_path: Path) -> None:
    sweep_dir, _owner = _owned_sweep(tmp_path)
    (sweep_dir / "0").mkdir()
    (sweep_dir / "0" / schema.FAILURE).write_bytes(b"\xff\xfe not json")
    runs = store.gather(sweep_dir).runs
    assert runs["status"].tolist() == ["failed"] and "failure.json" in runs["reason"].iloc[0]


# --------------------------------------------------------------------------------------
# 7. The cache key holds the arithmetic's identity
# --------------------------------------------------------------------------------------


def test_the_cache_key_changes_with_numpy_blas_and_kernel(
    cell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under arithmetic=numpy the bits depend on the host: its stack is in the key."""
    run_config = cell("layers=8-8", "arithmetic=numpy")
    dataset = load_dataset(run_config.dataset)

    def key() -> str:
        return store.cache_key(run.seed_cache_fields(run_config, dataset, 1))

    identity = run.seed_cache_fields(run_config, dataset, 1)["arithmetic_identity"]
    assert identity["numpy"] == np.__version__ and identity["blas"]
    here = key()
    stack = run._floating_point_stack()
    for field, other in (("numpy", "0.0"), ("blas", ["openblas 0.0 Haswell"])):
        monkeypatch.setattr(run, "_floating_point_stack", lambda f=field, o=other: {**stack, f: o})
        assert key() != here, field
    monkeypatch.setattr(run, "_floating_point_stack", lambda: stack)
    assert key() == here


def test_a_portable_cache_key_holds_no_host_and_no_kernel_path(
    cell, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same bits on every machine and path: one key, shared by all of them."""
    run_config = cell("layers=8-8")
    assert run_config.train.arithmetic == "portable"
    dataset = load_dataset(run_config.dataset)

    def key() -> str:
        return store.cache_key(run.seed_cache_fields(run_config, dataset, 1))

    fields = run.seed_cache_fields(run_config, dataset, 1)
    assert fields["arithmetic_identity"] == {"arithmetic": "portable", "version": 1}
    assert fields["arithmetic"] == "portable"
    here = key()
    monkeypatch.setattr(run, "_floating_point_stack", lambda: {"numpy": "0.0", "blas": []})
    monkeypatch.setattr(run.platform, "node", lambda: "another-host")
    for path in ("numpy", "auto", *native.available_paths()):
        monkeypatch.setenv("NNSWEEP_KERNEL", path)
        assert key() == here, path
    host = dataclasses.replace(run_config.train, arithmetic="numpy")
    assert (
        store.cache_key(
            run.seed_cache_fields(dataclasses.replace(run_config, train=host), dataset, 1)
        )
        != here
    )


# --------------------------------------------------------------------------------------
# 10. A lost worker or a full disk fails its cell, not the sweep
# --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variable", "reason"),
    [
        ("NNSWEEP_TEST_KILL_LAYERS", "TerminatedWorkerError"),
        ("NNSWEEP_TEST_ENOSPC_LAYERS", "No space left on device"),
    ],
)
def test_a_lost_worker_or_a_full_disk_fails_only_its_cell(
    tmp_path: Path, variable: str, reason: str
) -> None:
    faults = str(Path(__file__).parent / "fault_injection")
    env = {"PYTHONPATH": os.pathsep.join([faults, os.environ.get("PYTHONPATH", "")])}
    results = tmp_path / "results"
    done = run_cli(
        [
            "-m",
            "layers=4-4,8,2-2",
            "n_seeds=2",
            "iterations=200",
            "log_every=100",
            "hydra.launcher.n_jobs=2",
            f"results_dir={results}",
        ],
        env={**env, variable: "2-2"},
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("nnsweep: error")]
    assert len(said) == 1 and said[0].startswith("nnsweep: error: 1 cell(s) failed"), said
    assert reason in said[0]
    runs = pd.read_parquet(only_dir(results / "sweep") / schema.RUNS)
    assert runs[runs["status"] == "failed"]["layers"].tolist() == ["2-2"]
    assert len(runs) == 5 and (runs[runs["layers"] != "2-2"]["status"] == "ok").all()


@pytest.mark.slow
def test_a_lost_worker_does_not_fail_a_cell_that_was_running_beside_it(tmp_path: Path) -> None:
    """Issue 21 MEDIUM 2: joblib's pool breaks when one worker is killed, and every cell
    still running failed with it. Here layers=4-4 is held unfinished until the worker
    training layers=8 is killed; it must end with all its seeds, and layers=8 alone fail."""
    faults = str(Path(__file__).parent / "fault_injection")
    env = {
        "PYTHONPATH": os.pathsep.join([faults, os.environ.get("PYTHONPATH", "")]),
        "NNSWEEP_TEST_KILL_LAYERS": "8",
        "NNSWEEP_TEST_HOLD_LAYERS": "4-4",
        "NNSWEEP_TEST_KILLED_MARKER": str(tmp_path / "killed"),
    }
    results = tmp_path / "results"
    done = run_cli(
        [
            "-m",
            "layers=4-4,8",
            "n_seeds=2",
            "iterations=200",
            "log_every=100",
            "hydra.launcher.n_jobs=2",
            "progress=false",
            f"results_dir={results}",
        ],
        env=env,
    )
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    said = [line for line in done.stderr.splitlines() if line.startswith("nnsweep")]
    assert said[0].startswith("nnsweep: a worker was lost (TerminatedWorkerError"), said
    assert said[-1].startswith("nnsweep: error: 1 cell(s) failed; first: job 1 (layers=8)")
    runs = pd.read_parquet(only_dir(results / "sweep") / schema.RUNS)
    assert runs[runs["status"] == "failed"]["layers"].tolist() == ["8"]
    held = runs[runs["layers"] == "4-4"]
    assert len(held) == 2 and (held["status"] == "ok").all()


# --------------------------------------------------------------------------------------
# 11. Malformed experiments files and override grammar: one line, exit 2
# --------------------------------------------------------------------------------------

EXPERIMENT_FILES = [
    (b"name: x\n  bad: [\n", "line 2: not valid YAML"),
    (b"name: x\nname: y\n", "not valid YAML (found duplicate key name)"),
    (b"name: x\n\tlayers: 8\n", "not valid YAML (found character '\\t'"),
    (b"name: \xff\xfe\n", "experiments=bad: a config file is not UTF-8 text"),
    (b"", "experiments/bad: the file is empty or not a mapping of settings"),
    (b"- a\n- b\n", "experiments/bad: the file is empty or not a mapping of settings"),
    (b"# @package _global_\niteration: 5\n", "unknown setting iteration; did you mean iterations?"),
]


def _preflight_error(capsys, arguments: list[str]) -> str:
    from nnsweep.sweep.task import preflight

    with pytest.raises(SystemExit) as exited:
        preflight(arguments)
    assert exited.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nnsweep: error: "), lines
    return lines[0]


@pytest.mark.parametrize(("content", "expected"), EXPERIMENT_FILES)
def test_a_malformed_experiments_file_is_one_line(
    tmp_path: Path, capsys, content: bytes, expected: str
) -> None:
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "bad.yaml").write_bytes(content)
    search = f"hydra.searchpath=[file://{tmp_path}]"
    for arguments in ([search, "experiments=bad"], ["-m", search, "experiments=bad"]):
        assert expected in _preflight_error(capsys, arguments)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["layers=8,16"], "layers=8,16: a list of values is a sweep; add -m"),
        # The -m hint is given only for values that -m accepts: it once suggested -m layers=8,x
        (["layers=8,x"], "layers=x: hidden layer sizes must be positive integers"),
        (["lr=1,fast"], "lr=fast: must be a number"),
        (["dataset=moons,nope"], "dataset=nope: unknown dataset"),
        (["layers=["], "layers=[: not a valid override"),
        (["-m", "layers=[8"], "layers=[8: not a valid override"),
        (["notes=é"], "notes=é: not a valid override"),
        (["layer=8-8"], "layer: unknown setting; did you mean layers?"),
        (["dataset.nois=0.1"], "dataset.nois: unknown setting; did you mean dataset.noise?"),
    ],
)
def test_override_grammar_errors_are_one_line(capsys, arguments, expected) -> None:
    assert expected in _preflight_error(capsys, arguments)


# --------------------------------------------------------------------------------------
# 12, 13. Unknown keys, limits before allocation, paths before training
# --------------------------------------------------------------------------------------

RULES = [
    (["+iteration=5"], "iteration: unknown setting; did you mean iterations?"),
    (["+dataset.nois=0.1"], "dataset.nois: unknown setting; did you mean dataset.noise?"),
    (["n_seeds=1000000000"], "1000000000 stacked network(s) would need about"),
    (["iterations=100000000000000000000"], "iterations=100000000000000000000: must be <="),
    (["iterations=100000000", "log_every=1"], "log_every=1: records 100,000,000 points"),
    (["dataset=moons", "dataset.data_seed=4294967296"], "dataset.data_seed=4294967296"),
    (["dataset=moons", "dataset.n_samples=10000000000"], "dataset.n_samples=10000000000"),
    (["results_dir=''"], "results_dir='': give a folder"),
    (["results_dir=/"], "results_dir=/: is the filesystem root"),
    (["name=../../etc"], "name=../../etc: must be a plain folder name"),
    (["cache_dir=/dev/null"], "cache_dir=/dev/null: /dev/null is not a folder"),
    (["cache_dir=/dev/null/cache"], "cache_dir=/dev/null/cache: /dev/null is not a folder"),
]


@pytest.mark.parametrize(("overrides", "expected"), RULES, ids=[" ".join(o) for o, _ in RULES])
def test_values_past_validation_are_refused_before_anything_runs(
    compose_config, overrides: list[str], expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_cell(compose_config(*overrides))
    assert expected in str(caught.value) and "\n" not in str(caught.value)


def test_negative_zero_noise_is_zero(compose_config) -> None:
    run_config = to_run_config(
        compose_config("dataset=moons", "dataset.noise=-0.0", "dataset.n_samples=20")
    )
    assert "noise=0.0" in run_config.dataset.label


def test_a_read_only_results_folder_is_refused(
    compose_config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_only = tmp_path / "ro"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: Path(path) != read_only and real_access(path, mode)
    )
    with pytest.raises(
        ConfigError, match=f"results_dir={read_only}/r: {read_only} is not writable"
    ):
        to_run_config(compose_config(f"results_dir={read_only}/r"))


# --------------------------------------------------------------------------------------
# 14. CSV holes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("x1,x2,y\n0,1_0,0\n", "column 'x2', row 1: '1_0' is not a number"),
        ("x1,x1,y\n0,1,0\n", "column name(s) 'x1' repeated"),
        ("root:$y$j9T$secret:19000:0:99999:7:::\nx\n", "not a header of comma-separated"),
        ("x1,x2,y\n0,1,0\n\xff\n", "not a UTF-8 text file"),
    ],
)
def test_csv_holes_are_one_line_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "data.csv"
    path.write_bytes(text.encode("utf-8") if "\xff" not in text else b"x1,x2,y\n0,1,0\n\xff\n")
    with pytest.raises(ConfigError) as caught:
        data.read_csv(str(path), ["x1", "x2"], ["y"])
    message = str(caught.value)
    assert expected in message and "\n" not in message
    assert "secret" not in message and "j9T" not in message


def test_an_unreadable_csv_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "data.csv"
    path.write_text("x1,x2,y\n0,1,0\n")

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(ConfigError, match=r"cannot be read \(Permission denied\)"):
        data.read_csv(str(path), ["x1", "x2"], ["y"])


# --------------------------------------------------------------------------------------
# 15. Names and text
# --------------------------------------------------------------------------------------


MARKDOWN_TEXTS = [
    "<script>x()</script> & $a$",
    "P(A<B) = 0.7 and 16-8-8 < 8-8-8 <= 4",
    "<!-- hidden --> <?php ?> <![CDATA[x]]> <https://example.org> <me@example.org>",
    "&amp; &#60; &lt;b&gt; a & b",
    "`<b>` stays code, and so does `a & b`; a lone ` then <i>x</i>",
    "<a href='x' onclick=\"y()\">link</a> <br/> </p>",
]


@pytest.mark.parametrize("text", MARKDOWN_TEXTS)
def test_notes_are_text_in_report_md(text: str) -> None:
    """What report.md says renders, under CommonMark, as exactly the text written: no tag,
    comment, autolink or entity of a note becomes markup, in a paragraph or a table cell."""
    from markdown_it import MarkdownIt

    from nnsweep.report.render import Section, render_markdown

    table = pd.DataFrame({"note": [text.replace("`", "")]})
    markdown = render_markdown("t", [Section("About", paragraphs=(text,), table=table)])
    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    inline = [t for t in tokens if t.type == "inline"]
    children = [c for t in inline for c in t.children or []]
    assert not [c for c in children if c.type in ("html_inline", "link_open")]
    assert not [t for t in tokens if t.type == "html_block"]
    shown = [
        "".join(c.content for c in t.children or [] if c.type in ("text", "code_inline"))
        for t in inline
    ]
    assert text.replace("`", "") in shown  # the table cell, exactly as written
    pairs = text.count("`") - text.count("`") % 2  # a lone last backtick is shown
    paragraph = tokens[[t.type for t in tokens].index("paragraph_open") + 1]
    assert shown[inline.index(paragraph)] == text.replace("`", "", pairs)


def test_comparisons_read_as_written_in_raw_report_md() -> None:
    from nnsweep.report.render import markdown_text

    assert markdown_text("P(A<B) = 0.7; 16-8-8 < 8-8-8") == "P(A<B) = 0.7; 16-8-8 < 8-8-8"


def test_figure_labels_are_plain_text_and_matplotlib_settings_stay_the_callers(
    tmp_path: Path,
) -> None:
    """A "$" in a cell name is printed, not parsed as mathtext, in every label made while
    drawing and while saving (tick labels), yet matplotlib's global rcParams are untouched."""
    import matplotlib
    from matplotlib.text import Text

    from nnsweep.report import plots
    from nnsweep.report.render import save_figure

    before = dict(matplotlib.rcParams)
    effects = pd.DataFrame(
        {
            "label": ["$a$ vs b"],
            "estimate": [0.7],
            "ci_low": [0.6],
            "ci_high": [0.8],
            "decision": ["a_better"],
        }
    )
    figure = plots.forest(effects, (0.44, 0.56), "P($a$<b)")
    save_figure(tmp_path, "forest", "caption", figure)
    texts = [text for text in figure.findobj(Text) if "$" in text.get_text()]
    assert len(texts) >= 2  # the title and the row's tick label
    assert not any(text.get_parse_math() or text.get_usetex() for text in texts)
    assert dict(matplotlib.rcParams) == before


def test_importing_nnsweep_leaves_a_notebooks_backend_and_rcparams_alone() -> None:
    """In a fresh interpreter that chose its own backend: importing every module that draws
    changes neither the backend nor rcParams, and pyplot is never imported."""
    script = (
        "import sys, matplotlib\n"
        "matplotlib.use('svg')\n"
        "before = dict(matplotlib.rcParams)\n"
        "import nnsweep.cli, nnsweep.report.sweep_report, nnsweep.report.placement_report\n"
        "import nnsweep.report.plots, nnsweep.report.plots_many\n"
        "assert matplotlib.get_backend() == 'svg', matplotlib.get_backend()\n"
        "assert dict(matplotlib.rcParams) == before\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
def test_non_ascii_notes_and_paths_under_an_ascii_locale(tmp_path: Path) -> None:
    results = tmp_path / "résultats"
    ascii_locale = {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    done = run_cli(
        [
            "-m",
            "layers=4,2-2",
            "n_seeds=2",
            "iterations=100",
            "log_every=50",
            "notes='Grüße, ☃ <b>'",
            f"results_dir='{results}'",
        ],
        env=ascii_locale,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    sweep_dir = only_dir(results / "sweep")
    assert "Grüße, ☃ &lt;b>" in (sweep_dir / "report.md").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------
# 16. Environment variables
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value"),
    [("NNSWEEP_KERNEL", "bogus"), ("NNSWEEP_THREADS", "abc"), ("NNSWEEP_THREADS", "0")],
)
def test_bad_environment_values_are_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^{variable}={value}: "):
        native.check_environment()


def test_bad_environment_through_the_cli(tmp_path: Path) -> None:
    results = tmp_path / "results"
    for env in ({"NNSWEEP_THREADS": "abc"}, {"NNSWEEP_KERNEL": "bogus"}):
        done = run_cli([f"results_dir={results}"], env=env, timeout=120)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("nnsweep: error: NNSWEEP_"), lines
    # A kernel path this machine cannot run, forced: one line, before any work.
    missing = [path for path in native.PATHS if path not in native.available_paths()]
    if missing:
        done = run_cli(
            ["iterations=10", f"results_dir={results}"],
            env={"NNSWEEP_KERNEL": missing[0]},
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and f"NNSWEEP_KERNEL={missing[0]}" in lines[0], lines


def test_every_job_file_is_written_as_utf8(cell, tmp_path: Path) -> None:
    job_dir = tmp_path / "0"
    run.run_cell(cell(), job_dir, run_id="ü")
    assert json.loads((job_dir / schema.PROVENANCE).read_bytes().decode("utf-8"))["run_id"] == "ü"


def test_a_full_disk_names_the_file_it_could_not_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENOSPC from a write names no file; the error must say which folder is full (the
    cache's or the results'), so the file it was writing is named."""
    import errno

    def full(self: Path, data: bytes) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    target = tmp_path / "cache" / "ab" / "entry.npz"
    with monkeypatch.context() as patched:
        patched.setattr(Path, "write_bytes", full)
        with pytest.raises(OSError) as caught:
            store.write_bytes(target, b"arrays")
    assert caught.value.errno == errno.ENOSPC
    assert str(target) in str(caught.value) and "No space left on device" in str(caught.value)
    assert list((tmp_path / "cache" / "ab").iterdir()) == []  # no temporary file left
