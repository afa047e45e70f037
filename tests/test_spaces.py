"""YAML design spaces: shipped files, samplers, sizes, counts and every validation error."""
from __future__ import annotations

import itertools
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from dsd.errors import DsdError
from dsd.samplers import DSD1 as SAMPLERS  # the dsd1 convention (sweeps drawn before pycls's)
from dsd.samplers import choice, constant, non_decreasing
from dsd.samplers import log_uniform_dsd1 as log_uniform
from dsd.samplers import uniform_dsd1 as uniform
from dsd.space import SpaceDef, list_spaces, load_space, scan_spaces
from dsd.window import Window, format_count, parse_count

SHIPPED = ["anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx", "regnety",
           "regnetx_constrained"]


# ---------------------------------------------------------------------------------------------
# Counts and windows


@pytest.mark.parametrize("text, value", [
    ("400MF", 400_000_000), ("360MF", 360_000_000), ("1.6GF", 1_600_000_000),
    ("5.2M", 5_200_000), ("360M", 360_000_000), ("112.5MF", 112_500_000), ("12K", 12_000),
    ("400mf", 400_000_000), (" 400 MF ", 400_000_000), ("1000", 1000), (1000, 1000),
    ("0", 0), ("4e8", 400_000_000), ("3.2G", 3_200_000_000), ("0.5K", 500),
])
def test_parse_count(text, value):
    assert parse_count(text) == value
    assert type(parse_count(text)) is int


@pytest.mark.parametrize("text", ["", "MF", "400XF", "4OOMF", "1.5", "-5M", "1.6 G F x",
                                  "400MFF", None, True, [400], "1.2345K", -3])
def test_parse_count_rejects_garbage(text):
    with pytest.raises(DsdError):
        parse_count(text)


def test_format_count():
    assert format_count(360_000_000, "F") == "360MF"
    assert format_count(1_600_000_000, "F") == "1.6GF"
    assert format_count(112_500_000, "F") == "112.5MF"
    assert format_count(999) == "999"
    for n in (360_000_000, 1_600_000_000, 112_500_000, 5_200_000):
        assert parse_count(format_count(n, "F")) == n


def test_window():
    w = Window.around("400MF")
    assert w.flops == (360_000_000, 400_000_000) and w.params is None
    assert Window.parse("400MF") == w == Window.parse("360MF-400MF")
    assert w.contains({"flops": 360_000_000, "params": 1, "acts": 1})
    assert w.contains({"flops": 400_000_000, "params": 1, "acts": 1})
    assert not w.contains({"flops": 400_000_001, "params": 1, "acts": 1})
    both = Window(flops=(0, 10), params=(5, 6))
    assert not both.contains({"flops": 5, "params": 7, "acts": 0})
    assert str(w) == "flops 360MF–400MF"
    assert Window.from_dict(w.to_dict()) == w
    with pytest.raises(DsdError):
        Window(flops=(10, 5))


# ---------------------------------------------------------------------------------------------
# Samplers of the dsd1 convention (pycls's: tests/test_samplers.py)


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_log_uniform_integer_grid():
    v = log_uniform(_rng(), 1, 16, 1, 200_000).tolist()
    c = Counter(v)
    assert sorted(c) == list(range(1, 17)) and all(type(x) is int for x in c)
    # P(d = k) = log((k+1)/k) / log(17): log-uniform over [1, 17) floored.
    for k in (1, 4, 16):
        assert c[k] / len(v) == pytest.approx(math.log((k + 1) / k) / math.log(17), abs=0.005)


def test_log_uniform_multiples_of_step():
    v = log_uniform(_rng(), 8, 1024, 8, 100_000).tolist()
    assert min(v) == 8 and max(v) == 1024 and all(x % 8 == 0 for x in v)
    assert len(set(v)) == SAMPLERS["log_uniform"][2](8, 1024, 8) == 128


@pytest.mark.parametrize("low, high, step", [(2, 3, 0.001), (8, 256, 0.1), (1.5, 3, 0.001),
                                             (0.1, 255.9, 0.1)])
def test_float_grids_are_clean_decimals(low, high, step):
    v = log_uniform(_rng(), low, high, step, 50_000).tolist()
    assert all(type(x) is float and low <= x <= high for x in v)
    assert all(len(repr(x).split(".")[1]) <= len(repr(step).split(".")[1]) for x in v)
    assert all(abs((x - low) / step - round((x - low) / step)) < 1e-6 for x in v)


