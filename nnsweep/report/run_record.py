"""What was run and what computed it: the run table, the command, the Reproduce commands,
provenance, where cached seeds came from, and the files of a sweep folder.

Reads ``multirun.yaml`` and every job's ``provenance.json``; part of the sweep report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from nnsweep import schema, store
from nnsweep.report.render import Section, format_number
from nnsweep.stats import per_cell


def sweep_config(sweep_dir: Path) -> dict[str, Any]:
    path = sweep_dir / "multirun.yaml"
    if not path.exists():
        return {}
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return {}


def _job_provenance(sweep_dir: Path, runs: pd.DataFrame) -> dict[int, dict[str, Any]]:
    """The provenance.json of every job in ``runs`` (not of job folders it ignored)."""
    found = {}
    for job_dir in _gathered_job_dirs(sweep_dir, runs):
        path = job_dir / schema.PROVENANCE
        if path.exists():
            try:
                found[int(job_dir.name)] = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
    return found


def _gathered_job_dirs(sweep_dir: Path, runs: pd.DataFrame) -> list[Path]:
    """The job folders whose rows are in the sweep's table: a folder left by another run
    is in the sweep folder but not in this sweep."""
    gathered = {int(job) for job in runs["job"].dropna()} if "job" in runs else set()
    return [job for job in store.job_dirs(sweep_dir) if int(job.name) in gathered]


def _distinct(values: Any) -> str:
    shown = [str(v) for v in dict.fromkeys(values) if v is not None]
    return ", ".join(shown) if shown else "not recorded"


def _blas(entries: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{b.get('internal_api')} {b.get('version')}, core type {b.get('architecture')}, "
        f"{b.get('num_threads')} thread(s)"
        for b in entries
    )


def _cpu(cpu: dict[str, Any] | None) -> str:
    if not cpu:
        return "not recorded"
    simd = ", ".join(
        f"{flag} {'yes' if flag in cpu['simd'] else 'no'}" for flag in store.SIMD_FLAGS
    )
    return f"{cpu.get('model')} ({simd})"


def _dirty(value: Any, files: list[str] | None = None) -> str:
    if value is None:
        return "not recorded"
    if not value:
        return "no (clean tree)"
    return "YES, uncommitted changes" + (f" in {', '.join(files)}" if files else "")


def _provenance_table(jobs: dict[int, dict[str, Any]], runs: pd.DataFrame) -> pd.DataFrame:
    """What computed this sweep's numbers, one row per item (jobs agreeing share a value)."""
    details = list(jobs.values())
    kernels = {
        job: p.get("kernel")
        or ("all seeds from the cache" if p.get("trained_seeds") == [] else None)
        for job, p in jobs.items()
    }
    by_kernel: dict[str, list[int]] = {}
    for job, kernel in kernels.items():
        by_kernel.setdefault(str(kernel or "not recorded"), []).append(job)
    trained = sum(len(p.get("trained_seeds", [])) for p in details)
    rows = [
        ("nnsweep", _distinct(p.get("nnsweep") for p in details)),
        ("git commit", _distinct(p.get("git_commit") for p in details)),
        (
            "uncommitted changes",
            _distinct(_dirty(p.get("git_dirty"), p.get("git_dirty_files")) for p in details),
        ),
        ("CPU (SIMD flags)", _distinct(_cpu(p.get("cpu")) for p in details)),
        (
            "arithmetic",
            "; ".join(
                f"{kernel} (job{'s' if len(js) > 1 else ''} {', '.join(map(str, js))})"
                for kernel, js in by_kernel.items()
            ),
        ),
        ("numpy", _distinct(p.get("numpy") for p in details)),
        ("BLAS", _distinct(_blas(p.get("blas", [])) for p in details)),
        ("python", _distinct(p.get("python") for p in details)),
        ("pandas", _distinct(p.get("pandas") for p in details)),
        ("host", _distinct(p.get("host") for p in details)),
        ("platform", _distinct(p.get("platform") for p in details)),
        ("jobs written (UTC)", _time_span(p.get("time_utc") for p in details)),
        ("seeds trained by this sweep", f"{trained} of {int(runs['seed'].notna().sum())}"),
    ]
    return pd.DataFrame(rows, columns=["item", "value"])


