"""Study files (dsd.analysis.claims): the shipped DDS study, validation errors, a user's own
spaces getting Findings (the README's example study, run as the README says), subset claims
(DDS Fig. 7: non-decreasing widths / depths within a space) on crafted frames with a known
answer and on the published population, and the one pairwise table behind the KS section,
the comparisons and the Findings (dsd.analysis.findings, summary, compare.edf_data)."""
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import dsd.cli.results  # noqa: F401  (registers the commands)
from dsd.analysis import claims, compare, effects, findings, stats, subsets
from dsd.analysis.population import read_population, write_population
from dsd.analysis.tables import fmt_p
from dsd.cli import app
from dsd.errors import DsdError

REPO = Path(__file__).resolve().parents[1]
POPULATION = REPO / "results" / "cifar10" / "population.parquet"
runner = CliRunner()

USER_STUDY = """
name: mine
title: my two spaces
spaces: [wide, narrow]
pairs:
  - {a: narrow, b: wide, better: b, claim: "wide beats narrow"}
  - {a: wide, b: other}
trends:
  - {space: wide, param: wm, trend: falls, claim: "error falls with wm"}
  - {space: wide, param: wm, best: 3, near: [2.5, 3.5], claim: "best wm ≈ 3"}
"""


def frame(errors: dict[str, np.ndarray], seed: int = 0, **sampled) -> pd.DataFrame:
    """Finished models: sweep = space, top1, complexities uniform over one window, and the
    sampled parameters given (space → values) as the `sampled` JSON the trends read."""
    rng = np.random.default_rng(seed)
    parts = []
    for s, e in errors.items():
        n = len(e)
        cols = {"flops": rng.uniform(112.5e6, 125e6, n), "params": rng.uniform(1e6, 5e6, n),
                "acts": rng.uniform(0.5e6, 1.5e6, n)}
        draws = [{k: float(v[s][i]) for k, v in sampled.items() if s in v} for i in range(n)]
        parts.append(pd.DataFrame({"sweep": s, "space": s, "top1": e, **cols,
                                   "sampled": [json.dumps(d) for d in draws]}))
    return pd.concat(parts, ignore_index=True)


# ---- the shipped study ----------------------------------------------------------------------
def test_the_shipped_study_is_package_data_and_holds_the_papers_chain():
    s = claims.load_study()
    assert claims.shipped_study_path().is_file()
    assert s.name == "dds" and s.source == "paper"
    assert s.spaces[:7] == ("anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe",
                            "regnetx", "regnety")
    chain = [(p.a, p.b) for p in s.pairs[:6]]
    assert chain == list(zip(s.spaces[:6], s.spaces[1:7]))[:5] + [("regnetx", "regnety")]
    assert [p.better for p in s.pairs[:6]] == ["neither", "neither", "b", "b", "b", "b"]
    wm = [t for t in s.trends if t.param == "wm"]
    assert {t.space for t in wm} == {"regnetx", "regnety"}
    assert all(t.best == 2.5 and t.near == (2.25, 2.75) for t in wm)
    assert s.claim("regnetx", "regnetx_dwise").better == "a" and s.claim("b", "a") is None


def test_the_wheel_carries_the_study():
    text = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    assert '"studies/*.yaml"' in text


# ---- validation -----------------------------------------------------------------------------
BASE = {"name": "x", "pairs": [{"a": "p", "b": "q", "better": "b", "claim": "q wins"}]}


