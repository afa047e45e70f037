"""Analytic flops / params / acts of a ModelSpec, without torch (NOTES §2).

Mirrors `dsd.model` layer by layer (pycls's `complexity()` pattern): each counter below has
the same name and arguments as the module factory it counts. Conventions: flops are conv and
linear multiply-adds; params count conv/linear weights and biases plus BN γ, β; acts are the
output sizes of conv and linear layers. BN, activations, pooling, the residual add and the SE
multiply count 0.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from .spec import ModelSpec


@dataclass(frozen=True)
class Cx:
    """Running complexity: current spatial size h (square) and the three counters."""

    h: int
    flops: int = 0
    params: int = 0
    acts: int = 0

    def __add__(self, other: "Cx") -> "Cx":
        return Cx(other.h, self.flops + other.flops, self.params + other.params,
                  self.acts + other.acts)

    def scaled(self, n: int) -> "Cx":
        """n copies of this increment (identical blocks of one stage)."""
        return Cx(self.h, self.flops * n, self.params * n, self.acts * n)


def conv(cx: Cx, w_in: int, w_out: int, k: int, *, stride: int = 1, groups: int = 1,
         bias: bool = False) -> Cx:
    h = (cx.h - 1) // stride + 1
    flops = k * k * w_in * w_out * h * h // groups + (w_out * h * h if bias else 0)
    params = k * k * w_in * w_out // groups + (w_out if bias else 0)
    return Cx(h, cx.flops + flops, cx.params + params, cx.acts + w_out * h * h)


def bn(cx: Cx, w: int) -> Cx:
    return replace(cx, params=cx.params + 2 * w)


def linear(cx: Cx, w_in: int, w_out: int) -> Cx:
    return Cx(1, cx.flops + w_in * w_out + w_out, cx.params + w_in * w_out + w_out,
              cx.acts + w_out)


def se(cx: Cx, w: int, w_se: int) -> Cx:
    """Squeeze-excitation on a w-channel map: pool, 1×1 (bias), ReLU, 1×1 (bias), sigmoid."""
    h = cx.h
    cx = conv(replace(cx, h=1), w, w_se, 1, bias=True)
    cx = conv(cx, w_se, w, 1, bias=True)
    return replace(cx, h=h)


def stem(cx: Cx, w_out: int, stride: int) -> Cx:
    return bn(conv(cx, 3, w_out, 3, stride=stride), w_out)


def block(cx: Cx, w_in: int, w_out: int, stride: int, b: int, g: int, se_ratio: float) -> Cx:
    """Residual bottleneck block (X; Y when se_ratio > 0), projection shortcut when needed."""
    w_b = round(w_out / b)
    h_in = cx.h
    cx = bn(conv(cx, w_in, w_b, 1), w_b)
    cx = bn(conv(cx, w_b, w_b, 3, stride=stride, groups=w_b // g), w_b)
    if se_ratio:
        cx = se(cx, w_b, round(se_ratio * w_in))
    cx = bn(conv(cx, w_b, w_out, 1), w_out)
    if w_in != w_out or stride != 1:
        proj = bn(conv(Cx(h_in), w_in, w_out, 1, stride=stride), w_out)
        cx = replace(proj, h=cx.h, flops=cx.flops + proj.flops, params=cx.params + proj.params,
                     acts=cx.acts + proj.acts)
    return cx


def head(cx: Cx, w_in: int, num_classes: int) -> Cx:
    return linear(replace(cx, h=1), w_in, num_classes)


def complexity(spec: ModelSpec) -> dict[str, int]:
    """{'flops', 'params', 'acts'} of the network at its own resolution (exact integers)."""
    cx = stem(Cx(spec.resolution), spec.stem_w, spec.stem_stride)
    w_in = spec.stem_w
    for s in spec.stages:
        first = block(Cx(cx.h), w_in, s.w, s.stride, s.b, s.g, spec.se_ratio)
        cx = cx + first
        if s.d > 1:  # the other d-1 blocks are identical: count one, multiply
            rest = block(Cx(cx.h), s.w, s.w, 1, s.b, s.g, spec.se_ratio)
            cx = cx + rest.scaled(s.d - 1)
        w_in = s.w
    cx = head(cx, w_in, spec.num_classes)
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts}
