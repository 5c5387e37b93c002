"""``n_seeds=auto``: train seeds in rounds until every pair of cells is decided.

Round 1 trains ``seed_block`` seeds of every cell. After each round the sweep's tables are
gathered from its folder and every pair is classified by ``nnsweep.stats.sequential`` (the
verdict's classification at the round's share of alpha). The next round adds the next
``seed_block`` seeds, as a new job, only to cells that take part in an undecided pair. The
sweep stops when no pair is undecided or after the round that brings the cells to
``max_seeds``. A cell that fails is left out of later rounds and its pairs are "not
applicable".

The rounds are a pure function of the seeds' results, which the per-seed cache keeps: a
killed auto sweep that is run again replays every round it had done from the cache (no
training) and continues where it stopped, with the same jobs, tables and decisions.

``run_auto_sweep`` knows nothing of Hydra: the caller passes ``launch_round``, which runs a
round's jobs (the nnsweep sweeper launches them through the configured Hydra launcher).
``auto.json`` in the sweep folder records the plan, the rule and every round.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nnsweep import schema, store
from nnsweep.config import MAX_AUTO_ROUNDS, checked_setting
from nnsweep.errors import ConfigError
from nnsweep.stats import per_cell
from nnsweep.stats.sequential import (
    NOT_APPLICABLE,
    UNDECIDED,
    Decisions,
    Plan,
    active_cells,
    advance,
    all_pairs,
    seeds_needed,
)

AUTO = "auto"  # the value of n_seeds that asks for an auto sweep


@dataclass(frozen=True)
class RoundJob:
    """One job of a round: the next block of seeds of one cell."""

    cell: int  # index of the cell in the sweep's grid
    seed: int  # first seed of the block
    n_seeds: int  # seeds in the block


# Runs one round's jobs, numbered from the given job index, and returns when all are done.
LaunchRound = Callable[[Sequence[RoundJob], int], Any]


def _cell_samples(
    runs: pd.DataFrame, jobs_of_cell: dict[int, list[int]]
) -> tuple[dict[int, np.ndarray], set[int], dict[int, str]]:
    """Per cell: its seeds' errors (diverged = +inf) as a (1, n) array; failed cells; labels."""
    labels = per_cell.cell_labels(runs) if len(runs) else pd.Series(dtype=str)
    samples: dict[int, np.ndarray] = {}
    failed: set[int] = set()
    names: dict[int, str] = {}
    for cell, jobs in jobs_of_cell.items():
        rows = runs["job"].isin(jobs)
        if rows.any():
            names[cell] = str(labels[rows].iloc[0])
        if (runs.loc[rows, "status"] == "failed").any() or not rows.any():
            failed.add(cell)
            continue
        seeded = runs[rows].sort_values("seed")
        samples[cell] = per_cell.ranked_error(seeded).to_numpy(dtype=float)[None, :]
    return samples, failed, names


def _pair_records(
    plan: Plan,
    look: int,
    pairs: list[tuple[int, int]],
    names: dict[int, str],
    seeds: list[int],
    decisions: Decisions,
    before: np.ndarray,
    result: Any,
    judged: list[int],
) -> list[dict[str, Any]]:
    """One row per pair after this round: effect, interval, decision and when it was made."""
    rows = []
    position = {pair: k for k, pair in enumerate(judged)}
    for p, (a, b) in enumerate(pairs):
        row: dict[str, Any] = {
            "a": names.get(a, str(a)),
            "b": names.get(b, str(b)),
            "n_a": seeds[a],
            "n_b": seeds[b],
            "decision": str(decisions.decision[0, p]),
            "decided_look": int(decisions.look[0, p]),
            "decided_now": bool(before[0, p] == UNDECIDED and decisions.look[0, p] == look),
        }
        if p in position:
            k = position[p]
            # A priori range at the look's Bonferroni level over its family (2 per pair).
            low, high = seeds_needed(
                plan.look_alpha(look) / (2 * len(judged)),
                min(seeds[a], seeds[b]),
                plan.margin,
            )
            undecided = row["decision"] == UNDECIDED
            row.update(
                estimate=float(result.estimate[0, k]),
                ci_low=float(result.ci_low[0, k]),
                ci_high=float(result.ci_high[0, k]),
                ci_level=float(result.ci_level[0, k]),
                p_holm=float(result.p_holm[0, k]),
                p_equivalence_holm=float(result.p_equivalence_holm[0, k]),
                # Only an undecided pair needs more seeds (None: decided, or beyond the cap).
                seeds_needed=float(low[0]) if undecided and np.isfinite(low[0]) else None,
                seeds_needed_high=float(high[0]) if undecided and np.isfinite(high[0]) else None,
            )
        rows.append(row)
    return rows


