"""Pairwise comparisons of sweeps that a reviewer accepts (`dsd compare`): effect sizes with
bootstrap intervals, KS and rank tests, Holm-adjusted p-values over the call's family of tests,
the minimum detectable shift, and a verdict per pair and complexity normalization; plus the
complexity table that shows confounds (median flops/params/acts, within-sweep Spearman ρ).

Conventions: Δ = B − A in error points, so Δ < 0 means B is better. The verdict is made by one
pre-specified test, the rank test (Mann–Whitney; weighted analogue under normalization), at
Holm-adjusted p < ALPHA over all pairs × normalizations of the call; KS p-values are adjusted
in their own family of the same size. Pure functions of a results frame; no torch, no store.
"""
from __future__ import annotations

import textwrap
from collections.abc import Sequence
from itertools import combinations, pairwise
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DsdError
from . import stats
from .compare import COMPLEXITY, _frame, _seed, complexity_weights, sweep_order

NORMALIZE = ("none", *COMPLEXITY)
ALPHA = 0.05
POWER = 0.8
HOLM_FAMILY = ("Holm over the {m} rank tests of this call (pairs × normalizations); KS p "
               "adjusted over its own {m}; verdict = Holm-adjusted rank-test p < 0.05")
#: Columns of CompareData.pairs (and of `dsd compare --json`'s "pairs"), in order.
PAIR_COLUMNS = ["a", "b", "normalize", "bins", "n_a", "n_b", "n_eff_a", "n_eff_b", "mean_a",
                "mean_b", "mean_diff", "mean_lo", "mean_hi", "median_a", "median_b",
                "median_diff", "median_lo", "median_hi", "ks_D", "ks_p", "ks_p_holm",
                "rank_prob", "rank_p", "rank_p_holm", "mds", "verdict", "depends_on"]
COMPLEXITY_COLUMNS = ["sweep", "n", "flops", "params", "acts", "rho_flops", "p_flops",
                      "rho_params", "p_params", "rho_acts", "p_acts"]


class CompareData(NamedTuple):
    """pairs: one row per (pair, normalization), PAIR_COLUMNS. complexity: one row per sweep,
    COMPLEXITY_COLUMNS. family: how p-values were adjusted (a sentence)."""

    pairs: pd.DataFrame
    complexity: pd.DataFrame
    family: str
    resamples: int
    sims: int
    seed: int
    synthetic: bool


def parse_normalize(text: str | Sequence[str]) -> list[str]:
    """'none,flops' → ['none', 'flops'] (order kept, duplicates dropped), or a DsdError."""
    items = text.split(",") if isinstance(text, str) else list(text)
    out = list(dict.fromkeys(i.strip() for i in items if i.strip()))
    bad = [i for i in out if i not in NORMALIZE]
    if bad or not out:
        raise DsdError(f"--normalize {','.join(bad) or repr(text)}: allowed values are "
                       f"{', '.join(NORMALIZE)} (comma-separated)")
    return out


def pair_list(sweeps: Sequence[str], *, all_pairs: bool = False) -> list[tuple[str, str]]:
    """Consecutive pairs (A→B, B→C, …) or, with all_pairs, every pair in the given order."""
    if len(sweeps) < 2:
        raise DsdError("name at least two sweeps to compare")
    return list(combinations(sweeps, 2) if all_pairs else pairwise(sweeps))


def _weights(part: pd.DataFrame, by: str, bins: int) -> tuple[pd.Series, int]:
    """NDS weights of a pair over its common range; with fewer bins when `bins` leaves one
    empty (the bins used are returned and reported)."""
    try:
        return complexity_weights(part, by, bins)[0], bins
    except DsdError:
        groups = [part.loc[part["sweep"] == s, by].astype(float).to_numpy()
                  for s in sweep_order(part)]
        lo, hi = stats.common_range(*groups)
        k = stats.max_bins(groups, lo, hi, bins - 1)
        if k < 2:
            raise
        return complexity_weights(part, by, k)[0], k


def _verdict(row: dict) -> str:
    if row["rank_p_holm"] < ALPHA:
        return "A better" if row["rank_prob"] > 0.5 else "B better"
    return f"no detectable difference (smaller than {row['mds']:.2f} points)"


def _category(verdict: str) -> str:
    return verdict if verdict in ("A better", "B better") else "none"


