"""Reproduce the DDS design-space refinement on CIFAR-10 (issue 6) and publish the population.

Samples AnyNetXA…E, RegNetX and RegNetY (n = 100 each, seed 0, sampler convention `dsd1`,
with which the published population was drawn; see dsd.samplers) in the spaces' CIFAR-10 window
[112.5MF, 125MF]: RegNetX-400MF costs 397.7MF on ImageNet and 122.9MF in the CIFAR layout (stem
and first stage at stride 1), so the paper's 400MF regime [0.9F, F] maps to F = 125MF (see
spaces/anynetxa.yaml). Then trains every pending model with `dsd train` (recipe nds, 10 epochs,
every GPU found) and writes results/cifar10/: population.parquet, SUMMARY.md, report.html, PNGs.

Resumable: sampling is idempotent (same names and settings), and `--max-time 9m` stops training
cleanly; run the script again to continue (add --whole-models where the checkpoints beside the
store do not survive until the next chunk). Every output is written by a dsd command (printed as
it runs, and listed in OUT/commands.sh). Example: `python scripts/reproduce_cifar10.py
--store .data/cifar10/study.sqlite --max-time 9m --data-dir /data`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # dsd importable without installing it (GPU machines)
SPACES = ("anynetxa", "anynetxb", "anynetxc", "anynetxd", "anynetxe", "regnetx", "regnety")
# parameter figures: the spaces where the parameter is one value per model (DDS Fig. 5, 11-12)
FIGURES = {"b": SPACES[1:], "g": SPACES[2:], "regnet": ("regnetx", "regnety")}


def log(msg: str) -> None:
    print(f"[reproduce] {msg}", flush=True)


def dsd(*args, check: bool = True, cwd: Path | None = None) -> int:
    """Run one dsd command with this interpreter (in `cwd`), echoing it."""
    log(("" if cwd is None else f"(in {cwd}) ") + "dsd " + " ".join(shlex.quote(str(a))
                                                                     for a in args))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])}  # dsd, installed or not
    t0 = time.time()
    rc = subprocess.run([sys.executable, "-m", "dsd", *map(str, args)], cwd=cwd, env=env,
                        check=False).returncode
    log(f"dsd {args[0]}: exit {rc}, {time.time() - t0:.1f} s")
    if check and rc != 0:
        raise SystemExit(f"[reproduce] dsd {args[0]} failed (exit {rc})")
    return rc


def gpus_visible(selected: str | None) -> tuple[int, list[str]]:
    """(count, names) of the GPUs `dsd train` will use, from nvidia-smi (no torch here)."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=60, check=False).stdout
    except (OSError, subprocess.TimeoutExpired):
        return 0, []
    names = [n.strip() for n in out.splitlines() if n.strip()]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        names = [names[int(i)] for i in visible.split(",") if i.strip().isdigit()
                 and int(i) < len(names)]
    if selected:
        names = [names[int(i)] for i in selected.split(",") if int(i) < len(names)]
    return len(names), sorted(set(names)) if names else []


def sweep_name(space: str, seed: int) -> str:
    return f"{space}-cifar10-s{seed}"


def recipe_json(a) -> dict:
    from dsd.train.recipes import get_recipe  # torch-free

    return get_recipe("nds", "cifar10").override(
        epochs=a.epochs, subset=a.subset, test_subset=a.test_subset).to_dict()


def pending(a, sweeps: list[str]) -> int:
    from dsd.store import Store

    store = Store(a.store)
    ds = None if a.dataset == "cifar10" else a.dataset
    n = len(store.training_queue(sweeps, dataset=ds, recipe_json=recipe_json(a)))
    store.close()
    return n


def checkpoint_store(path: Path) -> None:
    """Fold the WAL into the store file, so copying the one .sqlite file carries everything."""
    if path.exists():
        conn = sqlite3.connect(path)
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()


