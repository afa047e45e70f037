"""Effect sizes of a pair with bootstrap intervals (issue 14): Δmean and Δmedian of B − A.

Unweighted: `scipy.stats.bootstrap` (percentile, each side resampled on its own). Weighted
(NDS-normalized rows): each side is resampled by its weights with round(Kish n) draws per
resample (`_draws`), so a resampled mean has the variance of the weighted mean.

`skip_bootstrap` advances a generator exactly as the weighted `bootstrap_diffs` would without
computing anything, so a caller that needs only what comes after the intervals in one random
stream (the permutation test of `effects.compare_pair`) gets the same numbers for less.
"""
from __future__ import annotations

import numpy as np

from ..errors import DsdError
from .stats import Interval, _clean, _rng, effective_n, weighted_mean, weighted_median


def _kish_draws(w) -> int:
    """The draws per resample of the weighted bootstrap: round(Kish n), at least 1."""
    return max(1, int(round(effective_n(w))))


def _draws(e, w, rng, resamples: int) -> np.ndarray:
    """resamples × round(Kish n) draws from e with probability w: the weighted bootstrap.

    Drawing the effective size (not the raw count) gives a resampled mean the variance of the
    weighted mean, σ²·Σw² = σ²/n_eff; with equal weights it is the ordinary bootstrap."""
    return e[rng.choice(len(e), size=(resamples, _kish_draws(w)), p=w)]


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


def skip_bootstrap(rng: np.random.Generator, a, b, wa, wb, *, resamples: int = 10_000,
                   chunk: int = 1 << 20) -> None:
    """Advance `rng` exactly as the weighted `bootstrap_diffs(a, b, wa, wb,
    resamples=resamples, seed=rng)` would, computing nothing (weighted samples only: the
    unweighted bootstrap's draws are scipy's).

    `Generator.choice(n, size, p=w)` takes one uniform double per draw and then searches the
    weights' CDF, so `_draws` takes resamples·round(Kish n) doubles per side; drawing and
    discarding as many (`chunk` at a time) leaves `rng` in the same state (test:
    `test_skip_bootstrap_leaves_the_generator_as_the_bootstrap_does`)."""
    if wa is None and wb is None:
        raise DsdError("skip_bootstrap: only the weighted bootstrap can be skipped")
    _, wa = _clean(a, wa)
    _, wb = _clean(b, wb)
    left = resamples * (_kish_draws(wa) + _kish_draws(wb))
    while left > 0:
        rng.random(min(chunk, left))
        left -= chunk