def compare_pair(df: pd.DataFrame, a: str, b: str, normalize: str, *, bins: int = 20,
                 resamples: int = 10_000, sims: int = 1000, seed: int = 0) -> dict:
    """Every statistic of one pair under one normalization (p-values not yet adjusted)."""
    part = df[df["sweep"].isin([a, b])]
    used = bins if normalize != "none" else None
    if normalize == "none":
        w = pd.Series(1.0, index=part.index)
    else:
        w, used = _weights(part, normalize, bins)
    sides = {}
    for s in (a, b):
        sel = (part["sweep"] == s) & (w > 0)
        sides[s] = (part.loc[sel, "top1"].astype(float).to_numpy(), w[sel].to_numpy())
    (ea, wa), (eb, wb) = sides[a], sides[b]
    if len(ea) < 2 or len(eb) < 2:
        raise DsdError(f"{a} vs {b} ({normalize}): need at least 2 models on each side, have "
                       f"{len(ea)} and {len(eb)}")
    weighted = normalize != "none"
    wa_, wb_ = (wa, wb) if weighted else (None, None)
    rng = _seed(seed, a, b, normalize)
    row = {"a": a, "b": b, "normalize": normalize, "bins": used, "n_a": len(ea),
           "n_b": len(eb), "n_eff_a": stats.effective_n(wa), "n_eff_b": stats.effective_n(wb)}
    for stat in ("mean", "median"):
        f = stats.weighted_mean if stat == "mean" else stats.weighted_median
        row[f"{stat}_a"], row[f"{stat}_b"] = f(ea, wa_), f(eb, wb_)
        iv = stats.bootstrap_diff(ea, eb, wa_, wb_, stat=stat, resamples=resamples, seed=rng)
        row[f"{stat}_diff"], row[f"{stat}_lo"], row[f"{stat}_hi"] = iv
    k = stats.ks(ea, eb, wa_, wb_)
    r = stats.rank_test(ea, eb, wa_, wb_)
    row.update(ks_D=k.D, ks_p=k.p, rank_prob=r.prob, rank_p=r.p)
    pooled = np.concatenate([ea, eb])
    pw = np.concatenate([wa / wa.sum() * row["n_eff_a"], wb / wb.sum() * row["n_eff_b"]])
    row["mds"] = stats.min_detectable_shift(
        pooled, pw, int(round(row["n_eff_a"])), int(round(row["n_eff_b"])), power=POWER,
        alpha=ALPHA, sims=sims, seed=rng)
    return row


def complexity_table(df: pd.DataFrame, sweeps: Sequence[str] | None = None) -> pd.DataFrame:
    """Per sweep: n, median flops/params/acts, and Spearman ρ (and p) of error with each."""
    df = _frame(df)
    rows = []
    for s in sweeps or sweep_order(df):
        part = df[df["sweep"] == s]
        row = {"sweep": s, "n": len(part)}
        for c in COMPLEXITY:
            v = part[c].astype(float).to_numpy() if c in part else np.full(len(part), np.nan)
            row[c] = float(np.median(v))
            row[f"rho_{c}"], row[f"p_{c}"] = stats.spearman(v, part["top1"].astype(float))
        rows.append(row)
    return pd.DataFrame(rows, columns=COMPLEXITY_COLUMNS)


def compare_data(data, pairs: Sequence[tuple[str, str]] | None = None, *,
                 normalize: Sequence[str] = ("none",), bins: int = 20,
                 resamples: int = 10_000, sims: int = 1000, seed: int = 0) -> CompareData:
    """All pairs × normalizations, Holm-adjusted together, with verdicts and the complexity
    table. `pairs` defaults to consecutive pairs of the frame's sweeps."""
    df = _frame(data)
    normalize = parse_normalize(normalize)
    if resamples < 10_000:
        raise DsdError(f"--resamples {resamples}: use at least 10,000 bootstrap resamples")
    if sims < 100:
        raise DsdError(f"--sims {sims}: use at least 100 power simulations")
    order = sweep_order(df)
    pairs = list(pairs) if pairs is not None else pair_list(order)
    for s in {x for p in pairs for x in p}:
        if s not in order:
            raise DsdError(f"no results of sweep {s!r} to compare; have {', '.join(order)}")
    rows = [compare_pair(df, a, b, nz, bins=bins, resamples=resamples, sims=sims, seed=seed)
            for a, b in pairs for nz in normalize]
    out = pd.DataFrame(rows)
    out["ks_p_holm"] = stats.holm(out["ks_p"])
    out["rank_p_holm"] = stats.holm(out["rank_p"])
    out["verdict"] = [_verdict(r) for r in out.to_dict("records")]
    depends = []
    for r in out.to_dict("records"):
        same = out[(out["a"] == r["a"]) & (out["b"] == r["b"])]
        ref = _category(same["verdict"].iloc[0])
        diff = [n for n, v in zip(same["normalize"], same["verdict"]) if _category(v) != ref]
        depends.append(", ".join(diff))
    out["depends_on"] = depends
    sweeps = list(dict.fromkeys(x for p in pairs for x in p))
    return CompareData(out[PAIR_COLUMNS], complexity_table(df, sweeps),
                       HOLM_FAMILY.format(m=len(out)), resamples, sims, seed,
                       bool("synthetic" in df and df["synthetic"].astype(bool).any()))


# ---- rendering (text for the terminal and markdown, JSON) ---------------------------------
def _num(v: float, fmt: str = ".2f") -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)


