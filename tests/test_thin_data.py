"""Statistics and figures on thin data (issue 30): one rule for "too few models for this
number" (`dsd.analysis.thin`), a warning when a sweep is near chance, the report's legends,
captions and Comparisons, and one number format per table.

The thin-data case is a store trained for real: sweeps `three` (3 tiny models) and `one` (1
model), 2 epochs on the first 1,000 CIFAR-10 training images, tested on 1,000 (CPU, about 12 s):
their errors lie near 78%, near chance (90%), like the demo's 1-epoch models at 75–85%. The
layout cases use stores of formula results (`dsd.analysis.synthetic`), written through the
store's API.
"""
from __future__ import annotations

import re
from math import comb

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst
from typer.testing import CliRunner

import dsd.cli.analysis  # noqa: F401  (registers the commands)
from dsd import chance
from dsd.analysis import compare, effects, plots, report, thin
from dsd.analysis.selection import select
from dsd.analysis.synthetic import add_formula_results
from dsd.cli import app
from dsd.sample import sample
from dsd.space import load_space
from dsd.store import Store

runner = CliRunner()
QUICK = {"epochs": 2, "batch_size": 50, "subset": 1000, "test_subset": 1000}
NUMBER = re.compile(r"\d+\.\d+")


def _edf_sections(sel, bins=20):
    """The report's two EDF sections as `build_report` draws them (without the pairwise table,
    whose KS rows they would only copy)."""
    from types import SimpleNamespace

    return report._edf_sections(sel, SimpleNamespace(compare=None),
                                plots.sweep_colors(sel.sweeps), caption=sel.caption(),
                                band=False, seed=0, bins=bins, step=lambda what: None)


def run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def _add_sampled(db, name, space, n, seed=0, window=None):
    sp = load_space(space)
    s = sample(sp, n, dataset="cifar10", seed=seed, window=window)
    db.add_sweep(name, space=sp.name, space_def=sp.to_dict(), dataset="cifar10",
                 window=s.window.to_dict(), seed=seed, draws=s.draws, models=s.models)


def _formula_store(path, sweeps):
    """A store of (name, space, n, window) sweeps with formula errors stored as real."""
    db = Store(path)
    for i, (name, space, n, window) in enumerate(sweeps):
        _add_sampled(db, name, space, n, seed=i, window=window)
        add_formula_results(db, name, recipe="formula", synthetic=False, seed=i)
    db.close()
    return str(path)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    """Sweeps `three` (3 models) and `one` (1 model) trained for real on CPU (QUICK)."""
    from test_train import add_sweep

    from dsd.train import train

    path = tmp_path_factory.mktemp("thin") / "dsd.sqlite"
    db = Store(path)
    add_sweep(db, "three", n=3)
    add_sweep(db, "one", n=1, seed=1)
    summary = train(db, overrides=QUICK, data_dir=data_root, console=None)
    assert summary.counts == {"done": 4}, summary.counts
    top1 = db.results(None)["top1"]
    assert (top1 > 72).all(), top1  # near chance, as the demo's models
    db.close()
    return str(path)


def _clean_lines(out: str) -> None:
    """No Python None or nan in a table, every line within 80 columns."""
    assert not re.search(r"\b(None|nan|NaN)\b", out), out
    assert max(map(len, out.splitlines())) <= 80, out


# ---- the rule ---------------------------------------------------------------------------------
def test_the_minimums_follow_from_the_levels_of_tests_and_intervals():
    assert thin.MINIMUM == {"test": 4, "interval": 4, "correlation": 5, "spread": 2,
                            "best range": 22}
    # complete separation is the smallest exact two-sided p: 0.10 at 3 and 3, 0.029 at 4 and 4
    for n in (3, 4):
        a, b = np.arange(n), np.arange(n) + 10
        p_rank = sst.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue
        p_ks = sst.ks_2samp(a, b, method="exact").pvalue
        assert p_rank == pytest.approx(thin.min_p(n, n)) == pytest.approx(2 / comb(2 * n, n))
        assert p_ks == pytest.approx(thin.min_p(n, n))
    assert thin.min_p(3, 3) > 0.05 > thin.min_p(4, 4)
    # a bootstrap resample repeats one of 3 models 3 times more often than 2.5% of the time
    assert 3 ** -3 > 0.025 > 4 ** -4
    # the best range keeps the best of round(25% n); it leaves out the worse half from k = 6
    assert (thin.best_k(21), thin.best_k(22)) == (5, 6) and 0.5 ** 5 > 0.025 > 0.5 ** 6
    assert thin.enough("test", 4, 7) and not thin.enough("test", 4, 3)
    text = thin.note(("test", "interval"), {"a": 3, "b": 9, "c": 1})
    assert text.startswith("–: a test or a 95% interval needs at least 4 models per side; "
                           "a has 3, c has 1 (") and "b has" not in text
    assert thin.note("test", {"a": 4}) is None


