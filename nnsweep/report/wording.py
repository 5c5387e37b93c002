"""Every sentence of a verdict, made from decisions and numbers: the one wording module.

``nnsweep.stats`` decides (``Decision`` values, intervals, p-values, reason codes) and says
nothing; this module says it. Nothing reads these sentences back: a report that needs a
shorter form asks for it here (``Paragraph.short``), by kind, never by a sentence's words.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import combinations

import numpy as np
import pandas as pd

from nnsweep.stats import analysis, core, grouping, robust
from nnsweep.stats.analysis import PARTS
from nnsweep.stats.decision import Decision
from nnsweep.stats.per_cell import METRICS, UNSTABLE_WARNING

ALPHA = core.ALPHA
MARGIN = core.MARGIN


class Paragraph(str):
    """A paragraph of text that knows what it says (``kind``) and its short form.

    Kinds: "order", "noisy", "part:<part>", "instability", "size", "robustness", "seed1",
    "family". A report with many cells keeps or shortens paragraphs by kind.
    """

    kind: str
    short: str

    def __new__(cls, text: str, kind: str, short: str | None = None) -> Paragraph:
        paragraph = super().__new__(cls, text)
        paragraph.kind = kind
        paragraph.short = text if short is None else short
        return paragraph


# Why a part was left out, from analysis's reason codes.
REASONS = {
    "no_failure": "no seed failed in either cell",
    "no_success": "no seed succeeded in either cell",
    "all_succeeded": "every seed succeeded: pooled = quality",
    "few_seeds": "fewer than 2 seeds in a cell",
    "few_successes": (
        f"fewer than {analysis.MIN_SUCCESSES} seeds succeeded in a cell (after trimming "
        "to the seeds that succeed in both)"
    ),
}

TESTS = {
    "rate_score": "Miettinen-Nurminen score test",
    "rank_t": "Brunner-Munzel, logit scale",
    "rank_permutation": "studentized permutation Brunner-Munzel",
}


def reason_words(code: str) -> str:
    return REASONS.get(code, code)


def success_words(solvable_cells: bool) -> tuple[str, str]:
    """How the report names success: (noun phrase, verb phrase)."""
    if solvable_cells:
        return "solve rate", "solves the task"
    return "rate of seeds that did not diverge", "diverges less often"


def _p(value: float) -> str:
    return "< 0.0001" if value < 1e-4 else f"= {value:.4f}" if value < 0.01 else f"= {value:.3f}"


def _points(value: float) -> str:
    # A bound just off zero keeps a decimal: "+0" beside a decided difference reads as touching 0.
    points = value * 100
    return f"{points:+.1f}" if points != 0 and round(points) == 0 else f"{points:+.0f}"


def _join(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def size_note(cells: pd.DataFrame) -> str | None:
    """Warns when the compared networks differ in size (a confound of any shape claim)."""
    if "n_weights" not in cells or cells["n_weights"].isna().any() or len(cells) < 2:
        return None
    sizes = cells["n_weights"].astype(int)
    if sizes.nunique() == 1:
        return f"Every cell has the same number of weights ({sizes.iloc[0]})."
    listed = ", ".join(f"{c} {n}" for c, n in zip(cells["cell"], sizes, strict=True))
    return (
        f"The cells differ in size (weights: {listed}). A difference between them may come "
        "from the number of weights as much as from how they are arranged."
    )


def instability_note(cells: pd.DataFrame) -> str | None:
    """Names the cells whose seeds were still unstable at the end of training."""
    if "unstable_fraction" not in cells:
        return None
    shaky = cells[cells["unstable_fraction"] > UNSTABLE_WARNING]
    if shaky.empty:
        return None
    listed = ", ".join(f"{r.cell} {r.unstable_fraction:.0%}" for r in shaky.itertuples())
    return (
        "Unstable ends: in some cells many seeds were still moving at the end, one of their "
        f"last two updates changing the training error by more than 1% ({listed}); "
        "comparisons involving them carry a caution."
    )


def seed1_note(cells: pd.DataFrame, pairs: pd.DataFrame | None = None) -> str | None:
    """How the single-seed comparison (the tutorial's method) reads against all seeds.

    A pair that seed 1 orders differently from the medians contradicts the sweep only when
    the sweep decided that pair; a swap within an undecided or equivalent pair does not.
    """
    if cells["seed1_error"].isna().any() or len(cells) < 2:
        return None
    by_seed1 = cells.sort_values("seed1_error", kind="stable")["cell"].tolist()
    by_median = cells["cell"].tolist()
    ranks = ", ".join(
        f"{r.cell}: seed 1 is #{int(r.seed1_rank)} of {r.n_seeds}" for r in cells.itertuples()
    )
    text = f"Seed 1 alone (the tutorial's method) orders the cells {' < '.join(by_seed1)}. "
    swapped = [
        (a, b) for a, b in combinations(by_median, 2) if by_seed1.index(a) > by_seed1.index(b)
    ]
    decisions = analysis.headline_decisions(pairs) if pairs is not None and not pairs.empty else {}
    if not swapped:
        text += "That is the order of the medians over all seeds. "
    else:
        contradicted = [
            f"{b} below {a}"
            for a, b in swapped
            if decisions.get((a, b)) in ("a_better", "b_better")
        ]
        loose = [
            f"{a} vs {b}"
            for a, b in swapped
            if decisions.get((a, b)) not in ("a_better", "b_better")
        ]
        if loose:
            text += (
                f"It swaps {_join(loose)} against the medians, a pair the seeds do not order "
                "(undecided or equivalent), so that is no different answer. "
            )
        if contradicted:
            text += f"It puts {_join(contradicted)}, which the seeds contradict. "
    return text + f"Where seed 1 falls within its own cell: {ranks}."


def _level(row: Mapping[str, object]) -> str:
    """The confidence of a row's interval as a percentage (its test's Holm level)."""
    return f"{100 * float(row['ci_level']):.4g}%"


def _seeds_text(row: Mapping[str, object], method: str) -> str:
    """The a priori seeds-needed range of an undecided row, capped."""
    low, high = float(row["seeds_needed"]), float(row["seeds_needed_high"])
    if not np.isfinite(low):
        return (
            f"More than {core.SEEDS_CAP:,} seeds per cell would be needed to decide it ({method})."
        )
    upper = f"more than {core.SEEDS_CAP:,}" if not np.isfinite(high) else f"{high:,.0f}"
    span = f"{low:,.0f}" if low == high else f"{low:,.0f} to {upper}"
    return f"Deciding it would take about {span} seeds per cell ({method})."


def pair_sentence(
    row: Mapping[str, object],
    margin: tuple[float, float] = MARGIN,
    rate_margin: float = core.RATE_MARGIN,
    smallest_effect: float = analysis.SMALLEST_EFFECT,
) -> str:
    """One sentence for one part of one pair (a row of ``analysis.compare_metrics``)."""
    a, b, part = row["a"], row["b"], row["part"]
    decision = Decision(row["decision"])
    what = "held-out error" if row.get("metric") == "holdout_error" else "error"
    label = part.capitalize()
    if decision == Decision.NOT_APPLICABLE:
        return f"{label}, {a} vs {b}: left out: {reason_words(str(row['reason']))}."
    low, high = float(row["ci_low"]), float(row["ci_high"])
    estimate = float(row["estimate"])
    level = f"{_level(row)} interval"
    evidence = f"{TESTS.get(str(row['test']), row['test'])}, p_holm {_p(float(row['p_holm']))}"
    warning = _warning(row)
    if part == "reliability":
        noun, verb = success_words(bool(row.get("solvable", True)))
        rate_a, rate_b = float(row["rate_a"]), float(row["rate_b"])
        if decision == Decision.B_BETTER:
            a, b, rate_a, rate_b = b, a, rate_b, rate_a
            estimate, low, high = -estimate, -high, -low
        rates = (
            f"{rate_a:.0%} vs {rate_b:.0%}, difference {_points(estimate)} points "
            f"[{_points(low)}, {_points(high)}] ({level})"
        )
        if decision == Decision.EQUIVALENT:
            return (
                f"{label}: {a} and {b} are practically equivalent in {noun} ({rates}, inside "
                f"+-{rate_margin * 100:.0f} points).{warning}"
            )
        if decision.separates:
            return f"{label}: {a} {verb} more often than {b} ({rates}; {evidence}).{warning}"
        needed = _seeds_text(row, "a priori, normal approximation for two proportions")
        return f"{label}: undecided between {a} and {b} ({rates}; {evidence}). {needed}{warning}"
    who = "seeds that succeeded" if part == "quality" else "all seeds"
    scope = f"{label} ({who}: {row['n_a']} of {a}, {row['n_b']} of {b})"
    bounds = ""
    trimmed = part == "quality" and np.isfinite(row.get("bound_low", np.nan))
    if trimmed and row["bound_low"] != row["bound_high"]:
        bounds = f", trimming bounds {row['bound_low']:.2f} to {row['bound_high']:.2f}"
    ratio = ""
    if np.isfinite(row.get("median_ratio", np.nan)):
        ratio = (
            f", median ratio {row['median_ratio']:.3g} "
            f"[{row['ratio_ci_low']:.3g}, {row['ratio_ci_high']:.3g}]"
        )
    effect = f"P({a}<{b}) = {estimate:.2f}{bounds} [{low:.2f}, {high:.2f}] ({level}){ratio}"
    if decision == Decision.B_BETTER:
        # Say it from the winner's side: P(B<A) = 1 - P(A<B), and the inverse ratio.
        ratio = ""
        if np.isfinite(row.get("median_ratio", np.nan)) and row["ratio_ci_low"] > 0:
            ratio = (
                f", median ratio {1 / row['median_ratio']:.3g} "
                f"[{1 / row['ratio_ci_high']:.3g}, {1 / row['ratio_ci_low']:.3g}]"
            )
        if bounds:
            bounds = f", trimming bounds {1 - row['bound_high']:.2f} to {1 - row['bound_low']:.2f}"
        effect = (
            f"P({b}<{a}) = {1 - estimate:.2f}{bounds} [{1 - high:.2f}, {1 - low:.2f}] "
            f"({level}){ratio}"
        )
    if decision == Decision.EQUIVALENT:
        return (
            f"{scope}: practically equivalent in {what} ({effect}, inside "
            f"[{margin[0]:.2f}, {margin[1]:.2f}]).{warning}"
        )
    if decision.separates:
        lower, higher = (a, b) if decision == Decision.A_BETTER else (b, a)
        both = ", both trimming bounds agreeing" if bounds else ""
        return (
            f"{scope}: {lower} ends with lower {what} than {higher}{both} ({effect}; "
            f"{evidence}).{warning}"
        )
    needed = _seeds_text(
        row,
        f"a priori, Noether's formula at P(A<B) = 0.5 and at {smallest_effect}"
        + (", divided by the lower success rate" if part == "quality" else ""),
    )
    return (
        f"{scope}: undecided: P({a}<{b}) = {estimate:.2f}{bounds}, between {low:.2f} and "
        f"{high:.2f} ({level}; {evidence}). {needed}{warning}"
    )


def _warning(row: Mapping[str, object]) -> str:
    shaky = [
        (cell, float(row.get(f"unstable_{side}", 0.0) or 0.0))
        for cell, side in ((row["a"], "a"), (row["b"], "b"))
    ]
    shaky = [(c, f) for c, f in shaky if f > UNSTABLE_WARNING]
    if not shaky:
        return ""
    cells = " and ".join(f"{fraction:.0%} of {cell}'s" for cell, fraction in shaky)
    return (
        f" Caution: {cells} seeds were still unstable at the end (an update moved their "
        "error by >1%)."
    )


def with_sentences(
    pairs: pd.DataFrame,
    margin: tuple[float, float] = MARGIN,
    rate_margin: float = core.RATE_MARGIN,
    smallest_effect: float = analysis.SMALLEST_EFFECT,
) -> pd.DataFrame:
    """The pairwise table with a ``sentence`` column."""
    if pairs.empty:
        return pairs
    return pairs.assign(
        sentence=[
            pair_sentence(r, margin, rate_margin, smallest_effect) for r in pairs.to_dict("records")
        ]
    )


PART_WORDS = {
    "reliability": ("Reliability ({noun})", "{x} {verb} more often than {y}"),
    "quality": (
        "Quality ({what} of the seeds that succeeded, within trimming bounds)",
        "{x} ends lower than {y}",
    ),
    "pooled": ("Pooled ({what} of all seeds)", "{x} ends lower than {y}"),
}


def part_summary(
    pairs: pd.DataFrame, part: str, metric: str = "final_error", solvable_cells: bool = True
) -> str | None:
    """One sentence on one part over every pair: what is decided, equivalent, undecided."""
    rows = pairs[pairs["part"] == part]
    if "metric" in rows:
        rows = rows[rows["metric"] == metric]
    if rows.empty:
        return None
    noun, verb = success_words(solvable_cells)
    what = METRICS.get(metric, metric).replace("final ", "")
    title, phrase = PART_WORDS[part]
    label = title.format(noun=noun, what=what)
    applicable = rows[rows["decision"] != Decision.NOT_APPLICABLE]
    if applicable.empty:
        reasons = sorted({reason_words(r) for r in rows["reason"]})
        return f"{label}: left out for every pair ({'; '.join(reasons)})."
    better = []
    for row in applicable.itertuples():
        if Decision(row.decision).separates:
            first, second = (row.a, row.b) if row.decision == Decision.A_BETTER else (row.b, row.a)
            better.append(phrase.format(x=first, y=second, verb=verb))
    equivalent = [
        f"{r.a} and {r.b}" for r in applicable.itertuples() if r.decision == Decision.EQUIVALENT
    ]
    undecided = [
        f"{r.a} vs {r.b}" for r in applicable.itertuples() if r.decision == Decision.UNDECIDED
    ]
    pieces = list(better)
    if equivalent:
        pieces.append("practically equivalent: " + ", ".join(equivalent))
    if undecided:
        pieces.append("undecided: " + ", ".join(undecided))
    left_out = rows[rows["decision"] == Decision.NOT_APPLICABLE]
    if len(left_out):
        why = "; ".join(sorted({reason_words(r) for r in left_out["reason"]}))
        pieces.append(f"left out for {len(left_out)} pair(s) ({why})")
    return f"{label}: " + "; ".join(pieces) + "."


def _family_size(pairs: pd.DataFrame) -> int | None:
    """How many tests the verdict's Holm family holds (None: no test was made)."""
    if pairs.empty or not pairs["p_value"].notna().any():
        return None
    tested = pairs[pairs["p_value"].notna()]
    return int(tested["family_size"].iloc[0]) if "family_size" in tested else 2 * len(tested)


