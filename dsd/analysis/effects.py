"""Pairwise comparisons of sweeps that a reviewer accepts (`dsd compare`, issues 14 and 28):
effect sizes with bootstrap intervals, KS and rank tests, the family of tests that decides, the
minimum detectable shift at the level that decides, and one verdict per pair; plus the
complexity table that shows confounds (median flops/params/acts, within-sweep Spearman ρ).

Conventions: Δ = B − A in error points, so Δ < 0 means B is better.

- The family is the study's: the pairs asked for × the PRIMARY test (the first `normalize`
  value; "none" = the Mann–Whitney rank test), Holm at ALPHA over them (`family="pairs"`), or
  each pair alone (`family="each"`). Further normalizations, and a device-stratified row where
  the two sweeps' devices differ, are sensitivity analyses: their own unadjusted p and
  interval, outside the family. So adding a sweep never changes another pair's verdict except
  through the family size, which the output states.
- Normalized rows (flops, params, acts) bin each pair by one rule (`stats.bin_count`,
  `stats.shared_bins`: √n bins over the common range of the sides' 2.5–97.5% quantiles, bins
  both sides fill) and test with within-bin permutations (`stats.permutation_test`), which is
  exact for "error is exchangeable between the spaces within each bin".
- Verdicts quote the test that decided, at its level, and the Δmean interval; a test that does
  not reject bounds nothing, so the interval is the bound (`verdict`).
- MDS: for rank-test rows only, at the level that decides (α/m for a primary row of a family
  of m: Holm's first step, which rejects whatever the other tests; α for a sensitivity row),
  simulated from each side's own EDF (`stats.detectable_shift`). Permutation rows have none.
- There is no "depends on complexity measure": a change of significance between rows is not
  a test of a difference between them (each row is reported with its own interval instead).

Pure functions of a results frame; no torch, no store.
"""
from __future__ import annotations

import json
import re
import textwrap
from collections.abc import Sequence
from itertools import combinations, pairwise
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DsdError
from . import stats
from .compare import COMPLEXITY, _frame, _seed, sweep_order

NORMALIZE = ("none", *COMPLEXITY)
DEVICE = "device"  # the normalize value of a device-stratified sensitivity row
ALPHA = 0.05
POWER = 0.8
FAMILIES = ("pairs", "each")
#: Columns of CompareData.pairs (and of `dsd compare --json`'s "pairs"), in order.
PAIR_COLUMNS = ["a", "b", "normalize", "role", "test", "bins", "bins_used", "range_lo",
                "range_hi", "dropped_a", "dropped_b", "n_a", "n_b", "n_eff_a", "n_eff_b",
                "mean_a", "mean_b", "mean_diff", "mean_lo", "mean_hi", "median_a", "median_b",
                "median_diff", "median_lo", "median_hi", "ks_D", "ks_p", "ks_p_holm",
                "rank_prob", "rank_p", "rank_p_holm", "permutations", "mds", "mds_alpha",
                "outcome", "verdict"]
COMPLEXITY_COLUMNS = ["sweep", "n", "flops", "params", "acts", "rho_flops", "p_flops",
                      "rho_params", "p_params", "rho_acts", "p_acts"]
TESTS = {"none": "rank test", "complexity": "within-bin permutation rank test",
         DEVICE: "within-device permutation rank test"}


class CompareData(NamedTuple):
    """pairs: one row per (pair, normalization), PAIR_COLUMNS. complexity: one row per sweep,
    COMPLEXITY_COLUMNS. family: the family of tests and how it decides (sentences);
    family_size: its m; primary: the normalization of its test; warnings: one line per
    difference of setup between compared sweeps (`pair_warnings`)."""

    pairs: pd.DataFrame
    complexity: pd.DataFrame
    family: str
    resamples: int
    sims: int
    seed: int
    synthetic: bool
    family_size: int = 1
    primary: str = "none"
    permutations: int = 10_000
    warnings: tuple = ()


def parse_normalize(text: str | Sequence[str]) -> list[str]:
    """'none,flops' → ['none', 'flops'] (order kept, duplicates dropped), or a DsdError.
    The first value names the primary test; the others are sensitivity analyses."""
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


