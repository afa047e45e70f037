"""Rendering of statistics tables: one formatter for p-values, one for numbers, one for
complexities, one for intervals, 80-column wrapping, and the markdown and HTML tables built
from them (SUMMARY.md, `dsd report`, `dsd compare`, `dsd edf`).

Only formatting: every number comes from a computed frame (`effects.compare_data`'s pairs,
`trends.trends`, …). Missing values print as "–".
"""
from __future__ import annotations

import html
import math
import numbers
import re
import textwrap

import pandas as pd

DASH = "–"


def _missing(v) -> bool:
    return v is None or (isinstance(v, numbers.Real) and not isinstance(v, bool)
                         and math.isnan(v))


def fmt_p(v) -> str:
    """A p-value: three decimals, or two significant digits in scientific notation below
    0.001 (3.3e-18), so no p-value prints as 0.000."""
    if _missing(v):
        return DASH
    return f"{v:.3f}" if v >= 1e-3 else f"{v:.1e}"


def _units(x: float, digits: int, start: float) -> str | None:
    """x in K/M/G with `digits` significant digits when |x| >= `start`, else None."""
    for unit, div in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= div and abs(x) >= start:
            return _plain(x / div, digits) + unit
    return None


def fmt_si(v) -> str:
    """A complexity in text (flops, params, acts of SUMMARY.md, the Findings, `dsd compare`,
    `dsd analyze`): K/M/G from 1000 on with 3 significant digits (118M, 163K, 43.6K, 1.5K),
    as `dsd show` prints them; below, 3 significant digits in fixed point (16.5, 2.77)."""
    if _missing(v) or not math.isfinite(v):
        return DASH
    x = float(f"{float(v):.3g}")  # 999.6 → 1000 → 1K, not 1000
    return _units(x, 3, 1e3) or _plain(x, 3)


def _plain(x: float, digits: int) -> str:
    """Fixed point with `digits` significant digits (1234.5 → '1234', 1.75 → '1.75'),
    integers as they are."""
    if abs(x - round(x)) < 1e-9 * max(1.0, abs(x)):
        return f"{int(round(x))}"
    if abs(x) >= 1:
        decimals = max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))
        text = f"{x:.{decimals}f}"
        return text.rstrip("0").rstrip(".") if "." in text else text
    return f"{x:.{digits}g}"


def fmt_number(x: float, digits: int = 4) -> str:
    """A number as tables and the figures' ticks show it (`plots.tidy_ticks` picks `digits`
    per axis): K/M/G from 10^4 on (93.97K, 119.6M), integers as they are, else `digits`
    significant digits in fixed point (scientific only below 10^-3, so never 0.000)."""
    x = float(x)
    if not math.isfinite(x):
        return str(x)
    if x != 0 and abs(x) < 1e-3:
        return f"{x:.2e}"
    x = float(f"{x:.{digits}g}")  # 9999.7 → 10000 → 10K
    return _units(x, digits, 1e4) or _plain(x, digits)


def fmt_num(v, spec: str | None = None) -> str:
    """A table cell: numbers with `spec` (a format spec, 'p' for `fmt_p`, 'si' for `fmt_si`),
    by default `fmt_number`; missing values "–"; text as it is."""
    if spec == "p":
        return fmt_p(v)
    if spec == "si":
        return fmt_si(v)
    if _missing(v):
        return DASH
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        return str(v)
    if spec:
        return format(v, spec)
    return fmt_number(v)


def fmt_pm(mean, std, spec: str = ".2f") -> str:
    """'mean ± std' ("–" when either is missing, e.g. the spread of one model)."""
    if _missing(mean) or _missing(std):
        return DASH
    return f"{mean:{spec}} ± {std:{spec}}"


def fmt_ci(estimate: float, lo: float, hi: float, spec: str = "+.2f") -> str:
    """'estimate [lo, hi]' ("–" when any of them is missing)."""
    if any(_missing(v) for v in (estimate, lo, hi)):
        return DASH
    return f"{estimate:{spec}} [{lo:{spec}}, {hi:{spec}}]"


def wrap(text: str, first: str = "", rest: str = "", width: int = 80) -> list[str]:
    """Lines of at most `width` characters (`first`/`rest`: indents of the first and the other
    lines) that never break inside "x = y", "1 + R" or an interval "[lo, hi]" (their spaces
    are held by NUL while wrapping)."""
    glued = re.sub(r"\[([^\]\s]*), ([^\]\s]*)\]", "[\\1,\0\\2]", text)
    glued = glued.replace(" = ", "\0=\0").replace(" + ", "\0+\0")
    return [ln.replace("\0", " ") for ln in textwrap.wrap(
        glued, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)]


def md_table(df: pd.DataFrame, fmt: dict[str, str] | None = None) -> str:
    """A GitHub-flavoured markdown table (numbers right-aligned); `fmt`: column → spec for
    `fmt_num` (D: .3f and p: p-values unless given)."""
    fmt = {"D": ".3f", "p": "p", **(fmt or {})}
    num = [pd.api.types.is_numeric_dtype(df[c]) for c in df]
    head = "| " + " | ".join(map(str, df.columns)) + " |"
    rule = "|" + "|".join("---:" if n else "---" for n in num) + "|"
    body = ["| " + " | ".join(fmt_num(v, fmt.get(c)) for v, c in zip(row, df.columns)) + " |"
            for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def html_table(df: pd.DataFrame, fmt: dict[str, str] | None = None) -> str:
    """The same table as HTML (text columns left-aligned; class "l")."""
    fmt = fmt or {}
    head = "".join(f'<th class="{"l" if df[c].dtype == object else ""}">{html.escape(str(c))}'
                   f"</th>" for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False):
        cells = "".join(
            f'<td class="{"l" if isinstance(v, str) else ""}">'
            f"{html.escape(fmt_num(v, fmt.get(c)))}</td>" for v, c in zip(rec, df.columns))
        rows.append(f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"