def family_sentence(pairs: pd.DataFrame, alpha: float = ALPHA) -> str | None:
    """States the Holm family the verdict's tests belong to, and what the intervals are."""
    size = _family_size(pairs)
    if size is None:
        return None
    tested = pairs[pairs["p_value"].notna()]
    parts = _join([p for p in PARTS if (tested["part"] == p).any()])
    metrics = tested["metric"].unique() if "metric" in tested else ["final_error"]
    where = " and ".join(METRICS.get(m, m) for m in metrics)
    return (
        f"One Holm family holds every test these sentences rely on: {size} "
        f"test{'' if size == 1 else 's'} (a difference test and an equivalence test for "
        f"the {parts} parts of every pair, on the {where}), family-wise alpha = {alpha}. "
        "Each interval is at its test's Holm level, so it agrees with the decision beside "
        "it: a 'better' interval excludes no-difference, an 'equivalent' one (at 1 - 2 x "
        "level, as two one-sided tests) lies inside the margin, an 'undecided' one does "
        "neither. Its confidence is printed with it."
    )


def _decision_word(winner: str | None) -> str:
    if winner in (None, Decision.UNDECIDED):
        return "undecided"
    if winner == Decision.EQUIVALENT:
        return "equivalent"
    return f"{winner} lower"


