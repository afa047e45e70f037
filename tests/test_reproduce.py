"""The published-population path of issue 6: `dsd export-population` → Parquet → `dsd summarize`
(numbers checked against scipy/numpy), regeneration of SUMMARY.md (also of the committed
results/cifar10/ files when present), `--population` in the analysis commands, and
scripts/reproduce_cifar10.py end to end on a tiny synthetic-data study (CPU).

The errors here are FORMULA errors (`dsd.analysis.synthetic.formula_error`), not training:
this tests the population format, so they are stored as ordinary (synthetic=False) results.
"""
from __future__ import annotations

import json
import math
import subprocess
import sys
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sst
from typer.testing import CliRunner

import dsd.cli.analysis
import dsd.cli.results  # noqa: F401  (both register commands)
from dsd import Store
from dsd.analysis.population import read_population
from dsd.analysis.summary import union_seconds
from dsd.analysis.tables import fmt_p
from dsd.analysis.synthetic import formula_error
from dsd.cli import app
from dsd.sample import sample
from dsd.space import load_space
from dsd.spec import ModelSpec
from dsd.train.recipes import RECIPES

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "results" / "cifar10"
SPACES = ("anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx", "regnety")
PLANTED = {("anynetxa", 0): "failed", ("anynetxb", 1): "diverged", ("anynetxc", 2): "collapsed",
           ("regnety", 3): "pending"}
runner = CliRunner()


def _formula_population(path: str, n: int = 8) -> Store:
    """n real samples per space (CIFAR-10 window) with FORMULA errors and realistic curves."""
    store = Store(path)
    recipe = RECIPES["nds"].to_dict()
    rng = np.random.default_rng(0)
    for k, name in enumerate(SPACES):
        space = load_space(name).with_samplers("dsd1")   # as the study and its script
        s = sample(space, n, dataset="cifar10", seed=0)
        sweep = f"{name}-cifar10-s0"
        store.add_sweep(sweep, space=name, space_def=space.to_dict(), dataset="cifar10",
                        window=s.window.to_dict(), seed=0, draws=s.draws, models=s.models)
        for m in store.models(sweep).to_dict("records"):
            status = PLANTED.get((name, m["index"]), "done")
            if status == "pending":
                continue
            err = 10 + k + formula_error(ModelSpec.from_json(m["spec"]), m["flops"],
                                         noise=0.5, rng=rng)
            rid = store.start_result(m["model_id"], dataset="cifar10", recipe="nds",
                                     recipe_json=recipe, seed=m["index"])
            for e in range(1, 11):
                top1 = err + 40 * math.exp(-0.5 * e) - 40 * math.exp(-5)
                store.add_epoch(rid, e, train_loss=2.3 * math.exp(-0.2 * e), top1=top1,
                                top5=top1 / 5, lr=0.05 * (1 + math.cos(math.pi * e / 10)),
                                seconds=3.0)
            if status == "done":
                store.finish_result(rid, "done", top1=err, top5=err / 5, train_loss=0.3,
                                    seconds=30.0, device="NVIDIA H100 80GB HBM3",
                                    exec_path="graph")
            else:
                store.finish_result(rid, status, seconds=12.0, device="NVIDIA H100 80GB HBM3",
                                    exec_path="graph", error=f"planted {status}")
    return store


