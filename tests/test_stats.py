"""dsd.analysis.stats, binning, intervals, permutation and power against hand-computed cases,
scipy and simulation (NOTES §6)."""
import numpy as np
import pytest
from scipy import stats as sst

from dsd.analysis import binning, intervals, permutation, power, stats
from dsd.errors import DsdError


# ---- EDF ----------------------------------------------------------------------------------
def test_edf_hand_values():
    e = [3.0, 1.0, 2.0, 2.0]
    # F(e) = (1/n)·Σ 1[e_i < e]: strict inequality
    assert stats.edf_at(e, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5]).tolist() == \
        [0.0, 0.0, 0.25, 0.25, 0.75, 0.75, 1.0]
    x, f = stats.edf(e)  # step points: F just after each distinct error
    assert x.tolist() == [1.0, 2.0, 3.0]
    assert f.tolist() == [0.25, 0.75, 1.0]


def test_edf_weighted_hand_values():
    x, f = stats.edf([1.0, 2.0, 3.0], [0.5, 0.25, 0.25])
    assert f.tolist() == [0.5, 0.75, 1.0]
    # weights are normalized; zero weights drop out
    x, f = stats.edf([1.0, 2.0, 3.0, 9.0], [2, 1, 1, 0])
    assert x.tolist() == [1.0, 2.0, 3.0] and f.tolist() == [0.5, 0.75, 1.0]
    assert stats.edf_at([1.0, 2.0, 3.0], [2.0, 3.0], [0.5, 0.25, 0.25]).tolist() == [0.5, 0.75]


def test_edf_is_monotone_in_unit_interval():
    rng = np.random.default_rng(0)
    x, f = stats.edf(rng.normal(size=200))
    assert np.all(np.diff(x) > 0) and np.all(np.diff(f) > 0)
    assert f[-1] == pytest.approx(1.0) and f[0] > 0


def test_edf_rejects_empty_and_bad_input():
    with pytest.raises(DsdError):
        stats.edf([])
    with pytest.raises(DsdError):
        stats.edf([1.0, np.nan])
    with pytest.raises(DsdError):
        stats.edf([1.0, 2.0], [1.0])


# ---- NDS normalization --------------------------------------------------------------------
def test_nds_weights_hand_case():
    # range [0, 4], 2 bins: [0, 2) holds 0.5, 1, 1.5 (m=3); [2, 4] holds 3 and 4 (m=2); 5 out
    w = stats.nds_weights([0.5, 1.0, 1.5, 3.0, 4.0, 5.0], 0.0, 4.0, 2)
    assert w.tolist() == pytest.approx([1 / 6, 1 / 6, 1 / 6, 1 / 4, 1 / 4, 0.0])


def test_nds_weights_sum_to_one_and_flatten_histogram():
    rng = np.random.default_rng(1)
    flops = np.exp(rng.normal(np.log(120e6), 0.08, size=500))  # peaked, not uniform
    lo, hi = np.quantile(flops, [0.05, 0.95])
    k = 10
    w = stats.nds_weights(flops, lo, hi, k)
    assert w.sum() == pytest.approx(1.0)
    assert np.all(w[(flops < lo) | (flops > hi)] == 0)
    hist, _ = np.histogram(flops, bins=np.linspace(lo, hi, k + 1), weights=w)
    assert hist == pytest.approx(np.full(k, 1 / k))
    raw, _ = np.histogram(flops, bins=np.linspace(lo, hi, k + 1))
    assert raw.max() > 2 * raw.min()  # the unweighted histogram was far from flat


def test_nds_weights_empty_bin_suggests_fewer_bins():
    v = [0.0, 0.1, 0.2, 0.9, 1.0]
    with pytest.raises(DsdError, match=r"bins of sweep 'x' are empty.*fewer bins \(--bins 2"):
        stats.nds_weights(v, 0.0, 1.0, 5, name="sweep 'x'",
                          suggest=stats.max_bins([v], 0.0, 1.0, 4))
    assert stats.max_bins([v], 0.0, 1.0, 4) == 2


def test_common_range():
    assert stats.common_range([1, 5, 9], [3, 4, 12]) == (3.0, 9.0)
    with pytest.raises(DsdError, match="do not overlap"):
        stats.common_range([1, 2], [3, 4])


