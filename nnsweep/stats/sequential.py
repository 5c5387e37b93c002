"""Sequential decisions for ``n_seeds=auto``: train seeds in rounds until every pair is decided.

Looking at the data after every round and stopping as soon as a test passes inflates false
decisions (at alpha = 0.05, two identical cells drawn from the shipped 8-8-8 seeds are called
different in 9% of simulated sweeps with ten looks, 12% with twenty; see
tests/test_sequential.py). The rule here stays valid however the sweep stops, because every
look gets its own, planned, share of alpha:

* **Alpha spending over planned looks.** A plan of ``max_seeds`` and ``seed_block`` has
  ``K = ceil(max_seeds / seed_block)`` looks; look ``k`` (after ``n_k = min(k * seed_block,
  max_seeds)`` seeds per cell) may spend ``alpha_k = a(t_k) - a(t_{k-1})`` with
  ``t_k = n_k / max_seeds`` and ``a`` an alpha-spending function (Lan-DeMets O'Brien-Fleming
  type by default; see ``SPENDING``). The ``alpha_k`` add up to alpha, so by the union bound
  over looks the chance of any false claim at any look is at most alpha, whatever the data
  and wherever the sweep stops. (Exact group-sequential boundaries would use the correlation
  between looks and be a little tighter; the union bound needs no model of it.)
* **Holm across pairs, at each look.** At look ``k`` every pair contributes two hypotheses,
  "no difference" (P(A<B) = 0.5) and "not practically equivalent" (P(A<B) outside the
  margin), and one Holm step-down at level ``alpha_k`` runs over all of them, decided pairs
  included. So each look's family-wise error is at most ``alpha_k``.
* **A decision is final.** A pair keeps the decision of the first look that made one; cells
  that take part in no undecided pair get no more seeds.

A pair is classified as the report's verdict classifies it (``classify_pairs``, through
``nnsweep.stats.core``): "equivalent" when the equivalence test (two one-sided tests against
the margin) rejects at the look's alpha after Holm, else "a_better" or "b_better" when the
rank test does (lower error is better), else "undecided". The effect is P(A<B) + 0.5 P(A=B),
tested on the logit scale with the Brunner-Munzel standard error; diverged seeds count as
+inf (worst). Intervals are at each test's Holm level within the look (1 - 2 level for an
equivalence), so a printed interval never contradicts its decision.

Everything here takes numpy arrays with a leading batch axis, so the simulation tests run
thousands of simulated sweeps through the very code the real sweep runs with a batch of one.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
from scipy import stats

from nnsweep.stats import core
from nnsweep.stats.decision import Decision

ALPHA = core.ALPHA  # family-wise error of the whole auto sweep: all looks, all pairs
MARGIN = core.MARGIN  # P(A<B) inside this is "practically equivalent"
UNDECIDED = Decision.UNDECIDED
NOT_APPLICABLE = Decision.NOT_APPLICABLE  # a failed cell: nothing to compare
DECIDED = (Decision.A_BETTER, Decision.B_BETTER, Decision.EQUIVALENT)
SMALLEST_EFFECT = 0.64  # P(A<B) worth detecting: the far end of the seeds-needed range


def _obrien_fleming(t: np.ndarray, alpha: float) -> np.ndarray:
    # Lan & DeMets (1983): spends almost nothing early and most of alpha near the end.
    z = stats.norm.isf(alpha / 2)
    with np.errstate(divide="ignore"):
        return 2.0 * stats.norm.sf(z / np.sqrt(t))


def _pocock(t: np.ndarray, alpha: float) -> np.ndarray:
    # Lan & DeMets' Pocock type: spends alpha roughly evenly, a little more early.
    return alpha * np.log1p((math.e - 1.0) * t)


def _bonferroni(t: np.ndarray, alpha: float) -> np.ndarray:
    # In proportion to seeds: alpha / K per look of seed_block seeds.
    return alpha * t


# Cumulative alpha spent by information fraction t in [0, 1] (seeds per cell / max_seeds).
SPENDING: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "obrien_fleming": _obrien_fleming,
    "pocock": _pocock,
    "bonferroni": _bonferroni,
}

RULE_NAMES = {
    "obrien_fleming": "alpha spending over the planned looks (Lan-DeMets O'Brien-Fleming-type "
    "spending function, each look tested at its own share of alpha), Holm across pairs at "
    "every look",
    "pocock": "alpha spending over the planned looks (Lan-DeMets Pocock-type spending "
    "function, each look tested at its own share of alpha), Holm across pairs at every look",
    "bonferroni": "alpha split equally over the planned looks (Bonferroni across looks), "
    "Holm across pairs at every look",
    "naive": "naive repeated testing at the full alpha after every round (NOT valid: for "
    "demonstration only)",
}


@dataclass(frozen=True)
class Plan:
    """The planned looks of an auto sweep and each look's share of alpha."""

    max_seeds: int  # no cell gets more seeds than this
    seed_block: int  # seeds added per cell per round
    alpha: float = ALPHA  # family-wise error over every look and pair
    margin: tuple[float, float] = MARGIN  # practical-equivalence margin of P(A<B)
    spending: str = "obrien_fleming"  # a key of SPENDING, or "naive" (invalid, for tests)

    def __post_init__(self) -> None:
        if self.seed_block < 2 or self.max_seeds < self.seed_block:
            raise ValueError(
                f"need 2 <= seed_block <= max_seeds, got seed_block={self.seed_block}, "
                f"max_seeds={self.max_seeds}"
            )
        if self.spending not in SPENDING and self.spending != "naive":
            raise ValueError(f"spending={self.spending}: choose one of {', '.join(SPENDING)}")

    @property
    def n_looks(self) -> int:
        return math.ceil(self.max_seeds / self.seed_block)

    def seeds_at(self, look: int) -> int:
        """Seeds per active cell after round ``look`` (1-based)."""
        return min(look * self.seed_block, self.max_seeds)

    def look_alpha(self, look: int) -> float:
        """The share of alpha that look ``look`` (1-based) may spend."""
        if self.spending == "naive":
            return self.alpha
        spend = SPENDING[self.spending]
        now, before = self.seeds_at(look) / self.max_seeds, self.seeds_at(look - 1) / self.max_seeds
        return float(spend(np.array(now), self.alpha) - spend(np.array(before), self.alpha))

    @property
    def rule(self) -> str:
        return RULE_NAMES[self.spending]


