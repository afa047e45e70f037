"""Batch norm + ReLU (and a block's final BN + residual add + ReLU) in training as two Triton
kernels each way, for channels_last CUDA tensors.

PyTorch runs a training BN+ReLU as five kernels (statistics, normalize, ReLU; backward: ReLU
mask, reduce, elementwise), seven with the residual add, and a sampled CIFAR model has hundreds
of them on tiny tensors, where each costs a launch more than its bytes. Here: forward = partial
statistics, then normalize + affine (+ residual) + ReLU + running-statistics update; backward =
partial sums, then dx (and the residual's gradient), dγ, dβ. Same numbers as `nn.BatchNorm2d`
then (add and) ReLU: Welford statistics in fp32, biased variance to normalize, unbiased to update
the running variance. Evaluation and CPU use PyTorch's own path.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import nn

from . import runs_here

TILE, PARTIALS = 1024, 2048     # elements per loop step of a program; partials read at once


@triton.jit
def _stats(x_ptr, mean_ptr, m2_ptr, M, C, rows_per_prog,
           BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr):
    """Program (p, c): Welford mean and M2 of rows [p·rows_per_prog, …) of x[M, C], per channel."""
    p, pc = tl.program_id(0), tl.program_id(1)
    cols = pc * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < C
    mean = tl.zeros([BLOCK_C], tl.float32)
    m2 = tl.zeros([BLOCK_C], tl.float32)
    n = tl.sum(tl.zeros([BLOCK_M], tl.float32), axis=0)   # rows so far, an fp32 scalar
    start = p * rows_per_prog
    end = tl.minimum(start + rows_per_prog, M)
    for r0 in range(start, end, BLOCK_M):
        rows = r0 + tl.arange(0, BLOCK_M)
        rmask = rows < end
        mask = rmask[:, None] & cmask[None, :]
        x = tl.load(x_ptr + rows[:, None] * C + cols[None, :], mask=mask, other=0.0)
        x = x.to(tl.float32)
        nc = tl.sum(rmask.to(tl.float32), axis=0)
        cmean = tl.sum(x, axis=0) / nc
        d = tl.where(mask, x - cmean[None, :], 0.0)
        cm2 = tl.sum(d * d, axis=0)
        delta = cmean - mean
        nn_ = n + nc
        mean += delta * (nc / nn_)
        m2 += cm2 + delta * delta * (n * nc / nn_)
        n = nn_
    tl.store(mean_ptr + p * C + cols, mean, mask=cmask)
    tl.store(m2_ptr + p * C + cols, m2, mask=cmask)


@triton.jit
def _partials(ptr, C, splits, cols, cmask, BLOCK_S: tl.constexpr):
    """The [splits, channels] partial results of the first kernel, as one tile."""
    s = tl.arange(0, BLOCK_S)
    mask = (s < splits)[:, None] & cmask[None, :]
    return tl.load(ptr + s[:, None] * C + cols[None, :], mask=mask, other=0.0)


@triton.jit
def _combine(mean_ptr, m2_ptr, M, C, splits, rows_per_prog, cols, cmask,
             BLOCK_S: tl.constexpr):
    """Mean and biased variance of all M rows from the `splits` partial Welford results."""
    s = tl.arange(0, BLOCK_S)
    n = tl.where(s < splits, tl.minimum(rows_per_prog, M - s * rows_per_prog), 0)
    n = n.to(tl.float32)[:, None]
    pmean = _partials(mean_ptr, C, splits, cols, cmask, BLOCK_S)
    mean = tl.sum(n * pmean, axis=0) / M
    d = pmean - mean[None, :]
    m2 = tl.sum(_partials(m2_ptr, C, splits, cols, cmask, BLOCK_S) + n * d * d, axis=0)
    return mean, m2 / M


@triton.jit
def _tile(r0, end, C, cols, cmask, BLOCK_M: tl.constexpr):
    """Mask and offsets of rows [r0, r0 + BLOCK_M) ∩ [·, end) × `cols` of a [M, C] tensor."""
    rows = r0 + tl.arange(0, BLOCK_M)
    return (rows < end)[:, None] & cmask[None, :], rows[:, None] * C + cols[None, :]


@triton.jit
def _relu_grad(dy_ptr, y_ptr, x_ptr, offs, mask, mean, invstd):
    """dy' = dy where y > 0 (the ReLU's gradient), and x̂ = (x − mean)·invstd, on one tile."""
    y = tl.load(y_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    dy = tl.load(dy_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    return tl.where(y > 0.0, dy, 0.0), (x - mean[None, :]) * invstd[None, :]


@triton.jit
def _normalize(x_ptr, res_ptr, y_ptr, mean_ptr, m2_ptr, w_ptr, b_ptr, save_mean_ptr,
               save_invstd_ptr, rmean_ptr, rvar_ptr, M, C, splits, rows_per_prog, eps, momentum,
               HAS_RES: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr,
               BLOCK_S: tl.constexpr):
    """Program (p, c): y = relu((x − mean)·invstd·γ + β [+ residual]) on its rows; program p = 0
    saves mean and invstd for backward and updates the running statistics."""
    p, pc = tl.program_id(0), tl.program_id(1)
    cols = pc * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < C
    mean, var = _combine(mean_ptr, m2_ptr, M, C, splits, rows_per_prog, cols, cmask, BLOCK_S)
    invstd = 1.0 / tl.sqrt(var + eps)
    w = tl.load(w_ptr + cols, mask=cmask, other=0.0)
    b = tl.load(b_ptr + cols, mask=cmask, other=0.0)
    scale = w * invstd
    shift = b - mean * scale
    if p == 0:
        tl.store(save_mean_ptr + cols, mean, mask=cmask)
        tl.store(save_invstd_ptr + cols, invstd, mask=cmask)
        rm = tl.load(rmean_ptr + cols, mask=cmask, other=0.0)
        rv = tl.load(rvar_ptr + cols, mask=cmask, other=0.0)
        unbiased = var * (M / tl.maximum(M - 1.0, 1.0))
        tl.store(rmean_ptr + cols, (1.0 - momentum) * rm + momentum * mean, mask=cmask)
        tl.store(rvar_ptr + cols, (1.0 - momentum) * rv + momentum * unbiased, mask=cmask)
    start = p * rows_per_prog
    end = tl.minimum(start + rows_per_prog, M)
    for r0 in range(start, end, BLOCK_M):
        mask, offs = _tile(r0, end, C, cols, cmask, BLOCK_M)
        x = tl.load(x_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        y = x * scale[None, :] + shift[None, :]
        if HAS_RES:
            y += tl.load(res_ptr + offs, mask=mask, other=0.0).to(tl.float32)
        y = tl.maximum(y, 0.0)
        tl.store(y_ptr + offs, y.to(y_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _grad_sums(dy_ptr, y_ptr, x_ptr, mean_ptr, invstd_ptr, sdy_ptr, sdyx_ptr, M, C,
               rows_per_prog, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr):
    """Program (p, c): Σ dy' and Σ dy'·x̂ over its rows, dy' = dy where y > 0 (the ReLU)."""
    p, pc = tl.program_id(0), tl.program_id(1)
    cols = pc * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < C
    mean = tl.load(mean_ptr + cols, mask=cmask, other=0.0)
    invstd = tl.load(invstd_ptr + cols, mask=cmask, other=0.0)
    sdy = tl.zeros([BLOCK_C], tl.float32)
    sdyx = tl.zeros([BLOCK_C], tl.float32)
    start = p * rows_per_prog
    end = tl.minimum(start + rows_per_prog, M)
    for r0 in range(start, end, BLOCK_M):
        mask, offs = _tile(r0, end, C, cols, cmask, BLOCK_M)
        dy, xhat = _relu_grad(dy_ptr, y_ptr, x_ptr, offs, mask, mean, invstd)
        sdy += tl.sum(dy, axis=0)
        sdyx += tl.sum(dy * xhat, axis=0)
    tl.store(sdy_ptr + p * C + cols, sdy, mask=cmask)
    tl.store(sdyx_ptr + p * C + cols, sdyx, mask=cmask)