def robustness_sentence(stability: robust.Stability | None) -> Paragraph | None:
    """The robustness line from ``robust.robustness``'s ``Stability`` (and a short form)."""
    if stability is None:
        return None
    checkpoints, at = stability.checkpoints, stability.iterations
    shown = ", ".join(f"{f:.0%}" for f in checkpoints)
    skipped = ", ".join(f"{f:.0%}" for f in stability.skipped)
    if len(checkpoints) < 2:  # every checkpoint before the end lacked a logged point
        text = (
            f"Robustness: not checked: no logged point falls at {skipped} of the iterations "
            "(log_every is coarser), so the verdict is read at the end only."
        )
        return Paragraph(text, "robustness")
    # A checkpoint with no logged point is said to be left out, not read off an earlier one.
    unlogged = ""
    if stability.skipped:
        unlogged = (
            f" (not at {_join([f'{f:.0%}' for f in stability.skipped])}, where no point is logged)"
        )
    if stability.earlier is None:
        text = (
            f"Robustness: the decision of every pair on all seeds' training error is the same "
            f"at {shown} of the iterations{unlogged}: stable from iteration "
            f"{at[stability.stable_from]:,} on."
        )
        return Paragraph(text, "robustness")
    earlier, end = stability.earlier, checkpoints[-1]
    changes = [
        f"{' vs '.join(key)} ({_decision_word(before)} at {earlier:.0%}, "
        f"{_decision_word(after)} later)"
        for key, before, after in stability.changes
    ]
    if stability.stable_from == end:
        lead = "Robustness: the verdict on all seeds' training error changes between "
        lead += f"{earlier:.0%} of the iterations and the end{unlogged}"
    else:
        lead = (
            f"Robustness: the verdict on all seeds' training error is stable from iteration "
            f"{at[stability.stable_from]:,} ({stability.stable_from:.0%}) on; it differs at "
            f"{earlier:.0%}{unlogged}"
        )
    short = f"{lead}: {len(changes)} pair decision(s) differ; the pair table gives the final ones."
    return Paragraph(lead + ": " + "; ".join(changes) + ".", "robustness", short)


