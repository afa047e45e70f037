"""CIFAR-10 study of the DDS paper's alternate design choices (issue 27): RegNetX against its
inverted-bottleneck, depthwise and Swish variants, published in results/cifar10_alternates/.

The variants (spaces/regnetx_inverted.yaml, regnetx_dwise.yaml, regnetx_swish.yaml) are sampled
exactly as scripts/reproduce_cifar10.py sampled the published population: n = 50 each, seed 0,
sampler convention `dsd1`, the spaces' CIFAR-10 window [112.5MF, 125MF], sweeps named
`<space>-cifar10-s0`, trained with the same recipe (nds, 10 epochs). The baseline is the
published RegNetX population (regnetx-cifar10-s0, 100 models, results/cifar10/population.parquet):
it is not trained again.

Resumable across sessions: the store (default results/cifar10_alternates/study.sqlite) and its
runs log live in the repository. Each call samples (idempotent), then trains for at most
--max-time in batches of the lowest pending model indices of all variants together (`dsd train
--index`), so a partial study holds the first models of every variant, not the longest-running
ones (`dsd train` starts the longest first, and long models have lower errors). Outputs are
written when no model is pending, or with --publish: population.parquet (the baseline's
published rows and every variant model), and SUMMARY.md, edf.png, compare.txt from the
*complete prefix* (variant models 0…m−1, every one of them finished; m = n when the study is
complete), plus commands.sh. One chunk on a GPU machine, then the outputs anywhere:
`python scripts/study_alternates.py --max-time 8m --data-dir /data --no-outputs` and
`python scripts/study_alternates.py --no-train [--publish]` (results/cifar10_alternates/README.md).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import reproduce_cifar10 as rc  # noqa: E402  (its helpers: dsd, recipe_json, checkpoint_store, …)

REPO = rc.REPO
BASELINE = "regnetx"
VARIANTS = ("regnetx_inverted", "regnetx_dwise", "regnetx_swish")
OUT = REPO / "results/cifar10_alternates"
PUBLISHED = REPO / "results/cifar10/population.parquet"
NORMALIZE = "none,flops,params,acts"  # as the published comparisons (results/cifar10/NOTES.md)


def log(msg: str) -> None:
    print(f"[alternates] {msg}", flush=True)


def queue(a, sweeps: list[str]) -> list[dict]:
    """Models of `sweeps` still to train under the study's recipe (store.training_queue)."""
    from dsd.store import Store

    store = Store(a.store, create=False)
    try:
        return store.training_queue(sweeps, dataset=None, recipe_json=rc.recipe_json(a))
    finally:
        store.close()


def next_indices(rows: list[dict], batch: int) -> list[int]:
    """The lowest model indices whose pending models (over all sweeps) number at least `batch`."""
    chosen, count = [], 0
    for i in sorted({r["index"] for r in rows}):
        chosen.append(i)
        count += sum(r["index"] == i for r in rows)
        if count >= batch:
            break
    return chosen


def train(a, sweeps: list[str], deadline: float | None) -> None:
    """`dsd train` on batches of the lowest pending indices until none is left or time is up."""
    if a.retry_failed:  # as `dsd train --retry-failed`: failed → pending, lowest indices first
        from dsd.store import Store

        store = Store(a.store, create=False)
        n = store.retry_failed(sweeps, dataset=None, recipe_json=rc.recipe_json(a))
        store.close()
        log(f"training: {n} failed models set to pending again")
    while rows := queue(a, sweeps):
        left = None if deadline is None else deadline - time.time()
        if left is not None and left < a.min_chunk:
            log(f"training: {left:.0f} s left, under --min-chunk {a.min_chunk} s: stopping")
            break
        idx = next_indices(rows, a.batch)
        opts = {"--max-time": None if left is None else f"{int(left)}s", "--data-dir": a.data_dir,
                "--gpus": a.gpus, "--per-gpu": a.per_gpu, "--subset": a.subset,
                "--test-subset": a.test_subset}
        args = ["train", *sweeps, "--recipe", "nds", "--epochs", a.epochs, "--store", a.store,
                *[x for k, v in opts.items() if v is not None for x in (k, v)],
                *[x for i in idx for x in ("--index", i)],
                *(["--whole-models"] if a.whole_models else [])]
        ngpu, names = rc.gpus_visible(a.gpus)
        log(f"training: {len(rows)} models pending; this batch: indices {idx[0]}–{idx[-1]}, "
            f"{sum(r['index'] in idx for r in rows)} models; {ngpu} GPU(s) {', '.join(names)}")
        t0, started = time.time(), dt.datetime.now(dt.UTC)
        rcode = rc.dsd(*args, check=False)
        after = queue(a, sweeps)
        run = {"started": started.isoformat(timespec="seconds"),
               "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "seconds": round(time.time() - t0, 1), "gpus": ngpu, "gpu_names": names,
               "per_gpu": a.per_gpu, "host": socket.gethostname(), "dataset": a.dataset,
               "max_time": opts["--max-time"], "indices": [idx[0], idx[-1]],
               "pending_before": len(rows), "pending_after": len(after), "exit": rcode}
        with open(a.runs, "a") as f:
            f.write(json.dumps(run, sort_keys=True) + "\n")
        rc.checkpoint_store(Path(a.store))
        if rcode not in (0, 3):  # 3: a model failed or diverged (recorded); others trained
            raise SystemExit(f"[alternates] dsd train exited {rcode}")
        if any(r["index"] in idx for r in after):
            log(f"training: stopped with {len(after)} models pending (time limit); "
                "run this script again to continue")
            break
    else:
        log("training: nothing pending")