@pytest.mark.parametrize("change, needles", [
    ({"pairs": [{"a": "p", "b": "q", "better": "maybe", "claim": "c"}]},
     ["pairs[0].better", "'maybe'", "a, b, neither"]),
    ({"pairs": [{"a": "p", "b": "q", "better": "b"}]}, ["pairs[0].claim", "claim text"]),
    ({"pairs": [{"a": "p", "b": "p"}]}, ["pairs[0].b", "two different spaces"]),
    ({"pairs": [{"a": "p", "b": "q"}, {"a": "q", "b": "p"}]}, ["pairs[1]", "once"]),
    ({"pairs": [{"a": "p", "b": "q", "colour": 1}]},
     ["pairs[0].colour", "unknown key", "a, b, claim, better"]),
    ({"spaces": "p q"}, ["spaces", "give a list"]),
    ({"spaces": ["p", "p"]}, ["spaces", "'p'", "once"]),
    ({"nmae": "x"}, ["(top level).nmae", "allowed keys: name, title"]),
    ({"name": ""}, ["name", "non-empty string"]),
    ({"trends": [{"space": "p", "param": "d", "claim": "c", "trend": "up"}]},
     ["trends[0].trend", "'up'", "rises, falls"]),
    ({"trends": [{"space": "p", "param": "d", "claim": "c"}]},
     ["trends[0]", "exactly one of trend"]),
    ({"trends": [{"space": "p", "param": "d", "claim": "c", "best": 20}]},
     ["trends[0].near", "None", "[lo, hi]"]),
    ({"trends": [{"space": "p", "param": "d", "claim": "c", "best": 20, "near": [21, 25]}]},
     ["trends[0].near", "[21, 25]", "lo ≤ best (20) ≤ hi"]),
    ({"trends": [{"space": "p", "param": "d", "claim": "c", "best": "20", "near": [1, 30]}]},
     ["trends[0].best", "'20'", "finite number"]),
    ({"pairs": [], "trends": []}, ["pairs", "at least one pair, trend or subset claim"]),
    ({"subsets": [{"spaces": ["p"], "param": "wm", "order": "non-decreasing", "better": "in",
                   "claim": "c"}]}, ["subsets[0].param", "'wm'", "w, d, b, g"]),
    ({"subsets": [{"spaces": ["p"], "param": "w", "order": "rising", "better": "in",
                   "claim": "c"}]},
     ["subsets[0].order", "'rising'", "non-decreasing, non-increasing, equal"]),
    ({"subsets": [{"spaces": ["p"], "param": "w", "order": "equal", "better": "b",
                   "claim": "c"}]}, ["subsets[0].better", "'b'", "in, rest, neither"]),
    ({"subsets": [{"spaces": [], "param": "w", "order": "equal", "better": "in",
                   "claim": "c"}]}, ["subsets[0].spaces", "non-empty list"]),
    ({"subsets": [{"spaces": ["p", "p"], "param": "w", "order": "equal", "better": "in",
                   "claim": "c"}]}, ["subsets[0].spaces", "once"]),
    ({"subsets": [{"spaces": ["p"], "param": "w", "order": "equal", "better": "in"}]},
     ["subsets[0].claim", "non-empty string"]),
    ({"subsets": [{"spaces": ["p"], "param": "w", "order": "equal", "better": "in",
                   "claim": "c", "when": 1}]}, ["subsets[0].when", "unknown key"]),
])
def test_a_bad_study_is_one_line_naming_file_field_value_and_what_is_allowed(
        tmp_path, change, needles):
    import yaml

    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**BASE, **change}, allow_unicode=True))
    with pytest.raises(DsdError) as e:
        claims.load_study(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"study {path}: ")
    for n in needles:
        assert n in msg, msg


def test_missing_or_unreadable_study_files(tmp_path):
    with pytest.raises(DsdError, match="no study file at"):
        claims.load_study(tmp_path / "none.yaml")
    (tmp_path / "b.yaml").write_text("pairs: [a, b\n")
    with pytest.raises(DsdError, match=r"b.yaml: not valid YAML \("):
        claims.load_study(tmp_path / "b.yaml")
    (tmp_path / "c.yaml").write_text("- a\n- b\n")
    with pytest.raises(DsdError, match=r"\(top level\): \['a', 'b'\] is not allowed"):
        claims.load_study(tmp_path / "c.yaml")


