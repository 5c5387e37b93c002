"""The portable arithmetic, in numpy: the definition in code (docs/arithmetic.md).

Every number is a fixed sequence of IEEE-754 binary64 basic operations (+ - * /, each
correctly rounded to nearest-even) and exact bit manipulations, so it is the same on every
CPU, BLAS and libm. Only element-wise ufuncs are used: no matmul, no ``np.sum`` (its pairwise
order is numpy's choice), no ``np.exp`` (it is the host's libm or numpy's own SIMD routine).

Seeds sit on the last, contiguous axis: activations are ``(rows, units, S)``, weights
``(fan_in, fan_out, S)``. Every operation is element-wise across seeds, so one seed's numbers
do not depend on which other seeds share its batch. Sums run in one fixed order: the loop is
over the summed index, and each ufunc call does a whole ``(rows, units, S)`` slab.

The native kernel (``native.py``) performs exactly the same operations; tests hold every
path to these bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

NAME = "portable"
# Bump whenever an operation or its order changes: it is in every portable cache key.
VERSION = 1

# The values of the ``arithmetic`` setting: this one, and the host's (``model.py``).
ARITHMETICS = {
    NAME: "IEEE-754 basic operations in a fixed order: the same bits on every CPU",
    "numpy": "the tutorial's np.dot and np.exp on this host's BLAS and libm",
}

# exp's constants (ARITHMETIC_SPEC.md): fdlibm's split of ln 2 and the rounding shifter.
INV_LN2 = float.fromhex("0x1.71547652b82fep+0")
SHIFT = float.fromhex("0x1.8p52")
LN2_HI = float.fromhex("0x1.62e42fee00000p-1")
LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
# 1/k! as the nearest double (Fraction -> float rounds correctly), k = 0..13.
EXP_COEFFICIENTS = tuple(float(Fraction(1, math.factorial(k))) for k in range(14))
EXP_OVERFLOW_CLAMP = 710.0  # above: exp is +inf whatever x is
EXP_UNDERFLOW_CLAMP = -746.0  # below: exp is +0.0 whatever x is

# t = x / ln2 + SHIFT lies in [2^52, 2^53), where one unit of t is 1: its bits are SHIFT's
# plus n. Adding 2 * 1023 before halving gives the biased exponents of 2^n1 and 2^n2 directly.
_SHIFT_BITS = int(np.float64(SHIFT).view(np.int64))
_BIASED_OFFSET = _SHIFT_BITS - 2 * 1023


class ExpWorkspace:
    """Scratch buffers for ``exp`` on up to ``size`` values (reused: the loop runs 10^5 times)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.x = np.empty(size)
        self.t = np.empty(size)
        self.r = np.empty(size)
        self.scale = np.empty(size, dtype=np.int64)
        self.scale2 = np.empty(size, dtype=np.int64)

    def views(self, n: int) -> tuple[np.ndarray, ...]:
        return self.x[:n], self.t[:n], self.r[:n], self.scale[:n], self.scale2[:n]


def exp(x: np.ndarray, out: np.ndarray | None = None, work: ExpWorkspace | None = None):
    """nnsweep's own exp, value by value (ARITHMETIC_SPEC.md, "exp").

    Parameters
    ----------
    x : ndarray of float64, any shape
    out : ndarray like ``x``, optional
        May be ``x`` itself (in place).
    work : ExpWorkspace, optional
        Scratch of at least ``x.size`` values.

    Returns
    -------
    ndarray
        ``out``: exp of every value, within about 1 ulp; NaN stays the same NaN, +inf gives
        +inf, -inf gives +0.0, results below 2^-1022 are correctly rounded subnormals.
    """
    x = np.asarray(x, dtype=np.float64)
    if out is None:
        out = np.empty_like(x)
    if work is None or work.size < x.size:
        work = ExpWorkspace(x.size)
    flat_in, flat_out = _flat(x), _flat(out)
    if flat_in is None or flat_out is None:  # not contiguous: work on a copy
        result = exp(np.ascontiguousarray(x), work=work)
        out[...] = result
        return out
    _exp_flat(flat_in, flat_out, work)
    return out


def _flat(array: np.ndarray) -> np.ndarray | None:
    return array.reshape(-1) if array.flags.c_contiguous else None


