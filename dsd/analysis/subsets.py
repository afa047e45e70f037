"""The study's subset claims (DDS Fig. 7 and 8: models whose widths or depths are
non-decreasing against the rest, within a space): which models of a space follow a claim's
rule (`subset_members`), and the tests (`subset_tests`): per space, the rank test of
`effects.compare_pair`; per claim, one primary test (pooled over its spaces, each a stratum:
a within-space permutation test); the claims' primary tests one Holm family. Rendered by
`findings` (its Findings rows and the "Subsets within a space" section).
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ..errors import DsdError
from ..spec import ModelSpec
from . import claims, effects, stats, thin
from .tables import fmt_ci, fmt_p

#: columns of `subset_tests`
SUBSET_COLUMNS = ["k", "claim", "rule", "space", "role", "test", "n_in", "n_rest", "n_eff_in",
                  "n_eff_rest", "mean_in", "mean_rest", "mean_diff", "mean_lo", "mean_hi",
                  "median_diff", "median_lo", "median_hi", "prob_in", "p", "p_holm", "mds",
                  "mds_alpha", "params_in", "params_rest", "acts_in", "acts_rest", "verdict"]
POOLED_TEST = "within-space permutation rank test"


def sweep_of(labels: dict[str, str], space: str) -> str | None:
    """The sweep whose space is `space` (labels: sweep → space), or None."""
    return next((s for s, sp in labels.items() if sp == space), None)


def subset_members(part: pd.DataFrame, c: claims.SubsetClaim) -> np.ndarray:
    """Per model: 1.0 if its per-stage `c.param` follows `c.order`, 0.0 if not, NaN where
    unknown. Read from the built spec (`spec` JSON: the widths after the compatibility
    adjustment every model goes through), else from the stage columns (w1, w2, …)."""
    attr = claims.STAGE_PARAMS[c.param]
    if "spec" in part:
        out = []
        for text in part["spec"]:
            try:
                out.append(float(c.holds(getattr(ModelSpec.from_json(text), attr))))
            except (DsdError, TypeError, ValueError, KeyError):  # opaque (imported) nets
                out.append(np.nan)
        return np.array(out, dtype=float)
    cols = [f"{c.param}{i}" for i in range(1, 17) if f"{c.param}{i}" in part]
    if not cols:
        return np.full(len(part), np.nan)
    v = part[cols].astype(float).to_numpy()
    out = np.full(len(part), np.nan)
    for i, row in enumerate(v):
        row = row[np.isfinite(row)]
        if len(row):
            out[i] = float(c.holds(tuple(row)))
    return out


def _side_medians(frames: Sequence[pd.DataFrame], member: Sequence[np.ndarray]) -> dict:
    out = {}
    for col in ("params", "acts"):
        for side, keep in (("in", True), ("rest", False)):
            v = [f.loc[m == keep, col].astype(float).to_numpy() for f, m in zip(frames, member)
                 if col in f]
            v = np.concatenate(v) if v else np.array([])
            out[f"{col}_{side}"] = float(np.median(v)) if len(v) else np.nan
    return out


def _subset_row(r: dict, base: dict) -> dict:
    """A row of `subset_tests` from an `effects.compare_pair` row of rest (A) against the
    subset (B): Δ = subset − rest, prob_in = P(a subset model has the lower error)."""
    return {**base, "test": r["test"], "n_in": r["n_b"], "n_rest": r["n_a"],
            "n_eff_in": r["n_eff_b"], "n_eff_rest": r["n_eff_a"], "mean_in": r["mean_b"],
            "mean_rest": r["mean_a"],
            **{k: r[k] for k in ("mean_diff", "mean_lo", "mean_hi", "median_diff", "median_lo",
                                 "median_hi", "mds", "mds_alpha")},
            "prob_in": 1.0 - r["rank_prob"], "p": r["rank_p"]}


def _pooled_row(split: list[tuple[str, pd.DataFrame, np.ndarray]], base: dict, *,
                resamples: int, seed: int) -> dict:
    """The subset against the rest over several spaces, each space a stratum: the
    stratified row of `effects.compare_pair` (its device-stratified test, here with the
    space as the stratum): each space weighs the same on each side (so Δmean is the mean of
    the per-space differences), weighted bootstrap intervals, Kish effective sizes, and the
    within-stratum permutation test of the weighted rank statistic (exact for "within each
    space, error does not depend on membership"). No MDS (a permutation row)."""
    rule = base["rule"]
    a, b = f"{base['space']}: rest", f"{base['space']}: {rule}"
    frame = pd.concat([part.assign(sweep=np.where(member, b, a), device=space)
                       for space, part, member in split], ignore_index=True)
    r = effects.compare_pair(frame, a, b, effects.DEVICE, resamples=resamples, seed=seed)
    return {**_subset_row(r, base), "test": POOLED_TEST}


def _subset_verdict(r: dict, m: int) -> str:
    """What the row's test gives, at its level, with the Δmean interval (as `effects.verdict`:
    a primary row at the Holm level of the subset family, a per-space row at unadjusted α;
    not rejecting bounds nothing)."""
    if r["role"] == "not applicable":
        return r["verdict"]
    primary = r["role"] == "primary"
    p = r["p_holm"] if primary else r["p"]
    level = (f"Holm p = {fmt_p(p)} in a family of {m}" if primary and m > 1 else
             f"p = {fmt_p(p)}" + ("" if primary else ", unadjusted"))
    iv = f"Δmean {fmt_ci(r['mean_diff'], r['mean_lo'], r['mean_hi'])}"
    if p < effects.ALPHA:
        head = "the subset better" if r["prob_in"] > 0.5 else "the rest better"
        tail = ""
    else:
        head = "not decided" if primary else "not rejected"
        tail = ("; this unadjusted interval excludes 0"
                if r["mean_lo"] > 0 or r["mean_hi"] < 0 else "")
    return f"{head} ({r['test']}, {level}); {iv}{tail}"


def subset_tests(ok: pd.DataFrame, labels: dict[str, str], study: claims.Study, *,
                 resamples: int = 10_000, sims: int = 1000, seed: int = 0) -> pd.DataFrame:
    """The study's subset claims (SUBSET_COLUMNS): within each listed space present, the
    models that follow the claim's rule (`subset_members`) against the rest.

    Rows per claim: one per space, the rank test of `effects.compare_pair` (Mann–Whitney,
    bootstrap intervals, MDS at unadjusted α) — "not applicable" where every model or none
    follows the rule (a space built with it, such as AnyNetXD's widths) or a side has fewer
    models than a test needs (`thin.minimum("test")`); then the claim's PRIMARY test: with one space split, that space's rank
    test (MDS at α/m); with several, a pooled row (`_pooled_row`, each space a stratum).
    Family: the claims' primary tests, Holm at α over them (m = the claims tested); the
    per-space rows are sensitivity analyses (unadjusted). Δ = subset − rest, in points."""
    plan = []
    for k, c in enumerate(study.subsets):
        rows, split = [], []
        for space in c.spaces:
            sweep = sweep_of(labels, space)
            if sweep is None:
                continue
            part = ok[ok["sweep"] == sweep]
            member = subset_members(part, c)
            known = np.isfinite(member)
            if not known.any():  # no spec nor stage columns: nothing to split
                continue
            part, member = part[known], member[known].astype(bool)
            n_in, n_rest = int(member.sum()), int((~member).sum())
            base = {"k": k, "claim": c.claim, "rule": c.rule, "space": space}
            if not thin.enough("test", n_in, n_rest):
                why = (f"every model of {space} has {c.rule}" if n_rest == 0 else
                       f"no model of {space} has {c.rule}" if n_in == 0 else
                       f"{n_in} models of {space} have {c.rule}, {n_rest} do not: a test "
                       f"needs {thin.minimum('test')} on each side")
                rows.append({**base, "role": "not applicable", "test": "", "n_in": n_in,
                             "n_rest": n_rest, "verdict": f"not applicable: {why}",
                             **_side_medians([part], [member])})
                continue
            split.append((space, part, member))
            rows.append(base)
        plan.append((k, c, rows, split))
    m = sum(1 for *_, split in plan if split)
    out = []
    for k, c, rows, split in plan:
        for r in rows:
            if "role" in r:
                out.append(r)
                continue
            space, part, member = next(x for x in split if x[0] == r["space"])
            a, b = f"{space}: rest", f"{space}: {c.rule}"
            frame = part.assign(sweep=np.where(member, b, a))
            one = len(split) == 1
            res = effects.compare_pair(frame, a, b, "none", resamples=resamples, sims=sims,
                                       seed=seed,
                                       mds_alpha=effects.ALPHA / m if one else effects.ALPHA)
            out.append({**_subset_row(res, r), "role": "primary" if one else "space",
                        **_side_medians([part], [member])})
        if len(split) > 1:
            base = {"k": k, "claim": c.claim, "rule": c.rule,
                    "space": ", ".join(sp for sp, _, _ in split), "role": "primary"}
            out.append({**_pooled_row(split, base, resamples=resamples, seed=seed),
                        **_side_medians([x[1] for x in split], [x[2] for x in split])})
    t = pd.DataFrame(out, columns=SUBSET_COLUMNS)
    prim = (t["role"] == "primary").to_numpy()
    t["p_holm"] = np.nan
    if prim.any():
        t.loc[prim, "p_holm"] = stats.holm(t.loc[prim, "p"].astype(float).to_numpy())
    t["verdict"] = [_subset_verdict(r, m) for r in t.to_dict("records")]
    return t
