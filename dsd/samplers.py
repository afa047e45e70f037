"""Samplers: one small pure function per distribution, each with its exact count of distinct
values and its probability mass, plus order-conditioned draws for non-decreasing parameters.
Every function takes an explicit `numpy.random.Generator`.

Two conventions, named and stored with every sweep's space definition (`samplers:`):

- `pycls` (the default): pycls's `sweep/random.py` exactly. A continuous draw f is quantized to
  a multiple of q: `uniform` U[low, high + q) floored; `log_uniform` exp(U(log(low − q*),
  log high]) with q* = min(q, low/2), rounded *up*; `power2_uniform` 2^⌊U[log2 low,
  log2 high + 1)⌋ floored to q; `power2_or_log_uniform` a power of two below q, else
  `log_uniform(max(low, q), high, min(high, q))`; `normal` / `log_normal` clipped to [low, high]
  with ~99.7% of the mass inside (μ, σ from the ends), rounded to the nearest multiple.
  Values have q's type; floats are exact decimals (float(Decimal(k) · Decimal(str(q))), as pycls).
- `dsd1`: how dsd drew before conventions existed (the published CIFAR-10 population):
  `log_uniform` exp(U[log low, log(high + step))) floored onto the grid low + k·step (so
  P(d = 1) = 0.245 on 1..16, pycls 0.200), `uniform` over the same grid.

`choice` (pycls `value_sampler`) and constants are the same in both.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable

import numpy as np

from .errors import DsdError

#: Largest support a pmf is enumerated for (non-decreasing draws and tests need it).
MAX_PMF_VALUES = 5_000_000


@functools.lru_cache(maxsize=None)
def _decimals(*xs) -> int:
    """Decimal places needed to write every x exactly (0.1 → 1, 1.5 → 1, 8 → 0)."""
    return max(max(0, -Decimal(repr(x)).normalize().as_tuple().exponent) for x in xs)


def _dec(x) -> Decimal:
    return Decimal(repr(x))


# --------------------------------------------------------------------------------------------
# dsd1: the grid low + k·step


@functools.lru_cache(maxsize=None)
def _grid_count(low, high, step) -> int:
    """Number of grid points low, low + step, …, high (exact, from the decimal values)."""
    return int((_dec(high) - _dec(low)) / _dec(step)) + 1


def _grid(low, high, step, k: np.ndarray) -> np.ndarray:
    """Grid points low + k·step for k floored and clipped to [0, last]. Integer arguments
    give integers; floats are rounded to the decimals of low and step (2.54, never
    2.5400000000000005)."""
    k = np.clip(k, 0, _grid_count(low, high, step) - 1).astype(np.int64)
    if type(low) is int and type(high) is int and type(step) is int:
        return low + k * step
    return np.round(low + k * step, _decimals(low, step))


def log_uniform_dsd1(rng: np.random.Generator, low, high, step, size: int) -> np.ndarray:
    """dsd1: x = exp(U(log low, log(high + step))), floored onto the grid low + k·step."""
    a = math.log(low)
    x = np.exp(a + rng.random(size) * (math.log(high + step) - a))
    return _grid(low, high, step, np.floor((x - low) / step))


def uniform_dsd1(rng: np.random.Generator, low, high, step, size: int) -> np.ndarray:
    """dsd1: uniform over the grid low, low + step, …, high (U(low, high + step) floored)."""
    return _grid(low, high, step, np.floor(rng.random(size) * _grid_count(low, high, step)))


def _grid_pmf(low, high, step, log: bool) -> tuple[np.ndarray, np.ndarray]:
    n = _grid_count(low, high, step)
    values = _grid(low, high, step, np.arange(n))
    if not log:
        return values, np.full(n, 1.0 / n)
    edges = np.log(np.append(low + np.arange(n) * step, high + step).astype(float))
    return values, np.diff(edges) / (edges[-1] - edges[0])


# --------------------------------------------------------------------------------------------
# pycls: multiples of q


def _times_q(k: np.ndarray, q) -> np.ndarray:
    """k·q with q's type, exactly as pycls's `quantize` (float(Decimal(k) · Decimal(str(q))):
    q = m / 10^e, and an IEEE division of exact integers is correctly rounded)."""
    k = np.asarray(k, dtype=np.int64)
    if type(q) is int:
        return k * q
    t = _dec(q).normalize().as_tuple()
    m = int("".join(map(str, t.digits))) * (-1 if t.sign else 1)
    if t.exponent >= 0:
        return (k * (m * 10**t.exponent)).astype(float)
    return (k * m).astype(float) / float(10 ** -t.exponent)


def _k(x, q, op) -> int:
    """op(x / q) as an exact integer (x, q decimal)."""
    r = _dec(x) / _dec(q)
    return int(op(r))


def _lo_star(low, q) -> float:
    return low - min(q, low / 2)


def _k_log(low, q) -> int:
    """Smallest k with mass under pycls `log_uniform`: ⌊(low − q*) / q⌋ + 1, exactly."""
    lo = _dec(low) - min(_dec(q), _dec(low) / 2)
    return math.floor(lo / _dec(q)) + 1


def _draw_q(f: np.ndarray, q, op, k_lo: int, k_hi: int) -> np.ndarray:
    """Quantize continuous draws f with op (floor/ceil/round), clipped to [k_lo, k_hi] against
    float noise at the ends."""
    return _times_q(np.clip(op(f / q), k_lo, k_hi), q)


def uniform(rng: np.random.Generator, low, high, q, size: int) -> np.ndarray:
    """pycls `uniform`: f ~ U[low, high + q), floored to a multiple of q."""
    f = low + rng.random(size) * (high + q - low)
    return _draw_q(f, q, np.floor, _k(low, q, math.floor), _k(high, q, math.floor))


def log_uniform(rng: np.random.Generator, low, high, q, size: int) -> np.ndarray:
    """pycls `log_uniform`: f = exp(U(log(low − q*), log high]), q* = min(q, low/2), rounded
    up to a multiple of q."""
    a, b = math.log(_lo_star(low, q)), math.log(high)
    f = np.exp(b - rng.random(size) * (b - a))  # pycls: exp(-U[-log high, -log lo*))
    return _draw_q(f, q, np.ceil, _k_log(low, q), _k(high, q, math.ceil))


def _power2_exponents(low, high) -> tuple[int, int]:
    return round(math.log2(low)), round(math.log2(high))


def power2_uniform(rng: np.random.Generator, low, high, q, size: int) -> np.ndarray:
    """pycls `power2_uniform`: 2^e with e uniform on log2 low … log2 high, floored to q."""
    e_lo, e_hi = _power2_exponents(low, high)
    e = np.floor(e_lo + rng.random(size) * (e_hi + 1 - e_lo))
    e = np.clip(e, e_lo, e_hi)
    return _times_q(np.floor(np.exp2(e) / q), q)


def power2_or_log_uniform(rng: np.random.Generator, low, high, q, size: int) -> np.ndarray:
    """pycls `power2_or_log_uniform`: a power of two in [low, high]; those >= q are replaced
    by log_uniform(max(low, q), high, min(high, q)) (log-linear CDF over the whole range)."""
    p2 = power2_uniform(rng, low, high, low, size)
    lu = log_uniform(rng, max(low, q), high, min(high, q), size)
    out = np.where(p2 >= q, lu, p2)
    return out.astype(np.int64) if type(q) is int else out.astype(float)


def _clipped(draw, low, high, size: int) -> np.ndarray:
    f = draw(size)
    bad = ~((low <= f) & (f <= high))
    while bad.any():  # pycls redraws until inside; ~0.3% per round
        f[bad] = draw(int(bad.sum()))
        bad = ~((low <= f) & (f <= high))
    return f


def normal(rng: np.random.Generator, low, high, q, size: int) -> np.ndarray:
    """pycls `normal`: N(μ = (low+high)/2, σ = (high−low)/6) clipped to [low, high] by
    redrawing, rounded to the nearest multiple of q."""
    mu, sigma = (low + high) / 2, (high - low) / 6
    f = _clipped(lambda n: rng.normal(mu, sigma, n), low, high, size)
    return _draw_q(f, q, np.round, _k(low, q, round), _k(high, q, round))


def log_normal(rng: np.random.Generator, low, high, q, size: int) -> np.ndarray:
    """pycls `log_normal`: exp of N(μ, σ) from log low, log high as `normal`, clipped to
    [low, high], rounded to the nearest multiple of q."""
    a, b = math.log(low), math.log(high)
    mu, sigma = (a + b) / 2, (b - a) / 6
    f = _clipped(lambda n: rng.lognormal(mu, sigma, n), low, high, size)
    return _draw_q(f, q, np.round, _k(low, q, round), _k(high, q, round))


# pmfs: P(k·q) = F(upper edge of k's bin) − F(lower edge), from the continuous CDF F.


def _phi(x: np.ndarray) -> np.ndarray:
    from scipy.special import ndtr

    return ndtr(x)


def _binned(k_lo: int, k_hi: int, q, op: str, cdf: Callable) -> tuple[np.ndarray, np.ndarray]:
    n = k_hi - k_lo + 1
    if n > MAX_PMF_VALUES:
        raise DsdError(f"{n:,} distinct values: too many to enumerate their probabilities "
                       f"(at most {MAX_PMF_VALUES:,})")
    k = np.arange(k_lo, k_hi + 1, dtype=np.int64)
    qf = float(q)
    lo_edge = {"floor": k * qf, "ceil": (k - 1) * qf, "round": (k - 0.5) * qf}[op]
    hi_edge = {"floor": (k + 1) * qf, "ceil": k * qf, "round": (k + 0.5) * qf}[op]
    p = np.clip(cdf(hi_edge) - cdf(lo_edge), 0.0, None)
    return _times_q(k, q), p / p.sum()


def _uniform_pmf(low, high, q):
    span = high + q - low
    return _binned(_k(low, q, math.floor), _k(high, q, math.floor), q, "floor",
                   lambda x: np.clip((x - low) / span, 0.0, 1.0))


def _log_uniform_pmf(low, high, q):
    lo = _lo_star(low, q)
    a, b = math.log(lo), math.log(high)

    def cdf(x):
        with np.errstate(divide="ignore"):
            return np.clip((np.log(np.maximum(x, 0.0)) - a) / (b - a), 0.0, 1.0)
    return _binned(_k_log(low, q), _k(high, q, math.ceil), q, "ceil", cdf)


def _power2_pmf(low, high, q):
    e_lo, e_hi = _power2_exponents(low, high)
    vals = _times_q(np.floor(np.exp2(np.arange(e_lo, e_hi + 1)) / q), q)
    uniq, counts = np.unique(vals, return_counts=True)
    return uniq, counts / counts.sum()


def _power2_or_log_pmf(low, high, q):
    v2, p2 = _power2_pmf(low, high, low)
    lv, lp = _log_uniform_pmf(max(low, q), high, min(high, q))
    keep = v2 < q
    probs: dict = {}
    for v, p in zip(v2[keep].tolist(), p2[keep].tolist()):
        probs[v] = probs.get(v, 0.0) + p
    rest = p2[~keep].sum()
    for v, p in zip(lv.tolist(), lp.tolist()):
        probs[v] = probs.get(v, 0.0) + rest * p
    vals = sorted(probs)
    cast = int if type(q) is int else float
    return np.asarray([cast(v) for v in vals]), np.asarray([probs[v] for v in vals])


def _normal_pmf(low, high, q, log=False):
    a, b = (math.log(low), math.log(high)) if log else (low, high)
    mu, sigma = (a + b) / 2, (b - a) / 6
    z_lo, z_hi = _phi(np.array([(a - mu) / sigma, (b - mu) / sigma]))

    def cdf(x):
        x = np.clip(x, low, high)
        t = np.log(x) if log else x
        return (_phi((t - mu) / sigma) - z_lo) / (z_hi - z_lo)
    return _binned(_k(low, q, round), _k(high, q, round), q, "round", cdf)


def _q_count(op, lo_k: Callable):
    """Count of k·q values for a grid sampler: k from lo_k(low, q) to op(high / q)."""
    return lambda low, high, q: _k(high, q, op) - lo_k(low, q) + 1


def _power2_or_log_count(low, high, q) -> int:
    v2, _ = _power2_pmf(low, high, low)
    lo = max(low, q)
    q2 = min(high, q)
    return int((v2 < q).sum()) + _k(high, q2, math.ceil) - _k_log(lo, q2) + 1


# --------------------------------------------------------------------------------------------
# Shared by both conventions


def choice(rng: np.random.Generator, values, size: int) -> np.ndarray:
    """One of the listed values, each equally likely (pycls `value_sampler`)."""
    return np.asarray(values)[rng.integers(0, len(values), size)]


def constant(rng: np.random.Generator, value, size: int) -> np.ndarray:
    """Always `value` (a bare scalar in YAML); draws nothing."""
    return np.full(size, value)


_CHOICE = (choice, ("values",), lambda values: len(values),
           lambda values: (np.asarray(values), np.full(len(values), 1 / len(values))))
_CONSTANT = (constant, ("value",), lambda value: 1,
             lambda value: (np.asarray([value]), np.ones(1)))

#: Per convention: sampler name → (draw function, its argument names, number of distinct
#: values, (values, probs)). A draw function takes (rng, *args, size) and returns `size` values.
Table = dict[str, tuple[Callable, tuple[str, ...], Callable[..., int], Callable]]
_Q = ("low", "high", "q")
PYCLS: Table = {
    "uniform": (uniform, _Q, _q_count(math.floor, lambda lo, q: _k(lo, q, math.floor)),
                _uniform_pmf),
    "log_uniform": (log_uniform, _Q,
                    _q_count(math.ceil, _k_log),
                    _log_uniform_pmf),
    "power2_uniform": (power2_uniform, _Q, lambda lo, hi, q: len(_power2_pmf(lo, hi, q)[0]),
                       _power2_pmf),
    "power2_or_log_uniform": (power2_or_log_uniform, _Q, _power2_or_log_count,
                              _power2_or_log_pmf),
    "normal": (normal, _Q, _q_count(round, lambda lo, q: _k(lo, q, round)), _normal_pmf),
    "log_normal": (log_normal, _Q, _q_count(round, lambda lo, q: _k(lo, q, round)),
                   lambda lo, hi, q: _normal_pmf(lo, hi, q, log=True)),
    "choice": _CHOICE,
    "constant": _CONSTANT,
}
DSD1: Table = {
    "log_uniform": (log_uniform_dsd1, ("low", "high", "step"), _grid_count,
                    lambda low, high, step: _grid_pmf(low, high, step, log=True)),
    "uniform": (uniform_dsd1, ("low", "high", "step"), _grid_count,
                lambda low, high, step: _grid_pmf(low, high, step, log=False)),
    "choice": _CHOICE,
    "constant": _CONSTANT,
}
#: Convention name (stored as `samplers` in every space definition) → its samplers.
CONVENTIONS: dict[str, Table] = {"pycls": PYCLS, "dsd1": DSD1}
#: A stored definition without `samplers` was written before conventions existed.
LEGACY = "dsd1"
DEFAULT = "pycls"
DESCRIPTIONS = {
    "pycls": "pycls sweep/random.py: continuous draw quantized to multiples of q",
    "dsd1": "dsd before 2026-12: log-uniform floored onto the grid low + k*step",
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
    """One sampled parameter: its sampler name, that sampler's arguments, and the convention
    (`pycls` or `dsd1`) that gives the name its meaning."""

    name: str
    sampler: str
    args: tuple = ()  # positional, in the order of the table's argument names
    convention: str = DEFAULT

    @property
    def _entry(self):
        return CONVENTIONS[self.convention][self.sampler]

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        """`size` independent values."""
        return self._entry[0](rng, *self.args, size)

    @property
    def count(self) -> int:
        """Exact number of distinct values."""
        return self._entry[2](*self.args)

    def pmf(self) -> tuple[np.ndarray, np.ndarray]:
        """Every value (ascending for ranges) and its probability."""
        return self._entry[3](*self.args)

    def to_dict(self):
        if self.sampler == "constant":
            return self.args[0]
        names = self._entry[1]
        return {"sampler": self.sampler, **{k: (list(v) if k == "values" else v)
                                            for k, v in zip(names, self.args, strict=True)}}
