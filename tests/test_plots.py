"""Plot data (numbers) and rendered figures (opened and inspected, not just found on disk)."""
import re

import matplotlib.image as mpimg
import numpy as np
import pytest

from dsd.analysis import compare, plots, stats, synthetic
from dsd.analysis.selection import select
from dsd.errors import DsdError
from dsd.store import Store

SPACES = ("anynetxa", "anynetxe", "regnetx")


@pytest.fixture(scope="module")
def sel():
    """40 sampled models per space with formula errors (stored as synthetic data)."""
    db = synthetic.demo_store(Store(), SPACES, n=40, seed=0)
    return select(db, SPACES, synthetic=True)


def _svg_text(path):
    text = path.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    return text


def _legend_texts(svg):
    return re.findall(r"<text[^>]*>([^<]*)</text>", svg)


# ---- data ---------------------------------------------------------------------------------
def test_edf_data_numbers(sel):
    d = compare.edf_data(sel.data)
    assert list(d.summary["sweep"]) == list(SPACES)
    for s in SPACES:
        e = sel.data.loc[sel.data["sweep"] == s, "top1"]
        row = d.summary.set_index("sweep").loc[s]
        assert row["n"] == 40 and row["min"] == e.min()
        assert row["mean"] == pytest.approx(e.mean()) and row["median"] == e.median()
        c = d.curves[d.curves["sweep"] == s]
        assert np.all(np.diff(c["F"]) > 0) and c["F"].iloc[-1] == pytest.approx(1.0)
    assert len(d.ks) == 3 and d.ks["D"].between(0, 1).all() and d.band is None
    assert np.allclose(d.ks["p_holm"], stats.holm(d.ks["p"])) and (d.ks["p_holm"] >= d.ks["p"]).all()


def test_edf_data_normalized_and_band(sel):
    d = compare.edf_data(sel.data, normalize="flops", bins=4, band=True, resamples=200)
    lo, hi = d.range
    for s in SPACES:
        part = sel.data[sel.data["sweep"] == s]
        w = d.weights[part.index]
        assert w.sum() == pytest.approx(1.0)
        assert (w[(part["flops"] < lo) | (part["flops"] > hi)] == 0).all()
    assert set(d.summary.columns) >= {"dropped", "n_eff"}
    # the KS columns are dsd compare's rows for the same pairs and normalization
    from dsd.analysis import effects
    t = effects.compare_data(sel.data, list(zip(d.ks["a"], d.ks["b"])), normalize=["flops"],
                             bins=4, sims=100, devices=False).pairs
    assert np.array_equal(d.ks[["D", "p", "p_holm"]].to_numpy(),
                          t[["ks_D", "ks_p", "ks_p_holm"]].to_numpy())
    assert "permutation" in d.ks_test
    b = d.band
    assert (b["lo"] <= b["hi"]).all() and b["lo"].between(0, 1).all()
    with pytest.raises(DsdError, match="fewer bins"):
        compare.edf_data(sel.data, normalize="flops", bins=500)


def test_param_and_search_data(sel):
    shared = sel.data[sel.data["sweep"] != "anynetxa"]  # AnyNetXA has per-stage b and g
    p = compare.param_data(shared, ["depth", "b", "flops"], resamples=300)
    assert set(p.best["param"]) == {"depth", "b", "flops"}
    assert (p.best["lo"] <= p.best["median"]).all() and (p.best["median"] <= p.best["hi"]).all()
    assert p.log["flops"] == 10 and p.log["depth"] is None
    # formula: b = 1 is best, so the shared-b space's best range starts at b = 1 and the mean
    # error grows with b (the median depends on how many of the 40 models drew b = 1: 7 here)
    best_b = p.best[(p.best["param"] == "b") & (p.best["sweep"] == "anynetxe")].iloc[0]
    assert best_b["lo"] == 1.0 and best_b["median"] <= 2.0
    by_b = shared[shared["sweep"] == "anynetxe"].groupby("b1")["top1"].mean()
    assert list(by_b.index) == [1, 2, 4] and by_b.is_monotonic_increasing
    with pytest.raises(DsdError, match="b1"):  # AnyNetXA has per-stage b
        compare.param_data(sel.data[sel.data["sweep"] == "anynetxa"], ["b"], resamples=10)
    s = compare.search_data(sel.data)
    assert list(s[s["sweep"] == "regnetx"]["m"]) == [1, 2, 4, 8, 16, 32]
    one = s[(s["sweep"] == "regnetx") & (s["m"] == 1)].iloc[0]
    assert one["mean"] == pytest.approx(sel.data.loc[sel.data["sweep"] == "regnetx",
                                                     "top1"].mean())


def test_sweep_colors_are_stable():
    a = plots.sweep_colors(["anynetxa", "regnetx", "my-sweep"])
    b = plots.sweep_colors(["regnetx", "my-sweep"])
    assert a["regnetx"] == b["regnetx"] and a["my-sweep"] == b["my-sweep"]
    assert len(set(a.values())) == 3
    assert plots.sweep_colors(["anynetxe_seed1"])["anynetxe_seed1"] == a.get(
        "anynetxe", plots.PALETTE[plots.SPACE_COLORS["anynetxe"]])
    many = plots.sweep_colors([f"s{i}" for i in range(8)])
    assert len(set(many.values())) == 8


