"""Retrain a stratified sample of a study's finished models, with their training seeds and recipe,
in a separate store, and compare each new error with the stored one, per space and per device.

Checks that the published population reproduces, and that the memory faults of the graphed
worker processes (BENCHMARKS.md) did not silently change results. The sample is stratified:
`--per-space` models (default 6) from every space, spread evenly over the devices that trained
that space's models (round-robin over devices, random within a device; seeded), so every space
and every device is covered. The copies keep their model index and sweep seed, so each trains
from the same initialisation, data order and recipe; on the CPU the errors match exactly, on a
GPU they differ by run-to-run noise (bf16, atomics; in results/cifar10/recheck.json, 42 models
on one H200: mean +0.007 points, sd 0.52).

  python scripts/recheck_cifar10.py --per-space 6 --max-time 9m     # sample (first call), train
  python scripts/recheck_cifar10.py --store results/cifar10/population.parquet --per-space 6
  python scripts/recheck_cifar10.py --report --out recheck.json     # compare, no training
  python scripts/recheck_cifar10.py --pick results/cifar10/population.parquet   # show the sample
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from dsd import Store  # noqa: E402
from dsd.errors import DsdError  # noqa: E402
from dsd.sample import SampledModel  # noqa: E402
from dsd.spec import ModelSpec  # noqa: E402

SUFFIX = "-recheck"


def stratified_pick(done, per_space: int, seed: int):
    """`per_space` finished models of every sweep, spread evenly over the devices that trained
    them: devices take turns (sorted by name), each turn drawing one more model of that device
    at random, skipping devices with none left. Rows of `done` in sweep order, by index."""
    import pandas as pd

    if per_space < 1:
        raise DsdError(f"--per-space must be >= 1, got {per_space}")
    done = done[(done["status"] == "done") & done["top1"].notna()]
    if done.empty:
        raise DsdError("no finished models to sample")
    rng = np.random.default_rng(seed)
    picked = []
    for sweep in pd.unique(done["sweep"]):
        part = done[done["sweep"] == sweep]
        pools = {d: list(rng.permutation(g.index.to_numpy()))
                 for d, g in sorted(part.groupby(part["device"].fillna("unknown")),
                                    key=lambda kv: str(kv[0]))}
        take = []
        while len(take) < min(per_space, len(part)):
            for pool in pools.values():
                if pool and len(take) < per_space:
                    take.append(pool.pop())
        picked.append(part.loc[take].sort_values("index"))
    return pd.concat(picked)


def open_study(path: str):
    """The study: its SQLite store, or its published population .parquet (read only)."""
    if str(path).lower().endswith(".parquet"):
        from dsd.analysis.population import PopulationStore

        return PopulationStore.open(path)
    return Store(path)


def _space_def(space: str) -> dict:
    from dsd.space import load_space

    try:
        return load_space(space).to_dict()
    except DsdError:
        return {}


def copy_sample(study, recheck: Store, per_space: int, seed: int) -> int:
    """Copy a stratified sample (`stratified_pick`) of the finished models of `study` into
    `recheck` (one sweep per study sweep, same name + SUFFIX, same sweep seed and model
    indices); returns how many were copied."""
    done = study.results(status="done")
    if done.empty:
        raise DsdError(f"no finished models in {study.path}")
    pick = stratified_pick(done, per_space, seed)
    for name, rows in pick.groupby("sweep", sort=False):
        s = study.sweep(name)
        models = study.models(name).set_index("index").loc[rows["index"]]
        space_def = s["space_def"] if "space_def" in s else _space_def(s["space"])
        window = s["window"] if "window" in s else json.loads(models["window"].iloc[0])
        recheck.add_sweep(
            name + SUFFIX, space=s["space"], space_def=space_def, dataset=s["dataset"],
            window=window, seed=int(s["seed"]), draws=len(models),
            models=[SampledModel(int(i), ModelSpec.from_json(m["spec"]), json.loads(m["sampled"]),
                                 int(m["flops"]), int(m["params"]), int(m["acts"]))
                    for i, m in models.iterrows()])
    return len(pick)


def study_recipe(study) -> dict:
    """The one recipe of the study's finished models (its JSON)."""
    recipes = set(study.results(status="done")["recipe_json"])
    if len(recipes) != 1:
        raise DsdError(f"{study.path}: finished models use {len(recipes)} recipes; expected one")
    return json.loads(recipes.pop())