def status_table(a, sweeps: list[str]) -> tuple[str, int]:
    """Markdown counts per variant and m, the complete prefix (models 0…m−1 all finished)."""
    from dsd.store import Store, recipe_hash

    store = Store(a.store, create=False)
    try:
        res = store.results(sweeps, status=None)
        if not res.empty:
            res = res[res["recipe_hash"] == recipe_hash(rc.recipe_json(a))]
        models = {s: store.models(s) for s in sweeps}
    finally:
        store.close()
    lines = ["| sweep | sampled | done | failed/diverged/collapsed | pending |",
             "|---|---|---|---|---|"]
    prefix = a.n
    for s in sweeps:
        mine = res[res["sweep"] == s] if not res.empty else res
        st = dict(zip(mine["index"], mine["status"])) if not mine.empty else {}
        open_ = sorted(i for i in models[s]["index"] if st.get(i, "pending")
                       in ("pending", "running"))
        prefix = min(prefix, open_[0] if open_ else len(models[s]))
        done = sum(v == "done" for v in st.values())
        bad = sum(v in ("failed", "diverged", "collapsed") for v in st.values())
        lines.append(f"| {s} | {len(models[s])} | {done} | {bad} | {len(open_)} |")
    return "\n".join(lines) + "\n", prefix


def norm_bins(done, base: str, sweep: str, up_to: int = 20) -> int:
    """The most bins (<= up_to) that leave no flops, params or acts bin of the pair's common
    range empty (`dsd compare --normalize` refuses empty bins); 0 where none do."""
    from dsd.analysis import stats
    from dsd.errors import DsdError

    k = up_to
    for col in ("flops", "params", "acts"):
        groups = [done.loc[done["sweep"] == s, col].to_numpy(float) for s in (base, sweep)]
        try:
            k = min(k, stats.max_bins(groups, *stats.common_range(*groups), up_to))
        except DsdError:  # the ranges do not overlap
            return 0
    return k


