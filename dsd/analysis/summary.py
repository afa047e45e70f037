"""SUMMARY.md of a trained population, computed from its Parquet frame alone (`dsd summarize`).

Pure functions from the population frame (`analysis.population`) to tables and markdown: per
space counts and error statistics, KS tests between the study's pairs (`claims`: the DDS
refinements A→B→C→D→E→RegNetX, RegNetX vs RegNetY and the alternate choices by default;
each space against the one it extends), DDS best ranges (through `compare.param_data`, so the
numbers equal the report's), the statistics sections of `findings` (Findings, comparisons
under every normalization, complexity, trends, random search, devices), and the study's time.
Every pairwise number comes from one `effects.compare_data` table (`findings.compute`); this
module only selects and renders its columns. Deterministic: the same file always gives the
same text.
"""
from __future__ import annotations

import datetime as _dt
import json
import numpy as np
import pandas as pd

from ..errors import DsdError
from . import claims, compare, findings, thin
from .tables import md_table

PARAMS = ("b", "g", "wm", "d")
BAD = ("failed", "diverged", "collapsed")


def sweep_order(df: pd.DataFrame, study: claims.Study | None = None) -> list[str]:
    """Sweeps in the study's order of spaces (DDS: A … E, RegNetX, RegNetY), others after."""
    study = study or claims.load_study()
    first = df.drop_duplicates("sweep")
    rank = {s: study.rank(sp) for s, sp in zip(first["sweep"], first["space"])}
    return sorted(rank, key=lambda s: rank[s])  # stable: file order within a rank


def done(df: pd.DataFrame) -> pd.DataFrame:
    """Finished models with a finite final error (the ones compared)."""
    d = df[(df["status"] == "done") & df["top1"].notna()].copy()
    d["top1"] = d["top1"].astype(float)
    return d[np.isfinite(d["top1"])]


def check(df: pd.DataFrame) -> None:
    """One recipe definition and one dataset, or a DsdError (results are never mixed)."""
    trained = df[df["status"] != "pending"]
    for col in ("recipe_hash", "dataset"):
        vals = sorted(set(trained[col].dropna()))
        if len(vals) > 1:
            raise DsdError(f"the population mixes {col} values {', '.join(vals)}; export one")


def space_table(df: pd.DataFrame, study: claims.Study | None = None) -> pd.DataFrame:
    """Per sweep: models, done, failed/diverged/collapsed, unfinished, min/mean/median error."""
    ok, rows = done(df), []
    for s in sweep_order(df, study):
        part, e = df[df["sweep"] == s], ok.loc[ok["sweep"] == s, "top1"]
        row = {"sweep": s, "space": part["space"].iloc[0],
               # sampler convention (dsd.samplers); files exported before it drew with dsd1
               "samplers": part["samplers"].iloc[0] if "samplers" in part else "dsd1",
               "models": len(part), "done": len(e)}
        row.update({b: int((part["status"] == b).sum()) for b in BAD})
        row["unfinished"] = int(part["status"].isin(["pending", "running"]).sum())
        row.update({"min": e.min(), "mean": e.mean(), "median": e.median()} if len(e) else
                   {"min": np.nan, "mean": np.nan, "median": np.nan})
        rows.append(row)
    return pd.DataFrame(rows)


def first_sweeps(df: pd.DataFrame, study: claims.Study | None = None) -> dict[str, str]:
    """space → its first sweep (in the study's order)."""
    first = {}
    for s in sweep_order(df, study):
        first.setdefault(df.loc[df["sweep"] == s, "space"].iloc[0], s)
    return first


def ks_pairs(df: pd.DataFrame, study: claims.Study | None = None) -> list[tuple[str, str]]:
    """The sweep pairs compared (`findings.study_pairs`): the study's pairs present (first
    sweep of each space), then each space against the one it extends (a variant such as
    regnetx_swish vs regnetx)."""
    return findings.study_pairs(first_sweeps(df, study), study, findings.extends_of(df))


