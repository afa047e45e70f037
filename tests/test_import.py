"""`dsd import`: pycls sweeps and NDS data-release files (fixtures in tests/fixtures/import,
README there says how they were made; nds_real/ holds the real NDS records printed by NNI), then
the analysis commands on the imported sweeps."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dsd.cli import app
from dsd.cli import analysis, core, imports, results, train  # noqa: F401  (registers commands)
from dsd.errors import DsdError
from dsd.complexity import complexity
from dsd.importers import nds_flops, read, read_nds, read_pycls_sweep
from dsd.spec import ModelSpec, Stage
from dsd.store import Store

FIX = Path(__file__).parent / "fixtures" / "import"
SWEEP = FIX / "cifar_regnet" / "sweep.json"
RESNEXT = FIX / "ResNeXt-A.json"
DARTS = FIX / "DARTS_in.json"
REAL = FIX / "nds_real"


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
    # pycls's sweep analysis ranks by the EMA model's best error (pycls/sweep/analysis.py)
    e = read_pycls_sweep(SWEEP, error="ema").models[0]["result"]
    assert e["top1"] == min(jobs[0]["test_ema_epoch"]["top1_err"]) != m["top1"]
    with pytest.raises(DsdError, match="only pycls sweeps record an EMA model"):
        read(RESNEXT, "nds", error="ema")


def test_nds_models_specs_and_opaque():
    imp = read_nds(RESNEXT)
    assert (imp.name, imp.dataset, imp.recipe) == ("nds-ResNeXt-A", "cifar10", "nds-release")
    kinds = [(m["opaque"], m["result"]["status"]) for m in imp.models]
    # 5 ResNeXt specs, 2 ResNets (basic blocks: specs too), a rerun (spec), flops off by 1000
    # (opaque), a run of 4/10 epochs (failed)
    assert [k[0] for k in kinds] == [False] * 8 + [True, False]
    assert [k[1] for k in kinds] == ["done"] * 9 + ["failed"]
    assert imp.models[7]["hash"] == imp.models[0]["hash"] + "-r1"
    bad = imp.models[8]
    assert "differs from the file's" in bad["result"]["provenance"]["opaque"]
    assert bad["flops"] == json.loads(RESNEXT.read_text())[8]["flops"]  # the file's, opaque
    spec = ModelSpec.from_json(imp.models[0]["spec"])
    assert spec.ds == (4, 8, 3) and spec.bs == (4, 4, 4) and spec.gs == (16, 16, 16)
    assert [s.stride for s in spec.stages] == [1, 2, 2] and spec.stem_w == 16
    assert ModelSpec.from_json(imp.models[5]["spec"]).block == "basic"
    assert imp.recipe_json["shared"]["optim.max_ep"] == 10
    darts = read_nds(DARTS)
    assert darts.dataset == "imagenet" and darts.opaque == 8 == len(darts.models)
    assert {m["sampled"]["part"] for m in darts.models} == {"top", "mid"}


# The real records (NNI's printout, tests/fixtures/import/nds_real/README.md): file, dsd block,
# the file's flops and params, and dsd's (today's pycls) flops of the same network.
REAL_RECORDS = [("ResNeXt-A.json", "x", 69_890_986, 83_002, 61_044_906),
                ("ResNet.json", "basic", 184_519_578, 594_138, 180_277_658),
                ("Vanilla.json", "vanilla", 208_363_930, 689_770, 204_042_650)]


@pytest.mark.parametrize("file, block, flops, params, dsd_flops", REAL_RECORDS)
def test_real_nds_records_become_specs(file, block, flops, params, dsd_flops):
    imp = read_nds(REAL / file)
    assert imp.opaque == 0 and len(imp.models) == 1
    m = imp.models[0]
    spec = ModelSpec.from_json(m["spec"])
    assert spec.block == block and spec.stem == "simple" and spec.stem_w == 16
    assert (spec.stem_stride, spec.resolution, spec.num_classes) == (1, 32, 10)
    assert [s.stride for s in spec.stages] == [1, 2, 2]
    assert (m["params"], m["flops"]) == (params, dsd_flops)  # dsd's own count of the spec
    assert (m["sampled"]["file_flops"], m["sampled"]["file_params"]) == (flops, params)
    assert complexity(spec) == {k: m[k] for k in ("flops", "params", "acts")}
    assert nds_flops(spec) == flops
    r = m["result"]
    assert r["status"] == "done" and r["provenance"]["epochs_unrecorded"] > 0
    net = json.loads((REAL / file).read_text())[0]
    assert r["top1"] == net["test_ep_top1"][-1]  # final epoch by default
    assert read_nds(REAL / file, error="min").models[0]["result"]["top1"] == net["min_test_top1"]


def test_real_nas_cell_stays_opaque():
    m = read_nds(REAL / "Amoeba.json").models[0]
    assert m["opaque"] and json.loads(m["spec"])["opaque"] == "nas_cell"
    assert (m["flops"], m["params"], m["acts"]) == (664_400_586, 4_190_314, 0)
    assert m["result"]["status"] == "done" and m["result"]["top1"] == 6.73


def test_real_resnexta_spec_is_the_trained_net():
    """ResNeXt-A, net ws [16, 64, 128, 16], ds [1, 16, 1, 4], bot_muls .25, num_gs [1, 2, 1, 2]."""
    spec = ModelSpec.from_json(read_nds(REAL / "ResNeXt-A.json").models[0]["spec"])
    assert (spec.ds, spec.ws, spec.bs) == ((16, 1, 4), (64, 128, 16), (4, 4, 4))
    assert spec.gs == (8, 32, 2)  # w_b // num_gs: bottleneck widths 16, 32, 4


def _resnexta(**kw) -> ModelSpec:
    fields = dict(block="x", stem_w=16, stem_stride=1, num_classes=10, resolution=32,
                  stages=(Stage(16, 64, 4, 8, 1), Stage(1, 128, 4, 32, 2), Stage(4, 16, 4, 2, 2)))
    return ModelSpec(**{**fields, **kw})


def test_regression_stem_entry_is_not_a_stage():
    """Cause 1: net lists begin with the stem (ws[0] = 16, ds[0] = 1); read as a stage, the
    network has other params than the file's 83,002."""
    assert complexity(_resnexta())["params"] == 83_002
    as_stage = _resnexta(stem_w=32, stages=(Stage(1, 16, 1, 16, 1),) + _resnexta().stages)
    assert complexity(as_stage)["params"] != 83_002


