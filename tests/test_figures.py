"""`dsd curves`, `dsd complexity` and the report's curves, complexity and error-vs-flops sections.

The curve numbers are checked on a store trained for real (two tiny models, 2 epochs on 1,000
CIFAR-10 images, CPU) against the store's own `epochs` rows; a model still training and a failed
one are written through the store's API (`start_result`, `add_epoch`, `finish_result`). The
complexity numbers are checked on sampled, untrained sweeps against `Store.models`. Figures are
written for real and checked non-empty and readable; their layout (legend against caption) is
measured on the drawn figure.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from clitest import fails as _fails, ok as _ok, run

import dsd.cli.figures  # noqa: F401  (registers the commands)
from dsd.analysis import curves, plots
from dsd.analysis.population import PopulationStore, population_frame
from dsd.analysis.synthetic import add_formula_results
from dsd.cli import run as cli_run
from dsd.errors import DsdError
from dsd.sample import sample
from dsd.space import load_space
from dsd.store import Store

LATE_TOP1 = 85.25  # the still-training model's first epoch (written through the store API)


def _add_sampled(db, name, space, n, seed=0):
    sp = load_space(space)
    s = sample(sp, n, dataset="cifar10", seed=seed)
    db.add_sweep(name, space=sp.name, space_def=sp.to_dict(), dataset="cifar10",
                 window=s.window.to_dict(), seed=seed, draws=s.draws, models=s.models)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_root):
    """A store with sweep `tiny` (2 models trained for real), `late` (one model still training
    after 1 epoch, one failed) and `untrained` (sampled only)."""
    from test_train import QUICK, add_sweep

    from dsd.train import train

    path = tmp_path_factory.mktemp("curves") / "dsd.sqlite"
    db = Store(path)
    add_sweep(db, "tiny", n=2)
    summary = train(db, overrides=QUICK, data_dir=data_root, console=None)
    assert summary.counts == {"done": 2}, summary.counts
    recipe_json = json.loads(db.results(["tiny"])["recipe_json"].iloc[0])
    add_sweep(db, "late", n=2, seed=1)
    ids = list(db.models("late")["model_id"])
    rid = db.start_result(int(ids[0]), dataset="cifar10", recipe="nds", recipe_json=recipe_json)
    db.add_epoch(rid, 1, top1=LATE_TOP1, train_loss=2.25, lr=0.01)
    bad = db.start_result(int(ids[1]), dataset="cifar10", recipe="nds", recipe_json=recipe_json)
    db.finish_result(bad, "failed", error="planted")
    add_sweep(db, "untrained", n=2, seed=2)
    db.close()
    return str(path)


@pytest.fixture(scope="module")
def sampled(tmp_path_factory):
    """Two sampled, untrained sweeps of real spaces (their windows recorded)."""
    path = tmp_path_factory.mktemp("cx") / "dsd.sqlite"
    db = Store(path)
    _add_sampled(db, "anynetxa", "anynetxa", 40)
    _add_sampled(db, "regnetx", "regnetx", 25, seed=1)
    db.close()
    return str(path)




def _check_figure_file(path):
    assert path.stat().st_size > 2000, path
    if path.suffix == ".png":
        img = mpimg.imread(path)
        assert img.ndim == 3 and img.shape[0] > 300 and img.shape[1] > 500
        assert img[..., :3].std() > 0.05  # not a blank canvas
    elif path.suffix == ".pdf":
        assert path.read_bytes().startswith(b"%PDF")
    else:
        return re.findall(r"<text[^>]*>([^<]*)</text>", path.read_text())


def _no_overlap(fig):
    """The figure legend lies below every axes and clear of the caption (measured)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    leg = fig.legends[0].get_window_extent(renderer)
    cap = fig._suptitle.get_window_extent(renderer)
    assert not leg.overlaps(cap)
    for ax in fig.axes:
        if ax.get_visible():
            assert leg.y1 <= ax.get_window_extent(renderer).y0 + 1


