"""`dsd decide`: the model rule, the look schedule, the stored records, design-change refusal,
bad input, real training of tiny models on CPU (CIFAR-10 subset), and resume after SIGKILL.

The statistics are `dsd.analysis.sequential`'s own. Scheduling tests replace the trainer by one
that writes given errors into the store (`FakeTrainer`), so that which models each look trains
and uses can be asserted exactly; the end-to-end tests train for real."""
from __future__ import annotations

import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from procs import dsd_process, wait_for
from typer.testing import CliRunner

import dsd.cli.decide  # noqa: F401  (registers the command)
from dsd import Store
from dsd import decide as lib
from dsd.analysis.sequential import SequentialDesign, decide as seq_decide
from dsd.cli import app
from dsd.errors import DsdError
from dsd.train import get_recipe

runner = CliRunner()
QUICK = ["--epochs", "1", "--batch-size", "50", "--subset", "50", "--test-subset", "100"]

TINY = """name: {name}
description: a tiny test space
samplers: pycls
block: x
stem: {{w: 8}}
stages: 2
stage_params:
  d: {{sampler: log_uniform, low: 1, high: 3, q: 1}}
  w: {{sampler: log_uniform, low: 8, high: {high}, q: 8}}
  b: {{sampler: choice, values: [1]}}
  g: {{sampler: choice, values: [8]}}
window:
  cifar10: {{flops: [0, 10MF]}}
"""


@pytest.fixture
def spaces(tmp_path):
    """Three tiny CIFAR-layout spaces (1–4 MF) in a folder of their own."""
    folder = tmp_path / "spaces"
    folder.mkdir()
    for name, high in (("tinya", 16), ("tinyb", 32), ("tinyc", 24)):
        (folder / f"{name}.yaml").write_text(TINY.format(name=name, high=high))
    return folder


def make_sweeps(store, spaces, names=("tinya", "tinyb"), n=20, **kw) -> list[str]:
    sampling = lib.Sampling(dataset="cifar10", spaces_dir=spaces, **kw)
    return lib.ensure_sweeps(store, lib.plan_sweeps(list(names), sampling, n), sampling, n,
                             say=lambda _: None)


class FakeTrainer:
    """Writes each requested pending model's given outcome into the store, as `dsd train`
    would after training it; records the (sweep, index) pairs of every call. `errors[sweep]`:
    index → error, or a status ("failed", "failed once", "collapsed", "diverged")."""

    def __init__(self, errors: dict[str, dict]):
        self.errors, self.calls, self.attempts = errors, [], {}

    def __call__(self, store, options, console):
        recipe = get_recipe(options.recipe, "cifar10").override(**(options.overrides or {}))
        rows = [r for r in store.training_queue(options.sweeps, dataset=None,
                                                recipe_json=recipe.to_dict())
                if r["index"] in options.indices]
        self.calls.append(sorted((r["sweep"], r["index"]) for r in rows))
        counts = {}
        for r in rows:
            key = (r["sweep"], r["index"])
            self.attempts[key] = self.attempts.get(key, 0) + 1
            rid = store.start_result(r["model_id"], dataset="cifar10", recipe=recipe.name,
                                     recipe_json=recipe.to_dict())
            e = self.errors[r["sweep"]][r["index"]]
            if e == "failed once":
                e = "failed" if self.attempts[key] == 1 else 42.0
            if isinstance(e, str):
                store.finish_result(rid, e, top1=90.0 if e == "collapsed" else None,
                                    error="injected" if e == "failed" else None)
                counts[e] = counts.get(e, 0) + 1
            else:
                store.finish_result(rid, "done", top1=float(e))
                counts["done"] = counts.get("done", 0) + 1
        return SimpleNamespace(counts=counts, stopped=None, signum=None)


def errors_of(rng, n, shift):
    return {i: float(30 + shift + rng.normal()) for i in range(n)}


