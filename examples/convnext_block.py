"""A ConvNeXt-style block for dsd (Liu et al., "A ConvNet for the 2020s"), registered from
outside the package: the README's "Adding a block" example.

    k×k depthwise conv, BN, 1×1 expand (w_in → w_in/b), GELU-or-the-space's activation,
    1×1 project (→ w_out), then the shortcut (identity, or a strided 1×1 conv + BN when the
    shape changes). BN stands in for ConvNeXt's LayerNorm; no layer scale.

Use it: `DSD_BLOCKS=examples/convnext_block.py dsd sample --space my_space.yaml ...`, and check
it with `dsd check-block examples/convnext_block.py`. The file imports no torch: `build` uses
dsd's factories, which import it when a model is built, so sampling stays fast.
"""
from fractions import Fraction

from dsd.blocks import BlockArgs, BlockType, register
from dsd.blocks.layers import (Cx, act, bn, bn_cx, conv, conv_cx, projection, projection_cx,
                              residual, seq)


@register
class ConvNeXt(BlockType):
    name = "convnext"
    uses = ("b", "k")            # b: 1/expansion (b = 1/4 is ConvNeXt's 4× MLP); k: kernel
    description = "ConvNeXt-style: k×k depthwise, BN, 1×1 expand, act, 1×1 project"

    def validate(self, w_in, w_out, stride, a: BlockArgs):
        return super().validate(w_in, w_out, stride, a) or (
            None if int(Fraction(w_in) / Fraction(a.b)) >= 1 else "expanded width is 0")

    def build(self, w_in, w_out, stride, a: BlockArgs):
        w_exp = int(Fraction(w_in) / Fraction(a.b))
        f = seq(conv(w_in, w_in, a.k, stride=stride, groups=w_in), bn(w_in),
                conv(w_in, w_exp, 1, bias=True), act(a.activation), conv(w_exp, w_out, 1))
        return residual(f, proj=projection(w_in, w_out, stride))

    def count(self, cx: Cx, w_in, w_out, stride, a: BlockArgs) -> Cx:
        w_exp = int(Fraction(w_in) / Fraction(a.b))
        out = conv_cx(cx, w_in, w_in, a.k, stride=stride, groups=w_in)
        out = bn_cx(out, w_in)
        out = conv_cx(out, w_in, w_exp, 1, bias=True)
        out = conv_cx(out, w_exp, w_out, 1)
        return projection_cx(out, cx.h, w_in, w_out, stride)
