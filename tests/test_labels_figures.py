"""Issue 18, honest labels and figures that fit: errors are called errors, --json prints JSON
values (not dict reprs or JSON text in strings), figures keep every artist inside the saved
image and their tick labels apart, tables show what they say."""
from __future__ import annotations

import io
import json
import re

from rich.console import Console
from typer.testing import CliRunner

from dsd.cli import app
from dsd.cli import analysis, core, results  # noqa: F401  (registers the commands)
from dsd.store import Store

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


# ---- labels -------------------------------------------------------------------------------
def test_the_per_model_training_line_says_error():
    from dsd.train.progress import TrainProgress

    buf = io.StringIO()
    p = TrainProgress(Console(file=buf, width=120, force_terminal=False))
    with p.live(models=2, epochs=2):
        p.model_done("sw", 3, 118_200_000, {"status": "done", "top1": 18.9, "seconds": 41.2,
                                            "exec_path": "eager"})
        p.model_done("sw", 4, 118_200_000, {"status": "failed", "error": "boom"})
    out = buf.getvalue()
    assert "error  18.90%" in out and "top1" not in out
    assert re.search(r"sw #4 .* error\s+-", out)


def test_show_calls_the_error_an_error_and_json_prints_values(tmp_path):
    db = tmp_path / "s.sqlite"
    r = invoke("sample", "--space", "anynetxa", "--n", 3, "--dataset", "cifar10", "--store", db)
    assert r.exit_code == 0, r.output
    st = Store(db)
    mid = int(st.models("anynetxa-cifar10-s0").loc[0, "model_id"])
    rid = st.start_result(mid, dataset="cifar10", recipe="nds", recipe_json={"name": "nds"})
    st.finish_result(rid, "done", top1=31.25, top5=4.5)
    r = invoke("show", "anynetxa-cifar10-s0", "--store", db)
    assert r.exit_code == 0, r.output
    header = r.output.splitlines()[1].split()
    assert "error" in header and "top1" not in header and "None" not in r.output
    assert "31.25" in r.output and "error = final top-1 test error" in r.output
    # --json: the stored JSON fields are JSON values, the window numbers
    (sweep,) = json.loads(invoke("show", "--store", db, "--json").output)
    assert sweep["window"] == {"flops": [112_500_000, 125_000_000]}
    rows = json.loads(invoke("show", "anynetxa-cifar10-s0", "--store", db, "--json").output)
    assert rows[0]["window"] == {"flops": [112_500_000, 125_000_000]}
    assert isinstance(rows[0]["sampled"], dict) and rows[0]["sampled"]["d1"] >= 1
    assert rows[0]["recipe_json"] == {"name": "nds"} and rows[0]["top1"] == 31.25
    assert all(r["top1"] is None for r in rows[1:])  # untrained: null, not NaN
    # a conflicting sample names the window readably, not as a dict repr
    r = invoke("sample", "--space", "anynetxa", "--n", 5, "--dataset", "cifar10", "--store", db,
               "--name", "anynetxa-cifar10-s0")
    assert r.exit_code == 1 and "window flops 112.5MF–125MF" in r.output
    assert "{" not in r.output


def test_spaces_json_gives_windows_as_numbers():
    rows = json.loads(invoke("spaces", "--json").output)
    a = next(r for r in rows if r["name"] == "anynetxa")
    assert a["window"]["cifar10"] == {"flops": [112_500_000, 125_000_000]}
    assert a["window"]["imagenet"] == {"flops": [360_000_000, 400_000_000]}


def test_spec_json_round_trip_as_the_readme_says():
    import dsd

    spec = dsd.zoo_spec("regnetx-400mf", dataset="cifar10")
    text = spec.to_json()
    assert dsd.ModelSpec.from_json(text) == spec and json.loads(text)["num_classes"] == 10