def train(a, sweeps: list[str]) -> None:
    todo = pending(a, sweeps)
    if not todo and not a.retry_failed:
        log("training: nothing pending")
        return
    args = ["train", *sweeps, "--recipe", "nds", "--epochs", a.epochs, "--store", a.store]
    for flag, val in (("--dataset", a.dataset), ("--data-dir", a.data_dir),
                      ("--max-time", a.max_time), ("--gpus", a.gpus), ("--per-gpu", a.per_gpu),
                      ("--procs-per-gpu", a.procs_per_gpu),
                      ("--subset", a.subset), ("--test-subset", a.test_subset),
                      ("--executor", a.executor)):
        if val is not None:
            args += [flag, val]
    args += ["--whole-models"] if a.whole_models else []
    args += ["--retry-failed"] if a.retry_failed else []
    args += [] if a.mps is None else ["--mps" if a.mps else "--no-mps"]
    ngpu, names = gpus_visible(a.gpus)
    log(f"training: {todo} models pending, {ngpu} GPU(s) {', '.join(names)}")
    t0, started = time.time(), dt.datetime.now(dt.UTC)
    try:
        rc = dsd(*args, check=False)
    finally:
        run = {"started": started.isoformat(timespec="seconds"),
               "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "seconds": round(time.time() - t0, 1), "gpus": ngpu, "gpu_names": names,
               "per_gpu": a.per_gpu, "procs_per_gpu": a.procs_per_gpu, "mps": a.mps,
               "host": socket.gethostname(), "dataset": a.dataset,
               "max_time": a.max_time, "pending_before": todo}
        run["pending_after"] = pending(a, sweeps)
        with open(a.runs, "a") as f:
            f.write(json.dumps(run, sort_keys=True) + "\n")
        checkpoint_store(Path(a.store))
    if rc not in (0, 130):
        raise SystemExit(f"[reproduce] dsd train failed (exit {rc})")
    log(f"training: {run['pending_after']} models still pending"
        + (" (run this script again to continue)" if run["pending_after"] else ""))