@pytest.fixture(scope="module")
def population(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pop")
    store = _formula_population(str(tmp / "s.sqlite"))
    runs = tmp / "runs.jsonl"
    runs.write_text("".join(json.dumps(r) + "\n" for r in (
        {"started": "2026-11-27T10:00:00+00:00", "finished": "2026-11-27T10:09:00+00:00",
         "seconds": 540.0, "gpus": 2, "gpu_names": ["NVIDIA H100 80GB HBM3"]},
        {"started": "2026-11-27T11:00:00+00:00", "finished": "2026-11-27T11:03:00+00:00",
         "seconds": 180.0, "gpus": 1, "gpu_names": ["NVIDIA H100 80GB HBM3"]})))
    out = tmp / "population.parquet"
    res = runner.invoke(app, ["export-population", "--store", store.path, "--runs", str(runs),
                              "-o", str(out)])
    assert res.exit_code == 0, res.output
    return store, out, tmp


def test_population_has_one_row_per_model_with_curves(population):
    store, out, _ = population
    df, runs = read_population(out)
    assert len(df) == 8 * len(SPACES) and len(runs) == 2
    assert df.groupby("sweep").size().eq(8).all()
    for (space, idx), status in PLANTED.items():
        assert df.loc[(df["space"] == space) & (df["index"] == idx), "status"].item() == status
    done = df[df["status"] == "done"]
    assert (done["epoch"].map(len) == 10).all() and (done["epoch_top1"].map(len) == 10).all()
    assert done["device"].eq("NVIDIA H100 80GB HBM3").all()
    assert done["exec_path"].eq("graph").all() and done["finished"].notna().all()
    assert json.loads(done["recipe_json"].iloc[0]) == RECIPES["nds"].to_dict()
    assert set(df["recipe"]) == {"nds"}  # pending rows are pending under the same recipe
    for col in ("spec", "flops", "params", "acts", "d1", "w4", "b1", "g4", "top5",
                "train_loss", "seconds", "sweep_seed", "window", "train_seed"):
        assert col in df, col
    rx = df[df["space"] == "regnetx"]
    assert rx[["w0", "wa", "wm", "d"]].notna().all().all()
    # the errors are the store's, unchanged
    ref = store.results(None).set_index("model_id")["top1"]
    assert np.allclose(done.set_index("model_id")["top1"], ref.loc[done["model_id"]])


def test_summarize_numbers(population):
    _, out, tmp = population
    md = tmp / "SUMMARY.md"
    res = runner.invoke(app, ["summarize", str(out), "-o", str(md)])
    assert res.exit_code == 0, res.output
    text = md.read_text()
    df, _ = read_population(out)
    done = df[df["status"] == "done"]
    table = text[text.index("## Models and errors"):text.index("## KS tests")]
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[1:-1]]
            for line in table.splitlines() if line.startswith("| ") and "-cifar10-" in line}
    for space in SPACES:
        e = done.loc[done["space"] == space, "top1"]
        row = rows[f"{space}-cifar10-s0"]
        assert row[2] == "dsd1" and int(row[4]) == len(e)  # sampler convention, done
        assert float(row[-3]) == pytest.approx(e.min(), abs=1e-2)
        assert float(row[-2]) == pytest.approx(e.mean(), abs=1e-2)
        assert float(row[-1]) == pytest.approx(e.median(), abs=1e-2)
    assert rows["anynetxa-cifar10-s0"][5:8] == ["1", "0", "0"]   # failed diverged collapsed
    assert rows["regnety-cifar10-s0"][4] == "7" and rows["regnety-cifar10-s0"][8] == "1"
    # KS between consecutive spaces equals scipy's
    ks_lines = [line for line in text.splitlines()
                if line.startswith("| ") and line.count("-cifar10-") == 2]
    pairs = [*pairwise(SPACES[:6]), ("regnetx", "regnety")]
    assert len(ks_lines) == len(pairs)
    for line, (a, b) in zip(ks_lines, pairs):
        cells = [c.strip() for c in line.split("|")[1:-1]]
        assert cells[:2] == [f"{a}-cifar10-s0", f"{b}-cifar10-s0"]
        r = sst.ks_2samp(done.loc[done["space"] == a, "top1"], done.loc[done["space"] == b,
                                                                          "top1"])
        assert float(cells[4]) == pytest.approx(r.statistic, abs=1e-3)
        assert cells[5] == fmt_p(r.pvalue)  # the one p-value format
    # best ranges: b where shared (not AnyNetXA), g from C on, wm and d for RegNets only
    best = [line for line in text.splitlines() if line.startswith("| ")
            and line.split("|")[2].strip() in ("b", "g", "wm", "d")]
    got = {(c.split("|")[1].strip().split("-")[0], c.split("|")[2].strip()) for c in best}
    assert ("anynetxa", "b") not in got and ("anynetxb", "b") in got
    assert ("anynetxb", "g") not in got and ("anynetxc", "g") in got
    assert {("regnetx", "wm"), ("regnetx", "d"), ("regnety", "wm")} <= got
    assert ("anynetxe", "wm") not in got
    # time: 55 models trained (52 done × 30 s + 3 bad × 12 s); runs 540 s × 2 + 180 s × 1 GPU
    model_h = (52 * 30 + 3 * 12) / 3600
    assert f"{model_h:.2f} h" in text and "0.20 h" in text and "0.35 h" in text


def test_summary_regenerates_identically(population):
    _, out, tmp = population
    notes = tmp / "notes.md"
    notes.write_text("A→B→C agree with the paper; *hand-written*.\n")
    md = tmp / "S.md"
    args = ["summarize", str(out), "-o", str(md), "--notes", str(notes)]
    assert runner.invoke(app, args).exit_code == 0
    first = md.read_text()
    assert "A→B→C agree with the paper; *hand-written*." in first
    assert runner.invoke(app, args).exit_code == 0
    assert md.read_text() == first


