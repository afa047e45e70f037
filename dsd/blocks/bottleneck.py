"""Residual bottleneck blocks: X (DDS §3.1; pycls `res_bottleneck_block`), Y = X + SE, and the
linear bottleneck (pycls `res_bottleneck_linear_block`: no activation after the add, shortcut
only where the shape is kept).

1×1 (w_in→w_b) BN act; k×k group conv (w_b→w_b, stride, groups w_b/g) BN act; [SE from the
block *input* width]; 1×1 (w_b→w_out) BN. w_b = round(w_out / b): b is the paper's bottleneck
ratio, pycls's BOT_MUL = 1/b; b < 1 is an inverted bottleneck (w_b > w_out).
"""
from __future__ import annotations

import math
from fractions import Fraction

from ..errors import DsdError
from . import BlockArgs, BlockType, register
from .layers import (Cx, bn, bn_cx, conv, conv_cx, projection, projection_cx, residual, se,
                     se_cx, seq)


def bottleneck_width(w_out: int, b) -> int:
    """round(w_out / b), exactly (half to even); integer b in plain arithmetic (fast)."""
    if type(b) is int:
        return round(w_out / b)
    return round(Fraction(w_out) / Fraction(b))


def compatible_bottleneck(w: int, b, g: int) -> tuple[int, int | Fraction, int]:
    """pycls's `adjust_block_compatibility` in dsd's terms (NOTES §1): the bottleneck width
    v = w/b becomes a multiple of m = g (b ≥ 1) or lcm(g, 1/b) (b = 1/n < 1), g ≤ v, and
    w = v·b. Rounding half-to-even, as the reference."""
    if type(b) is int and b >= 1 and w >= 1 and g >= 1:  # the common case in plain arithmetic
        v = max(1, w // b)
        g = min(g, v)
        v = max(g, round(v / g) * g)
        return v * b, b, g
    b = Fraction(b)
    if b <= 0 or w < 1 or g < 1:
        raise DsdError(f"w, b, g must be positive, got w={w}, b={b}, g={g}")
    mul = 1 / b  # pycls's bot_mul
    if mul > 1 and mul.denominator != 1:
        raise DsdError(f"bottleneck ratio b={b}: below 1 it must be 1/n (pycls BOT_MUL an "
                       f"integer), e.g. 1/2, 1/4")
    v = max(1, int(w * mul))
    g = min(g, v)
    m = math.lcm(g, int(mul)) if mul > 1 else g
    v = max(m, round(Fraction(v, m)) * m)
    b = int(b) if b.denominator == 1 else b
    return int(v * Fraction(b)), b, int(g)


@register
class X(BlockType):
    name = "x"
    aliases = ("res_bottleneck_block",)
    uses = ("b", "g")
    se = "never"
    description = "residual bottleneck with group conv (DDS X block)"
    has_shortcut_proj = True

    def validate(self, w_in, w_out, stride, a: BlockArgs):
        why = super().validate(w_in, w_out, stride, a)
        if why:
            return why
        if not a.b > 0:
            return f"bottleneck ratio b={a.b} must be > 0"
        w_b = bottleneck_width(w_out, a.b)
        if w_b < 1 or a.g < 1 or w_b % a.g:
            return (f"group width g={a.g} must divide the bottleneck width {w_b} "
                    f"(w={w_out}, b={a.b})")
        if a.se_ratio and round(a.se_ratio * w_in) < 1:
            return f"SE width round({a.se_ratio}·{w_in}) is 0"
        return None

    def compatible(self, w, b, g):
        return compatible_bottleneck(w, b, g)

    def _transform(self, w_in, w_out, stride, a: BlockArgs):
        w_b = bottleneck_width(w_out, a.b)
        f = [conv(w_in, w_b, 1), bn(w_b), _act(a),
             conv(w_b, w_b, 3, stride=stride, groups=w_b // a.g), bn(w_b), _act(a)]
        if a.se_ratio:
            f.append(se(w_b, round(a.se_ratio * w_in), a.activation))
        f += [conv(w_b, w_out, 1), bn(w_out, final=True)]
        return seq(*f)

    def _transform_cx(self, cx: Cx, w_in, w_out, stride, a: BlockArgs) -> Cx:
        w_b = bottleneck_width(w_out, a.b)
        cx = bn_cx(conv_cx(cx, w_in, w_b, 1), w_b)
        cx = bn_cx(conv_cx(cx, w_b, w_b, 3, stride=stride, groups=w_b // a.g), w_b)
        if a.se_ratio:
            cx = se_cx(cx, w_b, round(a.se_ratio * w_in))
        return bn_cx(conv_cx(cx, w_b, w_out, 1), w_out)

    def build(self, w_in, w_out, stride, a: BlockArgs):
        f = self._transform(w_in, w_out, stride, a)
        return residual(f, proj=projection(w_in, w_out, stride), activation=a.activation)

    def count(self, cx: Cx, w_in, w_out, stride, a: BlockArgs) -> Cx:
        return projection_cx(self._transform_cx(cx, w_in, w_out, stride, a), cx.h, w_in, w_out,
                             stride)

    def fast_flops(self, h, w_in, w_out, stride, a: BlockArgs) -> int:
        """`count(...).flops` in plain integer arithmetic (the sampler's prefilter)."""
        w_b = bottleneck_width(w_out, a.b)
        h2 = (h - 1) // stride + 1
        f = w_in * w_b * h * h  # 1×1 a
        f += 9 * w_b * w_b * h2 * h2 // (w_b // a.g)  # 3×3 group conv
        if a.se_ratio:
            w_se = round(a.se_ratio * w_in)
            f += 2 * w_b * w_se + w_se + w_b  # two biased 1×1 convs at 1×1
        f += w_b * w_out * h2 * h2  # 1×1 c
        if w_in != w_out or stride != 1:
            f += w_in * w_out * h2 * h2  # projection shortcut
        return f


@register
class Y(X):
    name = "y"
    aliases = ()
    se = "required"
    description = "X block + squeeze-excitation (DDS RegNetY)"


@register
class Linear(X):
    name = "linear"
    aliases = ("res_bottleneck_linear_block",)
    se = "optional"
    description = "linear bottleneck: no activation after the add, no projection shortcut"

    def build(self, w_in, w_out, stride, a: BlockArgs):
        return residual(self._transform(w_in, w_out, stride, a),
                        skip=w_in == w_out and stride == 1)

    def count(self, cx: Cx, w_in, w_out, stride, a: BlockArgs) -> Cx:
        return self._transform_cx(cx, w_in, w_out, stride, a)

    def fast_flops(self, h, w_in, w_out, stride, a: BlockArgs) -> int:
        return BlockType.fast_flops(self, h, w_in, w_out, stride, a)


def _act(a: BlockArgs):
    from .layers import act

    return act(a.activation)
