"""The fused BN(+add)+ReLU kernels (dsd/train/fused.py) against nn.BatchNorm2d (+ add) + ReLU,
run by Triton's CPU interpreter in a subprocess (TRITON_INTERPRET must be set before the kernels
are defined)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("triton")

CHECK = textwrap.dedent("""
    import torch
    from torch import nn
    from dsd import make_spec
    from dsd.model import build
    from dsd.train.fused import BatchNormReLU, fuse_bn_relu

    torch.manual_seed(0)
    worst = 0.0
    # one split; several splits with a ragged last block; channels not a multiple of 32
    for shape, residual in [((4, 24, 5, 7), False), ((2, 8, 33, 33), False),
                            ((3, 70, 16, 16), False), ((2, 8, 33, 33), True),
                            ((3, 40, 6, 6), True)]:
        x = (torch.randn(*shape) * 3 + 1.5).to(memory_format=torch.channels_last)
        r = torch.randn(*shape).to(memory_format=torch.channels_last) if residual else None
        ref = nn.BatchNorm2d(shape[1])
        ref.weight.data.uniform_(0.5, 1.5)
        ref.bias.data.uniform_(-0.5, 0.5)
        fused = BatchNormReLU(shape[1])
        fused.load_state_dict(ref.state_dict())
        x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
        r1, r2 = (r.clone().requires_grad_(), r.clone().requires_grad_()) if residual else (0, None)
        y1, y2 = torch.relu(ref(x1) + r1), fused(x2, r2)
        g = torch.randn_like(y1)
        y1.backward(g)
        y2.backward(g)
        assert y2.is_contiguous(memory_format=torch.channels_last)
        assert int(fused.num_batches_tracked) == 1
        pairs = [(y1, y2), (x1.grad, x2.grad), (ref.weight.grad, fused.weight.grad),
                 (ref.bias.grad, fused.bias.grad), (ref.running_mean, fused.running_mean),
                 (ref.running_var, fused.running_var)]
        for a, b in pairs + ([(r1.grad, r2.grad)] if residual else []):
            worst = max(worst, ((a - b).abs().max() / (1 + b.abs().max())).item())
    assert worst < 1e-5, worst

    # a whole model: the same keys, the same training step, the same evaluation
    spec = make_spec([1, 2, 1, 1], [8, 16, 24, 32], [1] * 4, [8] * 4, dataset="cifar10")
    torch.manual_seed(1)
    native = build(spec).to(memory_format=torch.channels_last)
    fused = fuse_bn_relu(build(spec).to(memory_format=torch.channels_last))
    fused.load_state_dict(native.state_dict())
    assert list(fused.state_dict()) == list(native.state_dict())
    assert sum(isinstance(m, BatchNormReLU) for m in fused.modules()) == 16  # stem + 3 per block
    x = torch.randn(4, 3, 32, 32).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (4,))
    for m in (native, fused):
        torch.nn.functional.cross_entropy(m(x), y).backward()
    for (name, a), b in zip(native.named_parameters(), fused.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5, rtol=1e-4), name
    native.eval(), fused.eval()
    assert torch.allclose(native(x), fused(x), atol=1e-6)
    print("ok", worst)
""")


def test_fused_bn_relu_matches_batchnorm_then_relu():
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stdout + res.stderr
