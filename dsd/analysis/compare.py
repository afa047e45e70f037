"""Plot data: tidy DataFrames computed from selected results ("plot = data + render", Optuna's
`_get_edf_info` pattern). `dsd.analysis.plots` only draws what these return, and the numbers are
tested here, not on pixels.

Input frames are `Selection.data` (or any `Store.results` frame): one row per model with
`sweep`, `top1` (final-epoch top-1 error, %), complexity and spec columns.
"""
from __future__ import annotations

import zlib
from collections.abc import Sequence
from itertools import combinations
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DsdError
from ..spec import ModelSpec
from . import binning, stats, thin
from .tables import fmt_si
from .fit import block_bg, block_widths, continuous_widths, fitted_widths
from .selection import PARAMS, param_values

COMPLEXITY = ("flops", "params", "acts")


def _frame(data) -> pd.DataFrame:
    df = data.data if hasattr(data, "data") and isinstance(data.data, pd.DataFrame) else data
    if not isinstance(df, pd.DataFrame) or df.empty:
        raise DsdError("no results to analyse")
    for col in ("sweep", "top1"):
        if col not in df:
            raise DsdError(f"results frame has no {col!r} column")
    return df


def sweep_order(df: pd.DataFrame) -> list[str]:
    return list(pd.unique(df["sweep"]))


def _seed(seed: int, *keys: str) -> np.random.Generator:
    """A generator per (seed, sweep, …): results do not depend on what else is analysed."""
    return np.random.default_rng([int(seed), *(zlib.crc32(k.encode()) for k in keys)])


def _synthetic(df: pd.DataFrame) -> bool:
    return bool("synthetic" in df and df["synthetic"].astype(bool).any())


def _concat(rows: list[pd.DataFrame], columns: list[str], df: pd.DataFrame) -> pd.DataFrame:
    """The row frames as one (empty, with `columns`, when there are none), marked synthetic
    (attrs) when the input `df` is."""
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
    out.attrs["synthetic"] = _synthetic(df)
    return out


# ---- EDFs ---------------------------------------------------------------------------------
class EdfData(NamedTuple):
    """curves: sweep, top1, F (F just after top1; steps-post). summary: sweep, n, min, mean,
    median (+ dropped, n_eff when normalized). ks: a, b, D, p, p_holm for every pair, the KS
    columns of `effects.compare_data`'s rows (`ks_table`; "–" where a side has too few models,
    `thin`). band: sweep, top1, lo, hi or None (no rows for a sweep too small for an interval).
    weights: per input row (index aligned), 1/n unweighted. ks_test: how the KS p-values
    were computed (a phrase). notes: what was not computed and why (`thin.note`)."""

    curves: pd.DataFrame
    summary: pd.DataFrame
    ks: pd.DataFrame
    band: pd.DataFrame | None
    weights: pd.Series
    normalize: str | None
    bins: int | None
    range: tuple[float, float] | None
    synthetic: bool
    ks_test: str = ""
    notes: tuple = ()

    def left_out(self) -> tuple[dict[str, int], str]:
        """(sweep → models a normalized EDF leaves out, why) for `Selection.caption`; ({}, "")
        unnormalized."""
        if not self.normalize:
            return {}, ""
        lo, hi = self.range
        return ({r["sweep"]: int(r["dropped"]) for r in self.summary.to_dict("records")},
                f"outside the common {self.normalize} range [{fmt_si(lo)}, {fmt_si(hi)}]")


def complexity_weights(df: pd.DataFrame, by: str, bins: int) -> tuple[pd.Series, tuple]:
    """NDS weights per row for complexity `by` over the sweeps' common range (NOTES §6)."""
    if by not in COMPLEXITY:
        raise DsdError(f"cannot normalize by {by!r}; allowed: {', '.join(COMPLEXITY)}")
    groups = {s: df.loc[df["sweep"] == s, by].astype(float).to_numpy() for s in sweep_order(df)}
    if not max(v.min() for v in groups.values()) < min(v.max() for v in groups.values()):
        ranges = "; ".join(f"{s} [{fmt_si(v.min())}, {fmt_si(v.max())}]"
                           for s, v in groups.items())
        raise DsdError(f"cannot normalize by {by}: the sweeps' {by} ranges do not overlap "
                       f"({ranges})")
    lo, hi = binning.common_range(*groups.values())
    suggest = binning.max_bins(list(groups.values()), lo, hi, bins - 1) if bins > 1 else 0
    w = pd.Series(0.0, index=df.index)
    for s, v in groups.items():
        w[df["sweep"] == s] = binning.nds_weights(v, lo, hi, bins, name=f"sweep {s!r} ({by})",
                                                  suggest=suggest or None)
    return w, (lo, hi)


