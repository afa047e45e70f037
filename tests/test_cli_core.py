"""CLI: spaces, info, sample, show, export through typer's CliRunner on a real SQLite file."""
import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from dsd.cli import app
from dsd.cli import core  # noqa: F401  (registers the commands)
from dsd.store import Store

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def db(tmp_path):
    return tmp_path / "dsd.sqlite"


def test_spaces_json_lists_every_space():
    r = invoke("spaces", "--json")
    assert r.exit_code == 0, r.output
    names = {s["name"] for s in json.loads(r.output)}
    assert {"anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx", "regnety",
            "regnetx_constrained"} <= names


def test_info_space_and_zoo_model():
    r = invoke("info", "anynetxa", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["size"] == (16 * 128 * 3 * 6) ** 4
    r = invoke("info", "regnetx-400mf", "--json")
    out = json.loads(r.output)
    assert (out["flops"], out["params"], out["acts"]) == (397678568, 5157512, 3143272)
    assert out["widths"] == [32, 64, 160, 384] and out["depths"] == [1, 2, 7, 12]
    r = invoke("info", "regnetx-400mf")
    assert "397,678,568" in r.output


def test_sample_show_export_round_trip(db, tmp_path):
    r = invoke("sample", "--space", "anynetxc", "--n", 12, "--flops", "400MF", "--seed", 3,
               "--store", db)
    assert r.exit_code == 0, r.output
    assert "12 models of anynetxc" in r.output
    models = Store(db).models("anynetxc-imagenet-s3")
    assert len(models) == 12 and models["flops"].between(360e6, 400e6).all()
    # same command again: nothing duplicated, clear message
    r = invoke("sample", "--space", "anynetxc", "--n", 12, "--flops", "400MF", "--seed", 3,
               "--store", db)
    assert r.exit_code == 0 and "already exists with these settings" in r.output
    assert len(Store(db).models("anynetxc-imagenet-s3")) == 12
    # same name, other settings: refused, exit 1
    r = invoke("sample", "--space", "anynetxc", "--n", 5, "--seed", 3, "--store", db,
               "--name", "anynetxc-imagenet-s3")
    assert r.exit_code == 1 and "other settings" in r.output
    r = invoke("show", "--store", db, "--json")
    (row,) = json.loads(r.output)
    assert row["name"] == "anynetxc-imagenet-s3" and row["pending"] == 12
    r = invoke("show", "anynetxc-imagenet-s3", "--top", 4, "--store", db)
    assert r.exit_code == 0 and "4 models" in r.output
    for suffix in (".parquet", ".csv"):
        out = tmp_path / f"models{suffix}"
        r = invoke("export", "anynetxc-imagenet-s3", "-o", out, "--store", db)
        assert r.exit_code == 0, r.output
        df = pd.read_parquet(out) if suffix == ".parquet" else pd.read_csv(out)
        assert list(df["index"]) == list(range(12)) and (df["status"] == "pending").all()


def test_sample_flops_range_and_cifar(db):
    r = invoke("sample", "--space", "regnetx", "--n", 5, "--dataset", "cifar10",
               "--flops-range", "100MF", "130MF", "--store", db, "--name", "rx")
    assert r.exit_code == 0, r.output
    m = Store(db).models("rx")
    assert m["flops"].between(100e6, 130e6).all() and m["w0"].notna().all()


@pytest.mark.parametrize("args, message", [
    (["sample", "--space", "nope"], "nope"),
    (["sample", "--space", "anynetxa", "--flops", "lots"], "not a count"),
    (["sample", "--space", "anynetxa", "--dataset", "mnist"], "unknown dataset 'mnist'"),
    (["sample", "--space", "anynetxa", "--flops", "1KF", "--max-draws", 2000], "after"),
    (["show", "missing"], "no sweep 'missing'"),
    (["info", "regnetz-1gf"], "regnetz-1gf"),
])
def test_bad_input_is_one_line_error(db, args, message):
    Store(db).close()   # an empty store: `show` reads only an existing one
    r = invoke(*args, "--store", db) if args[0] in ("sample", "show") else invoke(*args)
    assert r.exit_code == 1, r.output
    assert message in r.output
    assert "Traceback" not in r.output


def test_show_and_export_never_mix_recipes(db, tmp_path):
    invoke("sample", "--space", "anynetxc", "--n", 3, "--dataset", "cifar10", "--store", db,
           "--name", "s")
    st = Store(db)
    mid = int(st.models("s").loc[0, "model_id"])
    for name, err in (("nds", 30.0), ("nds-plain", 40.0)):
        rid = st.start_result(mid, dataset="cifar10", recipe=name, recipe_json={"name": name})
        st.finish_result(rid, "done", top1=err)
    r = invoke("show", "s", "--store", db)
    assert r.exit_code == 1 and "--recipe nds" in r.output and "--recipe nds-plain" in r.output
    r = invoke("show", "s", "--recipe", "nds-plain", "--json", "--store", db)
    rows = json.loads(r.output)
    assert rows[0]["top1"] == 40.0 and sorted(x["status"] for x in rows) == ["done", "pending",
                                                                            "pending"]
    out = tmp_path / "m.parquet"
    r = invoke("export", "s", "--recipe", "nds", "-o", out, "--store", db)
    df = pd.read_parquet(out)
    assert r.exit_code == 0 and df["top1"].max() == 30.0 and len(df) == 3
