"""`resample.resized_crops` for a whole batch on CUDA as two Triton kernels, normalization and
layout included: a horizontal pass over each crop window's rows, then a vertical pass that writes
the normalized output. The tensor-op path needs ~15 small kernels per size group (host-bound at
about 8 ms per batch of 128); this one needs a copy and two launches. Same weights: PyTorch's
antialiased bilinear ones, computed per output pixel from the same formulas as `resample.weights`.
"""
from __future__ import annotations

import numpy as np
import torch

from .resample import Geometry, to_device

try:
    import triton
    import triton.language as tl
except ImportError:  # torch without triton (e.g. some platforms): the tensor-op path is used
    triton = None

ROWS = 8    # rows of a program's tile, both passes


def available(device) -> bool:
    """Whether the kernels can run for tensors on `device`."""
    return triton is not None and torch.device(device).type == "cuda"


if triton is not None:
    @triton.jit
    def _taps(o, offset, length, out_full):
        """Window-relative first tap, end and scale/support of output pixels o (as
        `resample.weights`: support max(scale, 1), taps in [lo, hi))."""
        scale = length.to(tl.float32) / out_full.to(tl.float32)
        support = tl.maximum(scale, 1.0)
        center = scale * (o.to(tl.float32) + offset.to(tl.float32) + 0.5)
        lo = tl.maximum((center - support + 0.5).to(tl.int32), 0)
        hi = tl.minimum((center + support + 0.5).to(tl.int32), length.to(tl.int32))
        return lo, hi, center, support

    @triton.jit
    def _add3(a0, a1, a2, p, plane, mask, w):
        """Accumulate w × the three channel planes (`plane` apart) at pointers p."""
        a0 += tl.load(p, mask=mask, other=0).to(tl.float32) * w
        a1 += tl.load(p + plane, mask=mask, other=0).to(tl.float32) * w
        a2 += tl.load(p + 2 * plane, mask=mask, other=0).to(tl.float32) * w
        return a0, a1, a2

    @triton.jit
    def _weight(x, hi, center, support):
        w = tl.maximum(1.0 - tl.abs((x.to(tl.float32) - center + 0.5) / support), 0.0)
        return tl.where(x < hi, w, 0.0)

    @triton.jit(do_not_specialize=["taps"])
    def _rows(src, meta, tmp, taps, SIZE: tl.constexpr, BO: tl.constexpr, BR: tl.constexpr):
        """Row r of channel c of image b's window, resized horizontally to output column o
        (flipped where asked), at tmp[(first + c · height + r) · SIZE + o], r < window height."""
        b = tl.program_id(0)
        m = meta + b * 13
        base, H, W = tl.load(m), tl.load(m + 1), tl.load(m + 2)
        top, left, hh, ww = tl.load(m + 3), tl.load(m + 4), tl.load(m + 5), tl.load(m + 6)
        out_w, off_x, flip = tl.load(m + 8), tl.load(m + 10), tl.load(m + 11)
        r = tl.program_id(1) * BR + tl.arange(0, BR)
        o = tl.arange(0, BO)
        oe = tl.where(flip != 0, SIZE - 1 - o, o)
        lo, hi, center, support = _taps(oe, off_x, ww, out_w)
        keep = (r < hh)[:, None] & (o < SIZE)[None, :]
        row = src + base + (top + r)[:, None] * W + left
        plane = H * W
        a0 = tl.zeros((BR, BO), tl.float32)
        a1 = tl.zeros((BR, BO), tl.float32)
        a2 = tl.zeros((BR, BO), tl.float32)
        wsum = tl.zeros((BO,), tl.float32)
        for k in range(0, taps):
            x = lo + k
            w = _weight(x, hi, center, support)
            wsum += w
            a0, a1, a2 = _add3(a0, a1, a2, row + tl.minimum(x, ww - 1)[None, :], plane,
                               keep & (x < hi)[None, :], w[None, :])
        inv = (1.0 / tl.where(wsum > 0, wsum, 1.0))[None, :]
        t = tmp + (tl.load(m + 12) + r)[:, None] * SIZE + o[None, :]
        tl.store(t, a0 * inv, mask=keep)
        tl.store(t + hh * SIZE, a1 * inv, mask=keep)
        tl.store(t + 2 * hh * SIZE, a2 * inv, mask=keep)

    @triton.jit(do_not_specialize=["taps"])
    def _cols(tmp, meta, out, taps, m0, m1, m2, i0, i1, i2, sb, sc, sy, sx,
              SIZE: tl.constexpr, BO: tl.constexpr, BR: tl.constexpr):
        """out[b, c, y, x] = ((tmp resized vertically to output row y) - mean_c) / std_c."""
        b = tl.program_id(0)
        m = meta + b * 13
        hh, out_h, off_y, first = tl.load(m + 5), tl.load(m + 7), tl.load(m + 9), tl.load(m + 12)
        oy = tl.program_id(1) * BR + tl.arange(0, BR)
        ox = tl.arange(0, BO)
        lo, hi, center, support = _taps(oy, off_y, hh, out_h)
        keep = (oy < SIZE)[:, None] & (ox < SIZE)[None, :]
        a0 = tl.zeros((BR, BO), tl.float32)
        a1 = tl.zeros((BR, BO), tl.float32)
        a2 = tl.zeros((BR, BO), tl.float32)
        wsum = tl.zeros((BR,), tl.float32)
        for k in range(0, taps):
            y = lo + k
            w = _weight(y, hi, center, support)
            wsum += w
            p = tmp + (first + tl.minimum(y, hh - 1))[:, None] * SIZE + ox[None, :]
            a0, a1, a2 = _add3(a0, a1, a2, p, hh * SIZE, keep & (y < hi)[:, None], w[:, None])
        inv = (1.0 / tl.where(wsum > 0, wsum, 1.0))[:, None]
        q = out + b * sb + oy[:, None] * sy + ox[None, :] * sx
        ty = out.dtype.element_ty
        tl.store(q, ((a0 * inv - m0) * i0).to(ty), mask=keep)
        tl.store(q + sc, ((a1 * inv - m1) * i1).to(ty), mask=keep)
        tl.store(q + 2 * sc, ((a2 * inv - m2) * i2).to(ty), mask=keep)


