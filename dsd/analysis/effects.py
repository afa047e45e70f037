"""Pairwise comparisons of sweeps that a reviewer accepts (`dsd compare`, issues 14 and 28):
one table with a row per (pair, normalization): effect sizes with bootstrap intervals, KS and
rank tests, the family of tests that decides, the minimum detectable shift at the level that
decides and a verdict; plus the complexity table that shows confounds (median
flops/params/acts, within-sweep Spearman ρ). `edf`, `compare`, `summarize` (Findings), the
report and `--json` all read this one table.

Conventions: Δ = B − A in error points, so Δ < 0 means B is better.

- The family is the study's: the pairs asked for × the PRIMARY test (the first `normalize`
  value; "none" = the Mann–Whitney rank test), Holm at ALPHA over them (`family="pairs"`), or
  each pair alone (`family="each"`). Further normalizations, and a device-stratified row where
  the two sweeps' devices differ (`guards`), are sensitivity analyses: their own unadjusted p
  and interval, outside the family. So adding a sweep never changes another pair's verdict
  except through the family size, which the output states.
- Normalized rows (flops, params, acts) bin each pair by one rule (`binning.bin_count`,
  `binning.shared_bins`: √n bins over the common range of the sides' 2.5–97.5% quantiles,
  bins both sides fill) and test with within-bin permutations
  (`permutation.permutation_test`), which is exact for "error is exchangeable between the
  spaces within each bin".
- Verdicts quote the test that decided, at its level, and the Δmean interval; a test that does
  not reject bounds nothing, so the interval is the bound (`verdicts.verdict`).
- MDS: for rank-test rows only, at the level that decides (α/m for a primary row of a family
  of m: Holm's first step, which rejects whatever the other tests; α for a sensitivity row),
  simulated from each side's own EDF (`power.detectable_shift`). Permutation rows have none.
- There is no "depends on complexity measure": a change of significance between rows is not
  a test of a difference between them (each row is reported with its own interval instead).

Rendering (text, JSON) is `effects_text`. Pure functions of a results frame; no torch, no
store.
"""
from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations, pairwise
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DsdError
from . import binning, stats, thin
from .compare import COMPLEXITY, _frame, _seed, _synthetic, sweep_order
from .effects_text import bins_text as _bins_text, header_lines  # noqa: F401 (findings)
from .guards import device_labels, devices_imbalanced, pair_warnings
from .intervals import bootstrap_diffs, skip_bootstrap
from .permutation import permutation_test
from .power import detectable_shift
from .tables import fmt_si
from .verdicts import ALPHA, DEVICE, POWER, TESTS, _category, family_text, verdict  # noqa: F401

NORMALIZE = ("none", *COMPLEXITY)
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


class CompareData(NamedTuple):
    """pairs: one row per (pair, normalization), PAIR_COLUMNS. complexity: one row per sweep,
    COMPLEXITY_COLUMNS. family: the family of tests and how it decides (sentences);
    family_size: its m; primary: the normalization of its test; warnings: one line per
    difference of setup between compared sweeps (`guards.pair_warnings`); notes: the
    complexity table's ρ not computed for too few models (`thin.note`; a pair's row says
    so in its verdict)."""

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
    notes: tuple = ()


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
        dev = device_labels(part)
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
    qa, qb = (np.quantile(v, [binning.RANGE_Q, 1 - binning.RANGE_Q]) for v in (va, vb))
    if not max(qa[0], qb[0]) < min(qa[1], qb[1]):
        raise DsdError(f"{normalize}: the central {1 - 2 * binning.RANGE_Q:.0%} {normalize} "
                       f"ranges do not overlap ({a} [{fmt_si(qa[0])}, {fmt_si(qa[1])}]; {b} "
                       f"[{fmt_si(qb[0])}, {fmt_si(qb[1])}])")
    k = binning.bin_count(len(va), len(vb), bins)
    sh = binning.shared_bins(va, vb, k)
    return {"sa": sh.bin_a, "sb": sh.bin_b, "bins": k, "bins_used": sh.used,
            "range_lo": sh.lo, "range_hi": sh.hi}