def test_regression_num_gs_is_a_group_count():
    """Cause 2: num_gs [1, 2, 1, 2] counts groups; read as group widths (g = 2, 1, 2) the params
    differ from the file's."""
    widths = _resnexta(stages=(Stage(16, 64, 4, 2, 1), Stage(1, 128, 4, 1, 2),
                               Stage(4, 16, 4, 2, 2)))
    assert complexity(widths)["params"] != 83_002 == complexity(_resnexta())["params"]


def test_regression_files_use_ndss_older_flops_count():
    """Cause 3: the files' flops are NDS's count: today's flops + 5 per BN output element."""
    spec = _resnexta()
    assert complexity(spec)["flops"] == 61_044_906 != 69_890_986 == nds_flops(spec)
    assert nds_flops(spec) - complexity(spec)["flops"] == 5 * 1_769_216
    with pytest.raises(DsdError, match="nds_flops"):
        nds_flops(ModelSpec(block="y", se_ratio=0.25, stages=_resnexta().stages, stem_w=16))


@pytest.mark.parametrize("spec", [
    _resnexta(),
    ModelSpec(block="basic", stem="res", stem_w=24, resolution=64, num_classes=10,
              stages=(Stage(2, 24, 1, 1, 1), Stage(2, 48, 1, 1, 2))),
    ModelSpec(block="vanilla", stem_w=8, stem_stride=2, resolution=33, num_classes=10,
              stages=(Stage(2, 16, 1, 1, 2), Stage(1, 8, 1, 1, 2))),
], ids=["x-cifar", "basic-res-stem", "vanilla-odd-size"])
def test_nds_flops_counts_every_batchnorm_output(spec):
    """nds_flops's BN term equals the BN outputs of the built network (forward hooks)."""
    torch = pytest.importorskip("torch")
    from dsd.model import build

    net, seen = build(spec).eval(), []
    for mod in net.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.register_forward_hook(lambda m, i, o: seen.append(o[0].numel()))
    with torch.no_grad():
        net(torch.zeros(1, 3, spec.resolution, spec.resolution))
    assert nds_flops(spec) == complexity(spec)["flops"] + 5 * sum(seen)


def test_nds_unexpressible_nets_are_opaque(tmp_path):
    recs = json.loads((REAL / "ResNeXt-A.json").read_text())
    recs[0]["net"]["num_gs"] = [1, 3, 1, 2]  # 3 groups do not divide w_b = 16
    recs.append(json.loads((REAL / "ResNeXt-A.json").read_text())[0])
    recs[1]["net"]["block_type"] = "res_bottleneck_linear_block"  # NNI's family, no dsd block
    f = tmp_path / "ResNeXt-A.json"
    f.write_text(json.dumps(recs))
    a, b = read_nds(f).models
    assert a["opaque"] and "3 groups" in a["result"]["provenance"]["opaque"]
    assert b["opaque"] and "no dsd block" in b["result"]["provenance"]["opaque"]
    assert a["flops"] == 69_890_986  # opaque models keep the file's numbers


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
    assert r.exit_code == 0 and "not decided" in r.output, r.output  # same file
    r = run("report", "nds-ResNeXt-A", "pycls-cifar_regnet", "--store", db, "-o",
            tmp_path / "r.html")
    assert r.exit_code == 1 and "several recipes" in r.output  # never mixed silently
    for sweep in ("nds-ResNeXt-A", "pycls-cifar_regnet", "nds-DARTS_in"):
        r = run("report", sweep, "--store", db, "-o", tmp_path / f"{sweep}.html",
                "--resamples", "100")
        assert r.exit_code == 0, r.output
    r = run("fit", "nds-ResNeXt-A", "--store", db)  # the 9 ModelSpecs; the opaque one skipped
    assert r.exit_code == 0 and "stored 9 fits" in r.output, r.output
    r = run("export-population", "nds-ResNeXt-A", "--store", db, "-o", tmp_path / "p.parquet")
    assert r.exit_code == 0, r.output
    import pandas as pd

    pop = pd.read_parquet(tmp_path / "p.parquet")
    assert set(pop["prov_source"].dropna()) == {"nds"} and pop["opaque"].sum() == 1