def _exp_flat(x: np.ndarray, out: np.ndarray, work: ExpWorkspace) -> None:
    """``out = exp(x)`` on 1-D contiguous arrays (``out`` may be ``x``)."""
    n = x.size
    if n == 0:
        return
    xs, t, r, scale1, scale2 = work.views(n)
    low, high = np.minimum.reduce(x), np.maximum.reduce(x)  # NaN if any value is NaN
    nan_lanes = None
    if low != low or high != high:
        # Step 1: a NaN lane computes on 0.0 and gets its own NaN back at the end.
        nan_lanes = np.isnan(x)
        np.copyto(xs, x)
        np.copyto(xs, 0.0, where=nan_lanes)
        saved = x.copy()
        x = xs
        low, high = np.minimum.reduce(x), np.maximum.reduce(x)
    if high > EXP_OVERFLOW_CLAMP or low < EXP_UNDERFLOW_CLAMP:
        # Step 2 (a no-op for values already inside the range, so it is skipped for them).
        np.minimum(x, EXP_OVERFLOW_CLAMP, out=xs)
        np.maximum(xs, EXP_UNDERFLOW_CLAMP, out=xs)
        x = xs
    # out may be x: it is first written in step 5, after x's last use.
    # Step 3: n = round-half-even(x / ln2), as a double.
    np.multiply(x, INV_LN2, out=t)
    np.add(t, SHIFT, out=t)
    # The exponents of 2^n1, 2^n2 (n1 = floor(n / 2), n2 = n - n1), from t's bits.
    np.subtract(t.view(np.int64), _BIASED_OFFSET, out=scale2)  # n + 2046
    np.right_shift(scale2, 1, out=scale1)  # n1 + 1023
    np.subtract(scale2, scale1, out=scale2)  # n2 + 1023
    np.left_shift(scale1, 52, out=scale1)
    np.left_shift(scale2, 52, out=scale2)
    np.subtract(t, SHIFT, out=t)  # t := n
    # Step 4: r = (x - n * LN2_HI) - n * LN2_LO.
    np.multiply(t, LN2_HI, out=r)
    np.subtract(x, r, out=r)
    np.multiply(t, LN2_LO, out=t)
    np.subtract(r, t, out=r)
    # Step 5: Horner from C[13] down to C[0], a multiply and an add per step (no FMA).
    p = out
    np.multiply(r, EXP_COEFFICIENTS[13], out=p)
    np.add(p, EXP_COEFFICIENTS[12], out=p)
    for k in range(11, -1, -1):
        np.multiply(p, r, out=p)
        np.add(p, EXP_COEFFICIENTS[k], out=p)
    # Step 6: (p * 2^n1) * 2^n2; the first product is exact, the second rounds once.
    np.multiply(p, scale1.view(np.float64), out=p)
    np.multiply(p, scale2.view(np.float64), out=p)
    if nan_lanes is not None:
        np.copyto(out, saved, where=nan_lanes)


# --------------------------------------------------------------------------------------
# Activations: in-place forward on z, and the derivative taken at the output a
# --------------------------------------------------------------------------------------


class ActivationWorkspace:
    """Scratch for the activations of one network (sized for its widest layer)."""

    def __init__(self, size: int) -> None:
        self.exp = ExpWorkspace(size)
        self.a = np.empty(size)
        self.b = np.empty(size)
        self.mask = np.empty(size, dtype=bool)


def _sigmoid(z: np.ndarray, work: ActivationWorkspace) -> None:
    # e = exp(-z); d = 1 + e; a = 1 / d
    np.negative(z, out=z)
    _exp_flat(z, z, work.exp)
    np.add(z, 1.0, out=z)
    np.divide(1.0, z, out=z)


def _sigmoid_derivative(a: np.ndarray, out: np.ndarray, work: ActivationWorkspace) -> None:
    # s = 1 - a; s = a * s: the tutorial's a * (1 - a)
    np.subtract(1.0, a, out=out)
    np.multiply(a, out, out=out)


def _tanh(z: np.ndarray, work: ActivationWorkspace) -> None:
    # m = |z|; e = exp(-2 m); q = (1 - e) / (1 + e); a = copysign(q, z)
    n = z.size
    e, numerator = work.a[:n], work.b[:n]
    np.abs(z, out=e)
    np.multiply(e, -2.0, out=e)
    _exp_flat(e, e, work.exp)
    np.subtract(1.0, e, out=numerator)
    np.add(e, 1.0, out=e)
    np.divide(numerator, e, out=numerator)
    np.copysign(numerator, z, out=z)