# --------------------------------------------------------------------------------------
# One look: the effect of every pair and its classification
# --------------------------------------------------------------------------------------


# The one rank effect and the one Holm (nnsweep.stats.core), under their old names here.
RankEffect = core.RankEffect
rank_effect = core.rank_effect


@dataclass(frozen=True)
class LookResult:
    """Every pair at one look; arrays of shape (batch, n_pairs)."""

    estimate: np.ndarray  # P(A<B) + 0.5 P(A=B)
    ci_low: np.ndarray  # interval matching the decision: 1 - 2 level (equivalent), else 1 - level
    ci_high: np.ndarray
    ci_level: np.ndarray  # the confidence of that interval
    p_value: np.ndarray  # rank test of P(A<B) = 0.5
    p_holm: np.ndarray  # Holm-adjusted over the look's family
    p_equivalence: np.ndarray  # two one-sided tests against the margin (the larger p)
    p_equivalence_holm: np.ndarray
    decision: np.ndarray  # Decision values


def classify_pairs(
    samples: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    alpha: float,
    margin: tuple[float, float] = MARGIN,
) -> LookResult:
    """Classify every pair at one look, at family-wise level ``alpha``.

    ``samples[cell]`` has shape (batch, n_cell): errors, +inf for diverged seeds. One Holm
    family holds each pair's difference test and its equivalence test (``core``'s rank
    test on the logit scale), decided by ``core.decide`` as the verdict decides. Each
    pair's interval is at its test's Holm level, so it agrees with the decision.
    """
    tests = [core.rank_test(samples[a], samples[b]) for a, b in pairs]
    estimate = np.stack([t.estimate for t in tests], axis=-1)
    p_value = np.stack([t.p_value() for t in tests], axis=-1)
    p_equivalence = np.stack([t.p_equivalence(margin) for t in tests], axis=-1)
    family = np.concatenate([p_value, p_equivalence], axis=-1)
    adjusted, levels = core.holm(family), core.holm_levels(family, alpha)
    n_pairs = len(pairs)
    p_holm, p_equivalence_holm = adjusted[..., :n_pairs], adjusted[..., n_pairs:]
    decision = core.decide(estimate, 0.5, p_holm, p_equivalence_holm, alpha)
    level = np.where(
        decision == Decision.EQUIVALENT, 2 * levels[..., n_pairs:], levels[..., :n_pairs]
    )
    ends = [t.interval(level[..., k]) for k, t in enumerate(tests)]
    return LookResult(
        estimate=estimate,
        ci_low=np.stack([e[0] for e in ends], axis=-1),
        ci_high=np.stack([e[1] for e in ends], axis=-1),
        ci_level=1.0 - level,
        p_value=p_value,
        p_holm=p_holm,
        p_equivalence=p_equivalence,
        p_equivalence_holm=p_equivalence_holm,
        decision=decision,
    )


# The one place the auto sweep and its simulations get their classification from.
classify = classify_pairs


def seeds_needed(
    level: float,
    n_now: np.ndarray | int,
    margin: tuple[float, float] = MARGIN,
    smallest_effect: float = SMALLEST_EFFECT,
) -> tuple[np.ndarray, np.ndarray]:
    """Seeds per cell that would decide a pair, a priori, as a range (low, high).

    From the seeds to show equivalence if the cells are the same to the seeds to show a
    difference at P(A<B) = ``smallest_effect`` (Noether's formula, 80% power, at ``level``);
    at least one more than ``n_now``; inf beyond ``core.SEEDS_CAP``. No observed effect
    enters, so the range does not swing with the estimate's noise.
    """
    ends = np.array(
        [
            core.rank_seeds_needed(min(0.5 - margin[0], margin[1] - 0.5), level),
            core.rank_seeds_needed(smallest_effect - 0.5, level),
        ]
    )
    capped = core.cap_seeds(ends[:, None], np.atleast_1d(n_now)[None, :])
    return capped.min(axis=0), capped.max(axis=0)


