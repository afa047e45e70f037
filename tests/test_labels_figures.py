"""Issue 18, honest labels and figures that fit: errors are called errors, --json prints JSON
values (not dict reprs or JSON text in strings), figures keep every artist inside the saved
image and their tick labels apart, tables show what they say."""
from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console
from typer.testing import CliRunner

from dsd.cli import app
from dsd.cli import core  # noqa: F401  (registers the commands)
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
