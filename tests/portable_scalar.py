"""ARITHMETIC_SPEC.md written out in plain Python floats, one operation per line.

Python's float is IEEE-754 binary64 and each of its + - * / is one correctly rounded
operation (no fusing, no extended precision on x86-64 or aarch64), so this slow, obvious
transcription is the reference that the vectorised implementation must match bit for bit.
It shares nothing with ``nnsweep.train.portable`` but the spec.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction

INV_LN2 = float.fromhex("0x1.71547652b82fep+0")
SHIFT = float.fromhex("0x1.8p52")
LN2_HI = float.fromhex("0x1.62e42fee00000p-1")
LN2_LO = float.fromhex("0x1.a39ef35793c76p-33")
C = [float(Fraction(1, math.factorial(k))) for k in range(14)]


def power_of_two(m: int) -> float:
    """2^m for -1022 <= m <= 1023, built from its exponent bits."""
    return struct.unpack("<d", struct.pack("<q", (m + 1023) << 52))[0]


def exp(x: float) -> float:
    if x != x:
        return x
    if x > 710.0:
        x = 710.0
    if x < -746.0:
        x = -746.0
    t = x * INV_LN2
    t = t + SHIFT
    n = t - SHIFT
    hi = n * LN2_HI
    r = x - hi
    lo = n * LN2_LO
    r = r - lo
    p = C[13]
    for k in range(12, -1, -1):
        p = p * r
        p = p + C[k]
    n1 = math.floor(n * 0.5)
    n2 = int(n) - n1
    p = p * power_of_two(n1)
    return p * power_of_two(n2)


def activate(name: str, z: float) -> float:
    if name == "sigmoid":
        e = exp(-z)
        d = 1.0 + e
        return 1.0 / d
    if name == "tanh":
        m = abs(z)
        e = exp(-2.0 * m)
        num = 1.0 - e
        den = 1.0 + e
        q = num / den
        return math.copysign(q, z)
    if name == "relu":
        return z if not (z <= 0.0) else 0.0
    raise KeyError(name)


def slope(name: str, a: float) -> float:
    if name == "sigmoid":
        s = 1.0 - a
        return a * s
    if name == "tanh":
        s = a * a
        return 1.0 - s
    if name == "relu":
        return 1.0 if a > 0.0 else 0.0
    raise KeyError(name)


Matrix = list[list[float]]


def forward(
    inputs: Matrix, weights: list[Matrix], biases: list[list[float]] | None, names: list[str]
) -> list[Matrix]:
    """Every layer's output, inputs first."""
    layers = [inputs]
    for k, W in enumerate(weights):
        L = layers[-1]
        out = []
        for row in L:
            z_row = []
            for j in range(len(W[0])):
                acc = row[0] * W[0][j]
                for i in range(1, len(W)):
                    acc = acc + row[i] * W[i][j]
                if biases is not None:
                    acc = acc + biases[k][j]
                z_row.append(activate(names[k], acc))
            out.append(z_row)
        layers.append(out)
    return layers


def margin(targets: Matrix, output: Matrix) -> float:
    total = None
    for y_row, o_row in zip(targets, output, strict=True):
        for y, o in zip(y_row, o_row, strict=True):
            term = abs(y - o)
            total = term if total is None else total + term
    return total / (len(targets) * len(targets[0]))


def step(
    inputs: Matrix,
    targets: Matrix,
    weights: list[Matrix],
    biases: list[list[float]] | None,
    names: list[str],
    lr: float,
) -> tuple[float, Matrix]:
    """One iteration in place; returns the margin and output of its forward pass."""
    layers = forward(inputs, weights, biases, names)
    out = layers[-1]
    err = [
        [y - o for y, o in zip(yr, orow, strict=True)]
        for yr, orow in zip(targets, out, strict=True)
    ]
    deltas: list[Matrix] = [None] * len(weights)  # type: ignore[list-item]
    last = len(weights) - 1
    deltas[last] = [
        [e * slope(names[last], a) for e, a in zip(er, ar, strict=True)]
        for er, ar in zip(err, out, strict=True)
    ]
    for k in range(last, 0, -1):
        W, delta, L = weights[k], deltas[k], layers[k]
        pulled = []
        for r in range(len(delta)):
            row = []
            for i in range(len(W)):
                acc = delta[r][0] * W[i][0]
                for j in range(1, len(W[0])):
                    acc = acc + delta[r][j] * W[i][j]
                row.append(acc * slope(names[k - 1], L[r][i]))
            pulled.append(row)
        deltas[k - 1] = pulled
    for k, W in enumerate(weights):
        L, delta = layers[k], deltas[k]
        for i in range(len(W)):
            for j in range(len(W[0])):
                g = L[0][i] * delta[0][j]
                for r in range(1, len(L)):
                    g = g + L[r][i] * delta[r][j]
                if lr != 1.0:
                    g = lr * g
                W[i][j] = W[i][j] + g
        if biases is not None:
            for j in range(len(biases[k])):
                s = delta[0][j]
                for r in range(1, len(delta)):
                    s = s + delta[r][j]
                if lr != 1.0:
                    s = lr * s
                biases[k][j] = biases[k][j] + s
    return margin(targets, out), out


def train(
    inputs: Matrix,
    targets: Matrix,
    weights: list[Matrix],
    biases: list[list[float]] | None,
    names: list[str],
    lr: float,
    iterations: int,
) -> tuple[list[float], float]:
    """Margins of every iteration's forward pass, then the final weights' margin."""
    margins = [step(inputs, targets, weights, biases, names, lr)[0] for _ in range(iterations)]
    final = margin(targets, forward(inputs, weights, biases, names)[-1])
    return margins, final