def _origin_table(jobs: dict[int, dict[str, Any]], runs: pd.DataFrame) -> pd.DataFrame:
    """Where and when the seeds that came from the cache were computed."""
    labels = per_cell.seeded_runs(runs).drop_duplicates("job").set_index("job")["cell"]
    rows = []
    for job, details in jobs.items():
        trained = set(details.get("trained_seeds", []))
        origins = details.get("seed_origins")
        cell = labels.get(job, f"job {job}")
        if origins is None:
            cached = sorted(set(map(int, details.get("cache_keys", {}))) - trained)
            if cached:
                origins = [{"seeds": cached, "host": None}]
            else:
                continue
        for origin in origins:
            seeds = [s for s in origin["seeds"] if s not in trained]
            if not seeds:
                continue
            known = origin.get("host") is not None
            rows.append(
                {
                    "cell": cell,
                    "seeds": _seed_ranges(seeds),
                    "computed on": origin.get("host")
                    if known
                    else "not recorded (cached before nnsweep recorded origins)",
                    "at (UTC)": origin.get("time_utc") or "-",
                    "commit": str(origin.get("git_commit") or "-")[:12],
                    "arithmetic": origin.get("kernel") or "-",
                    "CPU": _cpu(origin.get("cpu")) if known else "-",
                }
            )
    return pd.DataFrame(rows)


def _time_span(times: Any) -> str:
    known = sorted(str(t) for t in times if t)
    if not known:
        return "not recorded"
    return known[0] if known[0] == known[-1] else f"{known[0]} to {known[-1]}"


def _seed_ranges(seeds: list[int]) -> str:
    """1, 2, 3, 7 -> '1-3, 7'."""
    seeds = sorted(seeds)
    parts, start = [], seeds[0]
    for previous, seed in zip(seeds, [*seeds[1:], None], strict=True):
        if seed != previous + 1 if seed is not None else True:
            parts.append(f"{start}" if start == previous else f"{start}-{previous}")
            start = seed
    return ", ".join(parts)


def command_line(config: dict[str, Any]) -> str | None:
    overrides = config.get("hydra", {}).get("overrides", {})
    if overrides.get("task") is None:
        return None
    hydra_overrides = [
        o for o in overrides.get("hydra", []) if not str(o).startswith("hydra.mode=")
    ]
    task = [str(override) for override in overrides["task"]]
    # A report is a sweep's: without an experiments file (which sets the mode) it took -m.
    multirun = [] if any(o.startswith("experiments=") for o in task) else ["-m"]
    return " ".join(["python -m nnsweep", *multirun, *task, *map(str, hydra_overrides)])


def run_table(runs: pd.DataFrame) -> pd.DataFrame:
    seeds = runs["seed"].dropna()
    rows = []
    for column in schema.CELL_COLUMNS:
        values = runs[column].dropna().unique().tolist()
        rows.append({"setting": column, "value": ", ".join(format_number(v) for v in values)})
    if len(seeds):
        rows.append(
            {
                "setting": "seeds per cell",
                "value": f"{int(seeds.min())}..{int(seeds.max())} "
                f"({runs.groupby(schema.CELL_COLUMNS, dropna=False)['seed'].count().max()} "
                "per cell)",
            }
        )
    return pd.DataFrame(rows)


def record_sections(
    sweep_dir: Path, config: dict[str, Any], runs: pd.DataFrame, order: list[str]
) -> list[Section]:
    """The report's closing sections: how to make it again, what computed its numbers,
    where cached seeds came from (cells in ``order``), and its files."""
    jobs = _job_provenance(sweep_dir, runs)
    sections = [_reproduce_section(sweep_dir, config, jobs)]
    if jobs:
        sections.append(
            Section(
                "Provenance",
                paragraphs=(_arithmetic_sentence(runs),),
                table=_provenance_table(jobs, runs),
            )
        )
        origins = _origin_table(jobs, runs)
        unknown = origins["computed on"].str.startswith("not recorded") if len(origins) else []
        if len(origins) and all(unknown):
            sections.append(
                Section(
                    "Seeds taken from the cache",
                    paragraphs=(
                        "Every seed of this sweep came from the per-seed cache, filled before "
                        "nnsweep recorded where and when a seed was computed: their origin is "
                        "not known. Rerunning with an emptied cache records it.",
                    ),
                )
            )
        elif len(origins):
            sections.append(
                Section(
                    "Seeds taken from the cache",
                    paragraphs=("Where and when the seeds this sweep reused were computed.",),
                    table=_in_order(origins, order),
                )
            )
    sections.append(_files_section(sweep_dir, runs))
    return sections


