"""dsd's Triton kernels (dsd/train/kernels/) against the PyTorch layers they replace, run by
Triton's CPU interpreter in a subprocess (TRITON_INTERPRET must be set before the kernels are
defined): fused BN(+add)+ReLU, alone and in a whole model."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from dsd.errors import DsdError

pytest.importorskip("triton")


def interpret(code: str) -> None:
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0 and "ok" in res.stdout, res.stdout + res.stderr


def test_bn_relu_matches_batchnorm_add_relu():
    interpret("""
        import torch
        from torch import nn
        from dsd.train.kernels.bn_relu import BatchNormReLU

        torch.manual_seed(0)
        worst = 0.0
        # one split; several with a ragged last one; channels not a multiple of 32; + residual
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
            r1, r2 = (r.clone().requires_grad_(), r.clone().requires_grad_()) if residual \\
                else (0, None)
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
        print("ok")
    """)


def test_swapped_layers_keep_the_model_and_its_state():
    """Without a GPU the swapped layers run PyTorch's own code: the same step, keys, outputs."""
    import torch

    from dsd import make_spec
    from dsd.model import build
    from dsd.train.kernels import use_kernels

    spec = make_spec([2, 2, 1, 1], [8, 16, 24, 32], [1] * 4, [4] * 4, dataset="cifar10")
    torch.manual_seed(1)
    native = build(spec)
    fast = use_kernels(build(spec), ("bn",))
    fast.load_state_dict(native.state_dict())
    assert list(fast.state_dict()) == list(native.state_dict())
    x, y = torch.randn(2, 3, 32, 32), torch.tensor([1, 7])
    for m in (native, fast):
        torch.nn.functional.cross_entropy(m(x), y).backward()
    for a, b in zip(native.parameters(), fast.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6)


@pytest.mark.slow  # ~45 s: the whole model through Triton's interpreter
def test_a_model_with_fused_bn_trains_and_evaluates_like_pytorch():
    interpret("""
        import torch
        from dsd import make_spec
        from dsd.model import build
        from dsd.train.kernels import use_kernels
        from dsd.train.kernels.bn_relu import BatchNormReLU

        spec = make_spec([2, 2, 1, 1], [8, 16, 24, 32], [1] * 4, [4] * 4, dataset="cifar10")
        torch.manual_seed(1)
        native = build(spec).to(memory_format=torch.channels_last)
        fast = use_kernels(build(spec), ("bn",)).to(memory_format=torch.channels_last)
        fast.load_state_dict(native.state_dict())
        assert list(fast.state_dict()) == list(native.state_dict())
        assert sum(isinstance(m, BatchNormReLU) for m in fast.modules()) == 19  # stem, 3 a block
        x = torch.randn(2, 3, 32, 32).to(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (2,))
        for m in (native, fast):
            torch.nn.functional.cross_entropy(m(x), y).backward()
        for (name, a), b in zip(native.named_parameters(), fast.parameters()):
            err = (a.grad - b.grad).abs().max() / (1e-3 + a.grad.abs().max())
            assert err < 1e-4, (name, err)     # summation order differs, nothing else
        native.eval(), fast.eval()
        assert torch.allclose(native(x), fast(x), atol=1e-5)
        print("ok")
    """)


def test_unknown_kernels_are_a_one_line_error(monkeypatch):
    import importlib.util

    from dsd.train.kernels import check_kernels, default_kernels

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    assert default_kernels() == ("bn", "nchw")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert default_kernels() == ("nchw",)   # no Triton: no bn

    assert check_kernels(None) == () and check_kernels(["bn"]) == ("bn",)
    with pytest.raises(DsdError, match="kernels: unknown gconv; allowed: bn, nchw"):
        check_kernels(["gconv"])


def test_narrow_grouped_convs_run_in_nchw_inside_a_channels_last_model():
    """nchw: only convolutions with <= 2 channels per group are swapped; their weights stay
    contiguous through .to(channels_last), keys and results are unchanged, output is
    channels_last again."""
    import torch

    from dsd import make_spec
    from dsd.model import build
    from dsd.train.kernels import use_kernels
    from dsd.train.kernels.nchw_conv import NchwConv2d

    # group widths 2, 4, 8, 16: only the first stage's 3x3 convolution is swapped
    spec = make_spec([1, 2, 1, 1], [16, 32, 64, 128], [1] * 4, [2, 4, 8, 16], dataset="cifar10")
    torch.manual_seed(1)
    cl = torch.channels_last
    native = build(spec).to(memory_format=cl)
    fast = use_kernels(build(spec), ("nchw",)).to(memory_format=cl)
    fast.load_state_dict(native.state_dict())
    assert list(fast.state_dict()) == list(native.state_dict())
    swapped = [m for m in fast.modules() if isinstance(m, NchwConv2d)]
    assert [m.in_channels // m.groups for m in swapped] == [2]
    assert all(m.weight.is_contiguous() for m in swapped)
    x = torch.randn(4, 16, 32, 32).to(memory_format=cl)
    out = swapped[0](x)
    assert out.is_contiguous(memory_format=cl)
    x, y = torch.randn(2, 3, 32, 32).to(memory_format=cl), torch.tensor([1, 7])
    for m in (native, fast):
        torch.nn.functional.cross_entropy(m(x), y).backward()
    for a, b in zip(native.parameters(), fast.parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-5)
