"""Whether the verdict holds earlier in training: every pair re-decided at checkpoints.

Reads the ``runs`` and ``curves`` DataFrames that ``store`` wrote; never trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nnsweep import schema
from nnsweep.stats import analysis
from nnsweep.stats.analysis import ALPHA, MARGIN
from nnsweep.stats.per_cell import seeded_runs

CHECKPOINTS = (0.25, 0.5, 0.75, 1.0)  # fractions of the iterations the verdict is re-checked at


def robustness(
    runs: pd.DataFrame,
    curves: pd.DataFrame,
    alpha: float = ALPHA,
    margin: tuple[float, float] = MARGIN,
    checkpoints: Sequence[float] = CHECKPOINTS,
) -> tuple[pd.DataFrame, Stability | None]:
    """Re-decide every pair on all seeds' training error at fractions of the iterations.

    At each checkpoint the curves give each seed's error (the last logged iteration at or
    before that fraction of its cell's iterations; the last point is the final weights').
    The order of the medians and the decision of every pair (all seeds, as the pooled part,
    one Holm family per checkpoint) are compared with the end.

    A checkpoint where some seed has no logged point after the previous checkpoint (a
    ``log_every`` coarser than the checkpoints) is skipped and listed in ``skipped``:
    reading the point before would judge a less trained (at iteration 0, an untrained)
    network as if it were that far.

    Returns one row per (checkpoint, pair) and a ``Stability`` (None without curves).
    """
    if curves.empty or len(runs) == 0:
        return pd.DataFrame(), None  # no curves: nothing to re-check
    seeded = seeded_runs(runs)
    keyed = seeded[["job", "seed", "cell", "iterations"]]
    merged = curves[["job", "seed", "iteration", "error"]].merge(keyed, on=["job", "seed"])
    if merged.empty:
        return pd.DataFrame(), None
    n_seeds = len(merged.groupby(["job", "seed"]))
    kept, skipped, previous = [], [], 0.0
    for fraction in checkpoints:
        low, high = np.floor(merged["iterations"] * previous), merged["iterations"] * fraction
        inside = merged[(merged["iteration"] > low) & (merged["iteration"] <= np.floor(high))]
        if len(inside.groupby(["job", "seed"])) == n_seeds or fraction == checkpoints[-1]:
            kept.append(fraction)
            previous = fraction
        else:
            skipped.append(fraction)
    if len(kept) < 2:  # only the end: nothing to compare it with
        end = checkpoints[-1]
        stability = Stability((end,), {}, end, None, (), tuple(skipped))
        return pd.DataFrame(), stability
    checkpoints = tuple(kept)
    rows, orders = [], {}
    for fraction in checkpoints:
        target = np.floor(merged["iterations"] * fraction)
        eligible = merged[merged["iteration"] <= target]
        at = eligible.loc[eligible.groupby(["job", "seed"])["iteration"].idxmax()]
        at = at.assign(error=schema.worst_when_diverged(at["error"]))
        samples = {
            cell: (g["error"].to_numpy(float), np.ones(len(g), bool))
            for cell, g in at.groupby("cell", sort=False)
        }
        if len(samples) < 2:
            return pd.DataFrame(), None
        orders[fraction] = sorted(samples, key=lambda c: np.median(samples[c][0]))
        decided = analysis.pair_decisions(samples, alpha, margin, reliability=False)
        decided = decided[decided["part"] == "quality"]
        iteration = int(at["iteration"].max())
        for row in decided.itertuples():
            a, b, decision = row.a, row.b, row.decision
            if orders[fraction].index(a) > orders[fraction].index(b):
                a, b = b, a
                decision = {"a_better": "b_better", "b_better": "a_better"}.get(decision, decision)
            rows.append(
                {
                    "fraction": fraction,
                    "iteration": iteration,
                    "a": a,
                    "b": b,
                    "estimate": row.estimate,
                    "decision": decision,
                }
            )
    table = pd.DataFrame(rows)
    end = checkpoints[-1]

    def state(fraction: float) -> tuple:
        # Decisions keyed by the unordered pair, so a swap of an undecided pair is no change.
        chosen = table[table["fraction"] == fraction]
        decided = {}
        for r in chosen.itertuples():
            key = tuple(sorted((r.a, r.b)))
            winner = {"a_better": r.a, "b_better": r.b}.get(r.decision, r.decision)
            decided[key] = winner
        return tuple(sorted(decided.items()))

    final_state = state(end)
    stable_from = end
    for fraction in reversed(checkpoints[:-1]):
        if state(fraction) != final_state:
            break
        stable_from = fraction
    iteration_at = table.groupby("fraction")["iteration"].max()
    earlier = max((f for f in checkpoints if f < stable_from), default=None)
    before = dict(state(earlier)) if earlier is not None else {}
    after = dict(final_state)
    changes = tuple(
        (key, before.get(key), after.get(key))
        for key in after
        if earlier is not None and before.get(key) != after.get(key)
    )
    stability = Stability(
        checkpoints=tuple(checkpoints),
        iterations={f: int(iteration_at[f]) for f in iteration_at.index},
        stable_from=stable_from,
        earlier=earlier,
        changes=changes,
        skipped=tuple(skipped),
    )
    return table, stability


@dataclass(frozen=True)
class Stability:
    """From which checkpoint on every pair's decision on all seeds stays as at the end."""

    checkpoints: tuple[float, ...]  # fractions of the iterations re-checked
    iterations: dict[float, int]  # the iteration each checkpoint stands for
    stable_from: float  # first checkpoint from which nothing changes
    earlier: float | None  # the checkpoint before it (None: stable from the first)
    # (pair, winner or decision at ``earlier``, winner or decision at the end), per change
    changes: tuple[tuple[tuple[str, str], str | None, str | None], ...]
    # checkpoints left out: no logged point since the previous one (log_every too coarse)
    skipped: tuple[float, ...] = ()