def test_exports_document_that_top1_is_an_error(tmp_path):
    import pyarrow.parquet as pq

    db = tmp_path / "s.sqlite"
    invoke("sample", "--space", "anynetxa", "--n", 2, "--dataset", "cifar10", "--store", db)
    for cmd in (["export", "anynetxa-cifar10-s0", "-o", tmp_path / "m.parquet"],
                ["export-population", "-o", tmp_path / "p.parquet"]):
        r = invoke(*cmd, "--store", db)
        assert r.exit_code == 0, r.output
        schema = pq.read_schema(cmd[-1])
        doc = schema.field("top1").metadata[b"description"].decode()
        assert "top-1 test error (%)" in doc and "not accuracy" in doc
        assert b"error" in schema.field("epoch_top1").metadata[b"description"]


def test_export_names_the_failure_message_failure_not_error(tmp_path):
    """Issue 30: `dsd export` had `error` (a failed model's message) beside `top1` (the error
    rate). The message is `failure` now, in Parquet and CSV; `top1` keeps the rate."""
    import pandas as pd

    from dsd.store import load

    db = tmp_path / "s.sqlite"
    invoke("sample", "--space", "anynetxa", "--n", 2, "--dataset", "cifar10", "--store", db)
    store = load(db)
    ids = list(store.models("anynetxa-cifar10-s0")["model_id"])
    rid = store.start_result(int(ids[0]), dataset="cifar10", recipe="nds",
                             recipe_json={"name": "nds", "epochs": 1})
    store.finish_result(rid, "failed", error="CUDA error: planted")
    rid = store.start_result(int(ids[1]), dataset="cifar10", recipe="nds",
                             recipe_json={"name": "nds", "epochs": 1})
    store.add_epoch(rid, 1, top1=41.5, lr=0.1)
    store.finish_result(rid, "done", top1=41.5, top5=9.0, seconds=1.0, device="cpu")
    store.close()
    for suffix, read in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        out = tmp_path / f"m{suffix}"
        r = invoke("export", "anynetxa-cifar10-s0", "-o", out, "--store", db)
        assert r.exit_code == 0, r.output
        df = read(out).set_index("index")
        assert "error" not in df.columns and "failure" in df.columns
        assert df.loc[0, "failure"] == "CUDA error: planted" and df.loc[0, "status"] == "failed"
        assert df.loc[1, "top1"] == 41.5 and pd.isna(df.loc[1, "failure"])


# ---- figures that fit -----------------------------------------------------------------------
def _drawn(fig, path):
    """Save `fig` for real, then lay it out and draw it on an Agg canvas at its own dpi."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from dsd.analysis import plots

    plots.save(fig, path)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return canvas.get_renderer()


def assert_inside(fig, path, tol=1.0):
    """Every drawn artist (the figure's tight bbox, and each legend and text one by one)
    lies inside the saved figure's area; the saved PNG is the full figure, not cropped."""
    import matplotlib.image as mpimg
    from matplotlib.legend import Legend
    from matplotlib.text import Text

    renderer = _drawn(fig, path)
    W, H = fig.bbox.width, fig.bbox.height
    tight = fig.get_tightbbox(renderer)  # inches
    assert tight.x0 >= -0.01 and tight.y0 >= -0.01, tight
    assert tight.x1 <= fig.get_figwidth() + 0.01 and tight.y1 <= fig.get_figheight() + 0.01, \
        (tight, fig.get_size_inches())
    for a in fig.findobj(lambda a: isinstance(a, (Legend, Text)) and a.get_visible()):
        if isinstance(a, Text) and not a.get_text():
            continue
        if isinstance(a, Text) and a.axes is not None and not a.get_in_layout():
            continue
        b = a.get_window_extent(renderer)
        assert b.x0 >= -tol and b.y0 >= -tol and b.x1 <= W + tol and b.y1 <= H + tol, (a, b)
    if str(path).endswith(".png"):
        img = mpimg.imread(path)
        assert img.shape[1] == round(fig.get_figwidth() * 200)


def tick_label_clashes(fig, renderer, pad=0.0):
    """(axis, label a, label b) for every pair of drawn tick labels of an axis whose boxes
    intersect, plus pairs of equal labels on one axis."""
    out = []
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        for axis in (ax.xaxis, ax.yaxis):
            labs = [lab for lab in axis.get_ticklabels() if lab.get_visible() and lab.get_text()]
            lo, hi = sorted(axis.get_view_interval())
            labs = [lab for lab in labs
                    if lo <= (lab.get_position()[0] if axis is ax.xaxis
                              else lab.get_position()[1]) <= hi]
            boxes = [lab.get_window_extent(renderer) for lab in labs]
            for i in range(len(labs)):
                for j in range(i + 1, len(labs)):
                    a, b = boxes[i], boxes[j]
                    if a.x0 < b.x1 + pad and b.x0 < a.x1 + pad and a.y0 < b.y1 + pad \
                            and b.y0 < a.y1 + pad:
                        out.append((axis.axis_name, labs[i].get_text(), labs[j].get_text()))
                    if labs[i].get_text() == labs[j].get_text():
                        out.append((axis.axis_name, "same", labs[i].get_text()))
    return out


def _frame(n=8, seed=0, **cols):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"sweep": "a-sweep-with-a-rather-long-name-cifar10-s0",
                       "top1": rng.uniform(12, 25, n), "index": range(n), "synthetic": False})
    for k, v in cols.items():
        df[k] = v
    return df