def _p(v: float) -> str:
    return "–" if np.isnan(v) else (f"{v:.3f}" if v >= 1e-3 else f"{v:.0e}")


def _big(v: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def verdict_text(row: dict, labels: tuple[str, str] = ("A", "B")) -> str:
    """The verdict with A/B replaced by `labels` and the confound note appended."""
    v = row["verdict"].replace("A better", f"{labels[0]} better").replace(
        "B better", f"{labels[1]} better")
    if row["depends_on"]:
        v += f"; depends on complexity measure: {row['depends_on']}"
    return v


def pairs_lines(data: CompareData, labels: dict[str, str] | None = None) -> list[str]:
    """The pair tables as lines of at most ~80 characters."""
    labels = labels or {}
    lines = textwrap.wrap(
        f"Δ = B − A (error points); 95% bootstrap intervals ({data.resamples:,} resamples, seed"
        f" {data.seed}); MDS = shift the rank test detects with 80% power at α = 0.05 "
        f"({data.sims:,} simulations from the pooled EDF). {data.family}.", 80)
    for (a, b), grp in data.pairs.groupby(["a", "b"], sort=False):
        la, lb = labels.get(a, a), labels.get(b, b)
        lines += ["", f"A = {la}, B = {lb}",
                  f"  {'norm':<6} {'n A/B':>9} {'mean A':>6} {'mean B':>6} "
                  f"{'Δmean [95% CI]':>21} {'Δmedian [95% CI]':>21}"]
        for r in grp.to_dict("records"):
            n = (f"{r['n_a']}/{r['n_b']}" if r["normalize"] == "none" else
                 f"{r['n_eff_a']:.0f}/{r['n_eff_b']:.0f}")
            lines.append(
                f"  {r['normalize']:<6} {n:>9} {r['mean_a']:>6.2f} {r['mean_b']:>6.2f} "
                f"{r['mean_diff']:>+6.2f} [{r['mean_lo']:+.2f}, {r['mean_hi']:+.2f}] "
                f"{r['median_diff']:>+6.2f} [{r['median_lo']:+.2f}, {r['median_hi']:+.2f}]")
        lines.append(f"  {'norm':<6} {'KS D':>5} {'KS p':>6} {'Holm':>6} {'P(A<B)':>6} "
                     f"{'rank p':>6} {'Holm':>6} {'MDS':>5}")
        for r in grp.to_dict("records"):
            lines.append(
                f"  {r['normalize']:<6} {r['ks_D']:>5.3f} {_p(r['ks_p']):>6} "
                f"{_p(r['ks_p_holm']):>6} {r['rank_prob']:>6.3f} {_p(r['rank_p']):>6} "
                f"{_p(r['rank_p_holm']):>6} {_num(r['mds']):>5}")
        lines.append("  verdict")
        lines += [f"  {r['normalize']:<6} {verdict_text(r)}" for r in grp.to_dict("records")]
    if (data.pairs["normalize"] != "none").any():
        used = sorted({int(b) for b in data.pairs["bins"].dropna()})
        lines += ["", *textwrap.wrap(
            "n A/B of a normalized row = Kish effective sizes; bins = "
            f"{', '.join(map(str, used))} over each pair's common range (fewer where a bin "
            "was empty).", 80)]
    return lines


def complexity_lines(table: pd.DataFrame, labels: dict[str, str] | None = None) -> list[str]:
    labels = labels or {}
    w = max([5, *(len(labels.get(s, s)) for s in table["sweep"])])
    lines = [f"{'sweep':<{w}} {'n':>4} {'flops':>6} {'params':>6} {'acts':>6}  ρ(error, ·):"
             f" {'flops':>6} {'params':>6} {'acts':>6}"]
    for r in table.to_dict("records"):
        lines.append(f"{labels.get(r['sweep'], r['sweep']):<{w}} {r['n']:>4} "
                     f"{_big(r['flops']):>6} {_big(r['params']):>6} {_big(r['acts']):>6}  "
                     f"{'':11} {_num(r['rho_flops'], '+.2f'):>6} "
                     f"{_num(r['rho_params'], '+.2f'):>6} {_num(r['rho_acts'], '+.2f'):>6}")
    return lines


def to_json(data: CompareData) -> dict:
    """The stable JSON document of `dsd compare --json` (README: "compare --json")."""
    def clean(df):
        recs = df.astype(object).where(df.notna(), None).to_dict("records")
        return [{k: (float(v) if isinstance(v, (float, np.floating)) else
                     int(v) if isinstance(v, (int, np.integer)) else v) for k, v in r.items()}
                for r in recs]

    return {"version": 1, "delta": "B - A, error points (negative: B better)",
            "alpha": ALPHA, "power": POWER, "family": data.family,
            "resamples": data.resamples, "sims": data.sims, "seed": data.seed,
            "synthetic": data.synthetic, "pairs": clean(data.pairs),
            "complexity": clean(data.complexity)}
