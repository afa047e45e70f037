"""Sequential comparisons (dsd.analysis.sequential, issue 28): boundaries against published
values and exact integrals, the spending function, Type I error and power by simulation,
`decide` on crafted data, failed models, and bad designs."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats as sst

from dsd.analysis import sequential as sq
from dsd.analysis import stats
from dsd.errors import DsdError


def rejections(r: sq.Replays) -> np.ndarray:
    return np.isin(r.decision, [sq.A_BETTER, sq.B_BETTER])


# --- spending and boundaries -----------------------------------------------------------------

def test_boundaries_match_published_ld_obf_five_looks():
    # ldbounds / gsDesign (sfLDOF), two-sided symmetric α = 0.05, 5 equally spaced looks
    c = sq.boundaries([0.2, 0.4, 0.6, 0.8, 1.0], 0.05)
    np.testing.assert_allclose(c, [4.877, 3.357, 2.680, 2.290, 2.031], atol=1e-3)


def test_boundaries_spend_exactly_by_bivariate_normal_integral():
    # unequal spacing, checked against scipy's bivariate normal CDF (independent of the grid)
    t, alpha = np.array([0.35, 1.0]), 0.05
    c1, c2 = sq.boundaries(t, alpha)
    rho = math.sqrt(t[0] / t[1])
    mvn = sst.multivariate_normal(mean=[0, 0], cov=[[1, rho], [rho, 1]])
    inside_both = (mvn.cdf([c1, c2]) - mvn.cdf([-c1, c2]) - mvn.cdf([c1, -c2])
                   + mvn.cdf([-c1, -c2]))
    assert 2 * sst.norm.sf(c1) == pytest.approx(2 * sq.spending(t[0], alpha / 2), rel=1e-8)
    assert 1 - inside_both == pytest.approx(alpha, abs=2e-5)


def test_spending_function_values():
    # 2 − 2Φ(z_{α/2}/√t): by hand, z_{0.025} = 1.959964, t = 0.5 → 2 − 2Φ(2.771808) = 0.0055746
    assert sq.spending(0.5, 0.05) == pytest.approx(0.0055746, abs=1e-7)
    assert sq.spending(1.0, 0.05) == pytest.approx(0.05)
    assert sq.spending(0.0, 0.05) == 0.0
    assert sq.spending(1e-4, 0.05) < 1e-100
    v = sq.spending(np.linspace(0.05, 1, 20), 0.025)
    assert isinstance(v, np.ndarray) and np.all(np.diff(v) > 0) and v[-1] == pytest.approx(0.025)


def test_boundaries_without_new_information_repeat_and_spend_nothing():
    c = sq.boundaries([0.5, 0.5, 1.0], 0.05)
    assert c[1] == c[0]
    np.testing.assert_allclose(c[[0, 2]], sq.boundaries([0.5, 1.0], 0.05))
    with pytest.raises(DsdError, match="non-decreasing"):
        sq.boundaries([0.6, 0.5], 0.05)


def test_information_gives_exact_nested_mann_whitney_correlation():
    # corr(U_j, U_k) = √(I_j/I_k) with I = ab/(a+b+1): check by simulation of nested samples
    rng = np.random.default_rng(0)
    x, y = rng.random((20000, 12)), rng.random((20000, 9))
    u1 = (x[:, :4, None] < y[:, None, :3]).sum((1, 2))
    u2 = (x[:, :, None] < y[:, None, :]).sum((1, 2))
    r = np.corrcoef(u1, u2)[0, 1]
    assert r == pytest.approx(math.sqrt(sq.information(4, 3) / sq.information(12, 9)), abs=0.01)


# --- the statistics at a look ------------------------------------------------------------------

def test_look_statistic_is_tie_corrected_mann_whitney_and_rank_prob():
    rng = np.random.default_rng(1)
    a, b = np.round(rng.normal(0, 1, 40), 1), np.round(rng.normal(0.4, 1, 40), 1)
    a[[3, 17]] = np.nan  # failed models
    rows = sq.decide(a, b, sq.SequentialDesign(max_n=40, looks=1))
    ok = a[np.isfinite(a)]
    mw = sst.mannwhitneyu(b, ok, use_continuity=False, method="asymptotic")
    z = sst.norm.isf(mw.pvalue / 2) * np.sign(mw.statistic - len(ok) * len(b) / 2)
    (row,) = rows
    assert (row.n_a, row.n_b) == (38, 40)
    assert row.statistic == pytest.approx(z, rel=1e-9)
    assert row.p_prob == pytest.approx(stats.rank_test(ok, b).prob)
    assert row.statistic > 0 and row.p_prob > 0.5  # A drawn lower: positive z, P(A<B) > ½


# --- Type I error and power by simulation ----------------------------------------------------

@pytest.mark.parametrize("method,looks", [("group", 10), ("anytime", 50)])
def test_type1_error_under_h0_by_simulation(method, looks):
    rng = np.random.default_rng(2026)
    R = 2000
    se = math.sqrt(0.05 * 0.95 / R)
    A, B = rng.normal(size=(R, 50)), rng.normal(size=(R, 50))
    d = sq.SequentialDesign(method, 0.05, 50, looks)
    rate = rejections(sq.replay(A, B, d)).mean()
    assert rate <= 0.05 + 3 * se
    if method == "group":  # the spending is used up, not wasted
        assert rate >= 0.05 - 3 * se


def test_anytime_type1_with_heavy_ties():
    # errors on a coarse grid: the tie-breaking draws keep the ranks exact
    rng = np.random.default_rng(7)
    R = 2000
    A = np.floor(rng.normal(size=(R, 50))).clip(-2, 2)
    B = np.floor(rng.normal(size=(R, 50))).clip(-2, 2)
    rate = rejections(sq.replay(A, B, sq.SequentialDesign("anytime", 0.05, 50, 50))).mean()
    assert rate <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / R)


def test_anytime_wealth_is_a_martingale_exactly():
    # distinct values in all 7! orders are equally likely under H0: E[W] = 1 at every step
    orders = np.array(list(itertools.permutations(range(7))), dtype=float)
    A, B = orders[:, 0::2], np.concatenate([orders[:, 1::2], np.full((len(orders), 1), np.nan)],
                                           axis=1)
    steps = sq._pass(A, B, seed=0)
    logw, _ = sq._log_wealth(steps.signal)
    np.testing.assert_allclose(np.exp(logw).mean(0), 1.0, atol=1e-12)
    assert np.exp(logw).max() > 1.5  # and it is not trivially constant


@pytest.mark.parametrize("method,looks", [("group", 10), ("anytime", 50)])
def test_power_and_direction_under_a_shift(method, looks):
    rng = np.random.default_rng(11)
    R = 400
    A, B = rng.normal(size=(R, 50)), rng.normal(1.0, 1, size=(R, 50))  # A's errors lower
    r = sq.replay(A, B, sq.SequentialDesign(method, 0.05, 50, looks))
    assert np.mean(r.decision == sq.A_BETTER) > 0.85
    assert np.mean(r.decision == sq.B_BETTER) == 0
    assert np.mean(r.n_a + r.n_b) < 100  # stops before max_n on average
    flipped = sq.replay(B, A, sq.SequentialDesign(method, 0.05, 50, looks))
    assert np.mean(flipped.decision == sq.B_BETTER) > 0.85


# --- decide on crafted data ------------------------------------------------------------------

@pytest.mark.parametrize("method", ["group", "anytime"])
def test_decide_stops_early_on_a_big_shift(method):
    rng = np.random.default_rng(3)
    a = rng.normal(10, 1, 100)
    b = a + 100  # every B model is worse
    rows = sq.decide(a, b, sq.SequentialDesign(method, max_n=100, looks=10))
    assert rows[-1].decision == "A better"
    assert rows[-1].look <= 3 and all(r.decision == "continue" for r in rows[:-1])
    assert rows[-1].p_prob == 1.0 and rows[-1].statistic >= rows[-1].threshold
    assert sq.decide(b, a, sq.SequentialDesign(method, max_n=100, looks=10))[-1].decision == \
        "B better"
    if method == "group":  # z at look 2 (20 vs 20, no overlap) crosses 4.88, look 1 cannot
        assert rows[-1].look == 2


@pytest.mark.parametrize("method", ["group", "anytime"])
def test_decide_identical_distributions_reach_max_n(method):
    a = np.random.default_rng(4).normal(size=60)
    rows = sq.decide(a, a.copy(), sq.SequentialDesign(method, max_n=60, looks=6))
    assert [r.look for r in rows] == [1, 2, 3, 4, 5, 6]
    assert rows[-1].decision == "max n" and rows[-1].alpha_spent == pytest.approx(0.05)
    assert all(r.decision == "continue" for r in rows[:-1])


def test_decide_continues_when_data_run_out_and_reports_nothing_before_the_first_look():
    a = np.random.default_rng(5).normal(size=35)
    d = sq.SequentialDesign(max_n=100, looks=10)
    rows = sq.decide(a, a[::-1].copy(), d)
    assert [r.look for r in rows] == [1, 2, 3] and rows[-1].decision == "continue"
    assert [r.n_a for r in rows] == [10, 20, 30]
    assert sq.decide(a[:9], a[:9], d) == []
    # models past max_n are ignored
    assert sq.decide(np.r_[a, a, a], np.r_[a, a, a], sq.SequentialDesign(max_n=30, looks=3)
                     )[-1].look == 3


@pytest.mark.parametrize("method", ["group", "anytime"])
def test_earlier_looks_do_not_change_when_more_models_arrive(method):
    rng = np.random.default_rng(13)
    a, b = np.round(rng.normal(size=80)), np.round(rng.normal(size=80))  # many ties
    a[7] = np.nan
    d = sq.SequentialDesign(method, 0.05, 80, 8)
    full = sq.decide(a, b, d)
    assert full[-1].look > 3
    assert sq.decide(a[:35], b[:47], d) == full[:3]


def test_group_boundaries_and_spending_follow_the_actual_sizes():
    rng = np.random.default_rng(6)
    a, b = rng.normal(size=50), rng.normal(size=50)
    d = sq.SequentialDesign(max_n=50, looks=5)
    full = sq.decide(a, b, d)
    a2 = a.copy()
    a2[[2, 31, 49]] = np.nan  # failed models, one in the last look
    holes = sq.decide(a2, b, d)
    assert [(r.n_a, r.n_b) for r in holes] == [(9, 10), (19, 20), (29, 30), (38, 40), (47, 50)]
    planned = [r.threshold for r in full]
    np.testing.assert_allclose(planned, sq.boundaries(
        sq.information(np.arange(10, 51, 10), np.arange(10, 51, 10)) / sq.information(50, 50),
        0.05))
    t = sq.information([r.n_a for r in holes], [r.n_b for r in holes]) / sq.information(50, 50)
    assert holes[0].alpha_spent == pytest.approx(2 * sq.spending(t[0], 0.025))
    assert holes[0].threshold > planned[0]  # less information spends less, boundary higher
    assert holes[-1].alpha_spent == pytest.approx(0.05)  # final look spends what is left
    assert holes[-1].threshold != planned[-1]


def test_decide_equals_replay_row_by_row(monkeypatch):
    monkeypatch.setattr(sq, "CHUNK", 7)  # replay in several chunks
    rng = np.random.default_rng(8)
    A, B = rng.normal(size=(30, 40)), rng.normal(0.5, 1, size=(30, 40))
    A[rng.random(A.shape) < 0.05] = np.nan
    for method, looks in [("group", 8), ("anytime", 40)]:
        d = sq.SequentialDesign(method, 0.05, 40, looks)
        r = sq.replay(A, B, d)
        for i in range(len(A)):
            last = sq.decide(A[i], B[i], d)[-1]
            assert (last.look, sq.DECISIONS.index(last.decision), last.n_a, last.n_b) == \
                (r.look[i], r.decision[i], r.n_a[i], r.n_b[i])
            assert last.statistic == pytest.approx(r.statistic[i])


def test_anytime_rows_report_log_wealth_against_log_one_over_alpha():
    rng = np.random.default_rng(9)
    rows = sq.decide(rng.normal(size=20), rng.normal(size=20),
                     sq.SequentialDesign("anytime", 0.1, 20, 4))
    assert all(r.threshold == pytest.approx(math.log(10)) and r.alpha_spent == 0.1
               for r in rows)
    assert [r.n_a for r in rows] == [5, 10, 15, 20]


def test_futility_is_non_binding_and_stated_rule():
    rng = np.random.default_rng(10)
    R = 2000
    A, B = rng.normal(size=(R, 50)), rng.normal(size=(R, 50))
    eff = sq.SequentialDesign("group", 0.05, 50, 10)
    fut = sq.SequentialDesign("group", 0.05, 50, 10, futility=True)
    r0, r1 = sq.replay(A, B, eff), sq.replay(A, B, fut)
    stopped = r1.decision == sq.FUTILE
    assert stopped.mean() > 0.3  # it stops null comparisons
    assert np.all(r1.look[stopped] >= 5) and np.all(r1.look[stopped] < 10)  # t ≥ ½, interim
    # the same efficacy boundaries: a sequence rejected with futility is rejected without it
    assert np.all(rejections(r0)[rejections(r1)])
    assert np.all(r1.look[rejections(r1)] == r0.look[rejections(r1)])
    rows = sq.decide(A[np.flatnonzero(stopped)[0]], B[np.flatnonzero(stopped)[0]], fut)
    z, t = rows[-1].statistic, sq.information(rows[-1].n_a, rows[-1].n_b) / sq.information(50, 50)
    cfin = sq.boundaries(sq.information(np.arange(5, 51, 5), np.arange(5, 51, 5))
                         / sq.information(50, 50), 0.05)[-1]
    cp = sst.norm.cdf((abs(z) * math.sqrt(t) + abs(z) / math.sqrt(t) * (1 - t) - cfin)
                      / math.sqrt(1 - t))
    assert rows[-1].decision == "futile" and cp < sq.FUTILITY_CP and t >= sq.FUTILITY_FROM


# --- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("kw,match", [
    ({"method": "bayes"}, "method 'bayes'"),
    ({"alpha": 0.0}, "alpha 0.0"),
    ({"alpha": 1.5}, "alpha 1.5"),
    ({"max_n": 0}, "max_n 0"),
    ({"max_n": 10.5}, "max_n 10.5"),
    ({"looks": 0}, "looks 0"),
    ({"looks": 200}, r"looks 200 must be between 1 and max_n \(100\)"),
    ({"method": "anytime", "futility": True}, "futility applies to method 'group' only"),
    ({"futility": "yes"}, "futility 'yes'"),
])
def test_bad_designs_raise_dsd_error(kw, match):
    d = sq.SequentialDesign(**kw)
    with pytest.raises(DsdError, match=match):
        d.validate()
    with pytest.raises(DsdError, match=match):
        sq.decide([1.0] * 10, [2.0] * 10, d)


def test_bad_data_raise_dsd_error():
    d = sq.SequentialDesign(max_n=10, looks=2)
    with pytest.raises(DsdError, match="1-D"):
        sq.decide([[1.0, 2.0]], [1.0, 2.0], d)
    with pytest.raises(DsdError, match="numbers"):
        sq.decide(["x"] * 10, [1.0] * 10, d)


def test_look_sizes():
    assert sq.SequentialDesign(max_n=100, looks=10).look_sizes() == list(range(10, 101, 10))
    assert sq.SequentialDesign(max_n=25, looks=4).look_sizes() == [7, 13, 19, 25]
    assert sq.SequentialDesign("anytime", max_n=5, looks=5).look_sizes() == [1, 2, 3, 4, 5]


# --- the benchmark script --------------------------------------------------------------------

def test_bench_pair_counts_models_decisions_and_type1():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import bench_sequential as bench

    rng = np.random.default_rng(12)
    a, b = rng.normal(10, 1, 30), rng.normal(12, 1, 30)  # A clearly better
    a[4] = np.nan  # one failed model
    res = bench.bench_pair(a, b, orders=40, perms=100, rng=np.random.default_rng(0))
    assert res["fixed_n"] == 59 and res["max_n"] == 30 and res["fixed"]["decision"] == "A better"
    for d in res["designs"].values():
        assert d["decisions_pct"]["A better"] > 90 and d["agree_pct"] > 90
        assert d["used_mean"] < 59 and 0 < d["saved_pct"] < 100
        assert d["used_ci"][0] <= d["used_mean"] <= d["used_ci"][1]
        assert 0 <= d["type1_ci"][0] <= d["type1"] <= d["type1_ci"][1] <= 1
    assert bench.short("anynetxe→regnetx") == "E→RegNetX"
