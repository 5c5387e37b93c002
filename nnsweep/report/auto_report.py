"""The report's section on an auto sweep (n_seeds=auto): its rounds, decisions and intervals.

Reads ``auto.json`` (written by ``nnsweep.sweep.auto`` after every round); never trains. Writes
``auto_rounds.csv`` (one row per pair and round) and ``figures/auto_intervals.png``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from nnsweep import store
from nnsweep.report import plots
from nnsweep.report.render import Section, save_figure

ROUNDS_CSV = "auto_rounds.csv"
FIGURE = "auto_intervals"  # figures/auto_intervals.png
ROUND_COLUMNS = [
    "round",
    "alpha",
    "a",
    "b",
    "n_a",
    "n_b",
    "estimate",
    "ci_low",
    "ci_high",
    "ci_level",
    "p_holm",
    "p_equivalence_holm",
    "decision",
    "decided_look",
    "decided_now",
    "seeds_needed",
    "seeds_needed_high",
]


def rounds_table(record: dict[str, Any]) -> pd.DataFrame:
    """One row per (round, pair): seeds, P(A<B) with the round's interval, the decision."""
    rows = [
        {"round": rnd["round"], "alpha": rnd["alpha"], **pair}
        for rnd in record["rounds"]
        for pair in rnd["pairs"]
    ]
    return pd.DataFrame(rows).reindex(columns=ROUND_COLUMNS)


def _decision_words(a: str, b: str, decision: str) -> str:
    return {
        "a_better": f"{a} ends lower than {b}",
        "b_better": f"{b} ends lower than {a}",
        "equivalent": f"{a} and {b} are practically equivalent",
        "undecided": f"{a} vs {b} undecided",
        "not_applicable": f"{a} vs {b} not compared (a cell failed)",
    }[decision]


def _level(row: Any) -> str:
    level = getattr(row, "ci_level", None)
    if level is None or pd.isna(level):  # auto.json written before intervals had levels
        return "at that round's alpha"
    return f"confidence {float(level):.4g}"


def _interval(row: Any, side: str) -> str:
    """The deciding round's interval of P(A<B), told from the winner's side when B won."""
    if side == "b_better":
        low, high = 1.0 - row.ci_high, 1.0 - row.ci_low
        return f"interval [{low:.2f}, {high:.2f}], {_level(row)}"
    return f"interval [{row.ci_low:.2f}, {row.ci_high:.2f}], {_level(row)}"


def _final_estimate(final: Any, side: str) -> str:
    """P(A<B) on the final seeds: no winner's curse from stopping when it looked large."""
    if side == "b_better":
        return f"P({final.b}<{final.a}) = {1.0 - final.estimate:.2f}"
    return f"P({final.a}<{final.b}) = {final.estimate:.2f}"


def pair_sentence(final: Any, decided_at: Any | None, plan: dict[str, Any]) -> str:
    """How one pair ended: decided in which round with how many seeds, or what is known."""
    if final.decision == "not_applicable":
        return _decision_words(final.a, final.b, final.decision) + "."
    if decided_at is not None:
        return (
            f"{_decision_words(final.a, final.b, final.decision)}: decided in round "
            f"{decided_at['round']} with {decided_at['n_a']} and {decided_at['n_b']} seeds "
            f"(that round's {_interval(decided_at, final.decision)}, Holm level within the "
            f"round's alpha {decided_at['alpha']:.2g}). On the final seeds ({final.n_a} and "
            f"{final.n_b}): {_final_estimate(final, final.decision)}, the estimate to quote "
            "(the one at the deciding round is biased away from 0.5 by stopping there)."
        )
    low, high = final.seeds_needed, getattr(final, "seeds_needed_high", None)
    if pd.notna(low):
        upper = f"{int(high):,}" if pd.notna(high) else "more than 100,000"
        span = f"{int(low):,}" if upper == f"{int(low):,}" else f"{int(low):,} to {upper}"
        more = (
            f" About {span} seeds per cell would decide it (a priori: equivalence if the "
            "cells are the same, or a difference at P(A<B) = 0.64; Noether's formula at the "
            "last round's alpha)."
        )
    else:
        more = " More than 100,000 seeds per cell would be needed to decide it."
    return (
        f"{final.a} vs {final.b}: undecided at max_seeds = {plan['max_seeds']} "
        f"({final.n_a} and {final.n_b} seeds): P({final.a}<{final.b}) is between "
        f"{final.ci_low:.2f} and {final.ci_high:.2f}.{more}"
    )


