"""--count-failures (issue 18): failed, diverged and collapsed models at chance error in every
analysis command; figures say what was left out; a sweep with no finished model does not
break `dsd report`; fit and report progress bars."""
from __future__ import annotations

import io
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

import dsd.cli.analysis  # noqa: F401  (registers the commands)
from dsd.analysis.selection import select
from dsd.analysis.synthetic import add_formula_results
from dsd.cli import app
from dsd.sample import sample
from dsd.space import load_space
from dsd.store import Store

runner = CliRunner()
BAD = {0: "failed", 1: "diverged", 2: "collapsed", 3: "pending", 4: "untrained"}


def _add(db, name, space, n, statuses=None, seed=0):
    sp = load_space(space)
    s = sample(sp, n, dataset="cifar10", seed=seed)
    db.add_sweep(name, space=sp.name, space_def=sp.to_dict(), dataset="cifar10",
                 window=s.window.to_dict(), seed=seed, draws=s.draws, models=s.models)
    add_formula_results(db, name, recipe="formula", synthetic=False, seed=seed,
                        statuses=statuses, epochs=2)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("cf") / "dsd.sqlite"
    db = Store(path)
    _add(db, "a", "anynetxa", 12, BAD)
    _add(db, "r", "regnetx", 12)
    _add(db, "dead", "anynetxb", 4, {i: "failed" for i in range(4)})  # nothing finished
    db.close()
    return str(path)


def run(*args):
    r = runner.invoke(app, [str(a) for a in args])
    assert r.exit_code == 0, r.output
    return r.output


def test_select_counts_failures_at_chance(store):
    db = Store(store)
    plain = select(db, ["a", "r"])
    counted = select(db, ["a", "r"], count_failures=True)
    a0 = plain.counts.set_index("sweep").loc["a"]
    a1 = counted.counts.set_index("sweep").loc["a"]
    assert (a0["used"], a0["failed"], a0["diverged"], a0["collapsed"], a0["at_chance"]) == \
        (7, 1, 1, 1, 0)
    assert (a1["used"], a1["failed"], a1["diverged"], a1["collapsed"], a1["at_chance"]) == \
        (10, 0, 0, 0, 3)
    assert a1["pending"] == a0["pending"] == 2  # unfinished models are never counted
    mine = counted.data[counted.data["sweep"] == "a"]
    at = mine[mine["at_chance"]]
    assert sorted(at["index"]) == [0, 1, 2] and (at["top1"] == 90.0).all()
    assert not mine[~mine["at_chance"]]["top1"].ge(89).any()
    # the EDF of the space that fails moves toward higher error; the other does not move
    from dsd.analysis.compare import edf_data

    m0 = edf_data(plain.data).summary.set_index("sweep")["mean"]
    m1 = edf_data(counted.data).summary.set_index("sweep")["mean"]
    assert m1["a"] > m0["a"] + 10 and m1["r"] == m0["r"]
    assert "3 failed/diverged/collapsed counted at chance error 90%" in \
        " ".join(counted.summary().split())
    # the note on left-out failures (100 characters before issue 30) wraps at 80
    assert "(failed, diverged and collapsed models are left out; --count-failures counts them "\
           "at chance error)" in " ".join(plain.summary().split())
    assert max(len(line) for line in plain.summary().splitlines()) <= 80
    assert plain.caption() == ("cifar10, recipe formula, 2 epochs; 19 models; 5 left out "
                               "(1 failed, 1 diverged, 1 collapsed, 2 pending)")
    assert counted.caption().startswith("cifar10, recipe formula, 2 epochs; 22 models; 3 "
                                        "failed/diverged/collapsed counted at chance error")


@pytest.mark.parametrize("cmd", [["edf", "-o", "{}/f.svg"],
                                 ["analyze", "-p", "flops", "--resamples", "200", "-o",
                                  "{}/f.svg"],
                                 ["search-efficiency", "-o", "{}/f.svg"]])
def test_every_analysis_command_takes_the_option_and_its_figure_says_so(store, tmp_path, cmd):
    cmd = [c.format(tmp_path) for c in cmd]
    out = run(cmd[0], "a", "r", *cmd[1:], "--store", store, "--count-failures")
    assert "a: 10 of 12 models used (3 failed/diverged/collapsed counted at chance" in out
    texts = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", (tmp_path / "f.svg").read_text()))
    assert "counted at chance error" in texts and "recipe formula" in texts
    out = run(cmd[0], "a", "r", *cmd[1:], "--store", store)
    texts = " ".join(re.findall(r"<text[^>]*>([^<]*)</text>", (tmp_path / "f.svg").read_text()))
    assert "5 left out" in texts and "1 failed" in texts


def test_report_survives_a_sweep_without_finished_models(store, tmp_path):
    out = run("report", "a", "r", "dead", "-o", tmp_path / "r.html", "--resamples", 200,
              "--store", store)
    assert "dead: 0 of 4 models used; skipped 4 (4 failed)" in out
    html = (tmp_path / "r.html").read_text()
    assert "dead: no finished model" in html and html.count("<img") == 6 + 2 * 2
    assert "error (%)" in html and "left out" in html
    # counted at chance, the dead sweep has its 4 models (what the report would show)
    sel = select(Store(store), ["a", "r", "dead"], count_failures=True, min_models=0)
    assert (sel.data["sweep"] == "dead").sum() == 4 and sel.data["at_chance"].sum() == 7
    # the other commands still refuse a sweep they cannot show, with one line
    r = runner.invoke(app, ["edf", "a", "dead", "--store", store])
    assert r.exit_code == 1 and "sweep 'dead' has 0 finished" in r.output


def test_progress_bars_on_a_terminal_and_silent_otherwise():
    from dsd.cli.analysis import progress_bar

    buf = io.StringIO()
    with progress_bar("report", 3, Console(file=buf, force_terminal=True, width=100)) as step:
        for what in ("EDFs", "search", "widths"):
            step(what)
    assert "report" in buf.getvalue() and "3/3" in buf.getvalue()
    quiet = io.StringIO()
    with progress_bar("fit", 2, Console(file=quiet, force_terminal=False)) as step:
        step("a")
        step("a")
    assert quiet.getvalue() == ""


def test_fit_command_output_is_clean_when_piped(store, tmp_path):
    import shutil

    path = tmp_path / "copy.sqlite"
    shutil.copy(store, path)
    out = run("fit", "r", "--store", path)
    assert "e_fit" in out and "fit " not in out.splitlines()[0]
    fits = Store(path).models("r")
    assert (fits["e_fit"] == 0).all()  # RegNetX models fit exactly


def test_compare_takes_the_option(store):
    out = run("compare", "a", "r", "--sims", 100, "--store", store, "--count-failures")
    assert "a: 10 of 12 models used (3 failed/diverged/collapsed counted at chance" in out
