"""`dsd compare` as text and JSON: the header that says what the tables mean, one block of
tables per pair, the complexity table and the `--json` document, rendered from
`effects.compare_data`'s `CompareData` (no computation here).

Every number goes through the `tables` formatters (p-values `fmt_p`, intervals `fmt_ci`,
complexities `fmt_si`, other cells `fmt_num`) and every line fits in 80 columns
(`tables.wrap`), in a terminal and when piped. SUMMARY.md and the report reuse
`header_lines` and `bins_text` (`findings`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .binning import RANGE_Q
from .tables import DASH, fmt_ci, fmt_num, fmt_p, fmt_si, wrap
from .verdicts import ALPHA, DEVICE, POWER

if TYPE_CHECKING:  # effects imports this module
    from .effects import CompareData


def verdict_text(row: dict, labels: tuple[str, str] = ("A", "B")) -> str:
    """The verdict with A/B replaced by `labels` (P(A<B) keeps its letters)."""
    v = row["verdict"]
    for side, label in zip(("A", "B"), labels):
        v = v.replace(f"{side} better", f"{label} better")
    return v


def header_lines(data: CompareData) -> list[str]:
    """What every table below means: the family, intervals, binning, permutations, MDS."""
    m = data.family_size
    rule = (f"Normalized rows: ⌊√min(n_A, n_B)⌋ equal-width bins (at least 2, at most "
            f"--bins) over the pair's common range, from the larger of the two sides' "
            f"{RANGE_Q:.1%} quantiles to the smaller of their {1 - RANGE_Q:.1%} "
            f"quantiles; bins without models of both sides are dropped; NDS weights; "
            f"n A/B = Kish effective sizes. Their p-values are within-bin permutation tests "
            f"(within-device for the device row): p = (1 + #≥)/(1 + R), R = "
            f"{data.permutations:,} seeded permutations, so p ≥ "
            f"{fmt_p(1 / (1 + data.permutations))}; exact for 'error is exchangeable between "
            f"the spaces within each bin'.")
    mds = (f"MDS (rank-test rows): the shift of B the rank test detects with {POWER:.0%} power "
           + (f"at α/m = {ALPHA}/{m} = {fmt_num(ALPHA / m, '.2g')} (Holm's first step: a test "
              f"that small is rejected whatever the others; sensitivity rows at α = {ALPHA})"
              if m > 1 else f"at α = {ALPHA}")
           + f", from each space's own EDF (B moved by the Hodges–Lehmann shift to P(A<B) = "
           f"½), {data.sims:,} simulations; not computed for permutation rows.")
    lines = []
    for w in data.warnings:
        lines += wrap(w, "warning: ", "  ")
    if lines:
        lines.append("")
    return lines + [
        *wrap(data.family),
        *wrap(f"Δ = B − A (error points); 95% bootstrap intervals ({data.resamples:,} "
              f"resamples, seed {data.seed}), per row and not adjusted for multiplicity: a "
              f"test that does not reject bounds nothing, the interval does."),
        *(wrap(rule) if (data.pairs["normalize"] != "none").any() else []),
        *wrap(mds)]


def bins_text(r: dict) -> str:
    """A normalized row's binning: bins (or devices) used of those made, the range (`fmt_si`)
    and the models of each side left out."""
    if r["role"] == "unavailable":
        return DASH
    drop = f"not used: A {int(r['dropped_a'])}, B {int(r['dropped_b'])}"
    if r["normalize"] == DEVICE:
        return f"{int(r['bins_used'])} of {int(r['bins'])} devices shared; {drop}"
    lo, hi = fmt_si(r["range_lo"]), fmt_si(r["range_hi"])
    return f"{int(r['bins_used'])} of {int(r['bins'])} bins over [{lo}, {hi}]; {drop}"


def _effects_line(r: dict) -> str:
    n = (f"{r['n_a']}/{r['n_b']}" if r["normalize"] == "none" else
         f"{r['n_eff_a']:.0f}/{r['n_eff_b']:.0f}")
    mean, median = (fmt_ci(r[f"{k}_diff"], r[f"{k}_lo"], r[f"{k}_hi"]) for k in ("mean",
                                                                                 "median"))
    return (f"  {r['normalize']:<6} {n:>9} {fmt_num(r['mean_a'], '.2f'):>6} "
            f"{fmt_num(r['mean_b'], '.2f'):>6} {mean:>21} {median:>21}")


def _tests_line(r: dict) -> str:
    ps = (fmt_p(r[k]) for k in ("ks_p", "ks_p_holm", "rank_p", "rank_p_holm"))
    ks_p, ks_holm, rank_p, rank_holm = ps
    return (f"  {r['normalize']:<6} {fmt_num(r['ks_D'], '.3f'):>5} {ks_p:>7} {ks_holm:>7} "
            f"{fmt_num(r['rank_prob'], '.3f'):>6} {rank_p:>7} {rank_holm:>7} "
            f"{fmt_num(r['mds'], '.2f'):>5} {fmt_num(r['mds_alpha'], '.2g'):>6}")


def pairs_lines(data: CompareData, labels: dict[str, str] | None = None) -> list[str]:
    """The header and pair tables as lines of at most 80 characters."""
    labels = labels or {}
    lines = header_lines(data)
    for (a, b), grp in data.pairs.groupby(["a", "b"], sort=False):
        la, lb = labels.get(a, a), labels.get(b, b)
        recs = grp.to_dict("records")
        ok = [r for r in recs if r["role"] != "unavailable"]
        lines += ["", f"A = {la}, B = {lb}",
                  f"  {'norm':<6} {'n A/B':>9} {'mean A':>6} {'mean B':>6} "
                  f"{'Δmean [95% CI]':>21} {'Δmedian [95% CI]':>21}",
                  *(_effects_line(r) for r in ok),
                  f"  {'norm':<6} {'KS D':>5} {'KS p':>7} {'Holm':>7} {'P(A<B)':>6} "
                  f"{'rank p':>7} {'Holm':>7} {'MDS':>5} {'at α':>6}",
                  *(_tests_line(r) for r in ok)]
        binned = [r for r in recs if r["normalize"] != "none"]
        if binned:
            lines.append("  binning")
            lines += [f"  {r['normalize']:<6} {bins_text(r)}" for r in binned]
        lines.append("  verdict (P(A<B): chance that a random A model has the lower error)")
        for r in recs:
            lines += wrap(verdict_text(r), f"  {r['normalize']:<6} ", " " * 9)
    return lines


def complexity_lines(table: pd.DataFrame, labels: dict[str, str] | None = None) -> list[str]:
    """Per sweep: n, median flops/params/acts (`fmt_si`) and Spearman ρ of error with each."""
    labels = labels or {}
    w = max([5, *(len(labels.get(s, s)) for s in table["sweep"])])
    lines = [f"{'sweep':<{w}} {'n':>4} {'flops':>6} {'params':>6} {'acts':>6}  ρ(error, ·):"
             f" {'flops':>6} {'params':>6} {'acts':>6}"]
    for r in table.to_dict("records"):
        sizes = " ".join(f"{fmt_si(r[c]):>6}" for c in ("flops", "params", "acts"))
        rhos = " ".join(f"{fmt_num(r[f'rho_{c}'], '+.2f'):>6}" for c in ("flops", "params",
                                                                         "acts"))
        lines.append(f"{labels.get(r['sweep'], r['sweep']):<{w}} {r['n']:>4} {sizes}  "
                     f"{'':11} {rhos}")
    return lines


def to_json(data: CompareData) -> dict:
    """The stable JSON document of `dsd compare --json` (README: "compare --json")."""
    def clean(df):
        recs = df.astype(object).where(df.notna(), None).to_dict("records")
        return [{k: (float(v) if isinstance(v, (float, np.floating)) else
                     int(v) if isinstance(v, (int, np.integer)) else v) for k, v in r.items()}
                for r in recs]

    return {"version": 2, "delta": "B - A, error points (negative: B better)",
            "alpha": ALPHA, "power": POWER, "family": data.family,
            "family_size": data.family_size, "primary": data.primary,
            "range_quantile": RANGE_Q, "permutations": data.permutations,
            "resamples": data.resamples, "sims": data.sims, "seed": data.seed,
            "synthetic": data.synthetic, "warnings": list(data.warnings),
            "pairs": clean(data.pairs),
            "complexity": clean(data.complexity)}
