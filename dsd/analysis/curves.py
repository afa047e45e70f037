"""Plot data of the training curves and of the complexity of sweeps ("plot = data + render",
as `dsd.analysis.compare`): tidy DataFrames in NamedTuples, no drawing. `dsd.analysis.plots`
draws them (`plot_curves`, `plot_complexity`); `dsd curves`, `dsd complexity` and `dsd report`
call both.

Curves come from the per-epoch rows the trainer writes (`Store.epochs`, or a population file's
`epoch_*` list columns): every model of one (recipe, dataset) with at least one epoch, finished
or still training (its epochs so far), with the per-epoch median and interquartile range of its
sweep. Failed, diverged and collapsed models are left out (a diverged loss would swamp the
scale), and so are models without an epoch yet; the caption counts both.

Complexity comes from every sampled model of a sweep (`Store.models`), trained or not, so it
works right after `dsd sample`; the sweep's sampling window is returned beside it. Neither
function imports torch or matplotlib.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from ..errors import DsdError
from .selection import PARAMS, epochs_text, resolve_sweeps
from .tables import DASH, fmt_ci, fmt_num

#: metric → axis label; the store's per-epoch `top1` is the top-1 test error (%)
METRICS = {"top1": "top-1 test error (%)", "train_loss": "train loss (cross-entropy)"}
MEASURES = ("flops", "params", "acts")
#: statuses whose epochs are shown: finished, and still training (running, or interrupted
#: and resumable: pending with epochs)
SHOWN = ("done", "running", "pending")
LEFT_OUT = ("failed", "diverged", "collapsed")


# ---- training curves ----------------------------------------------------------------------
class EpochRows(NamedTuple):
    """Per-epoch rows of the models of one (recipe, dataset), read from a store.

    rows: sweep, index, model_id, status, epoch, top1, top5, train_loss, lr (one per model and
    epoch; models with no epoch have none). results: sweep, index, model_id, status,
    epochs_done, synthetic (one per result of the recipe). sampled: sweep → models sampled.
    synthetic: synthetic (formula) results are among the rows; with_synthetic: they were
    asked for (else they are left out and counted).
    """

    rows: pd.DataFrame
    results: pd.DataFrame
    sampled: dict[str, int]
    recipe: str
    dataset: str
    recipe_json: dict
    synthetic: bool
    with_synthetic: bool = False


EPOCH_COLUMNS = ["sweep", "index", "model_id", "status", "epoch", "top1", "top5", "train_loss",
                 "lr"]


def _recipe_json(text) -> dict:
    try:
        out = json.loads(text) if isinstance(text, str) else dict(text or {})
    except (TypeError, ValueError):
        return {}
    return out if isinstance(out, dict) else {}


def _choose(res: pd.DataFrame, sweeps: list[str], recipe: str | None,
            dataset: str | None, hint: str = "") -> pd.DataFrame:
    """The results of the one (recipe, dataset) whose curves are drawn: the given ones, else
    the only pair with epochs; a one-line DsdError when there are none or several."""
    mine = res
    if recipe is not None:
        mine = mine[mine["recipe"] == recipe]
    if dataset is not None:
        mine = mine[mine["dataset"] == dataset]
    with_epochs = mine[mine["epochs_done"].fillna(0).astype(int) > 0]
    names = ", ".join(sweeps)
    if with_epochs.empty:
        what = f"recipe {recipe or 'any'} on dataset {dataset or 'any'}"
        raise DsdError(f"no epochs yet for {names} ({what}){hint}; curves need at least one "
                       f"trained epoch: run dsd train first")
    combos = with_epochs.groupby(["recipe", "dataset"]).size().sort_values(ascending=False)
    if len(combos) > 1:
        listing = ", ".join(f"--recipe {r} --dataset {d} ({n} models)" for (r, d), n in
                            combos.items())
        raise DsdError(f"per-epoch results of several recipes/datasets: {listing}; choose one")
    (recipe, dataset), = combos.index
    mine = res[(res["recipe"] == recipe) & (res["dataset"] == dataset)]
    if mine["recipe_hash"].nunique() > 1:
        raise DsdError(f"recipe {recipe!r} has {mine['recipe_hash'].nunique()} different "
                       f"definitions ({', '.join(mine['recipe_hash'].unique())}) in these "
                       f"sweeps; their curves are not comparable")
    return mine


def epoch_rows(source, names: Sequence[str], *, recipe: str | None = None,
               dataset: str | None = None, synthetic: bool = False) -> EpochRows:
    """The per-epoch rows of sweeps `names` (sweep or space names) under one recipe and
    dataset (needed only where the sweeps hold epochs of several).

    source: a `dsd.store.Store` (epochs from its `epochs` table) or a
    `population.PopulationStore` (epochs from the file's `epoch_*` list columns).
    synthetic: include results stored as synthetic (formula) data.
    """
    sweeps = resolve_sweeps(source, names)
    res = source.results(sweeps, status=None, synthetic=True)
    if res.empty:
        raise DsdError(f"no epochs yet for {', '.join(sweeps)} (no results; train first: "
                       f"dsd train)")
    res = res.assign(synthetic=res["synthetic"].astype(bool),
                     epochs_done=res["epochs_done"].fillna(0).astype(int))
    skipped = not synthetic and bool((res["synthetic"] & (res["epochs_done"] > 0)).any())
    mine = _choose(res[~res["synthetic"]] if not synthetic else res, sweeps, recipe, dataset,
                   " (synthetic results are skipped unless --synthetic)" if skipped else "")
    rec, ds = mine["recipe"].iloc[0], mine["dataset"].iloc[0]
    everyone = res[(res["recipe"] == rec) & (res["dataset"] == ds)]  # synthetic ones counted
    results = everyone[["sweep", "index", "model_id", "status", "epochs_done", "synthetic"]]
    shown = mine[mine["status"].isin(SHOWN) & (mine["epochs_done"] > 0)]
    rows = _epochs_of(source, shown)
    sampled = {s: len(source.models(s)) for s in sweeps}
    return EpochRows(rows, results.reset_index(drop=True), sampled, str(rec), str(ds),
                     _recipe_json(mine["recipe_json"].dropna().iloc[0]
                                  if mine["recipe_json"].notna().any() else None),
                     bool(synthetic and shown["synthetic"].any()), bool(synthetic))


def _epochs_of(source, shown: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, epoch) of the `shown` results (EPOCH_COLUMNS)."""
    keys = shown[["sweep", "index", "model_id", "status"]]
    if "epoch" in shown:  # a population file: per-epoch values as list columns
        parts = []
        for rec in shown.to_dict("records"):
            ep = pd.DataFrame({"epoch": list(rec["epoch"])})
            for c in ("top1", "top5", "train_loss", "lr"):
                vals = list(rec.get(f"epoch_{c}", []) or [])
                ep[c] = vals if len(vals) == len(ep) else np.nan
            parts.append(ep.assign(model_id=rec["model_id"]))
        ep = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["epoch", "top1", "top5", "train_loss", "lr", "model_id"])
    else:
        ids = [int(r) for r in shown["result_id"]]
        ep = source.epochs(ids) if ids else pd.DataFrame(columns=["result_id", "epoch"])
        ep = ep.merge(shown[["result_id", "model_id"]], on="result_id")
    out = keys.merge(ep, on="model_id")
    out["epoch"] = out["epoch"].astype(int)
    for c in ("top1", "top5", "train_loss", "lr"):
        out[c] = out[c].astype(float) if c in out else np.nan
    return out[EPOCH_COLUMNS].sort_values(["sweep", "index", "epoch"], kind="stable",
                                          key=_sweep_key(keys)).reset_index(drop=True)


