"""Models/hour of `dsd train --executor ray` against the number of GPUs (run on a multi-GPU host).

For every count in --gpus (e.g. 1,2,4) a child process sees the first g GPUs
(CUDA_VISIBLE_DEVICES), starts a fresh local Ray cluster on them, and trains the same kind of
sweep through the Ray executor: --models-per-gpu × g CIFAR-regime RegNetX models (117-130 MF,
dsd's sampler, one seed: every run takes the first models of one sample), so every count runs the
same number of waves. It prints a table (GPUs, models, wall, models/hour, speed-up, efficiency,
mean GPU utilisation sampled with nvidia-smi) and writes JSON to --out. --with-local adds the
local executor on the same GPUs (`--gpus 0..g-1`) for the overhead of Ray.

  python scripts/bench_ray.py --data ~/data --gpus 1,2,4 --epochs 3 --models-per-gpu 8
  python scripts/bench_ray.py --gpus 1,2 --dataset synthetic         # no CIFAR-10 at hand
  python scripts/bench_ray.py --gpus 0 --dataset synthetic --models 2 --epochs 1 \
      --window 10MF-20MF --subset 512 --test-subset 256                        # CPU smoke

`--gpus 0` runs a 2-CPU cluster without GPUs (a smoke test of this script, not a measurement).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def gpu_sampler(stop: threading.Event, out: list) -> None:
    """Utilisation (%) of every visible GPU every 2 s, through nvidia-smi (if there is one)."""
    ids = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    while not stop.wait(2.0):
        try:
            text = subprocess.run(
                ["nvidia-smi", f"--id={ids}", "--query-gpu=utilization.gpu",
                 "--format=csv,noheader,nounits"], capture_output=True, text=True,
                timeout=10, check=False).stdout
            out.append([float(v) for v in text.split()])
        except (OSError, subprocess.SubprocessError, ValueError):
            return


def child(cfg: dict) -> dict:
    """One measurement in this process: a fresh Ray cluster on the visible GPUs."""
    import ray

    from dsd import Store
    from dsd.sample import sample
    from dsd.space import load_space
    from dsd.train import train

    g, n = cfg["gpus"], cfg["models"]
    space = load_space("regnetx").with_samplers("dsd1")  # as BENCHMARKS.md measured
    models = sample(space, n, dataset="cifar10", window=cfg["window"], seed=cfg["seed"]).models
    store = Store(Path(tempfile.mkdtemp()) / "bench.sqlite")
    store.add_sweep("bench", space="regnetx", space_def={}, dataset="cifar10", window={},
                    seed=cfg["seed"], draws=n, models=models)
    overrides = {"epochs": cfg["epochs"], "subset": cfg["subset"],
                 "test_subset": cfg["test_subset"]}
    if cfg["executor"] == "ray":
        kw = {"num_gpus": g} if g else {"num_gpus": 0, "num_cpus": 2}
        ray.init(include_dashboard=False, log_to_driver=False, **kw)
        run_kw = {"executor": "ray", "per_gpu": cfg["per_gpu"]}
    else:
        run_kw = {"gpus": list(range(g)) or None, "per_gpu": cfg["per_gpu"]}
    util: list = []
    stop = threading.Event()
    threading.Thread(target=gpu_sampler, args=(stop, util), daemon=True).start()
    t0 = time.time()
    s = train(store, dataset=cfg["dataset"], data_dir=cfg["data"], overrides=overrides, **run_kw)
    wall = time.time() - t0
    stop.set()
    df = store.results(status=None, synthetic=True)
    per_gpu_util = [sum(col) / len(col) for col in zip(*util)] if util else []
    return {**cfg, "wall_s": wall, "models_per_hour": n / wall * 3600, "counts": s.counts,
            "mean_top1": float(df["top1"].mean()) if df["top1"].notna().any() else None,
            "gpu_util": per_gpu_util, "device": df["device"].dropna().iloc[0]
            if df["device"].notna().any() else None,
            "flops_mf": float(df["flops"].mean() / 1e6) if "flops" in df else None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gpus", default="1,2,4", help="GPU counts to measure, e.g. 1,2,4")
    ap.add_argument("--models-per-gpu", type=int, default=8,
                    help="models per GPU in each run (same number of waves for every count)")
    ap.add_argument("--models", type=int, default=None, help="a fixed number of models instead")
    ap.add_argument("--per-gpu", type=int, default=4, help="models at once on each GPU")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--dataset", default="cifar10", choices=["cifar10", "synthetic"])
    ap.add_argument("--data", default=os.environ.get("DSD_DATA"), help="data root (cifar10/)")
    ap.add_argument("--window", default="117MF-130MF")
    ap.add_argument("--subset", type=int, default=None, help="first N training images only")
    ap.add_argument("--test-subset", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--with-local", action="store_true",
                    help="also run the local executor on the same GPUs")
    ap.add_argument("--out", default="bench_ray.json")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(json.loads(a.child))), flush=True)
        return
    rows = []
    for executor in ("ray", "local") if a.with_local else ("ray",):
        for g in [int(x) for x in a.gpus.split(",")]:
            cfg = {"gpus": g, "executor": executor, "models": a.models or a.models_per_gpu *
                   max(g, 1), "per_gpu": a.per_gpu, "epochs": a.epochs, "dataset": a.dataset,
                   "data": a.data, "window": a.window, "seed": a.seed,
                   "subset": a.subset, "test_subset": a.test_subset}
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(map(str, range(g)))}
            print(f"--- {executor}, {g} GPU(s), {cfg['models']} models ...", flush=True)
            p = subprocess.run([sys.executable, __file__, "--child", json.dumps(cfg)], env=env,
                               capture_output=True, text=True, check=False)
            line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
            if p.returncode or line is None:
                print(p.stdout[-3000:], p.stderr[-3000:], sep="\n")
                sys.exit(f"the run with {g} GPU(s) failed (exit {p.returncode})")
            rows.append(json.loads(line[7:]))
    base = {r["executor"]: r for r in rows if r["gpus"] == min(x["gpus"] for x in rows)}
    print(f"\n{'executor':8} {'GPUs':>4} {'models':>6} {'wall s':>8} {'models/h':>9} "
          f"{'speed-up':>8} {'effic.':>6} {'GPU util %':>18} {'top1':>6}  statuses")
    for r in rows:
        b = base[r["executor"]]
        up = r["models_per_hour"] / b["models_per_hour"]
        eff = up / (max(r["gpus"], 1) / max(b["gpus"], 1))
        util = "/".join(f"{u:.0f}" for u in r["gpu_util"]) or "-"
        top1 = f"{r['mean_top1']:.2f}" if r["mean_top1"] is not None else "-"
        print(f"{r['executor']:8} {r['gpus']:>4} {r['models']:>6} {r['wall_s']:>8.1f} "
              f"{r['models_per_hour']:>9.1f} {up:>7.2f}x {eff:>6.2f} {util:>18} {top1:>6}  "
              f"{r['counts']}")
    dev = next((r["device"] for r in rows if r["device"]), "?")
    print(f"\ndevice: {dev}; {a.epochs} epochs, --per-gpu {a.per_gpu}, {a.dataset}, "
          f"window {a.window}; {time.strftime('%Y-%m-%d')}")
    Path(a.out).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
