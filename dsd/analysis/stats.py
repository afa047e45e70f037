"""Pure statistics of design-space comparison (NOTES §6; NDS §4, DDS §2-3).

Every function takes plain arrays and returns numbers, arrays or small named tuples; nothing
here reads the store or draws a figure. Randomness is explicit: pass a seed or a
`numpy.random.Generator` (never global seeding).

- `edf`, `edf_at`: the error EDF F(e) = Σ w_i·1[e_i < e] (w_i = 1/n unweighted).
- `nds_weights`, `common_range`: the NDS complexity normalization (k bins over a common range,
  weight 1/(k·m) in a bin of m models, 0 outside).
- `ks`: the two-sample Kolmogorov-Smirnov statistic D = sup|F1 - F2| from the raw samples and its
  p-value. Unweighted: exactly `scipy.stats.ks_2samp`. Weighted (normalized EDFs): the same
  asymptotic Smirnov distribution scipy uses for large samples (`kstwo.sf(D, round(n))`, with
  n = n1·n2/(n1+n2)), where n1, n2 are Kish's effective sample sizes (Σw)²/Σw².
- `edf_band`: pointwise bootstrap band of an EDF.
- `best_range`: the DDS best-range bootstrap (25% with replacement, value of the lowest error,
  10^4 times, median and 95% interval).
- `search_efficiency`: the expected minimum error of m random draws (with replacement, by the
  weights) and its std, computed exactly from the EDF, which is what NOTES §6's
  draw-m-take-the-min-and-repeat procedure converges to.
- `bootstrap_diff`: stat(B) − stat(A) (mean or median) with a percentile bootstrap interval
  (`scipy.stats.bootstrap`; weighted: resampling by the weights, Kish-size draws).
- `rank_test`: Mann–Whitney (`scipy.stats.mannwhitneyu`) and its weighted analogue.
- `holm`: Holm's step-down adjustment. `rank_power`, `min_detectable_shift`: power of the rank
  test against a shift, simulated from the pooled EDF (vectorized).
- `spearman`, `spearman_interval`: Spearman ρ (`scipy.stats.spearmanr`) and its paired bootstrap
  interval.

Differences from pycls / nds: KS and the EDF are computed from the raw samples (no resampling on
a grid), and random-search efficiency is computed in closed form instead of by simulation.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ..errors import DsdError


def _rng(seed) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _clean(errors, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """Float errors and weights normalized to sum 1; zero-weight entries dropped."""
    e = np.asarray(errors, dtype=float).ravel()
    if weights is None:
        w = np.ones_like(e)
    else:
        w = np.asarray(weights, dtype=float).ravel()
        if w.shape != e.shape:
            raise DsdError(f"{len(w)} weights for {len(e)} errors")
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise DsdError("weights must be finite and >= 0")
    if not np.all(np.isfinite(e)):
        raise DsdError("errors must be finite numbers")
    keep = w > 0
    e, w = e[keep], w[keep]
    if len(e) == 0:
        raise DsdError("no samples (or all weights zero)")
    return e, w / w.sum()


# ---- EDF ----------------------------------------------------------------------------------
def edf(errors, weights=None) -> tuple[np.ndarray, np.ndarray]:
    """The EDF as a step function: sorted distinct errors x and F just after each x.

    F jumps at each x to Σ w_i·1[e_i <= x]; with NOTES' strict definition
    F(e) = Σ w_i·1[e_i < e] this is F on the interval (x_k, x_{k+1}]. Draw as steps-post.
    """
    e, w = _clean(errors, weights)
    order = np.argsort(e, kind="stable")
    e, w = e[order], w[order]
    x, first = np.unique(e, return_index=True)
    cum = np.cumsum(w)
    last = np.append(first[1:], len(e)) - 1
    return x, np.minimum(cum[last], 1.0)


def edf_at(errors, at, weights=None) -> np.ndarray:
    """F(e) = Σ w_i·1[e_i < e] (NOTES §6) at each point of `at` (weights normalized to 1)."""
    e, w = _clean(errors, weights)
    order = np.argsort(e, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(w[order])])
    return np.minimum(cum[np.searchsorted(e[order], np.asarray(at, dtype=float), "left")], 1.0)


def weighted_mean(errors, weights=None) -> float:
    e, w = _clean(errors, weights)
    return float(np.sum(e * w))


def weighted_median(errors, weights=None) -> float:
    """`np.median` without weights; with weights, the smallest e with Σ w·1[e_i <= e] >= 1/2."""
    e, w = _clean(errors, weights)
    if weights is None:
        return float(np.median(e))
    order = np.argsort(e)
    cum = np.cumsum(w[order])
    return float(e[order][np.searchsorted(cum, 0.5 - 1e-12)])


# ---- NDS normalization --------------------------------------------------------------------
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


# ---- Kolmogorov-Smirnov -------------------------------------------------------------------
class KS(NamedTuple):
    D: float  # sup |F1 - F2|
    p: float  # two-sided p-value
    method: str  # "scipy" (unweighted, = scipy.stats.ks_2samp) or "kish-asymp" (weighted)


def ks_statistic(a, b, wa=None, wb=None) -> float:
    """D = sup_e |F_a(e) - F_b(e)| of two (weighted) EDFs, from the raw samples."""
    a, wa = _clean(a, wa)
    b, wb = _clean(b, wb)
    pts = np.union1d(a, b)
    # both EDFs are right-continuous steps at sample points: sup over e is attained at them
    fa = _cdf_right(a, wa, pts)
    fb = _cdf_right(b, wb, pts)
    return float(np.max(np.abs(fa - fb)))


def _cdf_right(e, w, pts):
    order = np.argsort(e, kind="stable")
    cum = np.concatenate([[0.0], np.cumsum(w[order])])
    return cum[np.searchsorted(e[order], pts, "right")]


def effective_n(weights) -> float:
    """Kish's effective sample size (Σw)²/Σw² (= n for equal weights)."""
    w = np.asarray(weights, dtype=float)
    w = w[w > 0]
    return float(w.sum() ** 2 / np.sum(w**2)) if len(w) else 0.0