# ---- rendering ----------------------------------------------------------------------------
def test_edf_svg_has_labels_and_legend(sel, tmp_path):
    d = compare.edf_data(sel.data, band=True, resamples=100)
    path = plots.save(plots.plot_edf(d), tmp_path / "edf.svg")
    svg = _svg_text(path)
    texts = _legend_texts(svg)
    assert "top-1 error (%)" in texts and "cumulative fraction of models" in texts
    for row in d.summary.to_dict("records"):
        assert plots.edf_label(row) in texts
        assert re.search(rf"{row['sweep']} \(n=40, min \d+\.\d\d%, mean \d+\.\d\d%\)", svg)
    assert plots.SYNTHETIC_NOTE in texts
    colors = plots.sweep_colors(list(SPACES))
    for c in colors.values():  # each sweep's colour is used for its curve
        assert c.lower() in svg.lower()


def test_edf_png_size_and_not_blank(sel, tmp_path):
    d = compare.edf_data(sel.data)
    path = plots.save(plots.plot_edf(d), tmp_path / "edf.png", dpi=100)
    img = mpimg.imread(path)
    h, w = img.shape[:2]
    assert 400 < w < 800 and 300 < h < 600
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not blank
    assert (rgb.min(axis=2) < 0.5).mean() > 0.01  # there is dark ink (lines, text)


def test_edf_many_sweeps_legend_outside_axes(tmp_path):
    """Seven sweeps (the refinement sequence): the legend goes below the axes, off the curves
    and off the caption (beside the axes it overprinted the caption, issue 30)."""
    spaces = ("anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx", "regnety")
    sel = select(synthetic.demo_store(Store(), spaces, n=12, seed=1), spaces, synthetic=True)
    data = sel.data
    fig = plots.plot_edf(compare.edf_data(data), caption=sel.caption())
    ax = fig.axes[0]
    assert ax.get_legend() is None and len(fig.legends) == 1
    plots.save(fig, tmp_path / "edf.png", dpi=100)  # lays the figure out
    legend, axes = fig.legends[0].get_window_extent(), ax.get_window_extent()
    caption = fig._suptitle.get_window_extent()
    assert legend.y1 <= axes.y0 and not legend.overlaps(caption)
    assert len(fig.legends[0].get_texts()) == 7
    small = plots.plot_edf(compare.edf_data(data[data["sweep"].isin(spaces[:3])]))
    assert small.axes[0].get_legend() is not None and not small.legends


def test_pdf_and_bad_suffix(sel, tmp_path):
    d = compare.edf_data(sel.data)
    path = plots.save(plots.plot_edf(d), tmp_path / "edf.pdf")
    assert path.read_bytes()[:5] == b"%PDF-"
    with pytest.raises(DsdError, match="png"):
        plots.save(plots.plot_edf(d), tmp_path / "edf.jpg")


def test_param_plot_svg(sel, tmp_path):
    shared = sel.data[sel.data["sweep"] != "anynetxa"]
    p = compare.param_data(shared, ["depth", "max_width", "g", "flops"], resamples=200)
    svg = _svg_text(plots.save(plots.plot_params(p), tmp_path / "p.svg"))
    texts = _legend_texts(svg)
    assert "top-1 error (%)" in texts and "total depth (blocks)" in texts
    assert "flops (multiply-adds)" in texts and "maximum width (channels)" in texts
    assert any(t.startswith("regnetx (n=40)") for t in texts)
    assert "95% interval" in texts


def test_search_and_widths_plots(sel, tmp_path):
    s = compare.search_data(sel.data)
    svg = _svg_text(plots.save(plots.plot_search_efficiency(s), tmp_path / "rse.svg"))
    texts = _legend_texts(svg)
    assert "experiment size m (models trained)" in texts
    assert "expected best top-1 error (%)" in texts
    assert any(t.startswith("anynetxe (") for t in texts)
    w = compare.widths_data(sel.data, top=2)
    assert set(w["rank"]) == {"best", "worst"} and w["pred"].isna().all()
    best = w[(w["sweep"] == "regnetx") & (w["rank"] == "best") & (w["order"] == 1)]
    assert best["top1"].iloc[0] == sel.data.loc[sel.data["sweep"] == "regnetx", "top1"].min()
    path = plots.save(plots.plot_widths(w, "regnetx"), tmp_path / "w.png", dpi=80)
    img = mpimg.imread(path)
    assert img.shape[1] > img.shape[0] and img[..., :3].std() > 0.05


def test_plot_into_given_axes(sel):
    fig, axes = plots.new_figure(1, 2, size=(8, 3))
    out = plots.plot_edf(compare.edf_data(sel.data), ax=axes[0, 1])
    assert out is fig and axes[0, 1].get_xlabel() == "top-1 error (%)"


def test_inverted_bottleneck_ratios_are_labelled_as_fractions():
    fig, axes = plots.new_figure()
    ax = axes[0, 0]
    ax.scatter([0.125, 0.25, 0.5, 1.0], [1, 2, 3, 4])
    plots.set_log_axis(ax, "x", 2, [0.125, 0.25, 0.5, 1.0, 0.25])
    plots.tidy_ticks(fig)
    fig.canvas.draw()
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1/8", "1/4", "1/2", "1"]
