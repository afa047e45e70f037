"""`dsd edf / analyze / fit / search-efficiency / report` on stores of formula results.

Errors come from a known formula of the spec plus noise (dsd.analysis.synthetic), written
through the normal store API. They are stored as real (synthetic=False) results of recipe
"formula" except where a test is about the synthetic flag.
"""
import base64
import re
import subprocess
import sys

import matplotlib.image as mpimg
import pytest
from clitest import fails as _fails, ok as _ok, run

import dsd.cli.analysis  # noqa: F401  (registers the commands)
from dsd.analysis.synthetic import FORMULA, add_formula_results
from dsd.sample import sample
from dsd.space import load_space
from dsd.store import Store

PLANTED = {0: "failed", 1: "diverged", 2: "collapsed", 3: "pending", 4: "untrained",
           5: "running"}


def _add_sweep(db, name, space, n=30, seed=0):
    sp = load_space(space)
    s = sample(sp, n, dataset="cifar10", seed=seed)
    db.add_sweep(name, space=sp.name, space_def=sp.to_dict(), dataset="cifar10",
                 window=s.window.to_dict(), seed=seed, draws=s.draws, models=s.models)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "dsd.sqlite"
    db = Store(path)
    for i, space in enumerate(("anynetxa", "anynetxe", "regnetx")):
        _add_sweep(db, space, space)
        add_formula_results(db, space, recipe="formula", synthetic=False, seed=i,
                            statuses=PLANTED if space == "anynetxa" else None)
    db.close()
    return str(path)




def test_analysis_cli_imports_no_torch():
    code = ("import sys, dsd.cli.analysis; "
            "assert 'torch' not in sys.modules, 'torch'; "
            "assert 'matplotlib' not in sys.modules, 'matplotlib'")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_lists_commands():
    out = _ok(run("--help"))
    for cmd in ("edf", "analyze", "fit", "search-efficiency", "report"):
        assert cmd in out
    assert "--normalize" in _ok(run("edf", "--help"))


def test_edf_counts_table_and_svg(store, tmp_path):
    out = _ok(run("edf", "--compare", "anynetxa", "anynetxe", "regnetx", "-o",
                  tmp_path / "edf.svg", "--store", store))
    assert "results: recipe formula, dataset cifar10" in out
    assert max(map(len, out.splitlines())) <= 80  # the selection summary wraps (issue 30)
    assert ("anynetxa: 24 of 30 models used; skipped 6 (1 failed, 1 diverged, 1 collapsed, "
            "1 running, 2 pending)") in " ".join(out.split())
    assert "anynetxe: 30 of 30 models used\n" in out
    for pair in (r"anynetxa\s+anynetxe", r"anynetxa\s+regnetx", r"anynetxe\s+regnetx"):
        assert re.search(pair + r"\s+0\.\d+\s+\S+", out), out  # a KS row: a b D p
    svg = (tmp_path / "edf.svg").read_text()
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", svg)
    assert "top-1 error (%)" in texts
    assert any(t.startswith("anynetxa (n=24, min ") for t in texts)
    assert any(t.startswith("regnetx (n=30, min ") for t in texts)
    assert "synthetic data (illustrative only)" not in texts  # real-flagged results


def test_edf_normalized_and_too_many_bins(store, tmp_path):
    out = _ok(run("edf", "anynetxe", "regnetx", "--normalize", "flops", "--bins", "3",
                  "--band", "--resamples", "50", "-o", tmp_path / "n.png", "--store", store))
    assert "normalized by flops: 3 bins" in out and "within-bin permutation p" in out
    # the tables' formatters (complexities K/M/G, p-values fmt_p) and 80 columns
    tables = out[out.index("\nsummary, normalized"):]
    assert re.search(r"3 bins over \[\d+(\.\d+)?M, \d+(\.\d+)?M\]", tables), tables
    assert max(map(len, tables.splitlines())) <= 80
    ks = [ln.split() for ln in tables.splitlines() if ln.startswith("anynetxe regnetx ")]
    assert len(ks) == 1 and all(re.fullmatch(r"\d\.\d{3}|\d\.\de-\d\d", v)
                                for v in ks[0][2:]), tables  # D, p, p_holm
    img = mpimg.imread(tmp_path / "n.png")
    assert img.shape[0] > 300 and img[..., :3].std() > 0.05
    _fails(run("edf", "anynetxe", "regnetx", "--normalize", "flops", "--bins", "200",
               "--store", store), "empty", "fewer bins")


def test_bad_inputs(store, tmp_path):
    _fails(run("edf", "nosuch", "--store", store), "no sweep or space named 'nosuch'",
           "anynetxa")
    _fails(run("edf", "anynetxa", "-o", tmp_path / "x.jpg", "--store", store), ".png")
    _fails(run("edf", "anynetxa", "--store", tmp_path / "missing.sqlite"), "no store at")
    _fails(run("analyze", "anynetxa", "--param", "b", "--store", store), "b1")
    _fails(run("analyze", "anynetxe", "--param", "nope", "--store", store),
           "unknown parameter 'nope'")
    _fails(run("analyze", "anynetxe", "--param", "wm", "--store", store), "RegNet parameter")