# ---- one pair -----------------------------------------------------------------------------
def _strata(part: pd.DataFrame, a: str, b: str, normalize: str, bins: int) -> dict:
    """Per side the stratum of each model (-1: not used) and the binning's bookkeeping."""
    sel = {s: (part["sweep"] == s).to_numpy() for s in (a, b)}
    if normalize == "none":
        return {"sa": np.zeros(sel[a].sum(), int), "sb": np.zeros(sel[b].sum(), int),
                "bins": None, "bins_used": None, "range_lo": np.nan, "range_hi": np.nan}
    if normalize == DEVICE:
        dev = _devices(part)
        shared = set(dev[sel[a]]) & set(dev[sel[b]])
        if not shared:
            raise DsdError(f"{a} vs {b}: no device trained models of both")
        code = {d: i for i, d in enumerate(sorted(shared))}
        sa, sb = ([code.get(d, -1) for d in dev[sel[s]]] for s in (a, b))
        n_dev = len(set(dev[sel[a]]) | set(dev[sel[b]]))
        return {"sa": np.array(sa), "sb": np.array(sb), "bins": n_dev, "bins_used": len(shared),
                "range_lo": np.nan, "range_hi": np.nan}
    if normalize not in COMPLEXITY or normalize not in part:
        raise DsdError(f"cannot normalize by {normalize!r}: the results have no such column")
    va, vb = (part.loc[sel[s], normalize].astype(float).to_numpy() for s in (a, b))
    k = stats.bin_count(len(va), len(vb), bins)
    sh = stats.shared_bins(va, vb, k)
    return {"sa": sh.bin_a, "sb": sh.bin_b, "bins": k, "bins_used": sh.used,
            "range_lo": sh.lo, "range_hi": sh.hi}


def compare_pair(df: pd.DataFrame, a: str, b: str, normalize: str, *, bins: int = 20,
                 resamples: int = 10_000, sims: int = 1000, seed: int = 0,
                 permutations: int = 10_000, mds_alpha: float = ALPHA) -> dict:
    """Every statistic of one pair under one normalization (p-values not adjusted, no role,
    no verdict: `compare_data` adds those).

    normalize: "none" (Mann–Whitney and scipy's KS; MDS at `mds_alpha`), a complexity (bins
    of `stats.shared_bins`, at most `bins` of them; NDS weights; within-bin permutation tests),
    or "device" (strata = devices that trained models of both; within-device permutation
    tests). Seeded per (seed, a, b, normalize): a pair's numbers do not depend on what else is
    compared."""
    part = df[df["sweep"].isin([a, b])]
    st = _strata(part, a, b, normalize, bins)
    errs = {s: part.loc[part["sweep"] == s, "top1"].astype(float).to_numpy() for s in (a, b)}
    keep_a, keep_b = st["sa"] >= 0, st["sb"] >= 0
    ea, eb = errs[a][keep_a], errs[b][keep_b]
    sa, sb = st["sa"][keep_a], st["sb"][keep_b]
    if len(ea) < 2 or len(eb) < 2:
        raise DsdError(f"{a} vs {b} ({normalize}): need at least 2 models on each side, have "
                       f"{len(ea)} and {len(eb)}")
    plain = normalize == "none"
    wa, wb = (np.ones(len(ea)), np.ones(len(eb))) if plain else \
        (stats.stratum_weights(sa), stats.stratum_weights(sb))
    wa_, wb_ = (None, None) if plain else (wa, wb)
    rng = _seed(seed, a, b, normalize)
    row = {"a": a, "b": b, "normalize": normalize,
           "test": TESTS["none" if plain else DEVICE if normalize == DEVICE else "complexity"],
           **{k: st[k] for k in ("bins", "bins_used", "range_lo", "range_hi")},
           "dropped_a": int((~keep_a).sum()), "dropped_b": int((~keep_b).sum()),
           "n_a": len(ea), "n_b": len(eb), "n_eff_a": stats.effective_n(wa),
           "n_eff_b": stats.effective_n(wb)}
    ivs = stats.bootstrap_diffs(ea, eb, wa_, wb_, resamples=resamples, seed=rng)
    for stat, f in (("mean", stats.weighted_mean), ("median", stats.weighted_median)):
        row[f"{stat}_a"], row[f"{stat}_b"] = f(ea, wa_), f(eb, wb_)
        row[f"{stat}_diff"], row[f"{stat}_lo"], row[f"{stat}_hi"] = ivs[stat]
    if plain:
        k, r = stats.ks(ea, eb), stats.rank_test(ea, eb)
        row.update(ks_D=k.D, ks_p=k.p, rank_prob=r.prob, rank_p=r.p, permutations=None,
                   mds_alpha=mds_alpha,
                   mds=stats.detectable_shift(ea, eb, power=POWER, alpha=mds_alpha, sims=sims,
                                              seed=rng))
    else:
        t = stats.permutation_test(ea, eb, wa, wb, strata_a=sa, strata_b=sb,
                                   permutations=permutations, seed=rng)
        row.update(ks_D=t.D, ks_p=t.ks_p, rank_prob=t.prob, rank_p=t.rank_p,
                   permutations=permutations, mds=np.nan, mds_alpha=np.nan)
    return row


