"""Analytic complexity: exact zoo integers, params equal to the built module, fvcore agreement."""
import json
from pathlib import Path

import pytest

from dsd import build, complexity, zoo_spec
from dsd.sample import sample
from dsd.space import list_spaces
from dsd.zoo import ZOO

#: pycls's own recorded counts (dev/model_complexity.json at 5719de6), kept in the repository.
PYCLS_COUNTS = Path(__file__).parent / "fixtures" / "pycls" / "model_complexity.json"

torch = pytest.importorskip("torch")


def golden():
    """The 24 RegNets' counts by zoo name (regnetx-400mf), from pycls's dds_baselines."""
    counts = json.loads(PYCLS_COUNTS.read_text())["complexity"]
    return {Path(k).name.split("_")[0].lower(): v for k, v in counts.items()
            if "/regnetx/" in k or "/regnety/" in k}


def test_zoo_table_covers_the_24_models():
    assert sorted(ZOO) == sorted(golden())


@pytest.mark.parametrize("name", sorted(ZOO))
def test_zoo_complexity_is_exact(name):
    m = golden()[name]
    cx = complexity(zoo_spec(name))
    assert (cx["flops"], cx["params"], cx["acts"]) == (m["flops"], m["params"], m["acts"])


def test_regnetx_400mf_compatibility_rounding():
    # raw stage widths [24, 64, 152, 392] with g = 16 become [32, 64, 160, 384] (half-to-even)
    assert zoo_spec("regnetx-400mf").ws == (32, 64, 160, 384)


def fvcore_flops(model, spec) -> int:
    """fvcore's conv + linear count plus the bias terms it leaves out (NOTES §2)."""
    from fvcore.nn import FlopCountAnalysis

    x = torch.randn(1, 3, spec.resolution, spec.resolution)
    counter = FlopCountAnalysis(model.eval(), x)
    counter.unsupported_ops_warnings(False)
    counter.uncalled_modules_warnings(False)
    ops = counter.by_operator()
    bias = 0
    hooks = []

    def add_bias(mod, _inp, out):
        nonlocal bias
        if getattr(mod, "bias", None) is not None:
            bias += out[0].numel()  # c_out·h·w per image (linear: c_out)
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            hooks.append(mod.register_forward_hook(add_bias))
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return int(ops["conv"] + ops["linear"]) + bias


#: The refinement chain and RegNets; fvcore's check runs on these (every registered block is
#: checked against torch's FlopCounterMode in test_blocks.py and against pycls's golden numbers).
CHAIN = ("anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx",
         "regnetx_constrained", "regnety")


def random_specs(dataset: str, per_space: int, window=None, names=None):
    """Sampled specs of every shipped space (or `names`) that has a window for `dataset`."""
    for space in list_spaces():
        if (names and space.name not in names) or (
                window is None and dataset not in dict(space.windows)):
            continue
        for m in sample(space, per_space, dataset=dataset, seed=7, window=window).models:
            yield space.name, m.spec


@pytest.mark.parametrize("dataset", ["imagenet", "cifar10"])
def test_params_match_built_module(dataset):
    """Every space, default window: analytic params == sum(p.numel()) of the module."""
    checked = set()
    for name, spec in random_specs(dataset, per_space=4):
        model = build(spec)
        assert complexity(spec)["params"] == sum(p.numel() for p in model.parameters()), name
        checked.add(name)
    with_window = {s.name for s in list_spaces() if dataset in dict(s.windows)}
    assert checked == with_window and set(CHAIN) <= checked


# fvcore traces the model (seconds per deep model on 2 cores): small windows by default,
# the spaces' own windows in the slow run.
@pytest.mark.parametrize("dataset, window", [("imagenet", "100MF"), ("cifar10", "30MF")])
def test_flops_agree_with_fvcore(dataset, window):
    for name, spec in random_specs(dataset, per_space=1, window=window, names=CHAIN):
        assert complexity(spec)["flops"] == fvcore_flops(build(spec), spec), (name, spec)


@pytest.mark.slow
@pytest.mark.parametrize("dataset", ["imagenet", "cifar10"])
def test_flops_agree_with_fvcore_default_windows(dataset):
    for name, spec in random_specs(dataset, per_space=3, names=CHAIN):
        assert complexity(spec)["flops"] == fvcore_flops(build(spec), spec), (name, spec)


def test_acts_match_conv_and_linear_outputs():
    spec = zoo_spec("regnety-200mf", "cifar10")
    model = build(spec).eval()
    acts = 0

    def count(_m, _i, out):
        nonlocal acts
        acts += out[0].numel()
    for mod in model.modules():
        if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)):
            mod.register_forward_hook(count)
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))
    assert acts == complexity(spec)["acts"]
