"""SGD with a tensor learning rate, written with foreach ops so a CUDA graph can capture it.

Same update as `torch.optim.SGD` (dampening 0, momentum buffers start at zero, weight decay added
to the gradient, optional Nesterov), but the learning rate is a 0-d device tensor that the host
fills before each replay, so no value is baked into the graph. The schedule is per iteration:
linear warm-up from `warmup_factor·lr`, then half-period cosine to 0 (pycls uses per-epoch steps).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .recipes import Recipe


def param_groups(model: nn.Module, recipe: Recipe) -> list[tuple[list[torch.Tensor], float]]:
    """[(params, weight_decay)]: BN γ/β and biases get no decay unless `recipe.wd_bn_bias`."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            is_bn = isinstance(module, nn.modules.batchnorm._BatchNorm)
            (no_decay if (is_bn or name == "bias") and not recipe.wd_bn_bias else decay).append(p)
    return [(g, wd) for g, wd in ((decay, recipe.wd), (no_decay, 0.0)) if g]


class TensorSGD:
    """SGD (momentum, Nesterov, per-group weight decay) whose lr lives in `self.lr` (a tensor)."""

    def __init__(self, groups, *, lr: float, momentum: float, nesterov: bool, device):
        self.groups = groups
        self.lr = torch.tensor(lr, dtype=torch.float32, device=device)
        self.momentum, self.nesterov = momentum, nesterov
        self.bufs = [[torch.zeros_like(p) for p in params] for params, _ in groups]

    @torch.no_grad()
    def step(self) -> None:
        for (params, wd), bufs in zip(self.groups, self.bufs):
            grads = [p.grad for p in params]
            if wd:
                grads = torch._foreach_add(grads, params, alpha=wd)
            torch._foreach_mul_(bufs, self.momentum)
            torch._foreach_add_(bufs, grads)
            if self.nesterov:
                update = torch._foreach_add(grads, bufs, alpha=self.momentum)
            else:
                update = bufs
            torch._foreach_sub_(params, torch._foreach_mul(update, self.lr))

    def zero_grad(self) -> None:
        for params, _ in self.groups:
            for p in params:
                p.grad = None

    def state_dict(self) -> dict:
        return {"bufs": [[b.detach().cpu() for b in bufs] for bufs in self.bufs]}

    def load_state_dict(self, state: dict) -> None:
        for bufs, saved in zip(self.bufs, state["bufs"]):
            for b, s in zip(bufs, saved):
                b.copy_(s)


def lr_at(recipe: Recipe, it: int, total: int, steps_per_epoch: int) -> float:
    """Learning rate of iteration `it` of `total`: cosine to 0, times a linear warm-up ramp."""
    lr = 0.5 * recipe.lr * (1.0 + math.cos(math.pi * it / total))
    warm = recipe.warmup_epochs * steps_per_epoch
    if it < warm:
        f = recipe.warmup_factor
        lr *= f + (1.0 - f) * it / warm
    return lr
