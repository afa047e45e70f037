"""The statistics sections of SUMMARY.md (`dsd summarize`) and of `dsd report`: the study's
pairwise comparisons under every normalization (`effects.compare_data`, the one computation of
pairwise statistics), the subset claims (`subsets.subset_tests`), the complexity table, per-space
trends (`trends`), random-search efficiency, the device check, and "Findings": one row per
claim of the study (`claims`; the DDS paper's by default) with the measured effect, its
interval, the adjusted p and a verdict, all read from those tables.

Families: the pairs' primary tests as `effects.compare_data` defines them (the study's pairs
present); each space's trend table on its own, as `dsd analyze --trends`; the best-value
claims' window comparisons together (`best_tests`); the subset claims' primary tests together
(`subset_tests`: one test per claim, per-space rows beside it as sensitivity analyses).
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DsdError
from . import claims, compare, effects, stats, trends
from .subsets import POOLED_TEST, subset_tests, sweep_of as _sweep_of
from .tables import DASH, fmt_ci, fmt_p, fmt_pm, fmt_si, md_table as _md_table

MS = (8, 32, 64)
#: columns of `best_tests`
BEST_COLUMNS = ["space", "sweep", "param", "best", "lo", "hi", "n_below", "n_near", "n_above",
                "median_below", "median_near", "median_above", "prob_below", "p_below",
                "prob_above", "p_above", "p_below_holm", "p_above_holm", "best_median",
                "best_lo", "best_hi"]




class Stats(NamedTuple):
    compare: effects.CompareData | None
    labels: dict[str, str]  # sweep → space
    trends: dict[str, pd.DataFrame]  # sweep → trend table
    note: str  # why comparisons are missing, if they are
    study: claims.Study | None = None  # None: the shipped DDS study
    best: pd.DataFrame | None = None  # `best_tests` of the study's best-value claims
    skipped: tuple[str, ...] = ()  # pairs left out of the comparisons, with why
    subsets: pd.DataFrame | None = None  # `subset_tests` of the study's subset claims


# ---- which pairs ----------------------------------------------------------------------------
def extends_of(df: pd.DataFrame) -> dict[str, str]:
    """space → the space its file extends (population column `extends`), where recorded."""
    if "extends" not in df or "space" not in df:
        return {}
    return df.drop_duplicates("space").set_index("space")["extends"].dropna().to_dict()


def study_pairs(firsts: dict[str, str], study: claims.Study | None = None,
                extends: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """Sweep pairs to compare: the study's pairs whose spaces are present (their first
    sweeps), then each present space against the one it extends (a variant such as
    regnetx_swish against regnetx) where the study does not already pair them."""
    study = study or claims.load_study()
    pairs = [(firsts[p.a], firsts[p.b]) for p in study.pairs if p.a in firsts and p.b in firsts]
    for space, parent in (extends or {}).items():
        if parent in firsts and space in firsts:
            pair = (firsts[parent], firsts[space])
            if pair not in pairs and pair[::-1] not in pairs:
                pairs.append(pair)
    return pairs


def usable_pairs(ok: pd.DataFrame, pairs: Sequence[tuple[str, str]]
                 ) -> tuple[list[tuple[str, str]], list[str]]:
    """The pairs with a finished model on each side (`effects.compare_data` marks those too
    thin for a test "not computed", `thin`), and the others with why."""
    n = ok["sweep"].value_counts()
    use, skipped = [], []
    for a, b in pairs:
        na, nb = int(n.get(a, 0)), int(n.get(b, 0))
        if min(na, nb) >= 1:
            use.append((a, b))
        else:
            skipped.append(f"{a} → {b} ({na} and {nb} finished models)")
    return use, skipped


# ---- computation ----------------------------------------------------------------------------
def compute(ok: pd.DataFrame, firsts: dict[str, str], *, study: claims.Study | None = None,
            pairs: Sequence[tuple[str, str]] | None = None,
            labels: dict[str, str] | None = None, bins: int = 20, resamples: int = 10_000,
            seed: int = 0) -> Stats:
    """The pairwise table (every pair × normalization, `effects.compare_data`), the trend
    table of every labelled sweep and the best-value tests. `ok`: finished models; `firsts`:
    space → its first sweep; `pairs` default to `study_pairs`; `labels`: sweep → space
    (default from `firsts`)."""
    study = study or claims.load_study()
    labels = labels or {s: sp for sp, s in firsts.items()}
    pairs = study_pairs(firsts, study, extends_of(ok)) if pairs is None else list(pairs)
    use, skipped = usable_pairs(ok, pairs)
    data, note = None, ""
    if use:
        try:
            data = effects.compare_data(ok, use, normalize=effects.NORMALIZE, bins=bins,
                                        resamples=max(resamples, 10_000), seed=seed)
        except DsdError as e:
            note = str(e)
    else:
        note = "fewer than two spaces to compare" if not pairs else "; ".join(skipped)
    tables = {}
    for s in labels:
        try:
            tables[s] = trends.trends(ok, s, resamples=resamples, seed=seed)
        except DsdError:
            continue
    return Stats(data, labels, tables, note, study, best_tests(ok, labels, study, tables),
                 tuple(skipped), subset_tests(ok, labels, study, resamples=max(resamples, 10_000),
                                              seed=seed))


def best_tests(ok: pd.DataFrame, labels: dict[str, str], study: claims.Study,
               trend_tables: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """For each best-value claim (the best models have `param` near `best`): the models in
    the claim's window [lo, hi] against those below lo and those above hi, each by the
    Mann–Whitney test (prob = P(a model of that side has a lower error than one in the
    window)); Holm over all these tests of the study. The DDS best range of the parameter is
    copied from the space's trend table (`trend_tables`, sweep → `trends.trends`) for
    reference: it describes where the best models lie; it is not a confidence interval."""
    rows = []
    for c in study.trends:
        sweep = _sweep_of(labels, c.space) if c.best is not None else None
        if sweep is None:
            continue
        part = ok[ok["sweep"] == sweep]
        values = {name: v for name, _, v in trends.candidates(part)} if len(part) else {}
        if c.param not in values:
            continue
        x, e = values[c.param], part["top1"].astype(float).to_numpy()
        fin = np.isfinite(x)
        x, e = x[fin], e[fin]
        lo, hi = c.near
        sides = {"below": e[x < lo], "near": e[(x >= lo) & (x <= hi)], "above": e[x > hi]}
        row = {"space": c.space, "sweep": sweep, "param": c.param, "best": c.best, "lo": lo,
               "hi": hi, **{f"n_{k}": len(v) for k, v in sides.items()},
               **{f"median_{k}": float(np.median(v)) if len(v) else np.nan
                  for k, v in sides.items()}}
        for side in ("below", "above"):
            if len(sides[side]) >= 2 and len(sides["near"]) >= 2:
                r = stats.rank_test(sides[side], sides["near"])
                row[f"prob_{side}"], row[f"p_{side}"] = r.prob, r.p
            else:
                row[f"prob_{side}"], row[f"p_{side}"] = np.nan, np.nan
        t = (trend_tables or {}).get(sweep)
        t = t.set_index("param") if t is not None else None
        for col, k in (("best_median", "best"), ("best_lo", "best_lo"), ("best_hi", "best_hi")):
            row[col] = float(t.loc[c.param, k]) if t is not None and c.param in t.index \
                else np.nan
        rows.append(row)
    out = pd.DataFrame(rows, columns=BEST_COLUMNS)
    if len(out):
        p = out[["p_below", "p_above"]].to_numpy(dtype=float).ravel()
        adj = np.full(len(p), np.nan)
        have = np.isfinite(p)
        if have.any():
            adj[have] = stats.holm(p[have])
        out[["p_below_holm", "p_above_holm"]] = adj.reshape(-1, 2)
    return out


# ---- the tables -----------------------------------------------------------------------------
def _primary(pairs: pd.DataFrame) -> pd.DataFrame:
    """The rows whose test decides each pair (one per pair)."""
    if "role" in pairs:
        return pairs[pairs["role"] == "primary"]
    return pairs.drop_duplicates(["a", "b"])


def _outcome(row: dict) -> str:
    """'A better', 'B better' or 'none' (the test did not decide) for one row."""
    if "outcome" in row and isinstance(row["outcome"], str):
        return row["outcome"] if row["outcome"] in ("A better", "B better") else "none"
    return effects._category(str(row["verdict"]))


def _named(text: str, a: str, b: str) -> str:
    return text.replace("A better", f"{a} better").replace("B better", f"{b} better")


def ks_table(st: Stats) -> pd.DataFrame:
    """The KS columns of the unnormalized rows of the pairwise table: a, b, n_a, n_b, D, p
    (scipy.stats.ks_2samp; unadjusted)."""
    cols = ["a", "b", "n_a", "n_b", "D", "p"]
    if st.compare is None:
        return pd.DataFrame(columns=cols)
    p = st.compare.pairs
    p = p[p["normalize"] == "none"]
    return p.rename(columns={"ks_D": "D", "ks_p": "p"})[cols].reset_index(drop=True)


def comparison_table(st: Stats) -> pd.DataFrame:
    rows = []
    for r in st.compare.pairs.to_dict("records"):
        na, nb = st.labels.get(r["a"], r["a"]), st.labels.get(r["b"], r["b"])
        done = bool(pd.notna(r["n_a"]))  # False: a sensitivity row not computed
        n = ("–" if not done else f"{int(r['n_a'])}/{int(r['n_b'])}"
             if r["normalize"] == "none" else f"{r['n_eff_a']:.0f}/{r['n_eff_b']:.0f}")
        ci = {k: fmt_ci(r[f"{k}_diff"], r[f"{k}_lo"], r[f"{k}_hi"]) if done else "–"
              for k in ("mean", "median")}
        bins = effects._bins_text(r) if r["normalize"] != "none" else "–"
        rows.append({"A → B": f"{na} → {nb}", "norm": r["normalize"], "n A/B": n, "bins": bins,
                     "Δmean [95% CI]": ci["mean"], "Δmedian [95% CI]": ci["median"],
                     "KS D": r["ks_D"], "KS p": fmt_p(r["ks_p"]), "P(A<B)": r["rank_prob"],
                     "rank p": fmt_p(r["rank_p"]), "Holm p": fmt_p(r["rank_p_holm"]),
                     "MDS": r["mds"], "verdict": _named(str(r["verdict"]), na, nb)})
    return pd.DataFrame(rows)


def complexity_table(st: Stats) -> pd.DataFrame:
    c = st.compare.complexity
    return pd.DataFrame({"space": [st.labels.get(s, s) for s in c["sweep"]], "n": c["n"],
                         **{f"median {k}": [fmt_si(x) for x in c[k]] for k in compare.COMPLEXITY},
                         **{f"ρ(error, {k})": c[f"rho_{k}"] for k in compare.COMPLEXITY}})


def trend_table(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "param": table["param"], "kind": table["kind"],
        "ρ [95% CI]": [fmt_ci(r, lo, hi) for r, lo, hi in zip(table["rho"], table["lo"],
                                                               table["hi"])],
        "p (Holm)": [fmt_p(p) for p in table["p_holm"]],
        "best range [95% interval]": [DASH if pd.isna(b) else
                                      f"{fmt_si(b)} [{fmt_si(lo)}, {fmt_si(hi)}]" for b, lo, hi
                                      in zip(table["best"], table["best_lo"],
                                             table["best_hi"])]})


def search_table(ok: pd.DataFrame, firsts: dict[str, str]) -> pd.DataFrame:
    """Expected best error of m random models (mean ± std), m in MS, per space."""
    part = ok[ok["sweep"].isin(list(firsts.values()))]
    d = compare.search_data(part, ms=list(MS))
    rows = []
    for sp, s in firsts.items():
        g = d[d["sweep"] == s].set_index("m")
        rows.append({"space": sp, **{f"best of {m}": fmt_pm(g.loc[m, "mean"], g.loc[m, "std"])
                                     for m in MS}})
    return pd.DataFrame(rows)


def subset_table(st: Stats) -> pd.DataFrame:
    """The rows of `subset_tests` as text: one line per space and one per claim's primary
    test (pooled over the spaces, or the one space split)."""
    rows = []
    for r in st.subsets.to_dict("records"):
        done = r["role"] != "not applicable"
        pooled = r["role"] == "primary" and r["test"] == POOLED_TEST
        n = f"{int(r['n_in'])}/{int(r['n_rest'])}" + (
            f" (Kish {r['n_eff_in']:.0f}/{r['n_eff_rest']:.0f})" if pooled else "")
        rows.append({
            "rule": r["rule"], "space": r["space"],
            "role": {"primary": "claim", "space": "per space"}.get(r["role"], "–"),
            "n in/rest": n,
            **{f"Δ{k} [95% CI]": fmt_ci(r[f"{k}_diff"], r[f"{k}_lo"], r[f"{k}_hi"]) if done
               else "–" for k in ("mean", "median")},
            "P(in<rest)": r["prob_in"], "p": r["p"], "Holm p": r["p_holm"],
            "MDS": r["mds"],
            **{f"median {k} in/rest": f"{fmt_si(r[f'{k}_in'])}/{fmt_si(r[f'{k}_rest'])}"
               for k in ("params", "acts")},
            "verdict": r["verdict"]})
    return pd.DataFrame(rows)


def subset_note(st: Stats) -> str:
    """What the subset table's columns mean and how its family decides."""
    t = st.subsets
    m = int((t["role"] == "primary").sum())
    return ("Within each space, the models whose per-stage values follow the claim's rule "
            "(read from the built spec) against the rest of that space; the paper sampled "
            "each rule as its own space (DDS Fig. 7), these are subsets of one sample. "
            "Δ = subset − rest (error points; negative: the subset is better), 95% bootstrap "
            "intervals (10,000 resamples, per row, not adjusted); P(in<rest) = chance that a "
            "subset model has the lower error. Per space: the rank test (Mann–Whitney), "
            "unadjusted p, a sensitivity analysis; MDS at α = 0.05. Claim: the one test per "
            "claim: pooled over its spaces when several are split (each space a stratum "
            "weighing the same on each side, so Δ is the mean of the per-space differences; "
            "Kish effective sizes in brackets; within-space permutation test, 10,000 seeded "
            "permutations), else that space's rank test (MDS at α/m). "
            f"Family: the {m} claim test{'s' if m != 1 else ''}, Holm at α = 0.05. Where a "
            "space is built with the rule (every model follows it) it is not applicable. The "
            "subsets differ in complexity (median params and acts in/rest), so a difference "
            "here need not be one of the rule itself.")