# ---- curves: the numbers --------------------------------------------------------------------
def test_curves_are_the_stores_epoch_rows(trained):
    db = Store(trained)
    data = curves.curve_data(curves.epoch_rows(db, ["tiny", "late"]))
    res = db.results(["tiny"])
    ep = db.epochs(res["result_id"]).merge(res[["result_id", "model_id"]], on="result_id")
    tiny = data.curves[data.curves["sweep"] == "tiny"]
    got = tiny.sort_values(["model_id", "epoch"])[["model_id", "epoch", "value"]]
    want = ep.sort_values(["model_id", "epoch"])[["model_id", "epoch", "top1"]]
    assert got["value"].tolist() == want["top1"].tolist()
    assert got["epoch"].tolist() == want["epoch"].tolist() == [1, 2, 1, 2]
    # a finished model's last epoch is its result
    last = tiny.groupby("model_id").tail(1).set_index("model_id")["value"]
    assert np.allclose(last[res["model_id"]], res["top1"])
    for e, g in ep.groupby("epoch"):
        b = data.bands[(data.bands["sweep"] == "tiny") & (data.bands["epoch"] == e)].iloc[0]
        assert b["n"] == 2
        assert b["median"] == pytest.approx(np.median(g["top1"]))
        assert (b["q25"], b["q75"]) == pytest.approx(tuple(np.quantile(g["top1"], [.25, .75])))
    assert data.epochs == 2 and (data.subset, data.test_subset) == (1000, 1000)
    db.close()


def test_a_model_still_training_shows_its_epochs_so_far(trained):
    db = Store(trained)
    data = curves.curve_data(curves.epoch_rows(db, ["tiny", "late"]))
    late = data.curves[data.curves["sweep"] == "late"]
    assert late[["epoch", "value"]].values.tolist() == [[1, LATE_TOP1]]
    assert late["in_progress"].all() and not data.curves.loc[
        data.curves["sweep"] == "tiny", "in_progress"].any()
    s = data.summary.set_index("sweep")
    assert s.loc["late", ["shown", "done", "in_progress", "failed", "no_epochs"]].tolist() == \
        [1, 0, 1, 1, 0]
    assert s.loc["tiny", ["shown", "done", "last_epoch"]].tolist() == [2, 2, 2]
    b = data.bands[data.bands["sweep"] == "late"]
    assert b[["epoch", "n", "median"]].values.tolist() == [[1, 1, LATE_TOP1]]
    cap = data.caption()
    assert cap.startswith("cifar10, recipe nds, 2 epochs (first 1,000 training and 1,000 test "
                          "images: --subset/--test-subset)")
    assert "3 models (2 done, 1 still training: epochs so far); 1 left out (1 failed)" in cap
    assert data.caption(["tiny"]).endswith("; 2 models; none left out")
    table = curves.curve_table(data)
    assert table.set_index("sweep").loc["late", "median [IQR]"] == "85.25 [85.25, 85.25]"
    db.close()


def test_train_loss_curves_and_the_population_file_agree_with_the_store(trained):
    db = Store(trained)
    loss = curves.curve_data(curves.epoch_rows(db, ["tiny"]), "train_loss")
    res = db.results(["tiny"])
    want = db.epochs(res["result_id"])["train_loss"]
    assert sorted(loss.curves["value"]) == pytest.approx(sorted(want))
    assert loss.label == "train loss (cross-entropy)"
    pop = PopulationStore(population_frame(db, ["tiny", "late", "untrained"]))
    for metric in ("top1", "train_loss"):
        a = curves.curve_data(curves.epoch_rows(db, ["tiny", "late"]), metric)
        b = curves.curve_data(curves.epoch_rows(pop, ["tiny", "late"]), metric)
        assert np.allclose(a.bands[["epoch", "n", "median", "q25", "q75"]].to_numpy(float),
                           b.bands[["epoch", "n", "median", "q25", "q75"]].to_numpy(float))
        assert a.caption() == b.caption()
    db.close()


def test_curves_bad_input_is_one_line(trained, tmp_path):
    db = Store(trained)
    with pytest.raises(DsdError, match="no epochs yet for untrained"):
        curves.epoch_rows(db, ["untrained"])
    with pytest.raises(DsdError, match="unknown --metric 'acc'; allowed: top1, train_loss"):
        curves.curve_data(curves.epoch_rows(db, ["tiny"]), "acc")
    db.close()
    _fails(run("curves", "nope", "--store", trained), "no sweep or space named 'nope'")
    _fails(run("curves", "untrained", "--store", trained), "no epochs yet for untrained",
           "dsd train")
    _fails(run("curves", "tiny", "--recipe", "dds", "--store", trained),
           "no epochs yet for tiny (recipe dds on dataset any)")
    _fails(run("curves", "tiny", "-o", tmp_path / "c.txt", "--store", trained),
           "unknown figure format .txt")
    _fails(run("curves", "tiny", "--store", tmp_path / "none.sqlite"), "no store at")
    assert cli_run(["curves", "tiny", "--metric", "acc", "--store", trained]) == 2
    assert not (tmp_path / "c.txt").exists()


