"""`dsd compare` and `dsd analyze --trends` on populations of known truth (issue 14), and on
the published CIFAR-10 population file."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

import dsd.cli.analysis  # noqa: F401  (registers the commands)
from dsd.analysis import effects, trends
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


def test_a_two_point_shift_is_a_difference_with_an_interval_covering_two():
    rng = np.random.default_rng(1)
    df = population({"a": rng.normal(16, 1.5, 100), "b": rng.normal(18, 1.5, 100)})
    row = effects.compare_data(df, normalize=["none", "flops"]).pairs.to_dict("records")
    for r in row:
        assert r["mean_lo"] < 2 < r["mean_hi"] and r["median_lo"] < 2 < r["median_hi"]
        assert r["verdict"] == "A better" and r["depends_on"] == ""
        assert r["rank_p_holm"] < 1e-10 and r["rank_prob"] > 0.8
    assert effects.compare_data(df[::-1]).pairs["verdict"].iloc[0] == "B better"


def test_identical_distributions_give_no_detectable_difference_with_a_sensible_shift():
    rng = np.random.default_rng(2)
    df = population({"a": rng.normal(16, 1.5, 100), "b": rng.normal(16, 1.5, 100)})
    r = effects.compare_data(df).pairs.iloc[0]
    # normal theory for the rank test: 2.80·σ·sqrt(2/n)·sqrt(π/3) = 0.61 points
    assert 0.45 < r["mds"] < 0.8
    assert r["verdict"] == f"no detectable difference (smaller than {r['mds']:.2f} points)"
    assert r["mean_lo"] < 0 < r["mean_hi"]


def test_a_verdict_that_only_complexity_explains_changes_under_normalize_acts():
    # error depends on acts alone; B's models have more acts, so B looks better unnormalized
    rng = np.random.default_rng(3)
    acts = {"a": rng.uniform(0.5e6, 1.5e6, 150), "b": rng.uniform(1.0e6, 2.0e6, 150)}
    err = {s: 20 - 3 * v / 1e6 + rng.normal(0, 0.5, 150) for s, v in acts.items()}
    data = effects.compare_data(population(err, acts=acts), normalize=effects.NORMALIZE)
    v = dict(zip(data.pairs["normalize"], data.pairs["verdict"]))
    assert v["none"] == v["flops"] == v["params"] == "B better"
    assert v["acts"].startswith("no detectable difference")
    assert set(data.pairs["depends_on"]) == {"acts"}
    assert "Holm over the 4 rank tests" in data.family
    c = data.complexity.set_index("sweep")
    assert c.loc["a", "rho_acts"] < -0.8 and abs(c.loc["a", "rho_flops"]) < 0.3
    text = "\n".join(effects.pairs_lines(data))
    assert "acts   no detectable difference" in text
    assert "depends on complexity measure: acts" in text


def test_holm_family_spans_pairs_and_normalizations():
    rng = np.random.default_rng(4)
    df = population({s: rng.normal(16 + i * 0.3, 1.5, 60) for i, s in enumerate("abc")})
    d = effects.compare_data(df, effects.pair_list(["a", "b", "c"], all_pairs=True),
                             normalize="none,flops")
    assert len(d.pairs) == 6 and list(d.pairs["a"] + d.pairs["b"]) == \
        ["ab", "ab", "ac", "ac", "bc", "bc"]
    from dsd.analysis.stats import holm
    assert d.pairs["rank_p_holm"].tolist() == pytest.approx(holm(d.pairs["rank_p"]).tolist())
    # a pair's numbers do not depend on what else is compared (per-pair seeds)
    alone = effects.compare_data(df[df["sweep"].isin(["a", "c"])], normalize="none,flops")
    cols = ["mean_lo", "mean_hi", "median_lo", "mds", "rank_p", "ks_p"]
    assert alone.pairs[cols].to_numpy() == pytest.approx(d.pairs[cols].iloc[2:4].to_numpy())


def test_bad_input_is_a_dsd_error():
    with pytest.raises(DsdError, match="allowed values are none, flops, params, acts"):
        effects.parse_normalize("none,flop")
    with pytest.raises(DsdError, match="at least two sweeps"):
        effects.pair_list(["a"])
    df = population({"a": np.arange(5.0), "b": np.arange(5.0)})
    with pytest.raises(DsdError, match="10,000 bootstrap resamples"):
        effects.compare_data(df, resamples=100)


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


@pytest.mark.skipif(not POPULATION.exists(), reason="published population not in checkout")
def test_compare_cli_on_the_published_population():
    out = _run("compare", "--population", POPULATION, "anynetxd", "anynetxe",
               "--normalize", "none,flops,params,acts")
    assert "A = anynetxd-cifar10-s0, B = anynetxe-cifar10-s0" in out
    assert "none   A better; depends on complexity measure: params, acts" in out
    assert "Holm over the 4 rank tests of this call" in out
    assert "anynetxe-cifar10-s0  100   118M  5.23M   672k" in out
    r = runner.invoke(app, ["compare", "--population", str(POPULATION), "anynetxd",
                            "anynetxe", "--json"])
    doc = json.loads(r.stdout)
    assert doc["version"] == 1 and list(doc["pairs"][0]) == effects.PAIR_COLUMNS
    p = doc["pairs"][0]
    assert (p["n_a"], p["n_b"], round(p["ks_D"], 3), round(p["ks_p"], 5)) == \
        (99, 100, 0.255, 0.00267)  # = SUMMARY.md's KS row
    assert p["verdict"] == "A better" and p["mean_lo"] > 0


@pytest.mark.skipif(not POPULATION.exists(), reason="published population not in checkout")
def test_analyze_trends_cli_on_the_published_population():
    out = _run("analyze", "--population", POPULATION, "regnetx", "--trends")
    rows = [ln.split()[0] for ln in out.splitlines() if ln.split()[:1] and
            ln.split()[0] in ("wa", "d", "wm")]
    assert rows.index("wa") < rows.index("d") < rows.index("wm")  # |ρ|: wa > d > wm
    assert "wm         sampled  +0.12" in out and "1.894 [1.512, 2.658]" in out


def test_findings_rows_from_a_planted_confound():
    from dsd.analysis import findings
    from dsd.analysis.summary import md_table

    rng = np.random.default_rng(6)
    acts = {"d": rng.uniform(1.0e6, 2.0e6, 120), "e": rng.uniform(0.5e6, 1.5e6, 120)}
    err = {s: 20 - 3 * v / 1e6 + rng.normal(0, 0.5, 120) for s, v in acts.items()}
    ok = population(err, acts=acts)
    st = findings.compute(ok, {"anynetxd": "d", "anynetxe": "e"})
    row = findings.findings_table(st).iloc[0]
    assert row["claim (paper)"].startswith("D → E") and row["space"] == "anynetxd → anynetxe"
    assert row["verdict"].startswith("disagrees: anynetxd is better; depends on complexity "
                                     "measure (") and "acts: no detectable difference" in \
        row["verdict"]
    assert "(rank, Holm)" in row["adjusted p"]
    text = "\n".join(findings.sections(ok, {"anynetxd": "d", "anynetxe": "e"}, md_table))
    for head in ("## Findings", "## Comparisons between consecutive spaces",
                 "## Complexity and error", "## Trends", "### anynetxe",
                 "## Random search efficiency"):
        assert head in text
    assert "| anynetxd → anynetxe | acts |" in text


@pytest.mark.skipif(not POPULATION.exists(), reason="published population not in checkout")
def test_report_shows_the_comparison_and_trend_tables():
    from dsd.analysis import report
    from dsd.analysis.population import PopulationStore
    from dsd.analysis.selection import select

    sel = select(PopulationStore.open(POPULATION), ["regnetx", "regnety"])
    html = "\n".join(report._statistics(sel, resamples=10_000, seed=0, bins=20))
    assert "Findings (claims of the paper)" in html and "RegNetX → RegNetY" in html
    assert "Holm over the 4 rank tests" in html and "<h4>regnetx-cifar10-s0</h4>" in html
    assert "regnetx → regnety" in html and "-0.45 [-0.87, -0.04]" in html


@pytest.mark.skipif(not POPULATION.exists(), reason="published population not in checkout")
def test_compare_imports_no_torch():
    import subprocess
    import sys

    code = ("import sys; from dsd.cli import app; import dsd.cli.analysis; "
            f"app(['compare', '--population', {str(POPULATION)!r}, 'regnetx', 'regnety'], "
            "standalone_mode=False); assert 'torch' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "A = regnetx-cifar10-s0, B = regnety-cifar10-s0" in out