def compare_pair(df: pd.DataFrame, a: str, b: str, normalize: str, *, bins: int = 20,
                 resamples: int = 10_000, sims: int = 1000, seed: int = 0,
                 permutations: int = 10_000, mds_alpha: float = ALPHA,
                 intervals: bool = True, power: bool = True) -> dict:
    """Every statistic of one pair under one normalization (p-values not adjusted, no role,
    no verdict: `compare_data` adds those).

    normalize: "none" (Mann–Whitney and scipy's KS; MDS at `mds_alpha`), a complexity (bins
    of `binning.shared_bins`, at most `bins` of them; NDS weights; within-bin permutation
    tests), or "device" (strata = devices that trained models of both; within-device
    permutation tests). Seeded per (seed, a, b, normalize): a pair's numbers do not depend on
    what else is compared.

    A side with fewer models (after binning) than a test or an interval needs
    (`thin.minimum`) gives a row of n and means only, its statistics NaN and `thin` the note
    saying why; no models on a side is an error.

    intervals=False: no Δmean/Δmedian estimates or intervals (NaN). The bootstrap's draws are
    skipped, not made (`intervals.skip_bootstrap`), so the permutation p-values that follow
    in the row's random stream are the same as with intervals. power=False: no MDS (NaN);
    an unnormalized row's MDS follows scipy's bootstrap in the stream, so it needs
    intervals."""
    if power and not intervals and normalize == "none":
        raise DsdError("compare_pair: power=True needs intervals=True (the MDS simulation "
                       "continues the bootstrap's random stream)")
    part = df[df["sweep"].isin([a, b])]
    st = _strata(part, a, b, normalize, bins)
    errs = {s: part.loc[part["sweep"] == s, "top1"].astype(float).to_numpy() for s in (a, b)}
    keep_a, keep_b = st["sa"] >= 0, st["sb"] >= 0
    ea, eb = errs[a][keep_a], errs[b][keep_b]
    sa, sb = st["sa"][keep_a], st["sb"][keep_b]
    if len(ea) == 0 or len(eb) == 0:
        raise DsdError(f"{a} vs {b} ({normalize}): no models to compare on "
                       f"{'either side' if len(ea) == len(eb) else a if len(ea) == 0 else b}")
    plain = normalize == "none"
    wa, wb = (np.ones(len(ea)), np.ones(len(eb))) if plain else \
        (binning.stratum_weights(sa), binning.stratum_weights(sb))
    wa_, wb_ = (None, None) if plain else (wa, wb)
    rng = _seed(seed, a, b, normalize)
    row = {"a": a, "b": b, "normalize": normalize,
           "test": TESTS["none" if plain else DEVICE if normalize == DEVICE else "complexity"],
           **{k: st[k] for k in ("bins", "bins_used", "range_lo", "range_hi")},
           "dropped_a": int((~keep_a).sum()), "dropped_b": int((~keep_b).sum()),
           "n_a": len(ea), "n_b": len(eb), "n_eff_a": stats.effective_n(wa),
           "n_eff_b": stats.effective_n(wb), "thin": None}
    where = "" if plain else f" ({'shared devices' if normalize == DEVICE else 'shared bins'})"
    few = thin.note(("test", "interval"), {a + where: len(ea), b + where: len(eb)},
                    lead="not computed")
    if few:  # n and means only: every other number would mean nothing
        for stat, f in (("mean", stats.weighted_mean), ("median", stats.weighted_median)):
            row[f"{stat}_a"], row[f"{stat}_b"] = f(ea, wa_), f(eb, wb_)
            row[f"{stat}_diff"] = row[f"{stat}_lo"] = row[f"{stat}_hi"] = np.nan
        row.update(ks_D=np.nan, ks_p=np.nan, rank_prob=np.nan, rank_p=np.nan,
                   permutations=None, mds=np.nan, mds_alpha=np.nan, thin=few)
        return row
    if intervals:
        ivs = bootstrap_diffs(ea, eb, wa_, wb_, resamples=resamples, seed=rng)
    elif not plain:
        skip_bootstrap(rng, ea, eb, wa, wb, resamples=resamples)
    for stat, f in (("mean", stats.weighted_mean), ("median", stats.weighted_median)):
        row[f"{stat}_a"], row[f"{stat}_b"] = f(ea, wa_), f(eb, wb_)
        row[f"{stat}_diff"], row[f"{stat}_lo"], row[f"{stat}_hi"] = \
            ivs[stat] if intervals else (np.nan,) * 3
    if plain:
        k, r = stats.ks(ea, eb), stats.rank_test(ea, eb)
        row.update(ks_D=k.D, ks_p=k.p, rank_prob=r.prob, rank_p=r.p, permutations=None,
                   mds_alpha=mds_alpha if power else np.nan,
                   mds=detectable_shift(ea, eb, power=POWER, alpha=mds_alpha, sims=sims,
                                        seed=rng) if power else np.nan)
    else:
        t = permutation_test(ea, eb, wa, wb, strata_a=sa, strata_b=sb,
                             permutations=permutations, seed=rng)
        row.update(ks_D=t.D, ks_p=t.ks_p, rank_prob=t.prob, rank_p=t.rank_p,
                   permutations=permutations, mds=np.nan, mds_alpha=np.nan)
    return row



