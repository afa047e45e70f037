"""Models of the open vocabulary train for real on CPU: another block, activation, stem and
head (a ResNet basic-block net with SiLU and a head conv), an inverted bottleneck, and a
CIFAR-10 spec at a sampled resolution (the data resampled to the spec's own input size)."""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dsd import Store, complexity, make_spec
from dsd.train import train
from dsd.train.data import CifarData, resize


def _sweep(store: Store, specs) -> None:
    models = []
    for i, spec in enumerate(specs):
        c = complexity(spec)
        models.append(SimpleNamespace(index=i, spec=spec, params={}, flops=c["flops"],
                                      params_count=c["params"], acts=c["acts"]))
    store.add_sweep("open", space="test", space_def={}, dataset="cifar10", window={}, seed=0,
                    draws=len(specs), models=models)


def test_cifar_resampled_to_the_spec_resolution():
    rng = np.random.default_rng(0)
    arrays = (rng.integers(0, 256, (64, 3, 32, 32), dtype=np.uint8), np.arange(64) % 10,
              rng.integers(0, 256, (16, 3, 32, 32), dtype=np.uint8), np.arange(16) % 10)
    same = CifarData("cpu", batch_size=32, arrays=arrays)
    big = CifarData("cpu", batch_size=32, arrays=arrays, resolution=40)
    assert same.loader == "device" and big.loader == "device, resized 32→40"
    xs = [x for x, _ in big.train_epoch(0, 0)]
    assert [tuple(x.shape) for x in xs] == [(32, 3, 40, 40)] * 2
    assert tuple(next(iter(big.test()))[0].shape) == (16, 3, 40, 40)
    # the same augmented batch, resampled: a bilinear resize of the 32² one
    x32 = next(iter(same.train_epoch(0, 0)))[0]
    assert torch.allclose(xs[0], resize(x32, 40), atol=1e-6)
    assert resize(x32, 32) is x32


@pytest.mark.parametrize("kw", [
    dict(block="basic", activation="silu", head_w=32, b=1, g=1),
    dict(block="x", b="1/4", g=1),                      # inverted bottleneck, depthwise
    dict(block="x", b=1, g=8, resolution=24),           # a sampled resolution
])
def test_open_models_train(tmp_path, data_root, kw):
    b, g = kw.pop("b"), kw.pop("g")
    spec = make_spec([1, 1, 1], [16, 24, 32], [b] * 3, [g] * 3, dataset="cifar10", stem_w=8,
                     **kw)
    store = Store(tmp_path / "s.sqlite")
    _sweep(store, [spec])
    summary = train(store, overrides={"epochs": 1, "batch_size": 50, "subset": 200,
                                      "test_subset": 100}, data_dir=data_root)
    res = store.results(status=None)
    assert summary.counts.get("done", 0) + summary.counts.get("collapsed", 0) == 1, res
    assert res["status"].iloc[0] in ("done", "collapsed") and np.isfinite(res["top1"].iloc[0])
    if spec.resolution != 32:  # the result's provenance names the resampled input
        (prov,) = store.conn.execute("SELECT provenance FROM results").fetchone()
        assert json.loads(prov)["loader"] == "device, resized 32→24"