KS_COLUMNS = ["a", "b", "D", "p", "p_holm"]


def ks_table(table, normalize: str | None = None) -> tuple[pd.DataFrame, str]:
    """The KS columns (D, p, Holm p) of one normalization's rows of a pairwise table
    (`effects.compare_data`), and a phrase saying how its p-values were computed."""
    p = table.pairs
    p = p[p["normalize"] == (normalize or "none")]
    out = p.rename(columns={"ks_D": "D", "ks_p": "p", "ks_p_holm": "p_holm"})[KS_COLUMNS]
    if not normalize:
        how = "scipy.stats.ks_2samp"
    elif "permutations" in p and p["permutations"].notna().any():
        how = (f"weighted, within-bin permutation p ({int(p['permutations'].max()):,} "
               f"permutations); each pair binned on its own, as dsd compare")
    else:
        how = "weighted: asymptotic, Kish effective sizes"
    return out.reset_index(drop=True), how


def pairwise_ks(df: pd.DataFrame, pairs: Sequence[tuple[str, str]],
                normalize: str | None = None, *, bins: int = 20, seed: int = 0):
    """KS of every pair under one normalization, read from the one pairwise computation
    (`effects.compare_data`; the pairs are its Holm family). Only the tests are computed: no
    intervals, MDS, complexity table or device rows. The normalized rows' permutation tests
    use `dsd compare`'s defaults (10,000 permutations, after the skipped draws of 10,000
    bootstrap resamples in each row's random stream), so their p-values are `dsd compare`'s."""
    from . import effects  # effects imports this module

    return effects.compare_data(df, list(pairs), normalize=[normalize or "none"], bins=bins,
                                resamples=10_000, devices=False, seed=seed, intervals=False,
                                power=False, complexity=False)


def edf_data(data, *, normalize: str | None = None, bins: int = 20, band: bool = False,
             resamples: int = 1000, level: float = 0.95, seed: int = 0,
             table=None, ks: bool = True) -> EdfData:
    """Error EDF of every sweep, their summary and pairwise KS tests (NOTES §6).

    normalize: None, or "flops" / "params" / "acts" for the NDS normalized EDF with `bins` bins
    over the common range (models outside get weight 0 and are counted as dropped).
    band: add a pointwise bootstrap band (`resamples`, `level`, `seed`) to every sweep with
    enough models for an interval (`thin`).
    table: a pairwise table (`effects.compare_data`) whose rows of this normalization give the
    KS columns; by default every pair of sweeps is compared (`pairwise_ks`; a pair with a side
    below `thin.minimum("test")` gets "–"). Either way the KS numbers are those of `dsd
    compare` for the same pair and normalization: each pair weighted over its own common
    range, not the range of the curves. ks=False: no KS table (empty).
    """
    df = _frame(data)
    order = sweep_order(df)
    rng_range = None
    if normalize:
        weights, rng_range = complexity_weights(df, normalize, bins)
    else:
        weights = 1.0 / df.groupby("sweep")["top1"].transform("size")
    curves, bands, summary, thin_band = [], [], [], {}
    for s in order:
        sel = df["sweep"] == s
        e = df.loc[sel, "top1"].astype(float).to_numpy()
        w = weights[sel].to_numpy()
        keep = w > 0
        x, f = stats.edf(e, w)
        curves.append(pd.DataFrame({"sweep": s, "top1": x, "F": f}))
        row = {"sweep": s, "n": int(keep.sum()), "min": float(e[keep].min()),
               "mean": stats.weighted_mean(e, w), "median": stats.weighted_median(
                   e[keep], w[keep] if normalize else None)}
        if normalize:
            row["dropped"] = int((~keep).sum())
            row["n_eff"] = stats.effective_n(w)
        summary.append(row)
        if band and not thin.enough("interval", row["n"]):
            thin_band[s] = row["n"]
        elif band:
            bx, lo, hi = stats.edf_band(e, w, resamples=resamples, level=level,
                                        seed=_seed(seed, s, "band"))
            bands.append(pd.DataFrame({"sweep": s, "top1": bx, "lo": lo, "hi": hi}))
    if table is None and ks:
        pairs = list(combinations(order, 2))
        table = pairwise_ks(df, pairs, normalize, bins=bins, seed=seed) if pairs else None
    kst, how = ks_table(table, normalize) if table is not None and ks else \
        (pd.DataFrame(columns=KS_COLUMNS), "")
    notes = [thin.note("interval", thin_band, lead="no band")]
    if table is not None and ks:
        notes.append(thin_sides(table.pairs[table.pairs["normalize"] == (normalize or "none")],
                                "test", lead="KS –"))
    return EdfData(pd.concat(curves, ignore_index=True), pd.DataFrame(summary), kst,
                   _concat(bands, ["sweep", "top1", "lo", "hi"], df) if band else None,
                   weights, normalize, bins if normalize else None, rng_range, _synthetic(df),
                   how, tuple(n for n in notes if n))


