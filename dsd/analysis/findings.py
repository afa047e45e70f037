"""The statistics sections of SUMMARY.md (`dsd summarize`): consecutive-space comparisons under
every normalization (`effects`), the complexity table, per-space trends (`trends`), random-search
efficiency, the device check, and "Findings": one row per claim of the paper with the measured
effect, its interval, the adjusted p and a verdict, all computed from the tables above it.

Holm families: the rank tests of all comparisons (pairs × 4 normalizations) together, as one
`dsd compare` call; each space's trend table on its own, as `dsd analyze --trends`.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DsdError
from . import compare, effects, trends

#: (a space, b space, the paper's claim, the paper's verdict: "none" = no difference,
#: "B better")
PAIR_CLAIMS = (
    ("anynetxa", "anynetxb", "A ≈ B: sharing b across stages costs nothing", "none"),
    ("anynetxb", "anynetxc", "B ≈ C: sharing g across stages costs nothing", "none"),
    ("anynetxc", "anynetxd", "C → D: non-decreasing widths are better", "B better"),
    ("anynetxd", "anynetxe", "D → E: non-decreasing depths are better", "B better"),
    ("anynetxe", "regnetx", "E → RegNetX: the quantized linear rule is better", "B better"),
    ("regnetx", "regnety", "RegNetX → RegNetY: adding SE is better", "B better"),
    # the alternate design choices (DDS §4 and App. B; spaces/*.yaml quote the text)
    ("regnetx", "regnetx_inverted", "the inverted bottleneck (b ≤ 1) is slightly worse",
     "A better"),
    ("regnetx", "regnetx_dwise", "depthwise conv (g = 1) is worse", "A better"),
    ("regnetx", "regnetx_resolution", "varying the resolution harms results", "A better"),
    ("regnety", "regnety_swish", "RegNetY with Swish is better at 400MF", "B better"),
    ("regnety_dwise", "regnety_dwise_swish", "with g = 1, Swish is much better than ReLU",
     "B better"),
    ("regnetx_constrained", "regnetx_depth20", "fixed depth 20 matches variable depth", "none"),
)
#: (space, parameter, claim, expected sign of ρ(param, error) or None, paper's best value)
TREND_CLAIMS = (
    ("regnetx", "d", "best RegNet depth ≈ 20 blocks", None, 20.0),
    ("regnety", "d", "best RegNet depth ≈ 20 blocks", None, 20.0),
    ("regnetx", "wm", "best RegNet wm ≈ 2.5", None, 2.5),
    ("regnety", "wm", "best RegNet wm ≈ 2.5", None, 2.5),
    ("regnetx", "b", "b = 1 is best for RegNet (error rises with b)", +1, None),
    ("regnety", "b", "b = 1 is best for RegNet (error rises with b)", +1, None),
    ("regnetx", "g", "g > 1 is better (error falls with g)", -1, None),
    ("regnety", "g", "g > 1 is better (error falls with g)", -1, None),
    ("anynetxe", "e_fit", "good AnyNetXE models have small e_fit", +1, None),
)
MS = (8, 32, 64)


class Stats(NamedTuple):
    compare: effects.CompareData | None
    labels: dict[str, str]  # sweep → space
    trends: dict[str, pd.DataFrame]  # sweep → trend table
    note: str  # why comparisons are missing, if they are


def _p(v) -> str:
    return "–" if v is None or np.isnan(v) else (f"{v:.3f}" if v >= 1e-3 else f"{v:.1e}")


def _ci(e, lo, hi, fmt="+.2f") -> str:
    return f"{e:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def _v(x: float) -> str:
    return "–" if not np.isfinite(x) else (f"{x / 1e6:.3g}M" if abs(x) >= 1e5 else f"{x:.4g}")


def compute(ok: pd.DataFrame, firsts: dict[str, str], *, resamples: int = 10_000,
            seed: int = 0) -> Stats:
    """Comparisons of the consecutive spaces present and trends of every space's first sweep.
    `ok`: finished models; `firsts`: space → its first sweep."""
    labels = {s: sp for sp, s in firsts.items()}
    pairs = [(firsts[a], firsts[b]) for a, b, *_ in PAIR_CLAIMS if a in firsts and b in firsts]
    data, note = None, ""
    if pairs:
        try:
            data = effects.compare_data(ok, pairs, normalize=effects.NORMALIZE,
                                        resamples=resamples, seed=seed)
        except DsdError as e:
            note = str(e)
    tables = {}
    for s in firsts.values():
        try:
            tables[s] = trends.trends(ok, s, resamples=resamples, seed=seed)
        except DsdError:
            continue
    return Stats(data, labels, tables, note)


def comparison_table(st: Stats) -> pd.DataFrame:
    rows = []
    for r in st.compare.pairs.to_dict("records"):
        n = (f"{r['n_a']}/{r['n_b']}" if r["normalize"] == "none" else
             f"{r['n_eff_a']:.0f}/{r['n_eff_b']:.0f}")
        rows.append({"A → B": f"{st.labels[r['a']]} → {st.labels[r['b']]}",
                     "norm": r["normalize"], "n A/B": n,
                     "Δmean [95% CI]": _ci(r["mean_diff"], r["mean_lo"], r["mean_hi"]),
                     "Δmedian [95% CI]": _ci(r["median_diff"], r["median_lo"], r["median_hi"]),
                     "KS D": r["ks_D"], "KS p (Holm)": _p(r["ks_p_holm"]),
                     "P(A<B)": r["rank_prob"], "rank p (Holm)": _p(r["rank_p_holm"]),
                     "MDS": r["mds"], "verdict": effects.verdict_text(r)})
    return pd.DataFrame(rows)


def complexity_table(st: Stats) -> pd.DataFrame:
    c = st.compare.complexity
    return pd.DataFrame({"space": [st.labels[s] for s in c["sweep"]], "n": c["n"],
                         **{f"median {k}": [_v(x) for x in c[k]] for k in compare.COMPLEXITY},
                         **{f"ρ(error, {k})": c[f"rho_{k}"] for k in compare.COMPLEXITY}})


def trend_table(table: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({
        "param": table["param"], "kind": table["kind"],
        "ρ [95% CI]": [_ci(r, lo, hi) for r, lo, hi in zip(table["rho"], table["lo"],
                                                            table["hi"])],
        "p (Holm)": [_p(p) for p in table["p_holm"]],
        "best range [95% interval]": [f"{_v(b)} [{_v(lo)}, {_v(hi)}]" for b, lo, hi in
                                      zip(table["best"], table["best_lo"], table["best_hi"])]})


def search_table(ok: pd.DataFrame, firsts: dict[str, str]) -> pd.DataFrame:
    """Expected best error of m random models (mean ± std), m in MS, per space."""
    part = ok[ok["sweep"].isin(list(firsts.values()))]
    d = compare.search_data(part, ms=list(MS))
    rows = []
    for sp, s in firsts.items():
        g = d[d["sweep"] == s].set_index("m")
        rows.append({"space": sp, **{f"best of {m}": f"{g.loc[m, 'mean']:.2f} ± "
                                                     f"{g.loc[m, 'std']:.2f}" for m in MS}})
    return pd.DataFrame(rows)


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
                     "Δmean [95% CI]": _ci(r["mean_diff"], r["mean_lo"], r["mean_hi"]),
                     "KS p": _p(r["ks_p"]), "rank p": _p(r["rank_p"]), "MDS": r["mds"]})
    return pd.DataFrame(rows)


def _pair_finding(st: Stats, a: str, b: str, claim: str, expected: str) -> dict | None:
    p = st.compare.pairs
    rows = p[(p["a"] == a) & (p["b"] == b)].set_index("normalize")
    if rows.empty:
        return None
    r = rows.loc["none"]
    got = effects._category(r["verdict"])
    if expected == "none":
        verdict = ("agrees: " if got == "none" else "disagrees: ") + (
            r["verdict"] if got == "none" else r["verdict"].replace(
                "A better", f"{st.labels[a]} better").replace("B better", f"{st.labels[b]} better"))
    elif got == expected:
        verdict = "agrees"
    elif got == "none":
        verdict = f"not detected: {r['verdict']}"
    else:
        verdict = f"disagrees: {st.labels[b if got == 'B better' else a]} is better"
    others = [f"{n}: {effects._category(v).replace('none', 'no detectable difference')}"
              for n, v in rows["verdict"].items() if effects._category(v) != got]
    if others:
        verdict += "; depends on complexity measure (" + ", ".join(others).replace(
            "A better", f"{st.labels[a]} better").replace("B better", f"{st.labels[b]} better") \
            + ")"
    return {"claim (paper)": claim, "space": f"{st.labels[a]} → {st.labels[b]}",
            "measured": f"Δmean {_ci(r['mean_diff'], r['mean_lo'], r['mean_hi'])} points; "
                        f"P(A<B) = {r['rank_prob']:.2f}",
            "adjusted p": f"{_p(r['rank_p_holm'])} (rank, Holm)", "verdict": verdict}


def _trend_finding(st: Stats, space: str, param: str, claim: str, sign, best) -> dict | None:
    sweep = next((s for s, sp in st.labels.items() if sp == space), None)
    if sweep is None or sweep not in st.trends:
        return None
    t = st.trends[sweep].set_index("param")
    if param not in t.index:
        return None
    r = t.loc[param]
    rho = f"ρ(error, {param}) = {_ci(r['rho'], r['lo'], r['hi'])}"
    if best is not None:
        measured = f"best range {_v(r['best'])} [{_v(r['best_lo'])}, {_v(r['best_hi'])}]; {rho}"
        inside = r["best_lo"] <= best <= r["best_hi"]
        verdict = (f"not distinguishable: the interval contains {best:g}" if inside else
                   f"disagrees: the interval excludes {best:g}")
    else:
        measured = rho
        sig = r["p_holm"] < effects.ALPHA
        verdict = ("no detectable trend" if not sig else
                   "agrees" if np.sign(r["rho"]) == sign else "disagrees: opposite trend")
    return {"claim (paper)": claim, "space": space, "measured": measured,
            "adjusted p": f"{_p(r['p_holm'])} (Spearman, Holm over {len(t)} parameters)",
            "verdict": verdict}


def findings_table(st: Stats) -> pd.DataFrame:
    rows = []
    if st.compare is not None:
        rows += [_pair_finding(st, st_a, st_b, c, e) for a, b, c, e in PAIR_CLAIMS
                 for st_a, st_b in [(_sweep(st, a), _sweep(st, b))] if st_a and st_b]
    rows += [_trend_finding(st, *c) for c in TREND_CLAIMS]
    return pd.DataFrame([r for r in rows if r],
                        columns=["claim (paper)", "space", "measured", "adjusted p", "verdict"])


def _sweep(st: Stats, space: str) -> str | None:
    return next((s for s, sp in st.labels.items() if sp == space), None)


def sections(ok: pd.DataFrame, firsts: dict[str, str], md_table, *, resamples: int = 10_000,
             seed: int = 0) -> list[str]:
    """The markdown lines of the statistics sections (md_table renders a frame)."""
    if ok.empty:
        return ["## Findings", "", "Not computed: no finished model (the counts above say why).",
                ""]
    st = compute(ok, firsts, resamples=resamples, seed=seed)
    out = ["## Findings", "",
           "One row per claim of the paper, computed from the tables below. Pair claims: the "
           "rank-test verdict without normalization, and where it changes under an NDS "
           "normalization; trend claims: the DDS best range against the paper's value, or the "
           "sign of a Holm-significant Spearman ρ.", ""]
    f = findings_table(st)
    out += [md_table(f) if len(f) else "(no claim of the paper can be checked here)", ""]
    out += ["## Comparisons between consecutive spaces", ""]
    if st.compare is None:
        out += [f"Not computed: {st.note or 'fewer than two spaces'}.", ""]
    else:
        out += [
            "Δ = B − A in error points (negative: B better), 95% bootstrap intervals "
            f"({resamples:,} resamples, seed {seed}; weighted under normalization). "
            "none = plain; flops, params, acts = NDS normalization over the pair's common "
            "range (n = Kish effective sizes). P(A<B) = chance that a random A model has the "
            "lower error. MDS = the shift the rank test detects with 80% power at α = 0.05 for "
            f"these sizes (simulated from the pooled EDF). {st.compare.family}.", "",
            md_table(comparison_table(st), {"KS D": ".3f", "P(A<B)": ".3f", "MDS": ".2f"}), "",
            "## Complexity and error within each space", "",
            "Median complexity of the finished models and the Spearman ρ of error with each: "
            "a space that differs in a complexity measure that error depends on is confounded "
            "by it (see the normalized rows above).", "",
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
