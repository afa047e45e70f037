"""ModelSpec: the plain, frozen, JSON-serializable description of one AnyNet (DDS §3.1).

Every later stage (complexity, builder, store, training) takes a `ModelSpec`; nothing else
describes a network. `adjust_compatibility` is the pycls rule that makes the bottleneck
width a multiple of the group width (NOTES §1), applied to every sampled or generated model.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass

from .errors import DsdError


@dataclass(frozen=True)
class Layout:
    """Dataset-dependent template: input resolution, classes, stem and first-stage strides."""

    resolution: int
    num_classes: int
    stem_stride: int
    first_stride: int


#: ImageNet: 224², stem stride 2, every stage halves. CIFAR-10: 32², stem and stage 1 stride 1.
LAYOUTS: dict[str, Layout] = {
    "imagenet": Layout(resolution=224, num_classes=1000, stem_stride=2, first_stride=2),
    "cifar10": Layout(resolution=32, num_classes=10, stem_stride=1, first_stride=1),
}


def chance_error(num_classes: int) -> float:
    """The top-1 error (%) of guessing: 100·(1 − 1/classes) (90 % on CIFAR-10)."""
    return 100.0 * (1.0 - 1.0 / num_classes)


def layout(dataset: str) -> Layout:
    """The layout of a dataset name, or a clear error listing the known ones."""
    try:
        return LAYOUTS[dataset]
    except KeyError:
        raise DsdError(f"unknown dataset {dataset!r}; allowed: {', '.join(LAYOUTS)}") from None


@dataclass(frozen=True)
class Stage:
    """One stage: d identical blocks of width w, bottleneck ratio b, group width g."""

    d: int
    w: int
    b: int
    g: int
    stride: int


@dataclass(frozen=True)
class ModelSpec:
    """A whole network: stem → stages → head (global pool + linear)."""

    block: str  # "x" (residual bottleneck) or "y" (x + squeeze-excitation)
    stages: tuple[Stage, ...]
    stem_w: int = 32
    stem_stride: int = 2
    se_ratio: float = 0.0
    num_classes: int = 1000
    resolution: int = 224

    def __post_init__(self) -> None:
        if self.block not in ("x", "y"):
            raise DsdError(f"block must be 'x' or 'y', got {self.block!r}")
        if (self.block == "y") != (self.se_ratio > 0):
            raise DsdError("se_ratio must be > 0 exactly for block 'y'")
        for i, s in enumerate(self.stages, 1):
            if min(s.d, s.w, s.b, s.g, s.stride) < 1:
                raise DsdError(f"stage {i}: d, w, b, g and stride must be >= 1, got {s}")

    # Paper symbols as per-stage tuples, for readers and tables.
    @property
    def ds(self) -> tuple[int, ...]:
        return tuple(s.d for s in self.stages)

    @property
    def ws(self) -> tuple[int, ...]:
        return tuple(s.w for s in self.stages)

    @property
    def bs(self) -> tuple[int, ...]:
        return tuple(s.b for s in self.stages)

    @property
    def gs(self) -> tuple[int, ...]:
        return tuple(s.g for s in self.stages)

    @property
    def depth(self) -> int:
        return sum(self.ds)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no spaces): equal specs give equal strings."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict) -> "ModelSpec":
        fields = dict(d)
        fields["stages"] = tuple(Stage(**s) for s in fields["stages"])
        return cls(**fields)

    @classmethod
    def from_json(cls, text: str) -> "ModelSpec":
        return cls.from_dict(json.loads(text))

    @property
    def id(self) -> str:
        """Stable 12-hex-digit hash of the canonical JSON."""
        return hashlib.sha1(self.to_json().encode()).hexdigest()[:12]


def adjust_compatibility(ws, bs, gs) -> tuple[list[int], list[int], list[int]]:
    """Make each bottleneck width w/b a multiple of its group width g (NOTES §1, pycls).

    v = max(1, int(w / b)); g = min(g, v); v = max(g, round(v / g) * g); w = v * b.
    Rounding is half-to-even (Python's `round`), as in the reference.
    """
    if not len(ws) == len(bs) == len(gs):
        raise DsdError("ws, bs and gs must have one value per stage")
    out_w, out_g = [], []
    for w, b, g in zip(ws, bs, gs):
        if w < 1 or b < 1 or g < 1:
            raise DsdError(f"w, b, g must be >= 1, got w={w}, b={b}, g={g}")
        v = max(1, int(w / b))
        g = min(g, v)
        v = max(g, round(v / g) * g)
        out_w.append(int(v * b))
        out_g.append(int(g))
    return out_w, [int(b) for b in bs], out_g


def make_spec(ds, ws, bs, gs, *, dataset: str = "imagenet", block: str = "x",
              se_ratio: float = 0.0, stem_w: int = 32,
              first_stride: int | None = None) -> ModelSpec:
    """A spec from per-stage lists in a dataset's layout, with compatibility applied;
    `first_stride` overrides the layout's first-stage stride (pycls's CIFAR RegNets: 2)."""
    lay = layout(dataset)
    ws, bs, gs = adjust_compatibility(ws, bs, gs)
    strides = [first_stride or lay.first_stride] + [2] * (len(ds) - 1)
    stages = tuple(Stage(int(d), w, b, g, s) for d, w, b, g, s in zip(ds, ws, bs, gs, strides))
    return ModelSpec(block=block, stages=stages, stem_w=stem_w, stem_stride=lay.stem_stride,
                     se_ratio=se_ratio if block == "y" else 0.0,
                     num_classes=lay.num_classes, resolution=lay.resolution)