def thin_sides(rows: pd.DataFrame, kind="test", lead: str = "–") -> str | None:
    """The `thin.note` (led by `lead`) of the sides of pairwise rows (a, b, n_a, n_b) below
    the minimum of `kind`, or None."""
    counts: dict[str, int] = {}
    for r in rows.to_dict("records"):
        for side in ("a", "b"):
            n = r[f"n_{side}"]
            if pd.notna(n) and not thin.enough(kind, n):
                counts[r[side]] = min(int(n), counts.get(r[side], int(n)))
    return thin.note(kind, counts, lead=lead)


# ---- parameters ---------------------------------------------------------------------------
class ParamData(NamedTuple):
    """points: sweep, param, value, top1. best: sweep, param, median, lo, hi, n, k, resamples
    (median, lo, hi NaN where a sweep has too few models for a best range, `thin`).
    labels/log: axis label and log base (None = linear) per param. notes: what was not
    computed and why."""

    points: pd.DataFrame
    best: pd.DataFrame
    params: list[str]
    labels: dict[str, str]
    log: dict[str, int | None]
    synthetic: bool
    notes: tuple = ()


def param_data(data, params: Sequence[str], *, resamples: int = 10_000, frac: float = 0.25,
               level: float = 0.95, seed: int = 0) -> ParamData:
    """Error against each parameter with the DDS best-range bootstrap per sweep (NOTES §6);
    no best range (NaN) for a sweep below `thin.minimum("best range")` models."""
    df = _frame(data)
    params = list(dict.fromkeys(params))
    if not params:
        raise DsdError("name at least one parameter")
    points, best, few = [], [], {}
    for p in params:
        values = param_values(df, p)
        for s in sweep_order(df):
            sel = df["sweep"] == s
            v = values[sel].to_numpy(dtype=float)
            e = df.loc[sel, "top1"].astype(float).to_numpy()
            points.append(pd.DataFrame({"sweep": s, "param": p, "value": v, "top1": e,
                                        "index": df.loc[sel, "index"].to_numpy()
                                        if "index" in df else np.arange(len(v))}))
            n = int((np.isfinite(v) & np.isfinite(e)).sum())
            if not thin.enough("best range", n):
                few[s] = n
                best.append({"sweep": s, "param": p, "median": np.nan, "lo": np.nan,
                             "hi": np.nan, "n": n, "k": thin.best_k(n, frac),
                             "resamples": 0})
                continue
            r = stats.best_range(v, e, frac=frac, resamples=resamples, level=level,
                                 seed=_seed(seed, s, p))
            best.append({"sweep": s, "param": p, "median": r.median, "lo": r.lo, "hi": r.hi,
                         "n": r.n, "k": r.k, "resamples": r.resamples})
    note = thin.note("best range", few)
    return ParamData(pd.concat(points, ignore_index=True), pd.DataFrame(best), params,
                     {p: PARAMS[p][0] for p in params}, {p: PARAMS[p][1] for p in params},
                     _synthetic(df), (note,) if note else ())


# ---- random search efficiency -------------------------------------------------------------
def search_data(data, *, ms: Sequence[int] | None = None, normalize: str | None = None,
                bins: int = 20) -> pd.DataFrame:
    """Expected best error of m random models per sweep and m: mean, std, and lo/hi, the
    central 95% of the best error of m draws (within the observed errors, unlike mean ± 2 std).

    ms defaults to 1, 2, 4, … up to the largest sweep size. With `normalize`, models are drawn
    by their NDS weights. Too thin for a number (`thin`), NaN: every column for m above the
    sweep's size (models used), std below 2 models, lo/hi below an interval's minimum; the
    notes saying so are in `attrs["notes"]` (column → note: "mean", "std", "band").
    """
    df = _frame(data)
    weights = complexity_weights(df, normalize, bins)[0] if normalize else None
    if ms is None:
        n_max = int(df.groupby("sweep").size().max())
        ms = 2 ** np.arange(int(np.floor(np.log2(n_max))) + 1)
    rows, sizes = [], {}
    for s in sweep_order(df):
        sel = df["sweep"] == s
        w = weights[sel].to_numpy() if weights is not None else None
        m, mean, std, lo, hi = stats.search_efficiency(df.loc[sel, "top1"].astype(float), w,
                                                       ms, level=0.95)
        n = int(sel.sum()) if w is None else int((w > 0).sum())
        sizes[s] = n
        beyond = m > thin.search_limit(n)
        if not thin.enough("spread", n):
            std = np.full(len(m), np.nan)
        if not thin.enough("interval", n):
            lo, hi = np.full(len(m), np.nan), np.full(len(m), np.nan)
        rows.append(pd.DataFrame({"sweep": s, "m": m, "mean": np.where(beyond, np.nan, mean),
                                  "std": np.where(beyond, np.nan, std),
                                  "lo": np.where(beyond, np.nan, lo),
                                  "hi": np.where(beyond, np.nan, hi)}))
    out = _concat(rows, ["sweep", "m", "mean", "std", "lo", "hi"], df)
    notes = {"mean": thin.search_note(sizes, list(ms)),
             "std": thin.note("spread", sizes, lead="std –"),
             "band": thin.note("interval", sizes, lead="central 95% –")}
    out.attrs["notes"] = {k: v for k, v in notes.items() if v}
    return out


