"""Studies: the spaces, pairs and claims a population is checked against, as data.

A study file (YAML; the shipped one is `dsd/studies/dds.yaml`, the claims of the DDS paper)
lists the order of its spaces, the pairs it compares (each optionally with a claim and the
space the claim says is better), claims about one parameter within one space (error rises
or falls with it, or the best models have it near a value) and subset claims (within some
spaces, the models whose per-stage values follow an order, e.g. non-decreasing widths as in
DDS Fig. 7, against the rest). `dsd summarize --study FILE` and `dsd report --study FILE`
turn it into Findings rows; without a file the DDS study is used.

The file is validated once, here, into a frozen `Study`; every error is one DsdError line
naming the file, the field (`pairs[2].better`), the value and what is allowed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from ..errors import DsdError

#: the study shipped with dsd (dsd/studies/NAME.yaml), used when none is given
DEFAULT = "dds"
BETTER = ("a", "b", "neither")
TRENDS = ("rises", "falls")
KEYS = ("name", "title", "source", "spaces", "pairs", "trends", "subsets")
PAIR_KEYS = ("a", "b", "claim", "better")
TREND_KEYS = ("space", "param", "claim", "trend", "best", "near")
SUBSET_KEYS = ("spaces", "param", "order", "better", "claim")
SUBSET_BETTER = ("in", "rest", "neither")
#: per-stage parameters a subset rule may order: name → the ModelSpec attribute
STAGE_PARAMS = {"w": "ws", "d": "ds", "b": "bs", "g": "gs"}


# ---- subset rules: (stage values) -> bool, one small function per order ---------------------
def non_decreasing(v) -> bool:
    """v_{i+1} ≥ v_i for every stage i (DDS Fig. 7: AnyNetXD's widths, AnyNetXE's depths)."""
    return all(b >= a for a, b in zip(v, v[1:]))


def non_increasing(v) -> bool:
    """v_{i+1} ≤ v_i for every stage i."""
    return all(b <= a for a, b in zip(v, v[1:]))


def equal(v) -> bool:
    """v_{i+1} = v_i for every stage i (one value shared by all stages)."""
    return all(b == a for a, b in zip(v, v[1:]))


ORDERS = {"non-decreasing": non_decreasing, "non-increasing": non_increasing, "equal": equal}
ORDER_SYMBOL = {"non-decreasing": "≥", "non-increasing": "≤", "equal": "="}


class PairClaim(NamedTuple):
    """Compare space a with space b (Δ = b − a); with a claim, `better` is "a", "b" or
    "neither" (the claim says there is no difference)."""

    a: str
    b: str
    claim: str | None = None
    better: str | None = None


class TrendClaim(NamedTuple):
    """A claim about `param` within `space`: `trend` "rises"/"falls" (error with the parameter),
    or `best` with its window `near` = (lo, hi) (the best models have the parameter near it)."""

    space: str
    param: str
    claim: str
    trend: str | None = None
    best: float | None = None
    near: tuple[float, float] | None = None


class SubsetClaim(NamedTuple):
    """Within each of `spaces`, the models whose per-stage `param` (w, d, b or g) follows
    `order` (ORDERS) against the rest of that space; `better`: "in" (the subset), "rest", or
    "neither" (the claim says there is no difference)."""

    spaces: tuple[str, ...]
    param: str
    order: str
    better: str
    claim: str

    @property
    def rule(self) -> str:
        """The rule in the paper's notation, e.g. 'w_{i+1} ≥ w_i'."""
        return f"{self.param}_{{i+1}} {ORDER_SYMBOL[self.order]} {self.param}_i"

    def holds(self, stages) -> bool:
        """Whether the per-stage values `stages` (e.g. a ModelSpec's ws) satisfy the rule."""
        return ORDERS[self.order](tuple(stages))


