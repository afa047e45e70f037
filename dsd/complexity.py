"""Analytic flops / params / acts of a ModelSpec, without torch (NOTES §2).

Mirrors `dsd.model` layer by layer (pycls's `complexity()` pattern): each counter below has
the same name and arguments as the module factory it counts. Conventions: flops are conv and
linear multiply-adds; params count conv/linear weights and biases plus BN γ, β; acts are the
output sizes of conv and linear layers. BN, activations, pooling, the residual add and the SE
multiply count 0.
"""
from __future__ import annotations

from typing import NamedTuple

from .spec import ModelSpec


class Cx(NamedTuple):
    """Running complexity: current spatial size h (square) and the three counters."""

    h: int
    flops: int = 0
    params: int = 0
    acts: int = 0

    def plus(self, other: "Cx", n: int = 1) -> "Cx":
        """This plus n copies of an increment `other` (identical blocks of a stage); h of other."""
        return Cx(other.h, self.flops + n * other.flops, self.params + n * other.params,
                  self.acts + n * other.acts)


def conv(cx: Cx, w_in: int, w_out: int, k: int, *, stride: int = 1, groups: int = 1,
         bias: bool = False) -> Cx:
    h = (cx.h - 1) // stride + 1
    flops = k * k * w_in * w_out * h * h // groups + (w_out * h * h if bias else 0)
    params = k * k * w_in * w_out // groups + (w_out if bias else 0)
    return Cx(h, cx.flops + flops, cx.params + params, cx.acts + w_out * h * h)


def bn(cx: Cx, w: int) -> Cx:
    return Cx(cx.h, cx.flops, cx.params + 2 * w, cx.acts)


def linear(cx: Cx, w_in: int, w_out: int) -> Cx:
    return Cx(1, cx.flops + w_in * w_out + w_out, cx.params + w_in * w_out + w_out,
              cx.acts + w_out)


def se(cx: Cx, w: int, w_se: int) -> Cx:
    """Squeeze-excitation on a w-channel map: pool, 1×1 (bias), ReLU, 1×1 (bias), sigmoid."""
    pooled = conv(conv(Cx(1, cx.flops, cx.params, cx.acts), w, w_se, 1, bias=True), w_se, w, 1,
                  bias=True)
    return Cx(cx.h, pooled.flops, pooled.params, pooled.acts)


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
        proj = bn(conv(Cx(h_in, cx.flops, cx.params, cx.acts), w_in, w_out, 1, stride=stride),
                  w_out)
        cx = Cx(cx.h, proj.flops, proj.params, proj.acts)
    return cx


def head(cx: Cx, w_in: int, num_classes: int) -> Cx:
    return linear(Cx(1, cx.flops, cx.params, cx.acts), w_in, num_classes)


def complexity(spec: ModelSpec) -> dict[str, int]:
    """{'flops', 'params', 'acts'} of the network at its own resolution (exact integers)."""
    cx = stem(Cx(spec.resolution), spec.stem_w, spec.stem_stride)
    w_in = spec.stem_w
    for s in spec.stages:
        cx = block(cx, w_in, s.w, s.stride, s.b, s.g, spec.se_ratio)
        if s.d > 1:  # the other d-1 blocks are identical: count one, multiply
            cx = cx.plus(block(Cx(cx.h), s.w, s.w, 1, s.b, s.g, spec.se_ratio), s.d - 1)
        w_in = s.w
    cx = head(cx, w_in, spec.num_classes)
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts}


def flops(spec: ModelSpec) -> int:
    """complexity(spec)['flops'] in plain integer arithmetic, about 10× faster.

    The sampler's prefilter (most candidates fall outside the window). Same terms as the
    layer-by-layer count above; tests/test_sample.py pins the two equal on every space.
    """
    h = (spec.resolution - 1) // spec.stem_stride + 1
    total = 9 * 3 * spec.stem_w * h * h
    w_in = spec.stem_w
    for s in spec.stages:
        total += _block_flops(h, w_in, s.w, s.stride, s.b, s.g, spec.se_ratio)
        h = (h - 1) // s.stride + 1
        if s.d > 1:
            total += (s.d - 1) * _block_flops(h, s.w, s.w, 1, s.b, s.g, spec.se_ratio)
        w_in = s.w
    return total + w_in * spec.num_classes + spec.num_classes


def _block_flops(h: int, w_in: int, w_out: int, stride: int, b: int, g: int,
                 se_ratio: float) -> int:
    w_b = round(w_out / b)
    h2 = (h - 1) // stride + 1
    f = w_in * w_b * h * h  # 1×1 a
    f += 9 * w_b * w_b * h2 * h2 // (w_b // g)  # 3×3 group conv
    if se_ratio:
        w_se = round(se_ratio * w_in)
        f += 2 * w_b * w_se + w_se + w_b  # two biased 1×1 convs at 1×1
    f += w_b * w_out * h2 * h2  # 1×1 c
    if w_in != w_out or stride != 1:
        f += w_in * w_out * h2 * h2  # projection shortcut
    return f