def auto_section(sweep_dir: Path) -> Section | None:
    """The report's section, or None for an ordinary sweep."""
    record = store.read_auto(sweep_dir)
    if record is None:
        return None
    table = rounds_table(record)
    store.atomic_write(sweep_dir / ROUNDS_CSV, lambda p: table.to_csv(p, index=False))
    plan = record["plan"]
    last = table[table["round"] == table["round"].max()]
    sentences = []
    for final in last.itertuples():
        decided = table[
            (table["a"] == final.a) & (table["b"] == final.b) & table["decided_now"].astype(bool)
        ]
        at = decided.iloc[0] if len(decided) else None
        sentences.append(pair_sentence(final, at, plan))
    stop = {
        "decided": "no pair was left undecided",
        "max_seeds": f"the cells reached max_seeds = {plan['max_seeds']}",
        "running": "it was interrupted (run it again to resume from the cache)",
    }[record["stop"]]
    seeds = pd.DataFrame([{"round": rnd["round"], **rnd["seeds"]} for rnd in record["rounds"]])
    decided_now = table[table["decided_now"].astype(bool)]
    seeds["alpha of the round"] = [rnd["alpha"] for rnd in record["rounds"]]
    seeds["decided in this round"] = [
        "; ".join(
            _decision_words(r.a, r.b, r.decision)
            for r in decided_now[decided_now["round"] == rnd["round"]].itertuples()
        )
        or "-"
        for rnd in record["rounds"]
    ]
    low, high = plan["margin"]
    return Section(
        "Seeds chosen by the data (n_seeds=auto)",
        paragraphs=(
            f"Seeds were added in rounds of {plan['seed_block']} per cell, only to cells in an "
            f"undecided pair, for at most {plan['looks']} rounds (max_seeds = "
            f"{plan['max_seeds']}); the sweep stopped after round {len(record['rounds'])} "
            f"because {stop}. Rule: {record['rule']}, family-wise alpha = {plan['alpha']} over "
            f"every round and pair. Each pair is classified as the verdict does: practically "
            f"equivalent when two one-sided tests put P(A<B) inside [{low}, {high}], else "
            f"better when the rank test (Brunner-Munzel, logit scale) rejects P(A<B) = 0.5, "
            f"both at the round's alpha in one Holm family, else undecided; a decision is "
            "final. "
            "Rounds decide on the pooled comparison (every seed's final error, diverged "
            "seeds worst); the verdict's reliability and quality parts are tested on the "
            "final seeds and may still be undecided.",
            *sentences,
            "These decisions hold their error rate however the sweep stopped. The other "
            "sections test the final seeds as if their number had been fixed in advance; "
            "where they differ, these are the ones to quote.",
            f"Error budget: the rounds' decisions share family-wise alpha = {plan['alpha']} "
            "over every round and pair (difference and equivalence tests alike); the "
            "verdict above spends another alpha on the final seeds. Everything this report "
            f"claims is therefore wrong with probability at most {2 * plan['alpha']:.2g} "
            "(union bound), and the rounds' decisions alone at most "
            f"{plan['alpha']}. Each round's interval is at its test's Holm level within the "
            "round's alpha (1 - 2 x level for an equivalence), so it agrees with the "
            "decision beside it.",
        ),
        table=seeds,
        figures=(
            save_figure(
                sweep_dir,
                FIGURE,
                "Each pair's P(A<B) with its interval at the round's alpha, round by round; "
                "the dashed lines are the decision boundaries (0.5, and the equivalence "
                "margin), the filled marker the round that decided.",
                plots.auto_intervals(table, tuple(plan["margin"])),
            ),
        ),
    )