def test_training_refuses_opaque_and_skips_imports(tmp_path):
    from dsd.train import train as train_fn

    store = Store(tmp_path / "s.sqlite")
    imp = read_nds(RESNEXT)
    store.add_imported_sweep(imp.name, space=imp.space, dataset=imp.dataset,
                             source=imp.source, source_info=imp.source_info, recipe=imp.recipe,
                             recipe_json=imp.recipe_json, models=imp.models)
    with pytest.raises(DsdError, match="imported from nds and 1 of its models are opaque"):
        train_fn(store, sweeps=["nds-ResNeXt-A"], dataset="synthetic")
    with pytest.raises(DsdError, match="no sweeps to train"):
        train_fn(store, dataset="synthetic")  # imported populations are not queued


def test_a_real_imported_resnet_trains(tmp_path, data_root):
    """The real NDS ResNet record (basic blocks) becomes a spec dsd trains under its own recipe,
    beside the imported result."""
    from dsd.train import train as train_fn

    store = Store(tmp_path / "s.sqlite")
    imp = read_nds(REAL / "ResNet.json")
    assert imp.opaque == 0
    store.add_imported_sweep(imp.name, space=imp.space, dataset=imp.dataset,
                             source=imp.source, source_info=imp.source_info, recipe=imp.recipe,
                             recipe_json=imp.recipe_json, models=imp.models)
    summary = train_fn(store, sweeps=[imp.name], data_dir=data_root,
                       overrides={"epochs": 1, "subset": 100, "test_subset": 50,
                                  "batch_size": 50})
    assert summary.counts.get("done", 0) + summary.counts.get("collapsed", 0) == 1
    res = store.results([imp.name], status=None)
    assert set(res["recipe"]) == {"nds", "nds-release"}


@pytest.mark.parametrize("fmt, file, edit, expected", [
    ("nds", "ResNeXt-A.json", lambda d: d[3].pop("net"), "[3].net: missing"),
    ("nds", "ResNeXt-A.json", lambda d: d[1].__setitem__("flops", "many"),
     "[1].flops: got 'many'; must be a number"),
    ("nds", "ResNeXt-A.json", lambda d: d[0]["net"].__setitem__("block_type", "mb_conv"),
     "[0].net.block_type: got 'mb_conv'"),
    ("nds", "ResNeXt-A.json", lambda d: d[2]["net"]["ws"].pop(),
     "[2].net.ws: ds, ws, ss (and bot_muls, num_gs when given) must be lists of one length"),
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


def test_pycls_sweep_of_other_blocks_and_stems_becomes_specs(tmp_path):
    """pycls's CIFAR R-56 (res_basic_block) and V-56 (vanilla_block) and ImageNet R-50
    (res_stem_in, BOT_MUL 0.25), with pycls's own recorded complexity, import as specs."""
    counts = json.loads((Path(__file__).parent / "fixtures" / "pycls" /
                         "model_complexity.json").read_text())["complexity"]
    cifar = {"STEM_TYPE": "res_stem_cifar", "STEM_W": 16, "DEPTHS": [9, 9, 9],
             "WIDTHS": [16, 32, 64], "STRIDES": [1, 2, 2]}
    jobs = [({**cifar, "BLOCK_TYPE": "res_basic_block"}, "cifar10",
             "configs/archive/cifar/anynet/R-56_nds_1gpu.yaml"),
            ({**cifar, "BLOCK_TYPE": "vanilla_block"}, "cifar10",
             "configs/archive/cifar/anynet/V-56_nds_1gpu.yaml")]
    for i, (anynet, dataset, cfg_name) in enumerate(jobs):
        sweep = [{"cfg": {"MODEL": {"TYPE": "anynet", "NUM_CLASSES": 10}, "ANYNET": anynet,
                          "TRAIN": {"DATASET": dataset}},
                  "complexity": counts[cfg_name],
                  "test_epoch": {"top1_err": [50.0, 40.0], "epoch_ind": [1, 2],
                                 "epoch_max": [2]}}]
        path = tmp_path / f"s{i}" / "sweep.json"
        path.parent.mkdir()
        path.write_text(json.dumps(sweep))
        m = read_pycls_sweep(path).models[0]
        assert not m["opaque"], m
        spec = ModelSpec.from_json(m["spec"])
        assert spec.block == {"res_basic_block": "basic", "vanilla_block": "vanilla"}[
            anynet["BLOCK_TYPE"]]
        assert (m["flops"], m["params"]) == (counts[cfg_name]["flops"],
                                             counts[cfg_name]["params"])
