"""`dsd train` and `dsd status`: thin commands over `dsd.train` (torch is imported inside)."""
from __future__ import annotations

import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from ..errors import DsdError
from ..store import IMAGE_LOADERS
from . import StoreOpt, command, status_table

console = Console()


class Executor(str, Enum):
    local = "local"
    ray = "ray"


#: --loader's choices: auto and the ImageNet pipelines a result can name (store.IMAGE_LOADERS)
Loader = Enum("Loader", {n: n for n in ("auto", *IMAGE_LOADERS)}, type=str)


class Order(str, Enum):
    longest = "longest"
    store = "store"


class Precision(str, Enum):
    auto = "auto"
    bf16 = "bf16"
    fp32 = "fp32"


def parse_gpus(text: str | None) -> list[int] | None:
    """'0,1' → [0, 1]; None → every visible GPU."""
    if text is None:
        return None
    try:
        gpus = [int(g) for g in text.split(",") if g.strip()]
    except ValueError:
        raise DsdError(f"--gpus takes GPU indices like 0,1, got {text!r}") from None
    for g in gpus:
        if g < 0:
            raise DsdError(f"--gpus: invalid GPU index {g}; indices are integers >= 0, like 0,1")
    return gpus


#: Exit codes of `dsd train` besides 0 (success) and 1 (an error; README, Training).
EXIT_MODELS_FAILED = 3


@command("train")
def train_cmd(
    sweep: Annotated[Optional[list[str]], typer.Argument(
        help="Sweeps to train [default: every sweep in the store].")] = None,
    index: Annotated[Optional[list[int]], typer.Option(
        "--index", help="Train only the model with this index (repeat for several: "
        "--index 3 --index 7) in each chosen sweep.", show_default=False)] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Override the recipe's epochs.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Override the base learning rate.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Override the batch size.")] = None,
    wd: Annotated[Optional[float], typer.Option(help="Override the weight decay.")] = None,
    precision: Annotated[Optional[Precision], typer.Option(
        help="auto: bf16 autocast on GPU, fp32 on CPU.")] = None,
    recipe: Annotated[Optional[str], typer.Option(
        help="Recipe name: nds, nds-plain (CIFAR-10), dds, dds-plain (ImageNet) "
             "[default: nds or dds by the sweep's dataset].")] = None,
    dataset: Annotated[Optional[str], typer.Option(
        help="Dataset [default: the sweep's]; synthetic for benchmarks (`dsd datasets` "
             "lists them).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option(
        help="Data root [default: $DSD_DATA or ~/.cache/dsd].")] = None,
    subset: Annotated[Optional[int], typer.Option(
        help="Train on the first N training images only (stored in the recipe).")] = None,
    test_subset: Annotated[Optional[int], typer.Option(
        help="Evaluate on the first N test images only (stored in the recipe).")] = None,
    gpus: Annotated[Optional[str], typer.Option(
        help="GPU indices, e.g. 0,1 [default: every visible GPU].")] = None,
    per_gpu: Annotated[Optional[int], typer.Option(
        help="Models trained at once on each GPU [default: 8].")] = None,
    procs_per_gpu: Annotated[Optional[int], typer.Option(
        help="Worker processes per GPU sharing its --per-gpu models [default: 4].")] = None,
    threads: Annotated[Optional[int], typer.Option(
        help="Training threads on a machine without GPU [default: the free cores: available "
             "cores less the 1-minute load average].")] = None,
    mps: Annotated[Optional[bool], typer.Option(
        "--mps/--no-mps", help="Run the GPU workers under a private CUDA MPS daemon so that "
        "their kernels share each GPU at once [default: when nvidia-cuda-mps-control is found "
        "and no MPS daemon runs yet].")] = None,
    max_time: Annotated[Optional[str], typer.Option(
        help="Stop cleanly before this much time has passed, e.g. 90s, 9m, 1h.")] = None,
    whole_models: Annotated[bool, typer.Option(
        "--whole-models", help="With --max-time: start a model only if it should finish in "
        "time (when checkpoints do not outlive the run).")] = False,
    retry_failed: Annotated[bool, typer.Option(
        "--retry-failed", help="Train failed models again.")] = False,
    eager: Annotated[bool, typer.Option(
        "--eager", help="Do not capture CUDA graphs (debugging, benchmarks).")] = False,
    kernels: Annotated[Optional[str], typer.Option(
        help="dsd's own layer implementations on CUDA, comma-separated, or none: bn (Triton "
             "fused batch norm + ReLU), nchw (grouped convolutions with <= 2 channels per "
             "group in NCHW) [default: bn,nchw; nchw without Triton].")] = None,
    loader: Annotated[Loader, typer.Option(
        help="ImageNet input pipeline: gpu (nvjpeg decode + batched crop/resize on the GPU), "
             "cpu (PIL in loader processes), auto (gpu on CUDA where nvjpeg works).")
    ] = Loader.auto,
    order: Annotated[Order, typer.Option(
        help="longest: start the models with the longest estimated training time first "
             "(from flops, activations, depth; the sweep's tail decides its wall time); "
             "store: sweep, then model index.")] = Order.longest,
    executor: Annotated[Executor, typer.Option(
        help="local: this machine; ray: one Ray task per model on a Ray cluster.")
    ] = Executor.local,
    address: Annotated[Optional[str], typer.Option(
        help="Ray cluster address, e.g. auto or HOST:6379; default: $RAY_ADDRESS, else the "
             "cluster started on this machine, else a new local one (--executor ray).")] = None,
    max_retries: Annotated[int, typer.Option(
        help="Retries of a model whose Ray worker or node dies (--executor ray).")] = 3,
    cpus_per_task: Annotated[float, typer.Option(
        help="CPUs per model on a cluster without GPUs (--executor ray).")] = 1.0,
    store: StoreOpt = None,
):
    """Train every pending model of SWEEP (default: all sweeps); safe to stop and rerun.

    Exit code: 0 when every model trained finished (done or collapsed) or the time limit
    stopped the run, 1 on an error (nothing trained), 3 when a model ended failed or diverged,
    130 when interrupted (Ctrl-C), 143 when terminated (SIGTERM: timeout, Slurm)."""
    started = time.time()   # --max-time counts from here, as a scheduler's limit does
    from ..store import load
    from ..train import parse_duration, train

    seconds = parse_duration(max_time)
    overrides = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "wd": wd,
                 "precision": precision.value if precision else None, "subset": subset,
                 "test_subset": test_subset}
    summary = train(load(store), sweeps=sweep or None,
                    dataset=dataset, recipe=recipe,
                    overrides=overrides, data_dir=data_dir, gpus=parse_gpus(gpus),
                    per_gpu=per_gpu, procs_per_gpu=procs_per_gpu, max_time=seconds,
                    clock_start=started, threads=threads,
                    whole_models=whole_models, retry_failed=retry_failed, eager=eager, mps=mps,
                    console=console, executor=executor.value, loader=loader.value,
                    order=order.value,
                    kernels=None if kernels is None else
                    tuple(k for k in kernels.split(",") if k and k != "none"),
                    ray_opts={"address": address, "max_retries": max_retries,
                              "cpus_per_task": cpus_per_task},
                    indices=sorted(set(index)) if index else None)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items())) or "nothing new"
    console.print(f"trained: {counts}; pending {summary.pending}; "
                  f"{summary.seconds:.0f}s{' (workers under MPS)' if summary.mps else ''}",
                  highlight=False)
    if summary.log:
        console.print(f"log: {summary.log}", highlight=False)
    if summary.workers_lost:
        console.print(f"[yellow]{summary.workers_lost} worker process(es) could not start[/] "
                      f"(errors above); the others trained their models", highlight=False)
    if summary.stopped == "interrupted":
        console.print("interrupted: run `dsd train` again to continue", highlight=False)
        raise typer.Exit(128 + (summary.signum or 2))   # 130 after Ctrl-C, 143 after SIGTERM
    if summary.stopped == "time":
        console.print("time limit reached: run `dsd train` again to continue", highlight=False)
    bad = {k: v for k, v in summary.counts.items() if k in ("failed", "diverged") and v}
    if bad:
        console.print(f"[red]{' and '.join(f'{v} {k}' for k, v in bad.items())}[/] (messages "
                      f"above); `dsd train --retry-failed` trains failed models again",
                      highlight=False)
        raise typer.Exit(EXIT_MODELS_FAILED)