# ---- guards -------------------------------------------------------------------------------
def _devices(part: pd.DataFrame) -> np.ndarray:
    col = part["device"] if "device" in part else pd.Series([None] * len(part))
    return np.array(["unrecorded" if v is None or (isinstance(v, float) and v != v) else
                     str(v) for v in col], dtype=object)


def device_mix(df: pd.DataFrame, a: str, b: str) -> dict[str, dict[str, float]]:
    """Per side, the share of its models trained on each device ({} without a device column)."""
    if "device" not in df:
        return {}
    part = df[df["sweep"].isin([a, b])]
    dev = pd.Series(_devices(part), index=part.index)
    return {s: dev[part["sweep"] == s].value_counts(normalize=True).sort_index().to_dict()
            for s in (a, b)}


def devices_imbalanced(df: pd.DataFrame, a: str, b: str) -> bool:
    """True when the two sweeps' device shares differ at all (any device, any amount)."""
    mix = device_mix(df, a, b)
    if not mix:
        return False
    keys = set(mix[a]) | set(mix[b])
    return any(abs(mix[a].get(k, 0.0) - mix[b].get(k, 0.0)) > 1e-12 for k in keys)


def _window_text(text) -> str:
    """'{"flops": [112500000, 125000000]}' → 'flops [1.125e+08, 1.25e+08]'."""
    try:
        w = json.loads(text)
    except (TypeError, ValueError):
        return str(text)
    if not isinstance(w, dict):
        return str(text)
    parts = [f"{k} [{v[0]:.4g}, {v[1]:.4g}]" for k, v in sorted(w.items())
             if isinstance(v, (list, tuple)) and len(v) == 2 and None not in v]
    return ", ".join(parts) or "none"


#: (column, what it is, how a value is shown)
GUARDS = (("samplers", "sampler convention", str), ("window", "complexity window", _window_text),
          ("dataset", "dataset", str), ("recipe_hash", "recipe (hash)", str))


def pair_warnings(df: pd.DataFrame, a: str, b: str) -> list[str]:
    """One line per way the two sweeps were produced differently: sampler convention
    (`samplers`, dsd.samplers), complexity window (`window`), dataset, recipe hash, device mix.
    Columns the frame lacks are not checked (a store's results carry no samplers/window: the
    CLI adds them from the sweeps)."""
    out = []
    part = df[df["sweep"].isin([a, b])]
    for col, what, show in GUARDS:
        if col not in part:
            continue
        vals = {s: ", ".join(sorted({show(v) for v in part.loc[part["sweep"] == s, col]
                                     if v is not None and v == v})) or "unrecorded"
                for s in (a, b)}
        if vals[a] != vals[b]:
            out.append(f"{a} vs {b}: {what} differs ({a}: {vals[a]}; {b}: {vals[b]})")
    if devices_imbalanced(df, a, b):
        mix = device_mix(df, a, b)
        text = "; ".join(f"{s}: " + ", ".join(f"{v:.0%} {d}" for d, v in mix[s].items())
                         for s in (a, b))
        out.append(f"{a} vs {b}: devices differ ({text}); see the device-stratified row")
    return out


# ---- verdicts -----------------------------------------------------------------------------
def _p(v: float) -> str:
    return "–" if v is None or np.isnan(v) else (f"{v:.3f}" if v >= 1e-3 else f"{v:.0e}")


def _ci_text(r: dict) -> str:
    return f"Δmean {r['mean_diff']:+.2f} [{r['mean_lo']:+.2f}, {r['mean_hi']:+.2f}]"


def _excludes_zero(r: dict) -> bool:
    return r["mean_lo"] > 0 or r["mean_hi"] < 0