def assert_summary_regenerates(folder: Path) -> None:
    """folder/SUMMARY.md equals `dsd summarize population.parquet [--notes NOTES.md]`."""
    notes = folder / "NOTES.md"
    args = ["summarize", str(folder / "population.parquet"), "-o", str(folder / "regen.md")]
    res = runner.invoke(app, args + (["--notes", str(notes)] if notes.exists() else []))
    try:
        assert res.exit_code == 0, res.output
        assert (folder / "regen.md").read_text() == (folder / "SUMMARY.md").read_text()
    finally:
        (folder / "regen.md").unlink(missing_ok=True)


@pytest.mark.skipif(not (RESULTS / "population.parquet").exists(),
                    reason="results/cifar10/population.parquet not committed yet")
def test_committed_summary_regenerates():
    """SUMMARY.md of the committed study equals `dsd summarize` of its Parquet file."""
    assert_summary_regenerates(RESULTS)


def test_analysis_commands_read_a_population(population):
    store, out, tmp = population
    fig = tmp / "edf.png"
    res = runner.invoke(app, ["edf", "anynetxa", "regnetx", "--population", str(out), "-o",
                              str(fig)])
    assert res.exit_code == 0, res.output
    assert "7 of 8 models used; skipped 1 (1 failed)" in res.output and fig.stat().st_size
    from_pop = runner.invoke(app, ["edf", "anynetxa", "regnetx", "--population", str(out)])
    from_store = runner.invoke(app, ["edf", "anynetxa", "regnetx", "--store", store.path])
    assert from_pop.exit_code == 0 and from_pop.output == from_store.output  # same numbers
    html = tmp / "report.html"
    res = runner.invoke(app, ["report", "regnetx", "regnety", "--population", str(out), "-o",
                              str(html), "--resamples", "200"])
    assert res.exit_code == 0, res.output
    assert "data:image/png;base64" in html.read_text() and "1 pending" in res.output


def test_summarize_a_population_without_finished_models(population, tmp_path):
    """Every model collapsed or failed: the summary still has its counts, and says why the
    statistics are missing (exit 0, not 'no results to analyse')."""
    _, out, _ = population
    df, runs = read_population(out)
    df.loc[df["status"] == "done", "status"] = "collapsed"
    from dsd.analysis.summary import summary_markdown

    text = summary_markdown(df, runs, resamples=200)
    assert "## Models and errors per space" in text
    assert "Not computed: no finished model" in text


def test_fit_population_rewrites_only_the_fits(population, tmp_path):
    """`dsd fit SWEEP --population FILE` recomputes that sweep's fits with the current rule and
    keeps everything else in the file: other sweeps' fits, errors, curves, training runs."""
    import shutil

    from dsd.analysis.fit import fit_frame
    from dsd.analysis.population import write_population

    _, out, _ = population
    path = tmp_path / "pop.parquet"
    shutil.copy(out, path)
    df, runs = read_population(path)
    df["e_fit"] = 9.0                      # stale fits everywhere
    write_population(df, path, runs)
    res = runner.invoke(app, ["fit", "regnetx-cifar10-s0", "--population", str(path)])
    assert res.exit_code == 0, res.output
    assert "rewrote the fits of 8 models" in res.output and "(8 changed" in res.output
    new, new_runs = read_population(path)
    rx = new["sweep"] == "regnetx-cifar10-s0"
    expect = fit_frame(df[rx])
    assert np.allclose(new.loc[rx, "e_fit"], expect["e_fit"]) and (new.loc[rx, "e_fit"] == 0).all()
    assert (new.loc[~rx, "e_fit"] == 9.0).all() and new_runs == runs
    cols = [c for c in df.columns if c not in ("fit_w0", "fit_wa", "fit_wm", "e_fit")]
    pd.testing.assert_frame_equal(new[cols], df[cols])


def test_export_errors_are_one_line(tmp_path, population):
    res = runner.invoke(app, ["export-population", "--store", str(tmp_path / "none.sqlite")])
    assert res.exit_code == 1 and "no store" in res.output
    res = runner.invoke(app, ["summarize", str(tmp_path / "nope.parquet")])
    assert res.exit_code == 1 and "no population file" in res.output


def test_union_seconds():
    assert union_seconds([0, 5, 20], [10, 12, 25]) == 17
    assert union_seconds([], []) == 0


