"""Retrain a random sample of a study's finished models, with their training seeds and recipe, in
a separate store, and compare each new error with the stored one.

Checks that the published population reproduces, and that the memory faults of the graphed
worker processes (BENCHMARKS.md) did not silently change results. The copies keep their model
index and sweep seed, so each trains from the same initialisation, data order and recipe; on the
CPU the errors match exactly, on a GPU they differ by run-to-run noise only (bf16, atomics).

  python scripts/recheck_cifar10.py --n 32 --max-time 9m      # sample (first call), train
  python scripts/recheck_cifar10.py --report                  # compare, no training
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


def copy_sample(study: Store, recheck: Store, n: int, seed: int) -> int:
    """Copy n random finished models of `study` into `recheck` (one sweep per study sweep, same
    name + SUFFIX, same sweep seed and model indices); returns how many were copied."""
    done = study.results(status="done")
    if done.empty:
        raise DsdError(f"no finished models in {study.path}")
    rng = np.random.default_rng(seed)
    pick = done.iloc[np.sort(rng.choice(len(done), size=min(n, len(done)), replace=False))]
    for name, rows in pick.groupby("sweep", sort=False):
        s = study.sweep(name)
        models = study.models(name).set_index("index").loc[rows["index"]]
        recheck.add_sweep(
            name + SUFFIX, space=s["space"], space_def=s["space_def"], dataset=s["dataset"],
            window=s["window"], seed=s["seed"], draws=len(models),
            models=[SampledModel(int(i), ModelSpec.from_json(m["spec"]), json.loads(m["sampled"]),
                                 int(m["flops"]), int(m["params"]), int(m["acts"]))
                    for i, m in models.iterrows()])
    return len(pick)


def study_recipe(study: Store) -> dict:
    """The one recipe of the study's finished models (its JSON)."""
    recipes = set(study.results(status="done")["recipe_json"])
    if len(recipes) != 1:
        raise DsdError(f"{study.path}: finished models use {len(recipes)} recipes; expected one")
    return json.loads(recipes.pop())


def compare(study: Store, recheck: Store) -> dict:
    """Stored vs retrained top-1 error of every retrained copy, and summary statistics."""
    new = recheck.results(status=None)
    old = study.results(status="done").set_index(["sweep", "index"])
    rows = []
    for _, r in new.iterrows():
        o = old.loc[(r["sweep"].removesuffix(SUFFIX), r["index"])]
        if (r["recipe_hash"], r["train_seed"]) != (o["recipe_hash"], o["train_seed"]):
            raise DsdError(f"{r['sweep']} #{r['index']}: trained with another recipe or seed "
                           f"than its original; not comparable")
        rows.append({"sweep": o.name[0], "index": int(r["index"]), "status": r["status"],
                     "stored": float(o["top1"]), "retrained": r["top1"],
                     "exec_path": r["exec_path"]})
    d = np.array([r["retrained"] - r["stored"] for r in rows if r["status"] == "done"])
    summary = {"copies": len(rows), "done": int(len(d)),
               "statuses": {s: sum(r["status"] == s for r in rows) for s in
                            sorted({r["status"] for r in rows})}}
    if len(d):
        summary.update(mean_diff=float(d.mean()), sd_diff=float(d.std(ddof=1)) if len(d) > 1
                       else 0.0, max_abs_diff=float(np.abs(d).max()),
                       over_1_point=int((np.abs(d) > 1.0).sum()))
    return {"summary": summary, "models": rows}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", default=str(REPO / ".data/cifar10/study.sqlite"),
                   help="the study's store (read only)")
    p.add_argument("--recheck", default=str(REPO / ".data/cifar10/recheck.sqlite"),
                   help="the store of the retrained copies (created on the first call)")
    p.add_argument("--n", type=int, default=32, help="models to retrain (first call)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random pick")
    p.add_argument("--data-dir", help="data root holding cifar10/ [$DSD_DATA, ~/.cache/dsd]")
    p.add_argument("--max-time", help="stop training cleanly before this, e.g. 9m")
    p.add_argument("--report", action="store_true", help="compare only, train nothing")
    p.add_argument("--out", help="write the comparison here as JSON")
    a = p.parse_args(argv)
    try:
        study, recheck = Store(a.store), Store(a.recheck)
        if not recheck.sweep_names():
            print(f"copied {copy_sample(study, recheck, a.n, a.seed)} models into {a.recheck}")
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
    print(json.dumps(out["summary"]))
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
