"""Every parameter of a sweep against error (`dsd analyze SWEEP --trends`): Spearman ρ with a
bootstrap interval, Holm-adjusted p over the sweep's parameters, ranked by |ρ|, and the DDS best
range of each parameter shown with its interval.

Parameters: what the space sampled (the model's `sampled` JSON; per-stage values that are
equal in every model collapse to one shared parameter, e.g. b for AnyNetXC), the per-stage
depths, widths, bottlenecks and groups of the built network where they vary (derived for
RegNets), and derived ones: total depth, maximum width, e_fit (once fitted), flops, params,
acts. Constant parameters and exact duplicates of an earlier one (a RegNet's depth is d) are
left out.
"""
from __future__ import annotations

import json
import textwrap

import numpy as np
import pandas as pd

from ..errors import DsdError
from . import stats, thin
from .compare import _frame, _seed
from .tables import fmt_p, fmt_si

STAGE = ("d", "w", "b", "g")
DERIVED = ("depth", "max_width", "e_fit", "flops", "params", "acts")
COLUMNS = ["param", "kind", "n", "rho", "lo", "hi", "p", "p_holm", "best", "best_lo",
           "best_hi"]


def _sampled(part: pd.DataFrame) -> dict[str, np.ndarray]:
    rows = [json.loads(s) if isinstance(s, str) else {} for s in part.get(
        "sampled", pd.Series([None] * len(part)))]
    keys = list(dict.fromkeys(k for r in rows for k, v in r.items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)))
    out = {k: np.array([float(r.get(k, np.nan)) for r in rows]) for k in keys}
    for p in STAGE:  # b1..b4 equal in every model: one shared b
        names = [f"{p}{i}" for i in range(1, 5) if f"{p}{i}" in out]
        if len(names) > 1 and p not in out and all(
                np.array_equal(out[names[0]], out[n], equal_nan=True) for n in names):
            out[p] = out.pop(names[0])
            for n in names[1:]:
                out.pop(n)
    return out


def candidates(part: pd.DataFrame) -> list[tuple[str, str, np.ndarray]]:
    """(name, kind, values) of every varying, distinct parameter of one sweep's models."""
    found: list[tuple[str, str, np.ndarray]] = []

    def add(name, kind, v):
        v = np.asarray(v, dtype=float)
        ok = np.isfinite(v)
        if ok.sum() < 3 or np.ptp(v[ok]) == 0:
            return
        if any(n == name or np.array_equal(v, u, equal_nan=True) for n, _, u in found):
            return
        found.append((name, kind, v))

    for k, v in _sampled(part).items():
        add(k, "sampled", v)
    for p in STAGE:
        for i in range(1, 5):
            c = f"{p}{i}"
            if c in part:
                add(c, "stage", part[c].astype(float).to_numpy())
    for c in DERIVED:
        if c in part and part[c].notna().any():
            add(c, "derived", part[c].astype(float).to_numpy())
    return found


def trends(data, sweep: str | None = None, *, resamples: int = 10_000, level: float = 0.95,
           seed: int = 0) -> pd.DataFrame:
    """The trend table of one sweep (COLUMNS), ranked by |ρ|; ρ is Spearman's of error with
    the parameter, lo/hi its bootstrap interval, p_holm Holm-adjusted over the table's rows,
    best/best_lo/best_hi the DDS best range (median and interval; NaN below
    `thin.minimum("best range")` models)."""
    df = _frame(data)
    sweeps = list(pd.unique(df["sweep"]))
    sweep = sweep or (sweeps[0] if len(sweeps) == 1 else None)
    if sweep is None or sweep not in sweeps:
        raise DsdError(f"name one sweep for trends; have {', '.join(sweeps)}")
    part = df[df["sweep"] == sweep]
    if not thin.enough("correlation", len(part)):
        raise DsdError(f"sweep {sweep!r} has {len(part)} finished models; trends need >= "
                       f"{thin.minimum('correlation')}")
    e = part["top1"].astype(float).to_numpy()
    rows = []
    for name, kind, v in candidates(part):
        iv = stats.spearman_interval(v, e, resamples=resamples, level=level,
                                     seed=_seed(seed, sweep, name, "rho"))
        n = int(np.isfinite(v).sum())
        br = (stats.best_range(v, e, resamples=resamples, level=level,
                               seed=_seed(seed, sweep, name))
              if thin.enough("best range", n) else stats.BestRange(*(np.nan,) * 3, n, 0, 0))
        rows.append({"param": name, "kind": kind, "n": n,
                     "rho": iv.estimate, "lo": iv.lo, "hi": iv.hi,
                     "p": stats.spearman(v, e)[1], "best": br.median, "best_lo": br.lo,
                     "best_hi": br.hi})
    if not rows:
        raise DsdError(f"no varying parameters in sweep {sweep!r}")
    out = pd.DataFrame(rows)
    out["p_holm"] = stats.holm(out["p"])
    out = out.iloc[np.argsort(-np.abs(out["rho"].to_numpy()), kind="stable")]
    out.attrs.update(sweep=sweep, resamples=resamples, seed=seed, m=len(out))
    return out[COLUMNS].reset_index(drop=True)


def trend_lines(table: pd.DataFrame) -> list[str]:
    """The trend table as lines of at most 80 characters."""
    a = table.attrs
    lines = textwrap.wrap(
        f"{a.get('sweep', '')}: Spearman ρ of error with each parameter, 95% bootstrap "
        f"interval ({a.get('resamples', 0):,} resamples, seed {a.get('seed', 0)}); p "
        f"Holm-adjusted over the {len(table)} parameters; best = DDS best range (median [95% "
        "interval]); ranked by |ρ|.", 80)
    lines += [f"{'param':<10} {'kind':<7} {'ρ':>6} {'[95% CI]':>15} {'p (Holm)':>8}  "
             "best [95% interval]"]
    for r in table.to_dict("records"):
        ps = fmt_p(r["p_holm"])
        ci = f"[{r['lo']:+.2f}, {r['hi']:+.2f}]"
        best = f"{fmt_si(r['best'])} [{fmt_si(r['best_lo'])}, {fmt_si(r['best_hi'])}]" \
            if np.isfinite(r["best"]) else "–"
        lines.append(f"{r['param']:<10} {r['kind']:<7} {r['rho']:>+6.2f} {ci:>15} {ps:>8}  "
                     f"{best}")
    few = thin.note("best range", {a.get("sweep", "the sweep"): int(table["n"].min())}) \
        if len(table) and table["best"].isna().any() else None
    return lines + (textwrap.wrap(few, 80, subsequent_indent="  ") if few else [])