def test_one_panel_e_fit_figure_keeps_its_legend_inside(tmp_path):
    """Issue 18: `dsd analyze --param e_fit` (one panel) had its legend clipped at both edges."""
    import numpy as np

    from dsd.analysis import compare, plots

    df = _frame(40, e_fit=np.linspace(0.01, 1.5, 40))
    fig = plots.plot_params(compare.param_data(df, ["e_fit"], resamples=200),
                            caption="cifar10, recipe nds, 10 epochs; 40 models; none left out")
    assert_inside(fig, tmp_path / "efit.png")
    # a sweep name longer than the panel is wide: the figure grows to hold its legend
    df["sweep"] = "a-sweep-name-so-long-that-no-legend-column-of-a-single-panel-could-hold-it"
    fig = plots.plot_params(compare.param_data(df, ["e_fit"], resamples=200))
    assert_inside(fig, tmp_path / "long.png")


CROWDED = {  # a report's parameter panels on n <= 8 models (issue 18)
    "params": [7.72e6, 7.79e6, 7.86e6, 7.93e6] * 2,             # was 7.72M7.86M…
    "max_width": [144, 152, 144, 152, 144, 152, 152, 144],      # was 144152
    "flops": [107_210, 107_640, 107_210, 107_640] * 2,          # was 107K107K
    "acts": [93_970, 216_000, 120_500, 180_250] * 2,            # mixed 9.397e+04 and 216K
    "wm": [1.5, 1.75, 2.0, 2.25, 2.5, 2.75, 3.0, 1.6],
}


def test_parameter_panels_have_distinct_non_overlapping_tick_labels(tmp_path):
    from dsd.analysis import compare, plots

    params = list(CROWDED)
    fig = plots.plot_params(compare.param_data(_frame(8, **CROWDED), params, resamples=100))
    renderer = _drawn(fig, tmp_path / "p.png")
    assert tick_label_clashes(fig, renderer) == []
    for i, p in enumerate(params):
        labels = [t.get_text() for t in fig.axes[i].xaxis.get_ticklabels() if t.get_text()]
        assert len(labels) >= 2, (p, labels)
        assert not any("e+" in t or "e-" in t for t in labels), labels
    assert_inside(fig, tmp_path / "p.png")


def test_one_number_format_for_ticks_and_report_tables():
    from dsd.analysis import plots, tables
    from dsd.analysis.report import _fmt

    assert _fmt(93_970.5) == "93.97K" and _fmt(216_000.0) == "216K" and _fmt(119_579_274) == \
        "119.6M"
    # one implementation: the figures' ticks are the tables' numbers (issue 30)
    assert not hasattr(plots, "_fmt_number") and not hasattr(plots, "_fmt_plain")
    assert plots.fmt_number is tables.fmt_number
    assert tables.fmt_number(1234.5) == "1234" and tables.fmt_number(1.75) == "1.75"
    assert tables.fmt_number(0) == "0" and tables.fmt_number(9999.7) == "10K"
    assert [tables.fmt_number(v, digits=plots.tick_digits([107_210, 107_640]))
            for v in (107_210, 107_640)] == ["107.2K", "107.6K"]  # not 107K 107K, nor 108K
    assert plots.tick_digits([1.5, 1.75, 2.0]) == 3         # 1.75, not 1.8