def run_auto_sweep(
    plan: Plan,
    n_cells: int,
    first_seed: int,
    sweep_dir: Path,
    launch_round: LaunchRound,
) -> dict[str, Any]:
    """Run rounds until every pair is decided or the cells reach ``plan.max_seeds``.

    Returns the record also written to ``sweep_dir / auto.json``.
    """
    pairs = all_pairs(list(range(n_cells)))
    decisions = Decisions.start(1, len(pairs))
    seeds = [0] * n_cells
    jobs_of_cell: dict[int, list[int]] = {cell: [] for cell in range(n_cells)}
    failed: set[int] = set()
    names: dict[int, str] = {}
    rounds: list[dict[str, Any]] = []
    next_job = 0
    stop = "max_seeds"
    for look in range(1, plan.n_looks + 1):
        active = [
            cell
            for cell, is_active in enumerate(active_cells(range(n_cells), pairs, decisions)[0])
            if is_active and cell not in failed
        ]
        if not active:
            stop = "decided"
            break
        target = plan.seeds_at(look)
        jobs = [RoundJob(cell, first_seed + seeds[cell], target - seeds[cell]) for cell in active]
        launch_round(jobs, next_job)
        for offset, job in enumerate(jobs):
            jobs_of_cell[job.cell].append(next_job + offset)
            seeds[job.cell] = target
        next_job += len(jobs)

        runs = store.gather(sweep_dir).runs
        samples, failed, names = _cell_samples(runs, jobs_of_cell)
        before = decisions.decision.copy()
        for p, (a, b) in enumerate(pairs):
            if decisions.open[0, p] and (a in failed or b in failed):
                decisions.decision[0, p] = NOT_APPLICABLE
        judged = [p for p, (a, b) in enumerate(pairs) if a in samples and b in samples]
        result = None
        if judged:
            sub = Decisions(decisions.decision[:, judged], decisions.look[:, judged])
            result = advance(plan, look, samples, [pairs[p] for p in judged], sub)
            decisions.decision[:, judged] = sub.decision
            decisions.look[:, judged] = sub.look
        rounds.append(
            {
                "round": look,
                "alpha": plan.look_alpha(look),
                "jobs": {
                    names.get(job.cell, str(job.cell)): next_job - len(jobs) + k
                    for k, job in enumerate(jobs)
                },
                "seeds": {names.get(cell, str(cell)): seeds[cell] for cell in range(n_cells)},
                "failed": sorted(names.get(cell, str(cell)) for cell in failed),
                "pairs": _pair_records(
                    plan, look, pairs, names, seeds, decisions, before, result, judged
                ),
            }
        )
        record = _record(plan, rounds, "running", store.owner_run_id(sweep_dir))
        store.write_json(sweep_dir / schema.AUTO_RECORD, record)
    else:
        if not decisions.open.any():
            stop = "decided"
    record = _record(plan, rounds, stop, store.owner_run_id(sweep_dir))
    store.write_json(sweep_dir / schema.AUTO_RECORD, record)
    return record


def _record(
    plan: Plan, rounds: list[dict[str, Any]], stop: str, run_id: str | None
) -> dict[str, Any]:
    return {
        "run_id": run_id,  # the run that owns the folder: a later run ignores this record
        "rule": plan.rule,
        "plan": {
            "max_seeds": plan.max_seeds,
            "seed_block": plan.seed_block,
            "alpha": plan.alpha,
            "margin": list(plan.margin),
            "spending": plan.spending,
            "looks": plan.n_looks,
        },
        "stop": stop,  # "decided" | "max_seeds" | "running" (killed before the end)
        "rounds": rounds,
    }


# --------------------------------------------------------------------------------------
# The Hydra side: rounds launched through the sweep's configured launcher
# --------------------------------------------------------------------------------------


def is_auto(config: Any) -> bool:
    """Whether a composed sweep config asks for ``n_seeds=auto``."""
    return str(config.get("n_seeds")) == AUTO