# ---- library pieces -----------------------------------------------------------------------
def test_no_torch_at_import():
    code = "import dsd.decide, dsd.cli.decide, sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pairs():
    assert lib.pair_list(["a", "b", "c"]) == [("a", "b"), ("b", "c")]
    assert lib.pair_list(["a", "b", "c"], "all") == [("a", "b"), ("a", "c"), ("b", "c")]
    with pytest.raises(DsdError, match="two or more spaces, got 1"):
        lib.pair_list(["a"])
    with pytest.raises(DsdError, match="'a' given twice"):
        lib.pair_list(["a", "b", "a"])
    with pytest.raises(DsdError, match="--pairs 'some': allowed: consecutive, all"):
        lib.pair_list(["a", "b"], "some")


def test_model_rule():
    """done: error; collapsed/diverged: chance; failed: retried once, then a hole; a look
    waits for every model below its size (pending, running, failed not yet retried)."""
    out = {0: {"status": "done", "top1": 31.5}, 1: {"status": "collapsed", "top1": 88.0},
           2: {"status": "diverged", "top1": None}, 3: {"status": "failed", "retried": True},
           4: {"status": "failed", "retried": False}, 5: {"status": "running"}}
    s = lib.slots(out, 7, 90.0)
    assert s.errors[:3] == (31.5, 90.0, 90.0) and all(math.isnan(e) for e in s.errors[3:])
    assert s.at_chance == (1, 2) and s.excluded == (3,)
    assert s.to_retry == (4,) and s.unfinished == (5, 6) and not s.ready
    assert s.record() == {"used": [0, 1, 2], "at_chance": [1, 2], "excluded": [3]}
    done = lib.slots(out, 4, 90.0)
    assert done.ready and done.record()["used"] == [0, 1, 2]


def test_sampling_reuses_an_identical_sweep(tmp_path, spaces):
    store = Store(tmp_path / "s.sqlite")
    names = make_sweeps(store, spaces, n=8)
    assert names == ["tinya-cifar10-s0", "tinyb-cifar10-s0"]
    first = store.models(names[0])["hash"].tolist()
    assert make_sweeps(store, spaces, n=5) == names          # a shorter study: same sweeps
    assert len(store.models(names[0])) == 8
    fresh = Store(tmp_path / "t.sqlite")                     # prefix-stable: the same models
    make_sweeps(fresh, spaces, n=5)
    assert fresh.models(names[0])["hash"].tolist() == first[:5]
    with pytest.raises(DsdError, match="has 8 models, fewer than --max-n 9"):
        make_sweeps(store, spaces, n=9)
    with pytest.raises(DsdError, match="exists .* with other settings .*--tag"):
        make_sweeps(store, spaces, n=8, flops_range=("1MF", "5MF"))
    tagged = make_sweeps(store, spaces, n=8, flops_range=("1MF", "5MF"), tag="w")
    assert tagged == ["tinya-cifar10-s0-w", "tinyb-cifar10-s0-w"]
    with pytest.raises(DsdError, match="space 'tinya' given twice"):
        make_sweeps(store, spaces, names=("tinya", "tinya"), n=8)


def test_a_v3_store_gains_the_decision_tables(tmp_path):
    path = tmp_path / "old.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE decision_looks; DROP TABLE decision_retries; "
                       "DROP TABLE decisions; PRAGMA user_version = 3;")
    conn.close()
    store = Store(path)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == 4
    assert store.decisions() == []


