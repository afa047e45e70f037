"""Power of the rank test: the minimum detectable shift (MDS) of `dsd compare` (issues 14, 28).

- `detectable_shift`: the MDS from each side's OWN EDF (B first moved by the Hodges–Lehmann
  shift to the rank test's null), so a difference in spread is kept and the observed
  difference is not added to it; what `dsd compare` reports, at the level that decides.
- `rank_power`, `min_detectable_shift`: the same from the POOLED EDF (issue 14's MDS; kept to
  show how much pooling inflates the MDS when the spaces differ in spread).
- `ShiftedRankTest`: scipy's asymptotic Mann–Whitney p for many shifts of the same simulated
  samples by searchsorted into pre-sorted rows (the bisection's inner loop).

Simulations draw with replacement from the samples with an explicit seed or Generator and
use common random numbers across shifts, so the power curve is smooth in the shift.
"""
from __future__ import annotations

import numpy as np

from ..errors import DsdError
from .stats import _clean, _rng


# ---- from each side's own EDF (issue 28) --------------------------------------------------
def hodges_lehmann(a, b) -> float:
    """The Hodges–Lehmann shift of b against a: the median of all differences b_j − a_i."""
    a, _ = _clean(a)
    b, _ = _clean(b)
    return float(np.median(np.subtract.outer(b, a)))


def _runs(x: np.ndarray) -> np.ndarray:
    """For rows of sorted values: per element, how many elements of its row equal it."""
    rows, n = x.shape
    flat = x.ravel()
    start = np.ones(flat.shape, bool)
    start[1:] = flat[1:] != flat[:-1]
    start[::n] = True  # a row starts a run
    ids = np.cumsum(start) - 1
    return np.bincount(ids)[ids].reshape(rows, n)


