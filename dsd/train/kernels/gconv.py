"""Grouped 3×3 convolution (stride 1, padding 1, ≤ 8 channels per group) as Triton kernels, for
channels_last CUDA tensors in training.

Deep sampled models spend most of their steps in such convolutions on small feature maps, and
cuDNN's grouped kernels serve few channels per group poorly (BENCHMARKS.md, `bench_train.py
convs`). Each output is a 9·g-term stencil, so the layer is a memory-bound gather: forward and
input gradient are one kernel each, the weight gradient is a split reduction over pixels (a kernel
and a sum). Accumulation in fp32; the weight is read in fp32, never rounded to bf16.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import nn

from . import runs_here

MAX_G = 8                       # group widths this path takes; wider groups stay with cuDNN
BLOCK_P, SPLITS = 64, 64        # pixels per program step; programs along the weight reduction


@triton.jit
def _pixels(pid, H, W, P, BLOCK_P: tl.constexpr):
    p = pid * BLOCK_P + tl.arange(0, BLOCK_P)
    hw = p % (H * W)
    return p, p // (H * W), hw // W, hw % W, p < P


@triton.jit
def _stencil(src_ptr, w_ptr, out_ptr, H, W, C, P, ws0, ws1, ws2, ws3,
             G: tl.constexpr, FLIP: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """out[p, c] = Σ_tap Σ_j src[p + tap, (c//G)·G + j] · w[…]: the forward pass (FLIP False,
    w[c, j, tap]) or the input gradient (FLIP True: taps mirrored, w[(c//G)·G + j, c % G, tap])."""
    p, n, h, w_, pmask = _pixels(tl.program_id(0), H, W, P, BLOCK_P)
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    base = (c // G) * G
    acc = tl.zeros([BLOCK_P, BLOCK_C], tl.float32)
    for kh in tl.static_range(3):
        for kw in tl.static_range(3):
            if FLIP:
                hh, ww = h - (kh - 1), w_ - (kw - 1)
            else:
                hh, ww = h + (kh - 1), w_ + (kw - 1)
            valid = pmask & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
            pix = (n * H + hh) * W + ww
            mask = valid[:, None] & cmask[None, :]
            for j in tl.static_range(G):
                v = tl.load(src_ptr + pix[:, None] * C + (base + j)[None, :], mask=mask,
                            other=0.0).to(tl.float32)
                if FLIP:
                    wt = tl.load(w_ptr + (base + j) * ws0 + (c % G) * ws1 + kh * ws2 + kw * ws3,
                                 mask=cmask, other=0.0)
                else:
                    wt = tl.load(w_ptr + c * ws0 + j * ws1 + kh * ws2 + kw * ws3, mask=cmask,
                                 other=0.0)
                acc += v * wt.to(tl.float32)[None, :]
    out_mask = pmask[:, None] & cmask[None, :]
    tl.store(out_ptr + p[:, None] * C + c[None, :], acc.to(out_ptr.dtype.element_ty),
             mask=out_mask)


@triton.jit
def _weight_grad(x_ptr, dy_ptr, part_ptr, H, W, C, P, pix_per_prog,
                 G: tl.constexpr, BLOCK_P: tl.constexpr, BLOCK_C: tl.constexpr):
    """Program (s, c, tap): partial dw[c, j, tap] = Σ over its pixels of dy[p, c] · x[p + tap,
    (c//G)·G + j], written to part[s, c, j, tap]."""
    s, tap = tl.program_id(0), tl.program_id(2)
    kh, kw = tap // 3, tap % 3
    c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = c < C
    base = (c // G) * G
    j = tl.arange(0, G)
    acc = tl.zeros([G, BLOCK_C], tl.float32)
    start = s * pix_per_prog
    end = tl.minimum(start + pix_per_prog, P)
    for p0 in range(start, end, BLOCK_P):
        p = p0 + tl.arange(0, BLOCK_P)
        hw = p % (H * W)
        n, h, w_ = p // (H * W), hw // W, hw % W
        hh, ww = h + (kh - 1), w_ + (kw - 1)
        pmask = p < end
        valid = pmask & (hh >= 0) & (hh < H) & (ww >= 0) & (ww < W)
        pix = (n * H + hh) * W + ww
        dy = tl.load(dy_ptr + p[:, None] * C + c[None, :], mask=pmask[:, None] & cmask[None, :],
                     other=0.0).to(tl.float32)
        cin = base[None, :] + j[:, None]                                  # [G, BLOCK_C]
        x = tl.load(x_ptr + pix[:, None, None] * C + cin[None, :, :],
                    mask=valid[:, None, None] & cmask[None, None, :], other=0.0)
        acc += tl.sum(dy[:, None, :] * x.to(tl.float32), axis=0)
    offs = ((s * C + c[None, :]) * G + j[:, None]) * 9 + tap
    tl.store(part_ptr + offs, acc, mask=cmask[None, :])


def _block_c(c: int) -> int:
    """Channels per program: 32, fewer for narrower layers."""
    return min(32, triton.next_power_of_2(c))


class _GConv(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight):
        n, c, h, w = x.shape
        g = weight.shape[1]
        block_c = _block_c(c)
        y = torch.empty_like(x)
        grid = (triton.cdiv(n * h * w, BLOCK_P), triton.cdiv(c, block_c))
        _stencil[grid](x, weight, y, h, w, c, n * h * w, *weight.stride(), G=g, FLIP=False,
                       BLOCK_P=BLOCK_P, BLOCK_C=block_c)
        ctx.save_for_backward(x, weight)
        return y

    @staticmethod
    def backward(ctx, dy):
        x, weight = ctx.saved_tensors
        dy = dy.contiguous(memory_format=torch.channels_last)
        n, c, h, w = x.shape
        g, p = weight.shape[1], n * h * w
        block_c = _block_c(c)
        dx = torch.empty_like(x)
        grid = (triton.cdiv(p, BLOCK_P), triton.cdiv(c, block_c))
        _stencil[grid](dy, weight, dx, h, w, c, p, *weight.stride(), G=g, FLIP=True,
                       BLOCK_P=BLOCK_P, BLOCK_C=block_c)
        per = triton.cdiv(triton.cdiv(p, SPLITS), BLOCK_P) * BLOCK_P
        splits = triton.cdiv(p, per)
        part = torch.empty(splits, c, g, 9, device=x.device, dtype=torch.float32)
        block_p = max(16, 4096 // (g * block_c))     # a [pixels, g, channels] tile of x
        _weight_grad[(splits, triton.cdiv(c, block_c), 9)](x, dy, part, h, w, c, p, per, G=g,
                                                           BLOCK_P=block_p, BLOCK_C=block_c)
        return dx, part.sum(0).view(c, g, 3, 3).to(weight.dtype)


class GroupedConv3x3(nn.Conv2d):
    """`nn.Conv2d(w, w, 3, padding=1, groups=w // g)` with g ≤ 8, stride 1, no bias; in training
    on channels_last CUDA tensors, the Triton kernels above. Same parameters and state_dict."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not runs_here(self, x):
            return super().forward(x)
        return _GConv.apply(x, self.weight)


def takes(conv: nn.Module) -> bool:
    """Whether `conv` is a convolution the Triton path computes."""
    return (type(conv) is nn.Conv2d and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding == (1, 1) and conv.dilation == (1, 1) and conv.bias is None
            and conv.in_channels == conv.out_channels and conv.groups > 1
            and conv.in_channels // conv.groups in (1, 2, 4, MAX_G))


def use_triton_gconv(model: nn.Module) -> nn.Module:
    """In place: every grouped 3×3 convolution this path takes becomes a GroupedConv3x3 (same
    weight tensor, so an optimizer built before or after sees the same parameter)."""
    for parent in model.modules():
        for name, conv in list(parent.named_children()):
            if takes(conv):
                new = GroupedConv3x3(conv.in_channels, conv.out_channels, 3, padding=1,
                                     groups=conv.groups, bias=False, device="meta")
                new.weight = conv.weight
                setattr(parent, name, new)
    return model
