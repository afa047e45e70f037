"""The cost estimate behind `dsd train --order longest`, checked on a measured population, and
the wall time longest-first should save, predicted by list scheduling (no GPU needed).

  python scripts/cost_model.py                       # results/cifar10/population.parquet
  python scripts/cost_model.py --population P.parquet --models 16 --slots 8 --out cost.json

Per device type of the population (each model's measured `seconds`, 8 at once per GPU in the
study): Spearman's rank correlation with measured seconds of dsd's estimate (`cost.STUDY`), of
flops alone, and of the estimate refitted on that device (in sample, and 5-fold cross-validated).
Then the simulation: draw --models finished models at random (their order in the draw is the
store's order), schedule them on --slots slots in that order and longest-first (by the estimate;
and, for the bound, by their measured seconds), each taking its measured seconds on its slot,
the next job to the first slot that frees; the gain is 1 − wall(longest) / wall(store). A
prediction: a real GPU runs the models left in a tail faster than 8 at once, which this model
ignores, so it likely overstates the gain; the one-GPU measurement (`bench_local.py order`)
tests it.
"""
from __future__ import annotations

import argparse
import heapq
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsd.train import cost  # noqa: E402

POPULATION = ROOT / "results" / "cifar10" / "population.parquet"


#: img/s of the 8 benchmark models (regnetx, 117-130 MF, seed 0), each alone in one process,
#: graphed bf16 on an H100 (BENCHMARKS.md, fourth session, "Each compare model alone")
ALONE_IMG_PER_S = [27_680, 27_944, 10_757, 14_010, 23_381, 7_456, 26_520, 15_978]


def alone_check() -> dict:
    """The estimate against the benchmark models' measured step times alone: a check on
    models and a setting (one model per process, no neighbours) the fit never saw."""
    from benchlib import cifar_models

    from dsd.train import RECIPES

    nds = RECIPES["nds"].to_dict()
    est = [cost.spec_seconds(m.spec, "cifar10", nds) for m in cifar_models(8, 0)]
    return {"models": 8, "estimate": spearman(est, [1 / r for r in ALONE_IMG_PER_S])}


def makespan(seconds, slots: int) -> float:
    """Wall time of jobs started in the given order on `slots` slots (list scheduling)."""
    free = [0.0] * slots
    for s in seconds:
        heapq.heappush(free, heapq.heappop(free) + s)
    return max(free)


def spearman(a, b) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def lockstep_share(g) -> float:
    """Share of models that finished within 1.5 s of another with seconds within 3 %: pairs
    stepped in turn in one worker (before per-model pacing), so their seconds are the pair's."""
    g = g.assign(t=pd.to_datetime(g["finished"])).sort_values("t")
    near = (g["t"].diff().dt.total_seconds() < 1.5) & (
        g["seconds"].diff().abs() / g["seconds"] < 0.03)
    return float((near | near.shift(-1, fill_value=False)).mean())


def ranks(df, folds: int = 5, seed: int = 0) -> dict:
    """Per device: n, and the rank correlations of the estimates with measured seconds."""
    out = {}
    for device, g in df.groupby("device"):
        refit = cost.fit(g)
        pred = np.empty(len(g))
        for part in np.array_split(np.random.default_rng(seed).permutation(len(g)), folds):
            train = np.setdiff1d(np.arange(len(g)), part)
            pred[part] = cost.estimate(g.iloc[part], cost.fit(g.iloc[train]))
        out[device] = {"models": len(g),
                       "estimate": spearman(cost.estimate(g), g["seconds"]),
                       "flops": spearman(g["flops"], g["seconds"]),
                       "refit": spearman(cost.estimate(g, refit), g["seconds"]),
                       "refit_cv": spearman(pred, g["seconds"]),
                       "refit_model": refit.__dict__, "lockstep_share": lockstep_share(g)}
    return out


def simulate(seconds, estimate, *, models: int, slots: int, draws: int, seed: int) -> dict:
    """Wall time of random `models`-model sweeps, store order vs longest-first (see above)."""
    rng = np.random.default_rng(seed)
    seconds, estimate = np.asarray(seconds, float), np.asarray(estimate, float)
    walls = {"store": [], "longest": [], "oracle": []}
    for _ in range(draws):
        pick = rng.choice(len(seconds), size=models, replace=False)
        t, e = seconds[pick], estimate[pick]
        walls["store"].append(makespan(t, slots))
        walls["longest"].append(makespan(t[np.argsort(-e, kind="stable")], slots))
        walls["oracle"].append(makespan(np.sort(t)[::-1], slots))
    w = {k: np.asarray(v) for k, v in walls.items()}
    gain = 1 - w["longest"] / w["store"]
    return {"models": models, "slots": slots, "draws": draws,
            "wall_store_mean": float(w["store"].mean()),
            "wall_longest_mean": float(w["longest"].mean()),
            "wall_oracle_mean": float(w["oracle"].mean()),
            "gain_mean": float(gain.mean()), "gain_median": float(np.median(gain)),
            "gain_p05": float(np.percentile(gain, 5)), "gain_p95": float(np.percentile(gain, 95)),
            "gain_oracle_mean": float((1 - w["oracle"] / w["store"]).mean()),
            "longest_worse_share": float((gain < 0).mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", default=str(POPULATION))
    ap.add_argument("--models", type=int, default=16)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--draws", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the numbers as JSON here")
    a = ap.parse_args()
    df = pd.read_parquet(a.population)
    df = df[(df["status"] == "done") & df["seconds"].notna()]
    out = {"population": str(a.population), "model": cost.STUDY.__dict__, "devices": ranks(df)}
    print(f"estimate = epochs·[images·({cost.STUDY.per_flop:.3g} s·flops + "
          f"{cost.STUDY.per_act:.3g} s·acts) + steps·{cost.STUDY.per_block:.3g} s·depth]\n")
    print("Spearman's rho with measured seconds: of the estimate, flops, a refit on the device "
          "(in sample, 5-fold); share of models timed in lockstep pairs")
    print(f"{'device':28} {'n':>4} {'est.':>6} {'flops':>6} {'refit':>6} {'cv':>6} "
          f"{'paired':>6}")
    for dev, r in out["devices"].items():
        print(f"{dev[:28]:28} {r['models']:>4} {r['estimate']:>6.3f} {r['flops']:>6.3f} "
              f"{r['refit']:>6.3f} {r['refit_cv']:>6.3f} {r['lockstep_share']:>6.2f}")
    out["alone"] = alone_check()
    print(f"the 8 benchmark models alone (H100 step rates): rho {out['alone']['estimate']:.3f}")
    print(f"\nsimulated: {a.models} random models on {a.slots} slots, {a.draws} draws "
          f"(list scheduling on measured seconds; a prediction)")
    out["simulation"] = {}
    for dev, g in df.groupby("device"):
        sim = simulate(g["seconds"], cost.estimate(g), models=a.models, slots=a.slots,
                       draws=a.draws, seed=a.seed)
        out["simulation"][dev] = sim
        print(f"{dev[:28]:28} wall store {sim['wall_store_mean']:6.1f} s, longest-first "
              f"{sim['wall_longest_mean']:6.1f} s: gain {100 * sim['gain_mean']:.1f} % "
              f"(median {100 * sim['gain_median']:.1f}, 5-95 % {100 * sim['gain_p05']:.1f} to "
              f"{100 * sim['gain_p95']:.1f}; exact order {100 * sim['gain_oracle_mean']:.1f}); "
              f"worse in {100 * sim['longest_worse_share']:.1f} %")
    if a.out:
        Path(a.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