# ---- KS -----------------------------------------------------------------------------------
@pytest.mark.parametrize("n1,n2,shift", [(5, 7, 0.0), (40, 60, 0.5), (100, 1000, 0.0),
                                         (300, 500, 0.2)])
def test_ks_equals_scipy(n1, n2, shift):
    rng = np.random.default_rng(n1 + n2)
    a = rng.normal(size=n1)
    b = rng.normal(shift, 1, size=n2)
    ref = sst.ks_2samp(a, b)
    r = stats.ks(a, b)
    assert r.D == ref.statistic and r.p == ref.pvalue
    assert stats.ks_statistic(a, b) == pytest.approx(ref.statistic, abs=1e-12)


def test_ks_statistic_with_ties_equals_scipy():
    a = np.array([1, 1, 2, 3, 3, 3, 5], dtype=float)
    b = np.array([1, 2, 2, 2, 4, 5], dtype=float)
    assert stats.ks_statistic(a, b) == pytest.approx(sst.ks_2samp(a, b).statistic)


def test_weighted_ks_hand_case_and_uniform_weights():
    # F_a: 0.9 at 1, 1.0 at 2; F_b: 0.5 at 1, 1.0 at 3 → D = max(|0.9-0.5|, |1-0.5|) = 0.5
    r = stats.ks([1.0, 2.0], [1.0, 3.0], [0.9, 0.1], [0.5, 0.5])
    assert r.D == pytest.approx(0.5) and r.method == "kish-asymp"
    # equal weights: the same D as scipy and scipy's asymptotic p-value
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=400), rng.normal(0.1, 1, size=600)
    r = stats.ks(a, b, np.ones(400), np.ones(600))
    ref = sst.ks_2samp(a, b, method="asymp")
    assert r.D == pytest.approx(ref.statistic) and r.p == pytest.approx(ref.pvalue)


def test_effective_n():
    assert stats.effective_n(np.ones(10)) == pytest.approx(10)
    assert stats.effective_n([1, 1, 0, 0]) == pytest.approx(2)
    assert stats.effective_n([3, 1]) == pytest.approx(16 / 10)


# ---- bootstrap ----------------------------------------------------------------------------
def test_edf_band_contains_edf_and_is_seeded():
    rng = np.random.default_rng(4)
    e = rng.normal(size=200)
    _, lo, hi = stats.edf_band(e, resamples=300, seed=1)
    _, f = stats.edf(e)
    assert np.all(lo <= f + 1e-12) and np.all(f <= hi + 1e-12)
    assert np.all(hi - lo < 0.2) and np.mean(hi - lo) > 0.02
    _, lo2, hi2 = stats.edf_band(e, resamples=300, seed=1)
    assert np.array_equal(lo, lo2) and np.array_equal(hi, hi2)


def test_best_range_planted():
    # error is lowest at value 3 (|v - 3| + small noise): best range must sit at 3
    rng = np.random.default_rng(5)
    v = rng.uniform(0, 10, size=400)
    e = 5 + np.abs(v - 3) + rng.normal(0, 0.05, size=400)
    r = stats.best_range(v, e, resamples=2000, seed=0)
    assert r.k == 100 and r.n == 400
    assert r.lo <= 3 <= r.hi
    assert abs(r.median - 3) < 0.15 and r.hi - r.lo < 0.6
    assert stats.best_range(v, e, resamples=2000, seed=0) == r  # seeded


def test_best_range_discrete_hand_case():
    # every value-2 model beats every other: the best of any draw containing one is 2
    v = np.array([1] * 40 + [2] * 40 + [4] * 40, dtype=float)
    e = np.array([10.0] * 40 + [5.0] * 40 + [9.0] * 40)
    r = stats.best_range(v, e, resamples=1000, seed=0)
    # P(no value-2 model among k = 30 draws) = (2/3)^30 ≈ 5e-6
    assert (r.median, r.lo, r.hi) == (2.0, 2.0, 2.0)


