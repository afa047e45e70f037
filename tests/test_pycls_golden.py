"""dsd against numbers recorded from pycls, the oracle (issue 27), without pycls.

tests/fixtures/pycls/golden_blocks.json is written by `scripts/crosscheck_pycls.py
--write-golden`, which runs pycls side by side (its own venv) and checks >= 2,000 random specs
of every block, stem, head and activation type bitwise. Here, in CI:

* every recorded row's flops, params and acts equal dsd's `complexity` (all 6 block types,
  the 3 stems, the head with and without head_w, 3 activations);
* for ~10 small specs per block type, dsd's float64 logits equal pycls's (1e-10 relative) with
  every weight set by `formula_tensor` in pycls's state order, mapped block by block onto dsd's
  state (pycls creates a block's projection shortcut first, dsd last), and the state's shapes
  equal pycls's entry by entry;
* pycls's dds_baselines ResNet, ResNeXt and EfficientNet configs (and its CIFAR ResNet-56/110,
  Vanilla-56): their complexity at 224 and at their training size, and dsd's zoo models of
  the same name (`dsd info resnet50`, `resnext50-32x4d`, `effnet-b0`, …).
"""
from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))

import crosscheck_pycls as cc  # noqa: E402

from dsd.complexity import complexity  # noqa: E402
from dsd.spec import ModelSpec  # noqa: E402

GOLDEN = json.loads(cc.GOLDEN.read_text())
TYPES = GOLDEN["types"]


def test_golden_covers_every_type():
    assert set(TYPES) == set(cc.BLOCK_TYPES)
    seen: Counter = Counter()
    for t in TYPES.values():
        assert len(t["rows"]) >= 100 and len(t["logits"]) >= 5
        for row in t["rows"] + t["logits"]:
            seen.update(cc.categories(ModelSpec.from_dict(row["spec"])))
    for c in ["stem simple/1", "stem simple/2", "stem res/2", "head conv (head_w>0)",
              "head pool+fc (head_w=0)", "activation relu", "activation silu",
              "activation gelu"]:
        assert seen[c] >= 50, (c, seen[c])


@pytest.mark.parametrize("block", cc.BLOCK_TYPES)
def test_complexity_equals_pycls(block):
    bad = []
    for row in TYPES[block]["rows"] + TYPES[block]["logits"]:
        spec = ModelSpec.from_dict(row["spec"])
        ours = complexity(spec)
        theirs = {k: row[k] for k in ("flops", "params", "acts")}
        if ours != theirs:
            bad.append((spec.to_json(), ours, theirs))
    assert not bad, f"{len(bad)} specs differ from pycls, first: {bad[0]}"


@pytest.mark.parametrize("block", cc.BLOCK_TYPES)
def test_translation_to_pycls_is_stable(block):
    """The spec → pycls mapping the golden logits were recorded with still holds."""
    for row in TYPES[block]["logits"]:
        assert cc.to_pycls(ModelSpec.from_dict(row["spec"])) == row["pycls"]


@pytest.mark.parametrize("block", cc.BLOCK_TYPES)
def test_logits_equal_pycls(block):
    import torch

    from dsd.model import build

    torch.set_num_threads(1)
    for row in TYPES[block]["logits"]:
        spec = ModelSpec.from_dict(row["spec"])
        model = build(spec).double().eval()
        pkeys = [k for k, _ in row["pycls_state"]]
        entries = cc.dsd_state(model)
        perm = cc.state_mapping([k for k, _ in entries], pkeys)
        # the parameter/state shapes, entry by entry in pycls's order
        assert [list(entries[j][1].shape) for j in perm] == [s for _, s in row["pycls_state"]]
        assert sum(p.numel() for p in model.parameters()) == row["params"]
        cc.set_formula_weights(model, pkeys)
        x = torch.from_numpy(cc.formula_input([2, 3, spec.resolution, spec.resolution]))
        with torch.no_grad():
            y = model(x).numpy()
        ref = np.array(row["logits"])
        assert y.shape == ref.shape
        scale = max(1.0, float(np.abs(ref).max()))
        np.testing.assert_allclose(y, ref, rtol=0, atol=1e-10 * scale,
                                   err_msg=f"logits differ from pycls for {spec.to_json()}")


@pytest.mark.parametrize("name", sorted(GOLDEN["baselines"]))
def test_baseline_complexity_equals_pycls(name):
    base = GOLDEN["baselines"][name]
    spec = cc.from_pycls(base["pycls"])
    assert spec.resolution == base["im_size"] == 224
    assert complexity(spec) == cc.expected_cx(base, 224)
    train = cc.from_pycls({**base["pycls"], "im_size": base["train_im_size"]})
    assert complexity(train) == base["train_cx"]


@pytest.mark.parametrize("name", sorted(GOLDEN["baselines"]))
def test_zoo_model_equals_pycls_config(name):
    """`dsd info <name>`'s model is pycls's config, with pycls's complexity (at 224 or at the
    config's training resolution, whichever the zoo model uses)."""
    from dsd.zoo import named_spec

    base = GOLDEN["baselines"][name]
    spec = named_spec(base["dsd_name"], dataset=cc.baseline_dataset(base["pycls"]))
    assert spec == cc.from_pycls({**base["pycls"], "im_size": spec.resolution})
    expected = cc.expected_cx(base, spec.resolution)
    assert expected is not None, f"{name} at {spec.resolution}: no pycls number recorded"
    assert complexity(spec) == expected


def test_baselines_present():
    names = set(GOLDEN["baselines"])
    assert {"R-50-1x64d", "R-101-1x64d", "R-152-1x64d", "X-50-32x4d", "X-101-32x4d",
            "X-152-32x4d", "R-56", "R-110", "V-56"} <= names
    assert {f"EN-B{i}" for i in range(6)} <= names
    # the published pycls numbers (MODEL_ZOO.md: R-50 4.1 GF 25.6 M, EN-B0 0.4 GF 5.3 M)
    assert GOLDEN["baselines"]["R-50-1x64d"]["params"] == 25557032
    assert GOLDEN["baselines"]["EN-B0"]["params"] == 5288548
