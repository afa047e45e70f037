"""`dsd sample --from-pycls`: pycls sweep configs (configs/sweeps/cifar/*.yaml at pycls 5719de6,
copied to tests/fixtures/pycls) converted to dsd spaces and sampled inside their constraints."""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from dsd.cli import app
from dsd.cli import core  # noqa: F401  (registers commands)
from dsd.complexity import complexity
from dsd.errors import DsdError
from dsd.pycls_config import load_pycls_sweep
from dsd.regnet import regnet_spec
from dsd.sample import sample

FIX = Path(__file__).parent / "fixtures" / "pycls"
CIFAR_REGNET = FIX / "cifar_regnet.yaml"


def test_cifar_regnet_converts_to_pycls_regnet_sampler():
    sw = load_pycls_sweep(CIFAR_REGNET)
    s = sw.space
    assert (sw.dataset, sw.n, sw.seed, s.kind, s.block, s.stages) == (
        "cifar10", 32, 0, "regnet", "y", 2)
    assert s.samplers == "pycls" and s.stem_w == 16 and s.se_ratio == 0.25
    assert s.first_stride == 2  # pycls's RegNet strides every stage, CIFAR too
    p = {q.name: (q.sampler, q.args) for q in s.params if q.name not in s.omitted}
    assert p == {"d": ("uniform", (6, 16, 1)), "w0": ("log_uniform", (8, 256, 8)),
                 "wa": ("log_uniform", (8.0, 256.0, 0.1)),
                 "wm": ("log_uniform", (2.0, 3.0, 0.001)),
                 "b": ("constant", (1,)), "g": ("power2_or_log_uniform", (1, 32, 8))}
    assert sw.window.flops == (120_000_000, 130_000_000)
    assert sw.window.params == (0, 2_000_000) and sw.window.acts == (0, 1_000_000)
    g_vals, g_probs = s.param("g").pmf()  # 1, 2, 4 at 1/6 each; 8..32 share the rest
    assert g_vals.tolist() == [1, 2, 4, 8, 16, 24, 32]
    assert g_probs[:3] == pytest.approx([1 / 6] * 3) and g_probs[3:].sum() == pytest.approx(0.5)
    assert "OPTIM" in sw.ignored and "TRAIN" in sw.ignored


def test_samples_lie_inside_the_constraints():
    sw = load_pycls_sweep(CIFAR_REGNET)
    got = sample(sw.space, 32, dataset=sw.dataset, window=sw.window, seed=0)
    assert len(got.models) == 32
    for m in got.models:
        assert 120e6 <= m.flops <= 130e6 and m.params_count <= 2e6 and m.acts <= 1e6
        assert len(m.spec.stages) == 2 and m.spec.stem_w == 16 and m.spec.block == "y"
        assert [s.stride for s in m.spec.stages] == [2, 2] and m.spec.resolution == 32
        assert 6 <= m.params["d"] <= 16 and 1 <= m.params["g"] <= 32
        assert m.params["w0"] % 8 == 0 and complexity(m.spec)["flops"] == m.flops


def test_complexity_equals_pycls():
    """flops/params/acts of the converted models equal pycls's own count (reference table)."""
    ref = json.loads((FIX / "cifar_regnet_complexity.json").read_text())["models"]
    for r in ref:
        spec, stages = regnet_spec(r["d"], r["w0"], r["wa"], r["wm"], r["b"], r["g"], block="y",
                                   se_ratio=0.25, dataset="cifar10", stem_w=16, first_stride=2)
        assert stages == 2
        assert complexity(spec) == {k: r[k] for k in ("flops", "params", "acts")}


def test_unsupported_keys_are_named(tmp_path):
    with pytest.raises(DsdError, match=r"cifar_best\.yaml: SETUP\.SAMPLERS: unsupported keys "
                       r"OPTIM\.MAX_EPOCH, RNG_SEED"):
        load_pycls_sweep(FIX / "cifar_best.yaml")
    text = CIFAR_REGNET.read_text()
    cases = [
        (text.replace("NUM_STAGES: [2, 2]", "NUM_STAGES: [2, 3]"),
         "SETUP.CONSTRAINTS.REGNET.NUM_STAGES: [2, 3]: dsd samples one stage count"),
        (text.replace("STEM_TYPE: res_stem_cifar", "STEM_TYPE: res_stem_in"),
         "SETUP.BASE_CFG.REGNET.STEM_TYPE: 'res_stem_in'"),
        (text.replace("    CX:\n", "    MEM: [0, 1]\n    CX:\n"),
         "SETUP.CONSTRAINTS: unsupported keys MEM"),
        (text.replace("      GROUP_W: [1, 32]\n", "      GROUP_W: [1, 32]\n      WIDTH: [1, 2]\n"),
         "SETUP.SAMPLERS.REGNET: unknown keys WIDTH"),
        (text.replace("MODEL:\n      TYPE: regnet", "MODEL:\n      TYPE: effnet"),
         "MODEL.TYPE: 'effnet'"),
        ("NAME: x\n", "SETUP: missing"),
    ]
    for i, (t, msg) in enumerate(cases):
        p = tmp_path / f"bad{i}.yaml"
        p.write_text(t)
        with pytest.raises(DsdError) as e:
            load_pycls_sweep(p)
        assert msg in str(e.value) and f"bad{i}.yaml" in str(e.value) and "\n" not in str(e.value)


