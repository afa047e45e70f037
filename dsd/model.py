"""build(spec) → torch.nn.Module: the AnyNet of DDS §3.1 / NOTES §1, mirrored by `complexity`.

Same structure as pycls `anynet.py`: stem (3×3 conv, BN, ReLU) → stages of residual bottleneck
blocks (X; Y adds squeeze-excitation sized from the block *input* width) → global pool + linear.
Init as the reference: conv N(0, sqrt(2/fan_out)), BN γ=1 β=0, linear N(0, 0.01), bias 0.
`zero_init_last_bn` sets each block's final BN γ to 0 (Goyal et al.; a training-recipe option).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .spec import ModelSpec


def conv(w_in: int, w_out: int, k: int, *, stride: int = 1, groups: int = 1,
         bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(w_in, w_out, k, stride=stride, padding=(k - 1) // 2, groups=groups, bias=bias)


def bn(w: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(w)


class SE(nn.Module):
    """Squeeze-excitation: pool, 1×1 (bias), ReLU, 1×1 (bias), sigmoid, channel multiply."""

    def __init__(self, w: int, w_se: int):
        super().__init__()
        self.f = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(w, w_se, 1, bias=True),
                               nn.ReLU(inplace=True), conv(w_se, w, 1, bias=True), nn.Sigmoid())

    def forward(self, x):
        return x * self.f(x)


class Stem(nn.Sequential):
    def __init__(self, w_out: int, stride: int):
        super().__init__(conv(3, w_out, 3, stride=stride), bn(w_out), nn.ReLU(inplace=True))


class Block(nn.Module):
    """Residual bottleneck block (X; Y when se_ratio > 0), projection shortcut when needed."""

    def __init__(self, w_in: int, w_out: int, stride: int, b: int, g: int, se_ratio: float):
        super().__init__()
        w_b = round(w_out / b)
        layers = [conv(w_in, w_b, 1), bn(w_b), nn.ReLU(inplace=True),
                  conv(w_b, w_b, 3, stride=stride, groups=w_b // g), bn(w_b), nn.ReLU(inplace=True)]
        if se_ratio:
            layers.append(SE(w_b, round(se_ratio * w_in)))
        layers += [conv(w_b, w_out, 1), bn(w_out)]
        self.f = nn.Sequential(*layers)
        self.f[-1].final_bn = True
        self.proj = None
        if w_in != w_out or stride != 1:
            self.proj = nn.Sequential(conv(w_in, w_out, 1, stride=stride), bn(w_out))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        shortcut = x if self.proj is None else self.proj(x)
        if getattr(self.f[-1], "fuses_residual", False):  # BN+add+ReLU in one (train/kernels)
            return self.f[-1](self.f[:-1](x), shortcut)
        return self.relu(shortcut + self.f(x))


class Head(nn.Module):
    def __init__(self, w_in: int, num_classes: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w_in, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(x), 1))


class AnyNet(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        self.stem = Stem(spec.stem_w, spec.stem_stride)
        stages, w_in = [], spec.stem_w
        for s in spec.stages:
            blocks = [Block(w_in if j == 0 else s.w, s.w, s.stride if j == 0 else 1, s.b, s.g,
                            spec.se_ratio) for j in range(s.d)]
            stages.append(nn.Sequential(*blocks))
            w_in = s.w
        self.stages = nn.Sequential(*stages)
        self.head = Head(w_in, spec.num_classes)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def init_weights(m: nn.Module, zero_init_last_bn: bool = False) -> None:
    """Reference (pycls) initialization of one module; use with `Module.apply`."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        m.weight.data.normal_(mean=0.0, std=math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            m.bias.data.zero_()
    elif isinstance(m, nn.BatchNorm2d):
        last = zero_init_last_bn and getattr(m, "final_bn", False)
        m.weight.data.fill_(0.0 if last else 1.0)
        m.bias.data.zero_()
    elif isinstance(m, nn.Linear):
        m.weight.data.normal_(mean=0.0, std=0.01)
        m.bias.data.zero_()


def build(spec: ModelSpec, *, zero_init_last_bn: bool = False) -> AnyNet:
    """The network of `spec`, initialized as the reference."""
    model = AnyNet(spec)
    model.apply(lambda m: init_weights(m, zero_init_last_bn))
    return model