def _size_paragraph(cells: pd.DataFrame) -> Paragraph | None:
    text = size_note(cells)
    if text is None:
        return None
    if cells["n_weights"].nunique() == 1:
        return Paragraph(text, "size")
    low, high = int(cells["n_weights"].min()), int(cells["n_weights"].max())
    short = (
        f"The cells differ in size ({low} to {high} weights; each cell's count is in the cell "
        "table). A difference between them may come from the number of weights as much as "
        "from how they are arranged."
    )
    return Paragraph(text, "size", short)


def verdict_paragraphs(
    cells: pd.DataFrame,
    pairs: pd.DataFrame,
    metric: str = "final_error",
    stability: robust.Stability | None = None,
) -> list[Paragraph]:
    """The verdict on one metric as paragraphs: parts in order, then cautions."""
    if len(cells) < 2:
        return [Paragraph("Only one cell: nothing to compare.", "order")]
    what = METRICS.get(metric, metric).replace("final ", "")
    paragraphs = [
        Paragraph(
            f"From lowest to highest median {what}: {_join(cells['cell'].tolist())}.", "order"
        )
    ]
    if metric == "final_error" and "solvable" in cells and not cells["solvable"].all():
        paragraphs.append(
            Paragraph(
                "The data is noisy: no network should fit every row, so 'solved' does not "
                "apply. A seed counts as a success when its training did not diverge; "
                "reliability compares how often seeds diverge, and quality compares the "
                "seeds that did not.",
                "noisy",
            )
        )
    chosen = pairs[pairs["metric"] == metric] if "metric" in pairs else pairs
    solvable_cells = bool(cells["solvable"].all()) if "solvable" in cells else True
    for part in PARTS:
        summary = part_summary(chosen, part, metric, solvable_cells)
        if summary:
            paragraphs.append(Paragraph(summary, f"part:{part}"))
    instability = instability_note(cells)
    for note in (
        Paragraph(instability, "instability") if instability else None,
        _size_paragraph(cells) if metric == "final_error" else None,
        robustness_sentence(stability) if metric == "final_error" else None,
    ):
        if note:
            paragraphs.append(note)
    return paragraphs