# ---- a user's own spaces --------------------------------------------------------------------
def test_a_user_study_gives_findings_for_its_own_spaces(tmp_path):
    (tmp_path / "mine.yaml").write_text(USER_STUDY)
    study = claims.load_study(tmp_path / "mine.yaml")
    rng = np.random.default_rng(3)
    wm = {"wide": rng.uniform(1.5, 4.5, 90), "narrow": rng.uniform(1.5, 4.5, 60)}
    # wide: 1.5 points better; within wide, error is lowest near wm = 3 (a V around 3)
    err = {"narrow": 16 + rng.normal(0, 0.6, 60),
           "wide": 13 + 2.0 * np.abs(wm["wide"] - 3) + rng.normal(0, 0.3, 90)}
    ok = frame(err, wm=wm)
    firsts = {"narrow": "narrow", "wide": "wide"}
    st = findings.compute(ok, firsts, study=study, resamples=1000)
    # only the pair whose spaces are present is compared; its verdict decides the claim
    assert st.compare.pairs[["a", "b"]].drop_duplicates().values.tolist() == [
        ["narrow", "wide"]]
    f = findings.findings_table(st).set_index("claim (study)")
    assert list(f.index) == ["wide beats narrow", "error falls with wm", "best wm ≈ 3"]
    assert f.loc["wide beats narrow", "verdict"] == "agrees"
    assert f.loc["wide beats narrow", "space"] == "narrow → wide"
    assert f.loc["best wm ≈ 3", "verdict"] == (
        "agrees: wm < 2.5 worse; wm > 3.5 worse")
    assert "Holm over 2" in f.loc["best wm ≈ 3", "adjusted p"]
    # a V has no monotone trend: the trend claim is not supported
    assert f.loc["error falls with wm", "verdict"] == "no detectable trend"


def test_a_best_value_claim_disagrees_when_one_side_of_the_window_is_better():
    rng = np.random.default_rng(5)
    x = rng.uniform(1, 5, 120)
    ok = frame({"s": 15 - 1.5 * x + rng.normal(0, 0.3, 120)}, wm={"s": x})  # larger is better
    study = claims.parse_study({"name": "t", "trends": [
        {"space": "s", "param": "wm", "best": 2.5, "near": [2, 3], "claim": "best ≈ 2.5"}]})
    t = findings.best_tests(ok, {"s": "s"}, study)
    r = t.iloc[0]
    assert r["n_below"] + r["n_near"] + r["n_above"] == 120
    assert r["prob_above"] > 0.9 and r["prob_below"] < 0.1 and r["p_above_holm"] < 1e-6
    st = findings.Stats(None, {"s": "s"}, {}, "", study, t)
    row = findings.findings_table(st).iloc[0]
    assert row["verdict"] == "disagrees: wm < 2 worse; wm > 3 better"


def test_the_regnety_wm_finding_follows_the_data():
    """Issue 28: the RegNetY wm row said "disagrees" because its best-range interval (not a
    confidence interval) ended at 2.39. Models with wm in [2.25, 2.75] are neither better nor
    worse than those below or above (rank tests), so the claim is not distinguishable."""
    df, _ = read_population(POPULATION)
    ok = df[df["status"] == "done"].assign(top1=lambda d: d["top1"].astype(float))
    labels = dict(zip(ok["sweep"], ok["space"]))
    t = findings.best_tests(ok, labels, claims.load_study())
    wm = t[(t["space"] == "regnety") & (t["param"] == "wm")].iloc[0]
    assert (wm["n_below"], wm["n_near"], wm["n_above"]) == (47, 33, 20)
    assert wm["p_below_holm"] > 0.05 and wm["p_above_holm"] > 0.05
    row = findings._best_finding(findings.Stats(None, labels, {}, "", None, t),
                                 claims.load_study().trends[3])
    assert row["space"] == "regnety" and row["verdict"].startswith("not distinguishable")
    d = t[(t["space"] == "regnetx") & (t["param"] == "d")].iloc[0]
    assert d["p_below_holm"] < 0.001 and d["prob_below"] < 0.5  # shallow RegNets are worse