# ---- scheduling, records, stopping (trainer replaced) -------------------------------------
def test_looks_train_only_undecided_spaces_and_record_every_look(tmp_path, spaces):
    """A is far better than B (fully separated errors), B and C are alike: A–B is decided
    early and A stops training; B–C goes on to max n. Every recorded look equals what
    `sequential.decide` gives on the first n models in index order."""
    store = Store(tmp_path / "s.sqlite")
    a, b, c = make_sweeps(store, spaces, names=("tinya", "tinyb", "tinyc"), n=20)
    rng = np.random.default_rng(1)
    errs = {a: errors_of(rng, 20, 0), b: errors_of(rng, 20, 20), c: errors_of(rng, 20, 20)}
    fake = FakeTrainer(errs)
    design = SequentialDesign(max_n=20, looks=5)
    rounds = []
    out = lib.run(store, [a, b, c], design, trainer=fake, say=lambda _: None,
                  on_looks=lambda rows: rounds.append([(p.a, r["look"]) for p, r in rows]))
    ab, bc = out.pairs
    assert (ab.a, ab.b, bc.a, bc.b) == (a, b, b, c)
    assert ab.decision == "A better" and len(ab.looks) < 5
    assert bc.decision in ("max n", "A better", "B better")
    assert out.ended and out.stopped is None and out.excluded == 0
    k = len(ab.looks)
    sizes = design.look_sizes()
    # look j trains indices [sizes[j-2], sizes[j-1]) of every space still in an open pair
    for j, call in enumerate(fake.calls):
        lo, hi = (sizes[j - 1] if j else 0), sizes[j]
        live = [a, b, c] if j < k else [b, c]
        assert call == sorted((s, i) for s in live for i in range(lo, hi)), j
    assert len(fake.calls) == len(bc.looks)
    assert max(i for s, i in sum(fake.calls, []) if s == a) == sizes[k - 1] - 1
    assert rounds[0] == [(a, 1), (b, 1)] and rounds[k] == [(b, k + 1)]
    for p in (ab, bc):   # the store holds exactly the looks sequential.decide gives
        want = seq_decide([errs[p.a][i] for i in range(20)],
                          [errs[p.b][i] for i in range(20)], design)
        got = store.decision_looks(p.id)
        assert [(g["look"], g["n_a"], g["decision"]) for g in got] == \
            [(w.look, w.n_a, w.decision) for w in want]
        assert [g["statistic"] for g in got] == pytest.approx([w.statistic for w in want])
        assert [g["p_prob"] for g in got] == pytest.approx([w.p_prob for w in want])
        assert got[-1]["models"]["a"]["used"] == list(range(sizes[len(got) - 1]))
        assert all(g["created"] for g in got)
    rec = store.decision(b, a, dataset="cifar10", recipe_hash=get_recipe(None, "cifar10").hash)
    assert rec["sweep_a"] == a and rec["design"]["alpha"] == 0.05
    assert rec["design"]["rule"] == lib.MODEL_RULE
    again = FakeTrainer(errs)   # a second call: nothing to train, the same records
    out2 = lib.run(store, [a, b, c], design, trainer=again, say=lambda _: None)
    assert again.calls == [] and [len(p.looks) for p in out2.pairs] == [k, len(bc.looks)]


def test_failed_models_are_retried_once_then_left_out(tmp_path, spaces):
    store = Store(tmp_path / "s.sqlite")
    a, b = make_sweeps(store, spaces, n=8)
    rng = np.random.default_rng(2)
    errs = {a: errors_of(rng, 8, 0), b: errors_of(rng, 8, 0)}
    errs[a][1], errs[b][2], errs[b][5] = "failed", "failed once", "diverged"
    fake = FakeTrainer(errs)
    said = []
    out = lib.run(store, [a, b], SequentialDesign(max_n=8, looks=2), trainer=fake,
                  say=said.append)
    assert fake.attempts[(a, 1)] == 2 and fake.attempts[(b, 2)] == 2   # once more, no more
    assert fake.calls[1] == [(a, 1), (b, 2)]                           # the retry round
    first, last = store.decision_looks(out.pairs[0].id)
    assert first["n_a"] == 3 and first["n_b"] == 4                     # a hole at A's #1
    assert last["models"]["a"] == {"used": [0, 2, 3, 4, 5, 6, 7], "at_chance": [],
                                   "excluded": [1]}
    assert last["models"]["b"]["at_chance"] == [5] and 2 in last["models"]["b"]["used"]
    assert out.excluded == 1 and any("trained once more" in s for s in said)


def test_a_changed_result_breaks_the_recorded_looks(tmp_path, spaces):
    store = Store(tmp_path / "s.sqlite")
    a, b = make_sweeps(store, spaces, n=8)
    rng = np.random.default_rng(3)
    errs = {a: errors_of(rng, 8, 0), b: errors_of(rng, 8, 0)}
    design = SequentialDesign(max_n=8, looks=2)
    lib.run(store, [a, b], design, trainer=FakeTrainer(errs), say=lambda _: None)
    store.conn.execute("UPDATE results SET top1 = 99 WHERE id = (SELECT MIN(id) FROM results)")
    with pytest.raises(DsdError, match="look 1 as recorded .* no longer follows"):
        lib.run(store, [a, b], design, trainer=FakeTrainer(errs), say=lambda _: None)


