"""Sampling: constraints on 1,000 models per space, determinism, bounded search, fast flops."""
from __future__ import annotations

import json

import numpy as np
import pytest

from dsd.complexity import complexity
from dsd.errors import DsdError
from dsd.regnet import regnet_spec
from dsd.complexity import flops
from dsd.sample import EARLY_STOP_DRAWS, Window, sample, space_rng
from dsd.space import load_space

SPACES = ["anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx", "regnety",
          "regnetx_constrained"]
N = 1000

_cache: dict = {}


def _sampled(name):
    """sample(name, 1000) at the default ImageNet window, seed 0, computed once per session."""
    if name not in _cache:
        _cache[name] = sample(name, N)
    return _cache[name]


@pytest.mark.parametrize("name", SPACES)
def test_constraints_hold_on_1000_samples(name):
    space = load_space(name)
    r = _sampled(name)
    lo, hi = space.window("imagenet").flops
    assert len(r.models) == N and [m.index for m in r.models] == list(range(N))
    assert len({m.spec.id for m in r.models}) == N, "duplicate ids"
    assert r.draws >= N and r.acceptance == N / r.draws
    assert r.rejected["window"] + r.rejected["stages"] + r.rejected["duplicate"] == r.draws - N
    for m in r.models:
        spec, raw = m.spec, m.params
        cx = complexity(spec)
        assert (m.flops, m.params_count, m.acts) == (cx["flops"], cx["params"], cx["acts"])
        assert lo <= m.flops <= hi
        assert spec.resolution == 224 and spec.block == space.block
        assert json.loads(json.dumps(raw)) == raw
        if space.kind == "anynet":
            assert list(spec.ds) == [raw[f"d{i}"] for i in range(1, 5)]
            assert list(spec.bs) == [raw[f"b{i}"] for i in range(1, 5)]
            for p in space.shared:
                assert len({raw[f"{p}{i}"] for i in range(1, 5)}) == 1
            if "b" in space.shared:
                assert len(set(spec.bs)) == 1
            if "g" in space.shared:  # compatibility caps g at a narrower bottleneck width
                g = raw["g1"]
                assert list(spec.gs) == [min(g, max(1, int(raw[f"w{i}"] / raw[f"b{i}"])))
                                         for i in range(1, 5)]
            for p in space.non_decreasing:
                vals = [raw[f"{p}{i}"] for i in range(1, 5)]
                assert vals == sorted(vals)
                assert list(getattr(spec, p + "s")) == sorted(getattr(spec, p + "s"))
        else:
            assert len(spec.stages) == 4
            assert spec.depth == raw["d"]
            assert list(spec.ws) == sorted(spec.ws)
            assert set(spec.bs) == {raw["b"]}
    if name == "regnetx_constrained":
        assert all(m.params["b"] == 1 and set(m.spec.bs) == {1} for m in r.models)
        assert all(12 <= m.params["d"] <= 28 and m.params["wm"] >= 2 for m in r.models)
        assert all(m.params["g"] % 8 == 0 and 8 <= m.params["g"] <= 128 for m in r.models)
    if name == "regnety":
        assert all(m.spec.se_ratio == 0.25 for m in r.models)


def test_unconstrained_spaces_explore_the_grid():
    """Sanity: every AnyNetXA value of b and g shows up; widths reach both ends."""
    r = _sampled("anynetxa")
    assert {m.params["b1"] for m in r.models} == {1, 2, 4}
    assert {m.params["g3"] for m in r.models} == {1, 2, 4, 8, 16, 32}
    ws = [m.params["w1"] for m in r.models]
    assert min(ws) == 8 and max(ws) > 512


def _key(r):
    return [(m.index, m.spec.id, m.params, m.flops) for m in r.models]


@pytest.mark.parametrize("name", ["anynetxa", "anynetxe", "regnetx"])
def test_deterministic_and_prefix(name):
    full = _sampled(name)
    again = sample(name, 60)
    assert _key(again) == _key(full)[:60]
    assert _key(sample(name, 60)) == _key(again)
    assert _key(sample(name, 60, seed=1)) != _key(again)
    other = sample(name, 60, seed=1)
    assert not {m.spec.id for m in other.models} & {m.spec.id for m in again.models}