def best_range_table(df: pd.DataFrame, *, resamples: int = 10_000, seed: int = 0,
                     study: claims.Study | None = None) -> pd.DataFrame:
    """DDS best range of b, g (where shared by all stages) and RegNet wm, d, per sweep."""
    ok, rows = done(df), []
    for s in sweep_order(df, study):
        part = ok[ok["sweep"] == s]
        if len(part) < 2:
            continue
        for p in PARAMS:
            try:
                r = compare.param_data(part, [p], resamples=resamples, seed=seed).best.iloc[0]
            except DsdError:  # not shared (b, g of AnyNetXA) or not a RegNet parameter
                continue
            rows.append({"sweep": s, "param": p, "median": r["median"], "lo": r["lo"],
                         "hi": r["hi"], "n": int(r["n"])})
    return pd.DataFrame(rows, columns=["sweep", "param", "median", "lo", "hi", "n"])


def union_seconds(starts, ends) -> float:
    """Length of the union of intervals [start, end] (seconds)."""
    total, cur_s, cur_e = 0.0, None, None
    for s, e in sorted(zip(starts, ends)):
        if cur_e is None or s > cur_e:
            total += (cur_e - cur_s) if cur_e is not None else 0.0
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    return total + ((cur_e - cur_s) if cur_e is not None else 0.0)


def _ts(text: str) -> float:
    return _dt.datetime.fromisoformat(text).timestamp()


def time_table(df: pd.DataFrame, runs: list[dict]) -> pd.DataFrame:
    """The study's time: per-model training time summed, busy wall-clock from the models'
    timestamps, and (with a runs log) wall-clock and GPU-hours of the `dsd train` chunks."""
    t = df[df["seconds"].notna() & df["finished"].notna()]
    secs = t["seconds"].astype(float).to_numpy()
    ends = np.array([_ts(x) for x in t["finished"]])
    rows = [("models with a recorded training time", f"{len(t)}"),
            ("model-hours: Σ per-model training seconds", f"{secs.sum() / 3600:.2f} h")]
    if len(t):
        busy = union_seconds(ends - secs, ends)
        rows += [("busy wall-clock: union of per-model [finish − seconds, finish]",
                  f"{busy / 3600:.2f} h"),
                 ("first / last model finished", f"{min(t['finished'])} / {max(t['finished'])}")]
    if runs:
        wall = sum(float(r["seconds"]) for r in runs)
        gpu = sum(float(r["seconds"]) * int(r.get("gpus") or 0) for r in runs)
        names = sorted({n for r in runs for n in r.get("gpu_names") or []})
        rows += [("training runs (`dsd train` chunks)", f"{len(runs)}"),
                 ("wall-clock: Σ run durations", f"{wall / 3600:.2f} h"),
                 ("GPU-hours: Σ run duration × GPUs of the run", f"{gpu / 3600:.2f} h"),
                 ("GPUs per run", ", ".join(str(g) for g in sorted({int(r.get("gpus") or 0)
                                                                    for r in runs}))),
                 ("GPU models", ", ".join(names) or "none (CPU)")]
    else:
        rows.append(("wall-clock and GPU-hours of the runs", "not recorded (no runs log)"))
    for col, what in (("device", "devices (models)"), ("exec_path", "execution paths (models)")):
        counts = t[col].dropna().value_counts()
        rows.append((what, ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "–"))
    return pd.DataFrame(rows, columns=["quantity", "value"])


# ---- markdown -----------------------------------------------------------------------------
CIFAR_WINDOW = (": the spaces' CIFAR-10 window, the counterpart of the paper's 400MF regime "
                "[360MF, 400MF] (RegNetX-400MF costs 397.7MF on ImageNet and 122.9MF in the "
                "CIFAR layout, so F = 125MF and the window is [0.9F, F])")


def _window(text: str) -> str:
    """'{"flops": [112500000, 125000000]}' → 'flops [112.5MF, 125MF]'."""
    def si(x):
        return f"{x / 1e6:g}M" if x >= 1e6 else f"{x:g}"
    parts = []
    for k, v in json.loads(text).items():
        if v and v[0] is not None:
            unit = "F" if k == "flops" else ""
            parts.append(f"{k} [{si(v[0])}{unit}, {si(v[1])}{unit}]")
    return ", ".join(parts) or text