@triton.jit
def _grad_input(dy_ptr, y_ptr, x_ptr, dx_ptr, dres_ptr, mean_ptr, invstd_ptr, w_ptr, sdy_ptr,
                sdyx_ptr, dw_ptr, db_ptr, M, C, splits, rows_per_prog,
                HAS_RES: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr,
                BLOCK_S: tl.constexpr):
    """Program (p, c): dx = γ·invstd·(dy' − Σdy'/M − x̂·Σ(dy'·x̂)/M) on its rows (and the
    residual's gradient dy'); p = 0 writes dγ = Σ dy'·x̂ and dβ = Σ dy'."""
    p, pc = tl.program_id(0), tl.program_id(1)
    cols = pc * BLOCK_C + tl.arange(0, BLOCK_C)
    cmask = cols < C
    sdy = tl.sum(_partials(sdy_ptr, C, splits, cols, cmask, BLOCK_S), axis=0)
    sdyx = tl.sum(_partials(sdyx_ptr, C, splits, cols, cmask, BLOCK_S), axis=0)
    if p == 0:
        tl.store(dw_ptr + cols, sdyx, mask=cmask)
        tl.store(db_ptr + cols, sdy, mask=cmask)
    mean = tl.load(mean_ptr + cols, mask=cmask, other=0.0)
    invstd = tl.load(invstd_ptr + cols, mask=cmask, other=0.0)
    w = tl.load(w_ptr + cols, mask=cmask, other=0.0)
    k = w * invstd
    mdy, mdyx = sdy / M, sdyx / M
    start = p * rows_per_prog
    end = tl.minimum(start + rows_per_prog, M)
    for r0 in range(start, end, BLOCK_M):
        mask, offs = _tile(r0, end, C, cols, cmask, BLOCK_M)
        dy, xhat = _relu_grad(dy_ptr, y_ptr, x_ptr, offs, mask, mean, invstd)
        if HAS_RES:
            tl.store(dres_ptr + offs, dy.to(dres_ptr.dtype.element_ty), mask=mask)
        dx = k[None, :] * (dy - mdy[None, :] - xhat * mdyx[None, :])
        tl.store(dx_ptr + offs, dx.to(dx_ptr.dtype.element_ty), mask=mask)


