"""`dsd import`: pycls sweeps and NDS data-release files (fixtures in tests/fixtures/import,
README there says how they were made), then the analysis commands on the imported sweeps."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsd.cli import app
from dsd.cli import analysis, core, imports, results, train  # noqa: F401  (registers commands)
from dsd.errors import DsdError
from dsd.importers import read_nds, read_pycls_sweep
from dsd.spec import ModelSpec
from dsd.store import Store

FIX = Path(__file__).parent / "fixtures" / "import"
SWEEP = FIX / "cifar_regnet" / "sweep.json"
RESNEXT = FIX / "ResNeXt-A.json"
DARTS = FIX / "DARTS_in.json"


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_pycls_sweep_becomes_regnet_specs():
    imp = read_pycls_sweep(SWEEP)
    assert (imp.name, imp.dataset, imp.source, imp.recipe) == (
        "pycls-cifar_regnet", "cifar10", "pycls", "pycls")
    assert len(imp.models) == 6 and imp.opaque == 0
    jobs = json.loads(SWEEP.read_text())
    for m, job in zip(imp.models, jobs):
        spec = ModelSpec.from_json(m["spec"])
        assert spec.block == "y" and spec.stem_w == 16 and len(spec.stages) == 2
        assert (m["flops"], m["params"], m["acts"]) == tuple(job["complexity"][k] for k in
                                                             ("flops", "params", "acts"))
    done = [m["result"] for m in imp.models[:5]]
    assert all(r["status"] == "done" for r in done)
    assert done[0]["top1"] == jobs[0]["test_epoch"]["top1_err"][-1]  # final epoch
    assert [e[0] for e in done[0]["epochs"]] == [1, 2, 3, 4, 5]
    assert done[0]["epochs"][0][4] == jobs[0]["train_epoch"]["lr"][0]
    last = imp.models[5]["result"]
    assert last["status"] == "failed" and "3/5 epochs" in last["error"]
    assert imp.recipe_json["shared"]["OPTIM.BASE_LR"] == 1.0
    assert imp.recipe_json["shared"]["TRAIN.BATCH_SIZE"] == 1024
    m = read_pycls_sweep(SWEEP, error="min").models[0]["result"]
    assert m["top1"] == min(jobs[0]["test_epoch"]["top1_err"])


def test_nds_models_specs_and_opaque():
    imp = read_nds(RESNEXT)
    assert (imp.name, imp.dataset, imp.recipe) == ("nds-ResNeXt-A", "cifar10", "nds-release")
    kinds = [(m["opaque"], m["result"]["status"]) for m in imp.models]
    # 5 ResNeXt specs, 2 ResNets (basic blocks) opaque, a rerun (spec), flops off by 1000
    # (opaque), a run of 4/10 epochs (failed)
    assert [k[0] for k in kinds] == [False] * 5 + [True, True, False, True, False]
    assert [k[1] for k in kinds] == ["done"] * 9 + ["failed"]
    assert imp.models[7]["hash"] == imp.models[0]["hash"] + "-r1"
    bad = imp.models[8]
    assert "differs from the file's" in bad["result"]["provenance"]["opaque"]
    spec = ModelSpec.from_json(imp.models[0]["spec"])
    assert spec.ds == (4, 8, 3) and spec.bs == (4, 4, 4) and spec.gs == (16, 16, 16)
    assert [s.stride for s in spec.stages] == [1, 2, 2]
    assert imp.recipe_json["shared"]["optim.max_ep"] == 10
    darts = read_nds(DARTS)
    assert darts.dataset == "imagenet" and darts.opaque == 8 == len(darts.models)
    assert {m["sampled"]["part"] for m in darts.models} == {"top", "mid"}


def test_import_then_edf_compare_report(tmp_path):
    db = tmp_path / "s.sqlite"
    for f, fmt in ((SWEEP, "pycls"), (RESNEXT, "nds"), (DARTS, "nds")):
        r = run("import", f, "--format", fmt, "--store", db)
        assert r.exit_code == 0, r.output
    assert "10 models" in run("import", RESNEXT, "--format", "nds", "--store", db,
                              "--name", "other").output
    r = run("import", RESNEXT, "--format", "nds", "--store", db, "--name", "other")
    assert "already imported from this file" in r.output
    r = run("show", "--store", db)
    assert "nds-ResNeXt-A" in r.output and "pycls" in r.output
    r = run("edf", "--compare", "nds-ResNeXt-A", "other", "--store", db, "-o",
            tmp_path / "e.png")
    assert r.exit_code == 0, r.output
    assert "9 of 10 models used" in r.output and (tmp_path / "e.png").stat().st_size > 1000
    r = run("compare", "nds-ResNeXt-A", "other", "--store", db, "--normalize", "none,flops")
    assert r.exit_code == 0 and "no detectable difference" in r.output, r.output  # same file
    r = run("report", "nds-ResNeXt-A", "pycls-cifar_regnet", "--store", db, "-o",
            tmp_path / "r.html")
    assert r.exit_code == 1 and "several recipes" in r.output  # never mixed silently
    for sweep in ("nds-ResNeXt-A", "pycls-cifar_regnet", "nds-DARTS_in"):
        r = run("report", sweep, "--store", db, "-o", tmp_path / f"{sweep}.html",
                "--resamples", "100")
        assert r.exit_code == 0, r.output
    r = run("fit", "nds-ResNeXt-A", "--store", db)  # the 7 ModelSpecs; opaque ones skipped
    assert r.exit_code == 0 and "stored 7 fits" in r.output, r.output
    r = run("export-population", "nds-ResNeXt-A", "--store", db, "-o", tmp_path / "p.parquet")
    assert r.exit_code == 0, r.output
    import pandas as pd

    pop = pd.read_parquet(tmp_path / "p.parquet")
    assert set(pop["prov_source"].dropna()) == {"nds"} and pop["opaque"].sum() == 3


def test_training_refuses_opaque_and_skips_imports(tmp_path):
    from dsd.train import train as train_fn

    store = Store(tmp_path / "s.sqlite")
    imp = read_nds(RESNEXT)
    store.add_imported_sweep(imp.name, space=imp.space, dataset=imp.dataset,
                             source=imp.source, source_info=imp.source_info, recipe=imp.recipe,
                             recipe_json=imp.recipe_json, models=imp.models)
    with pytest.raises(DsdError, match="imported from nds and 3 of its models are not X/Y"):
        train_fn(store, sweeps=["nds-ResNeXt-A"], dataset="synthetic")
    with pytest.raises(DsdError, match="no sweeps to train"):
        train_fn(store, dataset="synthetic")  # imported populations are not queued


@pytest.mark.parametrize("fmt, file, edit, expected", [
    ("nds", "ResNeXt-A.json", lambda d: d[3].pop("net"), "[3].net: missing"),
    ("nds", "ResNeXt-A.json", lambda d: d[1].__setitem__("flops", "many"),
     "[1].flops: got 'many'; must be a number"),
    ("nds", "ResNeXt-A.json", lambda d: d[0]["net"].__setitem__("block_type", "mb_conv"),
     "[0].net.block_type: got 'mb_conv'"),
    ("nds", "DARTS_in.json", lambda d: d["mid"][2].pop("test_ep_top1"),
     "mid[2].test_ep_top1: missing"),
    ("pycls", "cifar_regnet/sweep.json", lambda d: d[4].pop("complexity"),
     "[4].complexity: missing"),
    ("pycls", "cifar_regnet/sweep.json", lambda d: d[0]["cfg"]["TRAIN"].__setitem__(
        "DATASET", "imagenet"), "[*].cfg.TRAIN.DATASET"),
])
def test_bad_files_give_one_line_errors(tmp_path, fmt, file, edit, expected):
    data = json.loads((FIX / file).read_text())
    edit(data)
    bad = tmp_path / Path(file).name
    bad.write_text(json.dumps(data))
    r = run("import", bad, "--format", fmt, "--store", tmp_path / "s.sqlite")
    assert r.exit_code == 1
    line = r.output.strip()
    assert "\n" not in line and str(bad) in line and expected in line, line
    assert Store(tmp_path / "s.sqlite").sweep_names() == []  # nothing written


def test_not_json(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{nope")
    r = run("import", bad, "--format", "nds", "--store", tmp_path / "s.sqlite")
    assert r.exit_code == 1 and "x.json: not JSON" in r.output
