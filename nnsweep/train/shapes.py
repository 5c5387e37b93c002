"""Families of hidden-layer shapes, and the columns that describe a shape.

A sweep can ask for a family instead of listing shapes::

    hydra:
      sweeper:
        params:
          layers: budget(total=32, depth=3, step=4)      # the 21 shapes 4-4-24 ... 24-4-4

``budget(total=T, depth=D, step=S)`` is every shape of ``D`` hidden layers whose widths are
multiples of ``S`` (each at least ``S``) and add up to ``T`` neurons. With ``inputs=`` and
``outputs=`` it may also keep only the shapes whose weight count (no biases) lies within
``min_weights`` .. ``max_weights``. Families and plain shapes mix in one comma list
(``layers: 8-16-8,budget(total=24, depth=3, step=4)``); duplicates are dropped.

Order: shapes are listed as tuples sorted ascending (first layer, then second, ...), so
``4-4-24`` comes first and ``24-4-4`` last: front-loading grows down the list, roughly.

The expansion is textual and happens before Hydra parses a value (``expand_overrides`` for
the command line, ``expand_params`` for a sweep config's ``hydra.sweeper.params``), so the
jobs, ``multirun.yaml`` and the report all see the plain list of shapes.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from nnsweep.errors import ConfigError

SWEPT_KEY = "layers"  # the only setting a family of shapes can stand for
MAX_SHAPES = 2000  # a family larger than this is refused: it is almost surely a typo

_FAMILY = re.compile(r"^budget\((?P<arguments>[^()]*)\)$")
_ARGUMENT = re.compile(r"^(?P<key>[a-z_]+)=(?P<value>-?\d+)$")


@dataclass(frozen=True)
class Budget:
    """A family of shapes: ``depth`` hidden layers whose widths sum to ``total``."""

    total: int  # neurons summed over the hidden layers
    depth: int  # number of hidden layers
    step: int = 1  # every width is a multiple of step, and at least step
    inputs: int | None = None  # input units (needed only by the weight filter)
    outputs: int | None = None  # output units (needed only by the weight filter)
    min_weights: int | None = None  # keep shapes with at least this many weights (no biases)
    max_weights: int | None = None  # keep shapes with at most this many weights (no biases)


_REQUIRED = ("total", "depth")
_KEYS = tuple(f.name for f in fields(Budget))


def parse_budget(text: str, key: str = SWEPT_KEY) -> Budget:
    """A ``budget(total=.., depth=.., step=..)`` spec, validated.

    Raises
    ------
    ConfigError
        One line naming ``key`` and the spec: unknown or repeated argument, a value that is
        not a whole number, a budget no shape fits, or a weight filter without the units.
    """
    spec = "".join(text.split())
    bad = f"{key}={spec}"
    match = _FAMILY.match(spec)
    if match is None:
        raise ConfigError(f"{bad}: write a family as budget(total=32, depth=3, step=4)")
    values: dict[str, int] = {}
    for argument in filter(None, match["arguments"].split(",")):
        parsed = _ARGUMENT.match(argument)
        if parsed is None:
            raise ConfigError(f"{bad}: '{argument}' is not name=whole number")
        name, value = parsed["key"], int(parsed["value"])
        if name not in _KEYS:
            raise ConfigError(f"{bad}: unknown argument '{name}'; use {', '.join(_KEYS)}")
        if name in values:
            raise ConfigError(f"{bad}: '{name}' is given twice")
        values[name] = value
    missing = [name for name in _REQUIRED if name not in values]
    if missing:
        raise ConfigError(f"{bad}: give {' and '.join(missing)}, e.g. budget(total=32, depth=3)")
    budget = Budget(**values)
    for name in ("total", "depth", "step", "inputs", "outputs"):
        value = getattr(budget, name)
        if value is not None and value < 1:
            raise ConfigError(f"{bad}: {name} must be >= 1")
    if budget.total % budget.step:
        raise ConfigError(f"{bad}: total {budget.total} is not a multiple of step {budget.step}")
    if budget.total < budget.depth * budget.step:
        raise ConfigError(
            f"{bad}: {budget.depth} layers of at least {budget.step} need total >= "
            f"{budget.depth * budget.step}"
        )
    filtered = budget.min_weights is not None or budget.max_weights is not None
    if filtered and (budget.inputs is None or budget.outputs is None):
        raise ConfigError(f"{bad}: a weight filter needs inputs= and outputs= (the data's units)")
    count = math.comb(budget.total // budget.step - 1, budget.depth - 1)
    if count > MAX_SHAPES:
        raise ConfigError(f"{bad}: {count} shapes, more than {MAX_SHAPES}; raise step")
    return budget


def budget_shapes(budget: Budget) -> list[tuple[int, ...]]:
    """Every shape of the family, ascending as tuples (``4-4-24`` first, ``24-4-4`` last).

    Widths are compositions of ``total / step`` into ``depth`` positive parts, times
    ``step``: there are ``C(total/step - 1, depth - 1)`` before the weight filter.
    """
    units = budget.total // budget.step
    shapes = []
    # Choosing depth-1 cut points among the units-1 gaps gives each composition once,
    # and in lexicographic order of the cut points, which is ascending order of shapes.
    for cuts in itertools.combinations(range(1, units), budget.depth - 1):
        bounds = (0, *cuts, units)
        shape = tuple(budget.step * (high - low) for low, high in itertools.pairwise(bounds))
        shapes.append(shape)
    if budget.min_weights is None and budget.max_weights is None:
        return shapes
    assert budget.inputs is not None and budget.outputs is not None
    low = budget.min_weights if budget.min_weights is not None else 0
    high = budget.max_weights if budget.max_weights is not None else math.inf
    return [
        shape
        for shape in shapes
        if low <= weight_count(shape, budget.inputs, budget.outputs) <= high
    ]


def layers_text(shape: Sequence[int]) -> str:
    """A shape as the ``layers`` setting writes it: ``8-16-8``."""
    return "-".join(str(width) for width in shape)


# --------------------------------------------------------------------------------------
# Expansion inside sweep values
# --------------------------------------------------------------------------------------


def _split_top_level(value: str) -> list[str]:
    """Split a comma list, leaving commas inside parentheses alone."""
    parts, depth, start = [], 0, 0
    for position, character in enumerate(value):
        depth += {"(": 1, ")": -1}.get(character, 0)
        if character == "," and depth == 0:
            parts.append(value[start:position])
            start = position + 1
    parts.append(value[start:])
    return [part.strip() for part in parts]


def expand_value(value: str, key: str = SWEPT_KEY) -> str:
    """A sweep value with every ``budget(...)`` replaced by its shapes, comma-joined.

    Values without a family come back unchanged. An empty family is an error, as Hydra
    would otherwise sweep nothing without saying so.
    """
    if "budget(" not in value.replace(" ", ""):
        return value
    shapes: list[str] = []
    for part in _split_top_level(value):
        if part.replace(" ", "").startswith("budget("):
            family = budget_shapes(parse_budget(part, key))
            if not family:
                raise ConfigError(
                    f"{key}={''.join(part.split())}: no shape passes the weight filter"
                )
            shapes.extend(layers_text(shape) for shape in family)
        else:
            shapes.append(part)
    return ",".join(dict.fromkeys(shapes))  # first occurrence wins, order kept


def expand_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """A sweeper's ``params`` (key -> comma list) with the ``layers`` families expanded."""
    expanded = dict(params or {})
    if isinstance(expanded.get(SWEPT_KEY), str):
        expanded[SWEPT_KEY] = expand_value(expanded[SWEPT_KEY])
    return expanded


