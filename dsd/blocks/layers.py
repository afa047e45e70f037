"""The two halves every block is written in, side by side: analytic counters (`*_cx`, plain
integers, no torch) and module factories (import torch only when called).

A block's `count` and `build` read alike line by line, as pycls keeps `complexity()` beside
`__init__`: `conv_cx(cx, w_in, w_b, 1)` counts what `conv(w_in, w_b, 1)` builds. Conventions
(NOTES §2, pycls): flops are conv and linear multiply-adds; params are conv/linear weights and
biases plus BN γ, β; acts are the output sizes of conv, linear and max-pool layers. BN,
activations, average pooling, the residual add and the SE multiply count 0.
"""
from __future__ import annotations

from typing import NamedTuple

#: Activation names a space or spec may use (pycls MODEL.ACTIVATION_FUN), and their aliases.
ACTIVATIONS = ("relu", "silu", "gelu")
ACTIVATION_ALIASES = {"swish": "silu"}


class Cx(NamedTuple):
    """Running complexity: current spatial size h (square maps) and the three counters."""

    h: int
    flops: int = 0
    params: int = 0
    acts: int = 0

    def plus(self, other: "Cx", n: int = 1) -> "Cx":
        """This plus n copies of an increment `other` (identical blocks of a stage); h of other."""
        return Cx(other.h, self.flops + n * other.flops, self.params + n * other.params,
                  self.acts + n * other.acts)

    def at(self, h: int) -> "Cx":
        """The same counters at spatial size h (a branch that starts from an earlier map)."""
        return Cx(h, self.flops, self.params, self.acts)


# --------------------------------------------------------------------------------------------
# Counters


def conv_cx(cx: Cx, w_in: int, w_out: int, k: int, *, stride: int = 1, groups: int = 1,
            bias: bool = False) -> Cx:
    h = (cx.h - 1) // stride + 1
    flops = k * k * w_in * w_out * h * h // groups + (w_out * h * h if bias else 0)
    params = k * k * w_in * w_out // groups + (w_out if bias else 0)
    return Cx(h, cx.flops + flops, cx.params + params, cx.acts + w_out * h * h)


def bn_cx(cx: Cx, w: int) -> Cx:
    return Cx(cx.h, cx.flops, cx.params + 2 * w, cx.acts)


def maxpool_cx(cx: Cx, w: int, k: int, *, stride: int) -> Cx:
    h = (cx.h - 1) // stride + 1
    return Cx(h, cx.flops, cx.params, cx.acts + w * h * h)


def linear_cx(cx: Cx, w_in: int, w_out: int) -> Cx:
    """A biased linear layer on a pooled (1×1) input."""
    return Cx(1, cx.flops + w_in * w_out + w_out, cx.params + w_in * w_out + w_out,
              cx.acts + w_out)


def se_cx(cx: Cx, w: int, w_se: int) -> Cx:
    """Squeeze-excitation on a w-channel map: pool, 1×1 (bias), act, 1×1 (bias), sigmoid."""
    pooled = conv_cx(conv_cx(cx.at(1), w, w_se, 1, bias=True), w_se, w, 1, bias=True)
    return pooled.at(cx.h)


def projection_cx(cx: Cx, h_in: int, w_in: int, w_out: int, stride: int) -> Cx:
    """`projection`'s count, from the block input's size h_in (adds nothing where None)."""
    if w_in == w_out and stride == 1:
        return cx
    return bn_cx(conv_cx(cx.at(h_in), w_in, w_out, 1, stride=stride), w_out)


# --------------------------------------------------------------------------------------------
# Module factories (torch imported on first use, so counting never imports it)


def conv(w_in: int, w_out: int, k: int, *, stride: int = 1, groups: int = 1, bias: bool = False):
    from torch import nn

    if k % 2 != 1:
        raise ValueError(f"kernel size {k}: only odd sizes (padding (k-1)/2)")
    return nn.Conv2d(w_in, w_out, k, stride=stride, padding=(k - 1) // 2, groups=groups,
                     bias=bias)


def bn(w: int, *, final: bool = False):
    """BatchNorm2d; `final` marks a residual branch's last BN (zero-init-last-BN, fused kernels)."""
    from torch import nn

    m = nn.BatchNorm2d(w)
    if final:
        m.final_bn = True
    return m


def act(name: str):
    from torch import nn

    return {"relu": lambda: nn.ReLU(inplace=True), "silu": nn.SiLU, "gelu": nn.GELU}[name]()


def maxpool(k: int, *, stride: int):
    from torch import nn

    return nn.MaxPool2d(k, stride=stride, padding=(k - 1) // 2)


def seq(*layers):
    from torch import nn

    return nn.Sequential(*layers)


def se(w: int, w_se: int, activation: str):
    from ._modules import SE

    return SE(w, w_se, activation)


def projection(w_in: int, w_out: int, stride: int):
    """The residual shortcut's 1×1 conv (stride) + BN where the shape changes, else None."""
    if w_in == w_out and stride == 1:
        return None
    return seq(conv(w_in, w_out, 1, stride=stride), bn(w_out))


def residual(f, *, proj=None, activation: str | None = None, skip: bool = True):
    """`act(shortcut(x) + f(x))`: shortcut = proj or identity; no activation when None;
    `skip=False` is f(x) alone (a block without a shortcut at this shape)."""
    from ._modules import Residual

    return Residual(f, proj=proj, af=act(activation) if activation else None, skip=skip)