# ---- curves: the figure and the command -----------------------------------------------------
@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_curves_command_writes_each_format(trained, tmp_path, suffix):
    out = _ok(run("curves", "tiny", "late", "--store", trained, "-o", tmp_path / f"c{suffix}"))
    assert "3 models (2 done, 1 still training" in out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    assert re.search(r"late\s+1\s+1\s+1\s+1\s+85\.25 \[85\.25, 85\.25\]", out), out
    texts = _check_figure_file(tmp_path / f"c{suffix}")
    if suffix == ".svg":
        for t in ("epoch", "top-1 test error (%)", "tiny (n=2)", "late (n=1, 1 still training)",
                  "interquartile range", "still training: last epoch so far"):
            assert t in texts, texts


def test_curves_figure_layout(trained):
    db = Store(trained)
    data = curves.curve_data(curves.epoch_rows(db, ["tiny", "late"]))
    fig = plots.plot_curves(data)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["tiny (n=2)", "late (n=1, 1 still training)",
                      "medians and interquartile ranges"]
    _no_overlap(fig)
    one = curves.curve_data(curves.epoch_rows(db, ["late"]))  # a single epoch: points
    _no_overlap(plots.plot_curves(one))
    db.close()


# ---- complexity -----------------------------------------------------------------------------
def test_complexity_numbers_are_every_sampled_model(sampled):
    db = Store(sampled)
    data = curves.complexity_data(db, ["anynetxa", "regnetx"])
    for s in ("anynetxa", "regnetx"):
        models = db.models(s)
        window = db.sweep(s)["window"]
        for m in curves.MEASURES:
            v = data.values[(data.values["sweep"] == s) & (data.values["measure"] == m)]
            assert v["value"].tolist() == models[m].astype(float).tolist()
            row = data.summary[(data.summary["sweep"] == s)
                               & (data.summary["measure"] == m)].iloc[0]
            assert row["n"] == len(models)
            assert row["median"] == pytest.approx(np.median(models[m]))
            assert (row["min"], row["max"]) == (models[m].min(), models[m].max())
        w = data.windows[data.windows["sweep"] == s]
        assert w[["measure", "lo", "hi"]].values.tolist() == [["flops", *window["flops"]]]
        lo, hi = window["flops"]
        assert models["flops"].between(lo, hi).all()
    assert data.caption() == ("every sampled model, trained or not: 65 models in 2 sweeps; "
                              "shaded between dashed lines: the sampling window (flops)")
    table = curves.complexity_table(data)
    assert table.loc[0, "window"] == "112.5M–125M"
    assert (table["measure"] != "flops").eq(table["window"] == "–").all()
    db.close()


@pytest.mark.parametrize("suffix", [".png", ".pdf", ".svg"])
def test_complexity_command_on_untrained_sweeps(sampled, tmp_path, suffix):
    out = _ok(run("complexity", "anynetxa", "regnetx", "--store", sampled, "-o",
                  tmp_path / f"x{suffix}"))
    assert "65 models in 2 sweeps" in out
    assert all(len(line) <= 80 for line in out.splitlines()), out
    texts = _check_figure_file(tmp_path / f"x{suffix}")
    if suffix == ".svg":
        for t in ("flops (multiply-adds)", "parameters", "activations", "sampling window",
                  "cumulative fraction of models"):
            assert t in texts, texts