def methods_text(
    margin: tuple[float, float] = MARGIN,
    alpha: float = ALPHA,
    rate_margin: float = core.RATE_MARGIN,
    smallest_effect: float = analysis.SMALLEST_EFFECT,
    seed_streams: Sequence[str] = ("shared",),
) -> str:
    """How the verdict was computed, in one paragraph for the report.

    ``seed_streams``: the sweep's values of the ``seed_stream`` setting (which decide whether
    cells of different shapes share their first-layer weights).
    """
    return (
        "Reliability: the success rate of each cell with a Wilson score interval; the "
        "difference of two rates with the Miettinen-Nurminen score test, whose interval is "
        "the set of differences that test keeps. Quality: among the seeds that succeeded, "
        "P(A<B) (the chance that a random seed of A ends below a random seed of B, ties "
        "counting half). Which seeds succeed depends on the shape, so the seeds that "
        "succeeded are different sub-populations of initialisations in the two cells, and a "
        "shape that rescues hard initialisations adds late, high-error solvers to its own "
        "sample. The quality part therefore compares the seeds that would succeed in both "
        "cells, which can only be bounded: Lee (2009) trimming keeps the best, or the worst, "
        "share of the more reliable cell's successes (rate of the other cell / its own "
        "rate), giving a lower and an upper bound of P(A<B). Quality calls a cell better "
        "only when both bounds' tests agree (the larger p), and only with at least "
        f"{analysis.MIN_SUCCESSES} successes per cell after trimming; it is the quality of "
        "the runs that work among seeds both shapes can train, not a ranking of all seeds. "
        "Pooled: P(A<B) over all seeds, a diverged seed counting as the worst error; seeds "
        "are randomised, so this comparison has no selection in it and is the one to quote "
        "first. Rank tests: Brunner-Munzel's statistic on the logit scale (range "
        "preserving), with Student's t, or with the studentized permutation distribution "
        f"({core.PERMUTATIONS} permutations, Neubert and Brunner 2007) where a cell has "
        f"fewer than {core.SMALL_SAMPLE} values; the ratio of medians with a percentile "
        f"bootstrap interval ({analysis.BOOTSTRAP_RESAMPLES} resamples, fixed seed, at the "
        "row's level). Equivalence: two one-sided tests against the margin (P(A<B) in "
        f"[{margin[0]:.2f}, {margin[1]:.2f}]; a rate difference within "
        f"+-{rate_margin * 100:.0f} points). Every difference test and every equivalence "
        f"test forms one Holm family at alpha = {alpha}: a part is 'practically equivalent' "
        "when its adjusted equivalence p is below alpha, else 'better' when its adjusted "
        "difference p is, else 'undecided'. Intervals are at each test's Holm level (1 - 2 x "
        "level for equivalence), so none contradicts its decision. The rate margin is its "
        f"own judgement, not the P(A<B) margin's half-width: at solve rates of 70-90%, "
        f"{rate_margin * 100:.0f} points changes the seeds trained per working network by "
        "under 10% (1/0.80 = 1.25 against 1/0.86 = 1.16). For undecided parts, the seeds "
        "per cell that "
        "would decide them are computed a priori (no observed effect enters): from the "
        "seeds to show equivalence if the cells are the same to the seeds to show a "
        f"difference at the declared smallest effect of interest (P(A<B) = {smallest_effect}, "
        "Vargha and Delaney's 'medium'; "
        "twice the rate margin for rates), by Noether's formula and the normal approximation "
        "for two proportions, at 80% power and alpha divided by the family size; never "
        f"fewer than the seeds already trained, 'more than {core.SEEDS_CAP:,}' beyond. "
        + stream_sentence(seed_streams)
    )