def _arithmetic_sentence(runs: pd.DataFrame) -> str:
    """What the per-seed numbers depend on, from the arithmetic that computed them."""
    used = set(schema.with_legacy_settings(runs)["arithmetic"].dropna())
    portable = (
        "Seeds trained with the portable arithmetic (IEEE-754 basic operations in one fixed "
        "order, docs/arithmetic.md) have the same bits on every CPU, whichever kernel ran "
        "them; the BLAS row matters only for arithmetic=numpy."
    )
    host = (
        "Seeds trained with arithmetic=numpy depend, bit for bit, on the floating-point order "
        "of the BLAS and CPU that computed them; distributions over seeds do not."
    )
    return " ".join(
        ([portable] if "portable" in used else []) + ([host] if used - {"portable"} else [])
    )


def _in_order(table: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    """Rows in the order of the cells table (best median first)."""
    rank = {cell: i for i, cell in enumerate(order)}
    return table.sort_values("cell", key=lambda c: c.map(rank), kind="stable")


def _shown_path(path: Path) -> str:
    """``path`` relative to the working folder when it lies below it, else absolute."""
    resolved = path.resolve()
    try:
        return str(resolved.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(resolved)


def _reproduce_section(
    sweep_dir: Path, config: dict[str, Any], jobs: dict[int, dict[str, Any]]
) -> Section:
    """The commands that made these files, and the code state they ran on."""
    commits = sorted({str(p.get("git_commit")) for p in jobs.values() if p.get("git_commit")})
    dirty = [p.get("git_dirty") for p in jobs.values()]
    folder = str(config.get("hydra", {}).get("sweep", {}).get("dir") or "")
    if not folder or "${" in folder:  # the default dir is an interpolation: name the real one
        folder = _shown_path(sweep_dir)
    command = command_line(config)
    lines = []
    if commits:
        lines += [
            f"git checkout {commits[0]}"
            + ("  # jobs ran on several commits" if len(commits) > 1 else "")
        ]
    lines += [
        "# the sweep (trains only seeds missing from results/.cache)",
        command or "# the command line was not recorded (no multirun.yaml)",
        "# the tables again from the job folders, then this report",
        f"python -m nnsweep collect {folder}",
        "# this report again from the stored tables, without training",
        f"python -m nnsweep report {folder}",
    ]
    state = (
        "not recorded (made before nnsweep recorded it)"
        if not dirty or any(d is None for d in dirty)
        else "dirty: uncommitted changes, the commit alone does not reproduce it"
        if any(dirty)
        else "clean"
    )
    return Section(
        "Reproduce",
        paragraphs=(f"Commit {', '.join(commits) or 'not recorded'}; working tree {state}.",),
        code="\n".join(lines),
    )


RAW_FILES = (
    (schema.RUNS, "one row per seed"),
    (schema.CURVES, "one row per seed and logged iteration"),
    (schema.SUMMARY, "per-cell counts and quartiles"),
    ("cell_stats.csv", "the cells table"),
    ("pairwise.csv", "the pairwise table"),
    ("failures.csv", "the failures table"),
    ("cell_stats_holdout.csv", "the cells table on held-out error"),
    ("pairwise_holdout.csv", "the pairwise table on held-out error"),
    ("multirun.yaml", "the sweep's full Hydra config"),
    (schema.TABLE_CHECKSUMS, "SHA-256 of the three tables above, checked by report"),
    ("report.md", "this report in Markdown"),
)


def _files_section(sweep_dir: Path, runs: pd.DataFrame) -> Section:
    links = [
        (f"{name}: {what}", name)
        for name, what in RAW_FILES
        if (sweep_dir / name).exists() or name == "report.md"
    ]
    links += [
        (f"job {job.name}: provenance.json", f"{job.name}/{schema.PROVENANCE}")
        for job in _gathered_job_dirs(sweep_dir, runs)
    ]
    return Section(
        "Files",
        paragraphs=(
            "Each job folder (0/, 1/, ...) also holds that cell's own runs.parquet, "
            "curves.parquet and weights.npz (final weights of every seed).",
        ),
        links=tuple(links),
    )