def ks(a, b, wa=None, wb=None) -> KS:
    """Two-sample KS test of errors `a` and `b`, optionally weighted (normalized EDFs).

    Unweighted: `scipy.stats.ks_2samp(a, b)` (its exact p-value for small samples).
    Weighted: D from the weighted EDFs; p = scipy's asymptotic two-sided Smirnov p-value
    `kstwo.sf(D, round(n))`, n = n1·n2/(n1+n2) with Kish effective sizes n1, n2.
    """
    from scipy import stats as sst

    if wa is None and wb is None:
        a, _ = _clean(a)
        b, _ = _clean(b)
        r = sst.ks_2samp(a, b)
        return KS(float(r.statistic), float(r.pvalue), "scipy")
    a, wa = _clean(a, wa)
    b, wb = _clean(b, wb)
    d = ks_statistic(a, b, wa, wb)
    n1, n2 = effective_n(wa), effective_n(wb)
    en = max(1.0, round(n1 * n2 / (n1 + n2)))
    p = float(np.clip(sst.kstwo.sf(d, en), 0.0, 1.0))
    return KS(d, p, "kish-asymp")


# ---- bootstrap bands ----------------------------------------------------------------------
def edf_band(errors, weights=None, *, at=None, resamples: int = 1000, level: float = 0.95,
             seed=0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pointwise bootstrap band of the EDF: (x, lo, hi) with F just after each x.

    Each resample draws n models with replacement (with probability ∝ weight, n = number of
    models with weight > 0) and takes its EDF; lo/hi are the (1±level)/2 quantiles per x.
    `x` defaults to the sorted distinct errors.
    """
    e, w = _clean(errors, weights)
    order = np.argsort(e, kind="stable")
    e, w = e[order], w[order]
    x = np.unique(e) if at is None else np.sort(np.asarray(at, dtype=float))
    if resamples < 1:
        raise DsdError(f"resamples must be >= 1, got {resamples}")
    counts = _rng(seed).multinomial(len(e), w, size=resamples)  # R × n, rows sum to n
    cum = np.concatenate([np.zeros((resamples, 1)), np.cumsum(counts, axis=1) / len(e)], axis=1)
    f = cum[:, np.searchsorted(e, x, "right")]
    q = (1 - level) / 2
    lo, hi = np.quantile(f, [q, 1 - q], axis=0)
    return x, lo, hi


class BestRange(NamedTuple):
    median: float
    lo: float
    hi: float
    n: int  # pairs the bootstrap drew from
    k: int  # pairs per resample
    resamples: int


def best_range(values, errors, *, frac: float = 0.25, resamples: int = 10_000,
               level: float = 0.95, seed=0) -> BestRange:
    """DDS best-range bootstrap (NOTES §6): draw frac·n (value, error) pairs with replacement,
    keep the value of the lowest-error pair, repeat `resamples` times; the median and the
    central `level` interval of the kept values.

    Ties in error go to the first drawn pair. k = max(1, round(frac·n)).
    """
    v = np.asarray(values, dtype=float).ravel()
    e = np.asarray(errors, dtype=float).ravel()
    if v.shape != e.shape:
        raise DsdError(f"{len(v)} values for {len(e)} errors")
    keep = np.isfinite(v) & np.isfinite(e)
    v, e = v[keep], e[keep]
    if len(v) == 0:
        raise DsdError("best-range bootstrap needs at least one (value, error) pair")
    if resamples < 1:
        raise DsdError(f"resamples must be >= 1, got {resamples}")
    if not 0 < frac <= 1:
        raise DsdError(f"frac must be in (0, 1], got {frac}")
    k = max(1, int(round(frac * len(v))))
    rng = _rng(seed)
    best = np.empty(resamples)
    step = max(1, 2_000_000 // k)  # bound memory: ≤ 2M indices at a time
    for start in range(0, resamples, step):
        r = min(step, resamples - start)
        idx = rng.integers(0, len(v), size=(r, k))
        pick = idx[np.arange(r), np.argmin(e[idx], axis=1)]
        best[start:start + r] = v[pick]
    q = (1 - level) / 2
    lo, med, hi = np.quantile(best, [q, 0.5, 1 - q])
    return BestRange(float(med), float(lo), float(hi), len(v), k, resamples)


# ---- random search efficiency -------------------------------------------------------------
def search_efficiency(errors, weights=None, ms=None) -> tuple[np.ndarray, np.ndarray,
                                                              np.ndarray]:
    """Expected minimum error of m models drawn with replacement (probability ∝ weight), and
    its standard deviation, for each experiment size m (NDS; DDS Fig. 9): (ms, mean, std).

    Exact: with errors sorted e_(1) <= … <= e_(n) and S_i = Σ_{j>=i} p_(j), the minimum of m
    draws is e_(i) with probability S_i^m - S_{i+1}^m. `ms` defaults to 1, 2, 4, … <= n.
    """
    e, w = _clean(errors, weights)
    order = np.argsort(e, kind="stable")
    e, p = e[order], w[order]
    if ms is None:
        ms = 2 ** np.arange(int(np.floor(np.log2(len(e)))) + 1)
    ms = np.asarray(ms, dtype=int)
    if np.any(ms < 1):
        raise DsdError("experiment sizes m must be >= 1")
    surv = np.clip(np.cumsum(p[::-1])[::-1], 0.0, 1.0)  # S_i
    surv_next = np.append(surv[1:], 0.0)
    prob = surv[None, :] ** ms[:, None] - surv_next[None, :] ** ms[:, None]  # len(ms) × n
    mean = prob @ e
    var = np.maximum(prob @ (e**2) - mean**2, 0.0)
    return ms, mean, np.sqrt(var)


# ---- effect sizes, rank test, multiple testing, power (issue 14) --------------------------
class Interval(NamedTuple):
    estimate: float
    lo: float
    hi: float


def _draws(e, w, rng, resamples: int) -> np.ndarray:
    """resamples × round(Kish n) draws from e with probability w: the weighted bootstrap.

    Drawing the effective size (not the raw count) gives a resampled mean the variance of the
    weighted mean, σ²·Σw² = σ²/n_eff; with equal weights it is the ordinary bootstrap."""
    m = max(1, int(round(effective_n(w))))
    return e[rng.choice(len(e), size=(resamples, m), p=w)]


def bootstrap_diff(a, b, wa=None, wb=None, *, stat: str = "mean", resamples: int = 10_000,
                   level: float = 0.95, seed=0) -> Interval:
    """stat(b) − stat(a) (stat = "mean" or "median") and its percentile bootstrap interval.

    Unweighted: `scipy.stats.bootstrap` (independent resampling of each side). Weighted (NDS
    normalization): each side is resampled by its weights, round(Kish n) draws per resample
    (`_draws`); the estimate is the weighted mean / median (`weighted_mean`, `weighted_median`).
    """
    from scipy import stats as sst

    if stat not in ("mean", "median"):
        raise DsdError(f"stat must be mean or median, got {stat!r}")
    if resamples < 1:
        raise DsdError(f"resamples must be >= 1, got {resamples}")
    f = np.mean if stat == "mean" else np.median
    rng = _rng(seed)
    if wa is None and wb is None:
        a, _ = _clean(a)
        b, _ = _clean(b)
        r = sst.bootstrap((a, b), lambda x, y, axis: f(y, axis=axis) - f(x, axis=axis),
                          n_resamples=resamples, confidence_level=level, vectorized=True,
                          method="percentile", rng=rng)
        ci = r.confidence_interval
        return Interval(float(f(b) - f(a)), float(ci.low), float(ci.high))
    a, wa = _clean(a, wa)
    b, wb = _clean(b, wb)
    est = weighted_mean if stat == "mean" else weighted_median
    d = f(_draws(b, wb, rng, resamples), axis=1) - f(_draws(a, wa, rng, resamples), axis=1)
    q = (1 - level) / 2
    lo, hi = np.quantile(d, [q, 1 - q])
    return Interval(est(b, wb) - est(a, wa), float(lo), float(hi))


def bootstrap_diffs(a, b, wa=None, wb=None, *, resamples: int = 10_000, level: float = 0.95,
                    seed=0) -> dict[str, Interval]:
    """{"mean": …, "median": …}: `bootstrap_diff` of both statistics. Unweighted: two scipy
    bootstraps, as `bootstrap_diff` (mean first, then median, from one generator). Weighted:
    one set of weighted resamples (`_draws`) serves both, which halves the draws."""
    rng = _rng(seed)
    if wa is None and wb is None:
        return {stat: bootstrap_diff(a, b, stat=stat, resamples=resamples, level=level,
                                     seed=rng) for stat in ("mean", "median")}
    if resamples < 1:
        raise DsdError(f"resamples must be >= 1, got {resamples}")
    a, wa = _clean(a, wa)
    b, wb = _clean(b, wb)
    da, db = _draws(a, wa, rng, resamples), _draws(b, wb, rng, resamples)
    q = (1 - level) / 2
    out = {}
    for stat, f, est in (("mean", np.mean, weighted_mean), ("median", np.median,
                                                            weighted_median)):
        lo, hi = np.quantile(f(db, axis=1) - f(da, axis=1), [q, 1 - q])
        out[stat] = Interval(est(b, wb) - est(a, wa), float(lo), float(hi))
    return out


class RankTest(NamedTuple):
    prob: float  # P(a < b) + ½·P(a = b): chance that a random A model has the lower error
    p: float  # two-sided p-value
    method: str  # "scipy" (= scipy.stats.mannwhitneyu) or "kish-asymp" (weighted)


def rank_test(a, b, wa=None, wb=None) -> RankTest:
    """Wilcoxon-Mann-Whitney test of errors `a` against `b`, optionally weighted.

    Unweighted: `scipy.stats.mannwhitneyu(b, a)` (two-sided, scipy's default method);
    prob = U/(n_a·n_b). Weighted: prob = Σ_i Σ_j wa_i·wb_j·(1[a_i < b_j] + ½·1[a_i = b_j])
    with weights normalized to 1, and p from the normal approximation under H0,
    var(prob) = (n1 + n2 + 1)/(12·n1·n2) with Kish effective sizes n1, n2 (no continuity or
    tie correction; equal to scipy's asymptotic method without continuity on untied data).
    """
    from scipy import stats as sst

    if wa is None and wb is None:
        a, _ = _clean(a)
        b, _ = _clean(b)
        r = sst.mannwhitneyu(b, a, alternative="two-sided")
        return RankTest(float(r.statistic) / (len(a) * len(b)), float(r.pvalue), "scipy")
    a, wa = _clean(a, wa)
    b, wb = _clean(b, wb)
    order = np.argsort(b, kind="stable")
    bs, cw = b[order], np.concatenate([[0.0], np.cumsum(wb[order])])
    below = cw[np.searchsorted(bs, a, "left")]  # weight of b < a_i
    upto = cw[np.searchsorted(bs, a, "right")]  # weight of b <= a_i
    prob = float(np.sum(wa * ((1.0 - upto) + 0.5 * (upto - below))))
    n1, n2 = effective_n(wa), effective_n(wb)
    z = (prob - 0.5) / np.sqrt((n1 + n2 + 1) / (12 * n1 * n2))
    return RankTest(prob, float(min(1.0, 2 * sst.norm.sf(abs(z)))), "kish-asymp")


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment (family-wise error) of p-values; NaNs stay NaN and do not
    count in the family. adj_(i) = max_{j<=i} min(1, (m − j + 1)·p_(j)) for sorted p."""
    p = np.asarray(pvalues, dtype=float).ravel()
    out = np.full_like(p, np.nan)
    ok = np.flatnonzero(~np.isnan(p))
    if len(ok) == 0:
        return out
    if np.any((p[ok] < 0) | (p[ok] > 1)):
        raise DsdError("p-values must lie in [0, 1]")
    order = ok[np.argsort(p[ok], kind="stable")]
    m = len(order)
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


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
    lo, hi = 0.0, spread * 4 * np.sqrt(1 / n_a + 1 / n_b)
    while not ok(hi):
        lo, hi = hi, 2 * hi
        if hi > 1e3 * spread:
            return float("inf")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return float(hi)


def spearman(x, y) -> tuple[float, float]:
    """Spearman ρ and its two-sided p (`scipy.stats.spearmanr`); NaN pairs dropped."""
    from scipy import stats as sst

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan"), float("nan")
    r = sst.spearmanr(x, y)
    return float(r.statistic), float(r.pvalue)


def _rank_corr(x, y, axis=-1):
    """Spearman ρ along an axis (vectorized: Pearson correlation of average ranks)."""
    from scipy import stats as sst

    rx = sst.rankdata(x, axis=axis)
    ry = sst.rankdata(y, axis=axis)
    rx = rx - rx.mean(axis=axis, keepdims=True)
    ry = ry - ry.mean(axis=axis, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(axis=axis) / np.sqrt((rx**2).sum(axis=axis) * (ry**2).sum(axis=axis))


def spearman_interval(x, y, *, resamples: int = 10_000, level: float = 0.95,
                      seed=0) -> Interval:
    """Spearman ρ with a percentile bootstrap interval over (x, y) pairs
    (`scipy.stats.bootstrap`, paired, vectorized ρ); resamples where x or y is constant are
    left out of the quantiles."""
    from scipy import stats as sst

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    rho, _ = spearman(x, y)
    if np.isnan(rho):
        return Interval(rho, float("nan"), float("nan"))
    with warnings.catch_warnings():  # scipy warns when constant resamples make its CI NaN
        warnings.simplefilter("ignore", sst.DegenerateDataWarning)
        boot = sst.bootstrap((x, y), _rank_corr, paired=True, vectorized=True,
                             n_resamples=resamples, method="percentile", rng=_rng(seed))
    d = boot.bootstrap_distribution
    q = (1 - level) / 2
    lo, hi = np.nanquantile(d, [q, 1 - q])
    return Interval(rho, float(lo), float(hi))


# ---- exact comparisons of normalized EDFs (issue 28) --------------------------------------
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
                     permutations: int = 10_000, seed=0, chunk: int = 2000) -> PermTest:
    """Within-stratum permutation tests of the (weighted) rank statistic and KS D (issue 28).

    Null: within each stratum (a complexity bin, a device), errors are exchangeable between
    the two samples. Each permutation reassigns the errors of a stratum at random to that
    stratum's slots; a slot keeps its side and its weight (weights are normalized per side),
    so the test is exact for that null whatever the weights. Statistics: prob, as
    `rank_test` (two-sided: |prob − μ| with μ its exact permutation mean, `_perm_mean`; μ = ½
    when each stratum has the same share of both sides' weight, as with NDS weights) and D, as
    `ks_statistic`. p = (1 + #{permuted ≥ observed})/(1 + permutations): never below
    1/(1 + permutations), and P(p ≤ α) ≤ α. Vectorized: `chunk` permutations at a time.
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


# ---- power from each side's own EDF (issue 28) --------------------------------------------
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
    lo, hi = 0.0, spread * 4 * np.sqrt(1 / len(a) + 1 / len(b))
    while not ok(hi):
        lo, hi = hi, 2 * hi
        if hi > 1e3 * spread:
            return float("inf")
    while hi - lo > tol:
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return float(hi)