class ShiftedRankTest:
    """The two-sided asymptotic Mann–Whitney p-value of each row pair (xa_r, xb_r + s), fast
    for many shifts s of the same samples: `scipy.stats.mannwhitneyu(xa, xb + s, axis=1,
    method="asymptotic")` (tie and continuity corrections included, the same p to rounding)
    by searchsorted into pre-sorted rows instead of ranking each time."""

    def __init__(self, xa, xb):
        self.xa = np.sort(np.asarray(xa, dtype=float), axis=1)
        self.xb = np.sort(np.asarray(xb, dtype=float), axis=1)  # U ignores the order
        self.rows, self.na = self.xa.shape
        self.nb = self.xb.shape[1]
        self.tb = _runs(self.xb)
        ta = _runs(self.xa).astype(float)
        self.tie0 = (np.sum((ta**2 - 1), axis=1)  # Σ over elements of t² − 1 = Σ_g t³ − t
                     + np.sum(self.tb.astype(float) ** 2 - 1, axis=1))

    def pvalues(self, shift: float) -> np.ndarray:
        from scipy import special

        q = self.xb + shift  # as scipy gets it, so ties are the same exact float equalities
        left = np.empty(q.shape, dtype=np.int64)
        eq = np.empty(q.shape, dtype=np.int64)
        for r in range(self.rows):  # ~3 µs a row: numpy has no row-wise searchsorted
            left[r] = np.searchsorted(self.xa[r], q[r], "left")
            eq[r] = np.searchsorted(self.xa[r], q[r], "right") - left[r]
        n1n2 = self.na * self.nb
        u = left.sum(axis=1) + 0.5 * eq.sum(axis=1)  # #{a < b + s} + ½·#{a = b + s}
        u = np.maximum(u, n1n2 - u)
        n = self.na + self.nb
        # ties across the samples merge groups: (ta+tb)³ − ta³ − tb³ = 3·ta·tb·(ta+tb)
        tie = self.tie0 + np.sum(3.0 * eq * (eq + self.tb), axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            z = (u - n1n2 / 2 - 0.5) / np.sqrt(n1n2 / 12 * ((n + 1) - tie / (n * (n - 1))))
        return np.clip(2 * special.ndtr(-z), 0.0, 1.0)


def _smallest_shift(ok, spread: float, n_a: int, n_b: int, tol: float) -> float:
    """The smallest shift s > 0 with ok(s) (power reached), to `tol` points: start at four
    standard errors (spread·4·√(1/n_a + 1/n_b)), double until ok (inf beyond 1000 spreads),
    then bisect; ok must be monotone in s."""
    lo, hi = 0.0, spread * 4 * np.sqrt(1 / n_a + 1 / n_b)
    while not ok(hi):
        lo, hi = hi, 2 * hi
        if hi > 1e3 * spread:
            return float("inf")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return float(hi)


def detectable_shift(a, b, *, power: float = 0.8, alpha: float = 0.05, sims: int = 1000,
                     tol: float = 0.01, seed=0) -> float:
    """Minimum detectable shift of the two-sided rank test (`scipy.stats.mannwhitneyu`,
    asymptotic) for samples of len(a) and len(b), simulated from each side's OWN EDF.

    B's errors are first moved by the Hodges–Lehmann shift (`hodges_lehmann`), which puts
    the two EDFs at the rank test's null (P(A<B) ≈ ½) while keeping each side's spread and
    shape (the pooled EDF would add the observed difference to the spread). Each of `sims`
    simulations draws len(a) errors from A and len(b) from moved B, with replacement; the MDS is
    the smallest δ > 0 for which the test at `alpha` rejects in at least `power` of them both
    with B moved by +δ and by −δ (common random numbers; bisection to `tol` points).
    NaN with fewer than 2 models a side; inf beyond 1000 spreads.
    """
    a, _ = _clean(a)
    b, _ = _clean(b)
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise DsdError(f"power and alpha must lie in (0, 1), got {power}, {alpha}")
    b0 = b - hodges_lehmann(a, b)
    rng = _rng(seed)
    xa = a[rng.integers(len(a), size=(sims, len(a)))]
    xb = b0[rng.integers(len(b), size=(sims, len(b)))]
    # B − δ against A, mirrored, is −B + δ against −A: the same two-sided p
    up, down = ShiftedRankTest(xa, xb), ShiftedRankTest(-xa, -xb)

    def ok(s):
        return min(np.mean(up.pvalues(s) < alpha), np.mean(down.pvalues(s) < alpha)) >= power

    spread = float(np.sqrt((np.var(a) + np.var(b0)) / 2)) or 1.0
    return _smallest_shift(ok, spread, len(a), len(b), tol)


# ---- from the pooled EDF (issue 14) -------------------------------------------------------
def rank_power(pooled, weights, n_a: int, n_b: int, shifts, *, alpha: float = 0.05,
               sims: int = 1000, seed=0) -> np.ndarray:
    """Power of the two-sided rank test (`scipy.stats.mannwhitneyu`, asymptotic) at each shift:
    the fraction of `sims` simulated pairs of samples, n_a and n_b drawn with replacement from
    the pooled EDF and `shift` points added to the second, with p < alpha. The same draws serve
    every shift (common random numbers), so power is smooth in the shift."""
    from scipy import stats as sst

    e, w = _clean(pooled, weights)
    rng = _rng(seed)
    xa = e[rng.choice(len(e), size=(sims, n_a), p=w)]
    xb = e[rng.choice(len(e), size=(sims, n_b), p=w)]
    return np.array([np.mean(sst.mannwhitneyu(xa, xb + s, axis=1, method="asymptotic").pvalue
                             < alpha) for s in np.atleast_1d(shifts)])


def min_detectable_shift(pooled, weights, n_a: int, n_b: int, *, power: float = 0.8,
                         alpha: float = 0.05, sims: int = 1000, tol: float = 0.01,
                         seed=0) -> float:
    """The smallest shift (error points) that the rank test detects with `power` at `alpha`
    for samples of n_a and n_b models from the pooled EDF (`rank_power`; bisection to `tol`).

    Pass Kish effective sizes for weighted samples. Vectorized over the simulations: about
    10 ms per evaluated shift at n = 100, sims = 1000."""
    e, w = _clean(pooled, weights)
    if n_a < 2 or n_b < 2:
        return float("nan")
    if not 0 < power < 1 or not 0 < alpha < 1:
        raise DsdError(f"power and alpha must lie in (0, 1), got {power}, {alpha}")
    seed = _rng(seed).integers(2**63)  # one draw per evaluation: common random numbers

    def ok(s):
        return rank_power(e, w, n_a, n_b, [s], alpha=alpha, sims=sims, seed=seed)[0] >= power

    spread = float(np.sqrt(np.sum(w * (e - np.sum(w * e)) ** 2))) or 1.0
    return _smallest_shift(ok, spread, n_a, n_b, tol)