@command("status")
def status_cmd(store: StoreOpt = None):
    """Models per sweep and (dataset, recipe): pending / running / done / failed / diverged."""
    from ..store import STATUSES, load

    db = load(store)
    df = db.status_counts()
    if df.empty:
        raise DsdError("the store has no sweeps yet; create one with `dsd sample`")
    trained = set(df.loc[df["dataset"].notna(), "sweep"])
    rows = []
    for (sweep, ds, h), g in df.groupby(["sweep", "dataset", "recipe_hash"], dropna=False,
                                        sort=False):
        if not isinstance(ds, str) and sweep in trained:
            continue  # the untrained models are counted as pending in the sweep's recipe rows
        counts = dict(zip(g["status"], g["count"]))
        n = int(g["models"].iloc[0])
        counts["pending"] = counts.get("pending", 0) + n - sum(
            v for k, v in counts.items() if isinstance(k, str))
        recipe = "-" if not isinstance(ds, str) else f"{g['recipe'].iloc[0]} ({h[:6]})"
        rows.append((sweep, ds if isinstance(ds, str) else "-", recipe, n, counts))
    # pending and done always; the other statuses where some model has them (80 columns)
    shown = [s for s in STATUSES if s in ("pending", "done") or any(r[4].get(s) for r in rows)]
    status_table("training status", [("sweep", False), ("dataset", True), ("recipe", True),
                                      ("models", False)],
                 [([sweep, ds, recipe, str(n)], counts) for sweep, ds, recipe, n, counts in rows],
                 shown, console=console)
    for sweep, loaders in db.loader_counts().items():  # which ImageNet input pipeline ran
        console.print(f"{sweep}: " + ", ".join(f"{n} with the {k} loader"
                                               for k, n in loaders.items()), highlight=False)
