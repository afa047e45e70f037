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
        (text.replace("STEM_TYPE: res_stem_cifar", "STEM_TYPE: stem_in"),
         "SETUP.BASE_CFG.REGNET.STEM_TYPE: 'stem_in': unsupported; allowed: res_stem_cifar, "
         "simple_stem_in, res_stem_in"),
        (text.replace("SE_ON: True", "SE_ON: True\n      BLOCK_TYPE: mb_conv"),
         "SETUP.BASE_CFG.REGNET.BLOCK_TYPE: 'mb_conv': unsupported; allowed: "
         "res_bottleneck_block, res_bottleneck_linear_block, res_basic_block, vanilla_block"),
        (text.replace("SE_ON: True", "BLOCK_TYPE: res_basic_block"),
         "REGNET.GROUP_W: {'sampler': 'power2_or_log_uniform', 'low': 1, 'high': 32, 'q': 8} "
         "(as b = 1/BOT_MUL, g) with BLOCK_TYPE basic: must be 1"),
        (text.replace("NUM_CLASSES: 10", "NUM_CLASSES: 10\n      SCALING_FACTOR: 2.0"),
         "SETUP.BASE_CFG.MODEL.SCALING_FACTOR: 2.0"),
        (text.replace("NUM_CLASSES: 10", "NUM_CLASSES: 10\n      ACTIVATION_FUN: tanh"),
         "SETUP.BASE_CFG.MODEL.ACTIVATION_FUN: unknown activation 'tanh'"),
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
    assert "sampled as pycls's sweep_setup: at TRAIN.IM_SIZE 32, dropping repeated parameter " \
           "draws" in r.output
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


def _config(tmp_path, text: str, name: str = "c.yaml") -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


#: A RegNet sweep whose WM draws (11 parameter strings, 2.000 … 2.010) all build one network:
#: d 4, w0 32, wa 8 give block widths 32, 40, 48, 56 → stage indices 0, 0, 1, 1 → [32, 64].
ONE_NETWORK = """\
NAME: one_network
SETUP:
  NUM_CONFIGS: 11
  SAMPLERS:
    REGNET.WM: {TYPE: float_sampler, RAND_TYPE: uniform, RANGE: [2.0, 2.01], QUANTIZE: 0.001}
  CONSTRAINTS:
    REGNET: {NUM_STAGES: [2, 2]}
  BASE_CFG:
    MODEL: {TYPE: regnet, NUM_CLASSES: 10}
    REGNET: {STEM_TYPE: res_stem_cifar, STEM_W: 16, DEPTH: 4, W0: 32, WA: 8.0, GROUP_W: 8}
    TRAIN: {DATASET: cifar10, IM_SIZE: 32}
"""


def test_dedup_params_keeps_draws_that_build_one_network(tmp_path):
    """pycls's sweep_setup drops repeated parameter strings, not repeated networks: the 11
    WM values are 11 configs of one network; a 12th would need a repeated string."""
    sw = load_pycls_sweep(_config(tmp_path, ONE_NETWORK))
    assert sw.dedup == "params"
    got = sample(sw.space, 11, dataset=sw.dataset, window=sw.window, seed=0, dedup=sw.dedup)
    assert len({m.spec.id for m in got.models}) == 1
    assert sorted(m.params["wm"] for m in got.models) == pytest.approx(
        [2.0 + i / 1000 for i in range(11)])
    assert got.rejected["duplicate"] > 0  # repeated parameter strings were drawn and dropped
    assert [s.w for s in got.models[0].spec.stages] == [32, 64]
    with pytest.raises(DsdError, match="found 11 of 12 models"):
        sample(sw.space, 12, dataset=sw.dataset, window=sw.window, seed=0, dedup="params",
               max_draws=2000)
    with pytest.raises(DsdError, match="found 1 of 2 models"):  # dsd's own rule
        sample(sw.space, 2, dataset=sw.dataset, window=sw.window, seed=0, max_draws=2000)
    with pytest.raises(DsdError, match="dedup must be one of network, params"):
        sample(sw.space, 2, dataset=sw.dataset, window=sw.window, dedup="spec")


def test_im_size_is_the_resolution_and_the_window_is_checked_at_it(tmp_path):
    text = CIFAR_REGNET.read_text().replace("IM_SIZE: 32", "IM_SIZE: 64").replace(
        "ACTS: [0, 1.0e+6]", "ACTS: [0, 0]")
    sw = load_pycls_sweep(_config(tmp_path, text))
    assert sw.resolution == sw.space.to_dict()["resolution"] == 64 and sw.dataset == "cifar10"
    got = sample(sw.space, 20, dataset=sw.dataset, window=sw.window, seed=0, dedup=sw.dedup)
    for m in got.models:
        assert m.spec.resolution == 64
        cx = complexity(m.spec)
        assert 120e6 <= cx["flops"] == m.flops <= 130e6 and cx["params"] <= 2e6
        at32 = complexity(m.spec.__class__.from_dict({**m.spec.to_dict(), "resolution": 32}))
        assert at32["flops"] < 120e6  # the same network at 32 px lies outside the window
    # pycls's default (224) when TRAIN.IM_SIZE is left out; scale_model's round(IM/4)*4
    no_im = text.replace("      IM_SIZE: 64\n", "", 1)
    assert load_pycls_sweep(_config(tmp_path, no_im, "d.yaml")).resolution == 224
    im30 = text.replace("IM_SIZE: 64", "IM_SIZE: 30", 1)
    assert load_pycls_sweep(_config(tmp_path, im30, "e.yaml")).resolution == 32