@dataclass(frozen=True)
class Study:
    name: str
    title: str
    source: str  # whose claims: "paper" for DDS ("claim (paper)"), "study" by default
    spaces: tuple[str, ...]
    pairs: tuple[PairClaim, ...]
    trends: tuple[TrendClaim, ...]
    path: str = ""
    subsets: tuple[SubsetClaim, ...] = ()

    def rank(self, space: str) -> int:
        """Position of a space in the study's order; spaces not listed come after."""
        return self.spaces.index(space) if space in self.spaces else len(self.spaces)

    def claim(self, a: str, b: str) -> PairClaim | None:
        """The study's pair (a, b) with its claim, or None."""
        return next((p for p in self.pairs if (p.a, p.b) == (a, b)), None)


# ---- loading and validation ---------------------------------------------------------------
def _fail(where: str, field: str, value: Any, allowed: str) -> None:
    raise DsdError(f"study {where}: {field}: {value!r} is not allowed; {allowed}")


def _text(where: str, field: str, v: Any, *, required: bool = True) -> str | None:
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v.strip():
        _fail(where, field, v, "give a non-empty string")
    return v.strip()


def _number(where: str, field: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        _fail(where, field, v, "give a finite number")
    return float(v)


def _mapping(where: str, field: str, v: Any, keys: tuple[str, ...]) -> dict:
    if not isinstance(v, dict):
        _fail(where, field, v, f"give a mapping with keys {', '.join(keys)}")
    extra = [k for k in v if k not in keys]
    if extra:
        _fail(where, f"{field}.{extra[0]}", v[extra[0]],
              f"unknown key {extra[0]!r}; allowed keys: {', '.join(keys)}")
    return v


def _list(where: str, field: str, v: Any) -> list:
    if v is None:
        return []
    if not isinstance(v, list):
        _fail(where, field, v, "give a list")
    return v


def _pair(where: str, i: int, item: Any) -> PairClaim:
    f = f"pairs[{i}]"
    item = _mapping(where, f, item, PAIR_KEYS)
    a, b = (_text(where, f"{f}.{k}", item.get(k)) for k in ("a", "b"))
    if a == b:
        _fail(where, f"{f}.b", b, "compare two different spaces")
    claim = _text(where, f"{f}.claim", item.get("claim"), required=False)
    better = item.get("better")
    if claim is None and better is None:
        return PairClaim(a, b)
    if better not in BETTER:
        _fail(where, f"{f}.better", better,
              f"allowed: {', '.join(BETTER)} (the space the claim says is better)")
    if claim is None:
        _fail(where, f"{f}.claim", None, "a pair with `better` needs its claim text")
    return PairClaim(a, b, claim, better)


def _trend(where: str, i: int, item: Any) -> TrendClaim:
    f = f"trends[{i}]"
    item = _mapping(where, f, item, TREND_KEYS)
    space, param, claim = (_text(where, f"{f}.{k}", item.get(k))
                           for k in ("space", "param", "claim"))
    trend, best, near = item.get("trend"), item.get("best"), item.get("near")
    if (trend is None) == (best is None):
        _fail(where, f, {k: item.get(k) for k in ("trend", "best")},
              "give exactly one of trend (rises, falls) or best (with near: [lo, hi])")
    if trend is not None:
        if trend not in TRENDS:
            _fail(where, f"{f}.trend", trend, f"allowed: {', '.join(TRENDS)}")
        if near is not None:
            _fail(where, f"{f}.near", near, "near belongs to a best claim, not to a trend")
        return TrendClaim(space, param, claim, trend=trend)
    best = _number(where, f"{f}.best", best)
    if not isinstance(near, list) or len(near) != 2:
        _fail(where, f"{f}.near", near, "give [lo, hi], the window the claim calls near best")
    lo, hi = (_number(where, f"{f}.near", v) for v in near)
    if not lo <= best <= hi or lo == hi:
        _fail(where, f"{f}.near", near, f"give lo < hi with lo ≤ best ({best:g}) ≤ hi")
    return TrendClaim(space, param, claim, best=best, near=(lo, hi))


def _subset(where: str, i: int, item: Any) -> SubsetClaim:
    f = f"subsets[{i}]"
    item = _mapping(where, f, item, SUBSET_KEYS)
    spaces = item.get("spaces")
    if not isinstance(spaces, list) or not spaces:
        _fail(where, f"{f}.spaces", spaces, "give a non-empty list of spaces")
    spaces = [_text(where, f"{f}.spaces[{j}]", s) for j, s in enumerate(spaces)]
    if len(set(spaces)) != len(spaces):
        _fail(where, f"{f}.spaces", spaces, "list each space once")
    param, order, better = (item.get(k) for k in ("param", "order", "better"))
    if param not in STAGE_PARAMS:
        _fail(where, f"{f}.param", param,
              f"allowed: {', '.join(STAGE_PARAMS)} (a per-stage parameter)")
    if order not in ORDERS:
        _fail(where, f"{f}.order", order, f"allowed: {', '.join(ORDERS)}")
    if better not in SUBSET_BETTER:
        _fail(where, f"{f}.better", better,
              f"allowed: {', '.join(SUBSET_BETTER)} (in = the models that follow the order)")
    return SubsetClaim(tuple(spaces), param, order, better,
                       _text(where, f"{f}.claim", item.get("claim")))


def parse_study(doc: Any, where: str = "<study>") -> Study:
    """A validated Study from a parsed YAML document (`where` names it in errors)."""
    if not isinstance(doc, dict):
        _fail(where, "(top level)", doc, f"give a mapping with keys {', '.join(KEYS)}")
    _mapping(where, "(top level)", doc, KEYS)
    name = _text(where, "name", doc.get("name"))
    spaces = _list(where, "spaces", doc.get("spaces"))
    for i, s in enumerate(spaces):
        _text(where, f"spaces[{i}]", s)
    if len(set(spaces)) != len(spaces):
        dup = next(s for i, s in enumerate(spaces) if s in spaces[:i])
        _fail(where, "spaces", dup, "list each space once")
    pairs = tuple(_pair(where, i, p) for i, p in enumerate(_list(where, "pairs",
                                                                 doc.get("pairs"))))
    seen: set[frozenset] = set()
    for i, p in enumerate(pairs):
        key = frozenset((p.a, p.b))
        if key in seen:
            _fail(where, f"pairs[{i}]", f"{p.a}, {p.b}", "list each pair of spaces once")
        seen.add(key)
    trends = tuple(_trend(where, i, t) for i, t in enumerate(_list(where, "trends",
                                                                   doc.get("trends"))))
    subsets = tuple(_subset(where, i, c) for i, c in enumerate(_list(where, "subsets",
                                                                     doc.get("subsets"))))
    if not pairs and not trends and not subsets:
        _fail(where, "pairs", None, "give at least one pair, trend or subset claim")
    return Study(name, _text(where, "title", doc.get("title", name)),
                 _text(where, "source", doc.get("source", "study")), tuple(spaces), pairs,
                 trends, where, subsets)


def shipped_study_path(name: str = DEFAULT):
    """The path of a study shipped in dsd/studies (package data, found in a wheel too)."""
    return resources.files("dsd").joinpath("studies", f"{name}.yaml")


def load_study(path: str | Path | None = None) -> Study:
    """The study in a YAML file, or the shipped DDS study when `path` is None."""
    if path is None:
        return _default()
    path = Path(path)
    if not path.is_file():
        raise DsdError(f"no study file at {path}")
    return _read(path.read_text(encoding="utf-8"), str(path))


def _read(text: str, where: str) -> Study:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise DsdError(f"study {where}: not valid YAML ({str(e).splitlines()[0]})") from None
    return parse_study(doc, where)


@lru_cache(maxsize=1)
def _default() -> Study:
    f = shipped_study_path()
    return _read(f.read_text(encoding="utf-8"), f"dsd/studies/{DEFAULT}.yaml")