def test_same_seed_different_spaces_differ():
    a, b = sample("anynetxb", 20), sample("anynetxc", 20)
    assert [m.params for m in a.models] != [m.params for m in b.models]
    assert space_rng("x", 0).random() != space_rng("y", 0).random()
    assert space_rng("x", 0).random() == space_rng("x", 0).random()


def test_cifar10_default_window_and_layout():
    r = sample("anynetxd", 40, dataset="cifar10")
    assert r.window.flops == (112_500_000, 125_000_000) and r.dataset == "cifar10"
    for m in r.models:
        assert m.spec.resolution == 32 and m.spec.num_classes == 10
        assert m.spec.stem_stride == 1 and m.spec.stages[0].stride == 1
        assert 112_500_000 <= m.flops <= 125_000_000


def test_explicit_windows():
    r = sample("anynetxe", 20, window="800MF")
    assert all(720_000_000 <= m.flops <= 800_000_000 for m in r.models)
    w = Window(flops=(360_000_000, 400_000_000), params=(0, 3_000_000))
    r = sample("anynetxe", 20, window=w)
    assert all(m.params_count <= 3_000_000 for m in r.models) and r.window == w


def test_no_default_window(tmp_path):
    text = load_space("anynetxa").source
    src = open(text).read()
    cut = src[:src.index("window:")]
    (tmp_path / "nowin.yaml").write_text(cut.replace("name: anynetxa", "name: nowin"))
    space = load_space(str(tmp_path / "nowin.yaml"))
    with pytest.raises(DsdError, match="no default window for 'imagenet'.*pass a window"):
        sample(space, 5)
    assert len(sample(space, 5, window="400MF").models) == 5


def test_impossible_window_hits_max_draws():
    with pytest.raises(DsdError) as e:
        sample("anynetxa", 5, window=Window(flops=(1, 2)), max_draws=3000)
    msg = str(e.value)
    assert "found 0 of 5 models in the window [flops 1–2]" in msg
    assert "after 3000 draws (acceptance 0%)" in msg
    assert "widen the window or raise --max-draws" in msg and "\n" not in msg
    assert "stopped early" not in msg


def test_partial_find_reports_progress():
    with pytest.raises(DsdError, match=r"found [1-9]\d* of 1000 models .* after 4000 draws "
                                       r"\(acceptance [0-9.]+%\)"):
        sample("anynetxe", 1000, max_draws=4000)


def test_early_stop_when_nothing_is_kept():
    with pytest.raises(DsdError, match=f"found 0 of 3 models .* after {EARLY_STOP_DRAWS} draws"
                                       r".*stopped early"):
        sample("regnetx", 3, window=Window(flops=(1, 2)), max_draws=10**9)


@pytest.mark.parametrize("kwargs", [{"n": 0}, {"n": 2.5}, {"n": 5, "seed": -1},
                                    {"n": 5, "max_draws": 0}, {"n": 5, "dataset": "mnist"}])
def test_bad_arguments(kwargs):
    with pytest.raises(DsdError):
        sample("anynetxa", **kwargs)


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("dataset", ["imagenet", "cifar10"])
def test_fast_flops_equals_complexity(name, dataset):
    """The prefilter must equal the reference counter on every candidate, not just kept ones."""
    space = load_space(name)
    rng = np.random.default_rng(7)
    specs = [c[0] for c in space.draw_batch(rng, 3000, dataset) if c is not None][:400]
    assert len(specs) >= 50
    for spec in specs:
        assert flops(spec) == complexity(spec)["flops"]


@pytest.mark.parametrize("name", ["regnetx", "regnetx_constrained"])
def test_regnet_prefilter_drops_no_valid_candidate(name):
    """draw_batch's stage-count shortcut agrees with regnet_spec on every raw draw."""
    space = load_space(name)
    size = 20_000
    got = space.draw_batch(np.random.default_rng(3), size)
    rng = np.random.default_rng(3)
    cols = {p.name: p.draw(rng, size).tolist() for p in space.params}
    valid = 0
    for i in range(size):
        raw = {k: v[i] for k, v in cols.items() if k not in space.omitted}
        _, count = regnet_spec(raw["d"], raw["w0"], raw["wa"], raw["wm"], raw["b"], raw["g"])
        assert (got[i] is not None) == (count == 4), raw
        valid += count == 4
        if got[i] is not None:
            assert got[i][1] == raw
    assert valid > 100
