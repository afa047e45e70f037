"""ModelSpec: the plain, frozen, JSON-serializable description of one AnyNet (DDS §3.1).

Every later stage (complexity, builder, store, training) takes a `ModelSpec`; nothing else
describes a network. Its block, stem and activation are names in the block registry
(`dsd.blocks`), which checks a spec's parameters. `adjust_compatibility` is the pycls rule that
makes the bottleneck width a multiple of the group width (NOTES §1), applied to every sampled
or generated model.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from . import blocks
from .datasets import Layout, layout  # noqa: F401  (a dataset's layout: dsd.datasets)
from .errors import DsdError


def chance_error(num_classes: int) -> float:
    """The top-1 error (%) of guessing: 100·(1 − 1/classes) (90 % on CIFAR-10)."""
    return 100.0 * (1.0 - 1.0 / num_classes)


def as_ratio(x) -> int | Fraction:
    """A bottleneck ratio b as an exact number: int when integral, else a Fraction. Accepts
    ints, Fractions, "p/q" strings and floats that are a fraction of small terms (0.25, 1/3)."""
    if type(x) is int and x > 0:  # the common case, first (sampling builds many specs)
        return x
    if isinstance(x, bool):
        raise DsdError(f"bottleneck ratio b={x!r}: must be a positive number")
    if isinstance(x, str):
        try:
            r = Fraction(x.strip())
        except (ValueError, ZeroDivisionError):
            raise DsdError(f"bottleneck ratio b={x!r}: must be a number or a fraction "
                           "like 1/4") from None
    elif isinstance(x, (int, Fraction)):
        r = Fraction(x)
    elif isinstance(x, float) and math.isfinite(x):
        r = Fraction(x).limit_denominator(1 << 16)
        if abs(float(r) - x) > 1e-12 * max(1.0, abs(x)):
            raise DsdError(f"bottleneck ratio b={x!r}: not a fraction of small terms; write "
                           "it as p/q")
    else:
        raise DsdError(f"bottleneck ratio b={x!r}: must be a positive number")
    if r <= 0:
        raise DsdError(f"bottleneck ratio b={x!r}: must be > 0")
    return int(r) if r.denominator == 1 else r


def ratio_of_bot_mul(m) -> int | Fraction:
    """pycls's bottleneck multiplier (BOT_MUL, NDS's bot_mul) as dsd's ratio b = 1/m, exact."""
    return as_ratio(1 / Fraction(as_ratio(m)))


def ratio_json(b: int | Fraction) -> int | str:
    """b in JSON: an int, or the string "p/q" (exact, and ids stay stable)."""
    return b if isinstance(b, int) else f"{b.numerator}/{b.denominator}"


@dataclass(frozen=True)
class Stage:
    """One stage: d identical blocks of width w, bottleneck ratio b (int or Fraction; pycls
    BOT_MUL = 1/b), group width g, first-block stride, and kernel size k (blocks that have
    one). Parameters a block does not read keep their defaults (b = 1, g = 1, k = 3)."""

    d: int
    w: int
    b: int | Fraction
    g: int
    stride: int
    k: int = 3

    def __post_init__(self) -> None:
        object.__setattr__(self, "b", as_ratio(self.b))

    def to_dict(self) -> dict:
        d = {"d": self.d, "w": self.w, "b": ratio_json(self.b), "g": self.g,
             "stride": self.stride}
        if self.k != 3:
            d["k"] = self.k
        return d


#: New ModelSpec fields and their defaults: left out of the canonical JSON at the default,
#: so every spec written before they existed keeps its JSON and its id.
_OPTIONAL = {"stem": "simple", "head_w": 0, "activation": "relu"}