def test_report_and_cli_figures_fit_and_are_captioned(tmp_path):
    """Real figures from the CLI path: EDF with many sweeps (legend beside), search
    efficiency, per-block widths; each keeps its artists inside and says what it shows."""
    from dsd.analysis import compare, plots, synthetic
    from dsd.analysis.selection import select

    spaces = ("anynetxa", "anynetxb", "anynetxc", "anynetxd", "regnetx")
    db = synthetic.demo_store(Store(), spaces, n=8, seed=2)
    sel = select(db, spaces, synthetic=True)
    cap = sel.caption()
    assert cap.startswith(f"{sel.dataset}, recipe {sel.recipe}")
    figs = {"edf": plots.plot_edf(compare.edf_data(sel.data), caption=cap),
            "rse": plots.plot_search_efficiency(compare.search_data(sel.data), caption=cap),
            "widths": plots.plot_widths(compare.widths_data(sel.data, top=2), "anynetxa",
                                        caption=sel.caption(["anynetxa"]))}
    for name, fig in figs.items():
        assert_inside(fig, tmp_path / f"{name}.png")
        renderer = _drawn(fig, tmp_path / f"{name}.png")
        assert tick_label_clashes(fig, renderer) == [], name
        title = fig._suptitle.get_text().replace("\n", " ")
        assert sel.recipe in title and sel.dataset in title, title


def test_best_and_worst_tables_are_disjoint_and_show_every_stage():
    from dsd.analysis import compare, synthetic
    from dsd.analysis.selection import select

    db = synthetic.demo_store(Store(), ("anynetxa",), n=7, seed=3)
    sel = select(db, ["anynetxa"], synthetic=True)
    table = compare.best_models(sel.data, top=4)
    assert len(table) == 7 and table["index"].is_unique           # 4 best + 3 worst, no repeats
    assert list(table["rank"]) == ["best"] * 4 + ["worst"] * 3
    best, worst = table[table["rank"] == "best"], table[table["rank"] == "worst"]
    assert best["top1"].max() <= worst["top1"].min()
    assert list(worst["top1"]) == sorted(worst["top1"], reverse=True)
    for rec, spec in zip(table.to_dict("records"), table["index"]):
        row = sel.data[sel.data["index"] == spec].iloc[0]
        assert rec["b"] == " ".join(str(row[f"b{i}"]) for i in range(1, 5))
        assert rec["g"] == " ".join(str(row[f"g{i}"]) for i in range(1, 5))
        assert len(rec["d"].split()) == len(rec["w"].split()) == 4
    w = compare.widths_data(sel.data, top=4)
    assert w.groupby("rank")["index"].nunique().to_dict() == {"best": 4, "worst": 3}


def test_info_prints_samplers_and_stem_as_text_not_dicts():
    r = invoke("info", "anynetxa")
    assert r.exit_code == 0, r.output
    assert "{" not in r.output and "stem w 32" in r.output
    assert "choice 1, 2, 4" in r.output and "log_uniform 8…1024 q 8" in r.output


def test_shared_axes_are_thinned_once_per_round(tmp_path):
    """Three panels sharing y with crowded labels: the shared locator is halved once per
    round, not once per panel (which would leave a single tick)."""
    from dsd.analysis import plots

    ticks = {}
    for n in (1, 3):
        fig, axes = plots.new_figure(1, n, size=(6, 2.0), sharey=True)
        for ax in axes[0]:
            ax.plot([0, 1], [0, 1000])
            ax.set_yticks(list(range(0, 1001, 50)))
        plots.tidy_ticks(fig)
        renderer = _drawn(fig, tmp_path / "s.png")
        assert tick_label_clashes(fig, renderer) == []
        ticks[n] = list(axes[0, 0].get_yticks())
    assert ticks[3] == ticks[1] and len(ticks[1]) >= 4
