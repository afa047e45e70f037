"""Training recipes: named, frozen, stored as JSON with every result (NOTES §5; no torch here).

`dds` is the DDS ImageNet sampling recipe, `nds` the NDS CIFAR-10 recipe. Both add three standard
stability remedies as explicit fields (a one-epoch linear warm-up, zero-initialised last BN γ of
each residual block, no weight decay on BN and bias): without them the graphed bf16 CIFAR runs
collapsed to chance (issue 3; see BENCHMARKS.md). `nds-plain` and `dds-plain` are the papers'
recipes without them. A result is keyed by (model, dataset, recipe hash), so any change of a field,
`subset` included, makes a new result instead of mixing silently.
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass

from ..datasets import get_dataset
from ..errors import DsdError
from ..store import recipe_hash

PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class Recipe:
    """One training recipe; `precision='auto'` means bf16 autocast on GPU and fp32 on CPU."""

    name: str
    epochs: int
    batch_size: int
    lr: float
    wd: float
    momentum: float = 0.9
    nesterov: bool = False
    schedule: str = "cosine"          # half-period cosine to 0, per iteration
    warmup_epochs: float = 0.0        # linear warm-up from warmup_factor·lr
    warmup_factor: float = 0.1
    zero_init_last_bn: bool = False   # last BN γ of each residual block starts at 0
    wd_bn_bias: bool = True           # False: no weight decay on BN γ/β and biases
    augment: str = "cifar"            # cifar: pad-4 crop + flip; imagenet: RRC 224 + flip
    precision: str = "auto"
    subset: int | None = None         # first N training images only
    test_subset: int | None = None    # first N test images only (quick runs, tests)

    def __post_init__(self) -> None:
        for key in ("epochs", "batch_size"):
            if getattr(self, key) < 1:
                raise DsdError(f"recipe {self.name}: {key} must be >= 1, got {getattr(self, key)}")
        if not self.lr > 0 or self.wd < 0:
            raise DsdError(f"recipe {self.name}: need lr > 0 and wd >= 0, got lr={self.lr}, "
                           f"wd={self.wd}")
        # descriptive fields, stored with results: only what the engine implements is allowed
        if self.schedule != "cosine" or self.augment not in ("cifar", "imagenet"):
            raise DsdError(f"recipe {self.name}: schedule must be 'cosine' and augment 'cifar' or "
                           f"'imagenet', got {self.schedule!r}, {self.augment!r}")
        if self.precision not in PRECISIONS:
            raise DsdError(f"precision must be one of {', '.join(PRECISIONS)}, "
                           f"got {self.precision!r}")
        for key in ("subset", "test_subset"):
            if getattr(self, key) is not None and getattr(self, key) < 1:
                raise DsdError(f"{key} must be >= 1, got {getattr(self, key)}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def hash(self) -> str:
        """The store's key for this recipe (sha1 of the sorted JSON)."""
        return recipe_hash(self.to_dict())

    def override(self, **changes) -> "Recipe":
        """A copy with the non-None `changes` applied (command-line overrides)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_REMEDIES = dict(warmup_epochs=1.0, zero_init_last_bn=True, wd_bn_bias=False)

RECIPES: dict[str, Recipe] = {
    # DDS §3.1 / NOTES §5: design-space sampling on ImageNet.
    "dds": Recipe("dds", epochs=10, batch_size=128, lr=0.05, wd=5e-5, augment="imagenet",
                  **_REMEDIES),
    "dds-plain": Recipe("dds-plain", epochs=10, batch_size=128, lr=0.05, wd=5e-5,
                        augment="imagenet"),
    # NDS: CIFAR-10, SGD Nesterov 0.9, lr 0.1, cosine, wd 5e-4.
    "nds": Recipe("nds", epochs=10, batch_size=128, lr=0.1, wd=5e-4, nesterov=True, **_REMEDIES),
    "nds-plain": Recipe("nds-plain", epochs=10, batch_size=128, lr=0.1, wd=5e-4, nesterov=True),
}

def get_recipe(name: str | None, dataset: str) -> Recipe:
    """A named recipe, or the default of sweeps sampled for `dataset` (its registry entry:
    `dds` for ImageNet, `nds` for CIFAR-10). An unknown dataset is an error either way."""
    default = get_dataset(dataset).recipe
    if name is None:
        if default is None:
            raise DsdError(f"dataset {dataset!r} has no default recipe; name one with --recipe "
                           f"({', '.join(RECIPES)})")
        name = default
    try:
        return RECIPES[name]
    except KeyError:
        raise DsdError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}") from None


def parse_duration(text: str | None) -> float | None:
    """'90s', '9m', '1h', '1h30m' or plain seconds → seconds (None stays None)."""
    if text is None:
        return None
    t = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", t):
        return float(t)
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", t)
    if not parts or "".join(a + b for a, b in parts) != t:
        raise DsdError(f"cannot read duration {text!r}; use e.g. 90s, 9m, 1h or 1h30m")
    return sum(float(v) * {"h": 3600, "m": 60, "s": 1}[u] for v, u in parts)
