"""Batched crop + antialiased bilinear resize of decoded images, as a few tensor ops on any device.

Torchvision's `RandomResizedCrop(224)` + flip (training) and `Resize(256)` + `CenterCrop(224)`
(evaluation) for a whole batch of images of different sizes. The crop geometry is drawn on the host
(`rrc_params`, torchvision's exact distribution) or computed (`center_params`); the pixels come
from separable resampling matrices with PyTorch's antialiased bilinear weights (PIL's triangle
filter widened by the downscale factor, the same as `interpolate(..., antialias=True)`), applied as
two batched matrix products per group of similar-sized images. A flip reverses the rows of the
horizontal matrix.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch

SCALE = (0.08, 1.0)
RATIO = (3 / 4, 4 / 3)
TRIES = 10   # torchvision's attempts before the central-crop fallback
WASTE = 1.35  # a group's padded canvas may hold at most this many times its images' pixels


@dataclass(frozen=True)
class Geometry:
    """Per image (arrays of length B): the source window (top, left, height, width), the size
    the window is resized to (out_h, out_w) and the offset of the kept `size`×`size` output."""

    top: np.ndarray
    left: np.ndarray
    height: np.ndarray
    width: np.ndarray
    out_h: np.ndarray
    out_w: np.ndarray
    off_y: np.ndarray
    off_x: np.ndarray
    flip: np.ndarray


def rrc_params(sizes: np.ndarray, rng: np.random.Generator, scale=SCALE, ratio=RATIO):
    """RandomResizedCrop.get_params for B images at once: (top, left, h, w) int arrays.

    The same distribution as torchvision: up to 10 tries of area ∼ U(scale)·H·W and
    log-aspect ∼ U(log ratio), w = round(√(area·r)), h = round(√(area/r)), the first that fits
    wins and its corner is uniform; otherwise the central crop clipped to the ratio range.
    """
    H, W = sizes[:, 0].astype(np.int64), sizes[:, 1].astype(np.int64)
    n = len(H)
    area = (H * W)[:, None] * rng.uniform(scale[0], scale[1], (n, TRIES))
    r = np.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1]), (n, TRIES)))
    w = np.rint(np.sqrt(area * r)).astype(np.int64)   # Python's round: half to even, as np.rint
    h = np.rint(np.sqrt(area / r)).astype(np.int64)
    ok = (w > 0) & (w <= W[:, None]) & (h > 0) & (h <= H[:, None])
    first = np.argmax(ok, axis=1)
    found = ok[np.arange(n), first]
    ch, cw = h[np.arange(n), first], w[np.arange(n), first]
    u = rng.random((n, 2))
    top = np.floor(u[:, 0] * (H - ch + 1)).astype(np.int64)
    left = np.floor(u[:, 1] * (W - cw + 1)).astype(np.int64)
    # fallback: the whole image, clipped to the aspect-ratio range, centred
    in_ratio = W / H
    fw = np.where(in_ratio < ratio[0], W, np.where(in_ratio > ratio[1],
                  np.rint(H * ratio[1]).astype(np.int64), W))
    fh = np.where(in_ratio < ratio[0], np.rint(W / ratio[0]).astype(np.int64), H)
    ch, cw = np.where(found, ch, fh), np.where(found, cw, fw)
    top = np.where(found, top, (H - fh) // 2)
    left = np.where(found, left, (W - fw) // 2)
    return top, left, ch, cw


def train_geometry(sizes: np.ndarray, rng: np.random.Generator, size: int) -> Geometry:
    """Random-resized crop to size×size and a horizontal flip with probability 1/2."""
    top, left, h, w = rrc_params(sizes, rng)
    n = len(sizes)
    full = np.full(n, size, dtype=np.int64)
    zero = np.zeros(n, dtype=np.int64)
    return Geometry(top, left, h, w, full, full, zero, zero, rng.random(n) < 0.5)


def eval_geometry(sizes: np.ndarray, size: int, resize: int) -> Geometry:
    """Resize the shorter side to `resize` (the longer one as torchvision: truncated), then the
    central size×size crop (offset rounded as CenterCrop)."""
    H, W = sizes[:, 0].astype(np.int64), sizes[:, 1].astype(np.int64)
    short, long = np.minimum(H, W), np.maximum(H, W)
    new_long = (resize * long / short).astype(np.int64)
    out_h = np.where(H <= W, resize, new_long)
    out_w = np.where(H <= W, new_long, resize)
    zero = np.zeros(len(H), dtype=np.int64)
    off_y = np.rint((out_h - size) / 2.0).astype(np.int64)
    off_x = np.rint((out_w - size) / 2.0).astype(np.int64)
    return Geometry(zero, zero, H, W, out_h, out_w, off_y, off_x, np.zeros(len(H), dtype=bool))


def weights(start, length, out_full, offset, size: int, canvas: int, device) -> torch.Tensor:
    """(B, size, canvas) resampling matrices along one axis: row o holds the weights of the
    source pixels for output pixel o + offset of the window [start, start + length) resized to
    out_full (PyTorch's antialiased bilinear: support max(scale, 1), triangle filter, normalized).
    Only the K taps of each row are computed; one scatter places them."""
    p = torch.as_tensor(np.stack([start, length, out_full, offset], 1).astype(np.float32),
                        device=device)[:, :, None, None]          # one host-to-device copy
    start, length, out_full, offset = p.unbind(1)
    scale = length / out_full
    support = torch.clamp(scale, min=1.0)
    taps = int(math.ceil(2 * float(max(np.max(np.asarray(length) / np.asarray(out_full)), 1.0))))
    o = torch.arange(size, dtype=torch.float32, device=device)[None, :, None]
    k = torch.arange(taps + 2, dtype=torch.float32, device=device)[None, None, :]
    center = scale * (o + offset + 0.5)
    lo = torch.clamp(torch.trunc(center - support + 0.5), min=0.0)
    hi = torch.minimum(torch.trunc(center + support + 0.5), length)
    x = lo + k                                                   # (B, size, K) source pixels
    w = torch.clamp(1.0 - ((x - center + 0.5) / support).abs(), min=0.0) * (x < hi)
    w = w / w.sum(dim=2, keepdim=True)
    idx = (x + start).clamp(max=canvas - 1).long()
    return torch.zeros((len(p), size, canvas), device=device).scatter_add_(2, idx, w)


def groups(sizes: np.ndarray) -> list[np.ndarray]:
    """Split a batch into groups whose padded canvas (max H × max W) wastes little: sorted by
    orientation, then height, then width; a group grows while its canvas holds at most WASTE
    times its images' pixels."""
    H, W = sizes[:, 0], sizes[:, 1]
    order = np.lexsort((W, H, H > W))
    out, cur = [], []
    for i in order:
        cand = cur + [i]
        canvas = H[cand].max() * W[cand].max() * len(cand)
        if cur and canvas > WASTE * float((H[cand] * W[cand]).sum()):
            out.append(np.array(cur))
            cand = [i]
        cur = cand
    out.append(np.array(cur))
    return out


def _canvas(images: list[torch.Tensor], h: int, w: int, dtype) -> torch.Tensor:
    """(B, 3, h, w) zero-padded stack of (3, H_i, W_i) uint8 images, in `dtype` (one nested
    tensor: a copy and a padding kernel, not one per image)."""
    if len(images) == 1:
        return images[0][None].to(dtype)
    with warnings.catch_warnings():   # "nested tensors are a prototype": this use is stable
        warnings.simplefilter("ignore")
        nt = torch.nested.nested_tensor(images).to(dtype)
    return nt.to_padded_tensor(0.0, output_size=(len(images), 3, h, w))


def resized_crops(images: list[torch.Tensor], geo: Geometry, size: int) -> torch.Tensor:
    """(B, 3, size, size) float32 pixels in [0, 255] of the crops `geo` describes, in the order of
    `images`; float16 matrix products on CUDA (exact for uint8 input, ~1e-3 relative weights),
    float32 elsewhere."""
    dev = images[0].device
    dtype = torch.float16 if dev.type == "cuda" else torch.float32
    sizes = np.array([im.shape[1:] for im in images], dtype=np.int64)
    out = torch.empty((len(images), 3, size, size), dtype=torch.float32, device=dev)
    for idx in groups(sizes):
        h, w = int(sizes[idx, 0].max()), int(sizes[idx, 1].max())
        canvas = _canvas([images[i] for i in idx], h, w, dtype)
        g = lambda a: a[idx]
        wy = weights(g(geo.top), g(geo.height), g(geo.out_h), g(geo.off_y), size, h, dev)
        wx = weights(g(geo.left), g(geo.width), g(geo.out_w), g(geo.off_x), size, w, dev)
        flip = torch.as_tensor(g(geo.flip), device=dev)[:, None, None]
        wx = torch.where(flip, wx.flip(1), wx)
        rows = torch.matmul(canvas, wx.to(dtype).transpose(1, 2)[:, None])   # (b, 3, h, size)
        res = torch.matmul(wy.to(dtype)[:, None], rows)                      # (b, 3, size, size)
        out[torch.as_tensor(idx, device=dev)] = res.float()
    return out