def device_table(ok: pd.DataFrame, firsts: dict[str, str], *, resamples: int = 10_000,
                 seed: int = 0) -> pd.DataFrame:
    """Spaces trained on more than one device: error by device, Δ with interval, rank test."""
    rows = []
    for sp, s in firsts.items():
        part = ok[(ok["sweep"] == s) & ok["device"].notna()]
        devs = sorted(part["device"].unique())
        if len(devs) != 2 or min(part["device"].value_counts()) < 2:
            continue
        frame = part.assign(sweep=part["device"])
        r = effects.compare_pair(frame, devs[0], devs[1], "none", resamples=resamples,
                                 seed=seed)
        rows.append({"space": sp, "A": devs[0], "B": devs[1], "n A/B": f"{r['n_a']}/{r['n_b']}",
                     "mean A": r["mean_a"], "mean B": r["mean_b"],
                     "Δmean [95% CI]": fmt_ci(r["mean_diff"], r["mean_lo"], r["mean_hi"]),
                     "KS p": fmt_p(r["ks_p"]), "rank p": fmt_p(r["rank_p"]), "MDS": r["mds"]})
    return pd.DataFrame(rows)


# ---- findings -------------------------------------------------------------------------------
def _pair_finding(st: Stats, claim: claims.PairClaim) -> dict | None:
    prim = _primary(st.compare.pairs)
    rows = [r for r in prim.to_dict("records")
            if (st.labels.get(r["a"]), st.labels.get(r["b"])) == (claim.a, claim.b)]
    if not rows:
        return None
    r = rows[0]
    la, lb = claim.a, claim.b
    got = _outcome(r)
    text = _named(str(r["verdict"]), la, lb)
    winner = {"A better": la, "B better": lb}.get(got)
    if r.get("outcome") == "not computed":  # too few models (`thin`): no verdict either way
        verdict = text
    elif claim.better == "neither":
        verdict = f"consistent: {text}" if winner is None else \
            f"disagrees: {winner} is better; {text}"
    elif winner is None:
        verdict = text  # "not decided (the test, its p); the interval"
    elif winner == (la if claim.better == "a" else lb):
        verdict = "agrees"
    else:
        verdict = f"disagrees: {winner} is better"
    norm = "" if r["normalize"] == "none" else f", {r['normalize']}-normalized"
    return {"claim": claim.claim, "space": f"{la} → {lb}",
            "measured": f"Δmean {fmt_ci(r['mean_diff'], r['mean_lo'], r['mean_hi'])} points; "
                        f"P(A<B) = {r['rank_prob']:.2f}{norm}",
            "adjusted p": f"{fmt_p(r['rank_p_holm'])} (rank, Holm)", "verdict": verdict}


