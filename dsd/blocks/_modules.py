"""The torch modules the block factories compose (imported only when a model is built)."""
from __future__ import annotations

from torch import nn

from .layers import act, conv


class SE(nn.Module):
    """Squeeze-excitation: pool, 1×1 (bias), act, 1×1 (bias), sigmoid, channel multiply."""

    def __init__(self, w: int, w_se: int, activation: str = "relu"):
        super().__init__()
        self.f = nn.Sequential(nn.AdaptiveAvgPool2d(1), conv(w, w_se, 1, bias=True),
                               act(activation), conv(w_se, w, 1, bias=True), nn.Sigmoid())

    def forward(self, x):
        return x * self.f(x)


class Residual(nn.Module):
    """`af(shortcut + f(x))`, shortcut = `proj(x)` or x; `skip=False`: f(x) alone.

    When `f` ends in a BN that takes the shortcut (`fuses_residual`, train/kernels), the BN,
    the add and the ReLU run as one kernel; `fusion_applies` says whether that can be so."""

    def __init__(self, f: nn.Sequential, *, proj: nn.Module | None = None,
                 af: nn.Module | None = None, skip: bool = True):
        super().__init__()
        self.f, self.proj, self.af, self.skip = f, proj, af, skip

    @property
    def fusion_applies(self) -> bool:
        """BN + add + ReLU fuse: a shortcut, a final BN and a ReLU after the add."""
        return (self.skip and isinstance(self.af, nn.ReLU)
                and isinstance(self.f[-1], nn.BatchNorm2d))

    def forward(self, x):
        if not self.skip:
            return self.f(x)
        shortcut = x if self.proj is None else self.proj(x)
        if getattr(self.f[-1], "fuses_residual", False):
            return self.f[-1](self.f[:-1](x), shortcut)
        y = shortcut + self.f(x)
        return y if self.af is None else self.af(y)


class Head(nn.Module):
    """[1×1 conv to head_w, BN, act], global average pool, linear (bias)."""

    def __init__(self, w_in: int, num_classes: int, head_w: int = 0, activation: str = "relu"):
        super().__init__()
        self.head_w = head_w
        if head_w:
            self.conv, self.bn, self.af = conv(w_in, head_w, 1), nn.BatchNorm2d(head_w), act(
                activation)
            w_in = head_w
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w_in, num_classes)

    def forward(self, x):
        if self.head_w:
            x = self.af(self.bn(self.conv(x)))
        return self.fc(self.pool(x).flatten(1))