def _tanh_derivative(a: np.ndarray, out: np.ndarray, work: ActivationWorkspace) -> None:
    # s = a * a; s = 1 - s
    np.multiply(a, a, out=out)
    np.subtract(1.0, out, out=out)


def _relu(z: np.ndarray, work: ActivationWorkspace) -> None:
    # a = z unless z <= 0, then +0.0 (NaN passes, -0.0 becomes +0.0)
    mask = work.mask[: z.size]
    np.less_equal(z, 0.0, out=mask)
    np.copyto(z, 0.0, where=mask)


def _relu_derivative(a: np.ndarray, out: np.ndarray, work: ActivationWorkspace) -> None:
    # s = 1.0 where a > 0, else 0.0 (NaN: 0.0)
    np.greater(a, 0.0, out=out)


@dataclass(frozen=True)
class PortableActivation:
    """In-place forward and derivative-at-the-output, on 1-D contiguous buffers."""

    forward: Callable[[np.ndarray, ActivationWorkspace], None]
    derivative: Callable[[np.ndarray, np.ndarray, ActivationWorkspace], None]


ACTIVATIONS: dict[str, PortableActivation] = {
    "sigmoid": PortableActivation(_sigmoid, _sigmoid_derivative),
    "tanh": PortableActivation(_tanh, _tanh_derivative),
    "relu": PortableActivation(_relu, _relu_derivative),
}


def activate(name: str, z: np.ndarray) -> np.ndarray:
    """``name``'s activation of every value of ``z`` (a new array; for tests and tools)."""
    a = np.array(z, dtype=np.float64, order="C")
    ACTIVATIONS[name].forward(a.reshape(-1), ActivationWorkspace(a.size))
    return a


def derivative(name: str, a: np.ndarray) -> np.ndarray:
    """``name``'s derivative taken at the output ``a`` (a new array)."""
    a = np.ascontiguousarray(a, dtype=np.float64)
    out = np.empty_like(a)
    ACTIVATIONS[name].derivative(a.reshape(-1), out.reshape(-1), ActivationWorkspace(a.size))
    return out


# --------------------------------------------------------------------------------------
# The stacked network, seeds last
# --------------------------------------------------------------------------------------


def _seeds_last(array: np.ndarray) -> np.ndarray:
    """``(S, ...)`` -> a C-contiguous copy shaped ``(..., S)`` (always a copy: the network
    trains it in place, and a view that happens to be contiguous would train the caller's)."""
    return np.array(np.moveaxis(np.asarray(array, dtype=np.float64), 0, -1), order="C")