def write_outputs(a, sweeps: list[str]) -> None:
    """population.parquet, prefix analysis (SUMMARY.md, edf.png, compare.txt), commands.sh."""
    import pandas as pd

    from dsd.analysis.population import (population_frame, read_population, read_runs,
                                         write_population)
    from dsd.store import load

    out = Path(a.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    base = rc.sweep_name(BASELINE, a.seed)
    table, m = status_table(a, sweeps)
    (out / "status.md").write_text(f"# Study status\n\nComplete prefix: models 0…{m - 1} of "
                                   f"every variant (m = {m} of n = {a.n}).\n\n{table}")
    log(f"complete prefix m = {m}\n{table}")
    store = Path(a.store).resolve()
    rc.dsd("fit", *sweeps, "--store", store)
    db = load(store, create=False)  # what `dsd export-population` does
    new = population_frame(db, sweeps, recipe="nds", dataset=a.dataset)
    db.close()
    pub, _ = read_population(a.baseline_population)
    pop = pd.concat([pub[pub["sweep"] == base], new], ignore_index=True)
    # the runs of this study only: the baseline's rows keep their own seconds and devices
    write_population(pop, out / "population.parquet", read_runs(a.runs))
    src = "population.parquet"
    if m < a.n:  # in progress: analyse the complete prefix only
        src = "prefix.parquet"
        keep = (pop["sweep"] == base) | (pop["index"] < m)
        write_population(pop[keep].reset_index(drop=True), out / src, read_runs(a.runs))
    else:
        (out / "prefix.parquet").unlink(missing_ok=True)
    cmds: list[str] = []

    def run(*args, to: str | None = None):
        line = "dsd " + " ".join(shlex.quote(str(x)) for x in args)
        cmds.append(line + (f" >> {to}" if to else ""))
        if to is None:
            return rc.dsd(*args, cwd=out)
        log(f"(in {out}) {line} >> {to}")
        text = subprocess.run([sys.executable, "-m", "dsd", *map(str, args)], cwd=out,
                              env=os.environ | {"PYTHONPATH": os.pathsep.join(
                                  [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])},
                              check=True,
                              capture_output=True, text=True).stdout
        with open(out / to, "a") as f:
            f.write(f"$ {line}\n{text}\n")

    notes = ["--notes", "NOTES.md"] if (out / "NOTES.md").exists() else []
    run("summarize", src, "-o", "SUMMARY.md", *notes)
    done = pop[(pop["status"] == "done") & ((pop["sweep"] == base) | (pop["index"] < m))]
    ready = [s for s in sweeps if (done["sweep"] == s).sum() >= a.min_compare]
    (out / "compare.txt").unlink(missing_ok=True)
    if ready:
        run("edf", base, *ready, "--population", src, "-o", "edf.png")
        for s in ready:
            bins = norm_bins(done, base, s)
            norm = ["--normalize", NORMALIZE, "--bins", bins] if bins >= 2 else []
            run("compare", base, s, "--population", src, *norm, to="compare.txt")
    else:
        log(f"no variant has {a.min_compare} finished models in the complete prefix yet: "
            "no EDF or comparison")
    (out / "commands.sh").write_text(
        "# The dsd commands that wrote this folder, run inside it (scripts/study_alternates.py)."
        "\n# population.parquet = the baseline's rows of ../cifar10/population.parquet (sweep "
        f"{base})\n# + the rows `dsd export-population {' '.join(sweeps)} --store study.sqlite "
        f"--recipe nds --dataset {a.dataset}` writes, with study.runs.jsonl\n"
        + ("# prefix.parquet = its rows of the baseline and of variant models with index < "
           f"{m} (all finished)\n" if m < a.n else "")
        + 'cd "$(dirname "$0")"\nrm -f compare.txt\n' + "".join(c + "\n" for c in cmds))
    log(f"outputs in {out}: " + ", ".join(sorted(p.name for p in out.iterdir())))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=50, help="models per variant (default 50)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--flops", help="budget F instead of the spaces' CIFAR-10 window (tests)")
    p.add_argument("--store", default=str(OUT / "study.sqlite"),
                   help="the study's store [default: results/cifar10_alternates/study.sqlite]")
    p.add_argument("--runs", help="JSON-lines log of training runs [default: STORE.runs.jsonl]")
    p.add_argument("--out", default=str(OUT), help="output folder")
    p.add_argument("--baseline-population", default=str(PUBLISHED),
                   help="population file holding the baseline regnetx sweep")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--max-time", help="train for at most this long in all, e.g. 8m")
    p.add_argument("--min-chunk", type=int, default=90,
                   help="start no `dsd train` with fewer seconds left (default 90)")
    p.add_argument("--batch", type=int, default=30,
                   help="pending models per `dsd train` call, lowest indices first (default 30)")
    p.add_argument("--whole-models", action="store_true",
                   help="dsd train --whole-models (start only models that should finish in time)")
    p.add_argument("--retry-failed", action="store_true",
                   help="train the failed models again (as dsd train --retry-failed)")
    p.add_argument("--gpus", help="GPU indices, e.g. 0,1 [default: every GPU found]")
    p.add_argument("--per-gpu", type=int, help="models at once per GPU [dsd train's default]")
    p.add_argument("--dataset", default="cifar10", choices=["cifar10"])
    p.add_argument("--data-dir", help="data root holding cifar10/ [$DSD_DATA, ~/.cache/dsd]")
    p.add_argument("--subset", type=int, help="train on the first N images (quick runs only)")
    p.add_argument("--test-subset", type=int, help="test on the first N images (quick runs)")
    p.add_argument("--min-compare", type=int, default=5,
                   help="finished models a variant needs for the EDF and compare (default 5)")
    p.add_argument("--no-train", action="store_true", help="sample (and write outputs) only")
    p.add_argument("--no-outputs", action="store_true", help="sample and train only")
    p.add_argument("--publish", action="store_true",
                   help="write the outputs even while models are pending")
    a = p.parse_args(argv)
    a.runs = a.runs or str(Path(a.store).with_suffix(".runs.jsonl"))
    from dsd.train.recipes import parse_duration

    deadline = None if a.max_time is None else time.time() + parse_duration(a.max_time)
    sweeps = [rc.sweep_name(s, a.seed) for s in VARIANTS]
    window = ["--flops", a.flops] if a.flops else []
    for space, name in zip(VARIANTS, sweeps):  # as reproduce_cifar10.py: dsd1, so re-drawable
        rc.dsd("sample", "--space", space, "--n", a.n, "--dataset", "cifar10", "--seed", a.seed,
               "--samplers", "dsd1", "--name", name, *window, "--store", a.store)
    if not a.no_train:
        train(a, sweeps, deadline)
    left = len(queue(a, sweeps))
    if a.no_outputs or (left and not a.publish):
        log(f"{left} models pending: outputs not written" + ("" if a.no_outputs else
                                                              " (--publish writes them)"))
    else:
        write_outputs(a, sweeps)
    return 0


if __name__ == "__main__":
    sys.exit(main())