def taps(length: np.ndarray, out_full: np.ndarray) -> int:
    """Taps per output pixel that cover every window of the batch (as `resized_crops`)."""
    return int(np.ceil(2 * max(float(np.max(length / out_full)), 1.0))) + 2


def crops(images: list[torch.Tensor], geo: Geometry, size: int, mean, std,
          dtype=torch.bfloat16, memory_format=torch.channels_last) -> torch.Tensor:
    """(B, 3, size, size) normalized crops of (3, H_i, W_i) uint8 images (any sizes), as
    `(resized_crops(images, geo, size) / 255 - mean) / std` in `dtype` and `memory_format`."""
    dev = images[0].device
    flat = torch.cat([im.reshape(-1) for im in images])
    numel = np.array([im.numel() for im in images], dtype=np.int64)
    sizes = np.array([im.shape[1:] for im in images], dtype=np.int64)
    rows = 3 * geo.height.astype(np.int64)   # the horizontal pass's output rows per image
    # 13 per image, as the kernels read them: offset in `flat`, H, W, the window, its output
    # size and offset, flip, and the image's first row in `tmp`
    meta = np.stack([np.cumsum(numel) - numel, sizes[:, 0], sizes[:, 1], geo.top, geo.left,
                     geo.height, geo.width, geo.out_h, geo.out_w, geo.off_y, geo.off_x,
                     geo.flip, np.cumsum(rows) - rows], 1).astype(np.int64)
    meta = to_device(meta, dev)
    n, maxh = len(images), int(geo.height.max())
    bo = triton.next_power_of_2(size)
    tmp = torch.empty((int(rows.sum()), size), dtype=torch.float32, device=dev)
    out = torch.empty((n, 3, size, size), dtype=dtype, device=dev,
                      memory_format=memory_format)
    _rows[(n, triton.cdiv(maxh, ROWS))](flat, meta, tmp, taps(geo.width, geo.out_w),
                                        SIZE=size, BO=bo, BR=ROWS)
    m = [255.0 * v for v in mean]
    i = [1.0 / (255.0 * v) for v in std]
    _cols[(n, triton.cdiv(size, ROWS))](tmp, meta, out, taps(geo.height, geo.out_h),
                                        *m, *i, *out.stride(), SIZE=size, BO=bo, BR=ROWS)
    return out