def _sweep_key(keys: pd.DataFrame):
    order = {s: i for i, s in enumerate(pd.unique(keys["sweep"]))}
    return lambda col: col.map(order) if col.name == "sweep" else col


class CurveData(NamedTuple):
    """curves: sweep, index, model_id, status, epoch, value, in_progress (one row per model and
    epoch with a value). bands: sweep, epoch, n, median, q25, q75 (over the models that reached
    that epoch). summary: sweep, sampled, shown, done, in_progress, last_epoch, left out by
    reason (failed, diverged, collapsed, synthetic, no_epochs)."""

    curves: pd.DataFrame
    bands: pd.DataFrame
    summary: pd.DataFrame
    metric: str
    label: str
    recipe: str
    dataset: str
    epochs: int | None
    subset: int | None
    test_subset: int | None
    synthetic: bool

    def caption(self, sweeps: Sequence[str] | None = None) -> str:
        """What the figure shows: dataset, recipe, epochs, subsets, models shown (done / in
        progress) and left out by reason; of `sweeps` (default: all)."""
        s = self.summary if sweeps is None else self.summary[self.summary["sweep"].isin(sweeps)]
        head = f"{self.dataset}, recipe {self.recipe}" + epochs_text(self.epochs)
        subsets = [f"{n:,} {what}" for n, what in ((self.subset, "training"),
                                                    (self.test_subset, "test")) if n]
        if subsets:
            head += " (first " + " and ".join(subsets) + " images: --subset/--test-subset)"
        shown = f"{int(s['shown'].sum())} models"
        if s["in_progress"].sum():
            shown += (f" ({int(s['done'].sum())} done, {int(s['in_progress'].sum())} still "
                      f"training: epochs so far)")
        names = {"no_epochs": "without an epoch yet"}
        left = {names.get(k, k): int(s[k].sum()) for k in (*LEFT_OUT, "synthetic", "no_epochs")
                if s[k].sum()}
        tail = (f"{sum(left.values())} left out (" + ", ".join(f"{n} {k}" for k, n in
                                                                 left.items()) + ")"
                if left else "none left out")
        return f"{head}; {shown}; {tail}"