def test_best_range_generator_and_errors():
    g = np.random.default_rng(0)
    r = stats.best_range([1, 2, 3, 4], [4, 3, 2, 1], resamples=100, seed=g)
    assert 1 <= r.lo <= r.median <= r.hi <= 4 and r.k == 1
    with pytest.raises(DsdError):
        stats.best_range([], [])


# ---- random search efficiency -------------------------------------------------------------
def test_search_efficiency_hand_case():
    # errors 1, 2, 3 equally likely, m = 2: P(min=1) = 1-(2/3)² = 5/9, P(2) = 3/9, P(3) = 1/9
    _, mean, std = stats.search_efficiency([3.0, 1.0, 2.0], ms=[1, 2])
    assert mean.tolist() == pytest.approx([2.0, 14 / 9])
    assert std[0] == pytest.approx(np.sqrt(2 / 3))
    assert std[1] == pytest.approx(np.sqrt(26 / 9 - (14 / 9) ** 2))


def test_search_efficiency_weighted_and_default_ms():
    # weights (1/2, 1/2, 0): the error-3 model is never drawn
    ms, mean, _ = stats.search_efficiency([1.0, 2.0, 3.0], [0.5, 0.5, 0.0], ms=[1, 2])
    assert mean.tolist() == pytest.approx([1.5, 1.25])
    ms, mean, _ = stats.search_efficiency(np.arange(100.0))
    assert ms.tolist() == [1, 2, 4, 8, 16, 32, 64]
    assert np.all(np.diff(mean) < 0)


def test_search_efficiency_matches_simulation():
    rng = np.random.default_rng(7)
    e = rng.gamma(2.0, size=50)
    _, mean, std = stats.search_efficiency(e, ms=[4])
    sims = rng.choice(e, size=(100_000, 4)).min(axis=1)
    assert mean[0] == pytest.approx(sims.mean(), abs=0.01)
    assert std[0] == pytest.approx(sims.std(), abs=0.01)


# ---- effect sizes, rank test, Holm, power (issue 14) ---------------------------------------
def test_weighted_bootstrap_equals_scipy_at_equal_weights():
    rng = np.random.default_rng(3)
    a, b = rng.normal(15, 2, 80), rng.normal(16, 2, 90)
    for stat in ("mean", "median"):
        ref = intervals.bootstrap_diff(a, b, stat=stat, resamples=20_000, seed=1)  # scipy
        w = intervals.bootstrap_diff(a, b, np.ones(80), np.ones(90), stat=stat,
                                     resamples=20_000, seed=2)
        f = np.mean if stat == "mean" else np.median
        assert ref.estimate == pytest.approx(f(b) - f(a))
        assert w.lo == pytest.approx(ref.lo, abs=0.08) and w.hi == pytest.approx(ref.hi, abs=0.08)
    # the mean interval has the width of the normal theory: ±1.96·sqrt(s_a²/n_a + s_b²/n_b)
    se = np.sqrt(a.var() / 80 + b.var() / 90)
    r = intervals.bootstrap_diff(a, b, seed=0)
    assert r.hi - r.lo == pytest.approx(2 * 1.96 * se, rel=0.08)


def test_weighted_bootstrap_uses_the_effective_size():
    rng = np.random.default_rng(4)
    a, b = rng.normal(0, 1, 200), rng.normal(0, 1, 200)
    wa = np.r_[np.ones(50), np.full(150, 1 / 3)]  # Kish n = 400²/(50 + 150/9)·… < 200
    narrow = intervals.bootstrap_diff(a, b, np.ones(200), np.ones(200), seed=0)
    wide = intervals.bootstrap_diff(a, b, wa, np.ones(200), seed=0)
    assert stats.effective_n(wa) < 160
    assert wide.hi - wide.lo > narrow.hi - narrow.lo
    assert wide.estimate == pytest.approx(np.average(b) - np.average(a, weights=wa))