def _best_finding(st: Stats, c: claims.TrendClaim) -> dict | None:
    t = st.best
    hit = t[(t["space"] == c.space) & (t["param"] == c.param) & (t["best"] == c.best)] \
        if t is not None and len(t) else []
    if not len(hit):
        return None
    r = hit.iloc[0]
    lo, hi, p = f"{r['lo']:g}", f"{r['hi']:g}", c.param
    label = {"below": f"{p} < {lo}", "near": f"{p} in [{lo}, {hi}]", "above": f"{p} > {hi}"}
    measured = "; ".join(f"{label[k]}: median {r[f'median_{k}']:.2f} (n {r[f'n_{k}']})"
                         for k in ("below", "near", "above") if r[f"n_{k}"])
    measured += (f"; best range {fmt_si(r['best_median'])} [{fmt_si(r['best_lo'])}, "
                 f"{fmt_si(r['best_hi'])}] (not a confidence interval)")
    m = int(np.isfinite(t[["p_below", "p_above"]].to_numpy(dtype=float)).sum())
    parts, better, worse = [], [], []
    for k in ("below", "above"):
        if not np.isfinite(r[f"p_{k}"]):
            parts.append(f"{label[k]}: too few models")
        elif r[f"p_{k}_holm"] < effects.ALPHA:
            (better if r[f"prob_{k}"] > 0.5 else worse).append(k)
            parts.append(f"{label[k]} {'better' if r[f'prob_{k}'] > 0.5 else 'worse'}")
        else:
            parts.append(f"{label[k]}: not decided")
    if r["n_near"] < 2:
        head, parts = "not testable", [f"{r['n_near']} models in [{lo}, {hi}]"]
    elif better:
        head = "disagrees"
    elif len(worse) == 2:
        head = "agrees"
    else:
        head = "not distinguishable"
    return {"claim": c.claim, "space": c.space, "measured": measured,
            "adjusted p": ", ".join(f"{k} {fmt_p(r[f'p_{k}_holm'])}" for k in ("below", "above"))
                          + f" (rank tests against the window, Holm over {m})",
            "verdict": f"{head}: " + "; ".join(parts)}


