"""Grouped 3×3 convolutions with few channels per group, run in NCHW inside a channels_last model.

For 2 channels per group cuDNN's NCHW kernels are 2.3× faster than its channels_last ones
(forward + backward, bf16, batch 128; `bench_train.py convs`, BENCHMARKS.md), while batch norm
and the dense 1×1 convolutions stay faster in channels_last. The layout changes around each such
convolution cost two small copies each way.
"""
from __future__ import annotations

import torch
from torch import nn

MAX_GROUP_WIDTH = 2   # channels per group at or below which NCHW is used (4 loses: BENCHMARKS.md)


class NchwConv2d(nn.Conv2d):
    """nn.Conv2d whose weight stays NCHW (contiguous) and that runs a channels_last input in
    NCHW, returning channels_last; anything else runs as nn.Conv2d does."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or not x.is_contiguous(memory_format=torch.channels_last):
            return super().forward(x)
        return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)

    def _apply(self, fn, recurse=True):
        # model.to(memory_format=channels_last) converts every 4-D weight; a channels_last weight
        # would make cuDNN pick its channels_last kernels again, so keep this one contiguous
        super()._apply(fn, recurse)
        if not self.weight.is_contiguous():
            self.weight.data = self.weight.data.contiguous()
        return self


def is_narrow_grouped(m: nn.Module) -> bool:
    """A grouped convolution with at most MAX_GROUP_WIDTH input channels per group."""
    return (type(m) is nn.Conv2d and m.groups > 1
            and m.in_channels // m.groups <= MAX_GROUP_WIDTH)


def nchw_narrow_convs(model: nn.Module) -> int:
    """In place: every narrow grouped convolution becomes an NchwConv2d sharing its parameters
    (state_dict keys kept); returns how many were swapped."""
    swapped = 0
    for parent in list(model.modules()):
        for name, m in list(parent.named_children()):
            if is_narrow_grouped(m):
                new = NchwConv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride,
                                 m.padding, m.dilation, m.groups, m.bias is not None,
                                 m.padding_mode, device=m.weight.device, dtype=m.weight.dtype)
                new.weight = m.weight
                new.bias = m.bias
                setattr(parent, name, new)
                swapped += 1
    return swapped
