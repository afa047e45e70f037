"""`dsd compare` and `dsd analyze --trends` on populations of known truth (issue 14), and on
the published CIFAR-10 population file."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import dsd.cli.analysis  # noqa: F401  (registers the commands)
from dsd.analysis import effects, effects_text, trends, verdicts
from dsd.analysis.tables import fmt_p
from dsd.cli import app
from dsd.errors import DsdError

POPULATION = Path(__file__).resolve().parent.parent / "results/cifar10/population.parquet"
runner = CliRunner()


def population(errors: dict[str, np.ndarray], seed: int = 0, **columns) -> pd.DataFrame:
    """A results frame: one row per model, complexity columns uniform unless given."""
    rng = np.random.default_rng(seed)
    frames = []
    for s, e in errors.items():
        n = len(e)
        cols = {"flops": rng.uniform(112.5e6, 125e6, n), "params": rng.uniform(1e6, 5e6, n),
                "acts": rng.uniform(0.5e6, 1.5e6, n)}
        cols.update({k: v[s] for k, v in columns.items()})
        frames.append(pd.DataFrame({"sweep": s, "top1": e, **cols}))
    return pd.concat(frames, ignore_index=True)


def test_a_two_point_shift_is_decided_with_an_interval_covering_two():
    rng = np.random.default_rng(1)
    df = population({"a": rng.normal(16, 1.5, 100), "b": rng.normal(18, 1.5, 100)})
    d = effects.compare_data(df, normalize=["none", "flops"])
    assert "depends_on" not in d.pairs and d.family_size == 1 and d.primary == "none"
    none, flops = d.pairs.to_dict("records")
    for r in (none, flops):
        assert r["mean_lo"] < 2 < r["mean_hi"] and r["median_lo"] < 2 < r["median_hi"]
        assert r["outcome"] == "A better"
    assert none["role"] == "primary" and none["rank_p_holm"] < 1e-10
    assert none["verdict"].startswith("A better (rank test, P(A<B) = 0.8")
    assert f"Δmean {none['mean_diff']:+.2f} [{none['mean_lo']:+.2f}" in none["verdict"]
    # the sensitivity row: its own unadjusted permutation p, outside the family
    assert flops["role"] == "sensitivity" and np.isnan(flops["rank_p_holm"])
    assert flops["rank_p"] == pytest.approx(1 / 10_001) and flops["permutations"] == 10_000
    assert flops["verdict"].startswith("sensitivity (within-bin permutation rank test): "
                                       "rejected at unadjusted p = 1.0e-04, A better")
    back = effects.compare_data(df[::-1]).pairs.iloc[0]
    assert back["outcome"] == "B better" and back["verdict"].startswith("B better (rank test")


def test_identical_distributions_are_not_decided_and_the_interval_is_quoted():
    rng = np.random.default_rng(2)
    df = population({"a": rng.normal(16, 1.5, 100), "b": rng.normal(16, 1.5, 100)})
    r = effects.compare_data(df).pairs.iloc[0]
    # normal theory for the rank test at α = 0.05: 2.80·σ·sqrt(2/n)·sqrt(π/3) = 0.61 points
    assert 0.45 < r["mds"] < 0.8 and r["mds_alpha"] == 0.05
    assert r["mean_lo"] < 0 < r["mean_hi"] and r["outcome"] == "not decided"
    assert r["verdict"] == (f"not decided (rank test, P(A<B) = {r['rank_prob']:.2f}, p = "
                            f"{fmt_p(r['rank_p'])}); Δmean {r['mean_diff']:+.2f} "
                            f"[{r['mean_lo']:+.2f}, {r['mean_hi']:+.2f}]")
    assert "detectable" not in r["verdict"] and "smaller than" not in r["verdict"]


def _row(**kw):
    r = {"role": "primary", "test": "rank test", "rank_prob": 0.4, "rank_p": 0.01,
         "rank_p_holm": 0.03, "mean_diff": -0.85, "mean_lo": -1.54, "mean_hi": -0.17}
    r.update(kw)
    return r


def test_verdict_wording_cases():
    # rejected at the family's Holm level: the side, the test, the level, the interval
    assert verdicts.verdict(_row(), 6) == (
        "B better", "B better (rank test, P(A<B) = 0.40, Holm p = 0.030 in a family of 6); "
                    "Δmean -0.85 [-1.54, -0.17]")
    o, v = verdicts.verdict(_row(rank_prob=0.7, mean_diff=0.9, mean_lo=0.2, mean_hi=1.6), 6)
    assert o == "A better" and v.startswith("A better (rank test, P(A<B) = 0.70")
    # not rejected, interval covering 0: no bound claimed beyond the interval
    o, v = verdicts.verdict(_row(rank_p_holm=0.4, mean_lo=-1.5, mean_hi=0.3), 6)
    assert o == "not decided" and v == ("not decided (rank test, P(A<B) = 0.40, Holm p = 0.400 "
                                        "in a family of 6); Δmean -0.85 [-1.50, +0.30]")
    # not rejected at the family level but the interval excludes 0: said, not contradicted
    o, v = verdicts.verdict(_row(rank_p_holm=0.21), 6)
    assert o == "not decided" and v.endswith(
        "Δmean -0.85 [-1.54, -0.17]; this unadjusted interval excludes 0")
    # the rank test and the means disagree in direction: said
    assert verdicts.verdict(_row(mean_diff=0.3, mean_lo=0.1, mean_hi=0.5), 2)[1].endswith(
        "the means order the other way")
    # sensitivity rows: their own unadjusted p, labelled
    t = "within-bin permutation rank test"
    assert verdicts.verdict(_row(role="sensitivity", test=t, rank_p=0.002), 6) == (
        "B better", f"sensitivity ({t}): rejected at unadjusted p = 0.002, B better; "
                    "Δmean -0.85 [-1.54, -0.17]")
    o, v = verdicts.verdict(_row(role="sensitivity", test=t, rank_p=0.2, mean_hi=0.4), 6)
    assert o == "not rejected" and "not rejected, unadjusted p = 0.200" in v
    # findings reads the side back from the text
    assert [verdicts._category(verdicts.verdict(r, 6)[1]) for r in (
        _row(), _row(role="sensitivity", rank_p=0.002), _row(rank_p_holm=0.21),
        _row(role="sensitivity", rank_p=0.2))] == ["B better", "B better", "none", "none"]


def test_a_confound_shows_in_the_sensitivity_rows_without_a_dependence_claim():
    # error depends on acts alone; B's models have more acts, so B looks better unnormalized
    rng = np.random.default_rng(3)
    acts = {"a": rng.uniform(0.5e6, 1.5e6, 150), "b": rng.uniform(1.0e6, 2.0e6, 150)}
    err = {s: 20 - 3 * v / 1e6 + rng.normal(0, 0.5, 150) for s, v in acts.items()}
    data = effects.compare_data(population(err, acts=acts), normalize=effects.NORMALIZE,
                                permutations=1000)
    v = dict(zip(data.pairs["normalize"], data.pairs["outcome"]))
    assert v == {"none": "B better", "flops": "B better", "params": "B better",
                 "acts": "not rejected"}
    acts_row = data.pairs.set_index("normalize").loc["acts"]
    assert acts_row["mean_lo"] < 0 < acts_row["mean_hi"]
    assert data.family.startswith("Family: the primary test (rank test, unnormalized) of the "
                                  "one pair asked for, m = 1; a verdict needs p < 0.05.")
    assert "outside the family (unadjusted p): flops, params, acts, device" in data.family
    # one binning rule for the pair: the same bin count for every normalization
    assert data.pairs["bins"].iloc[1:].nunique() == 1 and data.pairs["bins"].iloc[1] == 12
    c = data.complexity.set_index("sweep")
    assert c.loc["a", "rho_acts"] < -0.8 and abs(c.loc["a", "rho_flops"]) < 0.3
    text = "\n".join(effects_text.pairs_lines(data))
    assert max(map(len, text.splitlines())) <= 80
    assert "acts   sensitivity (within-bin permutation rank test): not rejected" in text
    assert "depends on" not in text
    assert "  acts   12 of 12 bins over [" in text


def test_family_is_the_pairs_asked_for_and_extra_sweeps_do_not_move_a_verdict():
    rng = np.random.default_rng(4)
    df = population({s: rng.normal(16 + i * 0.3, 1.5, 60) for i, s in enumerate("abc")})
    two = df[df["sweep"].isin(["a", "b"])]
    cols = ["mean_lo", "mean_hi", "median_lo", "rank_p", "rank_p_holm", "ks_p", "mds",
            "verdict"]
    alone = effects.compare_data(two, normalize="none,flops", permutations=1000).pairs[cols]
    # the pairs given explicitly: a third sweep in the frame changes nothing
    same = effects.compare_data(df, [("a", "b")], normalize="none,flops",
                                permutations=1000).pairs[cols]
    pd.testing.assert_frame_equal(alone, same)
    # each pair its own family: the consecutive pairs of a, b, c leave a vs b as it was
    each = effects.compare_data(df, normalize="none,flops", family="each",
                                permutations=1000)
    assert each.family_size == 1 and "each pair alone" in each.family
    pd.testing.assert_frame_equal(alone, each.pairs[cols].iloc[:2])
    # one family over both pairs: Holm over the 2 primary tests only; MDS at α/2
    d = effects.compare_data(df, normalize="none,flops", permutations=1000)
    prim = d.pairs[d.pairs["role"] == "primary"]
    assert d.family_size == 2 and len(prim) == 2 and "of each of the 2 pairs asked for, m = 2;" \
        " a verdict needs Holm-adjusted p < 0.05 over these 2" in d.family
    from dsd.analysis.stats import holm
    assert prim["rank_p_holm"].tolist() == pytest.approx(holm(prim["rank_p"]).tolist())
    assert d.pairs.loc[d.pairs["role"] == "sensitivity", "rank_p_holm"].isna().all()
    assert (prim["mds_alpha"] == 0.025).all() and prim["mds"].iloc[0] > alone["mds"].iloc[0]
    # a pair's bootstrap and permutation numbers do not depend on the family
    pd.testing.assert_frame_equal(d.pairs[cols[:3] + ["ks_p"]].iloc[:2], alone[cols[:3] +
                                                                            ["ks_p"]])



def test_tests_only_mode_computes_the_same_tests_for_less():
    # what `dsd edf` asks for: no intervals, MDS or complexity table; the tests are unchanged
    # (the normalized rows' permutation tests continue the row's random stream after the
    # skipped bootstrap draws)
    rng = np.random.default_rng(6)
    df = population({s: rng.normal(16 + i * 0.4, 1.5, 50) for i, s in enumerate("abc")})
    tests = ["ks_D", "ks_p", "ks_p_holm", "rank_prob", "rank_p", "rank_p_holm", "n_eff_a"]
    for nz in ("none", "flops"):
        full = effects.compare_data(df, normalize=[nz], permutations=1000, sims=100)
        cheap = effects.compare_data(df, normalize=[nz], permutations=1000, intervals=False,
                                     power=False, complexity=False)
        pd.testing.assert_frame_equal(full.pairs[tests], cheap.pairs[tests])
        assert cheap.pairs[["mean_diff", "mean_lo", "median_hi", "mds"]].isna().all().all()
        assert cheap.pairs["verdict"].isna().all() and cheap.complexity.empty
        assert list(cheap.complexity.columns) == effects.COMPLEXITY_COLUMNS
    with pytest.raises(DsdError, match="power=True needs intervals=True"):
        effects.compare_data(df, intervals=False)

def test_one_extreme_model_does_not_move_the_binning():
    rng = np.random.default_rng(8)
    df = population({"a": rng.normal(16, 1.5, 100), "b": rng.normal(16.5, 1.5, 100)})
    base = effects.compare_data(df, normalize="flops").pairs.iloc[0]
    extreme = pd.DataFrame({"sweep": ["a"], "top1": [30.0], "flops": [400e6],
                            "params": [1e6], "acts": [1e6]})
    more = effects.compare_data(pd.concat([df, extreme], ignore_index=True),
                                normalize="flops").pairs.iloc[0]
    assert more["range_hi"] == pytest.approx(base["range_hi"], rel=0.01)
    assert more["range_lo"] == pytest.approx(base["range_lo"], rel=0.01)
    assert more["bins"] == base["bins"] and more["dropped_a"] >= base["dropped_a"] + 1
    assert more["outcome"] == base["outcome"]
    assert more["mean_diff"] == pytest.approx(base["mean_diff"], abs=0.15)


def _guarded(device_b=("h100",) * 60, **differ):
    rng = np.random.default_rng(9)
    df = population({"a": rng.normal(16, 1.5, 60), "b": rng.normal(16, 1.5, 60)})
    facts = {"samplers": ("dsd1", "dsd1"), "dataset": ("cifar10", "cifar10"),
             "window": ('{"flops": [112500000, 125000000]}',) * 2,
             "recipe_hash": ("cc69", "cc69"), **differ}
    for col, (va, vb) in facts.items():
        df[col] = np.where(df["sweep"] == "a", va, vb)
    df["device"] = np.r_[["h100"] * 60, list(device_b)]
    return df



def test_one_set_of_formatters():
    from dsd.analysis.tables import fmt_ci, fmt_num, fmt_si, wrap

    # p-values: never 0.000, two significant digits below 0.001 (verdicts and tables alike)
    assert [fmt_p(v) for v in (0.5, 0.0012, 8.4e-19, 1 / 10_001, np.nan)] == \
        ["0.500", "0.001", "8.4e-19", "1.0e-04", "–"]
    assert "p = 8.4e-19" in verdicts.verdict(_row(role="sensitivity", rank_p=8.4e-19), 6)[1]
    # complexities: K/M/G with 3 significant digits from 1000 on, as `dsd show` prints them
    # (no 9.374e+04 and no 0.64M in an 80-column table; issue 30)
    assert [fmt_si(v) for v in (118.4e6, 640e3, 93_740, 16.5, 999.6, np.nan)] == \
        ["118M", "640K", "93.7K", "16.5", "1K", "–"]
    assert fmt_num(112.5e6) == "112.5M" and fmt_num(0.0083, ".2g") == "0.0083"
    assert fmt_ci(-0.85, -1.54, -0.17) == "-0.85 [-1.54, -0.17]"
    assert fmt_ci(0.3, np.nan, 0.5) == "–"
    # wrapping keeps "x = y" and intervals whole
    lines = wrap("the rank test gives p = 0.5 and Δmean +1.34 [+0.61, +2.05]", "  ", "    ",
                 width=24)
    assert lines == ["  the rank test gives", "    p = 0.5 and Δmean", "    +1.34 [+0.61, +2.05]"]

def test_warnings_for_sampler_window_dataset_recipe_and_devices():
    assert effects.compare_data(_guarded()).warnings == ()
    d = effects.compare_data(_guarded(samplers=("dsd1", "pycls"), dataset=("cifar10",
                                                                           "cifar100"),
                                      window=('{"flops": [112500000, 125000000]}',
                                              '{"flops": [360000000, 400000000]}'),
                                      recipe_hash=("cc69", "ab12")))
    w = "\n".join(d.warnings)
    assert len(d.warnings) == 4
    assert "a vs b: sampler convention differs (a: dsd1; b: pycls)" in w
    assert "complexity window differs (a: flops [112.5M, 125M]; b: flops [360M, 400M])" in w \
        and "dataset differs" in w and "recipe (hash) differs" in w
    assert d.pairs["normalize"].tolist() == ["none"]  # devices balanced: no device row
    doc = effects_text.to_json(d)
    assert doc["warnings"] == list(d.warnings) and doc["version"] == 2
    text = "\n".join(effects_text.pairs_lines(d))
    assert text.startswith("warning: a vs b: sampler convention differs")


def test_imbalanced_devices_get_a_device_stratified_sensitivity_row():
    # B's second half ran on another device that adds 2 points: the plain comparison sees B
    # worse; within the shared device it does not
    df = _guarded(device_b=["h100"] * 30 + ["h200"] * 30)
    df.loc[(df["sweep"] == "b") & (df["device"] == "h200"), "top1"] += 2.0
    d = effects.compare_data(df)
    assert d.warnings == ("a vs b: devices differ (a: 100% h100; b: 50% h100, 50% h200); see "
                          "the device-stratified row",)
    plain, dev = d.pairs.to_dict("records")
    assert plain["outcome"] == "A better" and dev["normalize"] == "device"
    assert dev["role"] == "sensitivity" and dev["test"] == "within-device permutation rank test"
    assert (dev["n_a"], dev["n_b"], dev["dropped_b"], dev["bins"], dev["bins_used"]) == \
        (60, 30, 30, 2, 1)
    assert dev["mean_lo"] < 0 < dev["mean_hi"] and dev["outcome"] == "not rejected"
    assert "device 1 of 2 devices shared; not used: A 0, B 30" in \
        "\n".join(effects_text.pairs_lines(d))
    assert effects.compare_data(df, devices=False).pairs["normalize"].tolist() == ["none"]


def test_bad_input_is_a_dsd_error():
    with pytest.raises(DsdError, match="allowed values are none, flops, params, acts"):
        effects.parse_normalize("none,flop")
    with pytest.raises(DsdError, match="at least two sweeps"):
        effects.pair_list(["a"])
    df = population({"a": np.arange(5.0), "b": np.arange(5.0)})
    with pytest.raises(DsdError, match="10,000 bootstrap resamples"):
        effects.compare_data(df, resamples=100)
    with pytest.raises(DsdError, match="1,000 permutations"):
        effects.compare_data(df, permutations=100)
    with pytest.raises(DsdError, match="--family all: allowed values are pairs, each"):
        effects.compare_data(df, family="all")


def test_trends_rank_a_planted_dependence_first():
    rng = np.random.default_rng(5)
    n = 100
    d = rng.integers(6, 30, n).astype(float)
    wm = rng.uniform(1.5, 3.0, n)
    sampled = [json.dumps({"d": int(a), "wm": float(b), "b": 1}) for a, b in zip(d, wm)]
    df = pd.DataFrame({"sweep": "r", "top1": 20 - 0.3 * d + rng.normal(0, 1, n),
                       "sampled": sampled, "depth": d, "flops": rng.uniform(1e8, 1.2e8, n)})
    t = trends.trends(df, resamples=10_000)
    assert t["param"].tolist()[0] == "d" and t["rho"].iloc[0] < -0.8
    assert set(t["param"]) == {"d", "wm", "flops"}  # b constant, depth = d: left out
    assert t.set_index("param").loc["wm", "p_holm"] > 0.05
    assert (t["lo"] <= t["rho"]).all() and (t["rho"] <= t["hi"]).all()
    best = t.set_index("param").loc["d"]
    assert best["best_lo"] <= best["best"] <= best["best_hi"] and best["best"] > 20
    lines = trends.trend_lines(t)
    assert max(map(len, lines)) <= 80 and lines[-3].startswith("d ")


def _run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def test_compare_cli_on_the_published_population():
    out = _run("compare", "--population", POPULATION, "anynetxd", "anynetxe",
               "--normalize", "none,flops,params,acts")
    assert "A = anynetxd-cifar10-s0, B = anynetxe-cifar10-s0" in out
    assert "  none   A better (rank test, P(A<B) = 0.65, p = 3.7e-04); Δmean +1.34\n" \
           "         [+0.61, +2.05]" in out
    assert "acts   sensitivity (within-bin permutation rank test): not rejected" in out
    assert "Family: the primary test (rank test, unnormalized) of the one pair asked for" in out
    assert "anynetxe-cifar10-s0  100   118M  5.23M   672K" in out
    # AnyNetXD has 4 H200-trained models, AnyNetXE none: warned, with a stratified row
    assert "warning: anynetxd-cifar10-s0 vs anynetxe-cifar10-s0: devices differ" in out
    assert "  device 1 of 2 devices shared; not used: A 4, B 0" in out
    assert "depends on" not in out and max(map(len, out.splitlines()[10:])) <= 80
    r = runner.invoke(app, ["compare", "--population", str(POPULATION), "anynetxd",
                            "anynetxe", "--json"])
    doc = json.loads(r.stdout)
    assert doc["version"] == 2 and list(doc["pairs"][0]) == effects.PAIR_COLUMNS
    assert doc["family_size"] == 1 and doc["primary"] == "none" and len(doc["warnings"]) == 1
    p, dev = doc["pairs"]
    assert (p["n_a"], p["n_b"], round(p["ks_D"], 3), round(p["ks_p"], 5)) == \
        (99, 100, 0.255, 0.00267)  # = SUMMARY.md's KS row
    assert p["outcome"] == "A better" and p["mean_lo"] > 0 and p["role"] == "primary"
    assert dev["normalize"] == "device" and dev["role"] == "sensitivity"
    assert isinstance(dev["permutations"], int) and p["permutations"] is None


def test_compare_cli_pairs_and_family_options_keep_a_pairs_verdict():
    base = ["compare", "--population", POPULATION, "--json"]
    alone = json.loads(runner.invoke(app, [str(a) for a in base + ["regnetx", "regnety"]])
                       .stdout)["pairs"][0]
    for extra in (["anynetxe", "regnetx", "regnety", "--pairs", "regnetx:regnety"],
                  ["anynetxe", "regnetx", "regnety", "--family", "each"]):
        doc = json.loads(runner.invoke(app, [str(a) for a in base + extra]).stdout)
        row = next(r for r in doc["pairs"] if r["a"].startswith("regnetx") and
                   r["b"].startswith("regnety") and r["role"] == "primary")
        assert row == alone, extra
    # with both consecutive pairs in one family, the same test is Holm-adjusted over 2
    doc = json.loads(runner.invoke(app, [str(a) for a in base + ["anynetxe", "regnetx",
                                                                 "regnety"]]).stdout)
    assert doc["family_size"] == 2
    row = [r for r in doc["pairs"] if r["role"] == "primary"][1]
    assert row["rank_p"] == alone["rank_p"] and row["rank_p_holm"] >= alone["rank_p_holm"]
    assert row["mds_alpha"] == 0.025
    r = runner.invoke(app, [str(a) for a in base + ["regnetx", "regnety", "--pairs",
                                                    "regnetx:anynetxa"]])
    assert r.exit_code == 1 and "--pairs: 'anynetxa' is not one of the named sweeps" in \
        r.output


def test_analyze_trends_cli_on_the_published_population():
    out = _run("analyze", "--population", POPULATION, "regnetx", "--trends")
    rows = [ln.split()[0] for ln in out.splitlines() if ln.split()[:1] and
            ln.split()[0] in ("wa", "d", "wm")]
    assert rows.index("wa") < rows.index("d") < rows.index("wm")  # |ρ|: wa > d > wm
    assert "wm         sampled  +0.12" in out and "1.89 [1.51, 2.66]" in out


def test_findings_rows_from_a_planted_confound():
    from dsd.analysis import findings
    from dsd.analysis.summary import md_table

    rng = np.random.default_rng(6)
    acts = {"d": rng.uniform(1.0e6, 2.0e6, 120), "e": rng.uniform(0.5e6, 1.5e6, 120)}
    err = {s: 20 - 3 * v / 1e6 + rng.normal(0, 0.5, 120) for s, v in acts.items()}
    ok = population(err, acts=acts)
    st = findings.compute(ok, {"anynetxd": "d", "anynetxe": "e"})
    row = findings.findings_table(st).iloc[0]
    assert row["space"] == "anynetxd → anynetxe" and "(rank, Holm)" in row["adjusted p"]
    assert row["verdict"].startswith("disagrees: anynetxd is better")
    text = "\n".join(findings.sections(ok, {"anynetxd": "d", "anynetxe": "e"}, md_table))
    for head in ("## Findings", "## Comparisons between consecutive spaces",
                 "## Complexity and error", "## Trends", "### anynetxe",
                 "## Random search efficiency"):
        assert head in text
    # the confound shows as a sensitivity row with its own test and interval
    assert "| anynetxd → anynetxe | acts |" in text and \
        "sensitivity (within-bin permutation rank test): not rejected" in text


def test_report_shows_the_comparison_and_trend_tables():
    from dsd.analysis import report
    from dsd.analysis.population import PopulationStore
    from dsd.analysis.selection import select

    sel = select(PopulationStore.open(POPULATION), ["regnetx", "regnety"])
    st = report._compute(sel, study=None, resamples=10_000, seed=0, bins=20)
    html = "\n".join(report._statistics(st))
    assert "Findings (claims of the paper)" in html and "RegNetX → RegNetY" in html
    assert "Family: the primary test" in html and "<h4>regnetx-cifar10-s0</h4>" in html
    assert "regnetx → regnety" in html and "-0.45 [-0.87, -0.04]" in html


def test_compare_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from dsd.cli import app; import dsd.cli.analysis; "
            f"app(['compare', '--population', {str(POPULATION)!r}, 'regnetx', 'regnety'], "
            "standalone_mode=False); assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "A = regnetx-cifar10-s0, B = regnety-cifar10-s0" in out
