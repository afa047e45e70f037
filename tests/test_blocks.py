"""The block registry: every registered block passes the generic checks (counter = built module,
flops = an independent count, forward/backward in both layouts, JSON, determinism); the named
baselines equal pycls's own recorded complexity; specs written before the registry keep their
JSON and ids; a block from outside the repository loads and is checked."""
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import pandas as pd
import pytest

from dsd import DsdError, complexity
from dsd.blocks import BLOCKS, block_name, load_block_file
from dsd.blocks.check import CHECKS, check_block
from dsd.spec import ModelSpec, as_ratio, make_spec
from dsd.zoo import BASELINES, named_spec

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
EXAMPLE = ROOT / "examples" / "convnext_block.py"


@pytest.mark.parametrize("block", sorted(BLOCKS))
def test_generic_checks(block):
    rep = check_block(block, n=2, seed=1)
    assert rep.specs == 4 and rep.ok, rep.failures
    assert all(rep.passed[c] == rep.specs for c in CHECKS)


def test_checks_catch_a_counter_that_drifts(monkeypatch):
    """A counter missing a term fails params/flops/acts: the checks can fail."""
    x = BLOCKS["basic"]
    real = type(x).count
    monkeypatch.setattr(type(x), "count", lambda self, cx, *a: real(self, cx, *a)._replace(
        params=real(self, cx, *a).params + 1))
    rep = check_block("basic", n=1)
    assert not rep.ok and {f[0] for f in rep.failures} == {"params"}


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_baselines_equal_pycls_recorded_complexity(name):
    golden = json.loads((FIXTURES / "pycls" / "model_complexity.json").read_text())
    spec = named_spec(name, "cifar10" if name.endswith("-cifar") else "imagenet")
    assert complexity(spec) == golden["complexity"][BASELINES[name][1]]


def test_specs_written_before_the_registry_keep_json_and_ids():
    df = pd.read_parquet(ROOT / "results" / "cifar10" / "population.parquet",
                         columns=["spec", "hash"])
    for text, h in zip(df["spec"], df["hash"]):
        spec = ModelSpec.from_json(text)
        assert spec.to_json() == text and spec.id == h


def test_ratio_and_aliases():
    assert as_ratio("1/4") == Fraction(1, 4) and as_ratio(0.125) == Fraction(1, 8)
    assert as_ratio(2.0) == 2 and isinstance(as_ratio(2.0), int)
    assert as_ratio(1 / 6) == Fraction(1, 6)
    for bad in ("x", 0, -1, True):
        with pytest.raises(DsdError, match="bottleneck ratio"):
            as_ratio(bad)
    assert block_name("res_bottleneck_block") == "x"
    assert block_name("res_bottleneck_block", 0.25) == "y"
    assert block_name("res_basic_block") == "basic"
    with pytest.raises(DsdError, match="unknown block 'z'; known: x"):
        block_name("z")


def test_inverted_bottleneck_compatibility_is_pycls():
    """b < 1: the bottleneck width is a multiple of lcm(g, 1/b) (pycls's adjust rule)."""
    spec = make_spec([1], [20], ["1/4"], [8], dataset="cifar10")
    s = spec.stages[0]
    assert (s.w, s.b, s.g) == (20, Fraction(1, 4), 8)  # v = 80 = 10·lcm(8, 4)
    assert ModelSpec.from_json(spec.to_json()) == spec and '"b":"1/4"' in spec.to_json()
    with pytest.raises(DsdError, match="below 1 it must be 1/n"):
        make_spec([1], [20], ["2/3"], [8], dataset="cifar10")


@pytest.mark.parametrize("spec, message", [
    (dict(block="basic", b=2), "block basic has no parameter b"),
    (dict(block="x", g=3), "group width g=3 must divide"),
    (dict(block="y"), "block y needs se_ratio > 0"),
    (dict(block="mbconv", g=2), "block mbconv has no parameter g"),
    (dict(block="x", activation="tanh"), "unknown activation 'tanh'"),
    (dict(block="x", stem="res", stem_stride=1), "stem res: stride 1 not allowed"),
])
def test_bad_specs_are_one_line(spec, message):
    stage = {"d": 1, "w": 16, "b": spec.pop("b", 1), "g": spec.pop("g", 1 if spec["block"] in
             ("basic", "mbconv") else 8), "stride": 1}
    with pytest.raises(DsdError, match=message) as e:
        ModelSpec.from_dict({"stages": [stage], **spec})
    assert "\n" not in str(e.value)


def test_block_from_a_file_registers_and_passes(tmp_path):
    names = load_block_file(EXAMPLE)
    assert names == ["convnext"] or "convnext" in BLOCKS
    rep = check_block("convnext", n=2)
    assert rep.ok, rep.failures


def test_check_block_command(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(EXAMPLE.read_text().replace('name = "convnext"', 'name = "broken"')
                      .replace("out = bn_cx(out, w_in)", "out = out"))
    out = subprocess.run([sys.executable, "-m", "dsd", "check-block", str(EXAMPLE),
                          str(broken), "--n", "1"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert any(ln.startswith("convnext") and "ok" in ln for ln in lines), out.stdout
    assert any(ln.startswith("broken") and "FAIL" in ln for ln in lines), out.stdout
    assert "params" in out.stdout


def test_a_block_from_a_file_samples_and_trains(tmp_path, data_root):
    """README's walk: DSD_BLOCKS names the file; sample a space of it, train (worker processes
    load the block too), show."""
    env = {**__import__("os").environ, "DSD_BLOCKS": str(EXAMPLE)}
    store = tmp_path / "s.sqlite"

    def dsd(*args):
        out = subprocess.run([sys.executable, "-m", "dsd", *map(str, args), "--store", store],
                             capture_output=True, text=True, cwd=ROOT, env=env)
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    dsd("sample", "--space", ROOT / "examples" / "convnext_space.yaml", "--n", "1",
        "--dataset", "cifar10", "--flops", "20MF")
    dsd("train", "--epochs", "1", "--subset", "100", "--test-subset", "50", "--batch-size",
        "50", "--data-dir", data_root)
    assert "convnext_space-cifar10-s0: 1 models" in dsd("show", "convnext_space-cifar10-s0")
    from dsd import Store

    res = Store(store).results(status=None)
    assert len(res) == 1 and res["status"].iloc[0] in ("done", "collapsed"), res


def test_check_block_reports_a_block_that_cannot_be_built(tmp_path):
    bad = tmp_path / "raises.py"
    bad.write_text(EXAMPLE.read_text().replace('name = "convnext"', 'name = "raises"')
                   .replace("w_exp = int(Fraction(w_in) / Fraction(a.b))\n        f = seq(",
                            "w_exp = int(Fraction(w_in) / Fraction(a.b))\n        f = sq("))
    out = subprocess.run([sys.executable, "-m", "dsd", "check-block", str(bad), "--n", "1"],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 1 and "build: NameError: name 'sq' is not defined" in out.stdout, \
        out.stdout + out.stderr