def test_uniform_and_choice_and_constant():
    v = uniform(_rng(), 12, 28, 1, 170_000).tolist()
    c = Counter(v)
    assert sorted(c) == list(range(12, 29))
    assert max(c.values()) / min(c.values()) < 1.1
    w = choice(_rng(), (1, 2, 4), 30_000).tolist()
    assert set(w) == {1, 2, 4} and all(type(x) is int for x in w)
    assert constant(_rng(), 1, 5).tolist() == [1] * 5
    assert SAMPLERS["uniform"][2](12, 28, 1) == 17
    assert SAMPLERS["choice"][2]((1, 2, 4)) == 3 and SAMPLERS["constant"][2](7) == 1


@pytest.mark.parametrize("sampler, args", [("log_uniform", (1, 16, 1)),
                                           ("log_uniform", (8, 1024, 8)),
                                           ("log_uniform", (2, 3, 0.001)),
                                           ("uniform", (12, 28, 1)), ("choice", ((4, 1, 2),))])
def test_pmf_matches_draws(sampler, args):
    fn, _, count, pmf = SAMPLERS[sampler]
    values, probs = pmf(*args)
    assert len(values) == count(*args) and probs.sum() == pytest.approx(1.0)
    draws = fn(_rng(), *args, 300_000)
    index = {v: i for i, v in enumerate(values.tolist())}
    freq = np.bincount([index[v] for v in draws.tolist()], minlength=len(values)) / len(draws)
    assert np.abs(freq - probs).max() < 0.004


def _rejection_pmf(probs, stages):
    """Exact distribution of i.i.d. draws conditioned on being sorted, by enumeration."""
    n = len(probs)
    w = {t: math.prod(probs[i] for i in t)
         for t in itertools.combinations_with_replacement(range(n), stages)}
    z = sum(w.values())
    return {t: v / z for t, v in w.items()}


def test_non_decreasing_equals_rejection_sampling():
    values, probs = np.array([1, 2, 3]), np.array([0.5, 0.3, 0.2])
    exact = _rejection_pmf(probs, 3)
    rows = non_decreasing(_rng(), values, probs, 3, 200_000)
    assert (np.diff(rows, axis=1) >= 0).all()
    freq = Counter(tuple(r) for r in (rows - 1).tolist())
    for t, p in exact.items():
        assert freq[t] / len(rows) == pytest.approx(p, abs=0.004), t


def test_non_decreasing_depths_are_not_sorted_draws():
    """AnyNetXE depths: conditioned on order, not sorted (which would move these numbers)."""
    values, probs = load_space("anynetxe").param("d").pmf()  # pycls log_uniform(1, 16, 1)
    exact = _rejection_pmf(probs.tolist(), 4)
    all_equal = sum(p for t, p in exact.items() if len(set(t)) == 1)
    mean_depth = sum(p * sum(values[list(t)]) for t, p in exact.items())
    assert all_equal == pytest.approx(0.0436, abs=5e-4)  # sorting i.i.d. draws: 0.0035
    assert mean_depth == pytest.approx(17.09, abs=0.01)  # sorting: 19.80
    rows = non_decreasing(_rng(), values, probs, 4, 200_000)
    assert (rows[:, 0] == rows[:, 3]).mean() == pytest.approx(all_equal, abs=0.003)
    assert rows.sum(axis=1).mean() == pytest.approx(mean_depth, abs=0.05)


# ---------------------------------------------------------------------------------------------
# Shipped spaces


def test_shipped_spaces_load():
    spaces = {s.name: s for s in list_spaces()}
    assert set(SHIPPED) <= set(spaces)
    for s in spaces.values():  # the DDS spaces at the 400MF regime; NDS's at ResNet-56's budget
        windows = dict(s.windows)
        if s.name.startswith("nds_"):
            assert windows["cifar10"].flops == (0, 129_000_000) and "imagenet" not in windows
            continue
        if "imagenet" in windows and s.name != "regnetx_3stages":
            assert windows["imagenet"].flops == (360_000_000, 400_000_000), s.name
        if "cifar10" in windows:
            assert windows["cifar10"].flops == (112_500_000, 125_000_000), s.name
    assert spaces["regnety"].block == "y" and spaces["regnety"].se_ratio == 0.25
    assert spaces["regnetx"].block == "x" and spaces["regnetx"].se_ratio == 0.0


