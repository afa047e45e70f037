"""The generic checks every registered block must pass (`dsd check-block`, tests/test_blocks.py).

For random specs of the block in both layouts (CIFAR-10 and ImageNet), each check compares the
registry's analytic counter with something it does not share code with:
  params      counter == the built module's parameter count
  flops       counter == torch's FlopCounterMode / 2 (it counts 2 per multiply-add) plus the
              biases of convs and linears, which FlopCounterMode leaves out (the documented offset)
  acts        counter == the output sizes of every conv, linear and max-pool, by forward hooks
  fast flops  the block's `fast_flops` == the counter's flops
  forward     forward and backward run on CPU, finite, logits of the right shape
  json        the spec survives a JSON round trip with its id
  determinism two builds under one seed have equal weights
Imports torch (it builds models).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import DsdError
from . import get_block

CHECKS = ("params", "flops", "acts", "fast flops", "forward", "json", "determinism")
#: Values a random spec draws for the parameters a block reads (b as exact ratios).
_B = ("1/4", "1/2", 1, 2)
_G = (1, 2, 4, 8)
_K = (3, 5)


@dataclass
class CheckReport:
    """Per check: the specs that passed, and the first failures (spec JSON, what differed)."""

    block: str
    specs: int = 0
    passed: dict = field(default_factory=lambda: dict.fromkeys(CHECKS, 0))
    failures: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def random_spec(block: str, rng: np.random.Generator, dataset: str):
    """One random small spec of `block` (None when the draw is not a valid block)."""
    from ..spec import make_spec

    bt = get_block(block)
    S = int(rng.integers(1, 5))
    pick = lambda xs, n=S: [xs[i] for i in rng.integers(0, len(xs), n)]  # noqa: E731
    se = {"never": 0.0, "required": 0.25}.get(bt.se, float(pick((0.0, 0.25), 1)[0]))
    stem = "res" if dataset == "imagenet" and rng.random() < 0.3 else "simple"
    try:
        return make_spec(pick((1, 2, 3)), [8 * int(x) for x in rng.integers(1, 9, S)],
                         pick(_B) if "b" in bt.uses else [1] * S,
                         pick(_G) if "g" in bt.uses else [1] * S, ks=pick(_K) if "k" in
                         bt.uses else None, dataset=dataset, block=block, se_ratio=se,
                         stem=stem, stem_w=8 * int(rng.integers(1, 5)),
                         head_w=int(pick((0, 0, 32), 1)[0]),
                         activation=str(pick(("relu", "silu", "gelu"), 1)[0]),
                         resolution=64 if dataset == "imagenet" else None)
    except DsdError:
        return None


def check_block(block: str, *, n: int = 10, seed: int = 0) -> CheckReport:
    """Run every check on n random specs of `block` per layout."""
    rep = CheckReport(block)
    rng = np.random.default_rng(seed)
    for dataset in ("cifar10", "imagenet"):
        made, tries = 0, 0
        while made < n and tries < 50 * n:
            tries += 1
            spec = random_spec(block, rng, dataset)
            if spec is None:
                continue
            made += 1
            rep.specs += 1
            try:
                for name, why in _check_spec(spec):
                    if why is None:
                        rep.passed[name] += 1
                    elif len(rep.failures) < 20:
                        rep.failures.append((name, spec.to_json(), why))
            except Exception as e:  # a user's block that cannot be built or run: say so
                rep.failures.append(("build", spec.to_json(), f"{type(e).__name__}: {e}"))
    if not rep.specs:
        rep.failures.append(("specs", "-", f"no random spec of block {block} was valid: its "
                             "validate refused every draw (b, g, k, widths 8-64)"))
    return rep


def _check_spec(spec):
    import torch

    from ..complexity import complexity, flops
    from ..model import build
    from ..spec import ModelSpec

    cx = complexity(spec)
    model = build(spec).eval()
    got = sum(p.numel() for p in model.parameters())
    yield "params", _diff(cx["params"], got)
    counted = _independent_count(model, spec)
    yield "flops", _diff(cx["flops"], counted["flops"])
    yield "acts", _diff(cx["acts"], counted["acts"])
    yield "fast flops", _diff(cx["flops"], flops(spec))
    yield "forward", _forward_backward(model, spec)
    back = ModelSpec.from_json(spec.to_json())
    yield "json", None if (back == spec and back.id == spec.id) else f"round trip: {back}"
    first, again = _seeded_state(spec), _seeded_state(spec)
    same = first.keys() == again.keys() and all(torch.equal(v, again[k])
                                                 for k, v in first.items())
    yield "determinism", None if same else "two builds under seed 0 differ"


def _seeded_state(spec) -> dict:
    import torch

    from ..model import build

    torch.manual_seed(0)
    return build(spec).state_dict()


def _independent_count(model, spec) -> dict:
    """flops by torch's FlopCounterMode (÷ 2, + biases), acts by forward hooks."""
    import torch
    from torch import nn
    from torch.utils.flop_counter import FlopCounterMode

    acts, bias = [0], [0]

    def hook(m, _inp, out):
        acts[0] += out[0].numel()  # one image
        if getattr(m, "bias", None) is not None:
            bias[0] += out[0].numel()

    kinds = (nn.Conv2d, nn.Linear, nn.MaxPool2d)
    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, kinds)]
    x = torch.zeros(1, 3, spec.resolution, spec.resolution)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    for h in handles:
        h.remove()
    return {"flops": fc.get_total_flops() // 2 + bias[0], "acts": acts[0]}


def _forward_backward(model, spec) -> str | None:
    import torch

    model.train()
    x = torch.randn(2, 3, spec.resolution, spec.resolution)
    y = model(x)
    if tuple(y.shape) != (2, spec.num_classes):
        return f"logits of shape {tuple(y.shape)}, expected (2, {spec.num_classes})"
    y.square().mean().backward()
    bad = [n for n, p in model.named_parameters() if p.grad is None or
           not torch.isfinite(p.grad).all()]
    if not torch.isfinite(y).all() or bad:
        return f"non-finite output or no gradient for {bad[:3]}"
    return None


def _diff(expected: int, got: int) -> str | None:
    return None if expected == got else f"counter {expected:,} vs {got:,}"