def _trend_finding(st: Stats, c: claims.TrendClaim) -> dict | None:
    if c.best is not None:
        return _best_finding(st, c)
    sweep = _sweep_of(st.labels, c.space)
    if sweep is None or sweep not in st.trends:
        return None
    t = st.trends[sweep].set_index("param")
    if c.param not in t.index:
        return None
    r = t.loc[c.param]
    sign = 1 if c.trend == "rises" else -1
    sig = r["p_holm"] < effects.ALPHA
    verdict = ("no detectable trend" if not sig else
               "agrees" if np.sign(r["rho"]) == sign else "disagrees: opposite trend")
    return {"claim": c.claim, "space": c.space,
            "measured": f"ρ(error, {c.param}) = {fmt_ci(r['rho'], r['lo'], r['hi'])}",
            "adjusted p": f"{fmt_p(r['p_holm'])} (Spearman, Holm over {len(t)} parameters)",
            "verdict": verdict}


def _subset_finding(st: Stats, k: int, c: claims.SubsetClaim) -> dict | None:
    t = st.subsets
    rows = t[t["k"] == k] if t is not None and len(t) else []
    if not len(rows):
        return None
    prim = rows[rows["role"] == "primary"]
    spaces = ", ".join(rows.loc[rows["role"] != "primary", "space"])
    if not len(prim):
        return {"claim": c.claim, "space": spaces, "measured": c.rule,
                "adjusted p": "–", "verdict": "not testable: " + "; ".join(
                    v.removeprefix("not applicable: ") for v in rows["verdict"])}
    r = prim.iloc[0]
    m = int((t["role"] == "primary").sum())
    per = rows[rows["role"] == "space"]
    measured = (f"{c.rule} against the rest: Δmean "
                f"{fmt_ci(r['mean_diff'], r['mean_lo'], r['mean_hi'])} points "
                f"(n {int(r['n_in'])}/{int(r['n_rest'])}); P(in<rest) = {r['prob_in']:.2f}")
    if len(per):
        measured += "; per space: " + ", ".join(
            f"{q['space']} {fmt_ci(q['mean_diff'], q['mean_lo'], q['mean_hi'])} "
            f"(n {int(q['n_in'])}/{int(q['n_rest'])})" for q in per.to_dict("records"))
    skipped = rows[rows["role"] == "not applicable"]
    if len(skipped):
        measured += "; " + "; ".join(skipped["verdict"])
    p = r["p_holm"]
    decided = p < effects.ALPHA
    winner = ("in" if r["prob_in"] > 0.5 else "rest") if decided else None
    if c.better == "neither":
        verdict = (f"consistent: {r['verdict']}" if winner is None else
                   f"disagrees: {r['verdict']}")
    elif winner is None:
        verdict = r["verdict"]
    else:
        verdict = "agrees" if winner == c.better else f"disagrees: {r['verdict']}"
    return {"claim": c.claim, "space": r["space"], "measured": measured,
            "adjusted p": f"{fmt_p(p)} ({r['test']}, Holm over {m})", "verdict": verdict}


