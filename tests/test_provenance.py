"""Schema version 2 (a real version-1 store migrates with every row kept), provenance of every
trained result, and the warnings when compared sweeps were produced differently."""
from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pandas as pd

from dsd.analysis.provenance import provenance_warnings
from dsd.provenance import environment, git_commit
from dsd.store import SCHEMA_VERSION, Store

V1 = Path(__file__).parent / "fixtures" / "store_v1.sqlite"


def _rows(path: Path, table: str, cols: str = "*") -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return [tuple(r) for r in conn.execute(f"SELECT {cols} FROM {table} ORDER BY rowid")]
    finally:
        conn.close()


def test_v1_store_migrates_keeping_every_row(tmp_path):
    """tests/fixtures/store_v1.sqlite was written by dsd at schema 1 (main at 35bb3ea): a
    sampled AnyNetXA sweep of 3 models, one trained 2 epochs (done), one failed."""
    path = tmp_path / "v1.sqlite"
    shutil.copy(V1, path)
    before = {t: _rows(path, t) for t in ("sweeps", "models", "results", "epochs")}
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == 1
    store = Store(path)
    assert store.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    store.close()
    after = {t: _rows(path, t) for t in before}
    for t in before:
        assert len(after[t]) == len(before[t]) and [r[:len(before[t][0])] for r in after[t]] \
            == before[t], t
    assert _rows(path, "sweeps", "source, source_info") == [("dsd", None)]
    assert _rows(path, "models", "opaque") == [(0,), (0,), (0,)]
    store = Store(path)
    sweeps = store.sweeps()
    assert sweeps.loc[0, "samplers"] == "dsd1" and sweeps.loc[0, "source"] == "dsd"
    res = store.results(status=None)
    assert list(res["status"]) == ["done", "failed"] and res["provenance"].isna().all()
    assert res.loc[0, "top1"] == 60.5


def test_environment_records_versions():
    env = environment()
    import torch

    assert env["torch"] == torch.__version__ and env["dsd"]
    assert env["commit"] == git_commit() and (env["commit"] is None or len(env["commit"]) >= 12)


def test_trained_results_carry_provenance(tmp_path):
    from test_train import QUICK, add_sweep

    from dsd.train import train

    store = Store(tmp_path / "s.sqlite")
    add_sweep(store, n=1)
    train(store, dataset="synthetic", overrides={**QUICK, "epochs": 1, "subset": 100,
                                                 "test_subset": 100})
    res = store.results(status=None, synthetic=True)
    prov = json.loads(res.loc[0, "provenance"])
    assert prov["device"] == "cpu fp32" and prov["exec_path"] == "eager"
    assert prov["precision"] == "fp32" and prov["kernels"] == "none" and prov["mps"] is False
    assert prov["loader"] == "synthetic" and prov["torch"] == environment()["torch"]
    assert prov["queues"] is None   # CUDA's hardware queues: recorded on GPUs only


def test_provenance_records_the_hardware_queues(monkeypatch):
    from dsd.provenance import run

    kw = {"device": "H200 bf16", "exec_path": "graph", "kernels": ("bn",), "precision": "bf16",
          "loader": "gpu", "cuda": True}
    monkeypatch.delenv("CUDA_DEVICE_MAX_CONNECTIONS", raising=False)
    assert run(**kw)["queues"] == 8   # CUDA's default
    monkeypatch.setenv("CUDA_DEVICE_MAX_CONNECTIONS", "24")
    assert run(**kw)["queues"] == 24


def test_warnings_name_what_differs():
    def prov(**kw):
        return json.dumps({"dsd": "0.1.0", "torch": "2.4", "device": "H100 bf16",
                           "kernels": "bn,nchw", "mps": True, **kw})
    data = pd.DataFrame({"sweep": ["a", "a", "b", "b"], "source": ["dsd"] * 4,
                         "provenance": [prov(), prov(), prov(device="H200 bf16"),
                                        prov(device="H200 bf16", kernels="none")]})
    out = provenance_warnings(data)
    assert len(out) == 2
    assert out[0] == "sweeps differ in device: a: H100 bf16; b: H200 bf16"
    assert out[1] == "sweeps differ in kernels: a: bn,nchw; b: bn,nchw, none"
    same = data.assign(provenance=[prov()] * 4)
    assert provenance_warnings(same) == []
    old = same.assign(provenance=[prov(), prov(), None, None])  # stored before provenance
    assert provenance_warnings(old) == [
        "no provenance recorded (trained before dsd recorded it): b"]
    part = same.assign(provenance=[prov(), None, prov(), prov()])  # a sweep partly recorded
    assert provenance_warnings(part)[0].startswith("sweeps differ in dsd: a: 0.1.0, unrecorded")