class PortableNetwork:
    """``S`` networks of one shape trained together on one full batch, seeds last.

    The loop (``loop.py``) drives it through the same methods as the host-numpy
    ``StackedNetwork``; arrays it hands out are seed-first views.

    Parameters
    ----------
    inputs : ndarray, shape (rows, n_inputs)
    targets : ndarray, shape (rows, n_outputs)
    weights : list of ndarray, each (S, units[k], units[k + 1])
        Copied into the seeds-last layout; ``seed_weights()`` gives them back seed-first.
    biases : list of ndarray, each (S, 1, units[k + 1]), or None for no biases
    activation, output_activation : str
        Keys of ``ACTIVATIONS``.
    """

    def __init__(
        self,
        inputs: np.ndarray,
        targets: np.ndarray,
        weights: list[np.ndarray],
        biases: list[np.ndarray] | None,
        activation: str,
        output_activation: str,
    ) -> None:
        self.inputs = np.ascontiguousarray(inputs, dtype=np.float64)
        self.targets = np.ascontiguousarray(targets, dtype=np.float64)
        self.activation_names = (activation, output_activation)
        self.weights = [_seeds_last(w) for w in weights]  # (a, b, S)
        # (b, S): one bias per unit and seed
        self.biases = None if biases is None else [_seeds_last(b[:, 0, :]) for b in biases]
        n_layers = len(self.weights)
        self.activations = [ACTIVATIONS[activation]] * (n_layers - 1)
        self.activations.append(ACTIVATIONS[output_activation])
        S = self.weights[0].shape[2]
        rows = self.inputs.shape[0]
        self.units = [self.weights[0].shape[0], *(w.shape[1] for w in self.weights)]
        widths = self.units[1:]
        self.outputs = [np.empty((rows, b, S)) for b in widths]
        self.deltas = [np.empty((rows, b, S)) for b in widths]
        self.slopes = [np.empty((rows, b, S)) for b in widths]
        self.gradients = [np.empty_like(w) for w in self.weights]
        self.error = np.empty((rows, widths[-1], S))
        self._abs_error = np.empty_like(self.error)
        self._error_sums = np.empty(S)
        self._bias_step = np.empty((max(widths), S))
        widest = max(self.units)
        # One term of a sum, any layer: a (rows, units, S) slab or an (a, b, S) update term.
        self._product = np.empty(max(rows * widest * S, max(w.size for w in self.weights)))
        self.work = ActivationWorkspace(rows * max(widths) * S)
        self._build_steps()

    # -- set-up ------------------------------------------------------------------------

    def _scratch(self, shape: tuple[int, ...]) -> np.ndarray:
        return self._product[: math.prod(shape)].reshape(shape)

    def _build_steps(self) -> None:
        """Every view the loop needs, made once (the loop runs ~10^5 times)."""
        rows, S = self.inputs.shape[0], self.n_seeds
        # The inputs are the same for every seed: (rows, a, 1) broadcasts over seeds.
        layer_inputs = [self.inputs[:, :, None], *self.outputs[:-1]]
        self._forward = []
        for k, weight in enumerate(self.weights):
            a, b = weight.shape[:2]
            out = self.outputs[k]
            # z[r, j] = sum_k L[r, k] * W[k, j], k ascending from the first product:
            # term k is the slab L[:, k] (rows, 1, S) times W[k] (b, S).
            terms = [(layer_inputs[k][:, i : i + 1, :], weight[i]) for i in range(a)]
            bias = None if self.biases is None else self.biases[k]
            self._forward.append(
                (
                    terms,
                    out,
                    self._scratch((rows, b, S)),
                    bias,
                    self.activations[k].forward,
                    out.reshape(-1),
                )
            )
        last = len(self.weights) - 1
        self._pullbacks = []
        for k in range(last, 0, -1):
            weight, delta = self.weights[k], self.deltas[k]
            a, b = weight.shape[:2]
            # e[r, i] = sum_j delta[r, j] * W[i, j], j ascending: slab delta[:, j]
            # (rows, 1, S) times column W[:, j] (a, S).
            terms = [(delta[:, j : j + 1, :], weight[:, j, :]) for j in range(b)]
            self._pullbacks.append(
                (
                    terms,
                    self.deltas[k - 1],
                    self._scratch((rows, a, S)),
                    self.activations[k - 1].derivative,
                    self.outputs[k - 1].reshape(-1),
                    self.slopes[k - 1].reshape(-1),
                    self.deltas[k - 1].reshape(-1),
                )
            )
        self._gradient_steps = []
        for k, gradient in enumerate(self.gradients):
            a, b = gradient.shape[:2]
            source = self.inputs[:, :, None, None] if k == 0 else self.outputs[k - 1][:, :, None]
            delta = self.deltas[k]
            # g[i, j] = sum_r L[r, i] * delta[r, j], r ascending: row r's (a, 1, S) times
            # (1, b, S) outer product per step.
            terms = [(source[r], delta[r][None]) for r in range(rows)]
            self._gradient_steps.append((terms, gradient, self._scratch((a, b, S))))
        self._bias_steps = []
        if self.biases is not None:
            for k, bias in enumerate(self.biases):
                b = bias.shape[0]
                terms = [self.deltas[k][r] for r in range(rows)]
                self._bias_steps.append((terms, bias, self._bias_step[:b]))
        flat_abs = self._abs_error.reshape(-1, S)  # row-major (r outer, output inner)
        self._error_terms = [flat_abs[i] for i in range(flat_abs.shape[0])]
        self._flat_error = self.error.reshape(-1)
        self._targets = self.targets[:, :, None]

    # -- the interface loop.py drives ----------------------------------------------------

    @property
    def n_seeds(self) -> int:
        return self.weights[0].shape[2]

    @property
    def n_errors(self) -> int:
        """Error entries of one seed: the error margin's divisor."""
        return self.error.shape[0] * self.error.shape[1]

    def forward(self) -> np.ndarray:
        """Run the full batch through every seed's network; returns the (rows, out, S) output."""
        work = self.work
        for terms, out, product, bias, activate, flat in self._forward:
            source, weight = terms[0]
            np.multiply(source, weight, out=out)
            for source, weight in terms[1:]:
                np.multiply(source, weight, out=product)
                np.add(out, product, out=out)
            if bias is not None:
                np.add(out, bias, out=out)
            activate(flat, work)
        return self.outputs[-1]

    def backward(self) -> None:
        """Error, deltas and update directions, all from the current (old) weights."""
        work = self.work
        output = self.outputs[-1]
        np.subtract(self._targets, output, out=self.error)
        slope = self.slopes[-1].reshape(-1)
        self.activations[-1].derivative(output.reshape(-1), slope, work)
        np.multiply(self.error.reshape(-1), slope, out=self.deltas[-1].reshape(-1))
        for terms, pulled, product, derivative, output, slope, flat in self._pullbacks:
            delta, weight = terms[0]
            np.multiply(delta, weight, out=pulled)
            for delta, weight in terms[1:]:
                np.multiply(delta, weight, out=product)
                np.add(pulled, product, out=pulled)
            derivative(output, slope, work)
            np.multiply(flat, slope, out=flat)
        for terms, gradient, product in self._gradient_steps:
            source, delta = terms[0]
            np.multiply(source, delta, out=gradient)
            for source, delta in terms[1:]:
                np.multiply(source, delta, out=product)
                np.add(gradient, product, out=gradient)

    def apply(self, lr: float) -> None:
        """``W = W + g`` (``g = lr * g`` first unless lr is 1); biases by their row sums."""
        scale = lr != 1.0
        for weight, gradient in zip(self.weights, self.gradients, strict=True):
            if scale:
                np.multiply(gradient, lr, out=gradient)
            np.add(weight, gradient, out=weight)
        for terms, bias, step in self._bias_steps:
            np.copyto(step, terms[0])
            for term in terms[1:]:
                np.add(step, term, out=step)
            if scale:
                np.multiply(step, lr, out=step)
            np.add(bias, step, out=bias)

    def error_is_finite(self) -> bool:
        """Whether every error entry is finite (a cheap screen: NaN and inf survive the dot
        product in any order; a false alarm only costs the exact per-seed check)."""
        return bool(np.dot(self._flat_error, self._flat_error) < np.inf)

    def error_sums(self) -> np.ndarray:
        """Each seed's sum of |error|, r outer and output inner, from the first term on.

        Returns
        -------
        ndarray, shape (S,)
            A buffer reused by the next call.
        """
        np.abs(self.error, out=self._abs_error)
        sums, terms = self._error_sums, self._error_terms
        np.copyto(sums, terms[0])
        for term in terms[1:]:
            np.add(sums, term, out=sums)
        return sums

    def error_margins(self) -> np.ndarray:
        """Each seed's error margin: the sum, then one division (a new array, shape (S,))."""
        return self.error_sums() / self.n_errors

    def evaluate(self) -> np.ndarray:
        """Error margins of the current weights, without training (shape (S,))."""
        np.subtract(self._targets, self.forward(), out=self.error)
        return self.error_margins()

    def seed_outputs(self) -> np.ndarray:
        """The output layer, seed-first: a view shaped (S, rows, n_outputs)."""
        return np.moveaxis(self.outputs[-1], -1, 0)

    def seed_weights(self) -> list[np.ndarray]:
        """The weights, seed-first: views shaped (S, a, b)."""
        return [np.moveaxis(w, -1, 0) for w in self.weights]

    def seed_biases(self) -> list[np.ndarray] | None:
        """The biases, seed-first: views shaped (S, 1, b), or None."""
        if self.biases is None:
            return None
        return [np.moveaxis(b, -1, 0)[:, None, :] for b in self.biases]

    def keep(self, rows: np.ndarray) -> PortableNetwork:
        """A network holding only the seeds at ``rows``, mid-iteration state included."""
        weights = [w[rows] for w in self.seed_weights()]
        biases = self.seed_biases()
        biases = None if biases is None else [b[rows] for b in biases]
        kept = PortableNetwork(self.inputs, self.targets, weights, biases, *self.activation_names)
        for mine, theirs in (
            (self.outputs, kept.outputs),
            (self.deltas, kept.deltas),
            (self.gradients, kept.gradients),
            ([self.error], [kept.error]),
        ):
            for source, target in zip(mine, theirs, strict=True):
                target[...] = source[..., rows]
        return kept
