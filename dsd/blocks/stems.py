"""Stems and the head.

Stems: `simple` (3×3 conv, BN, act; pycls `simple_stem_in` at stride 2, `res_stem_cifar` at
stride 1, EfficientNet's `StemIN`) and `res` (ResNet's 7×7 conv stride 2, BN, act, 3×3 max-pool
stride 2; pycls `res_stem_in`). The head: [1×1 conv to head_w, BN, act, when head_w > 0
(pycls `HEAD_W`, EfficientNet's head)], global average pool, linear with bias.
"""
from __future__ import annotations

from . import StemType, register
from .layers import Cx, act, bn, bn_cx, conv, conv_cx, linear_cx, maxpool, maxpool_cx, seq


@register
class Simple(StemType):
    name = "simple"
    strides = (1, 2)
    description = "3×3 conv, BN, act"

    def build(self, w, stride, activation):
        return seq(conv(3, w, 3, stride=stride), bn(w), act(activation))

    def count(self, cx: Cx, w, stride, activation) -> Cx:
        return bn_cx(conv_cx(cx, 3, w, 3, stride=stride), w)


@register
class Res(StemType):
    name = "res"
    strides = (2,)
    description = "7×7 conv stride 2, BN, act, 3×3 max-pool stride 2 (ResNet)"

    def build(self, w, stride, activation):
        return seq(conv(3, w, 7, stride=2), bn(w), act(activation), maxpool(3, stride=2))

    def count(self, cx: Cx, w, stride, activation) -> Cx:
        return maxpool_cx(bn_cx(conv_cx(cx, 3, w, 7, stride=2), w), w, 3, stride=2)


def head(w_in: int, num_classes: int, head_w: int = 0, activation: str = "relu"):
    from ._modules import Head

    return Head(w_in, num_classes, head_w, activation)


def head_cx(cx: Cx, w_in: int, num_classes: int, head_w: int = 0) -> Cx:
    if head_w:
        cx = bn_cx(conv_cx(cx, w_in, head_w, 1), head_w)
        w_in = head_w
    return linear_cx(cx.at(1), w_in, num_classes)
