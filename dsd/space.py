"""Design spaces as YAML files (DDS §3): load and validate once, then draw candidates.

A space file declares the AnyNet template (block, stem, stage count) and how each free
parameter is sampled: per stage (`stage_params`: d, w, b, g, as in AnyNetX, DDS §3.2) or through
the linear RegNet parameterization (`regnet`: d, w0, wa, wm, b, g, DDS §3.3). `extends` reuses a
parent file; `shared` and `non_decreasing` accumulate down the chain, so the AnyNetX A→E
refinements read as in the paper. Every error raises `DsdError` with one line naming the file,
the key path, the bad value and what is allowed.

Sampler names mean what the space's `samplers` convention says (`dsd.samplers`): `pycls`
(pycls's `sweep/random.py`, quantized to multiples of q; the default for YAML files) or `dsd1`
(dsd's first discretization, onto the grid low + k·step; what a stored definition without
`samplers` was drawn with). Differences from pycls otherwise: samplers take an explicit
`numpy.random.Generator`; non-decreasing parameters are drawn directly from the per-stage
distribution conditioned on order (the distribution of rejection sampling, without rejections).
"""
from __future__ import annotations

import math
import os
import re
from contextlib import contextmanager
import sys
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import yaml

from . import blocks
from .blocks.bottleneck import bottleneck_width
from .errors import DsdError
from .regnet import regnet_spec
from .samplers import CONVENTIONS, DEFAULT, LEGACY, ParamDef, non_decreasing
from .window import WINDOW_KEYS, Window, parse_count  # noqa: F401  (Window, parse_count re-exported)
from .datasets import layouts
from .spec import ModelSpec, as_ratio, make_spec


# --------------------------------------------------------------------------------------------
# SpaceDef


#: Per-stage parameters (AnyNet) and RegNet parameters, with their value rules:
#: (integer only, minimum, exclusive minimum, required multiple).
#: b is the bottleneck ratio, any positive number (b < 1: inverted bottleneck; "1/4" accepted);
#: k the kernel size, for blocks that have one. Parameters a block does not read (its `uses`)
#: may be left out (they are 1, 1 and 3).
_STAGE_RULES = {"d": (True, 1, None, None), "w": (True, 1, None, None),
                "b": (False, None, 0, None), "g": (True, 1, None, None),
                "k": (True, 1, None, None), "groups": (True, 1, None, None)}
_REGNET_RULES = {"d": (True, 1, None, None), "w0": (True, 8, None, 8),
                 "wa": (False, 0, None, None), "wm": (False, None, 1, None),
                 "b": (False, None, 0, None), "g": (True, 1, None, None),
                 "k": (True, 1, None, None)}
_OPTIONAL_PARAMS = {"b": 1, "g": 1, "k": 3}
#: Top-level sampled integers: the input resolution and (AnyNet) the stage count.
_MODEL_RULES = {"resolution": (True, 8, None, None), "stages": (True, 1, None, None)}


#: `draw_batch`'s mark for a candidate outside the flops range it was given (not built).
OUTSIDE = "outside the flops range"