def test_refinement_chain_accumulates():
    chain = {n: load_space(n) for n in SHIPPED[:5]}
    assert [(set(s.shared), set(s.non_decreasing)) for s in chain.values()] == [
        (set(), set()), ({"b"}, set()), ({"b", "g"}, set()), ({"b", "g"}, {"w"}),
        ({"b", "g"}, {"w", "d"})]
    assert chain["anynetxe"].extends == ("anynetxd", "anynetxc", "anynetxb", "anynetxa")
    # Everything else is inherited unchanged.
    for s in chain.values():
        assert s.params == chain["anynetxa"].params and s.windows == chain["anynetxa"].windows


def test_sizes():
    n = {"d": 16, "w": 128, "b": 3, "g": 6}
    size = {s: load_space(s).size() for s in SHIPPED}
    assert size["anynetxa"] == (16 * 128 * 3 * 6) ** 4
    assert size["anynetxb"] == (16 * 128 * 6) ** 4 * 3
    assert size["anynetxc"] == (16 * 128) ** 4 * 3 * 6
    nd = lambda k: math.comb(n[k] + 3, 4)  # noqa: E731  multisets of 4 stages
    assert size["anynetxd"] == 16**4 * nd("w") * 3 * 6
    assert size["anynetxe"] == nd("d") * nd("w") * 3 * 6
    assert nd("w") == 11_716_640 and nd("d") == 3876
    # RegNet: product of the grids, an upper bound (stage-count rejection not subtracted).
    assert size["regnetx"] == size["regnety"] == 63 * 31 * 2559 * 1501 * 3 * 6
    assert size["regnetx_constrained"] == 17 * 32 * 2481 * 1001 * 1 * 16
    assert load_space("anynetxa").size_exact and not load_space("regnetx").size_exact


def test_constrained_regnet_params():
    s = load_space("regnetx_constrained")
    p = {q.name: q for q in s.params}
    assert p["b"].sampler == "constant" and p["b"].args == (1,)
    assert p["d"].sampler == "uniform" and p["d"].args == (12, 28, 1)
    assert p["wm"].args == (2.0, 3.0, 0.001) and p["g"].args == (8, 128, 8)
    assert p["g"].sampler == "power2_or_log_uniform" and s.samplers == "pycls"
    assert s.extends == ("regnetx",)


@pytest.mark.parametrize("name", SHIPPED)
def test_to_dict_is_json_and_round_trips(name):
    s = load_space(name)
    d = json.loads(json.dumps(s.to_dict()))
    assert "extends" not in d
    assert SpaceDef.from_dict(d) == s
    assert d["window"]["imagenet"]["flops"] == [360_000_000, 400_000_000]


def test_lookup_by_path_and_env(tmp_path, monkeypatch):
    src = Path(load_space("anynetxa").source)
    (tmp_path / "anynetxa.yaml").write_text(src.read_text())
    assert load_space(str(tmp_path / "anynetxa.yaml")).name == "anynetxa"
    assert load_space("anynetxa", spaces_dir=tmp_path).source == str(tmp_path / "anynetxa.yaml")
    monkeypatch.setenv("DSD_SPACES", str(tmp_path))
    assert [s.name for s in list_spaces()] == ["anynetxa"]
    with pytest.raises(DsdError, match="'nope' not found.*known spaces.*anynetxa"):
        load_space("nope")


def test_draw_shapes():
    s = load_space("anynetxb")
    spec, raw = s.draw(_rng(), "imagenet")
    assert sorted(raw) == sorted(f"{k}{i}" for k in "dwbg" for i in range(1, 5))
    assert len(set(spec.bs)) == 1 and spec.resolution == 224
    spec, raw = s.draw(_rng(), "cifar10")
    assert spec.resolution == 32 and spec.stages[0].stride == 1 and spec.stem_stride == 1


# ---------------------------------------------------------------------------------------------
# Malformed files: one line naming the file, the key path, the value and what is allowed.