@dataclass(frozen=True)
class ModelSpec:
    """A whole network: stem → stages of one block type → head (optional 1×1 conv, global
    pool, linear). Block, stem and activation are names in the registry (`dsd.blocks`)."""

    block: str  # x, y (x + SE), linear, basic, vanilla, mbconv, or a registered block
    stages: tuple[Stage, ...]
    stem_w: int = 32
    stem_stride: int = 2
    se_ratio: float = 0.0
    num_classes: int = 1000
    resolution: int = 224
    stem: str = "simple"
    head_w: int = 0
    activation: str = "relu"

    def __post_init__(self) -> None:
        se = self.se_ratio
        if isinstance(se, bool) or not isinstance(se, (int, float)) or not 0 <= se <= 1:
            raise DsdError(f"se_ratio must be a number in [0, 1], got {se!r}")
        object.__setattr__(self, "se_ratio", float(se))
        object.__setattr__(self, "block", blocks.block_name(self.block, self.se_ratio))
        object.__setattr__(self, "activation", blocks.activation_name(self.activation))
        if self.stem not in blocks.STEMS:
            raise DsdError(f"unknown stem {self.stem!r}; allowed: {', '.join(blocks.STEMS)}")
        stem = blocks.STEMS[self.stem]
        if self.stem_stride not in stem.strides:
            raise DsdError(f"stem {self.stem}: stride {self.stem_stride} not allowed "
                           f"({', '.join(map(str, stem.strides))})")
        for key in ("stem_w", "num_classes", "resolution"):
            if not _int_at_least(getattr(self, key), 1):
                raise DsdError(f"{key} must be an integer >= 1, got {getattr(self, key)!r}")
        if not _int_at_least(self.head_w, 0):
            raise DsdError(f"head_w must be an integer >= 0, got {self.head_w!r}")
        if not self.stages:
            raise DsdError("a spec needs at least one stage")
        block, w_in = blocks.BLOCKS[self.block], self.stem_w
        args = []
        for i, s in enumerate(self.stages, 1):
            if not all(_int_at_least(v, 1) for v in (s.d, s.w, s.g, s.stride, s.k)):
                raise DsdError(f"stage {i}: d, w, g, stride and k must be integers >= 1, "
                               f"got {s}")
            a = blocks.BlockArgs(s.b, s.g, s.k, self.se_ratio, self.activation)
            args.append(a)
            why = block.validate(w_in, s.w, s.stride, a) or (
                block.validate(s.w, s.w, 1, a) if s.d > 1 and (w_in, s.stride) != (s.w, 1)
                else None)
            if why:
                raise DsdError(f"stage {i}: {why}")
            w_in = s.w
        object.__setattr__(self, "_args", tuple(args))  # not a field: not in eq, hash, JSON

    def stage_args(self) -> tuple:
        """Per stage, the registry's arguments of its blocks (`blocks.BlockArgs`)."""
        return self._args

    # Paper symbols as per-stage tuples, for readers and tables.
    @property
    def ds(self) -> tuple[int, ...]:
        return tuple(s.d for s in self.stages)

    @property
    def ws(self) -> tuple[int, ...]:
        return tuple(s.w for s in self.stages)

    @property
    def bs(self) -> tuple:
        return tuple(s.b for s in self.stages)

    @property
    def gs(self) -> tuple[int, ...]:
        return tuple(s.g for s in self.stages)

    @property
    def ks(self) -> tuple[int, ...]:
        return tuple(s.k for s in self.stages)

    @property
    def depth(self) -> int:
        return sum(self.ds)

    def to_dict(self) -> dict:
        d = {"block": self.block, "stages": [s.to_dict() for s in self.stages],
             "stem_w": self.stem_w, "stem_stride": self.stem_stride, "se_ratio": self.se_ratio,
             "num_classes": self.num_classes, "resolution": self.resolution}
        d.update({k: getattr(self, k) for k, v in _OPTIONAL.items() if getattr(self, k) != v})
        return d

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal specs give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        fields = dict(d)
        try:
            fields["stages"] = tuple(Stage(**s) for s in fields["stages"])
            return cls(**fields)
        except (TypeError, KeyError) as e:
            raise DsdError(f"not a ModelSpec ({e})") from None

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        return cls.from_dict(json.loads(text))

    @property
    def id(self) -> str:
        """Stable 12-hex-digit hash of the canonical JSON."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:12]


def _int_at_least(v, minimum: int) -> bool:
    return type(v) is int and v >= minimum


def adjust_compatibility(ws, bs, gs, block: str = "x") -> tuple[list[int], list, list[int]]:
    """Make each stage buildable by its block type (`BlockType.compatible`); for the bottleneck
    blocks, pycls's rule (NOTES §1): the bottleneck width w/b becomes a multiple of its group
    width g (of lcm(g, 1/b) when b < 1), g never exceeds it, rounding half-to-even."""
    if not len(ws) == len(bs) == len(gs):
        raise DsdError("ws, bs and gs must have one value per stage")
    block_type = blocks.get_block(block)
    out = [block_type.compatible(int(w), as_ratio(b), int(g)) for w, b, g in zip(ws, bs, gs)]
    return [o[0] for o in out], [o[1] for o in out], [o[2] for o in out]


def make_spec(ds, ws, bs, gs, *, dataset: str = "imagenet", block: str = "x",
              se_ratio: float = 0.0, stem_w: int = 32, first_stride: int | None = None,
              strides=None, ks=None, stem: str = "simple", stem_stride: int | None = None,
              head_w: int = 0, activation: str = "relu",
              resolution: int | None = None, flops_range=None) -> ModelSpec | None:
    """A spec from per-stage lists in a dataset's layout, with compatibility applied.

    `first_stride` overrides the layout's first-stage stride (pycls's CIFAR RegNets: 2), or
    `strides` gives every stage's; `resolution` and `stem_stride` override the layout's; the
    `res` stem always has stride 2 (then its max-pool). With `flops_range` (lo, hi), a network
    whose flops fall outside it is not built: None (the sampler's prefilter; most candidates
    fall outside the window, and counting is cheaper than building a checked spec)."""
    lay = layout(dataset)
    block = blocks.block_name(block, se_ratio)
    ws, bs, gs = adjust_compatibility(ws, bs, gs, block)
    if strides is None:
        strides = [first_stride or lay.first_stride] + [2] * (len(ds) - 1)
    ks = ks or [3] * len(ds)
    if not len(ds) == len(strides) == len(ks) == len(ws):
        raise DsdError("ds, ws, bs, gs, strides and ks must have one value per stage")
    if stem_stride is None:  # the layout's, unless the stem has one stride (res: 2)
        strides_ok = blocks.get_stem(stem).strides
        stem_stride = strides_ok[0] if len(strides_ok) == 1 else lay.stem_stride
    rows = [_Row(int(d), w, b, g, int(s), int(k)) for d, w, b, g, s, k in
            zip(ds, ws, bs, gs, strides, ks)]
    fields = dict(block=block, stages=rows, stem_w=stem_w, stem_stride=stem_stride,
                  se_ratio=float(se_ratio) if blocks.get_block(block).se != "never" else 0.0,
                  num_classes=lay.num_classes, resolution=resolution or lay.resolution,
                  stem=stem, head_w=head_w, activation=activation)
    if flops_range is not None:
        f = _unchecked_flops(fields)
        if f is not None and not flops_range[0] <= f <= flops_range[1]:
            return None
    fields["stages"] = tuple(Stage(*r) for r in rows)
    return ModelSpec(**fields)


class _Row(NamedTuple):
    """A stage before it is a checked `Stage` (the sampler's prefilter counts these)."""

    d: int
    w: int
    b: int | Fraction
    g: int
    stride: int
    k: int


def _unchecked_flops(fields: dict) -> int | None:
    """The flops of ModelSpec(**fields) without building (and checking) it; None where the
    fields make no network (ModelSpec then says why)."""
    from .complexity import complexity, simple_stem_flops

    f, se = fields, fields["se_ratio"]
    args = [blocks.BlockArgs(s.b, s.g, s.k, se) for s in f["stages"]]  # counts ignore the act
    try:
        if f["stem"] == "simple" and not f["head_w"]:
            return simple_stem_flops(f["block"], f["stem_w"], f["stem_stride"],
                                     f["resolution"], f["num_classes"], f["stages"], args)
        from types import SimpleNamespace

        return complexity(SimpleNamespace(**f, stage_args=lambda: args))["flops"]
    except (ArithmeticError, LookupError, ValueError, TypeError, DsdError):
        return None
