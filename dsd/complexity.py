"""Analytic flops / params / acts of a ModelSpec, without torch (NOTES §2).

Each block, stem and the head count themselves in the registry (`dsd.blocks`), beside the code
that builds them; this module walks a spec through them. Conventions: flops are conv and
linear multiply-adds; params count conv/linear weights and biases plus BN γ, β; acts are the
output sizes of conv, linear and max-pool layers. BN, activations, average pooling, the
residual add and the SE multiply count 0 (pycls's convention).
"""
from __future__ import annotations

from . import blocks
from .blocks.layers import Cx
from .blocks.stems import head_cx
from .spec import ModelSpec

__all__ = ["Cx", "complexity", "flops"]


def complexity(spec: ModelSpec) -> dict[str, int]:
    """{'flops', 'params', 'acts'} of the network at its own resolution (exact integers)."""
    block = blocks.BLOCKS[spec.block]
    cx = blocks.STEMS[spec.stem].count(Cx(spec.resolution), spec.stem_w, spec.stem_stride,
                                       spec.activation)
    w_in = spec.stem_w
    for s, a in zip(spec.stages, spec.stage_args()):
        cx = block.count(cx, w_in, s.w, s.stride, a)
        if s.d > 1:  # the other d-1 blocks are identical: count one, multiply
            cx = cx.plus(block.count(Cx(cx.h), s.w, s.w, 1, a), s.d - 1)
        w_in = s.w
    cx = head_cx(cx, w_in, spec.num_classes, spec.head_w)
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts}


def flops(spec: ModelSpec) -> int:
    """complexity(spec)['flops'], faster where the block has a plain-arithmetic `fast_flops`
    (the sampler's prefilter: most candidates fall outside the window). tests/test_blocks.py
    pins the two equal for every block."""
    if spec.stem != "simple" or spec.head_w:
        return complexity(spec)["flops"]
    return simple_stem_flops(spec.block, spec.stem_w, spec.stem_stride, spec.resolution,
                             spec.num_classes, spec.stages, spec.stage_args())


def simple_stem_flops(block: str, stem_w: int, stem_stride: int, resolution: int,
                      num_classes: int, stages, args) -> int:
    """`flops` of a network with the simple stem and no head conv, from its parts (stages:
    anything with d, w, stride; args: their `BlockArgs`), so a candidate can be counted
    before a spec is built."""
    bt = blocks.BLOCKS[block]
    h = (resolution - 1) // stem_stride + 1
    total = 9 * 3 * stem_w * h * h
    w_in = stem_w
    for s, a in zip(stages, args):
        total += bt.fast_flops(h, w_in, s.w, s.stride, a)
        h = (h - 1) // s.stride + 1
        if s.d > 1:
            total += (s.d - 1) * bt.fast_flops(h, s.w, s.w, 1, a)
        w_in = s.w
    return total + w_in * num_classes + num_classes