def test_rank_test_matches_scipy_and_weighted_analogue_at_equal_weights():
    rng = np.random.default_rng(5)
    a, b = rng.normal(15, 2, 60), rng.normal(16, 2, 70)
    r = stats.rank_test(a, b)
    ref = sst.mannwhitneyu(b, a)
    assert r.p == ref.pvalue and r.prob == pytest.approx(ref.statistic / 4200)
    assert r.prob == pytest.approx(np.mean(a[:, None] < b[None, :]))
    w = stats.rank_test(a, b, np.ones(60), np.ones(70))
    asym = sst.mannwhitneyu(b, a, method="asymptotic", use_continuity=False)
    assert w.prob == pytest.approx(r.prob) and w.p == pytest.approx(asym.pvalue, rel=1e-9)
    # weights move the probability: all weight on a's smallest value → P(a < b) near 1
    wa = np.zeros(60)
    wa[np.argmin(a)] = 1
    assert stats.rank_test(a, b, wa, np.ones(70)).prob == pytest.approx(1.0)


def test_holm_equals_statsmodels_reference():
    # reference values: statsmodels.stats.multitest.multipletests(p, method="holm")[1]
    assert stats.holm([0.01, 0.04, 0.03, 0.005, 0.2]).tolist() == \
        pytest.approx([0.04, 0.09, 0.09, 0.025, 0.2])
    assert stats.holm([0.02, 0.02, 0.5, 0.001]).tolist() == \
        pytest.approx([0.06, 0.06, 0.5, 0.004])
    out = stats.holm([0.01, np.nan, 0.04])  # NaN: not a member of the family
    assert np.isnan(out[1]) and out[[0, 2]].tolist() == pytest.approx([0.02, 0.04])
    with pytest.raises(DsdError, match=r"\[0, 1\]"):
        stats.holm([0.5, 1.5])


def test_holm_equals_statsmodels_on_random_pvalues():
    multitest = pytest.importorskip("statsmodels.stats.multitest")
    p = np.random.default_rng(6).uniform(0, 0.2, 25) ** 2
    assert stats.holm(p) == pytest.approx(multitest.multipletests(p, method="holm")[1])


def test_min_detectable_shift_matches_normal_theory():
    # rank test, normal errors: shift ≈ (z_.975 + z_.8)·σ·sqrt(1/n_a + 1/n_b)·sqrt(π/3)
    rng = np.random.default_rng(7)
    pooled = rng.normal(15, 1.5, 4000)
    mds = power.min_detectable_shift(pooled, None, 100, 100, seed=0)
    theory = 2.8016 * 1.5 * np.sqrt(2 / 100) * np.sqrt(np.pi / 3)
    assert mds == pytest.approx(theory, rel=0.1)
    assert power.min_detectable_shift(pooled, None, 400, 400, seed=0) == \
        pytest.approx(mds / 2, rel=0.15)
    got = power.rank_power(pooled, None, 100, 100, [0.0, mds, 3 * mds], seed=1)
    assert got[0] < 0.1 and 0.72 < got[1] < 0.88 and got[2] > 0.99


def test_spearman_interval_is_scipys_bootstrap_of_spearmanr():
    rng = np.random.default_rng(8)
    x = rng.integers(1, 6, 60).astype(float)  # ties
    y = x + rng.normal(0, 2, 60)
    idx = rng.integers(0, 60, (5, 60))
    for i in idx:  # the vectorized statistic is spearmanr row by row
        assert stats._rank_corr(x[i][None], y[i][None])[0] == \
            pytest.approx(sst.spearmanr(x[i], y[i]).statistic)
    r = stats.spearman_interval(x, y, resamples=2000, seed=0)
    ref = sst.bootstrap((x, y), lambda a, b: sst.spearmanr(a, b).statistic, paired=True,
                        vectorized=False, n_resamples=2000, method="percentile",
                        rng=np.random.default_rng(1)).confidence_interval
    assert r.estimate == pytest.approx(sst.spearmanr(x, y).statistic)
    assert r.lo == pytest.approx(ref.low, abs=0.05) and r.hi == pytest.approx(ref.high, abs=0.05)
    assert np.isnan(stats.spearman(np.ones(10), np.arange(10.0))[0])


# ---- issue 28: robust bins, within-bin permutation tests, own-EDF power -------------------
def test_bin_count_is_one_rule_of_the_sample_sizes():
    assert binning.bin_count(100, 99) == 9 and binning.bin_count(100, 100) == 10
    assert binning.bin_count(3, 500) == 2  # at least 2
    assert binning.bin_count(1000, 1000, up_to=20) == 20
    assert binning.bin_count(100, 100, 4) == 4
    with pytest.raises(DsdError, match="bins must be a positive integer"):
        binning.bin_count(10, 10, 0)