def stream_sentence(seed_streams: Sequence[str]) -> str:
    """Which seed stream the cells used, and what that means for pairing (``seed_stream``)."""
    shared = (
        "cells with the same first width share their first-layer weights seed by seed "
        "(seed s starts from np.random.seed(s) and draws its first layer first)"
    )
    per_cell = (
        "each shape's seed s draws from its own stream of (s, the layer sizes), so cells of "
        "different shapes start from independent draws"
    )
    if set(seed_streams) == {"per_cell"}:
        return f"Seeds (seed_stream=per_cell): {per_cell}; the comparisons are unpaired."
    if "per_cell" in seed_streams:
        return (
            f"Seeds: with seed_stream=shared {shared}; with seed_stream=per_cell {per_cell}. "
            "The comparisons treat cells as independent samples, which a positive pairing "
            "can only make conservative."
        )
    return (
        f"Seeds (seed_stream=shared): {shared}; the comparisons treat cells as independent "
        "samples, which such a positive pairing can only make conservative (seed_stream="
        "per_cell draws independently)."
    )


def seed1_paragraph(cells: pd.DataFrame, pairs: pd.DataFrame | None = None) -> Paragraph | None:
    """``seed1_note`` as a paragraph of kind "seed1"."""
    text = seed1_note(cells, pairs)
    return Paragraph(text, "seed1") if text else None


