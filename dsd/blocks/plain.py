"""Blocks of two k×k convs: the residual basic block (ResNet; pycls `res_basic_block`) and the
vanilla block without a shortcut (pycls `vanilla_block`). Neither has b, g or SE."""
from __future__ import annotations

from . import BlockArgs, BlockType, register
from .layers import (Cx, act, bn, bn_cx, conv, conv_cx, projection, projection_cx, residual,
                     seq)


def _two_convs_cx(cx: Cx, w_in, w_out, stride) -> Cx:
    cx = bn_cx(conv_cx(cx, w_in, w_out, 3, stride=stride), w_out)
    return bn_cx(conv_cx(cx, w_out, w_out, 3), w_out)


@register
class Basic(BlockType):
    name = "basic"
    aliases = ("res_basic_block",)
    description = "residual basic block: [3×3 conv, BN, act] ×2 (no act after the 2nd BN) + shortcut"

    def build(self, w_in, w_out, stride, a: BlockArgs):
        f = seq(conv(w_in, w_out, 3, stride=stride), bn(w_out), act(a.activation),
                conv(w_out, w_out, 3), bn(w_out, final=True))
        return residual(f, proj=projection(w_in, w_out, stride), activation=a.activation)

    def count(self, cx: Cx, w_in, w_out, stride, a: BlockArgs) -> Cx:
        return projection_cx(_two_convs_cx(cx, w_in, w_out, stride), cx.h, w_in, w_out, stride)


@register
class Vanilla(BlockType):
    name = "vanilla"
    aliases = ("vanilla_block",)
    description = "plain block: [3×3 conv, BN, act] ×2, no shortcut"

    def build(self, w_in, w_out, stride, a: BlockArgs):
        return seq(conv(w_in, w_out, 3, stride=stride), bn(w_out), act(a.activation),
                   conv(w_out, w_out, 3), bn(w_out), act(a.activation))

    def count(self, cx: Cx, w_in, w_out, stride, a: BlockArgs) -> Cx:
        return _two_convs_cx(cx, w_in, w_out, stride)