def _diffs(rows: list[dict]) -> dict:
    d = np.array([r["retrained"] - r["stored"] for r in rows if r["status"] == "done"])
    out = {"copies": len(rows), "done": int(len(d))}
    if len(d):
        out.update(mean_diff=float(d.mean()), sd_diff=float(d.std(ddof=1)) if len(d) > 1
                   else 0.0, max_abs_diff=float(np.abs(d).max()),
                   over_1_point=int((np.abs(d) > 1.0).sum()))
    return out


def compare(study, recheck: Store) -> dict:
    """Stored vs retrained top-1 error of every retrained copy; summary statistics overall,
    per space and per device that trained the stored model."""
    new = recheck.results(status=None)
    old = study.results(status="done").set_index(["sweep", "index"])
    rows, spaces = [], {}
    for _, r in new.iterrows():
        o = old.loc[(r["sweep"].removesuffix(SUFFIX), r["index"])]
        if o.name[0] not in spaces:
            spaces[o.name[0]] = study.sweep(o.name[0])["space"]
        if (r["recipe_hash"], r["train_seed"]) != (o["recipe_hash"], o["train_seed"]):
            raise DsdError(f"{r['sweep']} #{r['index']}: trained with another recipe or seed "
                           f"than its original; not comparable")
        rows.append({"sweep": o.name[0], "space": spaces[o.name[0]], "index": int(r["index"]),
                     "status": r["status"], "stored": float(o["top1"]),
                     "retrained": r["top1"], "stored_device": o["device"],
                     "retrained_device": r["device"], "exec_path": r["exec_path"]})
    summary = _diffs(rows)
    summary["statuses"] = {s: sum(r["status"] == s for r in rows) for s in
                           sorted({r["status"] for r in rows})}
    by = {key: {v: _diffs([r for r in rows if r[key] == v])
                for v in sorted({str(r[key]) for r in rows})}
          for key in ("space", "stored_device")}
    return {"summary": summary, "per_space": by["space"], "per_device": by["stored_device"],
            "models": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default=str(REPO / ".data/cifar10/study.sqlite"),
                   help="the study's store, or its population .parquet (read only)")
    p.add_argument("--recheck", default=str(REPO / ".data/cifar10/recheck.sqlite"),
                   help="the store of the retrained copies (created on the first call)")
    p.add_argument("--per-space", type=int, default=6,
                   help="models to retrain per space, spread over devices (first call)")
    p.add_argument("--seed", type=int, default=0, help="seed of the stratified pick")
    p.add_argument("--pick", metavar="POPULATION", help="print the stratified sample of a "
                   "population .parquet and exit (trains nothing)")
    p.add_argument("--data-dir", help="data root holding cifar10/ [$DSD_DATA, ~/.cache/dsd]")
    p.add_argument("--max-time", help="stop training cleanly before this, e.g. 9m")
    p.add_argument("--report", action="store_true", help="compare only, train nothing")
    p.add_argument("--out", help="write the comparison here as JSON")
    a = p.parse_args(argv)
    try:
        if a.pick:
            from dsd.analysis.population import read_population

            pick = stratified_pick(read_population(a.pick)[0], a.per_space, a.seed)
            for (space, device), g in pick.groupby(["space", "device"], sort=False):
                print(f"{space:<9} {device:<28} {len(g)}: "
                      + " ".join(f"#{i}" for i in g["index"]))
            return 0
        study, recheck = open_study(a.store), Store(a.recheck)
        if not recheck.sweep_names():
            print(f"copied {copy_sample(study, recheck, a.per_space, a.seed)} models into "
                  f"{a.recheck}")
        if not a.report:
            from dsd.train import parse_duration, train

            r = study_recipe(study)
            s = train(recheck, recipe=r["name"], data_dir=a.data_dir,
                      max_time=parse_duration(a.max_time),
                      overrides={k: v for k, v in r.items() if k != "name"})
            print(f"trained: {s.counts}; pending {s.pending}")
        out = compare(study, recheck)
    except DsdError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for m in out["models"]:
        print(f"{m['sweep']} #{m['index']:<3} stored {m['stored']:6.2f}  retrained "
              f"{m['retrained'] if m['retrained'] is None else round(m['retrained'], 2)}  "
              f"{m['status']} ({m['exec_path']})")
    for key in ("per_space", "per_device"):
        for name, d in out[key].items():
            print(f"{name:<28} {d['done']:>2} done" + (
                f", mean diff {d['mean_diff']:+.2f}, sd {d['sd_diff']:.2f}, max |diff| "
                f"{d['max_abs_diff']:.2f}, > 1 point {d['over_1_point']}" if d["done"] else ""))
    print(json.dumps(out["summary"]))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
