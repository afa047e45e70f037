"""What the benchmark scripts share: the benchmark's models and stores, one timed `dsd train`
run, GPU busy sampling, the machine's description, JSON output, and the scaling harness of
`bench_local.py` and `bench_ray.py` (models/hour against GPU count, longest-first against the
store's order, one child process per measurement)."""
from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsd import Store  # noqa: E402

WINDOW = "117MF-130MF"   # the CIFAR-regime window of every training benchmark (BENCHMARKS.md)


def dsd1(name: str):
    """A shipped space under the dsd1 sampler convention: the populations BENCHMARKS.md measured
    (and the models picked there by index) were drawn with it."""
    from dsd.space import load_space

    return load_space(name).with_samplers("dsd1")


def cifar_models(n: int, seed: int = 0, window: str = WINDOW, space: str = "regnetx") -> list:
    """The first n models of one sample of `space` (dsd1) in the CIFAR-10 layout in `window`."""
    from dsd.sample import sample

    return sample(dsd1(space), n, dataset="cifar10", window=window, seed=seed).models


def make_store(models, name: str = "bench", dataset: str = "cifar10", seed: int = 0) -> Store:
    """A fresh store in a temporary folder holding `models` as one sweep."""
    store = Store(Path(tempfile.mkdtemp()) / "bench.sqlite")
    store.add_sweep(name, space="regnetx", space_def={}, dataset=dataset, window={}, seed=seed,
                    draws=len(models), models=models)
    return store


def run_sweep(store: Store, data, *, epochs: int, **kw) -> dict:
    """`dsd train` over every model of `store` (keyword arguments of `dsd.train.train`), timed;
    wall time, models/hour, errors and per-model seconds and finish times."""
    import pandas as pd

    from dsd.train import train

    t0 = time.time()
    s = train(store, data_dir=data, overrides={"epochs": epochs, **kw.pop("overrides", {})}, **kw)
    wall = time.time() - t0
    df = store.results(status=None, synthetic=True)
    recipe = json.loads(df["recipe_json"].iloc[0]) if len(df) else {"batch_size": 1}
    per_epoch = (recipe.get("subset") or 50_000) // recipe["batch_size"] * recipe["batch_size"]
    images = len(df) * epochs * per_epoch
    finished = (pd.to_datetime(df["updated"], utc=True)
                - pd.Timestamp(t0, unit="s", tz="UTC")).dt.total_seconds().round(1)
    return {"wall_s": wall, "models": len(df), "epochs": epochs, "counts": s.counts,
            "mps": s.mps, "models_per_hour": len(df) / wall * 3600,
            "img_per_s": images / wall,
            "mean_top1": float(df["top1"].mean()) if df["top1"].notna().any() else None,
            "index": df["index"].tolist(), "top1": df["top1"].tolist(),
            "status": df["status"].tolist(), "exec_path": df["exec_path"].tolist(),
            "seconds": df["seconds"].tolist(), "finished_after_s": finished.tolist(),
            "train_loss": df["train_loss"].tolist(),
            "device": df["device"].dropna().iloc[0] if df["device"].notna().any() else None}


def visible_gpus() -> list[str]:
    """This process's GPUs as nvidia-smi names them (indices or UUIDs), [] without any."""
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if mask is not None:
        return [g.strip() for g in mask.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return out.split()


def require_gpus(counts: list[int], script: str) -> None:
    """Exit with one line when a count asks for more GPUs than this machine shows."""
    have = len(visible_gpus())
    if max(counts) > have:
        sys.exit(f"{script}: --gpus {','.join(map(str, counts))} needs {max(counts)} CUDA "
                 f"GPU(s), this machine shows {have} (nvidia-smi); --gpus 0 runs a CPU smoke "
                 f"test instead")


class GpuBusy:
    """Samples nvidia-smi's utilization.gpu (the share of time a kernel ran) of the visible
    GPUs every `every` seconds in a thread; `shares()`: the mean per GPU, 0..1."""

    def __init__(self, every: float = 1.0):
        self.ids, self.every, self.samples = visible_gpus(), every, []
        self.stop = threading.Event()

    def _run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                out = subprocess.run(
                    ["nvidia-smi", f"--id={','.join(self.ids)}", "--query-gpu=utilization.gpu",
                     "--format=csv,noheader,nounits"], capture_output=True, text=True,
                    timeout=10, check=True).stdout
                self.samples.append([float(v) / 100 for v in out.split()])
            except (OSError, subprocess.SubprocessError, ValueError):
                return

    def __enter__(self) -> "GpuBusy":
        if self.ids:
            threading.Thread(target=self._run, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()

    def shares(self) -> list[float]:
        return [sum(col) / len(col) for col in zip(*self.samples)] if self.samples else []


def machine() -> dict:
    """Host, CPUs, GPUs (name, driver), library versions and the date, for every JSON."""
    out = {"host": socket.gethostname(), "cpus": os.cpu_count(),
           "python": platform.python_version(),
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "gpus": []}
    try:
        text = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version",
                               "--format=csv,noheader"], capture_output=True, text=True,
                              timeout=30, check=True).stdout
        out["gpus"] = [line.strip() for line in text.splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError):
        pass
    for mod in ("torch", "ray"):
        try:
            out[mod] = __import__(mod).__version__
        except ImportError:
            pass
    return out