def curve_data(rows: EpochRows, metric: str = "top1") -> CurveData:
    """Each shown model's curve of `metric` and its sweep's median and interquartile range per
    epoch (over the models that reached it: a still-training model counts up to its last
    epoch)."""
    if metric not in METRICS:
        raise DsdError(f"unknown --metric {metric!r}; allowed: {', '.join(METRICS)}")
    r = rows.rows
    sweeps = list(rows.sampled)
    vals = r.assign(value=r[metric].astype(float)).dropna(subset=["value"])
    if vals.empty:
        raise DsdError(f"no {metric} recorded per epoch for {', '.join(sweeps)} "
                       f"(recipe {rows.recipe}, dataset {rows.dataset})")
    vals = vals.assign(in_progress=vals["status"] != "done")
    curves = vals[["sweep", "index", "model_id", "status", "epoch", "value", "in_progress"]]
    bands = (curves.groupby(["sweep", "epoch"], sort=False)["value"]
             .agg(n="size", median="median", q25=lambda v: v.quantile(0.25),
                  q75=lambda v: v.quantile(0.75)).reset_index())
    bands = bands.sort_values(["sweep", "epoch"], key=_sweep_key(curves)).reset_index(drop=True)
    res = rows.results
    summary = []
    for s in sweeps:
        c = curves[curves["sweep"] == s]
        m = res[res["sweep"] == s]
        per_model = c.groupby("model_id")["in_progress"].first()
        row = {"sweep": s, "sampled": rows.sampled[s], "shown": len(per_model),
               "done": int((~per_model).sum()), "in_progress": int(per_model.sum()),
               "last_epoch": int(c["epoch"].max()) if len(c) else 0}
        real = m if rows.with_synthetic else m[~m["synthetic"]]
        for k in LEFT_OUT:
            row[k] = int((real["status"] == k).sum())
        row["synthetic"] = 0 if rows.with_synthetic else int(m["synthetic"].sum())
        row["no_epochs"] = (row["sampled"] - row["shown"] - row["synthetic"]
                            - sum(row[k] for k in LEFT_OUT))
        summary.append(row)
    rj = rows.recipe_json
    epochs = rj.get("epochs")
    return CurveData(curves.reset_index(drop=True), bands, pd.DataFrame(summary), metric,
                     METRICS[metric], rows.recipe, rows.dataset,
                     int(epochs) if epochs else None, rj.get("subset"), rj.get("test_subset"),
                     rows.synthetic)


def curve_table(cdata: CurveData) -> pd.DataFrame:
    """Per sweep: models shown (still training of them), left out, the last epoch reached and
    the median [interquartile range] of the metric there (text cells, 80 columns)."""
    spec = ".2f" if cdata.metric == "top1" else ".3f"
    rows = []
    for r in cdata.summary.to_dict("records"):
        b = cdata.bands[(cdata.bands["sweep"] == r["sweep"])
                        & (cdata.bands["epoch"] == r["last_epoch"])]
        left = sum(r[k] for k in (*LEFT_OUT, "synthetic", "no_epochs"))
        rows.append({"sweep": r["sweep"], "models": r["shown"], "training": r["in_progress"],
                     "left out": left,
                     "epoch": r["last_epoch"] if r["shown"] else DASH,
                     "median [IQR]": fmt_ci(*b.iloc[0][["median", "q25", "q75"]], spec=spec)
                     if len(b) else "no epochs yet"})
    return pd.DataFrame(rows)