def readme_study() -> tuple[str, list[str]]:
    """The README's example study file and its `dsd summarize` command (the README section
    on `dsd summarize --study FILE`)."""
    text = (REPO / "README.md").read_text()
    m = re.search(r"```yaml\n# mystudy\.yaml\n(.*?)```", text, re.S)
    assert m, "README: the mystudy.yaml example is gone"
    cmd = next(ln for ln in text.splitlines() if ln.startswith("dsd summarize population.parquet "
                                                              "--study mystudy.yaml"))
    return m.group(1), shlex.split(cmd)[1:]


def test_the_readme_study_is_valid():
    doc, args = readme_study()
    s = claims.parse_study(__import__("yaml").safe_load(doc), "README")
    assert s.name == "mine" and s.spaces == ("wide", "narrow")
    assert [(p.a, p.b, p.better) for p in s.pairs] == [("narrow", "wide", "b")]
    assert [(c.spaces, c.rule, c.better) for c in s.subsets] == [
        (("narrow", "wide"), "d_{i+1} ≥ d_i", "in")]
    assert args[:4] == ["summarize", "population.parquet", "--study", "mystudy.yaml"]


def test_summarize_with_the_readme_study(tmp_path, monkeypatch):
    """The README's `dsd summarize population.parquet --study mystudy.yaml -o SUMMARY.md`, run
    as written on a population of non-paper spaces (two published spaces renamed, 30 models
    each): their Findings rows (pair, trend, best value, subset), the subset section, the
    study's order of spaces; a bad file is one line."""
    doc, args = readme_study()
    df, runs = read_population(POPULATION)
    keep = df["space"].isin(["regnetx", "regnety"]) & (df["index"] < 30)
    df = df[keep].copy()
    df["space"] = df["space"].map({"regnetx": "narrow", "regnety": "wide"})
    df["sweep"] = df["space"] + "-s0"
    monkeypatch.chdir(tmp_path)
    write_population(df, tmp_path / "population.parquet", runs)
    (tmp_path / "mystudy.yaml").write_text(doc)
    res = runner.invoke(app, [*args, "--resamples", "1000"])
    assert res.exit_code == 0, res.output
    text = (tmp_path / "SUMMARY.md").read_text()
    rows = [ln for ln in text.splitlines()
            if ln.startswith("| wide beats narrow | narrow → wide")]
    assert len(rows) == 1 and "One row per claim of the study" in text
    assert "| best wm ≈ 3 | wide |" in text and "| error falls with wm | wide |" in text
    assert "| non-decreasing depths are better | narrow, wide |" in text
    assert "## Subsets within a space" in text and "| d_{i+1} ≥ d_i | narrow | per space |" in text
    table = text[text.index("## Models and errors"):text.index("## KS tests")]
    assert table.index("wide-s0") < table.index("narrow-s0")  # the study's order
    (tmp_path / "bad.yaml").write_text("name: m\npairs: [{a: x, b: y, better: c, claim: t}]\n")
    res = runner.invoke(app, ["summarize", "population.parquet", "--study", "bad.yaml"])
    assert res.exit_code == 1 and "pairs[0].better: 'c' is not allowed" in res.output


# ---- subset claims (DDS Fig. 7) -------------------------------------------------------------
def staged(errors: dict[str, np.ndarray], widths: dict[str, np.ndarray],
           depths: dict[str, np.ndarray], seed: int = 0) -> pd.DataFrame:
    """`frame` plus per-stage columns w1..w4 and d1..d4 (no spec: the stage-column path)."""
    out = frame(errors, seed)
    w = np.concatenate([widths[s] for s in errors])
    d = np.concatenate([depths[s] for s in errors])
    return out.assign(**{f"w{i + 1}": w[:, i] for i in range(4)},
                      **{f"d{i + 1}": d[:, i] for i in range(4)})


SUBSET_STUDY = {"name": "fig7", "subsets": [
    {"spaces": ["p", "q", "r"], "param": "w", "order": "non-decreasing", "better": "in",
     "claim": "non-decreasing widths are better"},
    {"spaces": ["p", "q"], "param": "d", "order": "non-decreasing", "better": "neither",
     "claim": "the order of depths does not matter"}]}