def findings_table(st: Stats) -> pd.DataFrame:
    """One row per claim of the study whose spaces are present."""
    study = st.study or claims.load_study()
    rows = []
    if st.compare is not None:
        rows += [_pair_finding(st, c) for c in study.pairs if c.claim]
    rows += [_subset_finding(st, k, c) for k, c in enumerate(study.subsets)]
    rows += [_trend_finding(st, c) for c in study.trends]
    head = f"claim ({study.source})"
    out = pd.DataFrame([r for r in rows if r],
                       columns=["claim", "space", "measured", "adjusted p", "verdict"])
    return out.rename(columns={"claim": head})


# ---- markdown -------------------------------------------------------------------------------
def comparison_note(data: effects.CompareData) -> str:
    """What the comparison table's columns mean: its own columns, then `dsd compare`'s
    header (`effects.header_lines`: family, intervals, binning rule, permutations, MDS) as
    one paragraph; the warnings are listed apart."""
    lines = effects.header_lines(data)
    if "" in lines:  # the warnings come first, then a blank line
        lines = lines[lines.index("") + 1:]
    return ("P(A<B) = chance that a random A model has the lower error; rank p = the row's "
            "own test (Mann–Whitney, or within-bin permutations under normalization); Holm p "
            "= adjusted over the family (primary rows only). " + " ".join(lines))


