"""Results store: schema on first use, round trip, idempotent sweeps, no half sweep."""
import sqlite3
from types import SimpleNamespace

import pytest

from dsd import DsdError, Store, complexity, make_spec
from dsd.store import SCHEMA_VERSION


def items(n, fail_at=None):
    for i in range(n):
        if i == fail_at:
            raise RuntimeError("boom while producing models")
        spec = make_spec([1, 1, i + 1, 1], [8, 16, 32, 64], [1] * 4, [8] * 4, dataset="cifar10")
        cx = complexity(spec)
        yield SimpleNamespace(index=i, spec=spec, params={"d3": i + 1}, flops=cx["flops"],
                              params_count=cx["params"], acts=cx["acts"])


def add(store, name="s1", n=3, **kw):
    return store.add_sweep(name, space="anynetxa", space_def={"name": "anynetxa"},
                           dataset="cifar10", window={"flops": [1, 2]}, seed=0, draws=10,
                           models=items(n, **kw))


@pytest.fixture(params=["memory", "file"])
def store(request, tmp_path):
    s = Store(":memory:" if request.param == "memory" else tmp_path / "sub" / "dsd.sqlite")
    yield s
    s.close()


def test_round_trip(store):
    add(store)
    df = store.models("s1")
    assert list(df["index"]) == [0, 1, 2]
    assert list(df["d3"]) == [1, 2, 3]
    first = next(items(1))
    assert df.loc[0, "flops"] == first.flops and df.loc[0, "hash"] == first.spec.id
    sweeps = store.sweeps()
    assert sweeps.loc[0, "name"] == "s1" and sweeps.loc[0, "pending"] == 3
    assert store.sweep("s1")["window"] == {"flops": [1, 2]}


def test_same_name_twice_is_refused_and_nothing_changes(store):
    add(store)
    with pytest.raises(DsdError, match="already exists"):
        add(store, n=5)
    assert len(store.models("s1")) == 3


def test_failure_leaves_no_half_sweep(store):
    with pytest.raises(RuntimeError):
        add(store, "broken", n=5, fail_at=3)
    assert store.sweep_names() == []
    n = store.conn.execute("SELECT COUNT(*) FROM models").fetchone()[0]
    assert n == 0


def test_schema_version_and_reopen(tmp_path):
    path = tmp_path / "dsd.sqlite"
    add(Store(path))
    again = Store(path)
    assert again.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert again.sweep_names() == ["s1"]


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "dsd.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(DsdError, match="schema version 99"):
        Store(path)


def test_not_a_database(tmp_path):
    path = tmp_path / "junk.sqlite"
    path.write_text("this is not sqlite" * 100)
    with pytest.raises(DsdError, match="not a dsd store"):
        Store(path)


def test_results_keyed_by_recipe(store):
    add(store)
    mid = int(store.models("s1").loc[0, "model_id"])
    r1 = store.start_result(mid, dataset="cifar10", recipe="nds", recipe_json={"lr": 0.1})
    store.add_epoch(r1, 1, train_loss=2.0, top1=60.0)
    store.finish_result(r1, "done", top1=50.0, top5=10.0)
    r2 = store.start_result(mid, dataset="cifar10", recipe="nds", recipe_json={"lr": 0.2})
    assert r2 != r1
    with pytest.raises(DsdError, match="already has a done result"):
        store.start_result(mid, dataset="cifar10", recipe="nds", recipe_json={"lr": 0.1})
    done = store.results(["s1"])
    assert len(done) == 1 and done.loc[0, "top1"] == 50.0
    assert len(store.results(["s1"], status=None)) == 2
    assert list(store.epochs([r1])["top1"]) == [60.0]
    assert store.sweeps().loc[0, "done"] == 1


def test_unknown_sweep_lists_known(store):
    add(store)
    with pytest.raises(DsdError, match="sweeps: s1"):
        store.sweep("nope")


def test_a_store_this_user_cannot_write_is_read_immutable(tmp_path, monkeypatch):
    """A published store on a read-only file system (or folder) still reads: it opens
    immutable, without the WAL's side files; writing is one clear error, nothing changes."""
    import os
    import sqlite3

    path = tmp_path / "pub.sqlite"
    s = Store(path)
    spec = make_spec([1, 1, 1, 1], [8, 16, 32, 64], [1] * 4, [8] * 4, dataset="cifar10")
    c = complexity(spec)
    s.add_sweep("pub", space="test", space_def={}, dataset="cifar10", window={}, seed=0,
                draws=1, models=[SimpleNamespace(index=0, spec=spec, params={},
                                                 flops=c["flops"], params_count=c["params"],
                                                 acts=c["acts"])])
    s.close()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if mode == os.W_OK
                        else real_access(p, mode))
    ro = Store(path, create=False)
    assert ro.read_only and len(ro.models("pub")) == 1
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        ro.conn.execute("DELETE FROM models")
    assert not (tmp_path / "pub.sqlite-shm").exists()


def test_a_directory_is_not_a_store(tmp_path):
    with pytest.raises(DsdError, match="is a directory; --store takes a store's file"):
        Store(tmp_path)