def test_near_chance_is_kappa_at_most_a_fifth_and_shares_the_trainers_margin():
    from dsd.train import engine

    assert engine.chance_margin is chance.chance_margin  # one function, torch-free
    assert chance.near_chance_margin(10, 1000) == pytest.approx(18.0)   # 0.2 x 90 > 2.85
    assert chance.near_chance_margin(10, 25) == pytest.approx(chance.chance_margin(10, 25))
    rng = np.random.default_rng(0)
    demo = pd.DataFrame({"sweep": "demo-xa", "top1": rng.uniform(75, 85, 6), "spec": None,
                         "dataset": "cifar10"})
    learned = demo.assign(sweep="ten-epochs", top1=rng.uniform(12, 40, 6))
    t = thin.near_chance(pd.concat([demo, learned]), test_size=1000).set_index("sweep")
    assert t.loc["demo-xa", "near"] and not t.loc["ten-epochs", "near"]
    text = thin.chance_warning(pd.concat([demo, learned]), 1000)
    assert "demo-xa" in text and "ten-epochs" not in text and "mean nothing yet" in text


# ---- the commands on the real, thin store ---------------------------------------------------
def test_edf_prints_no_ks_number_for_three_models_and_warns_of_chance(trained, tmp_path):
    out = run("edf", "three", "one", "--band", "-o", tmp_path / "edf.png", "--store", trained)
    _clean_lines(out)
    assert "warning: near chance: median error three" in out
    assert "mean nothing yet" in " ".join(out.split())
    row = next(ln for ln in out.splitlines() if ln.split()[:2] == ["three", "one"])
    assert row.split()[2:] == ["–", "–", "–"], row  # D, p, Holm p
    flat = " ".join(out.split())
    assert "KS –: a test needs at least 4 models per side; three has 3, one has 1" in flat
    assert "no band: a 95% interval needs at least 4 models; three has 3, one has 1" in flat
    # the summary's errors: one format (two decimals)
    summary = [ln.split() for ln in out.splitlines() if ln.split()[:1] in (["three"], ["one"])]
    assert all(re.fullmatch(r"\d+\.\d\d", v) for r in summary[:2] for v in r[2:5]), summary


def test_compare_says_not_computed_instead_of_numbers(trained):
    out = run("compare", "three", "one", "--store", trained)  # was: error, need 2 per side
    _clean_lines(out)
    flat = " ".join(out.split())
    assert "none not computed: a test or a 95% interval needs at least 4 models per side; " \
           "three has 3, one has 1 (with 3 and 3 models the smallest two-sided p" in flat
    plain = next(ln for ln in out.splitlines() if ln.startswith("  none ") and "3/1" in ln)
    assert plain.split()[-2:] == ["–", "–"]  # Δmean and Δmedian intervals
    tests = [ln for ln in out.splitlines() if ln.startswith("  none ")][1]
    assert set(tests.split()[1:]) == {"–"}, tests
    assert "ρ –: a correlation needs at least 5 models; three has 3, one has 1" in flat
    doc = effects.compare_data(select(Store(trained), ["three", "one"]).data,
                               [("three", "one")])
    r = doc.pairs.iloc[0]
    assert r["outcome"] == "not computed" and np.isnan(r["rank_p"]) and np.isnan(r["mean_lo"])


def test_search_efficiency_stops_at_each_sweeps_size(trained):
    out = run("search-efficiency", "three", "one", "--store", trained)
    _clean_lines(out)
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines()
            if ln.split()[:1] in (["1"], ["2"])}
    assert rows["1"][0].count(".") == 1 and "[" not in out.split("central 95%]")[1].split(
        "–:")[0]  # no band for 3 or 1 models
    assert rows["2"][-1] == "–"  # one model: no expected best of 2
    flat = " ".join(out.split())
    assert "the expected best of m models is shown for m up to the sweep's size (one has 1)" \
        in flat  # m = 1, 2: three's 3 models give both
    assert "central 95% –: a 95% interval needs at least 4 models; three has 3, one has 1" in flat
    d = compare.search_data(select(Store(trained), ["three", "one"]).data)
    one = d[d["sweep"] == "one"].set_index("m")[["mean", "std", "lo", "hi"]]
    assert one.loc[1, "mean"] > 0 and np.isnan(one.loc[1, "std"]) and one.loc[2:].isna().all(
        ).all()