def sections(ok: pd.DataFrame, firsts: dict[str, str], md_table=_md_table, *,
             resamples: int = 10_000, seed: int = 0, study: claims.Study | None = None,
             stats_: Stats | None = None) -> list[str]:
    """The markdown lines of the statistics sections (md_table renders a frame). `stats_`:
    the computed Stats of these models (computed here when not given)."""
    if ok.empty:
        return ["## Findings", "", "Not computed: no finished model (the counts above say why).",
                ""]
    st = stats_ or compute(ok, firsts, study=study, resamples=resamples, seed=seed)
    source = (st.study or claims.load_study()).source
    out = ["## Findings", "",
           f"One row per claim of the {source}, computed from the tables below. Pair claims: "
           "the pair's primary test (unnormalized rank test, in the family below) with its "
           "Δmean interval: agrees or disagrees when the test decides; a claim of no "
           "difference is consistent when it does not (the interval is then the bound, not a "
           "proof of equality); otherwise not decided. Subset claims: the claim's one test "
           "(below, Subsets within a space), read the same way. Trend claims: the sign of a "
           "Holm-significant Spearman ρ; for a best value, the models in the claim's window "
           "against those below and above it (the DDS best range is shown for reference; it "
           "is not a confidence interval).",
           ""]
    f = findings_table(st)
    out += [md_table(f) if len(f) else f"(no claim of the {source} can be checked here)", ""]
    out += ["## Comparisons between consecutive spaces", ""]
    if st.compare is None:
        out += [f"Not computed: {st.note or 'fewer than two spaces'}.", ""]
    else:
        out += [comparison_note(st.compare), ""]
        out += [f"- warning: {w}" for w in getattr(st.compare, "warnings", ())]
        out += [f"- not compared: {s}" for s in st.skipped]
        if getattr(st.compare, "warnings", ()) or st.skipped:
            out.append("")
        out += [md_table(comparison_table(st), {"KS D": ".3f", "P(A<B)": ".3f", "MDS": ".2f"}),
                ""]
    if st.subsets is not None and len(st.subsets):
        out += ["## Subsets within a space", "", subset_note(st), "",
                md_table(subset_table(st), {"P(in<rest)": ".3f", "Holm p": "p", "MDS": ".2f"}), ""]
    if st.compare is not None:
        out += ["## Complexity and error within each space", "",
                "Median complexity of the finished models and the Spearman ρ of error with each: "
                "a space that differs in a complexity measure that error depends on is "
                "confounded by it (see the normalized rows above).", "",
                md_table(complexity_table(st), dict.fromkeys(
                    [f"ρ(error, {k})" for k in compare.COMPLEXITY], "+.2f")), ""]
    if st.trends:
        out += ["## Trends: every parameter against error", "",
                "Per space (`dsd analyze SWEEP --trends`): Spearman ρ of error with each sampled "
                "parameter, per-stage value and derived quantity, 95% bootstrap interval, p "
                "Holm-adjusted over the space's parameters, ranked by |ρ|; best range = DDS "
                "bootstrap median [95% interval].", ""]
        for s, t in st.trends.items():
            out += [f"### {st.labels[s]}", "", md_table(trend_table(t)), ""]
    out += ["## Random search efficiency", "",
            "Expected best error (%) of m models drawn at random from each space, ± its "
            "standard deviation (exact, from the EDF).", "",
            md_table(search_table(ok, firsts)), ""]
    if "device" in ok:
        dev = device_table(ok, firsts, resamples=resamples, seed=seed)
        if len(dev):
            out += ["## Devices", "",
                    "Spaces whose models were trained on two devices: error by device (no "
                    "adjustment; MDS as above).", "",
                    md_table(dev, {"mean A": ".2f", "mean B": ".2f", "MDS": ".2f"}), ""]
    return out