def _invoke(store_path, spaces, *args):
    return runner.invoke(app, ["decide", "tinya", "tinyb", "--dataset", "cifar10",
                               "--spaces-dir", str(spaces), "--store", str(store_path), *args])


def test_cli_design_is_fixed_by_the_first_call(tmp_path, spaces, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    a, b = make_sweeps(store, spaces, n=8)
    rng = np.random.default_rng(4)
    fake = FakeTrainer({a: errors_of(rng, 8, 0), b: errors_of(rng, 8, 0)})
    monkeypatch.setattr(lib, "_train", fake)
    res = _invoke(store.path, spaces, "--max-n", "8", "--looks", "2")
    assert res.exit_code == 0, res.output
    assert "tinya vs tinyb" in res.output and "look" in res.output
    for bad, said in ((["--alpha", "0.1"], "alpha 0.1 (recorded: 0.05)"),
                      (["--method", "anytime"], "method 'anytime' (recorded: 'group')"),
                      (["--futility"], "futility True (recorded: False)")):
        res = _invoke(store.path, spaces, "--max-n", "8", "--looks", "2", *bad)
        assert res.exit_code == 1 and said in res.output, res.output
        assert "keeps the design of its first call" in res.output
    res = _invoke(store.path, spaces, "--max-n", "8", "--looks", "4")
    assert res.exit_code == 1 and "looks 4 (recorded: 2)" in res.output
    assert len(store.decisions()) == 1 and len(fake.calls) == 2


def test_cli_show_and_json(tmp_path, spaces, monkeypatch):
    store = Store(tmp_path / "s.sqlite")
    a, b = make_sweeps(store, spaces, n=10)
    rng = np.random.default_rng(5)
    errs = {a: errors_of(rng, 10, 0), b: errors_of(rng, 10, 0)}
    errs[a][0], errs[b][3] = "collapsed", "failed"
    monkeypatch.setattr(lib, "_train", FakeTrainer(errs))
    res = _invoke(store.path, spaces, "--max-n", "10", "--looks", "2")
    assert res.exit_code == 3, res.output            # a model failed twice, left out
    assert "1 model(s) failed twice and were left out" in res.output
    res = runner.invoke(app, ["decide", "--show", "--store", str(store.path)])
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(map(len, lines)) <= 80, res.output
    assert lines[0].startswith(f"{a} vs {b}: ")
    assert "group, alpha 0.05, max n 10, 2 looks, futility off" in lines[1]
    assert any("1 at chance, 1 excl." in line for line in lines)
    res = runner.invoke(app, ["decide", "tinyb", "--show", "--json", "--store",
                              str(store.path)])
    rec, = json.loads(res.output)
    assert rec["sweep_a"] == a and rec["state"] in ("max n", "A better", "B better")
    assert [k["look"] for k in rec["looks"]] == [1, 2]
    assert rec["looks"][1]["models"]["b"]["excluded"] == [3]
    assert set(rec["looks"][0]) >= {"n_a", "n_b", "statistic", "threshold", "alpha_spent",
                                    "p_prob", "decision", "created"}
    res = runner.invoke(app, ["decide", "tinyc", "--show", "--store", str(store.path)])
    assert res.exit_code == 0 and "no comparisons recorded" in res.output


def test_anytime_decides_and_records_its_statistic(tmp_path, spaces):
    store = Store(tmp_path / "s.sqlite")
    a, b = make_sweeps(store, spaces, n=20)
    errs = {a: {i: 10.0 + i / 100 for i in range(20)}, b: {i: 50.0 + i / 100 for i in range(20)}}
    design = SequentialDesign(method="anytime", max_n=20, looks=20)
    fake = FakeTrainer(errs)
    out = lib.run(store, [a, b], design, trainer=fake, say=lambda _: None)
    looks = out.pairs[0].looks
    assert looks[-1]["decision"] == "A better" and len(looks) < 20
    assert all(k["threshold"] == pytest.approx(math.log(20)) for k in looks)
    assert len(fake.calls) == len(looks) and all(len(c) == 2 for c in fake.calls)  # 1 per side


@pytest.mark.parametrize("stopped, signum, code, said", [
    ("time", None, 4, "time limit reached"), ("interrupted", 2, 130, "interrupted"),
    ("interrupted", 15, 143, "interrupted")])
def test_cli_exit_codes_when_training_stops(tmp_path, spaces, monkeypatch, stopped, signum,
                                            code, said):
    store = Store(tmp_path / "s.sqlite")
    make_sweeps(store, spaces, n=4)
    calls = []

    def stopping(store, options, console):
        calls.append(options)
        return SimpleNamespace(counts={}, stopped=stopped, signum=signum)

    monkeypatch.setattr(lib, "_train", stopping)
    res = _invoke(store.path, spaces, "--max-n", "4", "--looks", "2", "--max-time", "1h",
                  "--epochs", "3", "--gpus", "0", "--per-gpu", "2", "--executor", "local")
    assert res.exit_code == code and said in res.output, res.output
    o, = calls
    assert o.sweeps == ("tinya-cifar10-s0", "tinyb-cifar10-s0") and o.indices == (0, 1)
    assert 3500 < o.max_time <= 3600 and o.overrides["epochs"] == 3
    assert o.gpus == [0] and o.per_gpu == 2 and o.executor == "local" and not o.retry_failed
    assert store.decision_looks(store.decisions()[0]["id"]) == []


@pytest.mark.parametrize("args, said", [
    (["tinya"], "compares two or more spaces, got 1"),
    (["tinya", "nope"], "nope"),
    (["tinya", "tinya"], "'tinya' given twice"),
    (["tinya", "tinyb", "--max-n", "0"], "max_n 0 must be at least 1"),
    (["tinya", "tinyb", "--looks", "30", "--max-n", "20"], "looks 30 must be between 1 and"),
    (["tinya", "tinyb", "--alpha", "1.5"], "alpha 1.5 must be a number in (0, 1)"),
    (["tinya", "tinyb", "--method", "anytime", "--futility"], "futility applies to method"),
    (["tinya", "tinyb", "--flops", "5MF", "--flops-range", "1MF", "2MF"], "not both"),
    (["tinya", "tinyb", "--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["tinya", "tinyb", "--dataset", "imagenet"], "no default window for 'imagenet'"),
    (["tinya", "tinyb", "--json"], "--json goes with --show"),
    (["tinya", "tinyb", "--max-time", "soon"], "duration"),
    (["tinya", "tinyb", "--gpus", "x"], "--gpus takes GPU indices"),
    (["tinya", "tinyb", "--tag", "a b"], "sweep name 'tinya-cifar10-s0-a b' is not allowed"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, spaces, args, said):
    dataset = [] if "--dataset" in args else ["--dataset", "cifar10"]
    res = runner.invoke(app, ["decide", *args, *dataset, "--spaces-dir", str(spaces),
                              "--store", str(tmp_path / "s.sqlite")])
    assert res.exit_code == 1, res.output
    assert said in res.output and len(res.output.strip().splitlines()) == 1, res.output
    assert not (tmp_path / "s.sqlite").exists()


def test_show_never_creates_a_store(tmp_path):
    path = tmp_path / "typo" / "x.sqlite"
    res = runner.invoke(app, ["decide", "--show", "--store", str(path)])
    assert res.exit_code == 1 and "does not exist" in res.output
    assert not (tmp_path / "typo").exists()


def test_a_second_decide_on_one_store_is_refused(tmp_path, spaces):
    store = Store(tmp_path / "s.sqlite")
    names = make_sweeps(store, spaces, n=4)
    with lib.decide_lock(store):
        with pytest.raises(DsdError, match="another `dsd decide` is running on this store"):
            lib.run(store, names, SequentialDesign(max_n=4, looks=2),
                    trainer=FakeTrainer({}), say=lambda _: None)


# ---- real training on CPU -------------------------------------------------------------------
def test_decide_trains_tiny_spaces_on_cifar(tmp_path, spaces, data_root):
    """End to end: sampling, training of looks 1 and 2 (4 models per space), the records."""
    path = tmp_path / "s.sqlite"
    res = _invoke(path, spaces, "--max-n", "4", "--looks", "2", "--data-dir", str(data_root),
                  *QUICK)
    assert res.exit_code == 0, res.output
    store = Store(path)
    df = store.results(status=None)
    assert sorted(zip(df["sweep"], df["index"])) == sorted(
        (s, i) for s in ("tinya-cifar10-s0", "tinyb-cifar10-s0") for i in range(4))
    assert set(df["status"]) <= {"done", "collapsed"}
    assert (store.epochs().groupby("result_id").size() == 1).all()    # each trained once
    rec, = store.decisions()
    looks = store.decision_looks(rec["id"])
    assert [(k["look"], k["n_a"], k["n_b"]) for k in looks] == [(1, 2, 2), (2, 4, 4)][:len(looks)]
    assert looks[-1]["decision"] != "continue"
    assert "tinya vs tinyb:" in res.output


def _dsd(args, env) -> subprocess.Popen:
    return dsd_process("decide", args, env)


def _wait_for(pred, proc, timeout=240):
    wait_for(pred, proc, "dsd decide", timeout)


@pytest.mark.slow
def test_sigkill_then_resume_decides_the_same(tmp_path, spaces, data_root):
    """Kill `dsd decide` once look 1 is recorded and a look-2 model has a checkpointed epoch;
    the rerun finishes with the looks an uninterrupted run records, and no model finished
    before the kill is trained again (each result has each epoch once)."""
    env = {**os.environ, "DSD_DATA": str(data_root), "COLUMNS": "120"}
    args = ["tinya", "tinyb", "--dataset", "cifar10", "--spaces-dir", str(spaces),
            "--max-n", "6", "--looks", "2", "--epochs", "2", "--batch-size", "50",
            "--subset", "100", "--test-subset", "100"]
    path = tmp_path / "s.sqlite"
    proc = _dsd([*args, "--store", str(path)], env)

    def look_1_and_a_checkpoint():
        if not path.exists():
            return False
        try:
            store = Store(path, create=False)
            ds = store.decisions()
            if not ds or not store.decision_looks(ds[0]["id"]):
                return False
            running = store.results(status="running")
            return not running.empty and any(i >= 3 for i in running["index"]) and bool(
                list((tmp_path / "s.sqlite.ckpt").glob("*.pt")))
        except (DsdError, sqlite3.Error):
            return False

    _wait_for(look_1_and_a_checkpoint, proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    store = Store(path)
    before = store.results(status=None)
    finished = set(zip(before.loc[before["status"].isin(["done", "collapsed"]), "sweep"],
                       before.loc[before["status"].isin(["done", "collapsed"]), "index"]))
    assert "running" in set(before["status"])
    kept = {int(p.stem) for p in (tmp_path / "s.sqlite.ckpt").glob("*.pt")}
    assert kept
    proc = _dsd([*args, "--store", str(path)], env)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    for sweep, i in finished:                                     # not trained again
        assert f"{sweep} #{i} " not in out
    assert kept <= set(store.results(status=None)["result_id"])   # resumed, not restarted
    curves = store.epochs()
    assert curves.groupby("result_id")["epoch"].apply(sorted).tolist() == \
        [[1, 2]] * len(store.results(status=None))
    ref = tmp_path / "ref.sqlite"
    proc = _dsd([*args, "--store", str(ref)], env)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out
    rid, = [r["id"] for r in store.decisions()]
    got = store.decision_looks(rid)
    want = Store(ref).decision_looks(Store(ref).decisions()[0]["id"])
    assert [(k["look"], k["n_a"], k["n_b"], k["decision"], k["models"]) for k in got] == \
        [(k["look"], k["n_a"], k["n_b"], k["decision"], k["models"]) for k in want]
    assert [k["statistic"] for k in got] == pytest.approx([k["statistic"] for k in want])