def test_results_commands_import_no_torch():
    code = ("import dsd.cli.results, dsd.analysis.summary, dsd.analysis.population, sys; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


SCRIPT = [sys.executable, str(REPO / "scripts" / "reproduce_cifar10.py")]


def test_script_dry_run(tmp_path):
    out = subprocess.run([*SCRIPT, "--dry-run", "--store", str(tmp_path / "s.sqlite")],
                         capture_output=True, text=True, check=True).stdout
    assert "would sample 100 models of anynetxa" in out and "regnety" in out
    assert not (tmp_path / "s.sqlite").exists()


@pytest.mark.slow
def test_script_outputs_from_a_trained_store(population, tmp_path):
    """On a store already holding the study's sweeps (n = 8, formula errors), the script's
    sampling is a no-op and it writes every output by dsd commands; SUMMARY.md regenerates."""
    import shutil

    store, _, _ = population
    path = tmp_path / "study.sqlite"
    shutil.copy(store.path, path)
    out = tmp_path / "out"
    (out).mkdir()
    (out / "NOTES.md").write_text("CIFAR-10 agrees here and not there.\n")
    spaces = ["anynetxc", "anynetxe", "regnetx"]  # three spaces keep it fast; all figures
    res = subprocess.run([*SCRIPT, "--n", "8", "--spaces", *spaces, "--no-train", "--store",
                          str(path), "--out", str(out)], capture_output=True, text=True,
                         check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count("already exists with these settings") == len(spaces)
    for name in ("population.parquet", "SUMMARY.md", "report.html", "edf.png",
                 "search_efficiency.png", "params_b.png", "params_g.png", "params_regnet.png",
                 "commands.sh"):
        assert (out / name).stat().st_size > 0, name
    assert (out / "edf_flops.png").exists() or "a flops bin is empty" in res.stdout
    assert_summary_regenerates(out)
    assert "CIFAR-10 agrees here and not there." in (out / "SUMMARY.md").read_text()
    df, _ = read_population(out / "population.parquet")
    assert len(df) == 3 * 8 and df["e_fit"].notna().all()  # the script fits every model before exporting
    assert "dsd summarize population.parquet -o SUMMARY.md --notes NOTES.md" in \
        (out / "commands.sh").read_text()


@pytest.mark.slow
def test_script_trains_and_resumes(tmp_path):
    """End to end on CPU: sample, train (synthetic data, 1 step), export, summarize; a second
    run finds nothing pending and adds no training run."""
    args = [*SCRIPT, "--n", "1", "--spaces", "anynetxe", "regnetx", "--flops", "4MF",
            "--epochs", "1", "--subset", "128", "--test-subset", "100", "--dataset",
            "synthetic", "--store", str(tmp_path / "s.sqlite"), "--out", str(tmp_path / "out")]
    for _ in range(2):
        res = subprocess.run(args, capture_output=True, text=True, check=False)
        assert res.returncode == 0, res.stdout + res.stderr
    assert "training: nothing pending" in res.stdout
    runs = (tmp_path / "s.runs.jsonl").read_text().splitlines()
    assert len(runs) == 1 and json.loads(runs[0])["pending_after"] == 0
    df, logged = read_population(tmp_path / "out" / "population.parquet")
    assert len(df) == 2 and len(logged) == 1 and df["synthetic"].all()
    assert df["status"].isin(["done", "collapsed"]).all() and df["seconds"].notna().all()
    assert "SYNTHETIC" in (tmp_path / "out" / "SUMMARY.md").read_text()
    store = Store(tmp_path / "s.sqlite")            # a failed model: --retry-failed trains it
    store.finish_result(int(store.results(status=None, synthetic=True)["result_id"][0]), "failed",
                        error="x")
    store.close()
    res = subprocess.run([*args, "--retry-failed", "--no-outputs"], capture_output=True,
                         text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    after = Store(tmp_path / "s.sqlite").results(status=None, synthetic=True)
    assert set(after["status"]) <= {"done", "collapsed"}
    assert len((tmp_path / "s.runs.jsonl").read_text().splitlines()) == 2


def test_summary_pairs_a_variant_with_the_space_it_extends():
    from dsd.analysis.summary import ks_pairs

    df = pd.DataFrame({"sweep": ["rx", "inv", "sw", "ry"],
                       "space": ["regnetx", "regnetx_inverted", "regnetx_swish", "regnety"],
                       "extends": [None, "regnetx", "regnetx", "regnetx"]})
    assert ks_pairs(df) == [("rx", "ry"), ("rx", "inv"), ("rx", "sw")]
    # without `extends`: the study's pairs only (the inverted bottleneck is a DDS claim)
    assert ks_pairs(df.drop(columns="extends")) == [("rx", "ry"), ("rx", "inv")]
