"""Pure statistics of design-space comparison (NOTES §6; NDS §4, DDS §2-3).

Every function takes plain arrays and returns numbers, arrays or small named tuples; nothing
here reads the store or draws a figure. Randomness is explicit: pass a seed or a
`numpy.random.Generator` (never global seeding).

- `edf`, `edf_at`: the error EDF F(e) = Σ w_i·1[e_i < e] (w_i = 1/n unweighted).
- `nds_weights`, `common_range`, `bin_counts`, `max_bins`: the NDS complexity normalization (k
  bins over a common range, weight 1/(k·m) in a bin of m models, 0 outside); they live in
  `binning`, with one pair's bins, and are re-exported here.
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
- `rank_test`: Mann–Whitney (`scipy.stats.mannwhitneyu`) and its weighted analogue.
- `holm`: Holm's step-down adjustment.
- `spearman`, `spearman_interval`: Spearman ρ (`scipy.stats.spearmanr`) and its paired bootstrap
  interval.

Elsewhere, by job: `intervals` (Δmean/Δmedian with bootstrap intervals), `permutation`
(within-bin permutation tests), `power` (the minimum detectable shift), `binning`.

Differences from pycls / nds: KS and the EDF are computed from the raw samples (no resampling on
a grid), and random-search efficiency is computed in closed form instead of by simulation.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from ..errors import DsdError
from .binning import bin_counts, common_range, max_bins, nds_weights  # noqa: F401 (re-export)


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
def search_efficiency(errors, weights=None, ms=None, *, level: float | None = None) -> tuple:
    """Expected minimum error of m models drawn with replacement (probability ∝ weight), and
    its standard deviation, for each experiment size m (NDS; DDS Fig. 9): (ms, mean, std).

    With `level` (e.g. 0.95), also the central interval of the best error of m draws, (ms,
    mean, std, lo, hi): quantiles of that exact distribution, so the band never leaves the
    observed errors (mean ± 2 std does: below the lowest error for small samples).

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
    if level is None:
        return ms, mean, np.sqrt(var)
    cdf = np.cumsum(prob, axis=1)  # P(best of m <= e_(i)), per m
    q = (1 - level) / 2
    lo = e[np.minimum(np.argmax(cdf >= q - 1e-12, axis=1), len(e) - 1)]
    hi = e[np.minimum(np.argmax(cdf >= 1 - q - 1e-12, axis=1), len(e) - 1)]
    return ms, mean, np.sqrt(var), lo, hi


# ---- rank test, multiple testing, Spearman (issue 14) -------------------------------------
class Interval(NamedTuple):
    """An estimate and its interval (`spearman_interval`, `intervals.bootstrap_diff`)."""

    estimate: float
    lo: float
    hi: float


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