def write_outputs(a, sweeps: list[str]) -> None:
    """Population → SUMMARY.md, report and figures, each by one dsd command."""
    import pandas as pd

    from dsd.analysis import stats
    from dsd.errors import DsdError

    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    pop = "population.parquet"  # commands run inside `out`, with these relative names
    cmds: list[list] = []

    def run(*args, record: bool = True):
        dsd(*args, cwd=out)
        if record:
            cmds.append([str(x) for x in args])

    store = Path(a.store).resolve()
    run("fit", *sweeps, "--store", store, record=False)
    runs = ["--runs", Path(a.runs).resolve()] if Path(a.runs).exists() else []
    run("export-population", *sweeps, "--store", store, "--recipe", "nds", "--dataset",
        a.dataset, *runs, "-o", pop, record=False)
    notes = ["--notes", "NOTES.md"] if (out / "NOTES.md").exists() else []
    run("summarize", pop, "-o", "SUMMARY.md", *notes)
    df = pd.read_parquet(out / pop, columns=["sweep", "space", "status", "flops"])
    ok = df[df["status"] == "done"]
    ready = [s for s in sweeps if (ok["sweep"] == s).sum() >= 2]
    if not ready:
        log("figures: no sweep has 2 finished models yet; wrote the population and SUMMARY.md")
    else:
        syn = ["--synthetic"] if a.dataset == "synthetic" else []
        src = ["--population", pop, *syn]
        run("report", *ready, *src, "-o", "report.html")
        run("edf", *ready, *src, "-o", "edf.png")
        groups = [ok.loc[ok["sweep"] == s, "flops"].to_numpy(float) for s in ready]
        try:
            lo, hi = stats.common_range(*groups)
            bins = stats.max_bins(groups, lo, hi, 20)
        except DsdError:  # the flops ranges do not overlap (tiny partial populations)
            bins = 0
        if bins >= 2:
            run("edf", *ready, *src, "--normalize", "flops", "--bins", bins, "-o",
                "edf_flops.png")
        else:
            log("figures: too few models for a flops-normalized EDF (a flops bin is empty)")
        run("search-efficiency", *ready, *src, "-o", "search_efficiency.png")
        space_of = dict(zip(df["sweep"], df["space"]))
        for fig, spaces in FIGURES.items():
            chosen = [s for s in ready if space_of[s] in spaces]
            params = ["wm", "d"] if fig == "regnet" else [fig]
            if chosen:
                run("analyze", *chosen, *src, *[x for p in params for x in ("--param", p)],
                    "-o", f"params_{fig}.png")
    (out / "commands.sh").write_text(
        "# The dsd commands that wrote this folder from population.parquet, run inside it\n"
        "# (by scripts/reproduce_cifar10.py). The Parquet file comes from the study's store:\n"
        f"# dsd fit {' '.join(sweeps)} --store STORE\n"
        f"# dsd export-population {' '.join(sweeps)} --store STORE --recipe nds "
        f"--dataset {a.dataset} --runs RUNS -o population.parquet\n"
        'cd "$(dirname "$0")"\n'
        + "".join("dsd " + " ".join(shlex.quote(x) for x in c) + "\n" for c in cmds))
    log(f"outputs in {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=100, help="models per space (default 100)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--spaces", nargs="+", default=list(SPACES), help="spaces to sample")
    p.add_argument("--flops", help="budget F instead of the spaces' CIFAR-10 window (tests)")
    p.add_argument("--store", default=str(REPO / ".data/cifar10/study.sqlite"),
                   help="the study's store [default: .data/cifar10/study.sqlite, git-ignored]")
    p.add_argument("--runs", help="JSON-lines log of training runs [default: STORE.runs.jsonl]")
    p.add_argument("--out", default=str(REPO / "results/cifar10"), help="output folder")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-time", help="stop training cleanly before this, e.g. 9m")
    p.add_argument("--whole-models", action="store_true",
                   help="with --max-time: start only models that should finish in time (for "
                        "machines whose checkpoints are lost after each chunk)")
    p.add_argument("--retry-failed", action="store_true",
                   help="dsd train --retry-failed: train failed models again")
    p.add_argument("--gpus", help="GPU indices, e.g. 0,1 [default: every GPU found]")
    p.add_argument("--per-gpu", type=int, help="models at once per GPU [dsd train's default]")
    p.add_argument("--procs-per-gpu", type=int, help="worker processes per GPU [dsd's default]")
    p.add_argument("--mps", action=argparse.BooleanOptionalAction,
                   help="dsd train --mps/--no-mps [default: dsd's, MPS where available]")
    p.add_argument("--executor", help="dsd train --executor (local or ray)")
    p.add_argument("--dataset", default="cifar10", choices=["cifar10", "synthetic"])
    p.add_argument("--data-dir", help="data root holding cifar10/ [$DSD_DATA, ~/.cache/dsd]")
    p.add_argument("--subset", type=int, help="train on the first N images (quick runs only)")
    p.add_argument("--test-subset", type=int, help="test on the first N images (quick runs)")
    p.add_argument("--no-train", action="store_true", help="sample and write outputs only")
    p.add_argument("--no-outputs", action="store_true", help="sample and train only")
    p.add_argument("--dry-run", action="store_true", help="print the plan, run nothing")
    a = p.parse_args(argv)
    a.runs = a.runs or str(Path(a.store).with_suffix(".runs.jsonl"))
    a.store = str(Path(a.store))
    window = ["--flops", a.flops] if a.flops else []
    sweeps = [sweep_name(s, a.seed) for s in a.spaces]
    if a.dry_run:
        log(f"would sample {a.n} models of {', '.join(a.spaces)} into {a.store} "
            f"({'--flops ' + a.flops if a.flops else 'CIFAR-10 window [112.5MF, 125MF]'}), "
            f"train them (nds, {a.epochs} epochs, {a.dataset}"
            f"{', max ' + a.max_time if a.max_time else ''}), log runs to {a.runs} and write "
            f"{a.out}/")
        return 0
    for space, name in zip(a.spaces, sweeps):
        # the published population was drawn with dsd's first sampler convention: keep it
        dsd("sample", "--space", space, "--n", a.n, "--dataset", "cifar10", "--seed", a.seed,
            "--samplers", "dsd1", "--name", name, *window, "--store", a.store)
    if not a.no_train:
        train(a, sweeps)
    if not a.no_outputs:
        write_outputs(a, sweeps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
