"""The block registry: every block, stem and head a spec may name, each with its parameter
rules, its torch builder and its analytic counter side by side (pycls's `complexity()` beside
`__init__`), so builder and counter cannot drift.

A block type is a subclass of `BlockType` registered with `@register`: it names itself (and the
pycls names it answers to), says which stage parameters it reads, checks them (`validate`), and
writes `count` and `build` from the paired helpers of `dsd.blocks.layers`. Importing this
package never imports torch; `build` does. Blocks from outside the repository load from the
files named in $DSD_BLOCKS (paths, `os.pathsep`-separated) and from the `dsd.blocks` entry-point
group; `dsd check-block FILE` runs the generic checks on one (`dsd.blocks.check`). A new
built-in block is a file in this package and its module name in the import line at the bottom;
tests/test_blocks.py then checks it with every other registered block.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

from ..errors import DsdError
from ..plugins import Plugins
from .layers import ACTIVATION_ALIASES, ACTIVATIONS, Cx


class BlockArgs(NamedTuple):
    """A block's parameters besides its in/out widths and stride (one stage's, and the model's
    SE ratio and activation). A NamedTuple: the sampler makes one per stage per candidate."""

    b: int | Fraction = 1   # bottleneck ratio (pycls BOT_MUL = 1/b; b < 1: inverted)
    g: int = 1              # group width (1: depthwise)
    k: int = 3              # spatial kernel size
    se_ratio: float = 0.0
    activation: str = "relu"


class BlockType:
    """One kind of block. Subclasses set the class attributes and implement count and build.

    `uses` lists the stage parameters (of b, g, k) the block reads; the others must keep their
    defaults (b = 1, g = 1, k = 3) so one network has one spec. `se` is "never", "optional" or
    "required" (a positive `se_ratio`)."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    se: str = "never"
    description: str = ""

    def validate(self, w_in: int, w_out: int, stride: int, a: BlockArgs) -> str | None:
        """Why these arguments make no block of this type (one line), or None. The defaults
        check `uses` and `se`; override to add rules, calling super()."""
        for key, default in (("b", 1), ("g", 1), ("k", 3)):
            if key not in self.uses and getattr(a, key) != default:
                return f"block {self.name} has no parameter {key} (must be {default})"
        if self.se == "never" and a.se_ratio:
            return f"block {self.name} has no squeeze-excitation (se_ratio must be 0)"
        if self.se == "required" and not a.se_ratio > 0:
            return f"block {self.name} needs se_ratio > 0"
        if "k" in self.uses and (a.k < 1 or a.k % 2 != 1):
            return f"kernel size k={a.k}: must be odd and >= 1"
        return None

    def compatible(self, w: int, b, g: int) -> tuple[int, int | Fraction, int]:
        """Make a sampled stage's (w, b, g) buildable; the default changes nothing."""
        return w, b, g

    def count(self, cx: Cx, w_in: int, w_out: int, stride: int, a: BlockArgs) -> Cx:
        raise NotImplementedError

    def build(self, w_in: int, w_out: int, stride: int, a: BlockArgs):
        raise NotImplementedError

    def fast_flops(self, h: int, w_in: int, w_out: int, stride: int, a: BlockArgs) -> int:
        """Flops alone (the sampler's prefilter); override with plain arithmetic when the
        counter is too slow. Tests pin it equal to `count`."""
        return self.count(Cx(h), w_in, w_out, stride, a).flops


class StemType:
    """A stem: 3 input channels to `w` channels; `strides` are the conv strides it allows."""

    name: str = ""
    aliases: tuple[str, ...] = ()
    strides: tuple[int, ...] = (1, 2)
    description: str = ""

    def count(self, cx: Cx, w: int, stride: int, activation: str) -> Cx:
        raise NotImplementedError

    def build(self, w: int, stride: int, activation: str):
        raise NotImplementedError


BLOCKS: dict[str, BlockType] = {}
STEMS: dict[str, StemType] = {}
_ALIASES: dict[str, str] = {}
_STEM_ALIASES: dict[str, tuple[str, int | None]] = {}


def register(cls):
    """Class decorator: register a BlockType or StemType subclass (an instance of it)."""
    obj = cls()
    table, aliases = (BLOCKS, _ALIASES) if isinstance(obj, BlockType) else (STEMS, None)
    if not isinstance(obj, (BlockType, StemType)):
        raise TypeError(f"{cls.__name__}: not a BlockType or StemType")
    if not obj.name or obj.name in table or obj.name in _ALIASES:
        raise DsdError(f"block or stem name {obj.name!r} is empty or already registered")
    table[obj.name] = obj
    if aliases is not None:
        for a in obj.aliases:
            aliases[a] = obj.name
    return cls


def block_name(name: str, se_ratio: float = 0.0) -> str:
    """The registry name of a block name or pycls alias (res_bottleneck_block with SE is y)."""
    if name in BLOCKS:  # the common case: no alias, nothing to load
        return name
    _load_plugins()
    canon = _ALIASES.get(name, name)
    if name in _ALIASES and canon == "x" and se_ratio > 0:
        return "y"
    if name in _ALIASES and BLOCKS[canon].se == "required" and not se_ratio > 0:
        raise DsdError(f"block {name} ({canon}) needs se_ratio > 0")
    if canon not in BLOCKS:
        raise DsdError(f"unknown block {name!r}; known: {', '.join(known_blocks())} "
                       "(or a block of your own: see `dsd check-block`)")
    return canon


def known_blocks() -> list[str]:
    _load_plugins()
    return [f"{n} ({', '.join(b.aliases)})" if b.aliases else n for n, b in BLOCKS.items()]


def get_block(name: str) -> BlockType:
    return BLOCKS[block_name(name)]


def stem_name(name: str) -> tuple[str, int | None]:
    """(registry name, the conv stride a pycls stem name implies or None)."""
    if name in STEMS:
        return name, None
    if name in _STEM_ALIASES:
        return _STEM_ALIASES[name]
    known = list(STEMS) + list(_STEM_ALIASES)
    raise DsdError(f"unknown stem {name!r}; known: {', '.join(known)}")


def stem_aliases(name: str) -> list[str]:
    """The pycls stem names that mean stem `name` (at some stride)."""
    return [a for a, (target, _) in _STEM_ALIASES.items() if target == name]


def get_stem(name: str) -> StemType:
    return STEMS[stem_name(name)[0]]


def activation_name(name: str) -> str:
    name = ACTIVATION_ALIASES.get(name, name)
    if name not in ACTIVATIONS:
        raise DsdError(f"unknown activation {name!r}; allowed: {', '.join(ACTIVATIONS)}, "
                       f"{', '.join(ACTIVATION_ALIASES)}")
    return name


# --------------------------------------------------------------------------------------------
# Blocks from outside the repository

_plugins = Plugins("block", "DSD_BLOCKS", "dsd.blocks")


def _registered() -> list[str]:
    return [*BLOCKS, *STEMS]


def load_block_file(path: str | Path) -> list[str]:
    """Import a Python file that registers blocks; returns the names it added."""
    return _plugins.load_file(path, _registered)


def _load_plugins() -> None:
    """Blocks named by $DSD_BLOCKS and by installed packages' `dsd.blocks` entry points."""
    _plugins.load_all(_registered)


from . import bottleneck, mbconv, plain, stems  # noqa: E402,F401  (register the built-ins)

_STEM_ALIASES.update({"simple_stem_in": ("simple", 2), "res_stem_cifar": ("simple", 1),
                      "res_stem_in": ("res", 2), "stem_in": ("simple", 2)})