BASE = """\
name: {name}
description: test space
block: x
stem: {w: 32}
stages: 4
stage_params:
  d: {sampler: log_uniform, low: 1, high: 16, q: 1}
  w: {sampler: log_uniform, low: 8, high: 1024, q: 8}
  b: {sampler: choice, values: [1, 2, 4]}
  g: {sampler: choice, values: [1, 2, 4, 8, 16, 32]}
window:
  imagenet: {flops: [360MF, 400MF]}
"""
DSD1_BASE = BASE.replace("block: x", "samplers: dsd1\nblock: x").replace("q: ", "step: ")

REGNET = """\
name: {name}
block: x
stages: 4
regnet:
  d: {sampler: uniform, low: 12, high: 28, q: 1}
  w0: {sampler: log_uniform, low: 8, high: 256, q: 8}
  wa: {sampler: log_uniform, low: 8, high: 256, q: 0.1}
  wm: {sampler: log_uniform, low: 2, high: 3, q: 0.001}
  b: 1
  g: {sampler: power2_or_log_uniform, low: 8, high: 128, q: 8}
"""


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new)


# (id, file text (name filled in), expected substrings besides the file name)
MALFORMED = [
    ("unknown-top-key", BASE + "stage_param: {}\n",
     ["stage_param", "unknown key", "allowed: name, description, extends"]),
    ("unknown-sampler-arg", _edit(BASE, "high: 1024, q: 8}", "high: 1024, q: 8, hgh: 3}"),
     ["stage_params.w.hgh", "allowed: sampler, low, high, q"]),
    ("dsd1-arg-in-pycls", _edit(BASE, "high: 1024, q: 8}", "high: 1024, step: 8}"),
     ["stage_params.w.step", "allowed: sampler, low, high, q", "dsd1 convention"]),
    ("pycls-sampler-in-dsd1", _edit(DSD1_BASE, "{sampler: choice, values: [1, 2, 4]}",
                                    "{sampler: power2_uniform, low: 1, high: 4, step: 1}"),
     ["stage_params.b.sampler", "allowed: log_uniform, uniform, choice (samplers: dsd1)"]),
    ("unknown-convention", _edit(BASE, "block: x", "samplers: numpy\nblock: x"),
     ["samplers", "'numpy'", "allowed: pycls, dsd1"]),
    ("not-multiple-of-q", _edit(BASE, "high: 1024, q: 8", "high: 1020, q: 8"),
     ["stage_params.w.high", "1020", "must be a multiple of q=8 for log_uniform"]),
    ("power2-not-power", _edit(BASE, "{sampler: choice, values: [1, 2, 4]}",
                               "{sampler: power2_uniform, low: 1, high: 6, q: 1}"),
     ["stage_params.b.high", "got 6", "power of 2 for power2_uniform"]),
    ("power2-below-minimum", _edit(BASE, "{sampler: choice, values: [1, 2, 4]}",
                                   "{sampler: power2_uniform, low: 1, high: 4, q: 2}"),
     ["stage_params.b", "got 0", "must be > 0"]),
    ("low-above-high", _edit(BASE, "low: 8, high: 1024", "low: 2048, high: 1024"),
     ["stage_params.w.low", "2048", "must be <= high (1024)"]),
    ("zero-q", _edit(BASE, "high: 16, q: 1", "high: 16, q: 0"),
     ["stage_params.d.q", "got 0", "must be > 0"]),
    ("zero-step", _edit(DSD1_BASE, "high: 16, step: 1", "high: 16, step: 0"),
     ["stage_params.d.step", "got 0", "must be > 0"]),
    ("off-grid", _edit(DSD1_BASE, "high: 1024, step: 8", "high: 1020, step: 8"),
     ["stage_params.w.high", "1020", "grid low + k*step (low=8, step=8)"]),
    ("log-nonpositive", _edit(REGNET, "wa: {sampler: log_uniform, low: 8,",
                              "wa: {sampler: log_uniform, low: 0,"),
     ["regnet.wa.low", "got 0", "must be > 0 for log_uniform"]),
    ("empty-choice", _edit(BASE, "values: [1, 2, 4]", "values: []"),
     ["stage_params.b.values", "[]", "non-empty list"]),
    ("unknown-sampler", _edit(BASE, "g: {sampler: choice", "g: {sampler: loguniform"),
     ["stage_params.g.sampler", "'loguniform'", "allowed: uniform, log_uniform, power2_uniform"]),
    ("shared-unknown-param", BASE + "shared: [b, x]\n",
     ["shared", "'x'", "unknown parameter; allowed: d, w, b, g"]),
    ("non-decreasing-not-list", BASE + "non_decreasing: w\n",
     ["non_decreasing", "'w'", "must be a list of parameter names"]),
    ("regnet-and-stage-params", BASE + "regnet: {}\n",
     ["regnet", "exactly one of stage_params (AnyNet) or regnet"]),
    ("neither", "name: {name}\nblock: x\nstages: 4\n",
     ["stage_params", "missing", "exactly one of stage_params"]),
    ("missing-stages", _edit(BASE, "stages: 4\n", ""),
     ["stages: missing", "required: name, block, stages"]),
    ("missing-param", _edit(BASE, "  g: {sampler: choice, values: [1, 2, 4, 8, 16, 32]}\n", ""),
     ["stage_params.g: missing", "required: d, w, b, g"]),
    ("missing-sampler-arg", _edit(BASE, "low: 1, high: 16, q: 1", "low: 1, high: 16"),
     ["stage_params.d.q: missing", "required: sampler, low, high, q"]),
    ("bad-window", _edit(BASE, "[360MF, 400MF]", "[360MF, 400XF]"),
     ["window.imagenet.flops", "400XF", "counts like 400MF, 1.6GF"]),
    ("window-reversed", _edit(BASE, "[360MF, 400MF]", "[400MF, 360MF]"),
     ["window.imagenet.flops", "lo <= hi"]),
    ("window-unknown-dataset", _edit(BASE, "imagenet: {flops", "imagenet21k: {flops"),
     ["window.imagenet21k", "unknown key; allowed: imagenet, cifar10"]),
    ("se-with-x", BASE + "se_ratio: 0.25\n", ["se_ratio", "0.25", "not allowed with block x"]),
    ("y-without-se", _edit(BASE, "block: x", "block: y"),
     ["se_ratio: missing", "required with block y"]),
    ("bad-block", _edit(BASE, "block: x", "block: z"), ["block", "'z'", "allowed: x (res_bottleneck_block), y"]),
    ("stages-not-int", _edit(BASE, "stages: 4", "stages: four"),
     ["stages", "'four'", "must be an integer >= 1"]),
    ("float-depth", _edit(BASE, "low: 1, high: 16, q: 1", "low: 1, high: 16, q: 0.5"),
     ["stage_params.d.q", "0.5", "must be an integer > 0 (parameter d: integers >= 1)"]),
    ("depth-zero", _edit(BASE, "d: {sampler: log_uniform, low: 1, high: 16, q: 1}", "d: 0"),
     ["stage_params.d", "got 0", "must be >= 1"]),
    ("w0-not-multiple-of-8", _edit(REGNET, "low: 8, high: 256, q: 8}",
                                   "low: 12, high: 252, q: 4}"),
     ["regnet.w0.low", "12", "multiple of 8"]),
    ("wm-not-above-1", _edit(REGNET, "low: 2, high: 3, q: 0.001",
                             "low: 1, high: 3, q: 0.001"),
     ["regnet.wm.low", "got 1", "must be > 1"]),
    ("duplicate-choice", _edit(BASE, "values: [1, 2, 4]", "values: [1, 2, 2]"),
     ["stage_params.b.values", "distinct"]),
    ("regnet-shared", REGNET + "shared: [g]\n",
     ["shared", "'g'", "regnet spaces have no per-stage parameters"]),
    ("name-mismatch", _edit(BASE, "name: {name}", "name: other"),
     ["name", "'other'", "must equal the file name"]),
    ("not-a-mapping", "- just\n- a list\n", ["(top level)", "YAML mapping"]),
    ("yaml-syntax", BASE + "stage_params: {d: [1, 2\n", ["YAML syntax error at line 14"]),
    ("unknown-extends", "name: {name}\nextends: anynetxz\n",
     ["extends", "'anynetxz'", "unknown space; known:"]),
]


