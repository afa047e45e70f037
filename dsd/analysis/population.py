"""A trained population as one Parquet file: one row per model (spec, complexity, recipe,
status, final errors, time, device, per-epoch curves as list columns), plus the study's
training runs in the file metadata (key `dsd:runs`, JSON), so it stands alone without the store.

`PopulationStore` lets the analysis commands (`select`, `dsd report --population`) read such a
file in place of a SQLite store.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DsdError

RUNS_KEY = b"dsd:runs"
CURVES = ("top1", "top5", "train_loss", "lr", "seconds")  # per-epoch columns: epoch_<name>
FIRST = ["sweep", "space", "samplers", "dataset", "index", "model_id", "status", "top1", "top5",
         "train_loss", "epochs_done", "seconds", "device", "exec_path", "finished", "recipe",
         "recipe_hash", "recipe_json", "train_seed", "sweep_seed", "window", "flops", "params",
         "acts"]
#: What the result columns hold (the store's names are kept; `top1`/`top5` are errors, not
#: accuracies). Written into Parquet files as each field's `description` metadata.
COLUMN_DOCS = {
    "top1": "final-epoch top-1 test error (%), not accuracy",
    "top5": "final-epoch top-5 test error (%), not accuracy",
    "train_loss": "mean train cross-entropy of the final epoch",
    "epochs_done": "epochs finished",
    "seconds": "training time (s), summed over epochs",
    "status": "pending | running | done | failed | diverged | collapsed",
    "epoch_top1": "top-1 test error (%) after each epoch",
    "epoch_top5": "top-5 test error (%) after each epoch",
    "epoch_train_loss": "mean train cross-entropy of each epoch",
    "epoch_lr": "learning rate at the start of each epoch",
    "epoch_seconds": "time (s) of each epoch",
    "flops": "multiply-adds of one forward pass (conv and linear layers)",
    "e_fit": "mean |log(RegNet-fit width / width)| per block (dsd fit)",
}


def with_column_docs(table):
    """A pyarrow Table whose fields named in COLUMN_DOCS carry their `description`."""
    import pyarrow as pa

    fields = [f.with_metadata({**(f.metadata or {}), b"description": COLUMN_DOCS[f.name].encode()})
              if f.name in COLUMN_DOCS else f for f in table.schema]
    # same types, new field metadata: rebuilt, not cast (casting list columns of a table made
    # from a filtered frame failed on their offsets, pyarrow 26)
    return pa.Table.from_arrays(table.columns, schema=pa.schema(fields,
                                                                metadata=table.schema.metadata))


def _pick_recipe(res: pd.DataFrame, recipe: str | None, dataset: str | None):
    """The single (dataset, recipe hash) the population is made of, or a DsdError naming them."""
    if recipe is not None:
        res = res[res["recipe"] == recipe]
    if dataset is not None:
        res = res[res["dataset"] == dataset]
    combos = res.groupby(["dataset", "recipe", "recipe_hash"]).size()
    if len(combos) > 1:
        listing = ", ".join(f"--dataset {d} --recipe {r} ({h}: {n} results)"
                            for (d, r, h), n in combos.items())
        raise DsdError(f"results of several datasets/recipes: {listing}; choose one")
    return res, (combos.index[0] if len(combos) else None)


def population_frame(store, sweeps: list[str], *, recipe: str | None = None,
                     dataset: str | None = None) -> pd.DataFrame:
    """One row per model of `sweeps` with its result under one (dataset, recipe); models not
    trained under it yet are rows with status `pending`."""
    res = store.results(sweeps, status=None, synthetic=True)
    if not res.empty:
        res, combo = _pick_recipe(res, recipe, dataset)
    else:
        combo = None
    frames = []
    for name in sweeps:
        info = store.sweep(name)
        models = store.models(name)
        models["space"] = info["space"]
        models["samplers"] = (info["space_def"].get("samplers", "dsd1")  # dsd.samplers
                              if info.get("source", "dsd") == "dsd" else "-")
        models["sweep_seed"] = info["seed"]
        # the space this one refines or varies (its `extends` parent): summaries pair them
        models["extends"] = (info["space_def"].get("extends_chain") or [None])[0]
        models["window"] = json.dumps(info["window"], sort_keys=True)
        mine = res[res["sweep"] == name] if not res.empty else res
        if not mine.empty:
            extra = [c for c in mine.columns if c not in models.columns or c == "model_id"]
            models = models.merge(mine[extra], on="model_id", how="left")
        models["dataset"] = (models["dataset"].fillna(combo[0] if combo else info["dataset"])
                             if "dataset" in models else (combo[0] if combo else info["dataset"]))
        frames.append(models)
    df = pd.concat(frames, ignore_index=True)
    for col, val in (("status", "pending"), ("synthetic", False)):
        df[col] = df[col].fillna(val) if col in df else val
    df["synthetic"] = df["synthetic"].astype(bool)
    if combo:
        for col, val in zip(("recipe", "recipe_hash"), combo[1:]):
            df[col] = df[col].fillna(val)
        rj = res["recipe_json"].iloc[0]
        df["recipe_json"] = df["recipe_json"].fillna(rj)
    for col in ("recipe", "recipe_hash", "recipe_json", "train_seed", "epochs_done", "top1",
                "top5", "train_loss", "seconds", "device", "exec_path", "error", "updated",
                "result_id"):
        if col not in df:
            df[col] = None
    df["epochs_done"] = df["epochs_done"].fillna(0).astype(int)
    df = df.rename(columns={"updated": "finished"})
    df.loc[df["status"].isin(["pending", "running"]), "finished"] = None
    df = _add_curves(store, df)
    if "provenance" in df:  # what produced each number, one column per key (dsd.provenance)
        from .provenance import provenance_frame

        df = pd.concat([df, provenance_frame(df)], axis=1)
    return df[[c for c in FIRST if c in df] + [c for c in df if c not in FIRST]]


def _add_curves(store, df: pd.DataFrame) -> pd.DataFrame:
    ids = [int(r) for r in df["result_id"].dropna()]
    ep = store.epochs(ids) if ids else pd.DataFrame(columns=["result_id", "epoch", *CURVES])
    groups = {rid: g for rid, g in ep.groupby("result_id")}
    df["epoch"] = [groups[int(r)]["epoch"].astype(int).tolist() if pd.notna(r) and int(r) in
                   groups else [] for r in df["result_id"]]
    for c in CURVES:
        df[f"epoch_{c}"] = [groups[int(r)][c].astype(float).tolist() if pd.notna(r) and int(r)
                            in groups else [] for r in df["result_id"]]
    return df.drop(columns=["result_id"])


def read_runs(path: str | Path | None) -> list[dict]:
    """Training runs from a JSON-lines log (one object per `dsd train` chunk); [] if absent."""
    if path is None or not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def write_population(df: pd.DataFrame, path: str | Path, runs: list[dict] | None = None) -> Path:
    """Write the frame as Parquet with the runs in the file metadata (`dsd:runs`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if path.suffix.lower() != ".parquet":
        raise DsdError(f"{path}: a population is written as .parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    table = with_column_docs(pa.Table.from_pandas(df, preserve_index=False))
    meta = dict(table.schema.metadata or {})
    meta[RUNS_KEY] = json.dumps(runs or [], sort_keys=True).encode()
    pq.write_table(table.replace_schema_metadata(meta), path)
    return path


def read_population(path: str | Path) -> tuple[pd.DataFrame, list[dict]]:
    """(one row per model, training runs) from a population Parquet file."""
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.exists():
        raise DsdError(f"no population file at {path} (write one with `dsd export-population`)")
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as e:  # pyarrow's errors for a file that is not Parquet
        raise DsdError(f"{path}: not a Parquet file ({e})") from None
    df = table.to_pandas()
    for col in ("sweep", "index", "status", "top1", "spec"):
        if col not in df:
            raise DsdError(f"{path}: not a dsd population (no {col!r} column)")
    for col in [c for c in df if c == "epoch" or c.startswith("epoch_")]:
        df[col] = [list(v) if v is not None else [] for v in df[col]]
    runs = json.loads((table.schema.metadata or {}).get(RUNS_KEY, b"[]"))
    return df, runs


FIT_COLUMNS = ("fit_w0", "fit_wa", "fit_wm", "e_fit")


def refit_population(path: str | Path, sweeps: list[str] | None = None) -> pd.DataFrame:
    """Recompute the RegNet-rule fits (`analysis.fit`, dsd's current rule) of the models of
    `sweeps` (default: all) in a population file and rewrite the file with them; everything
    else in it is kept. Returns the refitted rows (sweep, index, old and new e_fit)."""
    from .fit import fit_frame

    df, runs = read_population(path)
    sel = df["sweep"].isin(sweeps) if sweeps else pd.Series(True, index=df.index)
    old = df.loc[sel, "e_fit"].copy() if "e_fit" in df else pd.Series(np.nan, index=df.index[sel])
    fits = fit_frame(df[sel])
    for c in FIT_COLUMNS:
        df.loc[sel, c] = fits[c].to_numpy()
    write_population(df, path, runs)
    return pd.DataFrame({"sweep": df.loc[sel, "sweep"], "index": df.loc[sel, "index"],
                         "e_fit_before": old, "e_fit": df.loc[sel, "e_fit"]})


class PopulationStore:
    """The read-only part of `Store` that `analysis.select` uses, backed by a population frame."""

    def __init__(self, df: pd.DataFrame, path: str = "population"):
        self.df, self.path = df, str(path)

    @classmethod
    def open(cls, path: str | Path) -> PopulationStore:
        return cls(read_population(path)[0], str(path))

    def sweeps(self) -> pd.DataFrame:
        first = self.df.drop_duplicates("sweep")
        return pd.DataFrame({"name": first["sweep"].to_numpy(), "space": first["space"].to_numpy(),
                             "dataset": first["dataset"].to_numpy()})

    def sweep(self, name: str) -> dict:
        rows = self.df[self.df["sweep"] == name]
        if rows.empty:
            raise DsdError(f"no sweep {name!r} in {self.path}; sweeps: "
                           f"{', '.join(pd.unique(self.df['sweep']))}")
        r = rows.iloc[0]
        return {"name": name, "space": r["space"], "dataset": r["dataset"],
                "seed": r.get("sweep_seed"), "n": len(rows)}

    def models(self, sweep: str) -> pd.DataFrame:
        return self.df[self.df["sweep"] == sweep]

    def results(self, sweeps=None, *, status: str | None = "done", dataset=None, recipe=None,
                synthetic: bool = False) -> pd.DataFrame:
        df = self.df[self.df["recipe"].notna()]
        if sweeps is not None:
            df = df[df["sweep"].isin(list(sweeps))]
        for col, val in (("status", status), ("dataset", dataset), ("recipe", recipe)):
            if val is not None:
                df = df[df[col] == val]
        if not synthetic:
            df = df[~df["synthetic"].astype(bool)]
        df = df.copy()
        df["top1"] = df["top1"].astype(float)
        for col in ("w0", "wa", "wm", "d", "fit_w0", "fit_wa", "fit_wm", "e_fit"):
            if col in df:
                df[col] = df[col].astype(float)
        return df.reset_index(drop=True)
