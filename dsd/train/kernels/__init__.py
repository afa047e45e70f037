"""dsd's own implementations of the layers that dominate a sampled CIFAR model's step, swapped in
per model on CUDA (`train(kernels=…)`, `dsd train --kernels`). Both are on by default (bn where
Triton is installed): together they cut the 10-epoch benchmark's wall time by 15 % (BENCHMARKS.md).

  bn     Triton: batch norm + ReLU, and a block's final BN + residual add + ReLU (`bn_relu.py`)
  nchw   grouped convolutions with ≤ 2 channels per group run in NCHW (`nchw_conv.py`)
"""
from __future__ import annotations

import importlib.util
import os

import torch
from torch import nn

from ...errors import DsdError

KERNELS = ("bn", "nchw")
INTERPRET = os.environ.get("TRITON_INTERPRET") == "1"   # Triton on CPU tensors (tests)


def runs_here(module: nn.Module, x: torch.Tensor) -> bool:
    """Whether a swapped-in layer takes its Triton path: training, on a 4-D channels_last
    tensor that Triton can reach (CUDA, or CPU under Triton's interpreter)."""
    return (module.training and (x.is_cuda or INTERPRET) and x.dim() == 4
            and x.is_contiguous(memory_format=torch.channels_last))


def default_kernels() -> tuple[str, ...]:
    """What `dsd train` swaps in unless told otherwise: nchw, and bn where Triton is installed."""
    return ("bn", "nchw") if importlib.util.find_spec("triton") else ("nchw",)


def check_kernels(names) -> tuple[str, ...]:
    """The kernel names, validated (one-line error naming what is allowed)."""
    names = tuple(names or ())
    bad = [k for k in names if k not in KERNELS]
    if bad:
        raise DsdError(f"kernels: unknown {', '.join(bad)}; allowed: {', '.join(KERNELS)}")
    return names


def use_kernels(model: nn.Module, names) -> nn.Module:
    """`model` with the named kernels swapped in, in place (parameters and state_dict kept)."""
    swap_kernels(model, names)
    return model


def swap_kernels(model: nn.Module, names) -> tuple[str, ...]:
    """Swap the named kernels into `model` in place; returns those that applied somewhere.

    Each kernel asks the model's layers whether it fits them (the BN + ReLU kernel needs a ReLU,
    so a SiLU network keeps the plain path); provenance records what applied, not what was
    asked for."""
    names = check_kernels(names)
    applied = []
    if "bn" in names:
        from .bn_relu import fuse_bn_relu
        if fuse_bn_relu(model):
            applied.append("bn")
    if "nchw" in names:
        from .nchw_conv import nchw_narrow_convs
        if nchw_narrow_convs(model):
            applied.append("nchw")
    return tuple(applied)