BLOCK_CASES = [  # (BASE_CFG REGNET lines, SAMPLERS.REGNET extra lines, expected space fields)
    ("BLOCK_TYPE: res_bottleneck_linear_block, SE_ON: True", "",
     {"block": "linear", "se_ratio": 0.25}),
    ("BLOCK_TYPE: res_bottleneck_linear_block", "", {"block": "linear", "se_ratio": 0.0}),
    ("BLOCK_TYPE: res_basic_block, SE_ON: True", ", GROUP_W: [1, 1]",
     {"block": "basic", "se_ratio": 0.0}),
    ("BLOCK_TYPE: vanilla_block", ", GROUP_W: [1, 1]", {"block": "vanilla"}),
    ("STEM_TYPE: res_stem_in, HEAD_W: 256", "",
     {"block": "x", "stem_type": "res", "stem_stride": 2, "head_w": 256}),
    ("STEM_TYPE: simple_stem_in", ", BOT_MUL: [1.0, 4.0]",  # BOT_MUL > 1: b < 1 (inverted)
     {"block": "x", "stem_type": "simple", "stem_stride": 2}),
]


@pytest.mark.parametrize("regnet, extra, fields", BLOCK_CASES)
def test_registry_blocks_stems_head_activation(tmp_path, regnet, extra, fields):
    text = f"""\
SETUP:
  SAMPLERS:
    REGNET: {{TYPE: regnet_sampler, DEPTH: [6, 16], W0: [8, 64], WA: [8.0, 64.0]{extra}}}
  CONSTRAINTS:
    CX: {{FLOPS: [100.0e+6, 400.0e+6]}}
    REGNET: {{NUM_STAGES: [3, 3]}}
  BASE_CFG:
    MODEL: {{TYPE: regnet, NUM_CLASSES: 1000, ACTIVATION_FUN: SiLU}}
    REGNET: {{{regnet}}}
    TRAIN: {{IM_SIZE: 128}}
"""
    sw = load_pycls_sweep(_config(tmp_path, text))
    s = sw.space
    assert {k: getattr(s, k) for k in fields} == fields
    assert (s.activation, sw.dataset, sw.resolution) == ("silu", "imagenet", 128)
    got = sample(s, 4, dataset=sw.dataset, window=sw.window, seed=0, dedup=sw.dedup)
    for m in got.models:
        assert 100e6 <= m.flops <= 400e6 and m.spec.resolution == 128
        assert (m.spec.block, m.spec.activation, m.spec.head_w) == (
            fields["block"], "silu", fields.get("head_w", 0))
    if "BOT_MUL" in extra:
        assert s.param("b").pmf()[0].tolist() == [0.25, 0.5, 1.0]
        assert {str(st.b) for m in got.models for st in m.spec.stages} <= {"1/4", "1/2", "1"}


def test_bot_mul_constants_are_exact_ratios(tmp_path):
    text = ONE_NETWORK.replace("GROUP_W: 8}", "GROUP_W: 8, BOT_MUL: 0.75}")
    sw = load_pycls_sweep(_config(tmp_path, text))
    assert sw.space.param("b").to_dict() == pytest.approx(4 / 3)  # pycls BOT_MUL 0.75
    assert str(sample(sw.space, 1, dataset=sw.dataset, window=sw.window).models[0].spec
               .stages[0].b) == "4/3"
    bad = text.replace("BOT_MUL: 0.75", "BOT_MUL: 1.5")
    with pytest.raises(DsdError, match=r"BOT_MUL 1\.5: must be in \(0, 1\] or an integer"):
        load_pycls_sweep(_config(tmp_path, bad, "bad.yaml"))


@pytest.mark.slow
def test_side_by_side_with_pycls_sweep_setup():
    """pycls's own tools/sweep_setup.py (5719de6, unmodified; command in the fixture) on
    cifar_regnet.yaml at NUM_CONFIGS 1000, against dsd at n = 1000 (~1 min): about as many
    distinct networks among the kept configs, and the sampled group widths alike (KS)."""
    from scipy.stats import ks_2samp

    ref = json.loads((FIX / "cifar_regnet_sweep_setup_n1000.json").read_text())
    sw = load_pycls_sweep(CIFAR_REGNET)
    got = sample(sw.space, 1000, dataset=sw.dataset, window=sw.window, seed=0, dedup=sw.dedup)
    assert abs(len({m.spec.id for m in got.models}) - ref["distinct_networks"]) < 60
    assert ks_2samp([m.params["g"] for m in got.models], ref["g"]).pvalue > 1e-3


def test_a_pycls_sweep_keeps_repeated_networks_as_separate_models(tmp_path):
    """pycls keeps two parameter draws that build one network (its sweep_setup compares
    parameter strings); the store keeps both, the repeat's hash marked `-r1` (it failed with
    'UNIQUE constraint failed' before: the README's `dsd sample --from-pycls` line)."""
    db = tmp_path / "s.sqlite"
    r = CliRunner().invoke(app, ["sample", "--from-pycls", str(CIFAR_REGNET), "--store", str(db)])
    assert r.exit_code == 0, r.output
    rows = sqlite3.connect(db).execute("SELECT idx, hash, spec, sampled FROM models").fetchall()
    first = {h: spec for _, h, spec, _ in rows if "-r" not in h}
    repeats = [(h, spec, sampled) for _, h, spec, sampled in rows if "-r" in h]
    assert len(rows) == 32 and repeats                       # NUM_SAMPLES, repeats kept
    for h, spec, sampled in repeats:
        base = h.rsplit("-r", 1)[0]
        assert first[base] == spec                           # the same network …
        assert sampled != next(s for _, hh, _, s in rows if hh == base)   # … other draws