def family_paragraph(pairs: pd.DataFrame, alpha: float = ALPHA) -> Paragraph | None:
    """``family_sentence`` as a paragraph of kind "family".

    Its short form, for many cells, leaves out what the intervals mean: a many-cell verdict
    prints counts, and the intervals sit in the pair table.
    """
    text = family_sentence(pairs, alpha)
    if not text:
        return None
    short = (
        f"One Holm family holds all {_family_size(pairs)} tests (alpha = {alpha}); the pair "
        "table's intervals are at each test's Holm level."
    )
    return Paragraph(text, "family", short)


# Paragraph kinds that list pairs or cells one by one: a report with many cells replaces
# them by its grouped summary (the pair table keeps every pair).
LISTING_KINDS = ("order", "part:reliability", "part:quality", "part:pooled", "seed1")


def many_cell_paragraphs(paragraphs: Sequence[str]) -> list[str]:
    """A verdict's paragraphs for many cells: listings dropped, long cautions shortened."""
    kept = []
    for paragraph in paragraphs:
        kind = getattr(paragraph, "kind", None)
        if kind in LISTING_KINDS:
            continue
        kept.append(getattr(paragraph, "short", paragraph))
    return kept


# Many cells: groups and counts instead of pair lists (from nnsweep.stats.grouping's data).


def seed1_line(cells: pd.DataFrame) -> str | None:
    """One line on the tutorial's method (one seed per cell) against all seeds."""
    agreement = grouping.seed1_agreement(cells)
    if agreement is None:
        return None
    rho, count = agreement
    if not np.isfinite(rho):
        return None
    return (
        "Seed 1's order (one seed per cell, the tutorial's method) agrees with the medians' "
        f"order with Spearman ρ = {rho:.2f} over {count} cells; each cell's seed-1 rank is in "
        "the cell table."
    )


def _names(cells: Sequence[str], limit: int) -> str:
    if len(cells) <= limit:
        return ", ".join(cells)
    return ", ".join(cells[:limit]) + f" and {len(cells) - limit} more"