_OVERRIDE = re.compile(rf"^(?P<prefix>\+{{0,2}}{SWEPT_KEY}=)(?P<value>.*)$", re.DOTALL)


def expand_overrides(overrides: Iterable[str]) -> list[str]:
    """Command-line overrides with a ``layers=budget(...)`` value expanded (others kept)."""
    expanded = []
    for override in overrides:
        match = _OVERRIDE.match(override)
        if match is None:
            expanded.append(override)
        else:
            expanded.append(match["prefix"] + expand_value(match["value"]))
    return expanded


# --------------------------------------------------------------------------------------
# Columns that describe a shape
# --------------------------------------------------------------------------------------


def weight_count(
    hidden_layers: Sequence[int], n_inputs: int, n_outputs: int, bias: bool = False
) -> int:
    """Trainable numbers of ``n_inputs -> hidden_layers -> n_outputs``, biases optional."""
    units = [n_inputs, *hidden_layers, n_outputs]
    weights = sum(a * b for a, b in itertools.pairwise(units))
    return weights + (sum(units[1:]) if bias else 0)


def front_loading(hidden_layers: Sequence[int]) -> float:
    """How far the neurons sit towards the input, in [0, 1] (NaN for one layer).

    One minus the neuron-weighted mean layer position, positions scaled so the first hidden
    layer is 0 and the last is 1: all neurons in the first layer would give 1, all in the
    last 0, equal widths 0.5. 24-4-4 gives 0.8125, 4-4-24 gives 0.1875.
    """
    depth = len(hidden_layers)
    if depth < 2:
        return math.nan
    mean_position = sum(k * width for k, width in enumerate(hidden_layers)) / sum(hidden_layers)
    return 1.0 - mean_position / (depth - 1)


def shape_columns(hidden_layers: Sequence[int], n_inputs: int, n_outputs: int) -> dict[str, Any]:
    """The derived columns of one shape, as ``runs.parquet`` stores them."""
    return {
        "total_neurons": int(sum(hidden_layers)),
        "depth": len(hidden_layers),
        "weights_no_bias": weight_count(hidden_layers, n_inputs, n_outputs, bias=False),
        "weights_with_bias": weight_count(hidden_layers, n_inputs, n_outputs, bias=True),
        "front_loading": front_loading(hidden_layers),
    }


def main(arguments: Sequence[str] | None = None) -> int:
    """``python -m nnsweep.train.shapes 'budget(total=32, depth=3, step=4)'`` prints the list."""
    import sys

    arguments = list(sys.argv[1:] if arguments is None else arguments)
    if len(arguments) != 1:
        print(
            "usage: python -m nnsweep.train.shapes 'budget(total=32, depth=3, step=4)'",
            file=sys.stderr,
        )
        return 2
    try:
        print(expand_value(arguments[0]))
    except ConfigError as error:
        print(f"nnsweep: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
