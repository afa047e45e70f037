"""Mobile inverted bottleneck (MBConv; pycls `effnet.MBConv`, EfficientNet, MobileNetV2 when
se_ratio = 0).

[1×1 expand (w_in→w_exp) BN act, when w_exp ≠ w_in]; k×k depthwise (stride) BN act; [SE of
width int(w_in·se_ratio)]; 1×1 linear projection (w_exp→w_out) BN; identity shortcut when the
shape is kept. w_exp = int(w_in / b): b = 1/expansion ratio (EfficientNet's 6 is b = 1/6).
Drop-connect (training only) is not modelled: logits in eval mode equal pycls's.
"""
from __future__ import annotations

from fractions import Fraction

from . import BlockArgs, BlockType, register
from .layers import Cx, act, bn, bn_cx, conv, conv_cx, residual, se, se_cx, seq


def expanded_width(w_in: int, b) -> int:
    return int(Fraction(w_in) / Fraction(b))


@register
class MBConv(BlockType):
    name = "mbconv"
    aliases = ("mb_conv", "MBConv")
    uses = ("b", "k")
    se = "optional"
    description = "mobile inverted bottleneck: expand, k×k depthwise, SE, linear projection"

    def validate(self, w_in, w_out, stride, a: BlockArgs):
        why = super().validate(w_in, w_out, stride, a)
        if why:
            return why
        if not a.b > 0 or expanded_width(w_in, a.b) < 1:
            return f"b={a.b}: the expanded width int({w_in}/b) must be >= 1"
        if a.se_ratio and int(w_in * a.se_ratio) < 1:
            return f"SE width int({w_in}·{a.se_ratio}) is 0"
        return None

    def build(self, w_in, w_out, stride, a: BlockArgs):
        w_exp = expanded_width(w_in, a.b)
        f = []
        if w_exp != w_in:
            f += [conv(w_in, w_exp, 1), bn(w_exp), act(a.activation)]
        f += [conv(w_exp, w_exp, a.k, stride=stride, groups=w_exp), bn(w_exp),
              act(a.activation)]
        if a.se_ratio:
            f.append(se(w_exp, int(w_in * a.se_ratio), a.activation))
        f += [conv(w_exp, w_out, 1), bn(w_out, final=True)]
        return residual(seq(*f), skip=stride == 1 and w_in == w_out)

    def count(self, cx: Cx, w_in, w_out, stride, a: BlockArgs) -> Cx:
        w_exp = expanded_width(w_in, a.b)
        if w_exp != w_in:
            cx = bn_cx(conv_cx(cx, w_in, w_exp, 1), w_exp)
        cx = bn_cx(conv_cx(cx, w_exp, w_exp, a.k, stride=stride, groups=w_exp), w_exp)
        if a.se_ratio:
            cx = se_cx(cx, w_exp, int(w_in * a.se_ratio))
        return bn_cx(conv_cx(cx, w_exp, w_out, 1), w_out)