def _layout(x: torch.Tensor) -> tuple[int, int, int, int, dict]:
    """(M, C, splits, rows per program, block sizes) of an N×C×H×W channels_last tensor: a
    program covers up to 32 channels (fewer for narrow layers) and at least 4 row blocks, and
    the partial results of all programs along M fit one tile."""
    m, c = x.numel() // x.shape[1], x.shape[1]
    block_c = min(32, triton.next_power_of_2(c))
    block_m = TILE // block_c
    splits = max(1, min(PARTIALS // block_c, triton.cdiv(m, 4 * block_m)))
    rows = triton.cdiv(triton.cdiv(m, splits), block_m) * block_m
    splits = triton.cdiv(m, rows)
    return m, c, splits, rows, {"BLOCK_M": block_m, "BLOCK_C": block_c,
                                "BLOCK_S": triton.next_power_of_2(splits)}


class _BNReLU(torch.autograd.Function):
    """relu(batch_norm(x) [+ residual]); `residual` None for plain BN+ReLU."""

    @staticmethod
    def forward(ctx, x, residual, weight, bias, running_mean, running_var, momentum: float,
                eps: float):
        m, c, splits, rows, blocks = _layout(x)
        grid = (splits, triton.cdiv(c, blocks["BLOCK_C"]))
        pmean = torch.empty(splits, c, device=x.device, dtype=torch.float32)
        pm2 = torch.empty_like(pmean)
        _stats[grid](x, pmean, pm2, m, c, rows, BLOCK_M=blocks["BLOCK_M"],
                     BLOCK_C=blocks["BLOCK_C"])
        y = torch.empty_like(x)
        mean = torch.empty(c, device=x.device, dtype=torch.float32)
        invstd = torch.empty_like(mean)
        has_res = residual is not None
        res = residual.contiguous(memory_format=torch.channels_last) if has_res else x
        _normalize[grid](x, res, y, pmean, pm2, weight, bias, mean, invstd, running_mean,
                         running_var, m, c, splits, rows, eps, momentum, HAS_RES=has_res,
                         **blocks)
        ctx.save_for_backward(x, y, weight, mean, invstd)
        ctx.res_dtype = residual.dtype if has_res else None
        return y

    @staticmethod
    def backward(ctx, dy):
        x, y, weight, mean, invstd = ctx.saved_tensors
        dy = dy.contiguous(memory_format=torch.channels_last)
        m, c, splits, rows, blocks = _layout(x)
        grid = (splits, triton.cdiv(c, blocks["BLOCK_C"]))
        sdy = torch.empty(splits, c, device=x.device, dtype=torch.float32)
        sdyx = torch.empty_like(sdy)
        _grad_sums[grid](dy, y, x, mean, invstd, sdy, sdyx, m, c, rows,
                         BLOCK_M=blocks["BLOCK_M"], BLOCK_C=blocks["BLOCK_C"])
        dx = torch.empty_like(x)
        dres = torch.empty_like(x, dtype=ctx.res_dtype) if ctx.res_dtype else None
        dw = torch.empty_like(weight)
        db = torch.empty_like(weight)
        _grad_input[grid](dy, y, x, dx, dx if dres is None else dres, mean, invstd, weight, sdy,
                          sdyx, dw, db, m, c, splits, rows, HAS_RES=dres is not None, **blocks)
        return dx, dres, dw, db, None, None, None, None


class BatchNormReLU(nn.BatchNorm2d):
    """`BatchNorm2d` then (residual add and) ReLU: `forward(x[, residual])`; in training on
    channels_last CUDA tensors, the fused kernels above. Same parameters, buffers and state_dict
    keys as BatchNorm2d."""

    fuses_residual = True   # `blocks._modules.Residual` hands its final BN the shortcut

    def forward(self, x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
        if not (runs_here(self, x) and self.track_running_stats and self.momentum is not None
                and x.numel() > x.shape[1]
                and (residual is None or residual.shape == x.shape)):
            y = super().forward(x)
            return torch.relu(y if residual is None else y + residual)
        self.num_batches_tracked.add_(1)
        return _BNReLU.apply(x, residual, self.weight, self.bias, self.running_mean,
                             self.running_var, self.momentum, self.eps)


def _fused_copy(bn: nn.BatchNorm2d) -> BatchNormReLU:
    fused = BatchNormReLU(bn.num_features, bn.eps, bn.momentum, device=bn.weight.device)
    fused.load_state_dict(bn.state_dict())
    fused.train(bn.training)
    fused.__dict__.update({k: v for k, v in vars(bn).items() if k == "final_bn"})
    return fused


def fuse_bn_relu(model: nn.Module) -> int:
    """In place: every (BatchNorm2d, ReLU) pair of consecutive modules in a Sequential becomes
    (BatchNormReLU, Identity), and the final BN of each residual block whose fusion applies
    (`Residual.fusion_applies`: a shortcut, a final BN, a ReLU after the add) a BatchNormReLU
    that adds the shortcut; parameters, buffers and state_dict keys are kept. Returns how many
    BNs were fused (0: the model has no BN followed by a ReLU, e.g. a SiLU network)."""
    from ...blocks._modules import Residual

    fused = 0
    for seq in [m for m in model.modules() if isinstance(m, nn.Sequential)]:
        for i in range(len(seq) - 1):
            if type(seq[i]) is nn.BatchNorm2d and isinstance(seq[i + 1], nn.ReLU):
                seq[i], seq[i + 1] = _fused_copy(seq[i]), nn.Identity()
                fused += 1
    for block in [m for m in model.modules() if isinstance(m, Residual)]:
        if block.fusion_applies and type(block.f[-1]) is nn.BatchNorm2d:
            block.f[-1] = _fused_copy(block.f[-1])
            fused += 1
    return fused