@dataclass(frozen=True)
class SpaceDef:
    """A validated, resolved design space (after `extends`)."""

    name: str
    description: str
    kind: str  # "anynet" (per-stage params) | "regnet"
    block: str
    se_ratio: float
    stem_w: int
    stages: int  # AnyNet: stages sampled; RegNet: the required stage count
    params: tuple[ParamDef, ...]  # d, w, b, g (AnyNet) or d, w0, wa, wm, b, g (RegNet)
    shared: tuple[str, ...] = ()
    non_decreasing: tuple[str, ...] = ()
    windows: tuple[tuple[str, Window], ...] = ()
    extends: tuple[str, ...] = ()  # parent chain, nearest first
    samplers: str = DEFAULT  # sampler convention: "pycls" or "dsd1" (dsd.samplers)
    first_stride: int | None = None  # None: the dataset layout's (pycls CIFAR RegNets: 2)
    activation: str = "relu"
    stem_type: str = "simple"
    stem_stride: int | None = None  # None: the dataset layout's (the res stem: 2)
    head_w: int = 0
    #: Sampled input resolution per dataset ("*": every dataset); a dataset not named gets
    #: its layout's.
    resolution: tuple[tuple[str, ParamDef], ...] = ()
    stage_counts: ParamDef | None = None  # sampled stage count (AnyNet) / accepted (RegNet)
    omitted: tuple[str, ...] = ()  # b, g, k left out of the file (constants 1, 1, 3)
    source: str = field(default="", compare=False)

    def param(self, name: str) -> ParamDef:
        return next(p for p in self.params if p.name == name)

    def window(self, dataset: str) -> Window:
        """The default window for a dataset, or a clear error."""
        for ds, w in self.windows:
            if ds == dataset:
                return w
        known = ", ".join(ds for ds, _ in self.windows) or "none"
        raise DsdError(f"space {self.name!r} has no default window for {dataset!r} (it has: "
                       f"{known}); pass a window explicitly, e.g. --flops 400MF")

    def size(self) -> int:
        """Distinct configurations before the window and compatibility (Python int, exact for
        AnyNet). Per stage n^S, shared n, non-decreasing C(n+S-1, S). RegNet: the product of the
        parameter grids, an upper bound (the stage-count rejection is not subtracted)."""
        total = 0
        for S in self.stage_choices():
            part = 1
            for p in self.params:
                n = p.count
                if self.kind == "regnet" or p.name in self.shared:
                    part *= n
                elif p.name in self.non_decreasing:
                    part *= math.comb(n + S - 1, S)
                else:
                    part *= n**S
            total += part
            if self.kind == "regnet":
                break  # the stage count is a rejection criterion, not a parameter
        return total * max((p.count for _, p in self.resolution), default=1)

    def stage_choices(self) -> list[int]:
        """The stage counts a model of this space may have."""
        if self.stage_counts is None:
            return [self.stages]
        return sorted(int(v) for v in self.stage_counts.pmf()[0].tolist())

    @property
    def size_exact(self) -> bool:
        """False for RegNet spaces, whose size() is an upper bound."""
        return self.kind != "regnet"

    def draw(self, rng: np.random.Generator, dataset: str = "imagenet"
             ) -> tuple[ModelSpec, dict] | None:
        """One candidate: (spec with compatibility applied, raw params as drawn), or None when
        rejected (RegNet: not exactly `stages` stages). Same as draw_batch(rng, 1, dataset)."""
        return self.draw_batch(rng, 1, dataset)[0]

    def draw_batch(self, rng: np.random.Generator, size: int, dataset: str = "imagenet",
                   flops_range=None) -> list:
        """`size` candidates, as `draw`. Raw values are drawn vectorized, parameter by
        parameter (the generator is consumed per batch, so a batch of 2 is not two draws).

        AnyNet raw params: d1..dS, w1..wS, b1..bS, g1..gS (shared values repeated;
        non-decreasing ones drawn from the per-stage distribution conditioned on order, see
        `non_decreasing`). RegNet raw params: d, w0, wa, wm, b, g. With `flops_range` (lo, hi),
        a candidate whose flops fall outside it is `OUTSIDE` (counted, not built: the
        sampler's prefilter); the random stream is the same either way."""
        if self.kind == "regnet":
            return self._draw_regnet(rng, size, dataset, flops_range)
        res = self._draw_resolution(rng, size, dataset)
        if self.stage_counts is None:
            return self._draw_anynet(rng, size, self.stages, dataset, res, flops_range)
        counts = self.stage_counts.draw(rng, size).tolist()
        out: list = [None] * size
        for S in sorted(set(counts)):
            rows = [i for i, c in enumerate(counts) if c == S]
            drawn = self._draw_anynet(rng, len(rows), int(S), dataset, [res[i] for i in rows],
                                      flops_range)
            for i, cand in zip(rows, drawn):
                out[i] = cand if cand is OUTSIDE else (cand[0], {"stages": int(S), **cand[1]})
        return out

    def _draw_resolution(self, rng, size: int, dataset: str) -> list:
        table = dict(self.resolution)
        param = table.get(dataset, table.get("*"))
        if param is None:
            return [None] * size
        return [int(v) for v in param.draw(rng, size).tolist()]

    def _spec_kwargs(self, dataset: str, resolution, flops_range=None) -> dict:
        return dict(dataset=dataset, block=self.block, se_ratio=self.se_ratio,
                    stem_w=self.stem_w, first_stride=self.first_stride, stem=self.stem_type,
                    stem_stride=self.stem_stride, head_w=self.head_w,
                    activation=self.activation, resolution=resolution, flops_range=flops_range)

    def _draw_anynet(self, rng, size: int, S: int, dataset: str, res: list, flops_range=None):
        per = {}
        for p in self.params:
            if p.name in self.shared:
                v = np.repeat(p.draw(rng, size)[:, None], S, axis=1)
            elif p.name in self.non_decreasing:
                values, probs = p.pmf()
                order = np.argsort(values, kind="stable")  # choice lists may be unsorted
                v = non_decreasing(rng, values[order], probs[order], S, size)
            else:
                v = p.draw(rng, size * S).reshape(size, S)
            per[p.name] = v.tolist()
        ds, ws, bs, gs = per["d"], per["w"], per["b"], per["g"]
        if "groups" in per:  # a group count (NDS's num_gs): g = bottleneck width / groups
            gs = [[max(1, bottleneck_width(w, as_ratio(b)) // n) for w, b, n in zip(*row)]
                  for row in zip(ws, bs, per["groups"])]
        ks = per.get("k")
        out: list[tuple[ModelSpec, dict] | None] = []
        for i in range(size):
            spec = make_spec(ds[i], ws[i], bs[i], gs[i], ks=ks[i] if ks else None,
                             **self._spec_kwargs(dataset, res[i], flops_range))
            if spec is None:
                out.append(OUTSIDE)
                continue
            raw = {f"{k}{j}": v for k in per if not k in self.omitted
                   for j, v in enumerate(per[k][i], 1)}
            if res[i] is not None:
                raw["resolution"] = res[i]
            out.append((spec, raw))
        return out

    def _draw_regnet(self, rng, size, dataset, flops_range=None):
        res = self._draw_resolution(rng, size, dataset)
        cols = {p.name: p.draw(rng, size) for p in self.params}
        counts = self.stage_choices()
        # Most draws have the wrong number of stage indices. The last block's index
        # t = log(u_{d-1}/w0)/log(wm) rounds to the largest one (dsd.regnet.generate_widths is
        # monotone in j); skip draws whose t is clearly off, with a margin for float noise, so
        # regnet_spec (the authority) only sees plausible ones.
        d, w0, wa, wm = (cols[k].astype(float) for k in ("d", "w0", "wa", "wm"))
        t = np.log((w0 + wa * (d - 1)) / w0) / np.log(wm)
        plausible = np.zeros(size, dtype=bool)
        for S in counts:
            plausible |= np.abs(t - (S - 1)) <= 0.5 + 1e-9
        plausible = plausible.tolist()
        rows = {k: v.tolist() for k, v in cols.items()}
        kept = [k for k in rows if not k in self.omitted]
        ks = rows.get("k") or [3] * size
        kwargs = self._spec_kwargs(dataset, None, flops_range)
        out: list[tuple[ModelSpec, dict] | None] = []
        for i in range(size):
            if not plausible[i]:
                out.append(None)
                continue
            raw = {k: rows[k][i] for k in kept}
            if res[i] is not None:
                raw["resolution"] = kwargs["resolution"] = res[i]
            spec, count = regnet_spec(rows["d"][i], rows["w0"][i], rows["wa"][i], rows["wm"][i],
                                      rows["b"][i], rows["g"][i], k=ks[i], **kwargs)
            out.append(None if count not in counts else OUTSIDE if spec is None else
                       (spec, raw))
        return out

    def to_dict(self) -> dict:
        """The resolved definition as plain JSON-able data (stored with each sweep)."""
        d: dict[str, Any] = {"name": self.name, "description": self.description,
                             "block": self.block}
        if self.se_ratio or blocks.get_block(self.block).se == "required":
            d["se_ratio"] = self.se_ratio
        if self.activation != "relu":
            d["activation"] = self.activation
        d["stem"] = {"w": self.stem_w}
        if self.stem_type != "simple":
            d["stem"]["type"] = self.stem_type
        if self.stem_stride is not None:
            d["stem"]["stride"] = self.stem_stride
        if self.head_w:
            d["head"] = {"w": self.head_w}
        if self.resolution:
            table = {ds: p.to_dict() for ds, p in self.resolution}
            d["resolution"] = table["*"] if list(table) == ["*"] else table
        d["samplers"] = self.samplers
        d["stages"] = self.stages if self.stage_counts is None else self.stage_counts.to_dict()
        if self.first_stride is not None:
            d["first_stride"] = self.first_stride
        d["regnet" if self.kind == "regnet" else "stage_params"] = {
            p.name: p.to_dict() for p in self.params if not p.name in self.omitted}
        d["shared"] = list(self.shared)
        d["non_decreasing"] = list(self.non_decreasing)
        d["window"] = {ds: w.to_dict() for ds, w in self.windows}
        if self.extends:
            d["extends_chain"] = list(self.extends)
        return d

    def with_samplers(self, convention: str) -> "SpaceDef":
        """The same space drawn under another sampler convention: uniform and log_uniform
        keep their range and grid (dsd1's step = pycls's q, where low is a multiple of q);
        samplers the other convention lacks are an error naming the parameter."""
        if convention not in CONVENTIONS:
            raise DsdError(f"unknown sampler convention {convention!r}; allowed: "
                           f"{', '.join(CONVENTIONS)}")
        if convention == self.samplers:
            return self
        params = []
        for p in self.params:
            if p.sampler not in CONVENTIONS[convention]:
                raise DsdError(f"space {self.name!r}: parameter {p.name} uses sampler "
                               f"{p.sampler}, which the {convention} convention does not have")
            if p.sampler in ("uniform", "log_uniform"):
                low, _, q = p.args
                if (Decimal(repr(low)) % Decimal(repr(q))) != 0:
                    raise DsdError(f"space {self.name!r}: parameter {p.name}: low {low} is not "
                                   f"a multiple of {q}; the grids of {self.samplers} and "
                                   f"{convention} differ")
            params.append(ParamDef(p.name, p.sampler, p.args, convention))
        return replace(self, params=tuple(params), samplers=convention)

    @classmethod
    def from_dict(cls, data: dict, source: str = "<dict>") -> "SpaceDef":
        """Validate a resolved definition (e.g. a stored `to_dict()`); no `extends` allowed.
        Without `samplers` it was stored before conventions existed: dsd1."""
        data = dict(data)
        data.setdefault("samplers", LEGACY)
        chain = tuple(data.pop("extends_chain", ()))
        if "extends" in data:
            _fail(source, "extends", data["extends"], "not allowed in a resolved definition")
        return _build(data, {(): source}, chain, source)


# --------------------------------------------------------------------------------------------
# Loading


_TOP_KEYS = ("name", "description", "extends", "samplers", "block", "se_ratio", "activation",
             "stem", "head", "resolution", "stages", "first_stride", "stage_params", "regnet",
             "shared", "non_decreasing", "window")
_UNION_KEYS = ("shared", "non_decreasing")


def default_spaces_dir() -> Path:
    """$DSD_SPACES, else the repository's top-level `spaces/` (a checkout or editable install),
    else the copy a wheel installs under `<prefix>/share/dsd/spaces`."""
    env = os.environ.get("DSD_SPACES")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parent.parent / "spaces"
    installed = Path(sys.prefix) / "share" / "dsd" / "spaces"
    return installed if not repo.is_dir() and installed.is_dir() else repo


def load_space(name_or_path, spaces_dir=None) -> SpaceDef:
    """Load and validate a space by name (spaces_dir/NAME.yaml) or by path (*.yaml, *.yml, or
    containing a slash)."""
    path = _resolve(str(name_or_path), Path(spaces_dir) if spaces_dir else default_spaces_dir())
    merged, origin, chain = _load_merged(path, ())
    with _naming_child(path, chain[0] if chain else None):  # a key the parent set is bad
        return _build(merged, origin, tuple(chain), str(path))


def list_spaces(spaces_dir=None) -> list[SpaceDef]:
    """Every *.yaml space in the directory, sorted by name (the first bad file raises)."""
    spaces, bad = scan_spaces(spaces_dir)
    if bad:
        raise DsdError(bad[0][1])
    return spaces


def scan_spaces(spaces_dir=None) -> tuple[list[SpaceDef], list[tuple[Path, str]]]:
    """(the spaces that load, [(file, error line)] of those that do not), sorted by file name:
    one broken file does not hide the others."""
    d = Path(spaces_dir) if spaces_dir else default_spaces_dir()
    if not d.is_dir():
        raise DsdError(f"spaces directory not found: {d} (set --spaces-dir or DSD_SPACES)")
    spaces, bad = [], []
    for p in sorted(d.glob("*.y*ml")):
        try:
            spaces.append(load_space(p))
        except DsdError as e:
            bad.append((p, str(e)))
    return spaces, bad


def _resolve(name: str, spaces_dir: Path) -> Path:
    if name.endswith((".yaml", ".yml")) or "/" in name or os.sep in name:
        path = Path(name)
    else:
        path = spaces_dir / f"{name}.yaml"
        if not path.exists() and (spaces_dir / f"{name}.yml").exists():
            path = spaces_dir / f"{name}.yml"
    if not path.is_file():
        known = sorted(p.stem for p in spaces_dir.glob("*.y*ml")) if spaces_dir.is_dir() else []
        raise DsdError(f"space {name!r} not found ({path}); known spaces in {spaces_dir}: "
                       f"{', '.join(known) or 'none'}")
    return path


_MISSING = object()


def _fail(file, path, value, allowed: str) -> NoReturn:
    """Raise the one-line error: FILE: key.path: got VALUE; what is allowed."""
    key = ".".join(str(p) for p in path) if isinstance(path, tuple) else path
    got = "missing" if value is _MISSING else f"got {value!r}"
    raise DsdError(f"{file}: {key or '(top level)'}: {got}; {allowed}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last one)."""

    def construct_mapping(self, node, deep=False):
        first: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in first:
                    raise _DuplicateKey(key, line, first[key])
            except TypeError:   # an unhashable key: let PyYAML report it
                continue
            first[key] = line
        return super().construct_mapping(node, deep=deep)


class _DuplicateKey(Exception):
    def __init__(self, key, line: int, first: int):
        self.key, self.line, self.first = key, line, first


def _read(path: Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = e.object[:e.start].count(b"\n") + 1
        raise DsdError(f"{path}: not UTF-8 text (byte 0x{e.object[e.start]:02x} on line {line}, "
                       f"offset {e.start}); save the file as UTF-8") from None
    except OSError as e:
        raise DsdError(f"{path}: cannot read ({e.strerror})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as e:
        raise DsdError(f"{path}: line {e.line}: key {e.key!r} given twice (first at line "
                       f"{e.first}); each key may appear once per mapping") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise DsdError(f"{path}: YAML syntax error at {where}{problem}") from None
    if not isinstance(data, dict):
        _fail(path, (), data, "a space file must be a YAML mapping of keys")
    for key in data:
        if key not in _TOP_KEYS:
            _fail(path, (key,), data[key], f"unknown key; allowed: {', '.join(_TOP_KEYS)}")
    if "name" not in data:
        _fail(path, ("name",), _MISSING, "required: the space name (= the file name)")
    if data["name"] != path.stem:
        _fail(path, ("name",), data["name"], f"must equal the file name {path.stem!r}")
    for key in _UNION_KEYS:
        v = data.get(key, [])
        if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            _fail(path, (key,), v, "must be a list of parameter names, e.g. [b, g]")
    return data


def _load_merged(path: Path, stack: tuple[Path, ...]):
    """(merged dict, origin {key path: file}, parent chain) of a file and its ancestors."""
    if path.resolve() in stack:
        cycle = " -> ".join(p.stem for p in (*stack, path.resolve()))
        raise DsdError(f"{path}: extends: cycle {cycle}")
    data = _read(path)
    parent = data.pop("extends", None)
    if parent is None:
        origin: dict[tuple, str] = {}
        _mark(origin, (), data, str(path))
        return dict(data), origin, []
    if not isinstance(parent, str):
        _fail(path, ("extends",), parent, "must be the name of another space")
    ppath = _parent_path(path, parent)
    with _naming_child(path, parent):  # a broken parent: say which child it breaks
        base, origin, chain = _load_merged(ppath, (*stack, path.resolve()))
    base.pop("description", None)  # name and description belong to each file
    _mark(origin, (), data, str(path))
    return _merge(base, data), origin, [ppath.stem, *chain]


@contextmanager
def _naming_child(path: Path, parent: str | None):
    """An error about another file, raised while loading `path`, names `path` first."""
    try:
        yield
    except DsdError as e:
        if parent is None or str(e).startswith(f"{path}:"):
            raise
        raise DsdError(f"{path}: extends {parent}, which does not load: {e}") from None


def _parent_path(path: Path, parent: str) -> Path:
    """The file `extends: parent` names: beside the child, else a shipped space (so a space of
    one's own in another folder can extend regnetx)."""
    dirs = list(dict.fromkeys([path.parent, default_spaces_dir()]))
    for d in dirs:
        try:
            return _resolve(parent, d)
        except DsdError:
            continue
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.y*ml")})
    _fail(path, ("extends",), parent, f"unknown space; known: {', '.join(known)}")


def _mark(origin: dict, prefix: tuple, value, file: str) -> None:
    origin[prefix] = file
    if isinstance(value, dict):
        for k, v in value.items():
            _mark(origin, (*prefix, k), v, file)


def _merge(base: dict, child: dict) -> dict:
    """Deep merge, child wins. A child mapping with a `sampler` key replaces the parent's
    parameter whole (one without merges key by key); shared and non_decreasing are unioned."""
    out = dict(base)
    for k, v in child.items():
        if k in _UNION_KEYS:
            out[k] = list(base.get(k, [])) + [x for x in v if x not in base.get(k, [])]
        elif isinstance(v, dict) and isinstance(base.get(k), dict) and "sampler" not in v:
            out[k] = _merge(base[k], v)
        else:
            out[k] = v
    return out


class _Checker:
    """Validation of a merged definition; errors name the file that set the key."""

    def __init__(self, origin: dict, default: str):
        self.origin, self.default = origin, default

    def fail(self, path: tuple, value, allowed: str) -> NoReturn:
        for i in range(len(path), -1, -1):
            if path[:i] in self.origin:
                _fail(self.origin[path[:i]], path, value, allowed)
        _fail(self.default, path, value, allowed)

    def number(self, path, v, *, integer=False, minimum=None, above=None, what=""):
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        bound = (f" >= {minimum}" if minimum is not None else "") + (
            f" > {above}" if above is not None else "")
        if isinstance(v, bool) or not ok:
            self.fail(path, v, f"must be {'an integer' if integer else 'a number'}{bound}{what}")
        if (minimum is not None and v < minimum) or (above is not None and v <= above):
            self.fail(path, v, f"must be{bound}{what}")
        return v

    def mapping(self, path, v, allowed: tuple, required: tuple = ()):
        if not isinstance(v, dict):
            self.fail(path, v, f"must be a mapping with keys {', '.join(allowed)}")
        for k in v:
            if k not in allowed:
                self.fail((*path, k), v[k], f"unknown key; allowed: {', '.join(allowed)}")
        for k in required:
            if k not in v:
                self.fail((*path, k), _MISSING, f"required: {', '.join(required)}")
        return v

    def param(self, path: tuple, v, rules, convention: str) -> ParamDef:
        """A parameter: bare scalar (constant) or {sampler: NAME, …args} of the convention's
        samplers; values obey rules."""
        integer, minimum, above, multiple = rules
        rule = (f" (parameter {path[-1]}: {'integers' if integer else 'numbers'}"
                f"{f' >= {minimum}' if minimum is not None else ''}"
                f"{f' > {above}' if above is not None else ''}"
                f"{f', multiples of {multiple}' if multiple else ''})")

        def value(p, x):
            self.number(p, x, integer=integer, minimum=minimum, above=above, what=rule)
            if multiple and x % multiple:
                self.fail(p, x, f"must be a multiple of {multiple}{rule}")
            return x

        if not isinstance(v, dict):
            return ParamDef(path[-1], "constant", (value(path, v),), convention)
        table = CONVENTIONS[convention]
        name = v.get("sampler")
        if name not in table or name == "constant":
            allowed = ", ".join(s for s in table if s != "constant")
            self.fail((*path, "sampler"), name, f"unknown sampler; allowed: {allowed} "
                      f"(samplers: {convention}), or a bare number for a constant")
        argnames = table[name][1]
        other = "step" if convention == "pycls" else "q"
        if other in v and other not in argnames:
            self.fail((*path, other), v[other], f"unknown key; allowed: sampler, "
                      f"{', '.join(argnames)} ({other} belongs to the "
                      f"{'dsd1' if other == 'step' else 'pycls'} convention: set `samplers:`)")
        self.mapping(path, v, ("sampler", *argnames), ("sampler", *argnames))
        if name == "choice":
            vals = v["values"]
            if not isinstance(vals, list) or not vals:
                self.fail((*path, "values"), vals, "must be a non-empty list of values")
            for i, x in enumerate(vals):
                value((*path, "values", i), x)
            if len(set(vals)) != len(vals):
                self.fail((*path, "values"), vals, "values must be distinct")
            return ParamDef(path[-1], name, (tuple(vals),), convention)
        if convention == "pycls":
            return self._pycls_param(path, v, name, integer, value, multiple, rule)
        low, high = value((*path, "low"), v["low"]), value((*path, "high"), v["high"])
        step = self.number((*path, "step"), v["step"], integer=integer, above=0, what=rule)
        if multiple and step % multiple:
            self.fail((*path, "step"), step, f"must be a multiple of {multiple}{rule}")
        if low > high:
            self.fail((*path, "low"), low, f"must be <= high ({high})")
        if name == "log_uniform" and low <= 0:
            self.fail((*path, "low"), low, "must be > 0 for log_uniform")
        try:
            span = (Decimal(repr(high)) - Decimal(repr(low))) / Decimal(repr(step))
        except InvalidOperation:
            self.fail(path, v, "low, high and step must be finite numbers")
        if span != span.to_integral_value():
            self.fail((*path, "high"), high, f"must lie on the grid low + k*step "
                      f"(low={low}, step={step})")
        return ParamDef(path[-1], name, (low, high, step), convention)

    def _pycls_param(self, path, v, name, integer, value, multiple, rule) -> ParamDef:
        """pycls's `validate_rand` rules, plus dsd's value rules for the parameter."""
        if name == "power2_or_log_uniform":  # low, high need not be multiples of q
            low = self.number((*path, "low"), v["low"], integer=integer, above=0, what=rule)
            high = self.number((*path, "high"), v["high"], integer=integer, above=0, what=rule)
        else:
            low, high = value((*path, "low"), v["low"]), value((*path, "high"), v["high"])
        q = self.number((*path, "q"), v["q"], integer=integer, above=0, what=rule)
        if low > high:
            self.fail((*path, "low"), low, f"must be <= high ({high})")
        if low <= 0 and name not in ("uniform", "normal"):
            self.fail((*path, "low"), low, f"must be > 0 for {name}")
        if name.startswith("power2"):
            for key, x in (("low", low), ("high", high), ("q", q)):
                if not math.log2(x).is_integer():
                    self.fail((*path, key), x, f"must be a power of 2 for {name}")
        else:
            for key, x in (("low", low), ("high", high)):
                try:
                    off = Decimal(repr(x)) % Decimal(repr(q))
                except InvalidOperation:
                    self.fail(path, v, "low, high and q must be finite numbers")
                if off != 0:
                    self.fail((*path, key), x, f"must be a multiple of q={q} for {name}")
        p = ParamDef(path[-1], name, (low, high, q), "pycls")
        if multiple and q % multiple and not name.startswith("power2"):
            self.fail((*path, "q"), q, f"must be a multiple of {multiple}{rule}")
        if name.startswith("power2"):  # few values (powers of two, or a log-uniform tail)
            for x in p.pmf()[0].tolist():
                value((*path, f"values given by q={q}"), x)
        return p


def _build(d: dict, origin: dict, chain: tuple, source: str) -> SpaceDef:
    c = _Checker(origin, source)
    for key in d:
        if key not in _TOP_KEYS:
            c.fail((key,), d[key], f"unknown key; allowed: {', '.join(_TOP_KEYS)}")
    for key in ("name", "block", "stages"):
        if key not in d:
            c.fail((key,), _MISSING, "required: name, block, stages, and stage_params or "
                   "regnet")
    name, desc = d["name"], d.get("description", "")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        c.fail(("name",), name, "must be a name of letters, digits, _ . -")
    if not isinstance(desc, str):
        c.fail(("description",), desc, "must be a string")
    block, se_ratio = _block(c, d)
    activation = d.get("activation", "relu")
    try:
        activation = blocks.activation_name(activation)
    except DsdError as e:
        c.fail(("activation",), activation, str(e).split("; ", 1)[1])
    stem = c.mapping(("stem",), d.get("stem", {"w": 32}), ("w", "type", "stride"), ("w",))
    stem_w = c.number(("stem", "w"), stem["w"], integer=True, minimum=1)
    stem_type, stem_stride = _stem(c, stem)
    head = c.mapping(("head",), d.get("head", {"w": 0}), ("w",), ("w",))
    head_w = c.number(("head", "w"), head["w"], integer=True, minimum=0)
    convention = d.get("samplers", DEFAULT)
    if convention not in CONVENTIONS:
        c.fail(("samplers",), convention, f"unknown sampler convention; allowed: "
               f"{', '.join(CONVENTIONS)} (dsd.samplers)")
    resolution = _resolution(c, d.get("resolution"), convention)
    stage_counts = None
    if isinstance(d["stages"], dict):
        stage_counts = c.param(("stages",), d["stages"], _MODEL_RULES["stages"], convention)
        stages = int(max(stage_counts.pmf()[0].tolist()))
    else:
        stages = c.number(("stages",), d["stages"], integer=True, minimum=1,
                          what=" (or a sampler of stage counts)")
    first_stride = d.get("first_stride")
    if first_stride is not None and first_stride not in (1, 2):
        c.fail(("first_stride",), first_stride, "allowed: 1, 2 (default: the dataset's layout)")
    if "regnet" in d and "stage_params" in d:
        c.fail(("regnet",), d["regnet"], "a space needs exactly one of stage_params (AnyNet) "
               "or regnet, and stage_params is given too")
    if "regnet" not in d and "stage_params" not in d:
        c.fail(("stage_params",), _MISSING, "a space needs exactly one of stage_params "
               "(AnyNet) or regnet")
    if "regnet" in d and stage_counts is not None and stage_counts.sampler != "choice":
        c.fail(("stages",), d["stages"], "a regnet space takes a stage count or a choice of "
               "accepted counts")
    kind = "regnet" if "regnet" in d else "anynet"
    rules = _REGNET_RULES if kind == "regnet" else _STAGE_RULES
    section = "regnet" if kind == "regnet" else "stage_params"
    uses = blocks.get_block(block).uses
    optional = tuple(k for k in _OPTIONAL_PARAMS if k not in uses)
    given = d[section] if isinstance(d[section], dict) else {}
    if "groups" in given and ("g" not in uses or "g" in given):
        c.fail((section, "groups"), given["groups"], "a group count replaces g (give one of "
               "them) and needs a block with groups")
    required = tuple(k for k in rules if k != "groups" and (
        k not in _OPTIONAL_PARAMS or k in uses and k != "k" and not (k == "g" and "groups"
                                                                      in given)))
    raw = c.mapping((section,), d[section], tuple(rules), required)
    for k in optional:
        if k in raw and raw[k] != _OPTIONAL_PARAMS[k]:
            c.fail((section, k), raw[k], f"block {block} has no parameter {k} (leave it out)")
    omitted = tuple(k for k in _OPTIONAL_PARAMS if k not in raw)
    raw = {**{k: _OPTIONAL_PARAMS[k] for k in omitted}, **raw}
    params = tuple(c.param((section, k), _ratio_values(raw[k]) if k == "b" else raw[k],
                           rules[k], convention) for k in rules if k in raw)
    lists = {}
    for key in _UNION_KEYS:
        v = d.get(key, [])
        if not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            c.fail((key,), v, "must be a list of parameter names, e.g. [b, g]")
        for x in v:
            if kind == "regnet":
                c.fail((key,), x, "regnet spaces have no per-stage parameters; must be []")
            if x not in rules:
                c.fail((key,), x, f"unknown parameter; allowed: {', '.join(rules)}")
        lists[key] = tuple(dict.fromkeys(v))
    windows = []
    wins = c.mapping(("window",), d.get("window", {}), tuple(layouts()))
    for ds, w in wins.items():
        c.mapping(("window", ds), w, WINDOW_KEYS)
        ranges = {}
        for k, r in w.items():
            p = ("window", ds, k)
            if not (isinstance(r, list) and len(r) == 2):
                c.fail(p, r, "must be [lo, hi], e.g. [360MF, 400MF]")
            try:
                lo, hi = parse_count(r[0]), parse_count(r[1])
            except DsdError:
                c.fail(p, r, "counts like 400MF, 1.6GF, 5.2M, 360000000")
            if lo > hi:
                c.fail(p, r, "must have lo <= hi")
            ranges[k] = (lo, hi)
        windows.append((ds, Window(**ranges)))
    return SpaceDef(name=name, description=desc.strip(), kind=kind, block=block,
                    se_ratio=float(se_ratio), stem_w=stem_w, stages=stages, params=params,
                    shared=lists["shared"], non_decreasing=lists["non_decreasing"],
                    windows=tuple(windows), extends=chain, samplers=convention,
                    first_stride=first_stride, activation=activation, stem_type=stem_type,
                    stem_stride=stem_stride, head_w=head_w, resolution=resolution,
                    stage_counts=stage_counts, omitted=omitted, source=source)


def _resolution(c: "_Checker", v, convention: str) -> tuple[tuple[str, ParamDef], ...]:
    """`resolution`: a value or sampler for every dataset, or a mapping dataset → one."""
    if v is None:
        return ()
    rule = _MODEL_RULES["resolution"]
    if isinstance(v, dict) and "sampler" not in v:
        c.mapping(("resolution",), v, tuple(layouts()))
        return tuple((ds, c.param(("resolution", ds), x, rule, convention))
                     for ds, x in v.items())
    return (("*", c.param(("resolution",), v, rule, convention)),)


def _block(c: "_Checker", d: dict) -> tuple[str, float]:
    """(registry name, SE ratio) of the `block` and `se_ratio` keys."""
    name = d["block"]
    se = d.get("se_ratio", 0.0)
    try:
        block = blocks.block_name(str(name), se if isinstance(se, (int, float)) else 0.0)
    except DsdError as e:
        c.fail(("block",), name, "allowed: " + ", ".join(blocks.known_blocks()))
    rule = blocks.get_block(block).se
    if rule == "required" and "se_ratio" not in d:
        c.fail(("se_ratio",), _MISSING, f"required with block {block} (the paper uses 0.25)")
    if rule == "never" and "se_ratio" in d:
        c.fail(("se_ratio",), d["se_ratio"], f"not allowed with block {block} (no SE; y is x "
               "with SE)")
    if "se_ratio" in d:
        se = c.number(("se_ratio",), d["se_ratio"], minimum=0, what=" (in [0, 1])")
        if se > 1 or (rule == "required" and se == 0):
            c.fail(("se_ratio",), se, "must be in (0, 1]" if rule == "required" else
                   "must be in [0, 1]")
    return block, float(se)


def _stem(c: "_Checker", stem: dict) -> tuple[str, int | None]:
    """(registry stem name, conv stride or None for the dataset layout's)."""
    given = stem.get("type", "simple")
    try:
        name, implied = blocks.stem_name(str(given))
    except DsdError as e:
        c.fail(("stem", "type"), given, str(e).split("; ", 1)[1])
    allowed = blocks.STEMS[name].strides
    stride = stem.get("stride", implied if len(allowed) > 1 else allowed[0])
    if stride is not None and stride not in allowed:
        c.fail(("stem", "stride"), stride, f"stem {name} allows stride "
               f"{', '.join(map(str, allowed))}")
    return name, stride


def _ratio_values(v):
    """Bottleneck ratios may be written as fractions ("1/4"): as floats for the samplers (dsd's
    specs turn them back into exact ratios, `dsd.spec.as_ratio`)."""
    def one(x):
        if isinstance(x, str):
            try:
                return float(Fraction(x.strip()))
            except (ValueError, ZeroDivisionError):
                return x  # the checker names it
        return x
    if isinstance(v, dict):
        return {k: ([one(x) for x in val] if k == "values" and isinstance(val, list)
                    else one(val)) for k, val in v.items()}
    return one(v)