# ---- complexity distributions -------------------------------------------------------------
class ComplexityData(NamedTuple):
    """values: sweep, index, measure, value (every sampled model, one row per measure).
    summary: sweep, measure, n, min, q25, median, q75, max. windows: sweep, measure, lo, hi
    (the sampling window's ranges; none for a measure it does not bound). labels: measure →
    axis label. models: sweep → its number of models. A count of 0 is taken as not recorded
    (imported NDS models have no acts) and left out of values and n."""

    values: pd.DataFrame
    summary: pd.DataFrame
    windows: pd.DataFrame
    measures: tuple[str, ...]
    labels: dict[str, str]
    models: pd.Series  # sweep → models (rows) of the sweep

    def caption(self) -> str:
        """What the figure shows: how many sampled models, and which windows are shaded."""
        n = self.models
        k = len(n)
        head = (f"every sampled model, trained or not: {int(n.sum())} models"
                + (f" in {k} sweeps" if k > 1 else ""))
        total = self.summary.groupby("measure", sort=False)["n"].sum()
        missing = [f"{m} of {int(n.sum() - total[m])}" for m in self.measures
                   if total.get(m, 0) < n.sum()]
        if missing:
            head += "; not recorded (left out): " + ", ".join(missing)
        win = self.windows
        if win.empty:
            return head + "; no sampling window recorded"
        shaded = ", ".join(sorted(set(win["measure"]), key=self.measures.index))
        return head + f"; shaded between dashed lines: the sampling window ({shaded})"


def complexity_data(source, names: Sequence[str]) -> ComplexityData:
    """flops, params and acts of every sampled model of sweeps `names` (sweep or space names),
    with each sweep's sampling window; a store of sampled, untrained sweeps suffices."""
    sweeps = resolve_sweeps(source, names)
    frames, windows = [], []
    for s in sweeps:
        models = source.models(s)
        if models.empty:
            raise DsdError(f"sweep {s!r} has no models")
        frames.append(models.assign(sweep=s))
        windows.append(_window_of(source, s, models))
    return complexity_frame(pd.concat(frames, ignore_index=True), dict(zip(sweeps, windows)))


def complexity_table(cxdata: ComplexityData) -> pd.DataFrame:
    """Per sweep and measure: min, quartiles, max and the window's range (text cells, 80
    columns; n is in the caption)."""
    rows = []
    wins = {(w["sweep"], w["measure"]): w for w in cxdata.windows.to_dict("records")}
    for r in cxdata.summary.to_dict("records"):
        w = wins.get((r["sweep"], r["measure"]))
        rows.append({"sweep": r["sweep"], "measure": r["measure"],
                     **{k: fmt_num(r[k]) for k in ("min", "q25", "median", "q75", "max")},
                     "window": f"{fmt_num(w['lo'])}–{fmt_num(w['hi'])}" if w else DASH})
    return pd.DataFrame(rows)


def _window_of(source, sweep: str, models: pd.DataFrame) -> dict:
    """A sweep's window {measure: [lo, hi]}: the store's record, else a population file's
    `window` column (JSON); {} when neither records one."""
    window = source.sweep(sweep).get("window")
    if window is None and "window" in models and models["window"].notna().any():
        window = json.loads(models["window"].dropna().iloc[0])
    return dict(window or {})


def complexity_frame(models: pd.DataFrame, windows: dict[str, dict] | None = None
                     ) -> ComplexityData:
    """The tidy complexity data of a models frame (sweep, index, flops, params, acts; as
    `Store.models`) and windows {sweep: {measure: [lo, hi]}}."""
    windows = windows or {}
    sweeps = list(pd.unique(models["sweep"]))
    idx = models["index"] if "index" in models else pd.Series(range(len(models)))
    values, summary, wins = [], [], []
    for m in MEASURES:
        v = models[m].astype(float) if m in models else pd.Series(np.nan, index=models.index)
        v = v.where(v > 0)  # 0: not recorded (imported NDS models have no acts)
        values.append(pd.DataFrame({"sweep": models["sweep"].to_numpy(),
                                    "index": idx.to_numpy(), "measure": m,
                                    "value": v.to_numpy()}))
        for s in sweeps:
            x = v[models["sweep"] == s].dropna().to_numpy()
            q = np.quantile(x, [0, 0.25, 0.5, 0.75, 1]) if len(x) else [np.nan] * 5
            summary.append({"sweep": s, "measure": m, "n": len(x), "min": q[0], "q25": q[1],
                            "median": q[2], "q75": q[3], "max": q[4]})
            lo_hi = (windows.get(s) or {}).get(m)
            if lo_hi is not None and lo_hi[0] is not None:
                wins.append({"sweep": s, "measure": m, "lo": float(lo_hi[0]),
                             "hi": float(lo_hi[1])})
    return ComplexityData(pd.concat(values, ignore_index=True).dropna(subset=["value"]),
                          pd.DataFrame(summary),
                          pd.DataFrame(wins, columns=["sweep", "measure", "lo", "hi"]),
                          MEASURES, {m: PARAMS[m][0] for m in MEASURES},
                          models.groupby("sweep", sort=False).size())