def verdict(r: dict, m: int) -> tuple[str, str]:
    """(outcome, verdict text) of a row whose role and p-values are set; m = family size.

    Wording rules (issue 28): a primary row says "A better"/"B better" when its test rejects at
    the Holm level of the family, else "not decided"; a sensitivity row says what its own test
    gives at unadjusted α. Each names the test and p that decided and quotes the Δmean 95%
    interval; where the test does not reject but that interval excludes 0 it says so (the
    interval is per row and unadjusted, so it may); where the rank test rejects but the means
    order the other way it says that too. Never "no difference": not rejecting bounds nothing.
    """
    if r["role"] == "unavailable":
        return "not computed", r["verdict"]
    primary = r["role"] == "primary"
    p = r["rank_p_holm"] if primary else r["rank_p"]
    side = "A" if r["rank_prob"] > 0.5 else "B"
    iv = _ci_text(r)
    if p < ALPHA:
        outcome = f"{side} better"
        other = (side == "B" and r["mean_lo"] > 0) or (side == "A" and r["mean_hi"] < 0)
        tail = f"; {iv}" + ("; the means order the other way" if other else "")
    else:
        outcome = "not decided" if primary else "not rejected"
        tail = f"; {iv}" + ("; this unadjusted interval excludes 0" if _excludes_zero(r)
                            else "")
    if primary:
        level = f"Holm p = {_p(p)} in a family of {m}" if m > 1 else f"p = {_p(p)}"
        return outcome, f"{outcome} ({r['test']}, P(A<B) = {r['rank_prob']:.2f}, {level}){tail}"
    said = (f"rejected at unadjusted p = {_p(p)}, {outcome}" if p < ALPHA else
            f"not rejected, unadjusted p = {_p(p)}")
    return outcome, f"sensitivity ({r['test']}): {said}{tail}"


def _category(verdict_text: str) -> str:
    """"A better", "B better" or "none" from a verdict text (primary or sensitivity)."""
    for side in ("A better", "B better"):
        if verdict_text.startswith(side) or re.search(r"rejected at unadjusted p = \S+, "
                                                      + side, verdict_text):
            return side
    return "none"


def family_text(m: int, npairs: int, family: str, primary: str, others: Sequence[str], *,
                devices: bool = True) -> str:
    """The family sentence: which tests, how many, how they decide, what is outside."""
    test = TESTS["none" if primary == "none" else "complexity"]
    what = f"{test}, {'unnormalized' if primary == 'none' else primary + '-normalized'}"
    if family == "pairs" and m > 1:
        head = (f"Family: the primary test ({what}) of each of the {npairs} pairs asked for, "
                f"m = {m}; a verdict needs Holm-adjusted p < {ALPHA} over these {m} (KS p "
                f"adjusted over its own {m}).")
    elif family == "pairs":
        head = (f"Family: the primary test ({what}) of the one pair asked for, m = 1; a "
                f"verdict needs p < {ALPHA}.")
    else:
        head = (f"Family: each pair alone (m = 1): its primary test ({what}) at p < {ALPHA}, "
                f"no adjustment across the {npairs} pairs.")
    rest = [*others, *(["device (where the devices differ)"] if devices else [])]
    return head + (f" Sensitivity analyses, outside the family (unadjusted p): "
                   f"{', '.join(rest)}." if rest else " No sensitivity analyses.")