def planted_fig7(shift: float = 2.0, seed: int = 7):
    """Spaces p and q: a third of the models get sorted (non-decreasing) widths, and those are
    `shift` points better; depths are random and do not matter. Space r: every model's
    widths are sorted (a space built with the rule)."""
    rng = np.random.default_rng(seed)
    err, wid, dep = {}, {}, {}
    for s, n in (("p", 150), ("q", 120), ("r", 60)):
        w = rng.choice([8, 16, 32, 64, 128, 256, 512], size=(n, 4))
        w[w[:, 0] <= w[:, 1], 0] = 1024  # the rest: never non-decreasing by chance
        sort = np.ones(n, bool) if s == "r" else rng.random(n) < 1 / 3
        w[sort] = np.sort(w[sort], axis=1)
        wid[s], dep[s] = w, rng.integers(1, 8, size=(n, 4))
        err[s] = 16 + (0.5 if s == "q" else 0) + rng.normal(0, 1, n) - shift * sort
    return staged(err, wid, dep), {s: s for s in err}


def test_subset_claims_find_a_planted_effect_and_no_planted_one():
    ok, labels = planted_fig7()
    study = claims.parse_study(SUBSET_STUDY)
    t = subsets.subset_tests(ok, labels, study, resamples=10_000, sims=200)
    w = t[t["k"] == 0].set_index("space")
    # r is built with the rule: not applicable, and left out of the pooled test
    assert w.loc["r", "role"] == "not applicable" and w.loc["r", "n_rest"] == 0
    assert "every model of r has w_{i+1} ≥ w_i" in w.loc["r", "verdict"]
    for s in ("p", "q"):
        r = w.loc[s]
        sort = ok.loc[ok["sweep"] == s, ["w1", "w2", "w3", "w4"]].diff(axis=1).iloc[:, 1:]
        assert r["n_in"] == int((sort >= 0).all(axis=1).sum()) and r["role"] == "space"
        assert r["mean_lo"] < -1.4 and r["mean_hi"] > -2.6 and r["mean_hi"] < 0  # Δ ≈ −2
        assert r["p"] < 1e-6 and r["prob_in"] > 0.8 and np.isnan(r["p_holm"])
    pooled = w.loc["p, q"]
    assert pooled["role"] == "primary" and pooled["test"] == findings.POOLED_TEST
    # each space weighs the same: Δmean is the mean of the per-space Δmeans
    assert pooled["mean_diff"] == pytest.approx(w.loc[["p", "q"], "mean_diff"].mean())
    assert pooled["n_in"] == w.loc["p", "n_in"] + w.loc["q", "n_in"]
    assert pooled["p"] == pytest.approx(1 / 10_001)  # no permutation as extreme
    d = t[(t["k"] == 1) & (t["role"] == "primary")].iloc[0]
    assert d["p"] > 0.05 and d["mean_lo"] < 0 < d["mean_hi"]
    # the family: the two claims' tests, Holm
    prim = t[t["role"] == "primary"]
    assert np.allclose(prim["p_holm"], stats.holm(prim["p"].to_numpy()))
    st = findings.Stats(None, labels, {}, "", study, None, (), t)
    f = findings.findings_table(st).set_index("claim (study)")
    assert f.loc["non-decreasing widths are better", "verdict"] == "agrees"
    assert f.loc["non-decreasing widths are better", "space"] == "p, q"
    assert "Holm over 2" in f.loc["non-decreasing widths are better", "adjusted p"]
    assert "every model of r has" in f.loc["non-decreasing widths are better", "measured"]
    assert f.loc["the order of depths does not matter", "verdict"].startswith(
        "consistent: not decided (within-space permutation rank test, Holm p = ")