def test_shared_bins_hand_case_and_dropped_bins():
    va = np.arange(0.0, 101.0)  # 0..100
    vb = np.arange(50.0, 151.0)  # 50..150
    sh = binning.shared_bins(va, vb, 5)
    # range: larger 2.5% quantile (B: 52.5) to the smaller 97.5% quantile (A: 97.5)
    assert (sh.lo, sh.hi) == (52.5, 97.5) and sh.k == 5 and sh.used == 5
    assert sh.outside_a == 53 + 3 and sh.outside_b == 3 + 53
    assert (sh.bin_a >= 0).sum() == 45 and set(sh.bin_a[sh.bin_a >= 0]) == set(range(5))
    # a bin that only one side fills is dropped, with its models
    va2 = np.r_[np.linspace(0, 40, 50), np.linspace(60, 100, 50)]  # nothing in (40, 60)
    vb2 = np.linspace(0, 100, 100)
    sh2 = binning.shared_bins(va2, vb2, 10)
    assert sh2.used < 10 and (sh2.bin_b == -1).sum() > sh2.outside_b
    with pytest.raises(DsdError, match="do not overlap"):
        binning.shared_bins(np.arange(10.0), np.arange(20.0, 30.0), 3)


def test_shared_bins_ignore_one_extreme_model():
    rng = np.random.default_rng(0)
    va, vb = rng.uniform(100, 125, 100), rng.uniform(100, 125, 100)
    base = binning.shared_bins(va, vb, 10)
    far = binning.shared_bins(np.r_[va, 400.0], vb, 10)  # one model far outside
    assert far.hi == pytest.approx(base.hi, abs=0.6) and far.lo == pytest.approx(base.lo,
                                                                                 abs=0.6)
    assert far.bin_a[-1] == -1 and far.outside_a == base.outside_a + 1
    # the old rule (min/max) would have been moved by it: not here
    lo, hi = stats.common_range(np.r_[va, 400.0], np.r_[vb, 50.0])
    assert hi - lo > 20
    assert binning.shared_bins(np.r_[va, 400.0], np.r_[vb, 50.0], 10).lo > 100


def test_stratum_weights_flatten_each_side():
    s = np.array([0, 0, 0, 1, 2, 2, -1])
    w = binning.stratum_weights(s)
    assert w.tolist() == pytest.approx([1 / 9] * 3 + [1 / 3] + [1 / 6] * 2 + [0.0])
    assert binning.stratum_weights(np.array([-1, -1])).tolist() == [0.0, 0.0]


def test_permutation_statistics_equal_the_weighted_rank_test_and_ks():
    rng = np.random.default_rng(1)
    a, b = np.round(rng.normal(16, 1.5, 70), 1), np.round(rng.normal(16.5, 1.5, 60), 1)
    sa, sb = rng.integers(0, 4, 70), rng.integers(0, 4, 60)
    wa, wb = binning.stratum_weights(sa), binning.stratum_weights(sb)
    t = permutation.permutation_test(a, b, wa, wb, strata_a=sa, strata_b=sb,
                                     permutations=999, seed=0)
    assert t.prob == pytest.approx(stats.rank_test(a, b, wa, wb).prob, abs=1e-12)
    assert t.D == pytest.approx(stats.ks_statistic(a, b, wa, wb), abs=1e-12)
    # seeded; p never below 1/(1 + R)
    again = permutation.permutation_test(a, b, wa, wb, strata_a=sa, strata_b=sb,
                                         permutations=999, seed=0)
    assert again == t and min(t.rank_p, t.ks_p) >= 1 / 1000
    # the chunk size changes neither the random stream nor p
    assert permutation.permutation_test(a, b, wa, wb, strata_a=sa, strata_b=sb,
                                        permutations=999, seed=0, chunk=7) == t
    far = permutation.permutation_test(np.arange(20.0), np.arange(100.0, 120.0),
                                       permutations=999)
    assert far.rank_p == far.ks_p == 1 / 1000


