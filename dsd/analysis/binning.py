"""Complexity normalization (NDS §4; issue 28): which models a normalized EDF uses and how
much each weighs.

- `common_range`, `bin_counts`, `max_bins`, `nds_weights`: the NDS normalization of several
  sweeps at once (`dsd edf --normalize`, the figures): k equal bins over the range all sweeps
  cover, weight 1/(k·m) in a bin of m models, 0 outside; an empty bin is an error.
- `bin_count`, `shared_bins`, `stratum_weights`: one pair's normalization (`dsd compare`, the
  within-bin permutation tests of `permutation`): ⌊√min(n_a, n_b)⌋ bins over the common range
  of the two sides' central quantiles (`RANGE_Q`), so no single extreme model sets it; bins
  without models of both sides are dropped instead of failing.

Pure NumPy; `stats` re-exports the first group (`stats.nds_weights`, …).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DsdError


# ---- several sweeps over their common range (NOTES §6) ------------------------------------
def common_range(*values) -> tuple[float, float]:
    """[max of minima, min of maxima] of several complexity arrays (the range all cover)."""
    lo = max(float(np.min(v)) for v in values)
    hi = min(float(np.max(v)) for v in values)
    if not lo < hi:
        raise DsdError(f"the complexity ranges do not overlap (common range [{lo:g}, {hi:g}] is "
                       f"empty); normalized EDFs need a shared range")
    return lo, hi


def bin_counts(values, lo: float, hi: float, bins: int) -> np.ndarray:
    """Models per bin of `bins` equal bins over [lo, hi] (last bin closed; outside ignored)."""
    v = np.asarray(values, dtype=float)
    inside = (v >= lo) & (v <= hi)
    idx = np.minimum(((v[inside] - lo) / (hi - lo) * bins).astype(int), bins - 1)
    return np.bincount(idx, minlength=bins)


def max_bins(values_list, lo: float, hi: float, up_to: int) -> int:
    """The largest k <= up_to for which every array has a model in every one of k bins (0 if
    none)."""
    for k in range(up_to, 0, -1):
        if all(np.all(bin_counts(v, lo, hi, k) > 0) for v in values_list):
            return k
    return 0


def nds_weights(values, lo: float, hi: float, bins: int, *, name: str = "the sample",
                suggest: int | None = None) -> np.ndarray:
    """NDS normalization weights (NOTES §6): k = `bins` equal bins over [lo, hi]; a model in a
    bin of m models gets 1/(k·m), a model outside [lo, hi] gets 0. The weights sum to 1 and the
    weighted complexity histogram over the k bins is flat (1/k each).

    Raises DsdError when a bin is empty, naming it and suggesting fewer bins (`suggest`, when
    given, is the largest bin count that works for every compared sample).
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise DsdError(f"bins must be a positive integer, got {bins!r}")
    if not lo < hi:
        raise DsdError(f"empty complexity range [{lo:g}, {hi:g}]")
    v = np.asarray(values, dtype=float)
    counts = bin_counts(v, lo, hi, bins)
    empty = np.flatnonzero(counts == 0)
    if len(empty):
        width = (hi - lo) / bins
        b = int(empty[0])
        hint = (f"use fewer bins (--bins {suggest} works for all)" if suggest else
                "use fewer bins (--bins)")
        raise DsdError(f"{len(empty)} of {bins} complexity bins of {name} are empty (first: bin "
                       f"{b + 1}, [{lo + b * width:.4g}, {lo + (b + 1) * width:.4g}]); {hint}")
    w = np.zeros_like(v)
    inside = (v >= lo) & (v <= hi)
    idx = np.minimum(((v[inside] - lo) / (hi - lo) * bins).astype(int), bins - 1)
    w[inside] = 1.0 / (bins * counts[idx])
    return w


# ---- one pair's bins (issue 28) -----------------------------------------------------------
#: The common range of a pair runs from the larger of the two sides' RANGE_Q quantiles to the
#: smaller of their 1 − RANGE_Q quantiles, so no single extreme model sets it.
RANGE_Q = 0.025


def bin_count(n_a: int, n_b: int, up_to: int = 20) -> int:
    """The bins of a pair's normalization: ⌊√min(n_a, n_b)⌋, at least 2, at most `up_to`.

    One rule from the sample sizes alone, so every normalization of a pair uses the same count
    (10 bins for 100 models a side: about 10 models of each side per bin)."""
    if up_to < 1:
        raise DsdError(f"bins must be a positive integer, got {up_to!r}")
    return int(min(up_to, max(2, int(np.sqrt(min(n_a, n_b))))))


class SharedBins(NamedTuple):
    lo: float  # the common range [lo, hi]
    hi: float
    k: int  # equal-width bins over it
    used: int  # bins holding models of both sides (the others are dropped)
    bin_a: np.ndarray  # per model of A: its bin, or -1 (outside the range or in a dropped bin)
    bin_b: np.ndarray
    outside_a: int  # models outside [lo, hi]
    outside_b: int


def shared_bins(va, vb, k: int, *, q: float = RANGE_Q) -> SharedBins:
    """Bin two samples of a complexity for the NDS normalization, robustly (issue 28).

    Range: [max(Q_a(q), Q_b(q)), min(Q_a(1−q), Q_b(1−q))] with Q the `np.quantile` of a side,
    so one extreme model moves it by a fraction of a model's spacing, not to itself. Bins: k of
    equal width over the range (last closed). A bin without models of both sides is dropped
    (its models get bin -1), so the normalized EDFs compare the complexity both spaces cover.
    """
    va = np.asarray(va, dtype=float).ravel()
    vb = np.asarray(vb, dtype=float).ravel()
    if len(va) == 0 or len(vb) == 0 or not (np.all(np.isfinite(va)) and
                                           np.all(np.isfinite(vb))):
        raise DsdError("complexity values must be finite and present on both sides")
    lo = max(float(np.quantile(va, q)), float(np.quantile(vb, q)))
    hi = min(float(np.quantile(va, 1 - q)), float(np.quantile(vb, 1 - q)))
    if not lo < hi:
        raise DsdError(f"the central {1 - 2 * q:.0%} complexity ranges do not overlap "
                       f"(common range [{lo:.4g}, {hi:.4g}] is empty)")

    def index(v):
        inside = (v >= lo) & (v <= hi)
        idx = np.full(len(v), -1)
        idx[inside] = np.minimum(((v[inside] - lo) / (hi - lo) * k).astype(int), k - 1)
        return idx, int((~inside).sum())

    (ia, oa), (ib, ob) = index(va), index(vb)
    both = (np.bincount(ia[ia >= 0], minlength=k) > 0) & (np.bincount(ib[ib >= 0],
                                                                      minlength=k) > 0)
    if not both.any():
        raise DsdError("no complexity bin holds models of both sides")
    ia[(ia >= 0) & ~both[np.maximum(ia, 0)]] = -1
    ib[(ib >= 0) & ~both[np.maximum(ib, 0)]] = -1
    return SharedBins(lo, hi, k, int(both.sum()), ia, ib, oa, ob)


def stratum_weights(strata) -> np.ndarray:
    """NDS weights from strata: 1/(K·m) for a model in a stratum of m models, K = the number
    of strata present; 0 for stratum -1 (not used). Each stratum then weighs 1/K."""
    s = np.asarray(strata).ravel()
    w = np.zeros(len(s))
    used = s >= 0
    if not used.any():
        return w
    labels, inv, counts = np.unique(s[used], return_inverse=True, return_counts=True)
    w[used] = 1.0 / (len(labels) * counts[inv])
    return w