@pytest.mark.parametrize("case, text, expected", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_malformed(tmp_path, case, text, expected):
    name = case.replace("-", "_")
    path = tmp_path / f"{name}.yaml"
    path.write_text(text.replace("{name}", name))
    with pytest.raises(DsdError) as e:
        load_space(str(path))
    msg = str(e.value)
    assert "\n" not in msg
    assert f"{name}.yaml" in msg
    for part in expected:
        assert part in msg, (part, msg)


def test_extends_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nextends: b\n")
    (tmp_path / "b.yaml").write_text("name: b\nextends: a\n")
    with pytest.raises(DsdError, match=r"a\.yaml: extends: cycle a -> b -> a"):
        load_space("a", spaces_dir=tmp_path)
    (tmp_path / "c.yaml").write_text("name: c\nextends: c\n")
    with pytest.raises(DsdError, match="cycle c -> c"):
        load_space("c", spaces_dir=tmp_path)


def test_errors_name_the_file_that_set_the_key(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE.replace("{name}", "base").replace(
        "values: [1, 2, 4]", "values: [1, 2, 4, 0]"))
    (tmp_path / "child.yaml").write_text("name: child\nextends: base\nshared: [b]\n")
    with pytest.raises(DsdError, match=r"base\.yaml: stage_params\.b\.values\.3: got 0"):
        load_space("child", spaces_dir=tmp_path)
    (tmp_path / "base.yaml").write_text(BASE.replace("{name}", "base"))
    (tmp_path / "child.yaml").write_text("name: child\nextends: base\nshared: [q]\n")
    with pytest.raises(DsdError, match=r"child\.yaml: shared: got 'q'"):
        load_space("child", spaces_dir=tmp_path)


def test_extends_overrides_and_unions(tmp_path):
    (tmp_path / "base.yaml").write_text(BASE.replace("{name}", "base") + "shared: [b]\n")
    (tmp_path / "child.yaml").write_text(
        "name: child\nextends: base\nshared: [g, b]\nnon_decreasing: [w]\n"
        "stage_params:\n  w: {sampler: uniform, low: 16, high: 64, q: 16}\n"
        "window:\n  cifar10: {flops: [1MF, 2MF]}\n")
    s = load_space("child", spaces_dir=tmp_path)
    assert s.shared == ("b", "g") and s.non_decreasing == ("w",)
    assert s.param("w").args == (16, 64, 16) and s.param("d").args == (1, 16, 1)
    assert s.window("imagenet").flops == (360_000_000, 400_000_000)
    assert s.window("cifar10").flops == (1_000_000, 2_000_000)
    assert s.description == "" and s.extends == ("base",)
    assert s.size() == 16**4 * math.comb(4 + 3, 4) * 3 * 6


def test_an_installed_wheel_finds_its_spaces(tmp_path, monkeypatch):
    """Outside a checkout, the YAMLs come from <prefix>/share/dsd/spaces (pyproject data-files)."""
    import sys

    import dsd.space

    installed = tmp_path / "prefix" / "share" / "dsd" / "spaces"
    installed.mkdir(parents=True)
    monkeypatch.delenv("DSD_SPACES", raising=False)
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "prefix"))
    monkeypatch.setattr(dsd.space, "__file__", str(tmp_path / "site" / "dsd" / "space.py"))
    assert dsd.space.default_spaces_dir() == installed
    monkeypatch.setenv("DSD_SPACES", str(tmp_path))
    assert dsd.space.default_spaces_dir() == tmp_path


def test_a_space_of_ones_own_extends_a_shipped_one(tmp_path):
    (tmp_path / "my_rx.yaml").write_text("name: my_rx\nextends: regnetx\nactivation: silu\n")
    s = load_space("my_rx", tmp_path)
    assert s.extends == ("regnetx",) and s.activation == "silu"
    assert s.params == load_space("regnetx").params


def test_a_broken_parent_names_each_child(tmp_path):
    (tmp_path / "broken.yaml").write_text(
        "name: broken\nblock: x\nstages: 4\nstage_params: {d: 1, w: 8, b: 1, g: -1}\n")
    (tmp_path / "child.yaml").write_text("name: child\nextends: broken\n")
    spaces, bad = scan_spaces(tmp_path)
    msgs = {p.name: m for p, m in bad}
    assert msgs["child.yaml"].startswith(f"{tmp_path / 'child.yaml'}: extends broken, which "
                                         "does not load: ")
    assert "stage_params.g: got -1" in msgs["child.yaml"] and not spaces