def test_unstratified_permutation_p_matches_the_exact_tests():
    rng = np.random.default_rng(2)
    a, b = rng.normal(16, 1.5, 40), rng.normal(16.8, 1.5, 35)
    t = permutation.permutation_test(a, b, permutations=20_000, seed=3)
    exact = sst.mannwhitneyu(b, a, method="exact").pvalue
    ks = sst.ks_2samp(a, b, method="exact").pvalue
    mc = 3 * np.sqrt(0.25 / 20_000)  # 3 Monte-Carlo sd at worst
    assert t.rank_p == pytest.approx(exact, abs=mc) and t.ks_p == pytest.approx(ks, abs=mc)


def test_permutation_mean_is_exact_by_enumeration():
    from itertools import permutations, product

    e = np.array([1.0, 2.0, 2.0, 5.0, 3.0, 4.0, 6.0])
    strata = np.array([0, 0, 0, 0, 1, 1, 1])
    side = np.array([True, False, False, True, True, False, False])
    w = np.array([0.2, 0.3, 0.1, 0.5, 0.3, 0.4, 0.2])  # not flat: the mean is not ½
    w = np.where(side, w / w[side].sum(), w / w[~side].sum())
    slots = [np.flatnonzero(strata == k) for k in (0, 1)]
    probs = []
    for p0, p1 in product(permutations(slots[0]), permutations(slots[1])):
        val = np.empty(7)
        val[np.r_[slots[0], slots[1]]] = e[np.r_[p0, p1]]  # errors reassigned within strata
        probs.append(stats.rank_test(val[side], val[~side], w[side], w[~side]).prob)
    assert permutation._perm_mean(e, side, w, strata) == pytest.approx(np.mean(probs),
                                                                       abs=1e-12)
    assert abs(np.mean(probs) - 0.5) > 0.01


def test_within_bin_permutation_test_holds_its_level_on_exchangeable_data():
    # H0: within each bin the spaces' errors are exchangeable. Error rises with the bin
    # (2 points a bin) and the spaces differ in complexity, so bins must be respected: the
    # same test permuting across bins is far off the level. 1000 data sets, 199 permutations:
    # P(p ≤ 0.05) = 10/200 exactly for a continuous statistic; KS D is discrete (ties in the
    # permutation distribution), so its rate may only fall below α.
    rng = np.random.default_rng(7)
    n_sets, rej = 1000, np.zeros(3)
    for i in range(n_sets):
        ca, cb = rng.uniform(0, 1, 60), rng.uniform(0.3, 1.3, 50) ** 0.5
        sh = binning.shared_bins(ca, cb, binning.bin_count(60, 50))
        ea, eb = 2.0 * sh.bin_a + rng.normal(0, 1, 60), 2.0 * sh.bin_b + rng.normal(0, 1, 50)
        wa, wb = binning.stratum_weights(sh.bin_a), binning.stratum_weights(sh.bin_b)
        t = permutation.permutation_test(ea, eb, wa, wb, strata_a=sh.bin_a,
                                         strata_b=sh.bin_b, permutations=199, seed=i)
        across = permutation.permutation_test(ea, eb, wa, wb, permutations=199, seed=i)
        rej += [t.rank_p <= 0.05, t.ks_p <= 0.05, across.rank_p <= 0.05]
    rate = rej / n_sets
    mc = 3 * np.sqrt(0.05 * 0.95 / n_sets)  # 3 Monte-Carlo sd: 0.021
    assert abs(rate[0] - 0.05) <= mc and rate[1] <= 0.05 + mc, rate
    assert abs(rate[2] - 0.05) > mc, rate


def test_shifted_rank_test_equals_scipy_with_ties():
    rng = np.random.default_rng(3)
    xa, xb = np.round(rng.normal(16, 1.5, (300, 50)), 1), np.round(rng.normal(16, 1.5,
                                                                              (300, 40)), 1)
    t = power.ShiftedRankTest(xa, xb)
    for s in (0.0, 0.3, -0.7, 1.25):
        ref = sst.mannwhitneyu(xa, xb + s, axis=1, method="asymptotic").pvalue
        assert np.allclose(t.pvalues(s), ref, rtol=0, atol=1e-12)


