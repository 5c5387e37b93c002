"""Sentences from the placement results (``nnsweep.stats.placement``): words only, no numbers
computed here beyond turning log effects into factors.

Rules the sentences keep:

* "What matters" names the descriptor that explains a part best, and says so plainly when
  it is not a clear winner (best in fewer than ``CLEAR_WINNER`` of the shape-level
  resamples).
* Front-loading is always reported twice: alone, and beside what matters.
* A decided call whose interval nearly reaches "no change", or whose trend changes sign
  over training, is called fragile.
* "No detectable difference" is never printed: an undecided part is "undecided", and an
  undecided median trend is explained by the parts when one of them is decided.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from nnsweep.stats import core
from nnsweep.stats.placement import BudgetResult, Direction, Effect, Part

CLEAR_WINNER = 0.8  # a descriptor best in fewer resamples than this is "not a clear winner"


def descriptor_words(name: str, depth: int) -> str:
    """'the last layer's width', 'front-loading', ..."""
    if name == "front_loading":
        return "front-loading"
    if name == "log_narrowest":
        return "the narrowest layer's width"
    if name == "log_weights":
        return "the weight count"
    k = int(name.removeprefix("log_w"))
    if k == 1:
        return "the first layer's width"
    if k == depth:
        return "the last layer's width"
    if depth == 3:
        return "the middle layer's width"
    return f"layer {k}'s width"


def _range_words(name: str) -> str:
    if name == "front_loading":
        return "from the least to the most front-loaded shape"
    if name == "log_weights":
        return "from the fewest to the most weights"
    return "from the narrowest to the widest"


def _interval(low: float, high: float, log: bool, signed: bool = False) -> str:
    if log:
        return f"[{np.exp(low):.3g}, {np.exp(high):.3g}]"
    if signed:
        return f"[{low:+.3f}, {high:+.3f}]"
    return f"[{low:.2f}, {high:.2f}]"


def level(confidence: float) -> str:
    """'95%', '99.88%': a confidence with the digits it needs."""
    text = f"{confidence * 100:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def effect_size(effect: Effect, result: BudgetResult) -> str:
    """The effect over the descriptor's range with its shape-level interval."""
    span = _range_words(effect.descriptor)
    if effect.part == "solve":
        return (
            f"odds of solving x{np.exp(effect.estimate):.2f} {span}, {level(effect.confidence)} CI "
            f"{_interval(effect.low, effect.high, log=True)}"
        )
    if effect.part in ("quality", "floor") or not result.metric.higher_is_better:
        return (
            f"x{np.exp(effect.estimate):.2f} the {result.metric.label} {span}, "
            f"{level(effect.confidence)} CI "
            f"{_interval(effect.low, effect.high, log=True)}"
        )
    return (
        f"{effect.estimate:+.3f} {result.metric.label} {span}, {level(effect.confidence)} CI "
        f"{_interval(effect.low, effect.high, log=False, signed=True)}"
    )


def _verb(effect: Effect) -> str:
    return {
        Direction.HELPS: "helps",
        Direction.HURTS: "hurts",
        Direction.UNDECIDED: "is undecided",
        Direction.NOT_APPLICABLE: "does not apply",
    }[effect.direction]


FRAGILE_WORDS = "fragile: the interval's end nearest no change is close to it"


def _sized(effect: Effect, result: BudgetResult) -> str:
    """'(x0.81 the final error ..., 95% CI [..]; fragile: ...)'."""
    fragile = f"; {FRAGILE_WORDS}" if effect.fragile else ""
    return f"({effect_size(effect, result)}{fragile})"


def part_subject(part: Part, result: BudgetResult) -> str:
    if part.part == "solve":
        return "how often seeds solve the task"
    if part.part == "quality":
        return f"the {result.metric.label} of the seeds that solved"
    return f"the {result.metric.label} of every seed"