def dump(path, obj) -> None:
    """Write `obj` as JSON to `path` (parents created)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(obj, indent=1, default=str))


# ---- the scaling harness ---------------------------------------------------------------------
def scaling_args(executor: str, doc: str, argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--gpus", default="1,2,4", help="GPU counts to measure, e.g. 1,2,4,8; "
                    "0: a CPU smoke run")
    ap.add_argument("--models-per-gpu", type=int, default=8,
                    help="models per GPU in each run (the same waves for every count)")
    ap.add_argument("--models", type=int, default=None, help="a fixed number of models instead")
    ap.add_argument("--per-gpu", type=int, default=8, help="models at once on each GPU")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--orders", default="longest,store",
                    help="job orders to measure (dsd train --order), each on the same models")
    ap.add_argument("--dataset", default="cifar10", choices=["cifar10", "synthetic"])
    ap.add_argument("--data", default=os.environ.get("DSD_DATA"), help="data root (cifar10/)")
    ap.add_argument("--window", default=WINDOW)
    ap.add_argument("--subset", type=int, default=None, help="first N training images only")
    ap.add_argument("--test-subset", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=f"bench_{executor}.json",
                    help="JSON file; rows are added to those already in it (one command per "
                         "GPU count fills one table)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def scaling_child(cfg: dict) -> dict:
    """One measurement in this process (its GPUs set by the parent): a fresh store of the
    first cfg['models'] benchmark models, trained by cfg['executor'] in cfg['order']."""
    models = cifar_models(cfg["models"], cfg["seed"], cfg["window"])
    store = make_store(models)
    kw = {"order": cfg["order"], "per_gpu": cfg["per_gpu"], "dataset": cfg["dataset"],
          "overrides": {"subset": cfg["subset"], "test_subset": cfg["test_subset"]}}
    if cfg["executor"] == "ray":
        import ray

        g = cfg["gpus"]
        ray.init(include_dashboard=False, log_to_driver=False,
                 **({"num_gpus": g} if g else {"num_gpus": 0, "num_cpus": 2}))
        kw["executor"] = "ray"
    with GpuBusy() as busy:
        row = run_sweep(store, cfg["data"], epochs=cfg["epochs"], **kw)
    return {**cfg, **row, "gpu_busy": busy.shares()}


def scaling_main(executor: str, doc: str, script: str, argv=None) -> list[dict]:
    """Every (GPU count, order) of the arguments, each in a child process that sees the first g
    GPUs; rows added to --out; the table of every row there of the same setting."""
    a = scaling_args(executor, doc, argv)
    if a.child:
        print("RESULT " + json.dumps(scaling_child(json.loads(a.child))), flush=True)
        return []
    counts = [int(x) for x in a.gpus.split(",")]
    orders = [o.strip() for o in a.orders.split(",") if o.strip()]
    from dsd.train.cost import check_order

    for o in orders:
        check_order(o)
    if max(counts) > 0:
        require_gpus(counts, script)
    gpus = visible_gpus()
    out = Path(a.out)
    data = json.loads(out.read_text()) if out.exists() else {"rows": []}
    data["machine"] = machine()
    for g in counts:
        for order in orders:
            cfg = {"executor": executor, "gpus": g, "order": order,
                   "models": a.models or a.models_per_gpu * max(g, 1), "per_gpu": a.per_gpu,
                   "epochs": a.epochs, "dataset": a.dataset, "data": a.data,
                   "window": a.window, "seed": a.seed, "subset": a.subset,
                   "test_subset": a.test_subset}
            env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(gpus[:g])}
            print(f"--- {executor}, {g} GPU(s), {cfg['models']} models, order {order} ...",
                  flush=True)
            p = subprocess.run([sys.executable, script, "--child", json.dumps(cfg)], env=env,
                               capture_output=True, text=True, check=False)
            line = next((x for x in p.stdout.splitlines() if x.startswith("RESULT ")), None)
            if p.returncode or line is None:
                print(p.stdout[-3000:], p.stderr[-3000:], sep="\n")
                sys.exit(f"{script}: the run with {g} GPU(s), order {order} failed "
                         f"(exit {p.returncode})")
            row = {**json.loads(line[7:]), "machine": data["machine"]}
            data["rows"] = [r for r in data["rows"] if _key(r) != _key(row)] + [row]
            dump(out, data)   # after every run: a killed benchmark keeps what it measured
    print(scaling_table(data["rows"]))
    return data["rows"]


def _key(r: dict) -> tuple:
    return tuple(r[k] for k in ("executor", "gpus", "order", "models", "per_gpu", "epochs",
                                "dataset", "window", "subset"))


def scaling_table(rows: list[dict]) -> str:
    """GPUs × executor × order: models/hour, speed-up and efficiency against the fewest GPUs
    of the same executor, order and setting, GPU busy share, mean error."""
    lines = [f"{'executor':8} {'order':7} {'GPUs':>4} {'models':>6} {'wall s':>7} "
             f"{'models/h':>8} {'speed-up':>8} {'effic.':>6} {'busy %':>6} {'top1 %':>6}"]
    def setting(r):
        return (r["executor"], r["order"], r["per_gpu"], r["epochs"], r["dataset"],
                r["window"], r["subset"])
    for r in sorted(rows, key=lambda r: (setting(r), r["gpus"])):
        base = min((b for b in rows if setting(b) == setting(r)), key=lambda b: b["gpus"])
        up = r["models_per_hour"] / base["models_per_hour"]
        eff = up / (max(r["gpus"], 1) / max(base["gpus"], 1))
        busy = (f"{100 * sum(r['gpu_busy']) / len(r['gpu_busy']):.0f}" if r.get("gpu_busy")
                else "-")
        top1 = f"{r['mean_top1']:.2f}" if r.get("mean_top1") is not None else "-"
        lines.append(f"{r['executor']:8} {r['order']:7} {r['gpus']:>4} {r['models']:>6} "
                     f"{r['wall_s']:>7.1f} {r['models_per_hour']:>8.1f} {up:>7.2f}x "
                     f"{eff:>6.2f} {busy:>6} {top1:>6}")
    return "\n".join(lines)