def test_hodges_lehmann_hand_case():
    assert power.hodges_lehmann([1.0, 2.0], [3.0, 5.0]) == 2.5  # median of 2, 1, 4, 3


def test_detectable_shift_uses_each_sides_own_spread():
    rng = np.random.default_rng(4)
    a = rng.normal(16, 1.5, 100)
    b = rng.normal(16, 1.5, 100)
    own = power.detectable_shift(a, b, alpha=0.05, seed=0)
    # normal theory for the rank test: 2.80·σ·sqrt(2/n)·sqrt(π/3) = 0.61 points
    assert 0.5 < own < 0.75
    # a location difference of 3 points does not change it; the pooled EDF inflates it
    far = b + 3.0
    assert power.detectable_shift(a, far, alpha=0.05, seed=0) == pytest.approx(own, abs=0.02)
    pooled = power.min_detectable_shift(np.r_[a, far], None, 100, 100, seed=0)
    assert pooled > 1.5 * own
    # a stricter level needs a larger shift (Holm's first step of a family of 6)
    assert power.detectable_shift(a, b, alpha=0.05 / 6, seed=0) > 1.15 * own
    assert np.isnan(power.detectable_shift([1.0], b))


def test_bootstrap_diffs_share_draws_when_weighted_and_equal_bootstrap_diff_when_not():
    rng = np.random.default_rng(5)
    a, b = rng.normal(15, 2, 50), rng.normal(16, 2, 60)
    g = np.random.default_rng(9)
    ref = [intervals.bootstrap_diff(a, b, stat=s, seed=g) for s in ("mean", "median")]
    got = intervals.bootstrap_diffs(a, b, seed=np.random.default_rng(9))
    assert [got["mean"], got["median"]] == ref
    w = intervals.bootstrap_diffs(a, b, np.ones(50), np.ones(60), seed=0)
    for s in ("mean", "median"):
        assert w[s].lo == pytest.approx(got[s].lo, abs=0.15)
        assert w[s].hi == pytest.approx(got[s].hi, abs=0.15)


def test_skip_bootstrap_leaves_the_generator_as_the_bootstrap_does():
    rng = np.random.default_rng(3)
    a, b = rng.normal(15, 2, 83), rng.normal(16, 2, 71)
    wa, wb = rng.random(83) * (rng.random(83) > 0.1), rng.random(71)  # some zero weights
    done, skipped = np.random.default_rng([4, 2]), np.random.default_rng([4, 2])
    intervals.bootstrap_diffs(a, b, wa, wb, resamples=1000, seed=done)
    intervals.skip_bootstrap(skipped, a, b, wa, wb, resamples=1000, chunk=7919)
    assert done.bit_generator.state == skipped.bit_generator.state
    untouched = np.random.default_rng([4, 2]).bit_generator.state
    assert skipped.bit_generator.state != untouched  # it did advance
    with pytest.raises(DsdError, match="weighted"):
        intervals.skip_bootstrap(skipped, a, b, None, None)


def test_the_best_of_m_band_stays_within_the_observed_errors():
    """The band of random-search efficiency is the central 95% of the exact distribution of the
    best of m draws: inside [min, max] of the errors (mean ± 2 std left it for small samples),
    and equal to simulated quantiles."""
    from dsd.analysis import stats

    rng = np.random.default_rng(0)
    e = np.r_[12.73, rng.normal(15, 1.2, 40)]
    ms, mean, std, lo, hi = stats.search_efficiency(e, ms=[1, 8, 32], level=0.95)
    assert np.all(lo >= e.min()) and np.all(hi <= e.max()) and np.all(lo <= mean)
    assert (mean - 2 * std)[-1] < e.min()          # what the old band did at m = 32
    draws = e[rng.integers(0, len(e), size=(200_000, 8))].min(axis=1)
    q = np.quantile(draws, [0.025, 0.975])
    assert lo[1] == pytest.approx(q[0], abs=0.3) and hi[1] == pytest.approx(q[1], abs=0.3)
    assert set(lo) | set(hi) <= set(e)             # quantiles of a discrete distribution
