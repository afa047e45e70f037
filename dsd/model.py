"""build(spec) → torch.nn.Module: the AnyNet of DDS §3.1 / NOTES §1, mirrored by `complexity`.

Same structure as pycls `anynet.py`: stem → stages of one block type (from the registry,
`dsd.blocks`) → head (optional 1×1 conv, global pool, linear). Init as the reference: conv
N(0, sqrt(2/fan_out)), BN γ=1 β=0, linear N(0, 0.01), bias 0. `zero_init_last_bn` sets each
residual branch's final BN γ to 0 (Goyal et al.; a training-recipe option).
"""
from __future__ import annotations

import math

from torch import nn

from . import blocks
from .blocks.stems import head
from .spec import ModelSpec


class AnyNet(nn.Module):
    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        block = blocks.BLOCKS[spec.block]
        self.stem = blocks.STEMS[spec.stem].build(spec.stem_w, spec.stem_stride,
                                                  spec.activation)
        stages, w_in = [], spec.stem_w
        for s, a in zip(spec.stages, spec.stage_args()):
            stages.append(nn.Sequential(*[
                block.build(w_in if j == 0 else s.w, s.w, s.stride if j == 0 else 1, a)
                for j in range(s.d)]))
            w_in = s.w
        self.stages = nn.Sequential(*stages)
        self.head = head(w_in, spec.num_classes, spec.head_w, spec.activation)

    def forward(self, x):
        return self.head(self.stages(self.stem(x)))


def init_weights(m: nn.Module, zero_init_last_bn: bool = False) -> None:
    """Reference (pycls) initialization of one module; use with `Module.apply`."""
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        m.weight.data.normal_(mean=0.0, std=math.sqrt(2.0 / fan_out))
        if m.bias is not None:
            m.bias.data.zero_()
    elif isinstance(m, nn.BatchNorm2d):
        last = zero_init_last_bn and getattr(m, "final_bn", False)
        m.weight.data.fill_(0.0 if last else 1.0)
        m.bias.data.zero_()
    elif isinstance(m, nn.Linear):
        m.weight.data.normal_(mean=0.0, std=0.01)
        m.bias.data.zero_()


def build(spec: ModelSpec, *, zero_init_last_bn: bool = False) -> AnyNet:
    """The network of `spec`, initialized as the reference."""
    model = AnyNet(spec)
    model.apply(lambda m: init_weights(m, zero_init_last_bn))
    return model