def test_space_name_selection(tmp_path):
    db = Store(tmp_path / "s.sqlite")
    _add_sweep(db, "xe-seed0", "anynetxe", n=8, seed=0)
    add_formula_results(db, "xe-seed0", recipe="formula", synthetic=False)
    path = str(tmp_path / "s.sqlite")
    out = _ok(run("edf", "anynetxe", "--store", path))  # the space's only sweep
    assert "xe-seed0: 8 of 8 models used" in out
    _add_sweep(db, "xe-seed1", "anynetxe", n=8, seed=1)
    add_formula_results(db, "xe-seed1", recipe="formula", synthetic=False)
    _fails(run("edf", "anynetxe", "--store", path), "space 'anynetxe' has 2 sweeps",
           "xe-seed0, xe-seed1")
    _ok(run("edf", "xe-seed0", "xe-seed1", "--store", path))


def test_one_recipe_and_dataset(tmp_path):
    db = Store(tmp_path / "r.sqlite")
    _add_sweep(db, "xe", "anynetxe", n=8)
    add_formula_results(db, "xe", recipe="quick", synthetic=False)
    add_formula_results(db, "xe", recipe="long", synthetic=False, seed=1,
                        statuses={0: "failed"})
    path = str(tmp_path / "r.sqlite")
    _fails(run("edf", "xe", "--store", path), "several recipes", "--recipe quick",
           "--recipe long", "--dataset cifar10")
    out = _ok(run("edf", "xe", "--recipe", "long", "--store", path))
    assert "recipe long" in out and "xe: 7 of 8 models used; skipped 1 (1 failed)" in out


def test_synthetic_results_are_excluded_by_default(tmp_path):
    db = Store(tmp_path / "y.sqlite")
    _add_sweep(db, "xe", "anynetxe", n=10)
    _add_sweep(db, "rx", "regnetx", n=10)
    add_formula_results(db, "xe", recipe="formula", synthetic=False)
    add_formula_results(db, "rx", recipe="formula", synthetic=True)
    path = str(tmp_path / "y.sqlite")
    _fails(run("edf", "rx", "--store", path), "--synthetic")
    _fails(run("edf", "xe", "rx", "--store", path), "'rx' has 0 finished")
    out = _ok(run("edf", "xe", "rx", "--synthetic", "-o", tmp_path / "y.svg", "--store", path))
    assert "includes SYNTHETIC results" in out and "rx: 10 of 10 models used" in out
    assert "synthetic data (illustrative only)" in (tmp_path / "y.svg").read_text()
    # one real and one synthetic result per model of a sweep: only the real ones count
    db2 = Store(tmp_path / "z.sqlite")
    _add_sweep(db2, "xe", "anynetxe", n=10)
    add_formula_results(db2, "xe", recipe="formula", synthetic=False,
                        statuses={i: "untrained" for i in range(4)})
    m = db2.models("xe")
    for mid in m["model_id"][:4]:
        rid = db2.start_result(int(mid), dataset="cifar10", recipe="formula",
                               recipe_json={"name": "formula", "formula": FORMULA,
                                            "noise": 0.3, "epochs": 1},
                               synthetic=True)
        db2.finish_result(rid, "done", top1=5.0)
    out = _ok(run("edf", "xe", "--store", tmp_path / "z.sqlite"))
    assert "xe: 6 of 10 models used; skipped 4 (4 synthetic)" in out


def test_analyze_fit_and_e_fit(store, tmp_path):
    out = _ok(run("analyze", "anynetxe", "--param", "b", "--param", "g", "-o",
                  tmp_path / "p.png", "--resamples", "300", "--seed", "1", "--store", store))
    assert re.search(r"\bb\s+anynetxe\s+\d", out) and re.search(r"\bg\s+anynetxe\s+\d", out)
    img = mpimg.imread(tmp_path / "p.png")
    assert img.shape[1] > img.shape[0] > 200 and img[..., :3].std() > 0.05
    # same seed, same numbers
    again = _ok(run("analyze", "anynetxe", "--param", "b", "--param", "g",
                    "--resamples", "300", "--seed", "1", "--store", store))
    assert out.split("best range")[1].split("wrote")[0].strip() == \
        again.split("best range")[1].split("(no figure")[0].strip()
    _fails(run("analyze", "anynetxe", "--param", "e_fit", "--store", store), "dsd fit")
    out = _ok(run("fit", "regnetx", "--store", store))
    assert re.search(r"regnetx\s+30\s", out) and "stored 30 fits" in out
    db = Store(store)
    fits = db.models("regnetx")
    # generated by the RegNet rule: close fits (> 0 only through group-width rounding)
    assert fits["e_fit"].notna().all() and fits["e_fit"].max() < 0.1
    assert (fits["e_fit"] == 0).sum() >= 5
    out = _ok(run("analyze", "regnetx", "--param", "e_fit", "--param", "fit_wm",
                  "--resamples", "200", "-o", tmp_path / "e.svg", "--store", store))
    svg = (tmp_path / "e.svg").read_text()
    assert "fitted" in svg and "top-1 error (%)" in svg


