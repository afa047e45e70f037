"""Complexity counts ("400MF", "1.6GF", "5.2M") and windows: closed (lo, hi) ranges on flops,
params and acts that sampled models must lie in (DDS §3.2: 360MF–400MF)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from .errors import DsdError


_COUNT_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:e(\d+))?\s*([KMG]?)F?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "K": 10**3, "M": 10**6, "G": 10**9}


def parse_count(text) -> int:
    """A non-negative integer count from 400MF, 1.6GF, 5.2M, 360M, 12K, 1000 (K/M/G = 1e3/6/9).

    A trailing F (flops) is optional. The result must be a whole number ("1.5" is an error).
    """
    if isinstance(text, bool):
        raise DsdError(f"not a count: {text!r} (allowed: e.g. 400MF, 1.6GF, 5.2M, 360000000)")
    if isinstance(text, int):
        if text < 0:
            raise DsdError(f"count must be >= 0, got {text}")
        return text
    m = _COUNT_RE.match(str(text)) if isinstance(text, (str, float)) else None
    if not m:
        raise DsdError(f"not a count: {text!r} (allowed: e.g. 400MF, 1.6GF, 5.2M, 360000000)")
    value = Decimal(m.group(1)) * 10 ** int(m.group(2) or 0) * _UNITS[m.group(3).upper()]
    if value != value.to_integral_value():
        raise DsdError(f"not a whole count: {text!r} = {value}")
    return int(value)


def format_count(n: int, unit: str = "") -> str:
    """Inverse of parse_count for display: 360000000 → '360M' (+unit), 1600000000 → '1.6G'."""
    for suffix, scale in (("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if abs(n) >= scale:
            text = f"{n / scale:.4g}" if n % (scale // 1000) == 0 else f"{n / scale:.6g}"
            return f"{text}{suffix}{unit}"
    return f"{n}"


# --------------------------------------------------------------------------------------------
# Complexity windows


WINDOW_KEYS = ("flops", "params", "acts")
_WINDOW_UNITS = {"flops": "F", "params": "", "acts": ""}


@dataclass(frozen=True)
class Window:
    """Accepted complexity: closed ranges (lo, hi) on flops, params, acts; None = no limit."""

    flops: tuple[int, int] | None = None
    params: tuple[int, int] | None = None
    acts: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        for key in WINDOW_KEYS:
            r = getattr(self, key)
            if r is not None and not (len(r) == 2 and 0 <= r[0] <= r[1]):
                raise DsdError(f"window {key} must be (lo, hi) with 0 <= lo <= hi, got {r}")

    @classmethod
    def around(cls, flops) -> "Window":
        """The paper's regime [0.9F, F] (DDS §3.2: 360MF–400MF for F = 400MF)."""
        hi = parse_count(flops)
        return cls(flops=(hi * 9 // 10, hi))

    @classmethod
    def parse(cls, text: str) -> "Window":
        """'400MF' (= around) or 'LO-HI' on flops, e.g. '360MF-400MF'."""
        lo, sep, hi = str(text).partition("-")
        if not sep:
            return cls.around(text)
        return cls(flops=(parse_count(lo), parse_count(hi)))

    @classmethod
    def from_dict(cls, d: dict) -> "Window":
        return cls(**{k: (parse_count(v[0]), parse_count(v[1])) for k, v in d.items()})

    def to_dict(self) -> dict:
        return {k: list(getattr(self, k)) for k in WINDOW_KEYS if getattr(self, k) is not None}

    def contains(self, cx: dict) -> bool:
        """Whether a complexity dict {'flops', 'params', 'acts'} lies inside every range."""
        for key in WINDOW_KEYS:
            r = getattr(self, key)
            if r is not None and not r[0] <= cx[key] <= r[1]:
                return False
        return True

    def __str__(self) -> str:
        parts = []
        for k in WINDOW_KEYS:
            if (r := getattr(self, k)) is not None:
                u = _WINDOW_UNITS[k]
                parts.append(f"{k} {format_count(r[0], u)}–{format_count(r[1], u)}")
        return ", ".join(parts) or "unbounded"