def test_a_subset_claim_disagrees_when_the_rest_is_better_and_one_space_is_its_own_test():
    ok, labels = planted_fig7(shift=-2.0)
    study = claims.parse_study({"name": "x", "subsets": [SUBSET_STUDY["subsets"][0] | {
        "spaces": ["p", "r"]}]})
    t = subsets.subset_tests(ok, labels, study, resamples=10_000, sims=200)
    # only p splits: its rank test is the claim's test (MDS at α/m, m = 1)
    prim = t[t["role"] == "primary"]
    assert len(prim) == 1 and prim.iloc[0]["space"] == "p" and prim.iloc[0]["test"] == "rank test"
    assert prim.iloc[0]["mds_alpha"] == pytest.approx(0.05) and prim.iloc[0]["mds"] > 0
    st = findings.Stats(None, labels, {}, "", study, None, (), t)
    row = findings.findings_table(st).iloc[0]
    assert row["verdict"].startswith("disagrees: the rest better (rank test, p = ")
    # with no space split, the claim is reported as not testable
    study = claims.parse_study({"name": "x", "subsets": [SUBSET_STUDY["subsets"][0] | {
        "spaces": ["r"]}]})
    t = subsets.subset_tests(ok, labels, study, resamples=10_000, sims=200)
    row = findings.findings_table(findings.Stats(None, labels, {}, "", study, None, (), t))
    assert row.iloc[0]["verdict"] == "not testable: every model of r has w_{i+1} ≥ w_i"


def test_subset_members_read_the_built_spec():
    """From the `spec` JSON (the widths after the compatibility adjustment), else from the
    stage columns; an opaque (imported) spec is unknown, not a member."""
    from dsd.spec import make_spec

    c = claims.parse_study(SUBSET_STUDY).subsets[0]
    up = make_spec([1, 1, 2, 2], [16, 32, 64, 128], [1] * 4, [8] * 4, dataset="cifar10")
    down = make_spec([1, 1, 2, 2], [128, 64, 32, 16], [1] * 4, [8] * 4, dataset="cifar10")
    part = pd.DataFrame({"spec": [up.to_json(), down.to_json(), '{"net": "resnet"}'],
                         "w1": [999, 1, 1], "w2": [1, 2, 2], "w3": [1, 3, 3], "w4": [1, 4, 4]})
    got = subsets.subset_members(part, c)
    assert got[:2].tolist() == [1.0, 0.0] and np.isnan(got[2])  # spec wins over the columns
    got = subsets.subset_members(part.drop(columns="spec"), c)
    assert got.tolist() == [0.0, 1.0, 1.0]
    assert claims.non_decreasing((1, 1, 2)) and not claims.non_decreasing((2, 1))
    assert claims.non_increasing((3, 3, 1)) and claims.equal((4, 4)) and not claims.equal((4, 5))


def test_the_fig7_checks_on_the_published_population():
    """Within AnyNetXA–XC the models with non-decreasing widths are better (pooled, Holm over
    the 2 subset claims); non-decreasing depths within AnyNetXA–XD are not decided (and
    within AnyNetXD, AnyNetXE's rule: Δmean interval around 0). Numbers as SUMMARY.md."""
    df, _ = read_population(POPULATION)
    ok = df[df["status"] == "done"].assign(top1=lambda d: d["top1"].astype(float))
    labels = dict(zip(ok["sweep"], ok["space"]))
    t = subsets.subset_tests(ok, labels, claims.load_study())
    w = t[t["k"] == 0].set_index("space")
    assert [(w.loc[s, "n_in"], w.loc[s, "n_rest"]) for s in ("anynetxa", "anynetxb",
                                                             "anynetxc")] == [(8, 92), (9, 91),
                                                                              (7, 93)]
    pooled = w.loc["anynetxa, anynetxb, anynetxc"]
    assert pooled["mean_diff"] == pytest.approx(-2.80, abs=0.005)
    assert pooled["p_holm"] < 0.001 and pooled["prob_in"] > 0.7
    d = t[t["k"] == 1].set_index("space")
    assert (d.loc["anynetxd", "n_in"], d.loc["anynetxd", "n_rest"]) == (12, 87)
    assert d.loc["anynetxd", "mean_lo"] < 0 < d.loc["anynetxd", "mean_hi"]
    assert d.loc["anynetxa, anynetxb, anynetxc, anynetxd", "p_holm"] > 0.05
    st = findings.Stats(None, labels, {}, "", None, None, (), t)
    f = findings.findings_table(st).set_index("claim (paper)")
    assert f.loc["models with non-decreasing widths are better", "verdict"] == "agrees"
    assert f.loc["models with non-decreasing depths are better", "verdict"].startswith(
        "not decided")