def test_search_efficiency(store, tmp_path):
    out = _ok(run("search-efficiency", "anynetxa", "regnetx", "-o", tmp_path / "rse.svg",
                  "--store", store))
    # one format in a cell: two decimals for the mean and the central 95% alike (issue 30)
    assert re.search(r"^\s*1\s+\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]", out, re.MULTILINE)
    assert re.search(r"^\s*16\s", out, re.MULTILINE)
    texts = re.findall(r"<text[^>]*>([^<]*)</text>", (tmp_path / "rse.svg").read_text())
    assert "experiment size m (models trained)" in texts
    assert any(t.startswith("anynetxa (") for t in texts)


def test_report_is_self_contained(store, tmp_path):
    path = tmp_path / "report.html"
    out = _ok(run("report", "anynetxa", "anynetxe", "regnetx", "-o", path, "--resamples",
                  "200", "--top", "1", "--store", store))
    assert "wrote" in out
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    for section in ("Models compared", "Error EDFs", "Kolmogorov-Smirnov", "Flops-normalized",
                    "Random search efficiency", "Parameters", "widths per block"):
        assert section in html
    images = re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', html)
    alts = [a for a, _ in images]
    assert "error EDFs" in alts and "search efficiency" in alts
    for s in ("anynetxa", "anynetxe", "regnetx"):
        assert f"{s} parameters" in alts and f"{s} widths" in alts
    for _, data in images:
        assert base64.b64decode(data)[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r'(src|href)="(http|file|/)', html)  # nothing external
    assert "failed" in html and "diverged" in html  # the skipped-models table
    _fails(run("report", "anynetxa", "-o", tmp_path / "r.txt", "--store", store), ".html")


def test_analyze_default_params_fit_every_sweep(store):
    out = _ok(run("analyze", "anynetxe", "regnetx", "--resamples", "100", "--store", store))
    params = set(re.findall(r"^\s*(\w+)\s+(?:anynetxe|regnetx)\s", out, re.MULTILINE))
    assert {"depth", "max_width", "b", "g", "flops", "params"} <= params
    assert not params & {"d", "w0", "wa", "wm"}  # RegNet-only: anynetxe has none
    assert "(no figure written" in out
    out = _ok(run("analyze", "regnetx", "--resamples", "100", "--store", store))
    params = set(re.findall(r"^\s*(\w+)\s+regnetx\s", out, re.MULTILINE))
    assert {"d", "w0", "wa", "wm", "b", "g"} <= params and "depth" not in params


def test_report_marks_synthetic_data(tmp_path):
    db = Store(tmp_path / "s.sqlite")
    _add_sweep(db, "xe", "anynetxe", n=12)
    add_formula_results(db, "xe", synthetic=True)
    path = tmp_path / "r.html"
    _ok(run("report", "xe", "--synthetic", "-o", path, "--resamples", "50", "--top", "1",
            "--bins", "50", "--store", tmp_path / "s.sqlite"))
    html = path.read_text()
    assert "SYNTHETIC" in html and "synthetic-formula" in html
    assert "50 bins left a bin empty; using" in html  # normalized EDF fell back to fewer bins


def test_sweeps_keep_the_given_order(store):
    out = _ok(run("edf", "regnetx", "anynetxe", "--store", store))
    summary = out.split("summary")[1]
    assert summary.index("regnetx") < summary.index("anynetxe")


def test_compare_warns_when_a_stores_sweeps_differ_in_samplers_and_window(tmp_path):
    # the store path: samplers and window come from each sweep's record, not the results
    path = tmp_path / "guards.sqlite"
    db = Store(path)
    _add_sweep(db, "rx", "regnetx", n=20)
    sp = load_space("regnetx").with_samplers("dsd1")
    s = sample(sp, 20, dataset="cifar10", window="100MF-125MF", seed=1)
    db.add_sweep("rx_dsd1", space=sp.name, space_def=sp.to_dict(), dataset="cifar10",
                 window=s.window.to_dict(), seed=1, draws=s.draws, models=s.models)
    for i, name in enumerate(("rx", "rx_dsd1")):
        add_formula_results(db, name, recipe="formula", synthetic=False, seed=i)
    db.close()
    out = _ok(run("compare", "rx", "rx_dsd1", "--store", path, "--sims", 100))
    assert "warning: rx vs rx_dsd1: sampler convention differs (rx: pycls; rx_dsd1: dsd1)" \
        in out
    assert "warning: rx vs rx_dsd1: complexity window differs" in out
    assert "Family: the primary test (rank test, unnormalized) of the one pair" in out
    doc = __import__("json").loads(run("compare", "rx", "rx_dsd1", "--store", path, "--sims",
                                       100, "--json").stdout)
    assert len(doc["warnings"]) == 2 and doc["pairs"][0]["role"] == "primary"
    _fails(run("compare", "rx", "rx_dsd1", "--store", path, "--pairs", "rx:rx"),
           "cannot be compared with itself")
    _fails(run("compare", "rx", "rx_dsd1", "--store", path, "--family", "all"),
           "--family all: allowed values are pairs, each")