# --------------------------------------------------------------------------------------
# From look to look
# --------------------------------------------------------------------------------------


def all_pairs(cells: Sequence[str]) -> list[tuple[str, str]]:
    """Every pair of cells, in the cells' order."""
    return list(combinations(cells, 2))


@dataclass
class Decisions:
    """The frozen decisions of every pair so far; arrays of shape (batch, n_pairs)."""

    decision: np.ndarray  # "undecided" until a look decides; "not_applicable" for failed cells
    look: np.ndarray  # the look that decided (0 while undecided)

    @classmethod
    def start(cls, batch: int, n_pairs: int) -> Decisions:
        decision = np.full((batch, n_pairs), UNDECIDED, dtype=object)
        return cls(decision=decision, look=np.zeros((batch, n_pairs), dtype=int))

    @property
    def open(self) -> np.ndarray:
        return self.decision == UNDECIDED


def advance(
    plan: Plan,
    look: int,
    samples: Mapping[str, np.ndarray],
    pairs: Sequence[tuple[str, str]],
    decisions: Decisions,
) -> LookResult:
    """Classify every pair at ``look`` and freeze the new decisions into ``decisions``.

    Only pairs still undecided take a decision; decided pairs stay in the Holm family.
    """
    result = classify(samples, pairs, plan.look_alpha(look), plan.margin)
    newly = decisions.open & (result.decision != UNDECIDED)
    decisions.decision[newly] = result.decision[newly]
    decisions.look[newly] = look
    return result


def active_cells(
    cells: Sequence[str], pairs: Sequence[tuple[str, str]], decisions: Decisions
) -> np.ndarray:
    """(batch, n_cells): whether each cell takes part in an undecided pair."""
    index = {cell: i for i, cell in enumerate(cells)}
    active = np.zeros((decisions.decision.shape[0], len(cells)), dtype=bool)
    for p, (a, b) in enumerate(pairs):
        active[:, index[a]] |= decisions.open[:, p]
        active[:, index[b]] |= decisions.open[:, p]
    return active


# --------------------------------------------------------------------------------------
# Simulated auto sweeps: seeds' outcomes drawn from fixed distributions, no training
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Simulation:
    """The outcome of many simulated auto sweeps."""

    plan: Plan
    cells: list[str]
    pairs: list[tuple[str, str]]
    decision: np.ndarray  # (n_sims, n_pairs) final decisions
    look: np.ndarray  # (n_sims, n_pairs) look that decided, 0 if none
    seeds: np.ndarray  # (n_sims, n_cells) seeds each cell ended with
    rounds: np.ndarray = field(repr=False)  # (n_sims,) rounds run

    def rate(self, pair: int, *outcomes: str) -> float:
        """Share of simulated sweeps whose pair ended in one of ``outcomes``."""
        return float(np.isin(self.decision[:, pair], outcomes).mean())


def simulate(
    plan: Plan,
    populations: Mapping[str, np.ndarray],
    n_sims: int,
    seed: int = 0,
) -> Simulation:
    """Run ``n_sims`` auto sweeps whose seeds are drawn (with replacement) from ``populations``.

    Every sweep follows the real one: round 1 gives every cell ``seed_block`` seeds; each
    later round gives the next block only to cells in an undecided pair; a sweep stops when
    no pair is undecided or after the last planned look. Sweeps in the same state (seeds per
    cell) are classified together, through ``advance``, as one batch.
    """
    cells = list(populations)
    pairs = all_pairs(cells)
    rng = np.random.default_rng(seed)
    draws = {
        cell: rng.choice(np.asarray(values, dtype=float), size=(n_sims, plan.max_seeds))
        for cell, values in populations.items()
    }
    decisions = Decisions.start(n_sims, len(pairs))
    seeds = np.zeros((n_sims, len(cells)), dtype=int)
    rounds = np.zeros(n_sims, dtype=int)
    for look in range(1, plan.n_looks + 1):
        active = active_cells(cells, pairs, decisions)
        running = active.any(axis=1)
        if not running.any():
            break
        seeds[active] = plan.seeds_at(look)
        rounds[running] = look
        states, group = np.unique(seeds[running], axis=0, return_inverse=True)
        sims = np.flatnonzero(running)
        for state_index, state in enumerate(states):
            members = sims[group.ravel() == state_index]
            samples = {cell: draws[cell][members, : state[c]] for c, cell in enumerate(cells)}
            sub = Decisions(decisions.decision[members], decisions.look[members])
            advance(plan, look, samples, pairs, sub)
            decisions.decision[members] = sub.decision
            decisions.look[members] = sub.look
    return Simulation(plan, cells, pairs, decisions.decision, decisions.look, seeds, rounds)