def _what_matters(part: Part, result: BudgetResult) -> str:
    depth = int(result.settings.get("depth", 3))
    best = descriptor_words(part.best, depth)
    front = part.explained.get("front_loading", np.nan)
    text = (
        f"for {part_subject(part, result)}, {best} "
        f"({part.explained[part.best]:.0%} of the between-shape variation alone"
    )
    if part.best != "front_loading" and np.isfinite(front):
        text += f"; front-loading {front:.0%}"
    text += ")"
    if part.best_stability < CLEAR_WINNER:
        runner = sorted(
            (d for d in part.explained if d != part.best),
            key=lambda d: -np.nan_to_num(part.explained[d], nan=-np.inf),
        )[0]
        text += (
            f", though not a clear winner (best in {part.best_stability:.0%} of the "
            f"shape-level resamples; next: {descriptor_words(runner, depth)}, "
            f"{part.explained[runner]:.0%}; all widths together {part.all_widths_explained:.0%})"
        )
    return text


def part_sentence(part: Part, result: BudgetResult) -> str:
    """What explains one part, the size of its effect, and front-loading alone and beside it."""
    depth = int(result.settings.get("depth", 3))
    best = descriptor_words(part.best, depth)
    subject = part_subject(part, result)
    caveat = " (a description of the runs that worked, not a causal effect)" * (
        part.part == "quality"
    )
    text = (
        f"On {subject}{caveat}, {best} {_verb(part.best_effect)} "
        f"{_sized(part.best_effect, result)}."
    )
    if part.front_alone is not None and part.best != "front_loading":
        text += f" Front-loading alone {_verb(part.front_alone)} {_sized(part.front_alone, result)}"
        adjusted = part.front_adjusted
        if adjusted is not None:
            reversed_ = {part.front_alone.direction, adjusted.direction} == {
                Direction.HELPS,
                Direction.HURTS,
            }
            text += (
                f"; beside {best} it {_verb(adjusted)}"
                f"{', the sign reversed' if reversed_ else ''} {_sized(adjusted, result)}"
            )
        text += "."
    if part.selection_free is not None:
        text += " " + selection_free_sentence(part, result)
    return text


def selection_free_sentence(part: Part, result: BudgetResult) -> str:
    """The quality part's selection-free check, and whether it agrees."""
    depth = int(result.settings.get("depth", 3))
    check = part.selection_free
    agrees = check.direction is part.best_effect.direction
    verdict = (
        "agrees"
        if agrees
        else f"does not agree ({_verb(check)} there), so the quality call rests on the "
        "seeds that solved"
    )
    text = (
        f"Selection-free check, on the {part.tau:.0%} quantile of every seed's "
        f"{result.metric.label} (below every shape's solve rate): "
        f"{descriptor_words(part.best, depth)} {_verb(check)} {_sized(check, result)}, which "
        f"{verdict}"
    )
    front = part.selection_free_front
    if front is not None and part.best != "front_loading":
        text += f"; front-loading alone {_verb(front)} there {_sized(front, result)}"
    return text + "."


def trend_sentence(result: BudgetResult) -> str:
    """The typical seed against front-loading, read together with the parts."""
    t = result.trend
    statistic = "mean" if result.metric.higher_is_better else "median"
    interval = (
        f"shape-level {level(t.confidence)} CI [{t.low:.2f}, {t.high:.2f}]; "
        f"seeds only [{t.seed_low:.2f}, {t.seed_high:.2f}]"
    )
    head = (
        f"The {statistic} {result.metric.label} over all seeds against front-loading: "
        f"ρ = {t.rho:.2f} ({interval})"
    )
    decided = [
        (p, p.front_alone)
        for p in result.parts
        if p.front_alone is not None
        and p.front_alone.direction in (Direction.HELPS, Direction.HURTS)
    ]
    if t.direction is Direction.UNDECIDED:
        if decided:
            said = "; ".join(
                f"front-loading {_verb(e)} {part_subject(p, result)}" for p, e in decided
            )
            opposite = len({e.direction for _, e in decided}) > 1
            return (
                f"{head}: undecided, which is not 'no difference': "
                f"{said}{', and the two parts pull in opposite directions' if opposite else ''}."
            )
        return f"{head}: undecided, and so is front-loading on every part."
    flips = result.flips_over_training
    fragile = ""
    if t.fragile or flips:
        reasons = []
        if t.fragile:
            reasons.append("its interval nearly reaches 0")
        if flips:
            reasons.append("its direction changes over training")
        fragile = f" (fragile: {' and '.join(reasons)})"
    verb = {Direction.HELPS: "helps", Direction.HURTS: "hurts"}[t.direction]
    return f"{head}: front-loading {verb} the typical seed{fragile}."