# ---- per-block widths of the best and worst models ----------------------------------------
def best_and_worst(part: pd.DataFrame, top: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The `top` lowest-error rows and the `top` highest (worst first), disjoint: with fewer
    than 2·top rows the best ceil(n/2) and the worst rest, so no model is listed twice."""
    part = part.sort_values("top1", kind="stable")
    k = min(top, (len(part) + 1) // 2)
    return part.head(k), part.iloc[k:].tail(min(top, len(part) - k)).iloc[::-1]


def widths_data(data, *, top: int = 4, sweeps: Sequence[str] | None = None) -> pd.DataFrame:
    """Per-block widths of the `top` best and worst models of each sweep.

    Columns: sweep, rank ("best"/"worst"), order (1 = best/worst), index, model_id, top1, e_fit,
    block, width (observed), pred (fitted quantized width, NaN without a fit), u (fitted
    continuous w0 + wa·j).
    """
    df = _frame(data)
    rows = []
    for s in (sweeps or sweep_order(df)):
        part = df[df["sweep"] == s]
        if "opaque" in part:  # imported models without a ModelSpec have no block widths
            part = part[~part["opaque"].fillna(False).astype(bool)]
        best, worst = best_and_worst(part, top)
        for rank, chosen in (("best", best), ("worst", worst)):
            for order, rec in enumerate(chosen.to_dict("records"), 1):
                obs = block_widths(rec["spec"])
                d = len(obs)
                fitted = all(pd.notna(rec.get(c)) for c in ("fit_w0", "fit_wa", "fit_wm"))
                pred = (fitted_widths(obs, rec["fit_w0"], rec["fit_wa"], rec["fit_wm"],
                                      *block_bg(rec["spec"]))
                        if fitted else np.full(d, np.nan))
                u = (continuous_widths(rec["fit_w0"], rec["fit_wa"], d) if fitted
                     else np.full(d, np.nan))
                rows.append(pd.DataFrame({
                    "sweep": s, "rank": rank, "order": order, "index": rec.get("index"),
                    "model_id": rec.get("model_id"), "top1": rec["top1"],
                    "e_fit": rec.get("e_fit", np.nan), "block": np.arange(d), "width": obs,
                    "pred": pred, "u": u}))
    return _concat(rows, ["sweep", "rank", "order", "index", "model_id", "top1", "e_fit",
                          "block", "width", "pred", "u"], df)


def best_models(data, *, top: int = 5) -> pd.DataFrame:
    """The `top` best and worst models per sweep as a table (for reports), disjoint (see
    `best_and_worst`); per-stage d, w, b, g of every stage as compact text ('1 2 7 12')."""
    df = _frame(data)
    out = []
    for s in sweep_order(df):
        for rank, chosen in zip(("best", "worst"), best_and_worst(df[df["sweep"] == s], top)):
            for rec in chosen.to_dict("records"):
                row = {"sweep": s, "index": rec.get("index"), "top1": rec["top1"]}
                if not rec.get("opaque"):  # imported models without a ModelSpec: no stages
                    spec = ModelSpec.from_json(rec["spec"]) if isinstance(rec["spec"], str) \
                        else ModelSpec.from_dict(rec["spec"])
                    for key, vals in (("d", spec.ds), ("w", spec.ws), ("b", spec.bs),
                                      ("g", spec.gs)):
                        row[key] = " ".join(str(v) for v in vals)
                for key in ("flops", "params", "e_fit"):
                    if key in rec:
                        row[key] = rec[key]
                out.append({**row, "rank": rank})
    return pd.DataFrame(out)