def grouped_verdict(
    order: Sequence[str],
    separated: set[grouping.Pair],
    what: str = "final error",
    limit: int = 8,
    counts: bool = True,
) -> str:
    """The verdict for many cells: the best group, the worst group, and the letters.

    At most ``limit`` names per group are written out; the rest are counted.
    """
    if len(order) < 2:
        return "Only one cell: nothing to compare."
    if not separated:
        return (
            f"No cell can be told apart from any other on {what}: the sweep does not support "
            "any ranking."
        )
    best, worst = grouping.best_and_worst_groups(order, separated)
    parts = [
        f"Best on {what}: {order[0]}; {len(best) - 1} other cell(s) cannot be told apart "
        f"from it" + (f" ({_names(best[1:], limit)})." if len(best) > 1 else "."),
        f"Worst: {order[-1]}; {len(worst) - 1} other cell(s) cannot be told apart from it"
        + (f" ({_names(worst[1:], limit)})." if len(worst) > 1 else "."),
    ]
    if set(best) & set(worst):
        parts.append("The two groups overlap: the ranking between them is not settled.")
    if counts:
        parts.append(
            f"{len(separated)} of {len(order) * (len(order) - 1) // 2} pairs are told apart; "
            "in the cell table, cells that share a letter cannot be told apart."
        )
    else:
        parts.append(
            "In the cell table, cells that share a letter cannot be told apart (pooled comparison)."
        )
    return " ".join(parts)


DECISION_WORDS = {
    "a_better": "told apart",
    "b_better": "told apart",
    "equivalent": "practically equivalent",
    "undecided": "undecided",
    "not_applicable": "left out",
}


# The pairwise table's decision column as a reader reads it; pairwise.csv keeps the codes.
DECISION_LABELS = {
    Decision.A_BETTER: "A better",
    Decision.B_BETTER: "B better",
    Decision.EQUIVALENT: "practically equivalent",
    Decision.UNDECIDED: "undecided",
    Decision.NOT_APPLICABLE: "left out",
}


def decisions_in_words(pairs: pd.DataFrame) -> pd.DataFrame:
    """``pairs`` with its decision codes ("a_better") replaced by ``DECISION_LABELS``."""
    if "decision" not in pairs:
        return pairs
    return pairs.assign(decision=pairs["decision"].map(lambda d: DECISION_LABELS.get(d, d)))


def decision_counts(rows: pd.DataFrame) -> str:
    """'95 of 210 pairs told apart, 12 practically equivalent, 103 undecided'."""
    words = rows["decision"].map(DECISION_WORDS).value_counts()
    pieces = [f"{words.get('told apart', 0)} of {len(rows)} pairs told apart"]
    pieces += [
        f"{words[word]} {word}"
        for word in ("practically equivalent", "undecided", "left out")
        if words.get(word, 0)
    ]
    return ", ".join(pieces)


def many_cell_summary(
    order: Sequence[str], pairs: pd.DataFrame, labels: dict[str, str], what: str
) -> list[str]:
    """A verdict for many cells: the best and worst groups on the pooled comparison, then
    one line of counts per part (``labels``: part -> its title), instead of pair lists."""
    paragraphs = [
        f"{len(order)} cells, ranked in the cell table and the ranked figure. "
        + grouped_verdict(order, grouping.separated_pairs(pairs, "pooled"), what, counts=False)
    ]
    for part, label in labels.items():
        rows = pairs[pairs["part"] == part] if "part" in pairs else pairs
        if len(rows):
            paragraphs.append(f"{label}: {decision_counts(rows)}.")
    if len(paragraphs) > 1:
        paragraphs[-1] = paragraphs[-1][:-1] + " (every pair in the pair table)."
    return paragraphs


# Says what the columns that placement_report.cell_table_extras adds to the Cells table mean.
GROUP_COLUMNS_NOTE = (
    "'Group' letters come from the pooled comparison (all seeds): cells that share a letter are "
    "not told apart; two cells with no letter in common are (one is decided better). 'Seed 1 "
    "order among cells' is the cell's place if seed 1 alone had been trained, as the tutorial did."
)