def _unavailable(a: str, b: str, normalize: str, reason: str) -> dict:
    row = dict.fromkeys(PAIR_COLUMNS, np.nan)
    row.update(a=a, b=b, normalize=normalize, role="unavailable", test="",
               verdict=f"sensitivity: not computed ({reason})")
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
                 resamples: int = 10_000, sims: int = 1000, seed: int = 0,
                 permutations: int = 10_000, family: str = "pairs",
                 devices: bool = True) -> CompareData:
    """Every pair × normalization, the family's Holm adjustment, verdicts, warnings and the
    complexity table. `pairs` defaults to consecutive pairs of the frame's sweeps.

    normalize: the first value is the primary test, the others sensitivity rows. family:
    "pairs" (Holm over the primary tests of all `pairs`) or "each" (every pair its own family
    of one). devices: add a device-stratified sensitivity row to each pair whose device shares
    differ (`devices_imbalanced`). bins: the most bins a normalization may use
    (`stats.bin_count`)."""
    df = _frame(data)
    normalize = parse_normalize(normalize)
    if resamples < 10_000:
        raise DsdError(f"--resamples {resamples}: use at least 10,000 bootstrap resamples")
    if sims < 100:
        raise DsdError(f"--sims {sims}: use at least 100 power simulations")
    if permutations < 1000:
        raise DsdError(f"--permutations {permutations}: use at least 1,000 permutations")
    if family not in FAMILIES:
        raise DsdError(f"--family {family}: allowed values are {', '.join(FAMILIES)}")
    order = sweep_order(df)
    pairs = list(pairs) if pairs is not None else pair_list(order)
    if not pairs:
        raise DsdError("no pairs to compare")
    for s in {x for p in pairs for x in p}:
        if s not in order:
            raise DsdError(f"no results of sweep {s!r} to compare; have {', '.join(order)}")
    m = len(pairs) if family == "pairs" else 1
    rows, warnings = [], []
    for a, b in pairs:
        warnings += pair_warnings(df, a, b)
        extra = [DEVICE] if devices and devices_imbalanced(df, a, b) else []
        for i, nz in enumerate([*normalize, *extra]):
            role = "primary" if i == 0 else "sensitivity"
            try:
                r = compare_pair(df, a, b, nz, bins=bins, resamples=resamples, sims=sims,
                                 seed=seed, permutations=permutations,
                                 mds_alpha=ALPHA / m if role == "primary" else ALPHA)
            except DsdError as e:
                if role == "primary":
                    raise
                rows.append(_unavailable(a, b, nz, str(e)))
                continue
            rows.append({**r, "role": role})
    out = pd.DataFrame(rows)
    prim = (out["role"] == "primary").to_numpy()
    for col in ("rank_p", "ks_p"):
        adj = np.full(len(out), np.nan)
        p = out[col].astype(float).to_numpy()
        adj[prim] = stats.holm(p[prim]) if family == "pairs" else p[prim]
        out[f"{col}_holm"] = adj
    for col in ("bins", "bins_used", "dropped_a", "dropped_b", "n_a", "n_b", "permutations"):
        out[col] = out[col].astype("Int64")
    out["outcome"], out["verdict"] = zip(*(verdict(r, m) for r in out.to_dict("records")))
    sweeps = list(dict.fromkeys(x for p in pairs for x in p))
    return CompareData(out[PAIR_COLUMNS], complexity_table(df, sweeps),
                       family_text(m, len(pairs), family, normalize[0], normalize[1:],
                                   devices=devices),
                       resamples, sims, seed,
                       bool("synthetic" in df and df["synthetic"].astype(bool).any()),
                       m, normalize[0], permutations, tuple(warnings))


# ---- rendering (text for the terminal and markdown, JSON) ---------------------------------
def _num(v: float, fmt: str = ".2f") -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, fmt)


def _big(v: float) -> str:
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= div:
            return f"{v / div:.3g}{unit}"
    return f"{v:.3g}"


def verdict_text(row: dict, labels: tuple[str, str] = ("A", "B")) -> str:
    """The verdict with A/B replaced by `labels` (P(A<B) keeps its letters)."""
    v = row["verdict"]
    for side, label in zip(("A", "B"), labels):
        v = v.replace(f"{side} better", f"{label} better")
    return v


def _wrap(text: str, first: str, rest: str) -> list[str]:
    """Lines of at most 80 characters that never break inside "x = y", "1 + R" or an
    interval "[lo, hi]" (their spaces are held by NUL while wrapping)."""
    glued = re.sub(r"\[([^\]\s]*), ([^\]\s]*)\]", "[\\1,\0\\2]", text)
    glued = glued.replace(" = ", "\0=\0").replace(" + ", "\0+\0")
    return [ln.replace("\0", " ") for ln in textwrap.wrap(
        glued, 80, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)]