# ---- one table of pairwise statistics -------------------------------------------------------
def test_ks_section_comparisons_and_findings_read_one_table():
    rng = np.random.default_rng(2)
    err = {"anynetxc": rng.normal(17, 1.5, 60), "anynetxd": rng.normal(16, 1.5, 60),
           "anynetxe": rng.normal(16.2, 1.5, 60)}
    ok = frame(err)
    firsts = {s: s for s in err}
    st = findings.compute(ok, firsts, resamples=1000)
    p = st.compare.pairs
    none = p[p["normalize"] == "none"]
    # the KS section is the unnormalized rows' KS columns
    ks = findings.ks_table(st)
    assert ks[["a", "b"]].values.tolist() == [["anynetxc", "anynetxd"], ["anynetxd", "anynetxe"]]
    assert np.array_equal(ks[["D", "p"]].to_numpy(), none[["ks_D", "ks_p"]].to_numpy())
    # the comparison table renders every row, the findings the primary rows
    comp = findings.comparison_table(st)
    assert len(comp) == len(p)
    assert comp["KS p"].tolist() == [fmt_p(v) for v in p["ks_p"]]
    f = findings.findings_table(st)
    first = none.iloc[0]
    assert f.iloc[0]["adjusted p"] == f"{fmt_p(first['rank_p_holm'])} (rank, Holm)"
    assert f"{first['mean_diff']:+.2f}" in f.iloc[0]["measured"]
    # edf's KS for the same pairs = the same columns
    e = compare.edf_data(ok, table=st.compare)
    assert np.array_equal(e.ks[["D", "p", "p_holm"]].to_numpy(),
                          none[["ks_D", "ks_p", "ks_p_holm"]].to_numpy())


def test_edf_computes_its_ks_through_compare_data():
    rng = np.random.default_rng(4)
    ok = frame({"a": rng.normal(16, 1, 40), "b": rng.normal(17, 1, 40),
                "c": rng.normal(16.5, 1, 40)})
    e = compare.edf_data(ok)
    t = effects.compare_data(ok, [("a", "b"), ("a", "c"), ("b", "c")], sims=100,
                             devices=False).pairs
    assert e.ks[["a", "b"]].values.tolist() == t[["a", "b"]].values.tolist()
    assert np.array_equal(e.ks[["D", "p", "p_holm"]].to_numpy(),
                          t[["ks_D", "ks_p", "ks_p_holm"]].to_numpy())
    assert e.ks_test == "scipy.stats.ks_2samp"


def test_summary_without_a_comparable_pair_says_why():
    rng = np.random.default_rng(1)
    ok = frame({"anynetxd": rng.normal(16, 1, 30), "anynetxe": rng.normal(16, 1, 1)})
    st = findings.compute(ok, {"anynetxd": "anynetxd", "anynetxe": "anynetxe"}, resamples=1000)
    row = st.compare.pairs.iloc[0]          # too thin for a test (`thin`): no number, the why
    assert row["outcome"] == "not computed" and "anynetxe has 1" in row["verdict"]
    assert np.isnan(row["rank_p"]) and np.isnan(row["mean_lo"])


def test_the_study_orders_the_spaces():
    study = claims.parse_study({"name": "r", "spaces": ["b", "a"],
                                "pairs": [{"a": "a", "b": "b"}]})
    from dsd.analysis.summary import sweep_order

    df = pd.DataFrame({"sweep": ["sa", "sb", "sc", "sx"],
                       "space": ["a", "b", "c", "regnetx"]})
    assert sweep_order(df, study) == ["sb", "sa", "sc", "sx"]
    assert sweep_order(df) == ["sx", "sa", "sb", "sc"]  # DDS: RegNetX listed, others after
