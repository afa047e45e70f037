"""dsd's own Triton kernels for the layers that dominate a sampled CIFAR model's step, swapped in
per model (`train(kernels=…)`, `dsd train --kernels`); off by default until a 10-epoch GPU
benchmark shows they win.

  bn     batch norm + ReLU, and a block's final BN + residual add + ReLU (`bn_relu.py`)
"""
from __future__ import annotations

import os

import torch
from torch import nn

from ...errors import DsdError

KERNELS = ("bn",)
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"   # Triton on CPU tensors (tests)


def runs_here(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether a swapped-in layer takes its Triton path: training, on a 4-D channels_last
    tensor that Triton can reach (CUDA, or CPU under Triton's interpreter)."""
    return (module.training and (x.is_cuda or INTERPRET) and x.dim() == 4
            and x.is_contiguous(memory_format=torch.channels_last))


def check_kernels(names) -> tuple[str, ...]:
    """The kernel names, validated (one-line error naming what is allowed)."""
    names = tuple(names or ())
    bad = [k for k in names if k not in KERNELS]
    if bad:
        raise DsdError(f"kernels: unknown {', '.join(bad)}; allowed: {', '.join(KERNELS)}")
    return names


def use_kernels(model: nn.Module, names) -> nn.Module:
    """`model` with the named kernels swapped in, in place (parameters and state_dict kept)."""
    names = check_kernels(names)
    if "bn" in names:
        from .bn_relu import fuse_bn_relu
        fuse_bn_relu(model)
    return model