def test_anynet_list_samplers(tmp_path):
    """An AnyNetXA-like pycls sweep: per-stage list samplers of LENGTH 4."""
    p = tmp_path / "anynet.yaml"
    p.write_text("""\
NAME: anynet_a
SETUP:
  NUM_CONFIGS: 5
  SAMPLERS:
    ANYNET.DEPTHS: {TYPE: list_sampler, LENGTH: 4,
                    ITEM_SAMPLER: {TYPE: int_sampler, RAND_TYPE: log_uniform, RANGE: [1, 16], QUANTIZE: 1}}
    ANYNET.WIDTHS: {TYPE: list_sampler, LENGTH: 4,
                    ITEM_SAMPLER: {TYPE: int_sampler, RAND_TYPE: log_uniform, RANGE: [8, 1024], QUANTIZE: 8}}
    ANYNET.BOT_MULS: {TYPE: list_sampler, LENGTH: 4,
                      ITEM_SAMPLER: {TYPE: float_sampler, RAND_TYPE: power2_uniform, RANGE: [0.25, 1.0], QUANTIZE: 0.0078125}}
    ANYNET.GROUP_WS: {TYPE: list_sampler, LENGTH: 4,
                      ITEM_SAMPLER: {TYPE: int_sampler, RAND_TYPE: power2_uniform, RANGE: [1, 32], QUANTIZE: 1}}
  CONSTRAINTS:
    CX: {FLOPS: [360.0e+6, 400.0e+6]}
  BASE_CFG:
    MODEL: {TYPE: anynet, NUM_CLASSES: 1000}
    ANYNET: {STEM_W: 32, STRIDES: [2, 2, 2, 2]}
""")
    sw = load_pycls_sweep(p)
    s = sw.space
    assert (s.kind, s.stages, sw.dataset, s.first_stride) == ("anynet", 4, "imagenet", 2)
    assert s.param("b").to_dict() == {"sampler": "power2_uniform", "low": 1, "high": 4, "q": 1}
    assert s.param("d").pmf()[1][0] == pytest.approx(0.2)
    got = sample(s, 5, dataset=sw.dataset, window=sw.window, seed=1)
    assert all(360e6 <= m.flops <= 400e6 for m in got.models)
    assert set(np.ravel([m.spec.bs for m in got.models])) <= {1, 2, 4}


def test_cli_from_pycls(tmp_path):
    db = tmp_path / "s.sqlite"
    r = CliRunner().invoke(app, ["sample", "--from-pycls", str(CIFAR_REGNET), "--n", "6",
                                 "--store", str(db)])
    assert r.exit_code == 0, r.output
    assert "6 models of cifar-cifar_regnet (cifar10, samplers pycls)" in r.output
    row = sqlite3.connect(db).execute("SELECT space_def, dataset FROM sweeps").fetchone()
    assert json.loads(row[0])["samplers"] == "pycls" and row[1] == "cifar10"
    r = CliRunner().invoke(app, ["show", "--store", str(db)])
    assert "pycls" in r.output
    r = CliRunner().invoke(app, ["sample", "--from-pycls", str(FIX / "cifar_best.yaml"),
                                 "--store", str(db)])
    assert r.exit_code == 1 and "unsupported keys OPTIM.MAX_EPOCH" in r.output
    r = CliRunner().invoke(app, ["sample", "--store", str(db)])
    assert r.exit_code == 1 and "exactly one of --space" in r.output


def test_cli_samplers_dsd1_reproduces_and_is_checked(tmp_path):
    db = tmp_path / "s.sqlite"
    base = ["sample", "--space", "anynetxa", "--n", "3", "--dataset", "cifar10", "--store",
            str(db), "--name", "a"]
    r = CliRunner().invoke(app, [*base, "--samplers", "dsd1"])
    assert r.exit_code == 0 and "samplers dsd1" in r.output, r.output
    r = CliRunner().invoke(app, [*base, "--samplers", "dsd1"])
    assert "already exists with these settings" in r.output
    r = CliRunner().invoke(app, base)  # the same command under pycls is another sweep
    assert r.exit_code == 1 and "samplers dsd1" in r.output