def _ks_section(st: findings.Stats | None) -> list[str]:
    """The KS columns of the pairwise table's unnormalized rows (`findings.ks_table`)."""
    head = ["## KS tests between consecutive spaces", "",
            "Two-sample Kolmogorov-Smirnov test of the error distributions (D = sup |F_a − "
            "F_b|; p two-sided, scipy.stats.ks_2samp, unadjusted: the unnormalized rows of the "
            "comparisons below).", ""]
    if st is None:
        return head + ["Not computed: no finished model.", ""]
    if st.compare is None:
        return head + [f"Not computed: {st.note or 'fewer than two spaces'}.", ""]
    return head + [md_table(findings.ks_table(st)), ""]


def summary_markdown(df: pd.DataFrame, runs: list[dict] | None = None, *,
                     notes: str | None = None, source: str = "population.parquet",
                     resamples: int = 10_000, seed: int = 0,
                     study: claims.Study | None = None) -> str:
    """The whole SUMMARY.md text. `study`: the claims checked and the order of the spaces
    (`claims.load_study`; the DDS study when None)."""
    if df.empty:
        raise DsdError("the population has no models")
    check(df)
    study = study or claims.load_study()
    ok, firsts = done(df), first_sweeps(df, study)
    st = None if ok.empty else findings.compute(
        ok, firsts, study=study, pairs=ks_pairs(df, study), resamples=resamples, seed=seed)
    trained = df[df["recipe"].notna()]
    recipe = trained["recipe"].iloc[0] if len(trained) else "–"
    rj = json.loads(trained["recipe_json"].iloc[0]) if len(trained) else {}
    seeds = sorted({int(s) for s in df["sweep_seed"].dropna()}) if "sweep_seed" in df else []
    windows = [_window(w) for w in sorted(set(df["window"].dropna()))] if "window" in df else []
    out = [f"# Population summary: {', '.join(pd.unique(df['dataset']))}", "",
           f"Generated by `dsd summarize {source}` from the population file alone; error = "
           "top-1 test error (%) of the final epoch.", ""]
    if df["synthetic"].astype(bool).any():
        out += ["**Includes SYNTHETIC results (formula errors, not training).**", ""]
    chance = None if ok.empty else thin.chance_warning(ok)
    if chance:  # models that barely learned: say so before any number about them
        out += [f"**{chance}**", ""]
    out += [f"- recipe: `{recipe}` ({rj.get('epochs', '?')} epochs, batch "
            f"{rj.get('batch_size', '?')}, lr {rj.get('lr', '?')}, wd {rj.get('wd', '?')}"
            f"{', subset ' + str(rj['subset']) if rj.get('subset') else ''}); recipe hash "
            f"{', '.join(sorted(set(trained['recipe_hash'].dropna()))) or '–'}",
            f"- sampling seed(s): {', '.join(map(str, seeds)) or '–'}; training seed of each "
            "model derived from (sweep seed, model index)",
            f"- complexity window(s): {'; '.join(windows) or '–'}"
            + (CIFAR_WINDOW if windows == ["flops [112.5MF, 125MF]"] else ""), "",
            "## Models and errors per space", "",
            "done = finished with a finite error (the models compared); failed, diverged "
            "(NaN/inf loss), collapsed (did not learn: chance-level error, or no loss drop after "
            "warm-up) are counted and excluded; unfinished = "
            "pending or running.", "",
            md_table(space_table(df, study), dict.fromkeys(("min", "mean", "median"), ".2f")),
            "", *_ks_section(st),
            "## Best ranges (DDS bootstrap)", "",
            f"Draw 25% of the finished models with replacement, keep the value of the "
            f"lowest-error one, {resamples:,} times (seed {seed}); median and 95% interval. "
            "b and g only where all stages share them.", "",
            md_table(best_range_table(df, resamples=resamples, seed=seed, study=study)), "",
            *findings.sections(ok, firsts, md_table, resamples=resamples, seed=seed,
                               study=study, stats_=st),
            "## Time", "", md_table(time_table(df, runs or [])), ""]
    if notes:
        out += ["## Comparison with the paper", "",
                "*Hand-written from the numbers above (the notes file, included verbatim).*", "",
                notes.strip(), ""]
    return "\n".join(out)