def test_analyze_gives_no_best_range_on_a_handful_of_models(trained):
    out = run("analyze", "three", "one", "-p", "flops", "--store", trained)
    _clean_lines(out)
    assert not re.search(r"\de[+-]\d", out)
    rows = [ln.split() for ln in out.splitlines() if ln.split()[:1] == ["flops"]]
    assert [r[2:5] for r in rows] == [["–"] * 3] * 2
    assert "–: a best range needs at least 22 models; three has 3, one has 1" in \
        " ".join(out.split())


def test_report_on_thin_data_says_why_instead_of_numbers(trained, tmp_path, monkeypatch):
    captions = []
    real = plots.plot_edf
    monkeypatch.setattr(plots, "plot_edf",
                        lambda edf, **kw: captions.append(kw.get("caption")) or real(edf, **kw))
    sel = select(Store(trained), ["three", "one"])
    html = report.build_report(sel, resamples=10_000, source=trained)
    text = re.sub(r"<img[^>]*>", "", html)
    assert not re.search(r">(None|nan|NaN)<", text)
    assert "Near chance: median error three" in text
    assert "no band: a 95% interval needs at least 4 models; three has 3, one has 1" in text
    assert "a best range needs at least 22 models" in text
    assert "the expected best of m models is shown for m up to the sweep&#x27;s size" in text
    # every figure says which images it was trained and tested on
    assert captions and all("(first 1,000 training and 1,000 test images: "
                            "--subset/--test-subset)" in c for c in captions), captions
    assert "--subset/--test-subset" in sel.summary()


# ---- a family with an untested pair ---------------------------------------------------------
def test_an_untested_pair_still_counts_in_the_family(tmp_path):
    path = _formula_store(tmp_path / "f.sqlite", [("a", "anynetxa", 20, None),
                                                   ("b", "regnetx", 20, None),
                                                   ("c", "anynetxe", 3, None)])
    data = select(Store(path), ["a", "b", "c"]).data
    d = effects.compare_data(data, [("a", "b"), ("b", "c")], sims=100)
    ab, bc = (d.pairs[(d.pairs["a"] == a) & (d.pairs["normalize"] == "none")].iloc[0]
              for a in ("a", "b"))
    assert ab["rank_p_holm"] == pytest.approx(min(1.0, 2 * ab["rank_p"]))  # m = 2, as stated
    assert np.isnan(bc["rank_p_holm"]) and bc["outcome"] == "not computed"
    assert "m = 2" in d.family