def test_complexity_figure_without_window_and_with_eight_sweeps():
    import pandas as pd

    rng = np.random.default_rng(0)
    names = [f"space{i}" for i in range(8)]
    frame = pd.concat([pd.DataFrame({
        "sweep": s, "index": range(30), "flops": rng.uniform(1e8, 4e8, 30).round(),
        "params": rng.lognormal(14 + i / 4, 0.5, 30).round(),
        "acts": rng.lognormal(13, 0.3, 30).round()}) for i, s in enumerate(names)])
    data = curves.complexity_frame(frame)
    assert data.windows.empty and data.caption().endswith("no sampling window recorded")
    fig = plots.plot_complexity(data)
    handles = fig.legends[0].legend_handles
    assert len(handles) == 8 and len({h.get_color() for h in handles}) == 8
    _no_overlap(fig)
    _fails(run("complexity", "nope", "--store", ":memory:"))


def test_figure_commands_import_no_torch(trained, sampled, tmp_path):
    code = ("import sys; from dsd.cli import run; "
            f"assert run(['curves', 'tiny', '--store', {trained!r}, '-o', "
            f"{str(tmp_path / 'c.png')!r}]) == 0; "
            f"assert run(['complexity', 'regnetx', '--store', {sampled!r}]) == 0; "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    assert (tmp_path / "c.png").stat().st_size > 2000


# ---- the report -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def formula(tmp_path_factory):
    """Two sweeps with formula results over 3 epochs (stored as real, recipe 'formula')."""
    path = tmp_path_factory.mktemp("rep") / "dsd.sqlite"
    db = Store(path)
    for i, space in enumerate(("anynetxa", "regnetx")):
        _add_sampled(db, space, space, 14, seed=i)
        add_formula_results(db, space, recipe="formula", synthetic=False, seed=i, epochs=3,
                            statuses={0: "failed", 1: "untrained"} if i == 0 else None)
    # formula epochs carry no train loss: rewrite each with one (add_epoch replaces the row)
    for e in db.epochs().to_dict("records"):
        db.add_epoch(int(e["result_id"]), int(e["epoch"]), top1=e["top1"], lr=e["lr"],
                     train_loss=e["top1"] / 40)
    db.close()
    return str(path)


def test_report_has_curves_complexity_and_error_vs_flops(formula):
    import base64

    from dsd.analysis.report import build_report, report_steps
    from dsd.analysis.selection import select

    db = Store(formula)
    sel = select(db, ["anynetxa", "regnetx"])
    db.close()
    steps = []
    # the store is reopened from `source`, the path `dsd report` passes
    page = build_report(sel, resamples=200, source=formula, progress=steps.append)
    assert len(steps) == report_steps(sel)
    heads = re.findall(r"<h2>(.*?)</h2>", page)
    for h in ("Training curves", "Complexity of the sweeps", "Error against flops"):
        assert h in heads
    sections = {h: page.split(f"<h2>{h}</h2>")[1].split("<h2>")[0] for h in heads}
    for h, alt in (("Training curves", "training curves"),
                   ("Complexity of the sweeps", "complexity distributions"),
                   ("Error against flops", "error against flops")):
        png = re.search(rf'alt="{alt}" src="data:image/png;base64,([^"]+)"', sections[h])
        assert png and len(base64.b64decode(png.group(1))) > 5000
    assert ("cifar10, recipe formula, 3 epochs; 26 models; 2 left out (1 failed, 1 without "
            "an epoch yet)") in sections["Training curves"]
    assert "28 models in 2 sweeps" in sections["Complexity of the sweeps"]
    assert "26 models; 2 left out (1 failed, 1 pending)" in sections["Error against flops"]

    # without the store: what the selection holds, said so
    from dsd.analysis import report

    colors = plots.sweep_colors(sel.sweeps)
    assert "built without its store" in "".join(report._curves_section(sel, None, colors))
    assert "the 26 selected (finished) models only" in "".join(
        report._complexity_section(sel, None, colors))


def test_readme_curves_and_complexity_lines_run(formula, tmp_path, monkeypatch):
    """Every `dsd` line of README's curves/complexity subsection runs on a small store and
    writes its figure."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    part = readme.split("### Training curves and complexity")[1].split("\n### ")[0]
    lines = [ln.split("#")[0].split() for ln in part.splitlines() if ln.startswith("dsd ")]
    assert [ln[1] for ln in lines] == ["curves", "curves", "complexity", "analyze"]
    monkeypatch.chdir(tmp_path)
    for args in lines:
        _ok(run(*args[1:], "--store", formula))
        out = tmp_path / args[args.index("-o") + 1]
        _check_figure_file(out)