def header_lines(data: CompareData) -> list[str]:
    """What every table below means: the family, intervals, binning, permutations, MDS."""
    m = data.family_size
    rule = (f"Normalized rows: ⌊√min(n_A, n_B)⌋ equal-width bins (at least 2, at most "
            f"--bins) over the pair's common range, from the larger of the two sides' "
            f"{stats.RANGE_Q:.1%} quantiles to the smaller of their {1 - stats.RANGE_Q:.1%} "
            f"quantiles; bins without models of both sides are dropped; NDS weights; "
            f"n A/B = Kish effective sizes. Their p-values are within-bin permutation tests "
            f"(within-device for the device row): p = (1 + #≥)/(1 + R), R = "
            f"{data.permutations:,} seeded permutations, so p ≥ "
            f"{1 / (1 + data.permutations):.0e}; exact for 'error is exchangeable between the spaces within each bin'.")
    alpha = ALPHA / m
    mds = (f"MDS (rank-test rows): the shift of B the rank test detects with {POWER:.0%} power "
           + (f"at α/m = {ALPHA}/{m} = {alpha:.2g} (Holm's first step: a test that small is "
              f"rejected whatever the others; sensitivity rows at α = {ALPHA})" if m > 1 else
              f"at α = {ALPHA}")
           + f", from each space's own EDF (B moved by the Hodges–Lehmann shift to P(A<B) = "
           f"½), {data.sims:,} simulations; not computed for permutation rows.")
    lines = []
    for w in data.warnings:
        lines += _wrap(w, "warning: ", "  ")
    if lines:
        lines.append("")
    return lines + [
        *_wrap(data.family, "", ""),
        *_wrap(f"Δ = B − A (error points); 95% bootstrap intervals ({data.resamples:,} "
               f"resamples, seed {data.seed}), per row and not adjusted for multiplicity: a "
               f"test that does not reject bounds nothing, the interval does.", "", ""),
        *(_wrap(rule, "", "") if (data.pairs["normalize"] != "none").any() else []),
        *_wrap(mds, "", "")]


def _bins_text(r: dict) -> str:
    if r["role"] == "unavailable":
        return "–"
    drop = f"not used: A {int(r['dropped_a'])}, B {int(r['dropped_b'])}"
    if r["normalize"] == DEVICE:
        return f"{int(r['bins_used'])} of {int(r['bins'])} devices shared; {drop}"
    lo, hi = _big(r["range_lo"]), _big(r["range_hi"])
    return f"{int(r['bins_used'])} of {int(r['bins'])} bins over [{lo}, {hi}]; {drop}"


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
                  f"{'Δmean [95% CI]':>21} {'Δmedian [95% CI]':>21}"]
        for r in ok:
            n = (f"{r['n_a']}/{r['n_b']}" if r["normalize"] == "none" else
                 f"{r['n_eff_a']:.0f}/{r['n_eff_b']:.0f}")
            lines.append(
                f"  {r['normalize']:<6} {n:>9} {r['mean_a']:>6.2f} {r['mean_b']:>6.2f} "
                f"{r['mean_diff']:>+6.2f} [{r['mean_lo']:+.2f}, {r['mean_hi']:+.2f}] "
                f"{r['median_diff']:>+6.2f} [{r['median_lo']:+.2f}, {r['median_hi']:+.2f}]")
        lines.append(f"  {'norm':<6} {'KS D':>5} {'KS p':>6} {'Holm':>6} {'P(A<B)':>6} "
                     f"{'rank p':>6} {'Holm':>6} {'MDS':>5} {'at α':>6}")
        for r in ok:
            lines.append(
                f"  {r['normalize']:<6} {r['ks_D']:>5.3f} {_p(r['ks_p']):>6} "
                f"{_p(r['ks_p_holm']):>6} {r['rank_prob']:>6.3f} {_p(r['rank_p']):>6} "
                f"{_p(r['rank_p_holm']):>6} {_num(r['mds']):>5} {_num(r['mds_alpha'], '.2g'):>6}")
        binned = [r for r in recs if r["normalize"] != "none"]
        if binned:
            lines.append("  binning")
            lines += [f"  {r['normalize']:<6} {_bins_text(r)}" for r in binned]
        lines.append("  verdict (P(A<B): chance that a random A model has the lower error)")
        for r in recs:
            lines += _wrap(verdict_text(r), f"  {r['normalize']:<6} ", " " * 9)
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

    return {"version": 2, "delta": "B - A, error points (negative: B better)",
            "alpha": ALPHA, "power": POWER, "family": data.family,
            "family_size": data.family_size, "primary": data.primary,
            "range_quantile": stats.RANGE_Q, "permutations": data.permutations,
            "resamples": data.resamples, "sims": data.sims, "seed": data.seed,
            "synthetic": data.synthetic, "warnings": list(data.warnings),
            "pairs": clean(data.pairs),
            "complexity": clean(data.complexity)}