# ---- the report's figures and Comparisons ---------------------------------------------------
def test_report_edf_legend_of_six_sweeps_stays_off_the_caption(tmp_path, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    spaces = ("anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx")
    path = _formula_store(tmp_path / "six.sqlite", [(s, s, 12, None) for s in spaces])
    figs = []
    real = plots.plot_edf
    monkeypatch.setattr(plots, "plot_edf", lambda edf, **kw: figs.append(real(edf, **kw))
                        or figs[-1])
    _edf_sections(select(Store(path), list(spaces)))
    assert len(figs) == 2  # error EDFs and flops-normalized EDFs
    for fig in figs:
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        r = canvas.get_renderer()
        caption = fig._suptitle.get_window_extent(r)
        legends = [*fig.legends, *(ax.get_legend() for ax in fig.axes if ax.get_legend())]
        assert len(legends) == 1
        box = legends[0].get_window_extent(r)
        assert not box.overlaps(caption), (box, caption)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width and box.y0 >= 0


def test_comparisons_name_the_measure_and_keep_the_plain_comparison(tmp_path):
    path = _formula_store(tmp_path / "apart.sqlite", [("small", "anynetxa", 12, "12MF"),
                                                      ("big", "regnetx", 12, "50MF")])
    html = report.build_report(select(Store(path), ["small", "big"]), resamples=10_000,
                               band=False)
    text = re.sub(r"<img[^>]*>", "", html)
    # the flops-normalized EDF section names the measure and both ranges, in K/M
    assert re.search(r"cannot normalize by flops: the sweeps&#x27; flops ranges do not overlap "
                     r"\(small \[\d+(\.\d+)?M, \d+(\.\d+)?M\]; big \[", text)
    # the comparison keeps its unnormalized row (with numbers); only the flops row says why
    rows = re.findall(r"<tr>(.*?)</tr>", text)
    plain = [r for r in rows if ">none<" in r and "anynetxa → regnetx" in r]
    flops = [r for r in rows if ">flops<" in r and "anynetxa → regnetx" in r]
    assert plain and NUMBER.search(plain[0].split("</td>")[4]), plain  # Δmean [95% CI]
    assert flops and re.search(r"not computed \(flops: the central 95% flops ranges do not "
                               r"overlap \(small \[[\d.]+M, [\d.]+M\]; big \[", flops[0])
    assert "e+0" not in text and "common range [" not in text


def test_normalized_edf_caption_counts_the_models_outside_the_common_range(tmp_path,
                                                                          monkeypatch):
    path = _formula_store(tmp_path / "nz.sqlite", [("a", "anynetxa", 24, "10MF-14MF"),
                                                   ("b", "regnetx", 24, "12MF-16MF")])
    sel = select(Store(path), ["a", "b"])
    edf = compare.edf_data(sel.data, normalize="flops", bins=2)
    outside, why = edf.left_out()
    dropped = sum(outside.values())
    assert dropped > 0 and why.startswith("outside the common flops range [")
    captions = []
    real = plots.plot_edf
    monkeypatch.setattr(plots, "plot_edf",
                        lambda e, **kw: captions.append((e.normalize, kw["caption"]))
                        or real(e, **kw))
    _edf_sections(sel, bins=2)
    cap = dict(captions)["flops"]
    assert f"; {48 - dropped} models; {dropped} left out ({dropped} {why})" in cap, cap
    assert dict(captions)[None].endswith("; 48 models; none left out")


# ---- one number format per table ------------------------------------------------------------
def test_trends_and_analyze_print_complexities_in_k_and_m(tmp_path):
    # 12 MF AnyNetXA models have 25K-460K params: the '4.364e+04 [2.766e+04, 0.163M]'
    path = _formula_store(tmp_path / "k.sqlite", [("xa", "anynetxa", 30, "12MF")])
    out = run("analyze", "xa", "--trends", "--store", path)
    params = next(ln for ln in out.splitlines() if ln.startswith("params "))
    assert re.search(r"\d+(\.\d+)?K \[\d+(\.\d+)?K, \d+(\.\d+)?[KM]\]$", params), params
    assert not re.search(r"\de[+-]\d|(?<![\d.])0\.\d+M", out)  # no 4.364e+04, no 0.163M
    out = run("analyze", "xa", "-p", "flops", "-p", "params", "--store", path)
    flops = next(ln.split() for ln in out.splitlines() if ln.split()[:1] == ["flops"])
    assert all(re.fullmatch(r"\d+(\.\d+)?M", v) for v in flops[2:5]), flops
    assert not re.search(r"\de[+-]\d", out)


def test_no_none_in_report_tables_with_a_partial_fit(tmp_path):
    path = _formula_store(tmp_path / "fit.sqlite", [("xa", "anynetxa", 24, None),
                                                    ("rx", "regnetx", 24, None)])
    run("fit", "rx", "--store", path)
    sel = select(Store(path), ["xa", "rx"])
    html = "\n".join(report._late_sections(sel, plots.sweep_colors(sel.sweeps),
                                           caption=sel.caption(), resamples=1000, seed=0,
                                           top=2, step=lambda what: None))
    assert not re.search(r">(None|nan|NaN)<", html)
    cells = re.findall(r"<td class=\"\">([^<]*)</td>", html)
    assert "–" in cells  # e_fit of the unfitted sweep


def test_summary_says_near_chance_before_any_number(trained, tmp_path):
    """SUMMARY.md of the near-chance, thin population: the chance warning before any number,
    and no 'nan' cell anywhere (thin statistics print '–')."""
    from dsd.analysis import population, summary

    db = Store(trained)
    df = population.population_frame(db, ["three", "one"])
    text = summary.summary_markdown(df, resamples=10_000)
    head = text.split("## Models and errors per space")[0]
    assert "near chance: median error" in head and "mean nothing yet" in head
    assert "nan" not in text
