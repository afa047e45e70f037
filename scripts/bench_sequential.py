#!/usr/bin/env python3
"""Benchmark the sequential comparisons (`dsd.analysis.sequential`, issue 28) by replaying a
trained population: how many models would each pair of the published chain have needed?

For each consecutive pair (anynetxa→b, b→c, c→d, d→e, e→regnetx, regnetx→regnety; first
sweep of each space) the script replays `--orders` random orders: each space's models are
shuffled (a failed or diverged model keeps its slot as NaN: it costs a look's slot, not a
datum), both spaces interleaved (a_0, b_0, a_1, b_1, …), max_n = the sweep size. Per design it
reports the finished models used at the decision (mean with a 95% interval over orders, p10,
p50, p90) against the fixed n (all finished models of both spaces), the % saved, the decision
distribution, and the agreement with the fixed-n Mann–Whitney decision at α = 0.05 (dsd
compare's rank test on all finished models). Type I error: `--perms` relabellings of the
pooled pair (random split into two sweeps of the original sizes, random order), replayed; the
rejection rate with a Clopper–Pearson 95% interval.

Designs (fixed before looking at the data, two-sided α = 0.05 per pair):
  group       Lan–DeMets O'Brien–Fleming spending, 10 planned looks (every 10 models per space)
  group+fut   the same with the non-binding futility stop (conditional power < 0.10, t ≥ 0.5)
  anytime     betting on sequential ranks, decision checked after every pair
  anytime/10  the same test, checked only at the 10 looks of `group`

  python scripts/bench_sequential.py --orders 200 --perms 2000 --seed 0 --json OUT.json
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from itertools import pairwise
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsd.analysis import sequential as sq  # noqa: E402
from dsd.analysis import stats  # noqa: E402
from dsd.analysis.population import read_population  # noqa: E402

CHAIN = ("anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx", "regnety")
ALPHA = 0.05
TARGETS = {("anynetxd", "anynetxe"): 35.0, ("anynetxe", "regnetx"): 70.0}  # % saved (issue 28)


def designs(max_n: int) -> dict[str, sq.SequentialDesign]:
    return {
        "group": sq.SequentialDesign("group", ALPHA, max_n, 10),
        "group+fut": sq.SequentialDesign("group", ALPHA, max_n, 10, futility=True),
        "anytime": sq.SequentialDesign("anytime", ALPHA, max_n, max_n),
        "anytime/10": sq.SequentialDesign("anytime", ALPHA, max_n, 10),
    }


def space_errors(df, space: str) -> np.ndarray:
    """Errors of the first sweep of `space` in index order; NaN for a model not finished."""
    sweeps = df.loc[df["space"] == space, "sweep"]
    if sweeps.empty:
        raise SystemExit(f"no sweep of space {space} in the population")
    part = df[df["sweep"] == sweeps.iloc[0]].sort_values("index")
    ok = (part["status"] == "done") & part["top1"].notna()
    return np.where(ok, part["top1"].astype(float), np.nan)


def cp(k: int, n: int) -> list[float]:
    """Clopper–Pearson 95% interval of k/n."""
    ci = binomtest(int(k), int(n)).proportion_ci(0.95, method="exact")
    return [float(ci.low), float(ci.high)]


def fixed_decision(a: np.ndarray, b: np.ndarray) -> tuple[int, float, float]:
    """The fixed-n decision on all finished models: (code, P(A < B), p), as dsd compare's rank
    test at α = 0.05 two-sided."""
    r = stats.rank_test(a[np.isfinite(a)], b[np.isfinite(b)])
    code = sq.CONTINUE if r.p >= ALPHA else (sq.A_BETTER if r.prob > 0.5 else sq.B_BETTER)
    return code, r.prob, r.p


def bench_pair(a, b, *, orders: int, perms: int, rng: np.random.Generator) -> dict:
    max_n = min(len(a), len(b))
    fixed = int(np.isfinite(a).sum() + np.isfinite(b).sum())
    fcode, fprob, fp = fixed_decision(a, b)
    A = np.stack([rng.permutation(a)[:max_n] for _ in range(orders)])
    B = np.stack([rng.permutation(b)[:max_n] for _ in range(orders)])
    pooled = np.concatenate([a, b])
    P = np.stack([rng.permutation(pooled) for _ in range(perms)])
    PA, PB = P[:, :len(a)][:, :max_n], P[:, len(a):][:, :max_n]
    out = {"n_a": len(a), "n_b": len(b), "max_n": max_n, "fixed_n": fixed,
           "fixed": {"decision": sq.DECISIONS[fcode].replace("continue", "no difference"),
                     "p_prob": fprob, "p": fp}, "designs": {}}
    for name, d in designs(max_n).items():
        t0 = time.perf_counter()
        r = sq.replay(A, B, d)
        used = (r.n_a + r.n_b).astype(float)
        mean, half = used.mean(), 1.96 * used.std(ddof=1) / np.sqrt(orders)
        decided = np.isin(r.decision, [sq.A_BETTER, sq.B_BETTER])
        agree = np.where(fcode == sq.CONTINUE, ~decided, r.decision == fcode)
        null = sq.replay(PA, PB, d)
        rej = int(np.isin(null.decision, [sq.A_BETTER, sq.B_BETTER]).sum())
        out["designs"][name] = {
            "design": {"method": d.method, "looks": d.looks, "futility": d.futility},
            "used_mean": mean, "used_ci": [mean - half, mean + half],
            "used_p10_p50_p90": np.percentile(used, [10, 50, 90]).tolist(),
            "saved_pct": 100 * (1 - mean / fixed),
            "saved_ci": [100 * (1 - (mean + half) / fixed), 100 * (1 - (mean - half) / fixed)],
            "decisions_pct": {sq.DECISIONS[c]: 100 * float(np.mean(r.decision == c))
                              for c in (sq.A_BETTER, sq.B_BETTER, sq.MAX_N, sq.FUTILE,
                                        sq.CONTINUE)},
            "stop_look_pct": {int(k): 100 * float(np.mean(r.look == k))
                              for k in np.unique(r.look)},
            "agree_pct": 100 * float(agree.mean()),
            "agree_ci": [100 * x for x in cp(int(agree.sum()), orders)],
            "type1": rej / perms, "type1_ci": cp(rej, perms), "type1_k": rej,
            "seconds": time.perf_counter() - t0,
        }
    return out


def short(pair: str) -> str:
    """anynetxd→anynetxe → D→E, anynetxe→regnetx → E→RegNetX (80-column tables)."""
    name = {s: s[-1].upper() if s.startswith("anynetx") else "RegNet" + s[-1].upper()
            for s in CHAIN}
    return "→".join(name.get(s, s) for s in pair.split("→"))


def fmt_tables(res: dict) -> str:
    """The two tables of the benchmark, readable in 80 columns."""
    lines = ["Finished models used at the decision (both spaces), over random orders;",
             "saved = 1 − mean/fixed, 95% interval from the orders' Monte-Carlo error",
             f"{'pair':<16}{'design':<11}{'fixed':>5}{'mean':>7}  {'p10/p50/p90':<13}"
             f"{'saved %':>7}  {'[95% CI]':<13}", "-" * 74]
    for pair, p in res["pairs"].items():
        for name, d in p["designs"].items():
            q = "/".join(f"{x:.0f}" for x in d["used_p10_p50_p90"])
            lo, hi = d["saved_ci"]
            lines.append(f"{short(pair):<16}{name:<11}{p['fixed_n']:>5}{d['used_mean']:>7.1f}  "
                         f"{q:<13}{d['saved_pct']:>7.1f}  [{lo:.1f}, {hi:.1f}]")
    lines += ["", "Decisions (% of orders: A better, B better, max n, futile), agreement with",
              "the fixed-n test [Clopper–Pearson 95%], Type I error under permuted labels",
              f"{'pair':<16}{'design':<11}{'A':>4}{'B':>4}{'max':>4}{'fut':>4}  "
              f"{'agree %':<17}{'Type I':<20}", "-" * 80]
    for pair, p in res["pairs"].items():
        for name, d in p["designs"].items():
            dp = d["decisions_pct"]
            alo, ahi = d["agree_ci"]
            tlo, thi = d["type1_ci"]
            agree = f"{d['agree_pct']:.1f} [{alo:.0f},{ahi:.0f}]"
            lines.append(f"{short(pair):<16}{name:<11}{dp['A better']:>4.0f}"
                         f"{dp['B better']:>4.0f}{dp['max n']:>4.0f}{dp['futile']:>4.0f}  "
                         f"{agree:<17}"
                         f"{d['type1']:.3f} [{tlo:.3f},{thi:.3f}]")
    lines += ["", "Fixed-n Mann–Whitney on all finished models (α = 0.05, two-sided):"]
    for pair, p in res["pairs"].items():
        f = p["fixed"]
        lines.append(f"  {short(pair):<16}P(A<B) = {f['p_prob']:.3f}, p = {f['p']:.2g}: "
                     f"{f['decision']}")
    return "\n".join(lines)


def targets(res: dict) -> list[str]:
    """Issue 28's targets per design: % saved (point and interval) and Type I (point and
    Clopper–Pearson interval) against α."""
    out = []
    for (x, y), goal in TARGETS.items():
        p = res["pairs"][f"{x}→{y}"]
        for name, d in p["designs"].items():
            slo, shi = d["saved_ci"]
            tlo, thi = d["type1_ci"]
            saved = ("met" if slo >= goal else "met (point only)" if d["saved_pct"] >= goal
                     else "MISSED")
            t1 = ("below α" if thi < ALPHA else "consistent with ≤ α" if tlo <= ALPHA
                  else "ABOVE α")
            out.append(f"{short(x + '→' + y)} {name}: saved {d['saved_pct']:.2f}% "
                       f"[{slo:.2f}, {shi:.2f}] (≥ {goal:.0f}%): {saved}; "
                       f"Type I {d['type1']:.3f} [{tlo:.3f}, {thi:.3f}]: {t1}")
    return out


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", default=str(ROOT / "results/cifar10/population.parquet"))
    ap.add_argument("--orders", type=int, default=200, help="random orders per pair (≥ 200)")
    ap.add_argument("--perms", type=int, default=2000, help="label permutations per pair")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", metavar="OUT", help="write every number as JSON here")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    df, _ = read_population(args.population)
    rng = np.random.default_rng(args.seed)
    res = {"command": "python scripts/bench_sequential.py " + " ".join(sys.argv[1:]
                                                                        if argv is None else argv),
           "population": args.population, "orders": args.orders, "perms": args.perms,
           "seed": args.seed, "alpha": ALPHA, "machine": {"cpu": cpu_name(),
                                                          "python": platform.python_version()},
           "date": time.strftime("%Y-%m-%d"), "pairs": {}}
    for x, y in pairwise(CHAIN):
        res["pairs"][f"{x}→{y}"] = bench_pair(space_errors(df, x), space_errors(df, y),
                                              orders=args.orders, perms=args.perms, rng=rng)
    res["targets"] = targets(res)
    res["seconds"] = time.perf_counter() - t0
    print(fmt_tables(res))
    print("\nTargets (issue 28):")
    for t in res["targets"]:
        head, tail = t.split("; ")
        print(f"  {head}\n      {tail}")
    print(f"\n{res['seconds']:.0f} s on {res['machine']['cpu']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
