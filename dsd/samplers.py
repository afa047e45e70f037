"""Samplers: one small pure function per distribution (pycls `rand.py` style), each with its
exact count of distinct values and its probability mass, plus order-conditioned draws for
non-decreasing parameters. Every function takes an explicit `numpy.random.Generator`."""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

import numpy as np


@functools.lru_cache(maxsize=None)
def _decimals(*xs) -> int:
    """Decimal places needed to write every x exactly (0.1 → 1, 1.5 → 1, 8 → 0)."""
    return max(max(0, -Decimal(repr(x)).normalize().as_tuple().exponent) for x in xs)


@functools.lru_cache(maxsize=None)
def _grid_count(low, high, step) -> int:
    """Number of grid points low, low + step, …, high (exact, from the decimal values)."""
    return int((Decimal(repr(high)) - Decimal(repr(low))) / Decimal(repr(step))) + 1


def _grid(low, high, step, k: np.ndarray) -> np.ndarray:
    """Grid points low + k·step for k floored and clipped to [0, last]. Integer arguments
    give integers; floats are rounded to the decimals of low and step (2.54, never
    2.5400000000000005)."""
    k = np.clip(k, 0, _grid_count(low, high, step) - 1).astype(np.int64)
    if type(low) is int and type(high) is int and type(step) is int:
        return low + k * step
    return np.round(low + k * step, _decimals(low, step))


def log_uniform(rng: np.random.Generator, low, high, step, size: int) -> np.ndarray:
    """x = exp(U(log low, log(high + step))), floored onto the grid low + k·step."""
    a = math.log(low)
    x = np.exp(a + rng.random(size) * (math.log(high + step) - a))
    return _grid(low, high, step, np.floor((x - low) / step))


def uniform(rng: np.random.Generator, low, high, step, size: int) -> np.ndarray:
    """Uniform over the grid low, low + step, …, high (U(low, high + step) floored)."""
    return _grid(low, high, step, np.floor(rng.random(size) * _grid_count(low, high, step)))


def choice(rng: np.random.Generator, values, size: int) -> np.ndarray:
    """One of the listed values, each equally likely."""
    return np.asarray(values)[rng.integers(0, len(values), size)]


def constant(rng: np.random.Generator, value, size: int) -> np.ndarray:
    """Always `value` (a bare scalar in YAML); draws nothing."""
    return np.full(size, value)


def _grid_pmf(low, high, step, log: bool) -> tuple[np.ndarray, np.ndarray]:
    n = _grid_count(low, high, step)
    values = _grid(low, high, step, np.arange(n))
    if not log:
        return values, np.full(n, 1.0 / n)
    edges = np.log(np.append(low + np.arange(n) * step, high + step).astype(float))
    return values, np.diff(edges) / (edges[-1] - edges[0])


#: name → (draw function, its argument names, number of distinct values, (values, probs)).
#: A draw function takes (rng, *args, size) and returns `size` values as a NumPy array.
SAMPLERS: dict[str, tuple[Callable, tuple[str, ...], Callable[..., int], Callable]] = {
    "log_uniform": (log_uniform, ("low", "high", "step"), _grid_count,
                    lambda low, high, step: _grid_pmf(low, high, step, log=True)),
    "uniform": (uniform, ("low", "high", "step"), _grid_count,
                lambda low, high, step: _grid_pmf(low, high, step, log=False)),
    "choice": (choice, ("values",), lambda values: len(values),
               lambda values: (np.asarray(values), np.full(len(values), 1 / len(values)))),
    "constant": (constant, ("value",), lambda value: 1,
                 lambda value: (np.asarray([value]), np.ones(1))),
}


def non_decreasing(rng: np.random.Generator, values: np.ndarray, probs: np.ndarray,
                   stages: int, size: int) -> np.ndarray:
    """`size` rows t_1 <= … <= t_S, each with probability ∝ Π p(t_i): i.i.d. draws conditioned
    on being sorted, i.e. exactly rejection sampling, without the rejections.

    Sorting i.i.d. draws instead would weight each sorted tuple by its number of orderings and
    so under-weight ties; for AnyNetXE's depths (log-uniform on 1..16) that moves P(d1 = … = d4)
    from 5.3% to 0.4% (total variation 0.23). Here stage i is drawn from p(u)·G_{i+1}(u) for
    u >= t_{i-1}, where G_i(v) = Σ_{u >= v} p(u)·G_{i+1}(u) and G_{S+1} = 1.
    """
    n = len(probs)
    weights, g = [], np.ones(n)
    for _ in range(stages):  # last stage first
        w = probs * g
        weights.append(w)
        g = np.cumsum(w[::-1])[::-1]
    idx = np.zeros(size, dtype=np.int64)
    out = np.empty((size, stages), dtype=np.int64)
    for i, w in enumerate(reversed(weights)):
        c = np.cumsum(w)
        below = np.where(idx > 0, c[idx - 1], 0.0)  # mass of values under the previous one
        r = below + rng.random(size) * (c[-1] - below)
        idx = np.clip(np.searchsorted(c, r, side="right"), idx, n - 1)
        out[:, i] = idx
    return values[out]


@dataclass(frozen=True)
class ParamDef:
    """One sampled parameter: its sampler name and that sampler's arguments."""

    name: str
    sampler: str
    args: tuple = ()  # positional, in the order of SAMPLERS[sampler][1]

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` independent values."""
        return SAMPLERS[self.sampler][0](rng, *self.args, size)

    @property
    def count(self) -> int:
        """Exact number of distinct values."""
        return SAMPLERS[self.sampler][2](*self.args)

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        """Every value (ascending for ranges) and its probability."""
        return SAMPLERS[self.sampler][3](*self.args)

    def to_dict(self):
        if self.sampler == "constant":
            return self.args[0]
        names = SAMPLERS[self.sampler][1]
        return {"sampler": self.sampler, **{k: (list(v) if k == "values" else v)
                                            for k, v in zip(names, self.args, strict=True)}}