def over_training_sentence(result: BudgetResult) -> str | None:
    if not result.over_training:
        return None
    points = ", ".join(
        f"{iteration:,}: {t.rho:+.2f} {t.direction.value}" for iteration, t in result.over_training
    )
    flips = " Its direction changes over training." if result.flips_over_training else ""
    return f"ρ of the median training error with front-loading over training: {points}.{flips}"


def budget_title(result: BudgetResult) -> str:
    s = result.settings
    return (
        f"{s.get('dataset')}, {int(s.get('total_neurons', 0))} neurons in "
        f"{int(s.get('depth', 0))} layers ({result.n_shapes} shapes, {result.n_seeds} seeds)"
    )


def budget_paragraphs(result: BudgetResult) -> list[str]:
    """The answer for one budget: what matters, each part, the typical seed, over training."""
    matters = "; ".join(_what_matters(p, result) for p in result.parts)
    family = (
        f" One Holm family holds this budget's {result.family_size} calls (alpha = {core.ALPHA}); "
        "each interval is at its Holm level."
        if result.family_size
        else ""
    )
    lines = [f"**{budget_title(result)}.** What matters: {matters}.{family}"]
    lines += [part_sentence(p, result) for p in result.parts]
    lines.append(trend_sentence(result))
    over = over_training_sentence(result)
    if over:
        lines.append(over)
    return lines


def _listed(names: Sequence[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def summary(results: Sequence[BudgetResult]) -> str | None:
    """One paragraph over every budget: what matters where, and front-loading beside it."""
    if not results:
        return None
    matters, beside = [], []
    short = {"solve": "solving", "quality": "the error of the solved", "metric": "the metric"}
    for r in results:
        where = f"{r.settings.get('dataset')} at {int(r.settings.get('total_neurons', 0))}"
        depth = int(r.settings.get("depth", 3))
        clauses = []
        for p in r.parts:
            clear = "" if p.best_stability >= CLEAR_WINNER else " (not clearly)"
            clauses.append(f"{short[p.part]}: {descriptor_words(p.best, depth)}{clear}")
            effect = p.front_adjusted or p.front_alone
            if effect is None:
                continue
            if p.best == "front_loading":
                beside.append(f"is itself what matters for {short[p.part]} ({where})")
            elif effect.direction in (Direction.HELPS, Direction.HURTS):
                alone = p.front_alone.direction if p.front_alone is not None else None
                if alone is effect.direction:
                    how = "still "
                elif alone in (Direction.HELPS, Direction.HURTS):
                    how = f"reversed (alone it {alone.value}): "
                else:
                    how = "(alone undecided) "
                beside.append(
                    f"{how}{effect.direction.value} {short[p.part]} ({where}"
                    f"{', fragile' if effect.fragile else ''})"
                )
        matters.append(f"{where} neurons, {'; '.join(clauses)}")
    text = "What explains a shape's training best: " + ". ".join(matters) + "."
    if beside:
        text += (
            " Beside it, front-loading "
            + "; ".join(beside)
            + "; on every other part its effect is undecided once what matters is in the model."
        )
    else:
        text += " Once that is in the model, front-loading's effect is undecided on every part."
    return text
