"""Within-stratum permutation tests (issue 28): the exact tests of `dsd compare`'s normalized
and device rows.

The strata are a pair's complexity bins (`binning.shared_bins`) or the devices that trained
models of both sweeps. Null: within each stratum, errors are exchangeable between the two
sweeps. Each permutation reassigns a stratum's errors at random to that stratum's slots, and
a slot keeps its side and its NDS weight, so the test is exact for that null whatever the
weights, unlike the Kish-size asymptotics of `stats.rank_test`/`stats.ks` (conservative for
weighted samples). Statistics: the weighted rank statistic P(A<B) and the weighted KS D.

Vectorized: chunks of permutations are drawn as one (chunk × n) uniform array and sorted by
(stratum, uniform); about 0.07 s for 10,000 permutations of 200 models.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..errors import DsdError
from .stats import _clean, _rng


class PermTest(NamedTuple):
    prob: float  # weighted P(a < b) + ½·P(a = b), as rank_test
    rank_p: float  # two-sided permutation p of prob (distance from its permutation mean)
    D: float  # weighted KS statistic, as ks_statistic
    ks_p: float  # permutation p of D
    permutations: int


def _tie_sums(x, starts):
    return np.add.reduceat(x, starts, axis=1)


def _perm_stats(side, w, starts):
    """prob and D of each row: side (R × n, True = A), w (R × n slot weights) for values
    sorted ascending with tie groups starting at `starts`."""
    wa = np.where(side, w, 0.0)
    ga, gb = _tie_sums(wa, starts), _tie_sums(w - wa, starts)
    fa, fb = np.cumsum(ga, axis=1), np.cumsum(gb, axis=1)
    prob = np.sum(ga * (1.0 - fb + 0.5 * gb), axis=1)
    return prob, np.max(np.abs(fa - fb), axis=1)


def _perm_mean(e, side, w, strata) -> float:
    """E[prob] under within-stratum permutation, exactly: Σ_k Σ_l WA_k·WB_l·H_kl with WA_k
    (WB_l) the A (B) slot weight of stratum k (l), H_kk = ½ (two distinct items of one
    stratum) and H_kl the mean of 1[x < y] + ½·1[x = y] over x in stratum k, y in l."""
    labels = np.unique(strata)
    vals = [np.sort(e[strata == k]) for k in labels]
    wa = np.array([w[(strata == k) & side].sum() for k in labels])
    wb = np.array([w[(strata == k) & ~side].sum() for k in labels])
    mu = 0.0
    for i, x in enumerate(vals):
        for j, y in enumerate(vals):
            if i == j:
                h = 0.5
            else:
                below = np.searchsorted(x, y, "left")
                upto = np.searchsorted(x, y, "right")
                h = float(np.mean(below + 0.5 * (upto - below))) / len(x)
            mu += wa[i] * wb[j] * h
    return mu


def _strata(e, w, strata, name: str) -> np.ndarray:
    """Strata of the entries `_clean` keeps (weight > 0); all 0 when not given."""
    n = len(np.asarray(e, dtype=float).ravel())
    s = np.zeros(n, int) if strata is None else np.asarray(strata).ravel()
    if len(s) != n:
        raise DsdError(f"strata_{name}: {len(s)} strata for {n} errors")
    return s if w is None else s[np.asarray(w, dtype=float).ravel() > 0]


def permutation_test(a, b, wa=None, wb=None, *, strata_a=None, strata_b=None,
                     permutations: int = 10_000, seed=0, chunk: int = 512) -> PermTest:
    """Within-stratum permutation tests of the (weighted) rank statistic and KS D (issue 28).

    Null: within each stratum (a complexity bin, a device), errors are exchangeable between
    the two samples. Each permutation reassigns the errors of a stratum at random to that
    stratum's slots; a slot keeps its side and its weight (weights are normalized per side),
    so the test is exact for that null whatever the weights. Statistics: prob, as
    `rank_test` (two-sided: |prob − μ| with μ its exact permutation mean, `_perm_mean`; μ = ½
    when each stratum has the same share of both sides' weight, as with NDS weights) and D, as
    `ks_statistic`. p = (1 + #{permuted ≥ observed})/(1 + permutations): never below
    1/(1 + permutations), and P(p ≤ α) ≤ α. Vectorized: `chunk` permutations at a time; the
    chunk size changes neither the random stream nor p (512 keeps a chunk's arrays in cache).
    """
    sa, sb = _strata(a, wa, strata_a, "a"), _strata(b, wb, strata_b, "b")
    a, wa_ = _clean(a, wa)
    b, wb_ = _clean(b, wb)
    if permutations < 1:
        raise DsdError(f"permutations must be >= 1, got {permutations}")
    e = np.concatenate([a, b])
    side = np.concatenate([np.ones(len(a), bool), np.zeros(len(b), bool)])
    w = np.concatenate([wa_, wb_])
    _, strata = np.unique(np.concatenate([sa, sb]).astype(str), return_inverse=True)
    order = np.argsort(e, kind="stable")
    e, side, w, strata = e[order], side[order], w[order], strata[order]
    starts = np.flatnonzero(np.r_[True, e[1:] != e[:-1]])
    prob0, d0 = (float(v[0]) for v in _perm_stats(side[None], w[None], starts))
    mu = _perm_mean(e, side, w, strata)
    slots = np.argsort(strata, kind="stable")  # slot t of the stratum-sorted layout
    slot_side, slot_w = side[slots], w[slots]
    rng, n = _rng(seed), len(e)
    ge_rank = ge_ks = 0
    tol = 1e-10
    for start in range(0, permutations, chunk):
        r = min(chunk, permutations - start)
        items = np.argsort(strata[None, :] + rng.random((r, n)), axis=1)  # by (stratum, U)
        ps, pw = np.empty((r, n), bool), np.empty((r, n))
        np.put_along_axis(ps, items, np.broadcast_to(slot_side, (r, n)), axis=1)
        np.put_along_axis(pw, items, np.broadcast_to(slot_w, (r, n)), axis=1)
        prob, d = _perm_stats(ps, pw, starts)
        ge_rank += int(np.sum(np.abs(prob - mu) >= abs(prob0 - mu) - tol))
        ge_ks += int(np.sum(d >= d0 - tol))
    return PermTest(prob0, (1 + ge_rank) / (1 + permutations), d0,
                    (1 + ge_ks) / (1 + permutations), permutations)