def _unavailable(a: str, b: str, normalize: str, reason: str) -> dict:
    row = dict.fromkeys(PAIR_COLUMNS, np.nan)
    row.update(a=a, b=b, normalize=normalize, role="unavailable", test="",
               verdict=f"sensitivity: not computed ({reason})")
    return row


def complexity_table(df: pd.DataFrame, sweeps: Sequence[str] | None = None) -> pd.DataFrame:
    """Per sweep: n, median flops/params/acts, and Spearman ρ (and p) of error with each (NaN
    below `thin.minimum("correlation")` models)."""
    df = _frame(df)
    rows = []
    for s in sweeps or sweep_order(df):
        part = df[df["sweep"] == s]
        row = {"sweep": s, "n": len(part)}
        for c in COMPLEXITY:
            v = part[c].astype(float).to_numpy() if c in part else np.full(len(part), np.nan)
            row[c] = float(np.median(v))
            row[f"rho_{c}"], row[f"p_{c}"] = (
                stats.spearman(v, part["top1"].astype(float))
                if thin.enough("correlation", len(part)) else (np.nan, np.nan))
        rows.append(row)
    return pd.DataFrame(rows, columns=COMPLEXITY_COLUMNS)


def compare_data(data, pairs: Sequence[tuple[str, str]] | None = None, *,
                 normalize: Sequence[str] = ("none",), bins: int = 20,
                 resamples: int = 10_000, sims: int = 1000, seed: int = 0,
                 permutations: int = 10_000, family: str = "pairs",
                 devices: bool = True, intervals: bool = True, power: bool = True,
                 complexity: bool = True) -> CompareData:
    """Every pair × normalization, the family's Holm adjustment, verdicts, warnings and the
    complexity table. `pairs` defaults to consecutive pairs of the frame's sweeps.

    normalize: the first value is the primary test, the others sensitivity rows. family:
    "pairs" (Holm over the primary tests of all `pairs`) or "each" (every pair its own family
    of one). devices: add a device-stratified sensitivity row to each pair whose device shares
    differ (`guards.devices_imbalanced`). bins: the most bins a normalization may use
    (`binning.bin_count`).

    What to compute, for callers that render less (`compare.edf_data` reads the KS columns
    only): intervals=False leaves the Δ estimates and intervals NaN and the outcome and
    verdict None (a verdict quotes its interval); power=False leaves the MDS NaN (and is
    required with intervals=False where a row is unnormalized, `compare_pair`);
    complexity=False gives an empty complexity table. Every number that is computed is the
    same as with everything on."""
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
    if power and not intervals:
        raise DsdError("compare_data: power=True needs intervals=True (the MDS simulation "
                       "continues the bootstrap's random stream)")
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
                                 mds_alpha=ALPHA / m if role == "primary" else ALPHA,
                                 intervals=intervals, power=power)
            except DsdError as e:
                if role == "primary":
                    raise
                rows.append(_unavailable(a, b, nz, str(e)))
                continue
            rows.append({**r, "role": role})
    out = pd.DataFrame(rows)
    if "thin" not in out:
        out["thin"] = None
    prim = (out["role"] == "primary").to_numpy()
    for col in ("rank_p", "ks_p"):
        adj = np.full(len(out), np.nan)
        p = out[col].astype(float).to_numpy()
        untested = np.isnan(p[prim])  # too few models: it still counts in the family's m
        adj[prim] = stats.holm(np.where(untested, 1.0, p[prim])) if family == "pairs" \
            else p[prim]
        adj[np.flatnonzero(prim)[untested]] = np.nan
        out[f"{col}_holm"] = adj
    for col in ("bins", "bins_used", "dropped_a", "dropped_b", "n_a", "n_b", "permutations"):
        out[col] = out[col].astype("Int64")
    if intervals:
        out["outcome"], out["verdict"] = zip(*(verdict(r, m) for r in out.to_dict("records")))
    else:
        out["outcome"] = out["verdict"] = None
    sweeps = list(dict.fromkeys(x for p in pairs for x in p))
    table = complexity_table(df, sweeps) if complexity else \
        pd.DataFrame(columns=COMPLEXITY_COLUMNS)
    counts = df["sweep"].value_counts()
    notes = [thin.note("correlation", {s: int(counts.get(s, 0)) for s in sweeps},
                       lead="ρ –") if complexity else None]
    return CompareData(out[PAIR_COLUMNS], table,
                       family_text(m, len(pairs), family, normalize[0], normalize[1:],
                                   devices=devices),
                       resamples, sims, seed,
                       _synthetic(df),
                       m, normalize[0], permutations, tuple(warnings),
                       tuple(n for n in notes if n))