def auto_plan(config: Any) -> Plan:
    """The plan from ``max_seeds`` and ``seed_block``; ConfigError names a bad value."""
    from nnsweep.errors import ConfigError

    # The settings' own checks (config.AUTO_SEEDS), before the cells are: the plan needs them.
    values = {key: checked_setting(config, key) for key in ("max_seeds", "seed_block")}
    if values["max_seeds"] < values["seed_block"]:
        raise ConfigError(
            f"max_seeds={values['max_seeds']}: must be >= seed_block={values['seed_block']}"
        )
    rounds = math.ceil(values["max_seeds"] / values["seed_block"])
    if rounds > MAX_AUTO_ROUNDS:
        raise ConfigError(
            f"max_seeds={values['max_seeds']}: with seed_block={values['seed_block']} plans "
            f"{rounds:,} rounds; at most {MAX_AUTO_ROUNDS} (raise seed_block or lower max_seeds)"
        )
    seed = config.get("seed", 1)
    if isinstance(seed, int) and seed + values["max_seeds"] > 2**32:
        raise ConfigError(
            f"seed={seed}: seeds must stay below 2**32 (max_seeds={values['max_seeds']})"
        )
    from nnsweep.config import parse_margin

    margin = config.get("equivalence_margin", None)
    if margin is None:
        return Plan(max_seeds=values["max_seeds"], seed_block=values["seed_block"])
    # The rounds decide "practically equivalent" against the same margin as the verdict.
    margin = parse_margin(list(margin) if not isinstance(margin, str) else margin)
    return Plan(max_seeds=values["max_seeds"], seed_block=values["seed_block"], margin=margin)


def block_overrides(job: Sequence[str], seed: int, n_seeds: int) -> list[str]:
    """A cell's overrides with one block of seeds."""
    return [*job, f"seed={seed}", f"n_seeds={n_seeds}"]


def launch_auto_sweep(
    config: Any,
    launcher: Any,
    jobs: Sequence[Sequence[str]],
    validate: Callable[[list[list[str]]], list[Any]],
) -> list[Any]:
    """An auto sweep of the grid ``jobs`` (one override list per cell), round by round.

    ``validate`` composes and checks job override lists as the sweeper does for any sweep
    (exiting with one line on a bad cell); it sees every cell with its first block, before
    anything is launched. Each round is one ``launcher.launch(batch, initial_job_idx)``,
    Hydra's public launcher API, as Hydra's Optuna and Ax sweepers launch. Returns the
    launcher's results, one list per round.
    """
    from nnsweep.config import cell_settings
    from nnsweep.sweep.progress import SweepProgress

    plan = auto_plan(config)
    if len(jobs) < 2:  # nothing to compare, so no round could ever decide anything
        raise ConfigError(
            "n_seeds=auto: compares cells, and this sweep has 1; give -m a list of values, "
            "e.g. layers=8-8,16-16, or a number of seeds, e.g. n_seeds=50"
        )
    first_seed = int(config.get("seed", 1))
    cells = validate([block_overrides(job, first_seed, plan.seed_block) for job in jobs])
    sweep_dir = Path(config.hydra.sweep.dir)
    show = bool(config.get("progress", True))
    returns: list[Any] = []
    work = [0]  # seed-iterations launched so far, for the progress line

    def launch_round(round_jobs: Sequence[RoundJob], first_job: int) -> None:
        batch = [block_overrides(jobs[job.cell], job.seed, job.n_seeds) for job in round_jobs]
        work[0] += sum(job.n_seeds * cells[job.cell].train.iterations for job in round_jobs)
        with SweepProgress(sweep_dir, first_job + len(batch), work[0], enabled=show):
            try:
                results = launcher.launch(batch, initial_job_idx=first_job)
            except Exception as error:  # a lost worker, a full disk: as any sweep does
                from nnsweep.sweep.callback import finish_sweep

                reason = f"no result: {type(error).__name__}: {error}".splitlines()[0]
                lost = {
                    first_job + k: {**cell_settings(cells[job.cell]), "reason": reason}
                    for k, job in enumerate(round_jobs)
                }
                sys.exit(finish_sweep(sweep_dir, lost) or 1)
        for result in results:
            _ = result.return_value  # re-raises a job's exception, as Hydra's sweepers do
        returns.append(results)

    run_auto_sweep(plan, len(jobs), first_seed, sweep_dir, launch_round)
    return returns
